"""scikit-learn estimators: ``MLPClassifier`` and ``MLPRegressor`` trained by inertia.

A drop-in for ``sklearn.neural_network.MLPClassifier`` / ``MLPRegressor`` with
``solver="sgd"``: the same parameters, fitted attributes and training rules
(``sklearn/neural_network/_multilayer_perceptron.py``, ``_fit_stochastic``;
``_stochastic_optimizers.py``, ``SGDOptimizer``), so that with the same initial weights a fit
follows scikit-learn's trajectory to float64 round-off, weights and ``loss_curve_`` alike.
Training runs on inertia's ``Network`` and ``fit``, one epoch per call (scikit-learn's
per-epoch rules run between calls), the optimizer carrying its state across calls.

What the estimator computes itself, as scikit-learn does:

- initial weights: Glorot-uniform from ``random_state`` for weights AND biases, bound
  sqrt(6 / (fan_in + fan_out)) (sqrt(2 / ...) for logistic), drawn in scikit-learn's order,
  so the same ``random_state`` gives scikit-learn's initial weights;
- the batch order: ``sklearn.utils.shuffle`` on the same random state;
- ``loss_curve_``: per epoch, the batch losses weighted by batch size, each with the L2 term
  ``alpha / (2 n_batch) * sum of squared weights`` taken before the batch's update;
- ``sample_weight`` (fit, partial_fit): each batch's loss and gradient over the batch's weight
  sum, the L2 term ``alpha / (2 sum of the batch's weights) * ...`` likewise, the loss curve's
  batches still weighted by row count (scikit-learn 1.9's ``_backprop`` and
  ``_fit_stochastic``); on the engine loop (the compiled one takes no weights); not with
  early stopping;
  scikit-learn's squared loss is ``||y - a||^2 / (2 n k)`` for k outputs (inertia's
  ``quadratic`` / k) and its multilabel log loss sums over the k outputs (inertia's ``bce`` * k);
  inertia takes log losses from the logits, scikit-learn from probabilities clipped to
  [eps, 1 - eps], so the two differ only where a probability is below eps = 2.2e-16 (a
  sample's loss above 36);
- ``learning_rate``: "invscaling" sets lr = learning_rate_init / (t_ + 1) ** power_t after each
  epoch (t_ = samples seen); "adaptive" divides lr by 5 when ``n_iter_no_change`` epochs pass
  without a ``tol`` improvement and stops once lr <= 1e-6; "constant" stops there;
- non-finite weights: scikit-learn trains on through NaN and raises "Solver produced
  non-finite parameter weights" at the end (unless early stopping restores finite weights).
  ``on_divergence="continue"`` does exactly that; "stop" (default) stops at the epoch where
  the loss or the weights stop being finite, with the network back at the last finite step,
  and raises the same ValueError (with early stopping: a DivergenceWarning, and the best
  validation epoch's weights as scikit-learn ends with); "raise" raises ``inertia.Diverged``
  (``.diverged.epoch`` is the estimator's epoch, from 0). ``loss_curve_`` holds the finite
  epochs. A ``checkpoint`` parameter is not offered: each epoch is its own ``fit`` call, and
  the run's state that matters (scikit-learn's random state, the no-improvement count, the
  best validation weights) lives in the estimator, outside fit's checkpoints; pickle the
  estimator between ``partial_fit`` calls instead.
- early stopping: ``train_test_split`` with the same random state (stratified for a
  single-output classifier), accuracy or R^2 on the held-out part, best weights restored.

Importing this module imports scikit-learn; ``inertia.MLPClassifier`` imports it on first use.
"""

from __future__ import annotations

import dataclasses
import warnings

import numpy as np

try:
    from sklearn.base import BaseEstimator, ClassifierMixin, RegressorMixin, is_classifier
    from sklearn.exceptions import ConvergenceWarning
    from sklearn.metrics import accuracy_score, r2_score
    from sklearn.model_selection import train_test_split
    from sklearn.preprocessing import LabelBinarizer
    from sklearn.utils import check_random_state
    from sklearn.utils._param_validation import Interval, Options, StrOptions
    from sklearn.utils.multiclass import _check_partial_fit_first_call, type_of_target
    from sklearn.utils.multiclass import unique_labels
    from sklearn.utils.validation import check_is_fitted, column_or_1d, validate_data
except ImportError as err:  # pragma: no cover - scikit-learn is in the test extra
    raise ImportError("inertia.MLPClassifier and inertia.MLPRegressor need scikit-learn: "
                      "pip install scikit-learn (or pip install 'inertia[test]')") from err

from numbers import Integral, Real

from .data import check_memory
from .network import Dense, Network, parameter_count
from .optim import CONVENTIONS, QHM, SGD, Adam, AdamW, AggMo
from .ops import losses as _losses
from .training import fit as _inertia_fit
from .training.divergence import Diverged, DivergenceWarning

# scikit-learn's activation names -> inertia's
ACTIVATIONS = {"identity": "linear", "logistic": "sigmoid", "tanh": "tanh", "relu": "relu"}
# scikit-learn's output activation -> (inertia's output layer, inertia's loss)
OUTPUTS = {"softmax": ("softmax", "cross_entropy"), "logistic": ("sigmoid", "bce"),
           "identity": ("linear", "quadratic")}
