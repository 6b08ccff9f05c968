"""Momentum's relatives: quasi-hyperbolic momentum (QHM) and aggregated momentum (AggMo)."""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np

from . import rule as _rule
from .base import Optimizer


def _number(name, x, lo=None, hi=None, lo_open=False, hi_open=False):
    if not isinstance(x, (int, float)) or isinstance(x, bool) or not math.isfinite(x):
        raise ValueError(f"{name} must be a finite number, got {x!r}")
    if lo is not None and (x < lo or (lo_open and x == lo)):
        raise ValueError(f"{name} must be {'>' if lo_open else '>='} {lo}, got {x}")
    if hi is not None and (x > hi or (hi_open and x == hi)):
        raise ValueError(f"{name} must be {'<' if hi_open else '<='} {hi}, got {x}")
    return float(x)


@dataclass
class QHMState:
    step: int = 0
    buffer: list = field(default_factory=list)


class QHM(Optimizer):
    """Quasi-hyperbolic momentum (Ma & Yarats 2019), as facebookresearch/qhoptim's QHM:

        g   = g + wd w                       (coupled weight decay)
        buf = beta buf + (1 - beta) g        (buf starts at 0)
        w  -= lr ((1 - nu) g + nu buf)

    nu = 0 is plain SGD, nu = 1 the EMA momentum (convention "ema"), nu = beta PyTorch's
    Nesterov with the learning rate scaled by (1 - beta).
    """

    kind = "qhm"
    HYPER = ("lr", "momentum", "nu", "weight_decay")
    STATE = QHMState
    STATE_LISTS = ("buffer",)

    def __init__(self, lr, momentum=0.999, nu=0.7, weight_decay=0.0):
        super().__init__(lr=lr, momentum=momentum, nu=nu, weight_decay=weight_decay)

    def validate(self, h):
        _number("lr", h["lr"], 0, lo_open=True)
        _number("momentum", h["momentum"], 0, 1, hi_open=True)
        _number("nu", h["nu"], 0, 1)
        _number("weight_decay", h["weight_decay"], 0)

    @property
    def needs_grad_buffer(self):
        return self.nu != 1.0

    def apply_(self, e, j, p, acc, g, is_bias, n):
        step = _rule.qhm(self.lr, self.momentum, self.nu, self.weight_decay)
        return _rule.drive_(e, step, p, acc, self.state.buffer[j], g)

    # compiled training loops (see SGD.step_coefficients)
    def closed_form(self):
        return _rule.ClosedForm("buffer", self.step_coefficients)

    def step_coefficients(self, lr, mu, n):
        """The rows (A, B, C, D, E, F, H, look) of ``rule.qhm`` for a run of steps with
        learning rates ``lr``, momenta ``mu`` and batch sizes ``n`` (one entry a step):
        ``(weights, biases)``, equal (QHM treats biases as weights)."""
        lr, beta = np.asarray(lr, dtype=np.float64), np.asarray(mu, dtype=np.float64)
        zero = np.zeros(np.broadcast(lr, beta, n).shape)
        out = _rule.qhm(lr + zero, beta + zero, self.nu, self.weight_decay).table()
        return out, out.copy()


@dataclass
class AggMoState:
    step: int = 0
    velocity: list = field(default_factory=list)   # K per parameter: index k * P + j


class AggMo(Optimizer):
    """Aggregated momentum (Lucas, Sun, Zemel & Grosse 2019), as the authors' PyTorch code:

        g    = g + wd w
        for each beta_k:  b_k = beta_k b_k + g;  w -= (lr / K) b_k     (b_k start at 0)

    K velocities with damping factors ``betas`` (default [0, 0.9, 0.99]), averaged.
    """

    kind = "aggmo"
    HYPER = ("lr", "betas", "weight_decay")
    STATE = AggMoState
    STATE_LISTS = ("velocity",)

    def __init__(self, lr, betas=(0.0, 0.9, 0.99), weight_decay=0.0):
        super().__init__(lr=lr, betas=betas, weight_decay=weight_decay)

    def validate(self, h):
        _number("lr", h["lr"], 0, lo_open=True)
        _number("weight_decay", h["weight_decay"], 0)
        betas = h["betas"]
        if not isinstance(betas, (list, tuple)) or not betas:
            raise ValueError(f"betas must be a non-empty list of numbers in [0, 1), got "
                             f"{betas!r}")
        for b in betas:
            _number("each beta", b, 0, 1, hi_open=True)
        if len(set(float(b) for b in betas)) != len(betas):
            raise ValueError(f"betas must be distinct, got {list(betas)}: each beta is one "
                             "velocity, as in the reference AggMo code (keyed by beta)")
        if getattr(self, "state", None) is not None and len(betas) != len(self.betas):
            raise ValueError("the number of betas cannot change while the optimizer has a "
                             "state: call opt.reset() first")

    def _assign(self, h):
        self.lr, self.weight_decay = float(h["lr"]), float(h["weight_decay"])
        betas = tuple(float(b) for b in h["betas"])
        if getattr(self, "state", None) is not None and len(betas) != len(self.betas):
            raise ValueError("the number of betas cannot change while the optimizer has a "
                                 "state: call opt.reset() first")
        self.betas = betas

    def config(self):
        return {"lr": self.lr, "betas": list(self.betas), "weight_decay": self.weight_decay}

    def slots(self, name):
        return len(self.betas)

    @property
    def needs_grad_buffer(self):
        return True

    def apply_(self, e, j, p, acc, g, is_bias, n):
        vel = self.state.velocity
        P = len(vel) // len(self.betas)
        acc(1.0, 0.0, g)
        if self.weight_decay:
            e.axpy(self.weight_decay, p, g)
        scale = -self.lr / len(self.betas)
        for k, beta in enumerate(self.betas):
            b = vel[k * P + j]
            e.axpby(1.0, g, beta, b)
            e.axpy(scale, b, p)
        return p
