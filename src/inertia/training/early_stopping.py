"""Early stopping with Keras 3's semantics (``keras.callbacks.EarlyStopping``), and the
per-epoch metrics it can watch.

The rule, after each epoch ``epoch`` (counted from 0 in this ``fit``) whose monitored value is
``current``:

- epochs before ``start_from_epoch`` are ignored;
- with ``restore_best``, the first watched epoch's weights are kept as the best so far;
- ``wait`` grows by one; ``current`` improves on ``best`` when ``current + min_delta < best``
  (mode "min") or ``current - min_delta > best`` (mode "max"); the first watched value always
  does. An improvement sets ``best``, ``best_epoch`` (and the kept weights), and resets
  ``wait`` to 0 only if ``current`` also improves on ``baseline`` (when one is given);
- otherwise, when ``wait >= patience`` and ``epoch > 0``, training stops after this epoch
  (``stopped_epoch = epoch``).

When the run ends (stopped early or not, as Keras 3 does), ``restore_best`` puts the kept
weights back into the network; the optimizer's state is left as the last step made it
(Keras restores model weights only). A run stopped by Ctrl-C or SIGTERM restores nothing:
it has not ended (its checkpoint resumes it).
"""

from __future__ import annotations

import math

import numpy as np

MONITORS = ("loss", "val_loss", "val_accuracy")
CLASSIFIER_LOSSES = ("bce", "cross_entropy")


class EarlyStopping:
    """Stop ``fit`` when a monitored quantity has stopped improving (Keras 3's rule).

    monitor         "val_loss" (default; needs validation_data), "loss" (the training loss
                    of the epoch), or "val_accuracy" (validation data and a "bce" or
                    "cross_entropy" loss)
    min_delta       an improvement must beat the best value by more than |min_delta|
    patience        epochs without improvement before stopping (0: stop at the first epoch
                    after the first that does not improve)
    mode            "auto" (min for losses, max for accuracy), "min" or "max"
    baseline        None, or a value the monitored quantity must beat for ``wait`` to reset
    restore_best    at the end of the run, put back the weights of the best epoch
                    (Keras's ``restore_best_weights``); default True here (False in Keras)
    start_from_epoch  epochs of warm-up that are not watched

    After a fit: ``stopped_epoch`` (0 when it did not stop, as Keras), ``best``,
    ``best_epoch``, ``wait``; ``fit`` copies the first two into its History as
    ``stopped_epoch`` (None when it ran to the end) and ``best_epoch``. One instance may be
    passed to several fits: each starts afresh.
    """

    def __init__(self, monitor="val_loss", min_delta=0.0, patience=0, mode="auto",
                 baseline=None, restore_best=True, start_from_epoch=0):
        if monitor not in MONITORS:
            raise ValueError(f"EarlyStopping cannot monitor {monitor!r}: choose one of "
                             f"{', '.join(MONITORS)}")
        if mode not in ("auto", "min", "max"):
            raise ValueError(f"EarlyStopping mode must be 'auto', 'min' or 'max', got {mode!r}")
        _check_number("min_delta", min_delta)
        if baseline is not None:
            _check_number("baseline", baseline)
        for name, v in (("patience", patience), ("start_from_epoch", start_from_epoch)):
            if not isinstance(v, (int, np.integer)) or isinstance(v, bool) or v < 0:
                raise ValueError(f"EarlyStopping {name} must be a non-negative integer, "
                                 f"got {v!r}")
        self.monitor, self.mode = monitor, mode
        self.min_delta = abs(float(min_delta))
        self.patience, self.start_from_epoch = int(patience), int(start_from_epoch)
        self.baseline = None if baseline is None else float(baseline)
        self.restore_best = bool(restore_best)
        self.begin()

    @property
    def maximize(self):
        if self.mode == "auto":
            return self.monitor.removeprefix("val_") == "accuracy"
        return self.mode == "max"

    def config(self):
        """The settings (a JSON-able dict; part of a checkpoint's fingerprint)."""
        return {"monitor": self.monitor, "min_delta": self.min_delta,
                "patience": self.patience, "mode": self.mode, "baseline": self.baseline,
                "restore_best": self.restore_best, "start_from_epoch": self.start_from_epoch}

    def check(self, has_validation, loss):
        """A one-line ValueError when this fit cannot give the monitored quantity."""
        if self.monitor.startswith("val_") and not has_validation:
            raise ValueError(f"EarlyStopping monitors {self.monitor!r}, which needs "
                             "validation_data=(X_val, y_val); or monitor 'loss'")
        if self.monitor == "val_accuracy" and loss not in CLASSIFIER_LOSSES:
            raise ValueError(f"EarlyStopping monitors 'val_accuracy', which needs a "
                             f"classification loss ('bce' or 'cross_entropy'), not {loss!r}")

    def begin(self):
        """Before a run (Keras's on_train_begin): forget any earlier run."""
        self.wait = 0
        self.stopped_epoch = 0
        self.best = None
        self.best_weights = None
        self.best_epoch = 0

    def _improves(self, value, reference):
        if reference is None:
            return True
        if self.maximize:
            return value - self.min_delta > reference
        return value + self.min_delta < reference

    def update(self, epoch, current, weights):
        """After epoch ``epoch`` with monitored value ``current``; ``weights()`` gives a
        copy of the weights now (called only when they are kept). Returns True to stop."""
        if current is None or epoch < self.start_from_epoch:
            return False
        if self.restore_best and self.best_weights is None:
            self.best_weights = weights()
            self.best_epoch = epoch
        self.wait += 1
        if self._improves(current, self.best):
            self.best = current
            self.best_epoch = epoch
            if self.restore_best:
                self.best_weights = weights()
            if self.baseline is None or self._improves(current, self.baseline):
                self.wait = 0
            return False
        if self.wait >= self.patience and epoch > 0:
            self.stopped_epoch = epoch
            return True
        return False

    def end(self, set_weights):
        """When the run ends (Keras's on_train_end): restore the best weights if kept."""
        if self.restore_best and self.best_weights is not None:
            set_weights(self.best_weights)

    # checkpoints ------------------------------------------------------------------
    def state_json(self):
        return {"wait": self.wait, "stopped_epoch": self.stopped_epoch, "best": self.best,
                "best_epoch": self.best_epoch}

    @staticmethod
    def check_state(d):
        """``state_json()``'s dict as saved, converted (TypeError, KeyError, ValueError:
        it is not one)."""
        best = None if d["best"] is None else float(d["best"])
        return int(d["wait"]), int(d["stopped_epoch"]), best, int(d["best_epoch"])

    def load_state(self, d, best_weights):
        self.wait, self.stopped_epoch, self.best, self.best_epoch = self.check_state(d)
        self.best_weights = best_weights


def _check_number(name, v):
    if isinstance(v, bool) or not isinstance(v, (int, float, np.integer, np.floating)) \
            or not math.isfinite(v):
        raise ValueError(f"EarlyStopping {name} must be a finite number, got {v!r}")


def accuracy(loss, outputs, targets):
    """The share of correct predictions: "cross_entropy": argmax of the outputs against
    argmax of the (one-hot) targets, per row; "bce": each output thresholded at 0.5 against
    its 0/1 target, over every entry (Keras's binary_accuracy). outputs and targets are
    (n, k) host arrays."""
    outputs, targets = np.asarray(outputs), np.asarray(targets)
    if loss == "cross_entropy":
        return float(np.mean(outputs.argmax(axis=1) == targets.argmax(axis=1)))
    return float(np.mean((outputs > 0.5) == (targets > 0.5)))
