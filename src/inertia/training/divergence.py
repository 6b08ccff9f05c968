"""Divergence: the warning and the error, the record, and the engine loop's way back to the
last finite state."""

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


def finite_sum(e, a):
    """Whether every element of the engine array ``a`` (engine ``e``) is finite: from its
    sum (no temporary the size of ``a``), and where the sum is not (it overflows for finite
    values near the dtype's limit), element by element on a host copy. Exact, so that a
    parameter once non-finite stays so (inf and NaN survive every update) and a check
    after a run of steps finds what a check after each would have."""
    import numpy as np

    return math.isfinite(e.total(a)) or bool(np.isfinite(e.to_host(a)).all())


class Snapshot:
    """The engine loop's way back: a copy of the network's flat parameters, the optimizer's
    buffers, counters and hyperparameters and the epoch's row order, taken before the first
    step of every epoch (see ``__init__``) and every ``EVERY`` steps within one, the newest
    two kept. Going back to the state before step ``target`` restores the newest copy taken
    at or before it and runs the steps from there again (``replay``), which gives the same
    bits: a step is a fixed sequence of engine calls on the same numbers. Nothing is copied
    in the other steps (a copy every step cost about a tenth of a small step), and nothing
    is allocated after the first two copies. ``checked``: the steps before it are known to
    have left finite parameters."""

    EVERY = 64

    def __init__(self, net, opt, order, epoch_copies=True):
        """``epoch_copies`` False: no copy at an epoch's start but every EVERY steps (for
        runs whose steps an epoch's start changes nothing for: the same row order every
        epoch, or no order at all in full batch, and one segment of settings, so that a
        replay may cross epochs)."""
        e = net.e
        self.epoch_copies = epoch_copies
        self.e, self.opt = e, opt
        self.live = [net.flat] + [b for bufs in opt.state_arrays().values() for b in bufs]
        self.copies = [[e.zeros(tuple(b.shape)) for b in self.live] for _ in range(2)]
        self.orders = [order.copy(), order.copy()]
        self.t = [None, None]          # the step each copy was taken before (None: empty)
        self.meta = [None, None]
        self.hyper = [None, None]
        self.cur = 0
        self.checked = 0

    def due(self, t, j):
        """Whether a copy is taken before step t (step j of its epoch)."""
        last = self.t[self.cur]
        return (j == 0 and self.epoch_copies) or last is None or t - last >= self.EVERY

    def hyperparameters(self):
        return {name: getattr(self.opt, name) for name in self.opt.HYPER}

    def save(self, t, order):
        """Copy the state before step t (``order``: the epoch's row order)."""
        if self.t[self.cur] is None:   # the first copy: the start state, as it is
            k, self.checked = self.cur, t
        else:
            k = self.cur ^ 1
        for src, dst in zip(self.live, self.copies[k]):
            self.e.copy(src, dst)
        self.orders[k][...] = order
        self.t[k] = t
        self.meta[k] = self.opt.state_meta()
        self.hyper[k] = self.hyperparameters()
        self.cur = k

    def restore(self, k):
        """Put copy k back (its hyperparameters too); returns (its step, its row order)."""
        for src, dst in zip(self.copies[k], self.live):
            self.e.copy(src, dst)
        for name, v in self.meta[k].items():
            setattr(self.opt.state, name, v)
        self.opt.set(**self.hyper[k])
        return self.t[k], self.orders[k]

    def back_to(self, target, replay):
        """Put the state back to the one before step ``target``: restore the newest copy
        taken at or before it (the oldest when none is), then ``replay(t, order)`` each step
        from the copy's to target - 1 with the copy's row order. The hyperparameters set now
        are kept."""
        taken = [k for k in (0, 1) if self.t[k] is not None]
        before = [k for k in taken if self.t[k] <= target]
        k = max(before, key=self.t.__getitem__) if before else \
            min(taken, key=self.t.__getitem__)
        now = self.hyperparameters()
        t0, order = self.restore(k)
        for t in range(t0, target):
            replay(t, order)
        self.opt.set(**now)
