"""The learning-rate range test (Smith 2017, "Cyclical Learning Rates for Training Neural
Networks"): train a copy of the network while the learning rate grows geometrically, one
step at a time, and watch the loss.

The loss is recorded before every update and smoothed by a debiased moving average (weight
``SMOOTHING`` on the past with mini-batches, whose losses are noisy; ``SMOOTHING_FULL`` with
the full batch, where only the reading's lag matters). The test stops when the smoothed loss
leaves the finite numbers or exceeds ``STOP_FACTOR`` x its minimum. ``lr_rise`` is the
learning rate at the minimum of the smoothed loss: past it the loss rises. The suggested
learning rate is ``lr_rise / 10``, a decade below, where the loss still falls steadily (the
usual reading of the test).

On a quadratic with plain gradient descent the loss cannot rise before the step size passes
the stability limit 2 / lambda_max (every eigen-component shrinks below it), so
``lr_rise >= 2 / lambda_max``. It lies well above the limit (about 4x on the test's
quadratic): the sharpest component was shrunk by the steps below the limit and must grow back
to the size of the rest of the loss before the total rises, and the ramp keeps raising the
rate meanwhile. Noise (mini-batches) keeps that component from vanishing and the lag shorter.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from ..optim.sgd import SGD

SMOOTHING = 0.9
SMOOTHING_FULL = 0.5
STOP_FACTOR = 4.0
SUGGEST_FRACTION = 0.1


@dataclass
class RangeTest:
    """What ``range_test`` measured.

    lrs, losses    the learning rate of every step and the loss before it
    smoothed       the debiased moving average of ``losses``
    lr_rise        the learning rate at the smoothed minimum, where the loss starts rising
    lr             the suggestion, lr_rise / 10
    gradient_evals gradient evaluations spent, in samples
    """

    lrs: np.ndarray
    losses: np.ndarray
    smoothed: np.ndarray
    lr_rise: float
    lr: float
    gradient_evals: int


def _batches(n, batch_size, rng):
    """Endless mini-batch row indices (reshuffled every pass); full batch when None."""
    bs = n if batch_size is None else min(int(batch_size), n)
    while True:
        order = rng.permutation(n) if bs < n else np.arange(n)
        for s in range(0, n - bs + 1, bs):
            yield order[s:s + bs]


def range_test(net, X, y, loss, lr_min, lr_max, steps=100, momentum=0.9, batch_size=None,
               seed=0):
    """Train a copy of ``net`` for at most ``steps`` steps with the learning rate growing
    geometrically from ``lr_min`` to ``lr_max`` (momentum ``momentum``, PyTorch's
    convention); ``net`` is not changed. Returns a ``RangeTest``."""
    if not (0 < lr_min < lr_max) or steps < 2:
        raise ValueError(f"the range test needs 0 < lr_min < lr_max and steps >= 2, got "
                         f"{lr_min}, {lr_max}, {steps}")
    work = net.copy()
    pairs = work.parameters()
    params = [a for wb in pairs for a in wb]
    opt = SGD(lr=lr_min, momentum=momentum)
    state = opt.init(params)
    lrs = lr_min * (lr_max / lr_min) ** (np.arange(steps) / (steps - 1))
    rng = np.random.default_rng(seed)
    batches = _batches(X.shape[0], batch_size, rng)
    losses, smoothed, avg, evals = [], [], 0.0, 0
    beta = SMOOTHING if batch_size is not None and batch_size < X.shape[0] else SMOOTHING_FULL
    for t, lr in enumerate(lrs):
        rows = next(batches)
        value, grads = work.gradients(X[rows], y[rows], loss)
        evals += rows.shape[0]
        losses.append(float(value))
        avg = beta * avg + (1 - beta) * float(value)
        smoothed.append(avg / (1 - beta ** (t + 1)))
        if not math.isfinite(smoothed[-1]) or smoothed[-1] > STOP_FACTOR * min(smoothed):
            break
        opt.set(lr=float(lr))
        opt.step(params, [g for wb in grads for g in wb], state, n=rows.shape[0])
        if not all(np.all(np.isfinite(p)) for p in params):
            break
        work.set_parameters(list(zip(params[0::2], params[1::2])))
    sm = np.asarray(smoothed)
    best = int(np.nanargmin(np.where(np.isfinite(sm), sm, np.inf)))
    lr_rise = float(lrs[best])
    return RangeTest(lrs[:len(losses)], np.asarray(losses), sm, lr_rise,
                     lr_rise * SUGGEST_FRACTION, evals)
