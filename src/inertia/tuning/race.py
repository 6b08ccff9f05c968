"""The race: successive halving over a grid of learning rate x momentum.

Every configuration of the grid (``grid``) trains from the same weights with the same
shuffling (``many.train_many``); at each rung the configurations are ranked (``rung_rank``)
by the geometric mean of the lowest loss they reached so far and their loss over the last 10%
of the epochs run (validation loss when given, else training loss: heavy ball's loss
oscillates, and its lower envelope shows where it is going), the worse part is dropped, and
the survivors continue from where they stopped. The winner is the finalist with
the lowest loss averaged over the last 10% of the epochs (``score``), a full run's score. A
configuration whose loss leaves the finite numbers, or rises above 10x the initial loss, is
dropped at once. The last rung is the full epoch count, so the winner is a configuration
trained to the end and judged on the same score as any full run.

Rungs sit at 1/16, 1/8, 1/4, 1/2 and all of the epochs (``plan``). Deciding early favours
configurations that start fast: a large momentum oscillates for its first epochs (heavy ball
is underdamped) and ends best often enough. So the early rungs only thin the field, keeping
as many configurations as the budget allows, they rank by the lower envelope of the curve as
well as its present, the rungs before 1/4 keep the
best learning rates of every momentum before filling up with the best of the rest (no
momentum is dropped for starting slowly), and the last decisions are taken at 1/2 and at the
end, between configurations that have run long enough for their order to
settle. On the tasks the race was developed on (tests/test_tune.py's quadratic regression and
noisy two moons, 10 cases) this reached a median of 1.33 and a worst case of 2.23 times the
exhaustive grid's best; ranking by the lowest loss alone gave a worst case of 4.0 (chaotic
runs with lucky dips), by the last 10% alone 2.3 on fewer cases, and rungs at 1/8, 1/4, 1/2
(the first cut, 64 to 8, too deep) did worse still. The issue's targets (1.10 median, 1.25
worst) are not reached.
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
# rungs before this fraction of the epochs keep the best learning rates of every momentum
STRATIFY_BELOW = 0.2
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


def best_so_far(curve):
    """The lowest loss of a curve (inf when empty or not finite)."""
    v = np.asarray(curve, dtype=np.float64)
    return float(v.min()) if v.size and np.all(np.isfinite(v)) else math.inf


def rung_rank(curve):
    """What a rung ranks by: the geometric mean of the lowest loss so far (the lower envelope
    of an oscillating curve: where an underdamped run is going) and the mean over the last
    10% of the epochs (where the run is now: a chaotic run's lucky dips do not count alone)."""
    return math.sqrt(best_so_far(curve) * score(curve))


def survivors(alive, keep, by_momentum):
    """The ``keep`` configurations of ``alive`` that go on: the lowest ``rung_rank``, or with
    ``by_momentum`` first the best keep // (number of momenta) of every momentum and then the
    lowest among the rest."""
    ranked = sorted(alive, key=lambda c: rung_rank(c.curve()))
    if not by_momentum:
        return ranked[:keep]
    momenta = sorted({c.momentum for c in ranked})
    quota = keep // max(1, len(momenta))
    chosen = []
    for mu in momenta:
        chosen += [c for c in ranked if c.momentum == mu][:quota]
    taken = {id(c) for c in chosen}
    return chosen + [c for c in ranked if id(c) not in taken][:keep - len(chosen)]


def rung_ends(epochs):
    """The epochs of the rungs: FRACTIONS of ``epochs`` (at least 1, rising), then ``epochs``."""
    ends = []
    for f in FRACTIONS:
        e = max(1, int(round(f * epochs)))
        if not ends or e > ends[-1]:
            ends.append(e)
    if ends[-1] != epochs:
        ends.append(epochs)
    return ends


def least_budget(n_configs, epochs):
    """The least budget (in runs of ``epochs``) that carries one configuration through
    every rung after the first rung trained all ``n_configs``."""
    first = rung_ends(epochs)[0]
    return (n_configs * first + epochs - first) / epochs


def plan(n_configs, epochs, budget):
    """The rungs: [(epochs of the rung, configurations trained to it), ...], the last rung
    being ``epochs``. The first rung trains all ``n_configs``; each later rung gets an equal
    share of the rest of ``budget`` (in runs of ``epochs``). Raises ValueError when the budget
    cannot pay for one configuration carried through every rung."""
    ends = rung_ends(epochs)
    first = n_configs * ends[0] / epochs
    least = least_budget(n_configs, epochs)
    if budget < least:
        raise ValueError(f"budget={budget:g} runs cannot pay for a race of {n_configs} "
                         f"configurations over {epochs} epochs: give budget >= "
                         f"{math.ceil(least * 100) / 100}")
    rungs = [(ends[0], n_configs)]
    share = (budget - first) / max(1, len(ends) - 1)
    for prev, end in zip(ends, ends[1:]):
        keep = int(share * epochs / (end - prev))
        rungs.append((end, max(1, min(keep, rungs[-1][1]))))
    return rungs


def race(net, X, y, loss, epochs, batch_size, validation_data, budget, seed, lr_center,
         initial_loss, make_grid=grid, retries=RETRIES):
    """Run the race from ``net``'s weights (``net`` itself is not trained).

    make_grid  the (lr, momentum) pairs around a centre learning rate (``grid``; a fixed
               learning rate or momentum gives a smaller one)
    retries    how many times the grid moves down RETREAT when every pair diverged

    Returns (the winner Config, every Config tried, the rungs, epochs trained in all)."""
    rungs = plan(len(make_grid(lr_center)), epochs, budget)
    spent, tried = 0, []
    for attempt in range(retries + 1):
        configs = new_configs(net, make_grid(lr_center * RETREAT ** attempt))
        tried += configs
        spent += train_many(configs, X, y, loss, rungs[0][0], batch_size, validation_data,
                            seed, initial_loss)
        if any(c.alive for c in configs):
            break
    else:
        raise ValueError("every configuration of the race diverged"
                         + (f", even {RETREAT ** retries:g} x lower" if retries else "")
                         + ": check the data's scale (standardize it), the loss"
                         + ("" if retries else " and the fixed learning rate"))
    for k, (end, _) in enumerate(rungs):
        if k:
            spent += train_many([c for c in configs if c.alive], X, y, loss, end,
                                batch_size, validation_data, seed, initial_loss)
        alive = [c for c in configs if c.alive]
        if k + 1 == len(rungs):
            break
        going_on = {id(c) for c in survivors(alive, rungs[k + 1][1],
                                             by_momentum=end / epochs < STRATIFY_BELOW)}
        for c in alive:
            if id(c) not in going_on:
                c.dropped_at = k
    if not alive:
        raise ValueError("every configuration of the race diverged before the last rung: "
                         "check the data's scale (standardize it) and the loss")
    winner = min(alive, key=lambda c: score(c.curve()))      # a full run's score decides
    for c in alive:
        if c is not winner:
            c.dropped_at = len(rungs) - 1
    return winner, tried, rungs, spent
