#!/usr/bin/env python
"""A sweep against sequential fits, in one process: ``python benchmarks/sweep.py``.

The problem: 64 configurations (8 learning rates log-spaced 1e-3 .. 0.3 x 8 momenta 0 ..
0.95, PyTorch's convention) of the comparison network (4-8-8-1, sigmoid/tanh/linear, mse) on
``smooth_regression(10000)``, 50 epochs, at batch 64 and at full batch. ``inertia.sweep``
(one group: every run starts from the same weights, so the 64 runs train together in the
multi-run compiled loop, ``inertia.fused.runs``) is timed against 64 ``inertia.fit`` calls,
alternating in one process (sweep, sequential, sweep, ...) so that both see the same machine;
each round checks that the sweep's losses equal the fits' bit for bit. Prints run-epochs a
second each way (best round) and the ratio. Timings mean something only on an idle machine.
"""

from __future__ import annotations

import argparse
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


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--epochs", type=int, default=50)
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--rows", type=int, default=10_000)
    args = ap.parse_args(argv)
    X, y = smooth_regression(args.rows, seed=1)
    runs = len(LRS) * len(MOMENTA)
    for batch in (64, None):
        by_sweep(X, y, batch, 1)                    # compile and warm both ways first
        by_fits(X, y, batch, 1)
        best_s = best_f = np.inf
        for _ in range(args.rounds):
            ts, ls = by_sweep(X, y, batch, args.epochs)
            tf, lf = by_fits(X, y, batch, args.epochs)
            if not np.array_equal(ls, lf, equal_nan=True):
                raise SystemExit("the sweep's losses differ from the fits'")
            best_s, best_f = min(best_s, ts), min(best_f, tf)
        work = runs * args.epochs
        name = "full batch" if batch is None else f"batch {batch}"
        print(f"{name:>10}: sweep {work / best_s:10.1f} run-epochs/s, 64 fits "
              f"{work / best_f:10.1f} run-epochs/s, ratio {best_f / best_s:.2f}x")


if __name__ == "__main__":
    main()
