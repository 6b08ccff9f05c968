"""Training many (lr, momentum) configurations of one network side by side.

``train_many`` is the one place the tuner trains configurations. It trains them through
the sweep's ``_train_group`` (``inertia.sweeps.runs``), chunk by chunk, each configuration
continuing its own copy of the network and its own optimizer; whatever runs a group of the
sweep (the multi-run compiled kernels, or one ``fit`` after another) runs the tuner's.

Fairness: every configuration starts from the weights of the network it was copied from, and
every configuration sees the same shuffling orders: a chunk of epochs starting at epoch k
draws the orders of ``fit(seed=seed)`` after k epochs (``training.SeedAfter``). A fit
continues where the previous one stopped (the optimizer keeps its state, the orders go on),
so a configuration trained chunk by chunk to epoch E is the run
``fit(net, ..., optimizer=SGD(lr, momentum), epochs=E, seed=seed)`` (bit for bit, or to
float32 rounding where a chunk of 16 or more float32 configurations at a batch of up to 64
rows trains in the vector lanes, ``fused.lanes``): the race's winner is the run a user's
fit with the chosen pair and the same seed gives.
"""

from __future__ import annotations

import math
import warnings
from dataclasses import dataclass, field

import numpy as np

from ..optim.sgd import SGD
from ..sweeps.runs import _train_group
from ..training.plan import SeedAfter

# a loss above this multiple of the initial training loss counts as diverged
DIVERGE_FACTOR = 10.0


@dataclass
class Config:
    """One configuration in training.

    lr, momentum   the hyperparameters (PyTorch's convention: b = mu b + g; w -= lr b)
    net, opt       its own network copy and optimizer (state carried across fits)
    loss           training loss per epoch trained;  val  validation loss per epoch (or [])
    diverged       the epoch count at which it was found diverged, or None
    dropped_at     the rung after which the race dropped it (None: still running)
    entered        the rung it was first trained to (0: the grid's; the last: the race's
                   slowed leader, ``race.slower``)
    nesterov       whether ``opt`` takes Nesterov's form
    """

    lr: float
    momentum: float
    net: object = None
    opt: object = None
    loss: list = field(default_factory=list)
    val: list = field(default_factory=list)
    diverged: int | None = None
    dropped_at: int | None = None
    entered: int = 0
    nesterov: bool = False

    @property
    def epochs(self):
        return len(self.loss)

    @property
    def alive(self):
        return self.diverged is None and self.dropped_at is None

    def curve(self):
        """The curve the tuner ranks by: validation loss when measured, else training loss."""
        return self.val if self.val else self.loss


def new_configs(net, pairs, nesterov=False):
    """A Config per (lr, momentum) pair, each with its own copy of ``net``'s weights and
    its own SGD (PyTorch's convention; Nesterov's form when ``nesterov`` and mu > 0)."""
    return [Config(float(lr), float(mu), net.copy(),
                   SGD(lr=float(lr), momentum=float(mu), nesterov=nesterov and mu > 0),
                   nesterov=nesterov and mu > 0)
            for lr, mu in pairs]


def boundaries(upto):
    """Chunk ends shared by every configuration: 1, 2, 4, 8, ... epochs, then ``upto``."""
    out, k = [], 1
    while k < upto:
        out.append(k)
        k *= 2
    return out + [upto]


def diverged(values, initial_loss, factor=DIVERGE_FACTOR):
    """Whether a loss curve left the finite numbers or rose above ``factor`` x the start."""
    v = np.asarray(values, dtype=np.float64)
    return bool(v.size) and (not np.all(np.isfinite(v)) or float(v.max()) > factor *
                             initial_loss)


def train_many(configs, X, y, loss, upto, batch_size=None, validation_data=None, seed=0,
               initial_loss=math.inf, stops=()):
    """Train every live configuration in ``configs`` until it has run ``upto`` epochs.

    The configurations are trained chunk by chunk, every chunk as groups of runs through
    the sweep's ``_train_group`` (the runs of a group start at the same epoch, so they share
    the chunk's shuffling order), each run continuing its own network and optimizer. Each
    one is checked after every chunk (``boundaries`` of ``upto`` and the epochs in
    ``stops``): a non-finite loss, one above ``DIVERGE_FACTOR`` x ``initial_loss``, or a fit
    that stopped short (a ``fit`` that stops on divergence) marks it diverged and it trains
    no further. Returns the epochs trained in this call (summed over
    configurations), each epoch being one gradient evaluation per training row."""
    ends = sorted(set(boundaries(upto)) | {s for s in stops if 0 < s < upto})
    spent = 0
    for end in ends:
        starts = {}
        for c in configs:
            if c.alive and c.epochs < end:
                starts.setdefault(c.epochs, []).append(c)
        for start, group in sorted(starts.items()):
            spent += _train_chunk(group, X, y, loss, start, end, batch_size,
                                  validation_data, seed, initial_loss)
    return spent


def _train_chunk(group, X, y, loss, start, end, batch_size, validation_data, seed,
                 initial_loss):
    """Train the configurations of ``group`` (all at epoch ``start``) to epoch ``end`` as
    one group of the sweep; mark the diverged ones. Returns the epochs trained."""
    plan = {"epochs": end - start, "batch_size": batch_size,
            "seed": SeedAfter(0 if seed is None else int(seed), start),
            "validation_data": validation_data}
    with warnings.catch_warnings():     # a fit that stops on divergence warns
        warnings.simplefilter("ignore", RuntimeWarning)
        hists = _train_group([c.net for c in group], [c.opt for c in group], X, y, loss,
                             plan)
    spent = 0
    for c, h in zip(group, hists):
        c.loss.extend(h.loss)
        c.val.extend(h.val_loss)
        stopped = len(h.loss) < end - start        # fit stopped on a non-finite loss
        spent += min(end - start, len(h.loss) + stopped)   # a partial epoch counts whole
        if stopped or diverged(h.loss, initial_loss) or diverged(h.val_loss, math.inf):
            c.diverged = c.epochs
    return spent
