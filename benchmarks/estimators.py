#!/usr/bin/env python
"""inertia.MLPClassifier against scikit-learn's MLPClassifier: ``python benchmarks/estimators.py``.

The workload: digits (1797 x 64, scaled to [0, 1]), one hidden layer of 64 relu units,
learning_rate_init 0.01, momentum 0.9 (Nesterov, scikit-learn's default), batch 32, 200 epochs
(tol 0, so that both run every epoch). Both estimators start from the same weights (the same
random_state) and follow the same trajectory; the script checks that they end with the same
weights. Their fit times alternate in one process, rep by rep, for alpha = 1e-4
(scikit-learn's default; the L2 term of the loss curve makes inertia run one fit call a
batch) and alpha = 0 (one call an epoch). Then a GridSearchCV over 12 settings
(learning_rate_init x momentum, 3 folds) both ways. It prints the medians and the ratios
(scikit-learn's time / inertia's) and writes ``results/estimators-YYYYMMDD-HHMMSS-HOST.json``.
``--quick`` runs a short version (20 epochs, 2 reps, 5-epoch grid) to check that it works.
"""

import argparse
import json
import os
import socket
import sys
import time
import warnings

import numpy as np
from sklearn.datasets import load_digits
from sklearn.exceptions import ConvergenceWarning
from sklearn.model_selection import GridSearchCV
from sklearn.neural_network import MLPClassifier as SkMLP

import inertia
from inertia.serialize import atomic_write

GRID = {"learning_rate_init": [0.003, 0.01, 0.03], "momentum": [0.0, 0.5, 0.9, 0.95]}


def settings(epochs, alpha):
    return dict(hidden_layer_sizes=(64,), activation="relu", learning_rate_init=0.01,
                momentum=0.9, batch_size=32, max_iter=epochs, tol=0.0, alpha=alpha,
                random_state=0)


def make(kind, **kw):
    if kind == "sklearn":
        return SkMLP(solver="sgd", **kw)
    return inertia.MLPClassifier(**kw)


def timed_fit(kind, X, y, kw):
    est = make(kind, **kw)
    t0 = time.perf_counter()
    est.fit(X, y)
    return time.perf_counter() - t0, est


def compare_fits(X, y, epochs, alpha, reps):
    """Alternating fit times of both estimators; the largest weight difference."""
    kw = settings(epochs, alpha)
    timed_fit("inertia", X[:200], y[:200], dict(kw, max_iter=2))     # compile, warm caches
    times = {"inertia": [], "sklearn": []}
    fitted = {}
    for _ in range(reps):
        for kind in times:
            t, fitted[kind] = timed_fit(kind, X, y, kw)
            times[kind].append(t)
    a, b = fitted["inertia"], fitted["sklearn"]
    diff = max(float(np.abs(p - q).max()) for p, q in
               zip(a.coefs_ + a.intercepts_, b.coefs_ + b.intercepts_))
    med = {k: float(np.median(v)) for k, v in times.items()}
    return {"alpha": alpha, "epochs": epochs, "fit_s": times, "median_s": med,
            "ratio_sklearn_over_inertia": med["sklearn"] / med["inertia"],
            "max_weight_difference": diff, "n_iter": [a.n_iter_, b.n_iter_],
            "final_loss": [a.loss_curve_[-1], b.loss_curve_[-1]]}


def compare_grids(X, y, epochs, folds):
    out = {}
    for kind in ("inertia", "sklearn"):
        gs = GridSearchCV(make(kind, **settings(epochs, 1e-4)), GRID, cv=folds)
        t0 = time.perf_counter()
        gs.fit(X, y)
        out[kind] = {"seconds": time.perf_counter() - t0, "best_params": gs.best_params_,
                     "best_score": float(gs.best_score_)}
    out["ratio_sklearn_over_inertia"] = out["sklearn"]["seconds"] / out["inertia"]["seconds"]
    return out


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--quick", action="store_true", help="a short run that checks the script")
    p.add_argument("--reps", type=int, default=5, help="alternations (default 5)")
    p.add_argument("--out", default=os.path.join(os.path.dirname(os.path.abspath(__file__)),
                                                  "results"))
    args = p.parse_args(argv)
    warnings.simplefilter("ignore", ConvergenceWarning)
    epochs, grid_epochs, reps, folds = (20, 5, 2, 2) if args.quick else (200, 200, args.reps, 3)
    X, y = load_digits(return_X_y=True)
    X = X / 16.0
    fits = []
    for alpha in (1e-4, 0.0):
        r = compare_fits(X, y, epochs, alpha, reps)
        fits.append(r)
        m = r["median_s"]
        print(f"fit, alpha {alpha:g}, {epochs} epochs: inertia {m['inertia']:.3f} s, "
              f"scikit-learn {m['sklearn']:.3f} s, ratio {r['ratio_sklearn_over_inertia']:.2f}"
              f" (largest weight difference {r['max_weight_difference']:.1e})", flush=True)
    grid = compare_grids(X, y, grid_epochs, folds)
    print(f"GridSearchCV, 12 settings x {folds} folds, {grid_epochs} epochs: inertia "
          f"{grid['inertia']['seconds']:.2f} s, scikit-learn {grid['sklearn']['seconds']:.2f} s,"
          f" ratio {grid['ratio_sklearn_over_inertia']:.2f}", flush=True)
    stamp = time.strftime("%Y%m%d-%H%M%S")
    path = os.path.join(args.out, f"estimators-{stamp}-{socket.gethostname()}.json")
    os.makedirs(args.out, exist_ok=True)
    record = {"date": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
              "command": " ".join(["python benchmarks/estimators.py"] + sys.argv[1:]),
              "cpu_count": os.cpu_count(), "quick": args.quick, "fits": fits, "grid": grid}
    data = json.dumps(record, indent=1).encode()
    atomic_write(path, lambda f: f.write(data))
    print(f"wrote {path}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