OPTIMIZERS = ("sgd", "qhm", "aggmo", "adam", "adamw")
MIN_ADAPTIVE_LR = 1e-6     # SGDOptimizer.trigger_stopping: stop once lr <= 1e-6


def _shuffled(idx, random_state):
    """``sklearn.utils.shuffle(idx, random_state=random_state)`` without its argument
    validation (a millisecond a call): resample draws a permutation of arange(n) with
    ``random_state.shuffle`` and indexes by it (sklearn/utils/_indexing.py, resample)."""
    perm = np.arange(idx.shape[0])
    random_state.shuffle(perm)
    return idx[perm]


class _Stopped(Exception):
    """An epoch's fit stopped at a divergence: args (Divergence, History)."""


class _CompiledEpochs:
    """The epochs of one estimator fit as calls of the compiled loop (``inertia.fused``),
    its buffers made once: what ``fit(record_steps=True)`` runs for an epoch, without the
    per-call cost of fit's checks and buffers (about 1 ms a call, a quarter of a digits
    epoch). Used where fit would take the compiled loop anyway and the epoch has no
    per-step schedule (``usable``).

    X (n, n_in) and y (n, n_out): the training rows as the network's dtype, C-contiguous,
    read (not copied) by every epoch; an epoch's row order is an index array into them.
    Unlike ``fit`` it defers no signal: a KeyboardInterrupt lands between two calls (the
    estimator keeps the weights reached, as scikit-learn does between two batches)."""

    def __init__(self, net, opt, loss, X, y, check, squares):
        from .fused import runner

        net.bind(opt)
        y = _losses.prepare_targets(loss, y, net.n_outputs, net.dtype)
        self.steps = runner.CompiledSteps(net, opt, loss, X, y)
        self.steps.reset_backup()
        self.opt, self.check, self.squares = opt, check, squares

    @staticmethod
    def usable(net, opt, schedules, weighted):
        from .fused import runner

        return not schedules and not weighted and runner.unsupported(net, opt) is None

    def epoch(self, order, starts, counts):
        """Steps (starts, counts) (int64) into ``order`` (int64): (step losses, each step's
        sum of squared weights before its update, or None unless ``squares``), or
        ``_Stopped`` at a non-finite loss or weight (the network and optimizer back at the
        last finite state, as fit leaves them)."""
        weights_sq = np.empty(starts.shape[0]) if self.squares else None
        opt = self.opt
        out, stop, _ = self.steps.run(order, starts, counts, opt.lr,
                                      getattr(opt, "momentum", 0.0), self.check, weights_sq)
        if stop < starts.shape[0]:
            from .training import History
            from .training.divergence import Divergence

            div = Divergence(0, int(stop), float(out[stop]))
            raise _Stopped(div, History(diverged=div))
        return out, weights_sq


