"""The race: successive halving over a grid of learning rate x momentum.

The grid (``grid``) is laid out in the effective step lr / (1 - momentum), in units of the
curvature measured at the start (``lr_center`` = 1 / lambda_max): heavy ball's late
behaviour depends mostly on that step, and the best one moves little with the momentum, so
the effective steps are log-spaced over EFFECTIVE_DECADES and the momenta staggered on them
(a checkerboard: each momentum takes every other step, its neighbours the steps between), which
covers the range as finely as twice the configurations would. The range reaches 100 /
lambda_max: with a large momentum the best effective step can be far above 1 / lambda_max
(14.6 / lambda_max on one development task, at momentum 0.95). Learning rates above
STABLE_FACTOR x heavy ball's stability limit 2 (1 + momentum) / lambda_max are left out: they
diverge. The factor is 2, not 1, because lambda_max is measured at the start and changes as
training goes on (saturating sigmoid and softmax outputs flatten the loss); those that do
diverge are dropped within their first epochs, at little cost.

Every configuration trains from the same weights with the same shuffling
(``many.train_many``). Rungs sit at 1/4 and 1/2 of the epochs and the end (``FRACTIONS``):
deciding earlier favours configurations that start fast (heavy ball is underdamped: a large
momentum oscillates for its first epochs and often ends best). At each rung the
configurations are ranked by their loss averaged over the rung's last RUNG_WINDOW of epochs
(``rung_rank``; validation loss when given, else training loss): one epoch's loss is noisy.
The survivors continue from where they stopped, so the winner is trained to the end inside
the race and its network is the result. A configuration whose loss leaves the finite numbers,
or rises above 10x the initial loss, is dropped at once (``many.DIVERGE_FACTOR``).

The first rung trains the whole grid; the budget left after it is shared equally between
the two later rungs (``keep_counts``). When every configuration kept at a rung diverges, the
next best go on while the budget pays for them and the later rungs' plan, so the race never
spends more than its budget (it says so instead).

Rungs favour the configurations that learn fast, and on a small or noisy set these also
overfit first: their validation loss passes its best and rises again before the end, where
a slower one would have ended lower. So before the last rung, when the leader's loss has
already passed its best (``slower``: its latest stretch more than RESCUE_GAP above its best
one, or RESCUE_GAP_LEARNING when it is a validation loss rising while the training loss still
falls, the best having come before RESCUE_BEFORE of the epochs run), the leader is also tried
slowed: its learning rate times t / epochs, t where its best stretch ended, trained from the
start. With the same momentum, that learning rate makes the effective step lr / (1 -
momentum) t / epochs as large, so the run comes to about the same point at the end instead
of at epoch t. It takes the place of the last rung's last finalists: as many go on beside
it as the budget still pays for, and with validation data none when it pays for the slowed
run alone (the finalists' validation loss is rising while they learn: each would end above
where it is); without validation data it needs at least one beside it. Development tasks:
iris (112 rows, 38 validation rows) 1.39 -> 1.18 times the grid's best, hardclass (every
configuration overfits by a third of its 30 epochs) 1.43 -> 1.04; the benchmark's workloads
changed by at most 1%.

The finalists, all trained to the end, are judged on
how they ended: the mean loss over the last 10% of the epochs (``score``). Each
configuration's chunks go on with the row orders of ``fit(seed=seed)``
(``many.train_many``), so the winner's run is the run a user's ``fit`` with the chosen pair
and seed gives, and the curve judged is the one the user gets. (When each chunk drew its own
orders, the judged run and the user's differed; judging by the last quarter was then the
more robust rule; it is no longer needed: on the benchmark and the ten development tasks,
``benchmarks/tuning.py [--dev] --methods race``, both rules give medians of 1.02 to 1.03,
the last 10% a slightly lower score on one workload and the same elsewhere.)
"""

from __future__ import annotations

import math

import numpy as np

from .many import new_configs, train_many

