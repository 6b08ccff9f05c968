#!/usr/bin/env python
"""inertia.MLPClassifier against scikit-learn's MLPClassifier: ``python benchmarks/estimators.py``.

The workload: digits (1797 x 64, scaled to [0, 1]), one hidden layer of 64 relu units,
learning_rate_init 0.01, momentum 0.9 (Nesterov, scikit-learn's default), batch 32, 200 epochs
(tol 0, so that both run every epoch). Both estimators start from the same weights (the same
random_state) and follow the same trajectory; the script checks that they end with the same
weights. Their fit times alternate in one process, rep by rep, for alpha = 1e-4
(scikit-learn's default; the L2 term of the loss curve is summed in the compiled loop's
update pass) and alpha = 0. Then a GridSearchCV over 12 settings (learning_rate_init x
momentum, 3 folds) both ways, alternating ``--grid-reps`` times. It prints the medians and
the ratios (scikit-learn's time / inertia's) and writes
``results/estimators-YYYYMMDD-HHMMSS-HOST.json``. ``--quick`` runs a short version (20
epochs, 2 reps, 5-epoch grid) to check that it works.

``--scores`` instead compares test scores on the five bundled sets (digits, breast_cancer,
wine, iris: accuracy; diabetes: R^2), 5 seeds each: for seed s, a 75/25 split (stratified for
classifiers) with random_state s, and for both libraries the same Pipeline(StandardScaler,
MLP(64 relu, lr 0.01, momentum 0.9, batch 32, max_iter 200, random_state s, scikit-learn's
other defaults: alpha 1e-4, tol 1e-4, n_iter_no_change 10)); the diabetes target is
standardised too (TransformedTargetRegressor with a StandardScaler), on both sides. It
writes ``results/estimator-scores-YYYYMMDD-HHMMSS-HOST.json``.
"""

import argparse
import json
import os
import socket
import sys
import time
import warnings

import numpy as np
from sklearn.compose import TransformedTargetRegressor
from sklearn.datasets import (load_breast_cancer, load_diabetes, load_digits, load_iris,
                              load_wine)
from sklearn.exceptions import ConvergenceWarning
from sklearn.model_selection import GridSearchCV, train_test_split
from sklearn.neural_network import MLPClassifier as SkMLP
from sklearn.neural_network import MLPRegressor as SkMLPRegressor
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

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


def compare_grids(X, y, epochs, folds, reps):
    """GridSearchCV over GRID both ways, alternating ``reps`` times: the times, medians,
    ratio, and each side's best setting and score (from the last rep)."""
    out = {"inertia": {"seconds": []}, "sklearn": {"seconds": []}}
    for _ in range(reps):
        for kind in ("inertia", "sklearn"):
            gs = GridSearchCV(make(kind, **settings(epochs, 1e-4)), GRID, cv=folds)
            t0 = time.perf_counter()
            gs.fit(X, y)
            out[kind]["seconds"].append(time.perf_counter() - t0)
            out[kind].update(best_params=gs.best_params_, best_score=float(gs.best_score_))
    for kind in ("inertia", "sklearn"):
        out[kind]["median_s"] = float(np.median(out[kind]["seconds"]))
    out["ratio_sklearn_over_inertia"] = out["sklearn"]["median_s"] / out["inertia"]["median_s"]
    return out


SCORE_SETS = {"digits": load_digits, "breast_cancer": load_breast_cancer, "wine": load_wine,
              "iris": load_iris, "diabetes": load_diabetes}
SCORE_SEEDS = 5


def score_model(kind, regression, seed):
    """The Pipeline both libraries are scored with (see the module docstring)."""
    kw = dict(hidden_layer_sizes=(64,), activation="relu", learning_rate_init=0.01,
              momentum=0.9, batch_size=32, max_iter=200, random_state=seed)
    if not regression:
        return make_pipeline(StandardScaler(), make(kind, **kw))
    mlp = SkMLPRegressor(solver="sgd", **kw) if kind == "sklearn" else \
        inertia.MLPRegressor(**kw)
    return TransformedTargetRegressor(make_pipeline(StandardScaler(), mlp),
                                      transformer=StandardScaler())


