"""SGD with momentum in every framework's convention: hyperparameters, state and step counting
around the one statement of the step, ``rule.sgd`` (see rule.py).

The step never sees a gradient array on the fused path: ``rule.drive_`` receives
``acc(alpha, beta, out)``, which computes ``out := alpha * g + beta * out`` (in a dense layer:
one gemm for the weights, one gemv for the biases). So ``v = mu v - lr g`` is a single gemm
with beta = mu, and training with momentum makes exactly as many engine calls as training
without. ``update_`` and ``coefficients`` are the rule's two readings for one parameter.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np

from . import conventions as _conv
from . import rule as _rule
from .base import Optimizer


@dataclass
class SGDState:
    """Optimizer state: explicit, so that a test can set and read it.

    step      number of updates taken
    started   whether a step with momentum > 0 has run (PyTorch's first buffer is g itself)
    velocity  one buffer per parameter, shaped like it (b in the lr-outside form, v in the
              lr-inside form, the previous delta lr g for ``previous_delta``)
    last_lr   the learning rate of the previous step (for momentum correction)
    """

    step: int = 0
    started: bool = False
    velocity: list = field(default_factory=list)
    last_lr: float | None = None


def _is_auto(x):
    return isinstance(x, str) and x == "auto"


def check_hyper(conv, lr, momentum, dampening, nesterov, weight_decay):
    """Raise a one-line ValueError for impossible hyperparameters. lr and momentum may be
    the placeholder "auto" (chosen by ``inertia.tune`` when ``fit`` starts)."""
    auto_lr, auto_mu = _is_auto(lr), _is_auto(momentum)
    lr, momentum = (1.0 if auto_lr else lr), (0.5 if auto_mu else momentum)
    for name, x in (("lr", lr), ("momentum", momentum), ("dampening", dampening),
                    ("weight_decay", weight_decay)):
        if not isinstance(x, (int, float, np.floating, np.integer)) or isinstance(x, bool) \
                or not math.isfinite(x):
            raise ValueError(f"{name} must be a finite number"
                             + (' or "auto"' if name in ("lr", "momentum") else "")
                             + f", got {x!r}")
    if lr <= 0:
        raise ValueError(f"learning rate must be > 0, got {lr}: pass a positive lr such as 0.01")
    if not 0 <= momentum < 1:
        raise ValueError(f"momentum must be in [0, 1), got {momentum}: 0 is plain SGD, "
                         "0.9 is common")
    if not 0 <= dampening <= 1:
        raise ValueError(f"dampening must be in [0, 1], got {dampening}")
    if weight_decay < 0:
        raise ValueError(f"weight_decay must be >= 0, got {weight_decay}")
    if not isinstance(nesterov, (bool, np.bool_)):
        raise ValueError(f"nesterov must be True or False, got {nesterov!r}")
    if nesterov and dampening != 0:
        raise ValueError("Nesterov momentum requires zero dampening: set dampening=0 or "
                         "nesterov=False")
    if nesterov and momentum == 0:
        raise ValueError("Nesterov momentum requires momentum > 0: set momentum (e.g. 0.9) or "
                         "nesterov=False")
    if dampening != 0 and not conv.dampening:
        raise ValueError(f"the {conv.name!r} convention has no dampening: set dampening=0 or "
                         "use convention='pytorch'")
    if nesterov and conv.nesterov is None:
        raise ValueError(f"the {conv.name!r} convention has no Nesterov form: set "
                         "nesterov=False or pick another convention")
    if weight_decay != 0 and conv.weight_decay is None:
        raise ValueError(f"the {conv.name!r} convention has no weight decay: set "
                         "weight_decay=0 or pick another convention")


def update_(e, conv, lr, mu, dampening, nesterov, wd, p, acc, v, g, is_bias, n, first):
    """Update one parameter ``p`` in place: the engine calls (``rule.drive_``) of the step
    ``rule.sgd`` states.

    e       engine;  conv  Convention
    acc     acc(alpha, beta, out): out := alpha * grad + beta * out
    v       the parameter's velocity buffer;  g  a scratch gradient buffer (Nesterov only)
    n       batch size (for per-n weight decay);  first  PyTorch's first-buffer step
    """
    return _rule.drive_(e, _rule.sgd(conv, lr, mu, dampening, nesterov, wd, is_bias, n, first),
                        p, acc, v, g)


def coefficients(conv, lr, mu, dampening, nesterov, wd, is_bias, n, first, scale=1.0):
    """``rule.sgd`` as the compiled loop reads it: the eight numbers (A, B, C, D, E, F, H,
    look) with

        v' = A v + B g + C w;   w' = D w + E v' + F g + H v;   look: the look-ahead shift

    (v the velocity before the step, g the gradient, look the multiple of v added to the
    parameter before the gradient is taken). ``scale`` is the momentum correction's factor on
    v. lr, mu, n, first and scale may be NumPy arrays of one length (one row a step); the
    result then has shape (len, 8)."""
    lr, mu, n, scale = (np.asarray(x, dtype=np.float64) for x in (lr, mu, n, scale))
    first = np.asarray(first, dtype=bool)
    zero = np.zeros(np.broadcast(lr, mu, n, first, scale).shape)
    step = _rule.sgd(conv, lr + zero, mu + zero, dampening, nesterov, wd, is_bias, n + zero,
                     first | np.zeros(zero.shape, dtype=bool))
    return step.table(scale + zero)


class SGD(Optimizer):
    """Stochastic gradient descent with momentum, in any framework's convention.

    ``SGD(lr, momentum=0.0, dampening=0.0, nesterov=False, weight_decay=0.0,
    convention="pytorch")``

    pytorch   b = mu b + (1 - dampening) (g + wd w), first b = g + wd w;  w -= lr b
              Nesterov: w -= lr (g + wd w + mu b)
    tf1,      b = mu b + (g + wd w), b starts at 0;  w -= lr b;  Nesterov as pytorch
    optax
    ema       v = mu v + (1 - mu) (g + wd w), v starts at 0;  w -= lr v
    keras     w = (1 - lr wd) w;  v = mu v - lr g;  w += v;  Nesterov: w += mu v - lr g
    sklearn   v = mu v - lr (g + (wd / n) w) (weights only);  w += v;  Nesterov as keras
    neanderthal  V = mu V - lr g;  W = (1 - lr wd / n) W + V;  b -= lr g_b (no momentum, no
              decay);  Nesterov: the gradient is taken at the look-ahead point W + mu V
    previous_delta  d = lr g;  w -= d + mu d_prev  (the previous step's lr g only)

    momentum_correction=True rescales the buffer when the learning rate changes (Goyal et al.
    2017): by new_lr / old_lr in the lr-inside form, by old_lr / new_lr in the lr-outside form,
    so that either form follows the other exactly under any learning-rate schedule.

    Here g is the gradient of the loss (a mean over the batch) and n the batch size. The
    optimizer object carries its state (``opt.state``) across ``fit`` calls; the functional
    form ``state = opt.init(params); opt.step(params, grads, state, n=...)`` works on plain
    NumPy arrays in place.
    """

    kind = "sgd"
    HYPER = ("lr", "momentum", "dampening", "nesterov", "weight_decay", "momentum_correction")
    STATE = SGDState
    STATE_LISTS = ("velocity",)

    def __init__(self, lr, momentum=0.0, dampening=0.0, nesterov=False, weight_decay=0.0,
                 convention="pytorch", momentum_correction=False):
        self.convention = _conv.get(convention)
        self._drivers = {}             # rule.driver of rule.sgd by (is_bias, n, started)
        self.tuned = None              # the TuneSummary of the race that chose "auto" values
        super().__init__(lr=lr, momentum=momentum, dampening=dampening, nesterov=nesterov,
                         weight_decay=weight_decay, momentum_correction=momentum_correction)

    def validate(self, h):
        check_hyper(self.convention, h["lr"], h["momentum"], h["dampening"], h["nesterov"],
                    h["weight_decay"])
        if not isinstance(h.get("momentum_correction", False), (bool, np.bool_)):
            raise ValueError("momentum_correction must be True or False")
        if h.get("momentum_correction") and self.convention.previous_delta:
            raise ValueError("the 'previous_delta' convention keeps no velocity to correct: "
                             "set momentum_correction=False")

    def _assign(self, h):
        self.lr, self.momentum = (x if _is_auto(x) else float(x)
                                  for x in (h["lr"], h["momentum"]))
        self.dampening, self.weight_decay = float(h["dampening"]), float(h["weight_decay"])
        self.nesterov = bool(h["nesterov"])
        self.momentum_correction = bool(h.get("momentum_correction", False))

    def config(self) -> dict:
        c = {"lr": self.lr, "momentum": self.momentum, "dampening": self.dampening,
             "nesterov": self.nesterov, "weight_decay": self.weight_decay,
             "convention": self.convention.name}
        if self.momentum_correction:
            c["momentum_correction"] = True
        return c

    def check(self, **changes):
        """Raise if applying ``changes`` (lr, momentum, ...) would give impossible values."""
        h = super().check(**changes)
        h.setdefault("momentum_correction", self.momentum_correction)
        return h

    @property
    def needs_grad_buffer(self) -> bool:
        return _rule.needs_gradient(self.convention, self.nesterov)

    def lookahead_shift(self, is_bias) -> float:
        return _rule.lookahead(self.convention, self.nesterov, self.lr, self.momentum, is_bias)

    def lookahead_velocity(self, j):
        return self.state.velocity[j]

    def _check_step(self, n):
        if self.convention.decay_per_n and self.weight_decay != 0 and n is None:
            raise ValueError(f"the {self.convention.name!r} convention scales weight decay by "
                             "the batch size: pass n=")

    def __setattr__(self, name, value):
        # the cached drivers are made from the attributes: any change (``set``, or a
        # hyperparameter set straight on its attribute, opt.lr = 0.1) drops them
        if name == "convention" and "state" in self.__dict__:
            raise AttributeError("the convention is fixed when the optimizer is made: make a "
                                 "new SGD(convention=...) or translate(opt, to=...)")
        super().__setattr__(name, value)
        if name != "_drivers" and name != "state":
            self.__dict__["_drivers"] = {}

    def __getstate__(self):                 # pickle and deepcopy: the drivers are closures
        return {**self.__dict__, "_drivers": {}}

    def apply_(self, e, j, p, acc, g, is_bias, n):
        st = self.state
        drive = self._drivers.get((is_bias, n, st.started)) or self._driver(is_bias, n)
        if self.momentum_correction and st.last_lr is not None and st.last_lr != self.lr:
            drive(e, p, acc, st.velocity[j], g,
                  _rule.correction(self.convention, st.last_lr, self.lr))
        else:
            drive(e, p, acc, st.velocity[j], g)

    def _driver(self, is_bias, n):
        """``rule.driver`` of ``rule.sgd`` for this step, made once for all weights (or
        biases) of a run of steps with these hyperparameters (the cache is dropped when an
        attribute changes: ``__setattr__``)."""
        key = (is_bias, n, self.state.started)
        if len(self._drivers) >= 8:
            self._drivers.clear()
        drive = self._drivers[key] = _rule.driver(_rule.sgd(
            self.convention, self.lr, self.momentum, self.dampening, self.nesterov,
            self.weight_decay, is_bias, n, not self.state.started))
        return drive

    def finish_step_(self):
        st = self.state
        st.step += 1
        st.started = st.started or self.momentum != 0
        st.last_lr = self.lr

    # compiled training loops ------------------------------------------------------------
    def closed_form(self):
        return _rule.ClosedForm("velocity", self.step_coefficients)

    def step_coefficients(self, lr, mu, n):
        """For a run of steps with learning rates ``lr``, momenta ``mu`` and batch sizes ``n``
        (arrays, one entry a step, the other hyperparameters as now), starting from the
        current state: the closed-form update of every step, ``(weights, biases)`` each of
        shape (steps, 8) (see ``coefficients``)."""
        st = self.state
        lr, mu = np.asarray(lr, dtype=np.float64), np.asarray(mu, dtype=np.float64)
        moved = np.logical_or.accumulate(mu != 0)
        first = ~np.concatenate(([st.started], st.started | moved[:-1]))
        scale = np.ones_like(lr)
        if self.momentum_correction:
            prev = np.concatenate(([lr[0] if st.last_lr is None else st.last_lr], lr[:-1]))
            scale = np.where(prev != lr, _rule.correction(self.convention, prev, lr), 1.0)
        args = (self.convention, lr, mu, self.dampening, self.nesterov, self.weight_decay)
        return (coefficients(*args, False, n, first, scale),
                coefficients(*args, True, n, first, scale))

    def advance_(self, steps, lr, mu):
        """Record ``steps`` steps taken by a compiled loop (lr, mu: their values)."""
        st = self.state
        st.step += int(steps)
        st.started = bool(st.started or np.any(np.asarray(mu) != 0))
        st.last_lr = float(np.asarray(lr).reshape(-1)[-1])

    def lookahead_point(self, params, state: SGDState):
        """Copies of params shifted to their look-ahead points (``rule.shift``; parameters
        without momentum stay): where the look-ahead Nesterov form takes its gradient."""
        out = []
        for p, v in zip(params, state.velocity):
            q = np.array(p, copy=True)
            look = self.lookahead_shift(np.ndim(p) == 1)
            if look:
                q += look * v
            out.append(q)
        return out