class _BaseMLP(BaseEstimator):
    """What MLPClassifier and MLPRegressor share (see the module docstring)."""

    _parameter_constraints: dict = {
        "hidden_layer_sizes": ["array-like", Interval(Integral, 1, None, closed="left")],
        "activation": [StrOptions(set(ACTIVATIONS))],
        "solver": [StrOptions({"sgd"})],
        "alpha": [Interval(Real, 0, None, closed="left")],
        "batch_size": [StrOptions({"auto"}), Interval(Integral, 1, None, closed="left")],
        "learning_rate": [StrOptions({"constant", "invscaling", "adaptive"})],
        "learning_rate_init": [StrOptions({"auto"}), Interval(Real, 0, None, closed="neither")],
        "power_t": [Interval(Real, 0, None, closed="left")],
        "max_iter": [Interval(Integral, 1, None, closed="left")],
        "shuffle": ["boolean"],
        "random_state": ["random_state"],
        "tol": [Interval(Real, 0, None, closed="left")],
        "verbose": ["verbose"],
        "warm_start": ["boolean"],
        "momentum": [StrOptions({"auto"}), Interval(Real, 0, 1, closed="both")],
        "nesterovs_momentum": ["boolean"],
        "early_stopping": ["boolean"],
        "validation_fraction": [Interval(Real, 0, 1, closed="neither")],
        "n_iter_no_change": [Interval(Integral, 1, None, closed="left"),
                             Options(Real, {np.inf})],
        "convention": [StrOptions(set(CONVENTIONS))],
        "optimizer": [StrOptions(set(OPTIMIZERS))],
        "weight_decay": [Interval(Real, 0, None, closed="left")],
        "dampening": [Interval(Real, 0, 1, closed="both")],
        "engine": [str],
        "device": [str, None],
        "dtype": [StrOptions({"float64", "float32"})],
        "lr_schedule": [callable, None],
        "momentum_schedule": [callable, None],
        "on_divergence": [StrOptions({"stop", "raise", "continue"})],
    }

    def __init__(self, hidden_layer_sizes=(100,), activation="relu", *, solver="sgd",
                 alpha=0.0001, batch_size="auto", learning_rate="constant",
                 learning_rate_init=0.001, power_t=0.5, max_iter=200, shuffle=True,
                 random_state=None, tol=1e-4, verbose=False, warm_start=False, momentum=0.9,
                 nesterovs_momentum=True, early_stopping=False, validation_fraction=0.1,
                 n_iter_no_change=10, convention="sklearn", optimizer="sgd", weight_decay=0.0,
                 dampening=0.0, engine="numpy", device=None, dtype="float64",
                 lr_schedule=None, momentum_schedule=None, on_divergence="stop"):
        self.hidden_layer_sizes = hidden_layer_sizes
        self.activation = activation
        self.solver = solver
        self.alpha = alpha
        self.batch_size = batch_size
        self.learning_rate = learning_rate
        self.learning_rate_init = learning_rate_init
        self.power_t = power_t
        self.max_iter = max_iter
        self.shuffle = shuffle
        self.random_state = random_state
        self.tol = tol
        self.verbose = verbose
        self.warm_start = warm_start
        self.momentum = momentum
        self.nesterovs_momentum = nesterovs_momentum
        self.early_stopping = early_stopping
        self.validation_fraction = validation_fraction
        self.n_iter_no_change = n_iter_no_change
        self.convention = convention
        self.optimizer = optimizer
        self.weight_decay = weight_decay
        self.dampening = dampening
        self.engine = engine
        self.device = device
        self.dtype = dtype
        self.lr_schedule = lr_schedule
        self.momentum_schedule = momentum_schedule
        self.on_divergence = on_divergence

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.input_tags.sparse = False
        return tags

    def __getstate__(self):
        state = super().__getstate__()
        state.pop("_net", None)          # rebuilt from coefs_ when needed (engines hold handles)
        state.pop("_compiled", None)     # a fit's compiled-loop buffers (None after a fit)
        return state

    # checks -------------------------------------------------------------------------------
    def _check_settings(self):
        """Raise a one-line ValueError for settings inertia cannot run, before any work."""
        auto = [k for k in ("learning_rate_init", "momentum") if getattr(self, k) == "auto"]
        if auto and self.optimizer != "sgd":
            raise ValueError(f'{" and ".join(auto)}="auto" is chosen for optimizer="sgd" '
                             f"only: set optimizer='sgd' or give numbers")
        for k, sched in (("learning_rate_init", "lr_schedule"), ("momentum", "momentum_schedule")):
            if getattr(self, k) == "auto" and getattr(self, sched) is not None:
                raise ValueError(f'{k}="auto" with a {sched}: the schedule sets it at every '
                                 f"step; give a number for {k} or drop the schedule")
        if auto and self.convention == "previous_delta" and self.momentum != 0:
            raise ValueError(f'{" and ".join(auto)}="auto" in the \'previous_delta\' '
                             "convention works only with momentum=0 (a two-tap filter, not "
                             "heavy-ball momentum): set momentum=0, give numbers, or use "
                             "another convention")
        if self.momentum != "auto" and self.momentum >= 1:
            raise ValueError(f"momentum must be < 1 for inertia's optimizers, got "
                             f"{self.momentum}: use e.g. 0.9")
        if self.alpha > 0 and self.weight_decay > 0:
            raise ValueError("give alpha (scikit-learn's L2 penalty) or weight_decay (the "
                             "convention's own decay), not both: set alpha=0 to use "
                             "weight_decay")
        if self.alpha > 0 and self.optimizer != "sgd":
            raise ValueError(f"alpha (scikit-learn's L2 penalty, alpha W / n_batch) is applied "
                             f"by optimizer='sgd' only: with optimizer={self.optimizer!r} set "
                             "alpha=0 and use weight_decay")
        if self.alpha > 0 and self.convention == "previous_delta":
            raise ValueError("the 'previous_delta' convention has no weight decay: set alpha=0")
        if self.lr_schedule is not None and self.learning_rate != "constant":
            raise ValueError(f"lr_schedule replaces learning_rate={self.learning_rate!r}: "
                             "leave learning_rate='constant' when giving lr_schedule")
        if self.dampening and not (self.optimizer == "sgd" and self.convention == "pytorch"):
            raise ValueError("dampening is part of the 'pytorch' convention only: set "
                             "convention='pytorch', optimizer='sgd', or dampening=0")
        layers = self._hidden_sizes()
        if any(int(u) < 1 for u in layers):
            raise ValueError(f"hidden_layer_sizes must be > 0, got {layers}.")

    def _check_size(self, layer_units):
        """The network's memory, refused before any work as ``Network`` refuses it (in
        float64, as the weights are drawn)."""
        n_params = parameter_count(layer_units)
        check_memory(n_params * 8, f"hidden_layer_sizes={tuple(self._hidden_sizes())} gives "
                                   f"{n_params:,} parameters")

    def _check_race(self, n, weighted=False):
        """learning_rate_init or momentum "auto" on n rows: the race needs more than one
        step before its first rung (``inertia.tune``'s rule, in this estimator's terms),
        and trains without sample weights."""
        from .tuning.race import rung_ends

        auto = [k for k in ("learning_rate_init", "momentum") if getattr(self, k) == "auto"]
        if auto and weighted:
            raise ValueError(f'{" and ".join(auto)}="auto" with sample_weight: the race '
                             "trains without weights; give numbers (inertia.tune on data "
                             "that reflects the weights can choose them)")
        bs = min(200, n) if self.batch_size == "auto" else self.batch_size
        if auto and bs >= n and rung_ends(int(self.max_iter))[0] == 1:
            least = next(e for e in range(2, 100) if rung_ends(e)[0] > 1)
            raise ValueError(f'{" and ".join(auto)}="auto" races at full batch (batch_size '
                             f"covers all {n} rows) over max_iter={self.max_iter} epochs, too "
                             f"few to rank: give max_iter >= {least}"
                             + (f" or a batch_size below {n}" if n > 1 else ""))

    def _hidden_sizes(self):
        sizes = self.hidden_layer_sizes
        if not hasattr(sizes, "__iter__"):
            sizes = [sizes]
        return [int(u) for u in sizes]

    # the network and the optimizer ---------------------------------------------------------
    def _initialize(self, y, layer_units):
        """scikit-learn's _initialize: attributes and Glorot-uniform weights and biases."""
        self.n_iter_ = 0
        self.t_ = 0
        self.n_outputs_ = y.shape[1]
        self.n_layers_ = len(layer_units)
        self.out_activation_ = self._output_activation()
        factor = 2.0 if self.activation == "logistic" else 6.0
        self.coefs_, self.intercepts_ = [], []
        for fan_in, fan_out in zip(layer_units[:-1], layer_units[1:]):
            bound = np.sqrt(factor / (fan_in + fan_out))
            coef = self._random_state.uniform(-bound, bound, (fan_in, fan_out))
            intercept = self._random_state.uniform(-bound, bound, fan_out)
            self.coefs_.append(coef.astype(self._dtype(), copy=False))
            self.intercepts_.append(intercept.astype(self._dtype(), copy=False))
        self._best_coefs = [c.copy() for c in self.coefs_]
        self._best_intercepts = [b.copy() for b in self.intercepts_]
        self.loss_curve_ = []
        self._no_improvement_count = 0
        if self.early_stopping:
            self.validation_scores_ = []
            self.best_validation_score_ = -np.inf
            self.best_loss_ = None
        else:
            self.best_loss_ = np.inf
            self.validation_scores_ = None
            self.best_validation_score_ = None

    def _dtype(self):
        return np.dtype(self.dtype)

    def _network(self):
        """The inertia Network holding coefs_ / intercepts_ (kept between calls, its weights
        set from coefs_ each time, so that coefs_ set by hand take effect)."""
        units = [c.shape[1] for c in self.coefs_]
        out_layer = OUTPUTS[self.out_activation_][0]
        acts = [ACTIVATIONS[self.activation]] * (len(units) - 1) + [out_layer]
        key = (self.coefs_[0].shape[0], tuple(units), tuple(acts), self.engine, self.device,
               self.dtype)
        net = getattr(self, "_net", None)
        if net is None or self._net_key != key:
            net = Network(key[0], [Dense(u, a) for u, a in zip(units, acts)], seed=0,
                          dtype=self.dtype, engine=self.engine, device=self.device)
            self._net, self._net_key = net, key
        net.set_parameters([(c.T, b) for c, b in zip(self.coefs_, self.intercepts_)])
        return net

    def _read_network(self, net):
        """coefs_ (n_in, n_out) and intercepts_ from the network's (out, in) weights."""
        params = net.parameters()
        self.coefs_ = [np.ascontiguousarray(w.T) for w, _ in params]
        self.intercepts_ = [b.copy() for _, b in params]

    def _gradient_scale(self):
        """k for multilabel: scikit-learn's log loss sums over the k outputs where inertia's
        bce averages, so its gradient is k times inertia's; the optimizer gets lr * k (SGD
        family) or eps / k (Adam) and weight decay / k, which takes the same steps."""
        return self.n_outputs_ if self.out_activation_ == "logistic" else 1

    def _make_optimizer(self):
        """A fresh inertia optimizer (new velocities), as scikit-learn makes a new
        SGDOptimizer at every fit that is not a partial_fit."""
        k = float(self._gradient_scale())
        lr, momentum = self._lr_init(), self._momentum()
        wd = (self.alpha if self.alpha > 0 else self.weight_decay) / k
        if self.optimizer == "sgd":
            conv = CONVENTIONS[self.convention]
            if self.alpha > 0 and self.convention != "sklearn":
                conv = dataclasses.replace(conv, name=f"{conv.name}+l2", weight_decay="coupled",
                                           decay_per_n=True, decay_biases=False)
            nesterov = bool(self.nesterovs_momentum) and momentum > 0 \
                and conv.nesterov is not None
            return SGD(lr * k, momentum=momentum, dampening=self.dampening,
                       nesterov=nesterov, weight_decay=wd, convention=conv)
        if self.optimizer == "qhm":
            return QHM(lr * k, momentum=momentum, weight_decay=wd)
        if self.optimizer == "aggmo":
            return AggMo(lr * k, weight_decay=wd)
        if self.optimizer == "adam":
            return Adam(lr, eps=1e-8 / k, weight_decay=wd)
        return AdamW(lr, eps=1e-8 / k, weight_decay=self.weight_decay)

    def _lr_init(self):
        """learning_rate_init, or the race's choice when it is "auto" (``tuned_``)."""
        return self.learning_rate_ if self.learning_rate_init == "auto" else \
            self.learning_rate_init

    def _momentum(self):
        """momentum, or the race's choice when it is "auto" (``tuned_``)."""
        return self.momentum_ if self.momentum == "auto" else self.momentum

    def _tune_auto(self, X, y):
        """learning_rate_init="auto" and/or momentum="auto": ``inertia.tune(method="race")``
        on the network as initialised, the training data, max_iter epochs and the batch
        size, the other value fixed when given, in the Nesterov form the training takes;
        sets ``learning_rate_`` and ``momentum_``
        (in this estimator's convention and scale) and ``tuned_`` (the TuneSummary)."""
        auto = [k for k in ("learning_rate_init", "momentum") if getattr(self, k) == "auto"]
        self.tuned_ = None
        if not auto:
            return
        from .tuning import tune

        n = X.shape[0]
        bs = min(200, n) if self.batch_size == "auto" else int(np.clip(self.batch_size, 1, n))
        k = float(self._gradient_scale())
        fixed = {}
        if self.learning_rate_init != "auto":
            fixed["lr"] = self.learning_rate_init * k
        if self.momentum != "auto":
            fixed["momentum"] = self.momentum
        loss = OUTPUTS[self.out_activation_][1]
        conv = self.convention if self.convention in CONVENTIONS else "pytorch"
        nesterov = bool(self.nesterovs_momentum) and self.momentum != 0 \
            and CONVENTIONS[conv].nesterov is not None         # as _make_optimizer trains
        result = tune(self._network(), X, y, loss, int(self.max_iter), batch_size=bs,
                      method="race", optimizer=SGD(1.0, momentum=0.5, nesterov=nesterov,
                                                   convention=conv),
                      seed=self.random_state if isinstance(self.random_state, int) else 0,
                      **fixed)
        chosen = result.optimizer.config()
        self.learning_rate_ = chosen["lr"] / k
        self.momentum_ = chosen["momentum"]
        self.tuned_ = result.summary()

    def _set_lr(self, opt):
        """Give the optimizer the current learning rate (scikit-learn's rule's value)."""
        k = self._gradient_scale() if self.optimizer in ("sgd", "qhm", "aggmo") else 1
        opt.set(lr=self._learning_rate * k)

    # training -------------------------------------------------------------------------------
    def _fit(self, X, y, incremental=False, sample_weight=None):
        self._check_settings()
        first_pass = not hasattr(self, "coefs_") or (not self.warm_start and not incremental)
        X, y = self._validate_input(X, y, incremental, reset=first_pass)
        w = _losses.check_sample_weight(sample_weight, X.shape[0], np.float64)
        if y.ndim == 1:
            y = y.reshape((-1, 1))
        X = np.ascontiguousarray(X, dtype=self._dtype())
        y = np.ascontiguousarray(y, dtype=self._dtype())
        self.n_outputs_ = y.shape[1]
        layer_units = [X.shape[1]] + self._hidden_sizes() + [self.n_outputs_]
        self._check_size(layer_units)
        if not incremental or not hasattr(self, "_inertia_optimizer"):
            self._check_race(X.shape[0], w is not None)
        self._random_state = check_random_state(self.random_state)
        if first_pass:
            self._initialize(y, layer_units)
        elif [c.shape for c in self.coefs_] != list(zip(layer_units[:-1], layer_units[1:])):
            raise ValueError(f"warm start: the fitted layers {[c.shape for c in self.coefs_]} "
                             f"do not fit layer sizes {layer_units}: set warm_start=False")
        if self.early_stopping and incremental:
            raise ValueError("partial_fit does not support early_stopping=True")
        if not incremental or not hasattr(self, "_inertia_optimizer"):
            self._tune_auto(X, y)
            self._inertia_optimizer = self._make_optimizer()
            self._learning_rate = float(self._lr_init())
        diverged = self._fit_stochastic(X, y, incremental, None if w is None else w[:, 0])
        if diverged is not None and self.on_divergence == "raise":
            raise Diverged(diverged[0], diverged[1])
        if diverged is not None and self.early_stopping:
            warnings.warn(f"the loss or the weights became NaN or infinite in epoch "
                          f"{self.n_iter_ + 1}: training stopped; the best validation "
                          "epoch's weights are kept", DivergenceWarning)
        if diverged is not None and not self.early_stopping or \
                not all(np.isfinite(w).all() for w in self.coefs_ + self.intercepts_):
            raise ValueError("Solver produced non-finite parameter weights. The input data may"
                             " contain large values and need to be preprocessed.")
        return self

    def _split(self, X, y, w=None):
        """scikit-learn's early-stopping split: (X_train, y_train, w_train, X_val, y_val,
        w_val); the sample weights w (n,) or None split with their rows."""
        if not self.early_stopping:
            return X, y, w, None, None, None
        stratify = y if is_classifier(self) and self.n_outputs_ == 1 else None
        parts = train_test_split(X, y, *(() if w is None else (w,)),
                                 random_state=self._random_state,
                                 test_size=self.validation_fraction, stratify=stratify)
        X_train, X_val, y_train, y_val = parts[:4]
        w_train, w_val = parts[4:] if w is not None else (None, None)
        if X_val.shape[0] < 2:
            raise ValueError("The validation set is too small. Increase 'validation_fraction' "
                             "or the size of your dataset.")
        if is_classifier(self):
            y_val = self._label_binarizer.inverse_transform(y_val)
        return X_train, y_train, w_train, X_val, y_val, w_val

    def _fit_stochastic(self, X, y, incremental, w=None):
        """scikit-learn's epochs. Returns None, or (Divergence, History) of the epoch whose
        loss or weights stopped being finite (on_divergence "stop" or "raise": the network
        is back at the last finite state and training stopped there)."""
        X_train, y_train, w, X_val, y_val, w_val = self._split(X, y, w)
        diverged = None
        n = X_train.shape[0]
        sample_idx = np.arange(n, dtype=int)
        if self.batch_size == "auto":
            batch_size = min(200, n)
        else:
            if self.batch_size > n:
                warnings.warn("Got `batch_size` less than 1 or larger than sample size. It is "
                              "going to be clipped")
            batch_size = int(np.clip(self.batch_size, 1, n))
        net = self._network()
        opt = self._inertia_optimizer
        self._compiled = None
        if _CompiledEpochs.usable(net, opt, self.lr_schedule or self.momentum_schedule,
                                  w is not None):
            self._compiled = _CompiledEpochs(net, opt, OUTPUTS[self.out_activation_][1],
                                             X_train, y_train,
                                             check=self.on_divergence != "continue",
                                             squares=self.alpha > 0)
        try:
            self.n_iter_ = 0
            for _ in range(self.max_iter):
                if self.shuffle:
                    sample_idx = _shuffled(sample_idx, self._random_state)
                self._set_lr(opt)
                self.loss_ = self._epoch(net, opt, X_train, y_train, sample_idx, batch_size,
                                         w)
                self.n_iter_ += 1
                self.t_ += n
                self.loss_curve_.append(self.loss_)
                if self.verbose:
                    print("Iteration %d, loss = %.8f" % (self.n_iter_, self.loss_))
                self._read_network(net)
                if self._end_of_epoch(X_val, y_val, w_val) or incremental:
                    break
                if self.n_iter_ == self.max_iter:
                    warnings.warn("Stochastic Optimizer: Maximum iterations (%d) reached and "
                                  "the optimization hasn't converged yet." % self.max_iter,
                                  ConvergenceWarning)
        except KeyboardInterrupt:
            warnings.warn("Training interrupted by user.")
            self._read_network(net)
        except _Stopped as stop:
            self._read_network(net)
            diverged = (stop.args[0]._replace(epoch=self.n_iter_), stop.args[1])
        self._compiled = None           # its buffers are not kept (nor pickled)
        if self.early_stopping:
            self.coefs_ = self._best_coefs
            self.intercepts_ = self._best_intercepts
        return diverged

    def _end_of_epoch(self, X_val, y_val, w_val=None):
        """The no-improvement count, the learning-rate rule and the stopping decision of
        scikit-learn's epoch end. Returns True to stop."""
        self._update_no_improvement_count(X_val, y_val, w_val)
        if self.learning_rate == "invscaling":
            self._learning_rate = float(self._lr_init()) / (self.t_ + 1) ** self.power_t
        if self._no_improvement_count > self.n_iter_no_change:
            what = "Validation score" if self.early_stopping else "Training loss"
            msg = ("%s did not improve more than tol=%f for %d consecutive epochs."
                   % (what, self.tol, self.n_iter_no_change))
            if self.learning_rate != "adaptive":
                if self.verbose:
                    print(msg + " Stopping.")
                return True
            if self._learning_rate <= MIN_ADAPTIVE_LR:
                if self.verbose:
                    print(msg + " Learning rate too small. Stopping.")
                return True
            self._learning_rate /= 5.0
            if self.verbose:
                print(msg + " Setting learning rate to %f" % self._learning_rate)
            self._no_improvement_count = 0
        return False

    def _update_no_improvement_count(self, X_val, y_val, w_val=None):
        if self.early_stopping:
            score = self._score(X_val, y_val, w_val)
            self.validation_scores_.append(score)
            if self.verbose:
                print("Validation score: %f" % score)
            if score < self.best_validation_score_ + self.tol:
                self._no_improvement_count += 1
            else:
                self._no_improvement_count = 0
            if score > self.best_validation_score_:
                self.best_validation_score_ = score
                self._best_coefs = [c.copy() for c in self.coefs_]
                self._best_intercepts = [b.copy() for b in self.intercepts_]
        else:
            if self.loss_curve_[-1] > self.best_loss_ - self.tol:
                self._no_improvement_count += 1
            else:
                self._no_improvement_count = 0
            if self.loss_curve_[-1] < self.best_loss_:
                self.best_loss_ = self.loss_curve_[-1]

    def _epoch(self, net, opt, X, y, sample_idx, batch_size, w=None):
        """One epoch over the rows in ``sample_idx`` order, as one ``fit`` call; returns
        scikit-learn's epoch loss: the batch losses, each with its L2 term
        ``alpha / (2 m) * sum of squared weights`` from the weights before the batch's
        update, weighted by batch size, over n. ``fit(record_steps=True)`` gives both per
        step (the compiled loop sums the squares in its update pass). With sample weights w
        (n,), m is the batch's weight sum, as in scikit-learn's ``_backprop``."""
        n = X.shape[0]
        batch_size = min(batch_size, n)
        starts = np.arange(0, n, batch_size, dtype=np.int64)
        counts = np.minimum(batch_size, n - starts)
        w_order = None if w is None else w[sample_idx]
        if self._compiled is not None:
            step_loss, weights_sq = self._compiled.epoch(sample_idx.astype(np.int64, copy=False),
                                                         starts, counts)
        else:
            hist = self._run(net, opt, X[sample_idx], y[sample_idx], batch_size,
                             sample_weight=w_order)
            step_loss = np.asarray(hist.step_loss, dtype=np.float64)
            weights_sq = np.asarray(hist.step_weights_sq)
        batch_losses = step_loss * self._loss_scale()
        if self.alpha > 0:
            m = counts if w_order is None else np.add.reduceat(w_order, starts)
            batch_losses += (0.5 * self.alpha) * weights_sq / m
        return float(np.dot(batch_losses, counts)) / n

    def _loss_scale(self):
        """inertia's loss to scikit-learn's: squared loss / k, multilabel log loss * k."""
        loss = OUTPUTS[self.out_activation_][1]
        if loss == "quadratic":
            return 1.0 / self.n_outputs_
        if loss == "bce":
            return float(self.n_outputs_)
        return 1.0

    def _run(self, net, opt, X, y, batch_size, sample_weight=None):
        """``inertia.fit`` for one epoch of (X, y) in this order, recording every step
        (``History.step_loss``, ``History.step_weights_sq``); returns its History."""
        loss = OUTPUTS[self.out_activation_][1]
        lr_schedule = momentum_schedule = None
        if self.lr_schedule is not None:
            scale = self._gradient_scale() if self.optimizer in ("sgd", "qhm", "aggmo") else 1
            lr_schedule = (lambda t, f=self.lr_schedule, s=scale: f(t) * s)
        if self.momentum_schedule is not None:
            momentum_schedule = self.momentum_schedule
        policy = "continue" if self.on_divergence == "continue" else "stop"
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", DivergenceWarning)    # told by _fit
            try:
                hist = _inertia_fit(net, X, y, loss=loss, optimizer=opt, epochs=1,
                                    batch_size=batch_size, shuffle=False, progress=False,
                                    lr_schedule=lr_schedule,
                                    momentum_schedule=momentum_schedule, on_divergence=policy,
                                    sample_weight=sample_weight, record_steps=True)
            except ValueError as ex:      # an all-zero batch: each epoch is one fit call
                raise ValueError(str(ex).replace(" of epoch 1 (", " of an epoch (", 1)) \
                    from None
        if hist.diverged is not None:
            raise _Stopped(hist.diverged, hist)
        return hist

    # prediction ---------------------------------------------------------------------------
    def _forward(self, X, check_input=True):
        """The output layer's activations (n_samples, n_outputs)."""
        if check_input:
            X = validate_data(self, X, reset=False, dtype=(np.float64, np.float32))
        X = np.ascontiguousarray(X, dtype=self._dtype())
        return self._network().predict(X)

    def _score_with_function(self, X, y, score_function, sample_weight=None):
        y_pred = self._predict(X, check_input=False)
        if np.issubdtype(y_pred.dtype, np.floating) and not np.isfinite(y_pred).all():
            return np.nan
        return score_function(y, y_pred, sample_weight=sample_weight)


