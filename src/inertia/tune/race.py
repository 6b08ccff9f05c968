"""The race: successive halving over a grid of learning rate x momentum.

Every configuration of the grid (``grid``) trains from the same weights with the same
shuffling (``many.train_many``); at each rung the configurations are ranked by their loss
(validation loss when given, else training loss) averaged over the last 10% of the epochs run
so far, the worse part is dropped, and the survivors continue from where they stopped. A
configuration whose loss leaves the finite numbers, or rises above 10x the initial loss, is
dropped at once. The last rung is the full epoch count, so the winner is a configuration
trained to the end and judged on the same score as any full run.

Rungs sit at 1/16, 1/8, 1/4, 1/2 and all of the epochs (``plan``). Deciding early favours
configurations that start fast; so the early rungs only thin the field, keeping as many
configurations as the budget allows, and the last decisions are taken at 1/2 and at the end,
between configurations that have run long enough for their order to settle.
"""

from __future__ import annotations

import math

import numpy as np

from .many import new_configs, train_many

MOMENTA = (0.0, 0.5, 0.7, 0.8, 0.9, 0.95, 0.98, 0.99)
N_LR = 8
# learning rates span these decades around the centre 1 / lambda_max
LR_DECADES = (-2.0, 1.0)
FRACTIONS = (1 / 16, 1 / 8, 1 / 4, 1 / 2, 1.0)
DEFAULT_BUDGET = 10.0
# when every configuration diverges, the grid moves down this factor (at most RETRIES times)
RETREAT = 1e-3
RETRIES = 2


def grid(lr_center, n_lr=N_LR, momenta=MOMENTA):
    """The (lr, momentum) pairs: ``n_lr`` learning rates log-spaced over LR_DECADES around
    ``lr_center``, times every momentum. Ordered momentum-major."""
    lrs = lr_center * np.logspace(LR_DECADES[0], LR_DECADES[1], n_lr)
    return [(float(lr), float(mu)) for mu in momenta for lr in lrs]


def score(curve):
    """The mean of a loss curve over its last 10% of epochs (at least one epoch)."""
    v = np.asarray(curve, dtype=np.float64)
    if v.size == 0:
        return math.inf
    k = max(1, int(math.ceil(0.1 * v.size)))
    s = float(v[-k:].mean())
    return s if math.isfinite(s) else math.inf


def plan(n_configs, epochs, budget):
    """The rungs: [(epochs of the rung, configurations trained to it), ...], the last rung
    being ``epochs``. The first rung trains all ``n_configs``; each later rung gets an equal
    share of the rest of ``budget`` (in runs of ``epochs``). Raises ValueError when the budget
    cannot pay for one configuration carried through every rung."""
    ends = []
    for f in FRACTIONS:
        e = max(1, int(round(f * epochs)))
        if not ends or e > ends[-1]:
            ends.append(e)
    if ends[-1] != epochs:
        ends.append(epochs)
    first = n_configs * ends[0] / epochs
    least = first + (epochs - ends[0]) / epochs
    if budget < least:
        raise ValueError(f"budget={budget} runs cannot pay for a race of {n_configs} "
                         f"configurations over {epochs} epochs: give budget >= "
                         f"{math.ceil(least * 100) / 100}")
    rungs = [(ends[0], n_configs)]
    share = (budget - first) / max(1, len(ends) - 1)
    for prev, end in zip(ends, ends[1:]):
        keep = int(share * epochs / (end - prev))
        rungs.append((end, max(1, min(keep, rungs[-1][1]))))
    return rungs


def race(net, X, y, loss, epochs, batch_size, validation_data, budget, seed, lr_center,
         initial_loss):
    """Run the race from ``net``'s weights (``net`` itself is not trained).

    Returns (the winner Config, every Config tried, the rungs, epochs trained in all)."""
    rungs = plan(len(grid(lr_center)), epochs, budget)
    spent, tried = 0, []
    for attempt in range(RETRIES + 1):
        configs = new_configs(net, grid(lr_center * RETREAT ** attempt))
        tried += configs
        spent += train_many(configs, X, y, loss, rungs[0][0], batch_size, validation_data,
                            seed, initial_loss)
        if any(c.alive for c in configs):
            break
    else:
        raise ValueError("every learning rate of the race diverged, even "
                         f"{RETREAT ** RETRIES:g} x lower: check the data's scale "
                         "(standardize it) and the loss")
    for k, (end, _) in enumerate(rungs):
        if k:
            spent += train_many([c for c in configs if c.alive], X, y, loss, end,
                                batch_size, validation_data, seed, initial_loss)
        alive = sorted((c for c in configs if c.alive), key=lambda c: score(c.curve()))
        keep = rungs[k + 1][1] if k + 1 < len(rungs) else 1
        for c in alive[keep:]:
            c.dropped_at = k
    finalists = [c for c in configs if c.epochs == epochs and c.diverged is None]
    if not finalists:
        raise ValueError("every configuration of the race diverged before the last rung: "
                         "check the data's scale (standardize it) and the loss")
    winner = min(finalists, key=lambda c: score(c.curve()))
    winner.dropped_at = None
    return winner, tried, rungs, spent
