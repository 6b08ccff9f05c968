"""Choosing the learning rate and the momentum: ``inertia.tune`` (this package's ``tune``).

``tune(net, X, y, loss=, epochs=, ...)`` returns a ``TuneResult`` with ``lr``, ``momentum``, an
SGD ready to ``fit`` (``optimizer``), the compute it spent (``cost``, in runs of ``epochs``:
gradient evaluations, rows x passes, over one plain run's) and every configuration it tried
(``trace``). Methods:

race       successive halving over 34 configurations: effective steps lr / (1 - mu)
           log-spaced over three decades from 0.1 / lambda_max, staggered
           over 6 momenta (0 to 0.99); rungs at 1/4 and 1/2 of the epochs and the end
           (``race``); at most ``budget`` runs (default 12, the curvature included); heavy
           ball, or Nesterov's form when the optimizer given has nesterov=True (the momenta
           above 0, the learning rates under Nesterov's stability limit)
curvature  about 20 Hessian-vector products and no training (``curvature``): Polyak's pair
           when a lambda_min estimate is reliable, else momentum 0.9 and a fraction of
           heavy ball's stability limit (``curvature.choose``)
range      a learning-rate range test with momentum 0.9 (``range_test``)

YellowFin (``yellowfin``) is reproduced as a baseline for the benchmark, not offered here.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np

from ..ops import losses
from ..network import all_finite, check_network
from ..training.plan import _check_data, check_seed
from ..optim.sgd import SGD
from ..optim.translate import NotRepresentable
from . import curvature as _curv
from . import race as _race
from . import range_test as _range

METHODS = ("race", "curvature", "range")
RANGE_STEPS = 100
RACE_ITERS = 10         # Lanczos steps for the race's grid centre (lambda_max alone)
CURVATURE_ITERS = 20    # and for method="curvature" (both ends)


@dataclass(frozen=True)
class TuneSummary:
    """What ``tune`` chose, in short (``History.tuned`` after a ``fit`` with "auto").

    lr, momentum   the choice in the convention of the optimizer tuned for
    convention     that convention's name
    method         "race", "curvature" or "range"
    cost           the compute spent, in runs of ``epochs``
    configs        configurations tried;  epochs  the epochs of one run
    nesterov       whether the choice is for Nesterov's form
    """

    lr: float
    momentum: float
    convention: str
    method: str
    cost: float
    configs: int
    epochs: int
    nesterov: bool = False

    def __str__(self):
        tried = f"{self.configs} configurations, " if self.configs else ""
        form = "Nesterov, " if self.nesterov else ""
        return (f"tuned ({self.method}): lr={self.lr:.4g} momentum={self.momentum:g} "
                f"({form}{self.convention} convention); cost {tried}{self.cost:.2f} runs of "
                f"{self.epochs} epochs")


@dataclass
class TuneResult:
    """What ``tune`` chose and how.

    lr, momentum   the choice (PyTorch's and Keras's meaning: b = mu b + g; w -= lr b)
    optimizer      an ``inertia.SGD`` with them, in the convention of the optimizer passed
                   to ``tune`` (PyTorch's when none was), without state: ready to ``fit``
    cost           gradient evaluations spent (rows x passes) over those of one run of
                   ``epochs``; validation passes (forward only) are not counted
    trace          every configuration tried: dicts with lr, momentum, loss (training loss per
                   epoch), val_loss, diverged (epoch or None), dropped_at (rung or None),
                   entered (the first rung it was trained to: 0, or the last rung for the
                   race's slowed leader), score (mean loss over its last 10% of epochs)
    method         "race", "curvature" or "range"
    rungs          the race's [(epochs, configurations trained to it)], else []
    curvature      the ``curvature.Curvature`` measured, or None
    range_test     the ``range_test.RangeTest``, or None
    net            the race's winner, trained for ``epochs``, or None
    epochs         the epochs of one run (what ``cost`` counts in)
    """

    lr: float
    momentum: float
    optimizer: SGD
    cost: float
    trace: list = field(default_factory=list)
    method: str = "race"
    rungs: list = field(default_factory=list)
    curvature: object = None
    range_test: object = None
    net: object = None

    epochs: int = 0

    def summary(self):
        """A ``TuneSummary``: the choice in the result optimizer's convention, the cost."""
        c = self.optimizer.config()
        return TuneSummary(c["lr"], c["momentum"], c["convention"], self.method, self.cost,
                           len(self.trace), self.epochs, c["nesterov"])

    def plot(self, path="tune.png"):
        """Draw the result (the race: survivors on the lr x momentum grid and their loss
        curves; the range test: loss against lr) into ``path`` (PNG). Returns the path."""
        from .plot import draw

        return draw(self, path)


def _grid_maker(lr, momentum, method, optimizer):
    """The race's grid as a function of the centre learning rate, for "auto" or fixed ``lr``
    and ``momentum`` (numbers in ``optimizer``'s convention), and whether lr is fixed.
    Checks both (one-line ValueError)."""
    if optimizer is not None and not isinstance(optimizer, SGD):
        raise ValueError(f"optimizer must be an inertia.SGD (its convention is kept), got "
                         f"{type(optimizer).__name__}")
    for name, x in (("lr", lr), ("momentum", momentum)):
        if not (isinstance(x, str) and x == "auto"):
            if isinstance(x, str):
                raise ValueError(f'{name} must be "auto" or a number, got {x!r}')
            SGD(**{"lr": 1.0, "momentum": 0.0, name: x})     # a one-line error when invalid
    fixed = [name for name, x in (("lr", lr), ("momentum", momentum)) if x != "auto"]
    if len(fixed) == 2:
        raise ValueError("lr and momentum are both fixed: nothing to tune; pass lr=\"auto\" "
                         "or momentum=\"auto\"")
    if fixed and (method == "curvature" or method == "range" and fixed == ["lr"]):
        raise ValueError(f"method={method!r} cannot keep {fixed[0]} fixed: use method='race'")
    momenta = _race.MOMENTA if momentum == "auto" else (float(momentum),)
    nesterov = _nesterov(optimizer)
    if nesterov:
        momenta = tuple(m for m in momenta if m > 0) or momenta     # Nesterov needs mu > 0
    if lr == "auto":
        return (lambda center: _race.grid(center, momenta=momenta, nesterov=nesterov)), False
    pairs = [(_pytorch_lr(float(lr), mu, optimizer), mu) for mu in momenta]
    return (lambda center: pairs), True


def _pytorch_lr(lr, mu, optimizer):
    """The PyTorch-convention learning rate of ``lr`` with momentum ``mu`` in
    ``optimizer``'s convention (the same number in every convention but "ema")."""
    if optimizer is None or optimizer.convention.name == "pytorch":
        return lr
    from ..optim.translate import translate

    return translate(SGD(lr=lr, momentum=mu, nesterov=_nesterov(optimizer) and mu > 0,
                         convention=optimizer.convention.name), to="pytorch").lr


def _nesterov(optimizer):
    """Whether the race trains Nesterov's form: the optimizer's, when it has a momentum."""
    return bool(optimizer is not None and optimizer.nesterov)


def check_settings(epochs, batch_size=None, budget=None, method="race", optimizer=None,
                   lr="auto", momentum="auto"):
    """``tune``'s checks of the settings that need no data or network (one-line
    ValueErrors): what ``inertia tune`` runs before it reads the data."""
    make_grid, _ = _grid_maker(lr, momentum, method, optimizer)
    _check_settings(epochs, batch_size, budget, method, optimizer, len(make_grid(1.0)),
                    momentum=momentum)


def curvature_runs(n, epochs, iters):
    """The most the curvature estimate of ``iters`` Lanczos steps costs, in runs of
    ``epochs`` over n rows (``curvature.estimate``: two gradients of at most its max_rows
    rows a step)."""
    return 2 * iters * min(n, _curv.MAX_ROWS) / (n * epochs)


def _check_settings(epochs, batch_size, budget, method, optimizer, n_configs=None,
                    curv_runs=0.0, momentum="auto"):
    """The settings' checks (``n_configs``: the race's grid size, and ``curv_runs``: the
    most the curvature estimate costs, both for the budget)."""
    if method not in METHODS:
        raise ValueError(f"unknown method {method!r}: choose one of {', '.join(METHODS)}")
    if not isinstance(epochs, (int, np.integer)) or isinstance(epochs, bool) or epochs < 1:
        raise ValueError(f"epochs must be a positive integer, got {epochs!r}")
    if batch_size is not None and (not isinstance(batch_size, (int, np.integer))
                                   or isinstance(batch_size, bool) or batch_size < 1):
        raise ValueError(f"batch_size must be a positive integer or None, got {batch_size!r}")
    if budget is not None and (isinstance(budget, bool) or not isinstance(
            budget, (int, float, np.integer, np.floating)) or not budget > 0
            or not math.isfinite(budget)):
        raise ValueError(f"budget must be a positive number of runs, got {budget!r}")
    if budget is not None and method != "race":
        raise ValueError(f"budget applies to method='race' only; method={method!r} spends a "
                         "fixed small amount")
    if budget is not None:                 # a budget too small for the race: say so now
        n = n_configs or len(_race.grid(1.0))
        least = _race.least_budget(n, int(epochs)) + curv_runs
        if budget < least - 1e-12:
            raise ValueError(f"budget={budget:g} runs cannot pay for the curvature estimate "
                             f"and a race of {n} configurations over {epochs} epochs: give "
                             f"budget >= {math.ceil(least * 100) / 100}")
    if optimizer is not None and not isinstance(optimizer, SGD):
        raise ValueError(f"optimizer must be an inertia.SGD (its convention is kept), got "
                         f"{type(optimizer).__name__}")
    extra = [k for k in ("dampening", "weight_decay")
             if optimizer is not None and getattr(optimizer, k)]
    if extra:
        raise ValueError(f"inertia.tune chooses lr and momentum for momentum SGD (heavy ball "
                         f"or Nesterov), not with {', '.join(extra)}: pass an SGD without "
                         "them, or choose lr and momentum with a sweep (inertia.sweep)")
    if _nesterov(optimizer) and method != "race":
        raise ValueError(f"method={method!r} chooses heavy ball's lr and momentum; Nesterov's "
                         "(nesterov=True) are chosen by method='race'")
    if optimizer is None or (momentum == 0 and method != "curvature"):
        return
    try:                       # the convention can hold the momentum the tuner chooses
        _in_convention(0.01, 0.5, optimizer)
    except NotRepresentable as ex:
        raise ValueError(f"inertia.tune cannot choose a momentum in the "
                         f"{optimizer.convention.name} convention ({ex}): give momentum=0 to "
                         "choose lr alone, or tune in another convention") from None


def _check_args(net, X, y, loss, epochs, batch_size, validation_data, budget, method,
                optimizer, n_configs=None, momentum="auto", seed=None):
    """Every argument checked before any work; returns (X, y, validation pair or None)."""
    _check_settings(epochs, batch_size, budget, method, optimizer, n_configs,
                    momentum=momentum)
    check_network(net, "tune")
    check_seed(seed)
    losses.check(loss, net.output_activation)
    X, y = _check_data(net, X, y, loss)
    if budget is not None:
        _check_settings(epochs, batch_size, budget, method, optimizer, n_configs,
                        curvature_runs(X.shape[0], epochs, RACE_ITERS), momentum)
    val = None
    if validation_data is not None:
        if not (isinstance(validation_data, (tuple, list)) and len(validation_data) == 2):
            raise ValueError("validation_data must be a pair (X_val, y_val)")
        val = _check_data(net, validation_data[0], validation_data[1], loss, name="X_val")
    one_step = batch_size is None or batch_size >= X.shape[0]
    if method == "race" and one_step and val is None and _race.rung_ends(epochs)[0] == 1:
        least = next(e for e in range(2, 100) if _race.rung_ends(e)[0] > 1)
        raise ValueError(f"the race cannot rank configurations at full batch over {epochs} "
                         f"epoch{'s' * (epochs != 1)}: its first rung stands at epoch 1, "
                         "whose loss (taken before the epoch's one step) is the same for all: "
                         f"give epochs >= {least}, mini-batches or validation data")
    return X, y, val


def _in_convention(lr, momentum, optimizer):
    """An SGD with (lr, momentum) in ``optimizer``'s convention (PyTorch's when None)."""
    from ..optim.translate import translate

    chosen = SGD(lr=lr, momentum=momentum, nesterov=_nesterov(optimizer) and momentum > 0)
    if optimizer is None:
        return chosen
    return translate(chosen, to=optimizer.convention.name)


def _trace(configs):
    return [{"lr": c.lr, "momentum": c.momentum, "loss": list(c.loss), "val_loss": list(c.val),
             "diverged": c.diverged, "dropped_at": c.dropped_at, "entered": c.entered,
             "score": _race.score(c.curve())} for c in configs]


def tune(net, X, y, loss, epochs, batch_size=None, validation_data=None, budget=None,
         method="race", optimizer=None, seed=None, lr="auto", momentum="auto"):
    """Choose the learning rate and the momentum for training ``net`` on (X, y).

    net              an ``inertia.Network``; its weights are the starting point of every
                     trial and are not changed
    loss, epochs, batch_size, validation_data
                     as for ``inertia.fit``: the training the choice is for
    budget           the race's compute limit, in runs of ``epochs`` (default 12; for runs
                     of very few epochs, where 12 cannot pay for the rungs, their least cost
                     plus one run)
    method           "race", "curvature" or "range" (module docstring)
    optimizer        an ``inertia.SGD`` whose convention the result's optimizer takes, and
                     its Nesterov form (method="race" only)
    seed             the seed of the shuffling and of the curvature's random start
    lr, momentum     "auto" (default: chosen) or a number kept fixed, in the convention of
                     ``optimizer`` (PyTorch's when None): the race then searches the other
                     one alone (up to 13 learning rates, those under twice the stability
                     limit at the fixed momentum, or 6 momenta); method="range" takes a
                     fixed momentum; method="curvature" chooses both

    Returns a ``TuneResult``. Bad arguments raise a one-line ValueError before any work."""
    make_grid, fixed_lr = _grid_maker(lr, momentum, method, optimizer)
    X, y, val = _check_args(net, X, y, loss, epochs, batch_size, validation_data, budget,
                            method, optimizer, len(make_grid(1.0)), momentum, seed)
    seed = 0 if seed is None else seed
    run_evals = X.shape[0] * epochs
    with_min = method == "curvature"        # lambda_min too: more Lanczos steps
    curv = _curv.estimate(net, X, y, loss, iters=CURVATURE_ITERS if with_min else RACE_ITERS,
                          with_min=with_min, seed=seed)
    lr_center = 1.0 / curv.lambda_max if curv.lambda_max > 0 else 1.0
    if method == "curvature":
        lr, mu = _curv.choose(curv, minibatch=batch_size is not None
                              and batch_size < X.shape[0])
        return TuneResult(lr, mu, _in_convention(lr, mu, optimizer),
                          curv.gradient_evals / run_evals, method=method, curvature=curv,
                          epochs=epochs)
    if method == "range":
        mu = _curv.DEFAULT_MOMENTUM if momentum == "auto" else float(momentum)
        rt = _range.range_test(net, X, y, loss, lr_center * 1e-3, lr_center * 1e2,
                               steps=RANGE_STEPS, momentum=mu, batch_size=batch_size,
                               seed=seed)
        return TuneResult(rt.lr, mu, _in_convention(rt.lr, mu, optimizer),
                          (rt.gradient_evals + curv.gradient_evals) / run_evals,
                          method=method, curvature=curv, range_test=rt, epochs=epochs)
    initial_loss = net.loss(X, y, loss)
    if budget is None:         # a short run: what the rungs need at the least, and a run
        budget = max(_race.DEFAULT_BUDGET, _race.least_budget(len(make_grid(1.0)), epochs)
                     + curv.gradient_evals / run_evals + 1.0)
    budget = float(budget)
    winner, configs, rungs, spent = _race.race(
        net, X, y, loss, epochs, batch_size, val, budget - curv.gradient_evals / run_evals,
        seed, lr_center, initial_loss, make_grid, 0 if fixed_lr else _race.RETRIES,
        slow=not fixed_lr, nesterov=_nesterov(optimizer))
    cost = (spent * X.shape[0] + curv.gradient_evals) / run_evals
    return TuneResult(winner.lr, winner.momentum,
                      _in_convention(winner.lr, winner.momentum, optimizer), cost,
                      _trace(configs), method, rungs, curv, net=winner.net, epochs=epochs)


__all__ = ["tune", "check_settings", "TuneResult", "TuneSummary", "METHODS"]