MOMENTA = (0.0, 0.7, 0.9, 0.95, 0.98, 0.99)
# effective steps lr / (1 - momentum) x lambda_max: 10^a .. 10^b, N_STEPS log-spaced
EFFECTIVE_DECADES = (-1.0, 2.0)
N_STEPS = 13
# learning rates above this multiple of the stability limit (``stable_lr``) are left out
STABLE_FACTOR = 2.0
FRACTIONS = (1 / 4, 1 / 2, 1.0)
# a rung ranks by the mean loss over this fraction of its epochs (at least one epoch)
RUNG_WINDOW = 0.25
DEFAULT_BUDGET = 12.0
# before the last rung, a leader whose loss has risen more than RESCUE_GAP above its best
# stretch (RESCUE_GAP_LEARNING when it is a validation loss and the training loss is still
# falling: overfitting), which came before RESCUE_BEFORE of the epochs run, is also tried
# slower (``slower``)
RESCUE_GAP = 0.05
RESCUE_GAP_LEARNING = 0.02
RESCUE_BEFORE = 0.8
# when every configuration diverges, the grid moves down this factor (at most RETRIES times)
RETREAT = 1e-3
RETRIES = 2


def stable_lr(mu, lr_center, nesterov=False):
    """The largest stable learning rate on a quadratic whose largest curvature is
    1 / ``lr_center``: heavy ball's 2 (1 + mu) lr_center; Nesterov's (PyTorch's form, w -=
    lr (g + mu b)) 2 (1 + mu) / (1 + 2 mu) lr_center, as its iteration's characteristic
    polynomial z^2 - (1 + mu)(1 - h) z + mu (1 - h), h = lr lambda, has a root at -1 there."""
    return 2.0 * (1.0 + mu) * lr_center / ((1.0 + 2.0 * mu) if nesterov else 1.0)


def grid(lr_center, momenta=MOMENTA, n_steps=N_STEPS, nesterov=False):
    """The (lr, momentum) pairs, ordered momentum-major, for ``lr_center`` = 1 / lambda_max.

    Effective steps lr / (1 - mu) = lr_center x 10^t, t log-spaced over EFFECTIVE_DECADES
    (``n_steps`` values); with several momenta, momentum k takes the steps of index j with
    j + k even; learning rates above STABLE_FACTOR x ``stable_lr`` are left out (Nesterov's
    limit when ``nesterov``: its effective step is lr / (1 - mu) too)."""
    steps = lr_center * np.logspace(EFFECTIVE_DECADES[0], EFFECTIVE_DECADES[1], n_steps)
    pairs = []
    for k, mu in enumerate(momenta):
        for j, eff in enumerate(steps):
            lr = float(eff * (1.0 - mu))
            if len(momenta) > 1 and (j + k) % 2:
                continue
            if lr <= STABLE_FACTOR * stable_lr(mu, lr_center, nesterov):
                pairs.append((lr, float(mu)))
    return pairs


def score(curve):
    """The mean of a loss curve over its last 10% of epochs (at least one epoch)."""
    v = np.asarray(curve, dtype=np.float64)
    if v.size == 0:
        return math.inf
    k = max(1, int(math.ceil(0.1 * v.size)))
    s = float(v[-k:].mean())
    return s if math.isfinite(s) else math.inf


def rung_rank(curve):
    """What a rung ranks by: the mean loss over the last RUNG_WINDOW of the epochs run (at
    least one epoch; inf when not finite)."""
    v = np.asarray(curve, dtype=np.float64)
    if v.size == 0:
        return math.inf
    k = max(1, int(math.ceil(RUNG_WINDOW * v.size)))
    s = float(v[-k:].mean())
    return s if math.isfinite(s) else math.inf


def rung_ends(epochs):
    """The epochs of the rungs: FRACTIONS of ``epochs`` (at least 1, rising), ``epochs`` last."""
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


def keep_counts(left, ends, epochs, alive):
    """How many configurations go on to each rung after the first: the budget ``left`` (in
    runs of ``epochs``) shared equally between the later rungs, each count at least 1 and
    at most the previous one (``alive`` at the first rung)."""
    counts, prev = [], alive
    share = left / max(1, len(ends) - 1)
    for a, b in zip(ends, ends[1:]):
        prev = max(1, min(prev, int(share * epochs / (b - a) + 1e-9)))
        counts.append(prev)
    return counts


