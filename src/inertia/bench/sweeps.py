"""W6, the sweep workload of ``inertia bench --sweep`` (and benchmarks/sweep.py): 64
configurations (8 learning rates log-spaced 1e-3 .. 0.3 x 8 momenta 0 .. 0.95, PyTorch's
convention) of the comparison network (4-8-8-1, sigmoid/tanh/linear, mse) on
``smooth_regression(10000)``, 50 epochs, at batch 64 and at full batch, as run-epochs a second:
``inertia.sweep`` (one group: the runs share their starting weights and row order, so they
train together in the multi-run compiled loop, ``inertia.fused.runs``) against 64 sequential
``inertia.fit`` calls, alternating in one process (sweep, fits, sweep, ...) so that both see
the same machine; each round checks that the sweep's losses equal the fits' bit for bit.
PyTorch's sequential runs and JAX's vmapped grid are not measured here.
"""

from __future__ import annotations

import time
import warnings

import numpy as np

import inertia
from inertia import SGD, Dense, Network
from inertia.data import smooth_regression

LRS = np.logspace(-3, np.log10(0.3), 8).tolist()
MOMENTA = [0.0, 0.3, 0.5, 0.7, 0.8, 0.9, 0.93, 0.95]


def network():
    return Network(4, [Dense(8, "sigmoid"), Dense(8, "tanh"), Dense(1, "linear")], seed=0)


def by_sweep(X, y, batch, epochs):
    """The 64 runs as one sweep: (seconds, loss (64, epochs))."""
    t0 = time.perf_counter()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", inertia.DivergenceWarning)
        res = inertia.sweep(network(), X, y, "mse", SGD(0.1, convention="pytorch"),
                            {"lr": LRS, "momentum": MOMENTA}, epochs=epochs,
                            batch_size=batch)
    return time.perf_counter() - t0, np.asarray(res.loss)


def by_fits(X, y, batch, epochs):
    """The 64 runs as fits one after another: (seconds, loss (64, epochs), NaN-padded)."""
    loss = np.full((len(LRS) * len(MOMENTA), epochs), np.nan)
    t0 = time.perf_counter()
    k = 0
    for lr in LRS:
        for mu in MOMENTA:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", inertia.DivergenceWarning)
                h = inertia.fit(network(), X, y, "mse",
                                SGD(lr, momentum=mu, convention="pytorch"), epochs=epochs,
                                batch_size=batch, seed=0, progress=False)
            loss[k, :len(h.loss)] = h.loss
            k += 1
    return time.perf_counter() - t0, loss


def measure(rows=10_000, epochs=50, rounds=3, batches=(64, None), say=print):
    """{"batch 64": {...}, "full batch": {...}}: each with the best round's run-epochs a
    second of the sweep ("sweep") and of the 64 fits ("fits") and their ratio. Raises
    RuntimeError when a sweep's losses differ from the fits'."""
    X, y = smooth_regression(rows, seed=1)
    runs = len(LRS) * len(MOMENTA)
    out = {}
    for batch in batches:
        by_sweep(X, y, batch, 1)                    # compile and warm both ways first
        by_fits(X, y, batch, 1)
        best_s = best_f = np.inf
        for _ in range(rounds):
            ts, ls = by_sweep(X, y, batch, epochs)
            tf, lf = by_fits(X, y, batch, epochs)
            if not np.array_equal(ls, lf, equal_nan=True):
                raise RuntimeError("the sweep's losses differ from the fits'")
            best_s, best_f = min(best_s, ts), min(best_f, tf)
        work = runs * epochs
        name = "full batch" if batch is None else f"batch {batch}"
        out[name] = {"sweep": work / best_s, "fits": work / best_f, "ratio": best_f / best_s}
        say(f"W6 {name:>10}: sweep {work / best_s:10.1f} run-epochs/s, 64 fits "
            f"{work / best_f:10.1f} run-epochs/s, ratio {best_f / best_s:.2f}x")
    return out
