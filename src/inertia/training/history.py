"""History: what a ``fit`` measured, epoch by epoch, and how the run ended."""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np


_LISTS = ("loss", "val_loss", "val_accuracy", "time", "segment_loss", "step_loss",
          "step_weights_sq")
_REQUIRED = ("loss", "val_loss", "time", "segment_loss")


@dataclass
class History:
    """What a ``fit`` measured.

    loss          training loss per completed epoch: the mean of the epoch's batch losses,
                  each taken in the forward pass before that batch's update
    val_loss      validation loss after each epoch (empty without validation_data)
    val_accuracy  with validation_data and a "bce" or "cross_entropy" loss: the share of
                  validation predictions that are right after each epoch (cross_entropy:
                  argmax per row; bce: each output thresholded at 0.5); else empty
    time          wall time in seconds since the start of the run, after each epoch (a
                  resumed run continues the clock of the run it resumes)
    segment_loss  with a schedule: the last-epoch loss of each segment
    diverged      None, or where the loss or a parameter first became NaN or infinite: an
                  ``inertia.training.Divergence`` (epoch, step, loss), counted from 0
    resumed_from  None, or the (epoch, step) a checkpoint resumed this run at
    stopped_epoch with early_stopping: the epoch (from 0) after which it stopped training,
                  or None when the run went to the end
    best_epoch    with early_stopping: the epoch (from 0) with the best monitored value
                  (its weights are the network's when ``restore_best``), else None
    tuned         after a fit with ``lr="auto"`` or ``momentum="auto"``: the
                  ``inertia.tuning.TuneSummary`` of the race that chose them (``str`` of it
                  is one line), else None
    step_loss, step_weights_sq
                  with ``fit(..., record_steps=True)``: per step run (a diverged step not
                  counted), its batch loss (as ``loss`` averages them) and the sum of the squared
                  weights (biases not counted) its update started from, float64 (what
                  scikit-learn's L2 term of the loss curve needs); else empty
    """

    loss: list = field(default_factory=list)
    val_loss: list = field(default_factory=list)
    val_accuracy: list = field(default_factory=list)
    time: list = field(default_factory=list)
    segment_loss: list = field(default_factory=list)
    diverged: object = None
    resumed_from: object = None
    stopped_epoch: object = None
    best_epoch: object = None
    tuned: object = None
    step_loss: list = field(default_factory=list)
    step_weights_sq: list = field(default_factory=list)

    @property
    def epochs(self):
        return len(self.loss)

    def to_json(self):
        """The measured lists as a JSON-able dict (a checkpoint keeps them)."""
        return {"loss": self.loss, "val_loss": self.val_loss,
                "val_accuracy": self.val_accuracy, "time": self.time,
                "segment_loss": self.segment_loss, "step_loss": self.step_loss,
                "step_weights_sq": self.step_weights_sq}

    @classmethod
    def from_json(cls, d):
        """The History of a ``to_json`` dict (a one-line error for anything else)."""
        if not isinstance(d, dict):
            raise TypeError(f"History.from_json takes the dict History.to_json returns, got "
                            f"{type(d).__name__}")
        missing = [k for k in _REQUIRED if k not in d]
        if missing:
            raise ValueError(f"History.from_json: {missing[0]!r} is missing (History.to_json "
                             "writes every list)")
        bad = [k for k in _LISTS if not isinstance(d.get(k, []), (list, tuple, np.ndarray))]
        if bad:
            raise ValueError(f"History.from_json: {bad[0]!r} must be a list of numbers, as "
                             f"History.to_json writes it, got {type(d[bad[0]]).__name__}")
        return cls(loss=list(d["loss"]), val_loss=list(d["val_loss"]),
                   val_accuracy=list(d.get("val_accuracy", [])), time=list(d["time"]),
                   segment_loss=list(d["segment_loss"]),
                   step_loss=list(d.get("step_loss", [])),
                   step_weights_sq=list(d.get("step_weights_sq", [])))