class MLPClassifier(ClassifierMixin, _BaseMLP):
    """scikit-learn's ``MLPClassifier(solver="sgd")`` trained by inertia.

    Parameters as scikit-learn's (``hidden_layer_sizes``, ``activation``, ``alpha``,
    ``batch_size``, ``learning_rate``, ``learning_rate_init``, ``power_t``, ``max_iter``,
    ``shuffle``, ``random_state``, ``tol``, ``verbose``, ``warm_start``, ``momentum``,
    ``nesterovs_momentum``, ``early_stopping``, ``validation_fraction``, ``n_iter_no_change``),
    plus inertia's:

    convention   the momentum convention of ``inertia.SGD`` (default "sklearn": exact to
                 scikit-learn); with another convention ``alpha`` stays alpha W / n_batch on
                 the weights
                 (``nesterovs_momentum`` is ignored by "previous_delta", which has no
                 Nesterov form)
    optimizer    "sgd", "qhm", "aggmo", "adam", "adamw" (all but "sgd" need alpha=0; use
                 weight_decay); "qhm" takes ``momentum`` as its beta (nu 0.7), "aggmo" its
                 default betas (0, 0.9, 0.99), "adam"/"adamw" torch's defaults; none of them
                 reads ``nesterovs_momentum``
    weight_decay the optimizer's own decay in its convention (give alpha or weight_decay)
    dampening    PyTorch's dampening (convention "pytorch")
    learning_rate_init="auto", momentum="auto"   (either or both; optimizer="sgd") chosen by
                 ``inertia.tune(method="race")`` on the initialised network, the training
                 data, max_iter epochs and the batch size before the first epoch (a number
                 given for the other stays fixed); the choice is in ``learning_rate_``,
                 ``momentum_`` and ``tuned_`` (a ``TuneSummary``: the values and the cost)
    engine, device, dtype   inertia's engine ("numpy", "torch"), its device, "float64"/"float32"
    lr_schedule, momentum_schedule   callables from step to value (``inertia.schedules``);
                 lr_schedule replaces the ``learning_rate`` rule

    Fitted attributes as scikit-learn's: ``classes_``, ``coefs_`` (n_in, n_out) per layer,
    ``intercepts_``, ``loss_``, ``loss_curve_``, ``best_loss_``, ``validation_scores_``,
    ``best_validation_score_``, ``n_iter_``, ``t_``, ``n_features_in_``,
    ``feature_names_in_``, ``n_outputs_``, ``out_activation_``, ``n_layers_``.
    """

    def _output_activation(self):
        if self._label_binarizer.y_type_ == "multiclass":
            return "softmax"
        return "logistic"

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.classifier_tags.multi_label = True
        return tags

    def _validate_input(self, X, y, incremental, reset):
        X, y = validate_data(self, X, y, multi_output=True, dtype=(np.float64, np.float32),
                             reset=reset)
        if y.ndim == 2 and y.shape[1] == 1:
            y = column_or_1d(y, warn=True)
        if (not hasattr(self, "classes_")) or (not self.warm_start and not incremental):
            self._label_binarizer = LabelBinarizer()
            self._label_binarizer.fit(y)
            self.classes_ = self._label_binarizer.classes_
        else:
            classes = unique_labels(y)
            if self.warm_start:
                if set(classes) != set(self.classes_):
                    raise ValueError("warm_start can only be used where `y` has the same "
                                     "classes as in the previous call to fit. Previously "
                                     f"got {self.classes_}, `y` has {classes}")
            elif len(np.setdiff1d(classes, self.classes_, assume_unique=True)):
                raise ValueError("`y` has classes not in `self.classes_`. "
                                 f"`self.classes_` has {self.classes_}. 'y' has {classes}.")
        y = self._label_binarizer.transform(y).astype(bool)
        return X, y

    def fit(self, X, y, sample_weight=None):
        """Fit to data X (n_samples, n_features) and labels y (n_samples,) or a label
        indicator matrix (n_samples, n_labels), each sample weighted by ``sample_weight``
        ((n_samples,), >= 0; scikit-learn's rule). Returns self."""
        self._validate_params()
        return self._fit(X, y, incremental=False, sample_weight=sample_weight)

    def partial_fit(self, X, y, sample_weight=None, classes=None):
        """One epoch over (X, y) (weighted by ``sample_weight`` when given), keeping the
        velocities, the step count and the learning rate between calls; ``classes`` is
        required on the first call."""
        self._validate_params()
        if _check_partial_fit_first_call(self, classes):
            self._label_binarizer = LabelBinarizer()
            if type_of_target(y).startswith("multilabel"):
                self._label_binarizer.fit(y)
            else:
                self._label_binarizer.fit(classes)
        return self._fit(X, y, incremental=True, sample_weight=sample_weight)

    def _predict(self, X, check_input=True):
        y_pred = self._forward(X, check_input=check_input)
        if self.n_outputs_ == 1:
            y_pred = y_pred.ravel()
        return self._label_binarizer.inverse_transform(y_pred)

    def predict(self, X):
        """Class labels (n_samples,) or a label indicator matrix for multilabel fits."""
        check_is_fitted(self)
        return self._predict(X)

    def _score(self, X, y, sample_weight=None):
        return self._score_with_function(X, y, accuracy_score, sample_weight)

    def predict_proba(self, X):
        """Probabilities (n_samples, n_classes) in the order of ``classes_``."""
        check_is_fitted(self)
        y_pred = self._forward(X)
        if self.n_outputs_ == 1:
            y_pred = y_pred.ravel()
        if y_pred.ndim == 1:
            return np.vstack([1 - y_pred, y_pred]).T
        return y_pred

    def predict_log_proba(self, X):
        """log(predict_proba(X))."""
        y_prob = self.predict_proba(X)
        return np.log(y_prob, out=y_prob)


