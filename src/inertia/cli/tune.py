"""``inertia tune``: choose the learning rate and the momentum for a training run (the race,
the curvature or the range test), print the choice, its cost and the race's rungs, and draw
the picture of the result."""

from __future__ import annotations

import math
import os
import time
import warnings

from .. import training
from ..files import check_folder
from ..optim import CONVENTIONS, SGD
from ..tuning import METHODS, check_settings, tune
from .common import CLIError, add_data_args, at_least, check_fit_memory, describe, fmt, int_arg
from .train import _model_args, _task_args, auto_or_number, prepare_run


def add_parser(subparsers):
    p = subparsers.add_parser(
        "tune", help="choose the learning rate and the momentum",
        description="Choose lr and momentum for training a network on a built-in set or a "
                    "data file (inertia.tune): print the choice, what it cost and the "
                    "race's rungs; draw the result.")
    add_data_args(p, default=None)
    _model_args(p)
    _task_args(p)
    p.add_argument("--epochs", type=int_arg, default=100, help="epochs of the run (default 100)")
    p.add_argument("--batch-size", type=int_arg, default=None,
                   help="mini-batch size (default: full batch; 1: online)")
    p.add_argument("--method", choices=list(METHODS), default="race",
                   help="race (default), curvature or range")
    p.add_argument("--budget", type=float, default=None,
                   help="the race's compute limit in runs of --epochs (default 12)")
    p.add_argument("--lr", type=auto_or_number, default="auto",
                   help="auto (default) or a number kept fixed (the race chooses momentum)")
    p.add_argument("--momentum", type=auto_or_number, default="auto",
                   help="auto (default) or a number kept fixed (the race chooses lr)")
    p.add_argument("--convention", choices=list(CONVENTIONS), default="pytorch",
                   help="the momentum convention of the values printed (default pytorch)")
    p.add_argument("--nesterov", action="store_true",
                   help="choose them for Nesterov momentum (method race)")
    p.add_argument("--test-fraction", type=float, default=None,
                   help="fraction held out as validation data for the race (default 0)")
    p.add_argument("--seed", type=int, default=0,
                   help="seed of weights, shuffling and split (default 0)")
    p.add_argument("--engine", default=None, help="array engine: numpy (default) or torch")
    p.add_argument("--device", default=None, help="device of the torch engine")
    p.add_argument("--dtype", choices=["float32", "float64"], default=None,
                   help="float32 (default) or float64")
    p.add_argument("--standardize", action="store_true", help="standardise inputs and target")
    p.add_argument("--out", default="inertia-out", help="folder for tune.png (inertia-out)")
    p.set_defaults(func=cmd_tune, resume=None)
    return p


def check_tune_args(args):
    """Counts, fractions and the output folder, before any work. Returns the picture's
    path."""
    for flag in ("--epochs", "--batch-size"):
        at_least(args, flag, 1)
    at_least(args, "--seed", 0)
    if args.test_fraction is not None and not 0 <= args.test_fraction < 1:
        raise CLIError(f"--test-fraction must be in [0, 1), got {args.test_fraction}")
    if args.budget is not None and not 0 < args.budget < math.inf:
        raise CLIError(f"--budget must be a positive number of runs, got {args.budget:g}")
    return os.path.join(check_folder(args.out, "--out"), "tune.png")


def cmd_tune(args):
    path = check_tune_args(args)
    try:                         # the budget against the race's grid, before the data
        check_settings(args.epochs, args.batch_size, args.budget, args.method,
                       _optimizer(args), args.lr, args.momentum)
    except ValueError as ex:
        raise CLIError(str(ex)) from None
    if args.data is None:
        args.data = "smooth-regression"
    run = prepare_run(args)
    n_train, n_val = len(run.train[0]), len(run.val[0]) if run.val else 0
    check_fit_memory(run.net, n_train, args.batch_size, n_val, args.epochs)
    batch = "full batch" if args.batch_size is None else f"batch {args.batch_size}"
    print(f"inertia tune: {describe(run.net)} on {run.label}, {n_train} training"
          + (f" / {n_val} validation" if n_val else "") + f" samples, {run.loss} loss, "
          f"{batch}, {args.epochs} epochs; method {args.method}")
    t0 = time.perf_counter()
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", training.DivergenceWarning)
            result = tune(run.net, *run.train, run.loss, args.epochs,
                          batch_size=args.batch_size, validation_data=run.val,
                          budget=args.budget, method=args.method,
                          optimizer=_optimizer(args), seed=args.seed,
                          lr=args.lr, momentum=args.momentum)
    except ValueError as ex:
        raise CLIError(str(ex)) from None
    secs = time.perf_counter() - t0
    print_result(result, secs)
    result.plot(path)
    print(f"wrote the picture of the result to {path}")
    return 0


def _optimizer(args):
    """The SGD whose convention (and Nesterov form) the choice is for."""
    if args.nesterov and args.momentum == 0:
        raise CLIError("--nesterov needs a momentum above 0: leave --momentum auto or give "
                       "one such as 0.9 (Nesterov with momentum 0 is plain SGD)")
    try:
        return SGD(1.0, momentum=0.5, nesterov=args.nesterov, convention=args.convention)
    except ValueError as ex:             # a convention without a Nesterov form
        raise CLIError(f"--nesterov: {ex}") from None


def print_result(result, secs):
    """The choice, its cost, the wall time and (the race) how many survived each rung."""
    s = result.summary()
    form = "Nesterov, " if s.nesterov else ""
    print(f"chosen: lr {s.lr:.4g}, momentum {s.momentum:g} ({form}{s.convention} convention)")
    print(f"cost: {s.cost:.2f} runs of {s.epochs} epochs"
          + (f", {s.configs} configurations tried" if s.configs else "")
          + f"; {secs:.1f} s")
    if result.rungs:
        print("  rung  epochs  trained  diverged  best score")
        prev = 0
        for k, (end, _) in enumerate(result.rungs):
            trained = [e for e in result.trace if e["entered"] <= k
                       and (e["dropped_at"] is None or e["dropped_at"] >= k)
                       and (e["diverged"] is None or e["diverged"] > prev or k == 0)]
            lost = [e for e in trained if e["diverged"] is not None]
            scores = [_score_at(e, end) for e in trained if e["diverged"] is None]
            print(f"  {k + 1:4d}  {end:6d}  {len(trained):7d}  {len(lost):8d}  "
                  + (fmt(min(scores)) if scores else "-"))
            prev = end
        for e in result.trace:
            if e["entered"]:
                print(f"  rung {e['entered'] + 1} also trained lr {e['lr']:.4g}, momentum "
                      f"{e['momentum']:g} from the start: the leader slowed, its loss having "
                      "passed its best")


def _score_at(entry, end):
    """The race's score (mean over the last 10%) of a configuration's curve up to ``end``."""
    from ..tuning.race import score

    curve = entry["val_loss"] or entry["loss"]
    return score(curve[:end])