def compare_scores(seeds=SCORE_SEEDS):
    """Test scores of both libraries per set and seed: the scores, their means and standard
    deviations over the seeds, and the largest difference between the two on one seed."""
    out = {}
    for name, load in SCORE_SETS.items():
        X, y = load(return_X_y=True)
        regression = name == "diabetes"
        rec = {"metric": "r2" if regression else "accuracy", "n_rows": int(X.shape[0])}
        for kind in ("inertia", "sklearn"):
            rec[kind] = {"scores": [], "fit_s": []}
        for seed in range(seeds):
            X_tr, X_te, y_tr, y_te = train_test_split(
                X, y, test_size=0.25, random_state=seed, stratify=None if regression else y)
            for kind in ("inertia", "sklearn"):
                model = score_model(kind, regression, seed)
                t0 = time.perf_counter()
                model.fit(X_tr, y_tr)
                rec[kind]["fit_s"].append(time.perf_counter() - t0)
                rec[kind]["scores"].append(float(model.score(X_te, y_te)))
        for kind in ("inertia", "sklearn"):
            v = np.array(rec[kind]["scores"])
            rec[kind].update(mean=float(v.mean()), std=float(v.std(ddof=1)))
        rec["largest_difference_on_a_seed"] = float(np.max(np.abs(
            np.subtract(rec["inertia"]["scores"], rec["sklearn"]["scores"]))))
        out[name] = rec
        print(f"{name:14s} {rec['metric']:8s} inertia {rec['inertia']['mean']:.4f} "
              f"(sd {rec['inertia']['std']:.4f}), scikit-learn {rec['sklearn']['mean']:.4f} "
              f"(sd {rec['sklearn']['std']:.4f}), largest difference on a seed "
              f"{rec['largest_difference_on_a_seed']:.1e}", flush=True)
    return out


def write(out_dir, prefix, record):
    stamp = time.strftime("%Y%m%d-%H%M%S")
    path = os.path.join(out_dir, f"{prefix}-{stamp}-{socket.gethostname()}.json")
    os.makedirs(out_dir, exist_ok=True)
    record = {"date": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
              "command": " ".join(["python benchmarks/estimators.py"] + sys.argv[1:]),
              "cpu_count": os.cpu_count(), **record}
    data = json.dumps(record, indent=1).encode()
    atomic_write(path, lambda f: f.write(data))
    print(f"wrote {path}")


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--quick", action="store_true", help="a short run that checks the script")
    p.add_argument("--reps", type=int, default=5, help="fit alternations (default 5)")
    p.add_argument("--grid-reps", type=int, default=3,
                   help="GridSearchCV alternations (default 3)")
    p.add_argument("--scores", action="store_true",
                   help="compare test scores on the five bundled sets instead of times")
    p.add_argument("--out", default=os.path.join(os.path.dirname(os.path.abspath(__file__)),
                                                  "results"))
    args = p.parse_args(argv)
    warnings.simplefilter("ignore", ConvergenceWarning)
    if args.scores:
        write(args.out, "estimator-scores", {"seeds": SCORE_SEEDS, "sets": compare_scores()})
        return 0
    epochs, grid_epochs, reps, folds, grid_reps = (20, 5, 2, 2, 1) if args.quick else \
        (200, 200, args.reps, 3, args.grid_reps)
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
    grid = compare_grids(X, y, grid_epochs, folds, grid_reps)
    print(f"GridSearchCV, 12 settings x {folds} folds, {grid_epochs} epochs, median of "
          f"{grid_reps}: inertia {grid['inertia']['median_s']:.2f} s, scikit-learn "
          f"{grid['sklearn']['median_s']:.2f} s, ratio {grid['ratio_sklearn_over_inertia']:.2f}",
          flush=True)
    write(args.out, "estimators", {"quick": args.quick, "fits": fits, "grid": grid})
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