class MLPRegressor(RegressorMixin, _BaseMLP):
    """scikit-learn's ``MLPRegressor(solver="sgd")`` (squared error) trained by inertia.

    Parameters and fitted attributes as ``MLPClassifier`` (without ``classes_``); the output
    layer is linear (scikit-learn's "identity") and the loss inertia's ``quadratic``.
    """

    def _output_activation(self):
        return "identity"

    def _validate_input(self, X, y, incremental, reset):
        X, y = validate_data(self, X, y, multi_output=True, y_numeric=True,
                             dtype=(np.float64, np.float32), reset=reset)
        if y.ndim == 2 and y.shape[1] == 1:
            y = column_or_1d(y, warn=True)
        return X, y

    def fit(self, X, y, sample_weight=None):
        """Fit to data X (n_samples, n_features) and targets y (n_samples,) or
        (n_samples, n_outputs), each sample weighted by ``sample_weight`` ((n_samples,),
        >= 0; scikit-learn's rule). Returns self."""
        self._validate_params()
        return self._fit(X, y, incremental=False, sample_weight=sample_weight)

    def partial_fit(self, X, y, sample_weight=None):
        """One epoch over (X, y) (weighted by ``sample_weight`` when given), keeping the
        velocities, the step count and the learning rate between calls."""
        self._validate_params()
        return self._fit(X, y, incremental=True, sample_weight=sample_weight)

    def _predict(self, X, check_input=True):
        y_pred = self._forward(X, check_input=check_input)
        if y_pred.shape[1] == 1:
            return y_pred.ravel()
        return y_pred

    def predict(self, X):
        """Predictions (n_samples,) or (n_samples, n_outputs)."""
        check_is_fitted(self)
        return self._predict(X)

    def _score(self, X, y, sample_weight=None):
        return self._score_with_function(X, y, r2_score, sample_weight)