def plan(n_configs, epochs, budget):
    """The rungs as planned when no configuration diverges: [(epochs of the rung,
    configurations trained to it), ...], the last rung being ``epochs``. Raises ValueError
    when the budget cannot pay for one configuration carried through every rung."""
    ends = rung_ends(epochs)
    least = least_budget(n_configs, epochs)
    if budget < least - 1e-12:
        raise ValueError(f"budget={budget:g} runs cannot pay for a race of {n_configs} "
                         f"configurations over {epochs} epochs: give budget >= "
                         f"{math.ceil(least * 100) / 100}")
    left = budget - n_configs * ends[0] / epochs
    return list(zip(ends, [n_configs] + keep_counts(left, ends, epochs, n_configs)))


def final_choice(alive):
    """The winner among the finalists: the lowest ``score`` (how the run ended)."""
    return min(alive, key=lambda c: score(c.curve()))


def slower(curve, epochs, train=None):
    """The factor on a configuration's learning rate that would bring the best stretch of its
    ``curve`` (so far) to the last of ``epochs``, or None when the curve is still near its best.

    A stretch is a window of ``score``'s length (a tenth of ``epochs``); the best one has the
    lowest mean and ends at epoch t. The curve has passed its best when t came before
    RESCUE_BEFORE of the epochs run and its last stretch is more than RESCUE_GAP above the
    best; or, with the ``train``ing loss of a validation ``curve`` given, more than
    RESCUE_GAP_LEARNING above it while the training loss's last stretch is still below its
    stretch ending at t (still learning, and the validation loss rising: overfitting, not
    noise). The factor is then t / epochs: with the same momentum, that fraction of the
    learning rate scales the effective step lr / (1 - momentum) by it, and such a run comes
    near the same point at the end instead of passing it."""
    v = np.asarray(curve, dtype=np.float64)
    k = max(1, int(math.ceil(0.1 * epochs)))
    if v.size < 2 * k or not np.all(np.isfinite(v)):
        return None
    means = np.convolve(v, np.ones(k) / k, mode="valid")     # means[i]: epochs i+1 .. i+k
    i = int(np.argmin(means))
    t = i + k
    if t > RESCUE_BEFORE * v.size:
        return None
    gap = RESCUE_GAP
    if train is not None and len(train) == v.size:
        tm = np.convolve(np.asarray(train, dtype=np.float64), np.ones(k) / k, mode="valid")
        gap = RESCUE_GAP_LEARNING if tm[-1] < tm[i] else RESCUE_GAP
    if means[-1] <= (1.0 + gap) * means[i]:
        return None
    return t / epochs


def _first_rung(net, X, y, loss, end, batch_size, validation_data, seed, lr_center,
                initial_loss, make_grid, retries, nesterov):
    """Train the grid to the first rung, moving it down RETREAT when every configuration
    diverged. Returns (the configurations of the last grid tried, all tried, epochs spent)."""
    spent, tried = 0, []
    for attempt in range(retries + 1):
        configs = new_configs(net, make_grid(lr_center * RETREAT ** attempt), nesterov)
        tried += configs
        spent += train_many(configs, X, y, loss, end, batch_size, validation_data, seed,
                            initial_loss)
        if any(c.alive for c in configs):
            return configs, tried, spent
    raise ValueError("every configuration of the race diverged"
                     + (f", even {RETREAT ** retries:g} x lower" if retries else "")
                     + ": check the data's scale (standardize it), the loss"
                     + ("" if retries else " and the fixed learning rate"))


def _next_rung(alive, keep, end, left, X, y, loss, batch_size, validation_data, seed,
               initial_loss):
    """Train the ``keep`` best of ``alive`` (by ``rung_rank``) on to epoch ``end``. When
    every one of them diverges on the way (a step that was stable at the start can cross
    the limit as training sharpens the loss), the next best go on, one at a time, while the
    epochs ``left`` in the budget pay for it. Returns (the configurations trained, epochs
    spent)."""
    ranked = sorted(alive, key=lambda c: rung_rank(c.curve()))
    going_on, waiting = ranked[:keep], ranked[keep:]
    spent = train_many(going_on, X, y, loss, end, batch_size, validation_data, seed,
                       initial_loss)
    while (not any(c.alive for c in going_on) and waiting
           and spent + end - waiting[0].epochs <= left + 1e-9):
        going_on.append(waiting.pop(0))
        spent += train_many(going_on[-1:], X, y, loss, end, batch_size, validation_data,
                            seed, initial_loss)
    return going_on, spent


