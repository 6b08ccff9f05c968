"""Divergence: the warning and the error, the record, and the one-step-back copy of the
engine loop's parameters and optimizer state."""

from __future__ import annotations

import math
import warnings
from typing import NamedTuple

POLICIES = ("stop", "raise", "continue")


class DivergenceWarning(RuntimeWarning):
    """A training run's loss or parameters became NaN or infinite and training stopped."""


class Divergence(NamedTuple):
    """Where a run diverged: the epoch and the step within it (both from 0) whose loss or
    updated parameters were not finite, and that step's loss."""

    epoch: int
    step: int
    loss: float

    def describe(self):
        return (f"the loss diverged to {self.loss} at epoch {self.epoch + 1}, step "
                f"{self.step + 1}" if not math.isfinite(self.loss) else
                f"the parameters became non-finite at epoch {self.epoch + 1}, step "
                f"{self.step + 1}")


class Diverged(RuntimeError):
    """Raised by ``fit(..., on_divergence="raise")``; ``.diverged`` is the Divergence and
    ``.history`` the History up to it. The network holds the last finite state."""

    def __init__(self, diverged, history):
        super().__init__(message(diverged))
        self.diverged = diverged
        self.history = history


def message(d):
    return (f"{d.describe()}; training stopped and the network keeps its last finite state: "
            "try a smaller learning rate (lr)")


def check_policy(on_divergence):
    if on_divergence not in POLICIES:
        raise ValueError(f"on_divergence must be one of {', '.join(POLICIES)}, got "
                         f"{on_divergence!r}")


def report(policy, d, history):
    """Tell about divergence ``d`` as ``policy`` says (after training stopped)."""
    history.diverged = d
    if policy == "raise":
        raise Diverged(d, history)
    warnings.warn(message(d), DivergenceWarning, stacklevel=3)


def finite_sum(a):
    """Whether every element of the engine array ``a`` is finite, from its sum (no
    temporary the size of ``a``; a sum overflows only for values near the dtype's limit)."""
    return math.isfinite(float(a.sum()))


class Snapshot:
    """Two preallocated copies (the state before this step and the one before that) of the
    network's flat parameters and the optimizer's buffers and counters, for the engine loop.
    ``save()`` before a step; ``undo(back)`` goes back 1 (this step) or 2 steps; ``swap``
    after a step that went well. Nothing is allocated per step but the counters' dict."""

    def __init__(self, net, opt):
        e = net.e
        self.e, self.opt = e, opt
        self.live = [net.flat] + [b for bufs in opt.state_arrays().values() for b in bufs]
        self.copies = [[e.zeros(tuple(b.shape)) for b in self.live] for _ in range(2)]
        self.meta = [None, None]
        self.cur = 0
        self.save()            # both copies start as the state now
        self.meta[1] = dict(self.meta[0])
        for src, dst in zip(self.copies[0], self.copies[1]):
            e.copy(src, dst)

    def save(self):
        for src, dst in zip(self.live, self.copies[self.cur]):
            self.e.copy(src, dst)
        self.meta[self.cur] = self.opt.state_meta()

    def swap(self):
        self.cur ^= 1

    def undo(self, back):
        k = self.cur if back == 1 else self.cur ^ 1
        for src, dst in zip(self.copies[k], self.live):
            self.e.copy(src, dst)
        for name, v in self.meta[k].items():
            setattr(self.opt.state, name, v)
