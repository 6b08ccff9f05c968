"""What per-step schedules cost a sweep: a 64-run sweep (8 learning rates x 8 momenta, one
seed, 4-32-16-1, float32, 2,000 rows of smooth_regression) with an lr_schedule (cosine) and a
momentum_schedule (demon) against the same sweep without, at batch 64, full batch and online.

    INERTIA_THREADS=1 python benchmarks/sweep_schedules.py [--reps 11]

Both in one process, alternating pair by pair, timed in thread CPU time (one thread unless
INERTIA_THREADS says otherwise); the report is each side's median and the median of the
per-pair ratios scheduled / unscheduled. Prints only."""

from __future__ import annotations

import argparse
import os
import statistics
import time
import warnings

os.environ.setdefault("INERTIA_THREADS", "1")

import numpy as np  # noqa: E402

import inertia  # noqa: E402
from inertia import SGD, Dense, Network  # noqa: E402

LAYOUTS = ((64, 4), (None, 40), (1, 1))      # (batch_size, epochs)


def setup():
    X, y = inertia.data.smooth_regression(2000, seed=1)
    net = Network(4, [Dense(32, "sigmoid"), Dense(16, "tanh"), Dense(1, "linear")], seed=0,
                  dtype="float32")
    grid = {"lr": [float(v) for v in np.geomspace(0.003, 0.1, 8)],
            "momentum": [0, 0.5, 0.8, 0.9, 0.95, 0.97, 0.98, 0.99]}
    return X, y, net, grid


def one(case, batch, epochs, scheduled):
    """Thread seconds of one sweep."""
    X, y, net, grid = case
    kw = {}
    if scheduled:
        steps = epochs * -(-len(X) // (batch or len(X)))
        kw["momentum_schedule"] = inertia.schedules.demon(0.9, 2 * steps)
        kw["lr_schedule"] = inertia.schedules.cosine(0.05, steps, final=0.001)
    t = time.thread_time()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", inertia.DivergenceWarning)
        inertia.sweep(net, X, y, "mse", SGD(0.01), grid, epochs=epochs, batch_size=batch,
                      progress=False, **kw)
    return time.thread_time() - t


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--reps", type=int, default=11)
    args = ap.parse_args(argv)
    case = setup()
    for batch, epochs in LAYOUTS:
        one(case, batch, 1, False)                  # compiles or loads, warms up
        one(case, batch, 1, True)
        plain, sched = [], []
        for rep in range(args.reps):
            order = (False, True) if rep % 2 == 0 else (True, False)
            for s in order:
                (sched if s else plain).append(one(case, batch, epochs, s))
        ratios = [b / a for a, b in zip(plain, sched)]
        name = "full batch" if batch is None else f"batch {batch}"
        print(f"{name}, {epochs} epochs: unscheduled {statistics.median(plain) * 1e3:.1f} ms, "
              f"scheduled {statistics.median(sched) * 1e3:.1f} ms, ratio "
              f"{statistics.median(ratios):.3f} (pairs {min(ratios):.3f} to "
              f"{max(ratios):.3f})", flush=True)


if __name__ == "__main__":
    main()