def _slower_leader(net, alive, epochs, keep, start, left):
    """Before the last rung, which would carry ``keep`` finalists on from epoch ``start``:
    when the rung's leader has passed its best (``slower``), (finalists, a new Config with
    the leader slowed, to train from the start beside them): as many finalists as the epochs
    ``left`` pay for beside it; with validation data, none when they pay for it alone (the
    finalists' validation loss is rising: they would end above where they are); else (keep,
    None)."""
    leader = min(alive, key=lambda c: rung_rank(c.curve()))
    factor = slower(leader.curve(), epochs, leader.loss if leader.val else None)
    if factor is None or left < epochs - 1e-9:
        return keep, None
    fits = min(keep, int((left - epochs) // (epochs - start) + 1e-9))
    if fits < 1 and not leader.val:
        return keep, None
    again, = new_configs(net, [(leader.lr * factor, leader.momentum)], leader.nesterov)
    return fits, again


def race(net, X, y, loss, epochs, batch_size, validation_data, budget, seed, lr_center,
         initial_loss, make_grid=grid, retries=RETRIES, slow=True, nesterov=False):
    """Run the race from ``net``'s weights (``net`` itself is not trained).

    budget     the compute for the training, in runs of ``epochs``
    make_grid  the (lr, momentum) pairs around a centre learning rate (``grid``; a fixed
               learning rate or momentum gives a smaller one)
    retries    how many times the grid moves down RETREAT when every pair diverged
    slow       whether a leader past its best may be tried slowed (``slower``; not when the
               learning rate is fixed)
    nesterov   train every configuration in Nesterov's form (``make_grid``'s pairs then
               keep under Nesterov's limit)

    Returns (the winner Config, every Config tried, the rungs [(epochs, configurations
    trained to it)], epochs trained in all)."""
    plan(len(make_grid(lr_center)), epochs, budget)          # the budget pays for the race
    ends = rung_ends(epochs)
    configs, tried, spent = _first_rung(net, X, y, loss, ends[0], batch_size,
                                        validation_data, seed, lr_center, initial_loss,
                                        make_grid, retries, nesterov)
    alive = [c for c in configs if c.alive]
    counts = keep_counts(budget - spent / epochs, ends, epochs, len(alive))
    rungs = [(ends[0], len(configs))]
    planned = [n * (b - a) for n, a, b in zip(counts, ends, ends[1:])]   # epochs a rung
    for k, end in enumerate(ends[1:]):
        # what a rung's fallbacks may spend: the budget left, less the later rungs' plan
        left = budget * epochs - spent - sum(planned[k + 1:])
        keep, again = counts[k], None
        if end == epochs and slow:
            keep, again = _slower_leader(net, alive, epochs, keep, ends[k], left)
        going_on, more = [], 0
        if again is not None:
            again.entered = len(rungs)
            tried.append(again)
            more = train_many([again], X, y, loss, end, batch_size, validation_data, seed,
                              initial_loss)
            going_on.append(again)
            if not again.alive and keep == 0 and more + end - ends[k] <= left + 1e-9:
                keep = 1                        # it diverged: the leader goes on instead
        if keep:
            finalists, spent_on = _next_rung(alive, keep, end, left - more, X, y, loss,
                                             batch_size, validation_data, seed, initial_loss)
            going_on, more = finalists + going_on, more + spent_on
        spent += more
        kept = {id(c) for c in going_on}
        for c in alive:
            if id(c) not in kept:
                c.dropped_at = k
        rungs.append((end, len(going_on)))
        alive = [c for c in going_on if c.alive]
        if not alive:
            raise ValueError("every configuration of the race diverged before the last "
                             "rung: check the data's scale (standardize it) and the loss, or "
                             "give a larger budget")
    winner = final_choice(alive)
    for c in alive:
        if c is not winner:
            c.dropped_at = len(rungs) - 1
    return winner, tried, rungs, spent
