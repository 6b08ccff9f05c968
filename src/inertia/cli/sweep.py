"""``inertia sweep``: train a grid of learning rates and momenta (times seeds) and print
the final losses best first; write a heatmap over lr x momentum and the loss curves.

    inertia sweep --lr 0.01:1:8log --momentum 0,0.5,0.9,0.95,0.99 --seeds 3 --epochs 200 \\
        [--scheduler tcp://HOST:8786] [--out DIR]
"""

from __future__ import annotations

import os
import time
import warnings

import numpy as np

from .. import data as datasets
from ..ops import losses
from ..files import check_folder
from ..optim import CONVENTIONS, QHM, SGD
from ..sweeps import sweep
from ..training import DivergenceWarning
from . import common
from .train import _task_args, prepare_run

GRID_HELP = "A:B:Nlog (N log-spaced values), A:B:N (N evenly spaced) or a comma list"
# grid flag -> (hyperparameter, optimizers that take it)
GRID_FLAGS = {"lr": ("lr", ("sgd", "qhm")), "momentum": ("momentum", ("sgd", "qhm")),
              "nu": ("nu", ("qhm",)), "weight_decay": ("weight_decay", ("sgd", "qhm"))}


def parse_grid(flag, text):
    """'0.01:1:8log' -> 8 log-spaced values; '0:0.9:4' -> 4 evenly spaced; '0,0.5,0.9' ->
    those values. One-line CLIError naming the flag otherwise."""
    text = text.strip()
    parts = text.split(":")
    if len(parts) == 3:
        log = parts[2].strip().lower().endswith("log")
        count = parts[2].strip()[:-3] if log else parts[2].strip()
        try:
            a, b, n = float(parts[0]), float(parts[1]), int(count)
        except ValueError:
            raise common.CLIError(f"{flag} {text!r}: write {GRID_HELP}, e.g. 0.01:1:8log") \
                from None
        if n < 1 or not (np.isfinite(a) and np.isfinite(b)):
            raise common.CLIError(f"{flag} {text!r}: the count must be at least 1 and the ends "
                               "finite numbers")
        if log and not (a > 0 and b > 0):
            raise common.CLIError(f"{flag} {text!r}: log-spaced values need positive ends; use "
                               "A:B:N for a linear range")
        datasets.check_memory(64 * n, f"{flag} {text!r}: {n:,} values")
        values = np.geomspace(a, b, n) if log else np.linspace(a, b, n)
        return _once(flag, text, [float(f"{v:.6g}") for v in values])
    try:
        values = [float(v) for v in text.split(",") if v.strip()]
    except ValueError:
        raise common.CLIError(f"{flag} {text!r}: write {GRID_HELP}") from None
    if not values or not all(np.isfinite(values)):
        raise common.CLIError(f"{flag} {text!r}: give finite numbers, {GRID_HELP}")
    return _once(flag, text, values)


def _once(flag, text, values):
    """``values``, or a one-line CLIError when one is given twice (each would be trained
    twice; six significant digits, as the table prints them)."""
    seen = set()
    for v in values:
        if v in seen:
            raise common.CLIError(f"{flag} {text!r} gives {v:g} twice (values are kept to six "
                                  "significant digits): give each value once")
        seen.add(v)
    return values


def build_grid(args):
    """{hyperparameter: values} from the grid flags that apply to ``args.optimizer``."""
    grid = {}
    for flag, (name, kinds) in GRID_FLAGS.items():
        text = getattr(args, flag)
        if text is None:
            continue
        opt_flag = "--" + flag.replace("_", "-")
        if args.optimizer not in kinds:
            raise common.CLIError(f"{opt_flag} does not apply to --optimizer {args.optimizer}")
        grid[name] = parse_grid(opt_flag, text)
    return grid


def base_optimizer(args):
    if args.optimizer == "qhm":
        if args.convention is not None or args.nesterov:
            raise common.CLIError("--convention and --nesterov apply to --optimizer sgd only")
        return QHM(lr=0.01)
    return SGD(lr=0.01, momentum=0.9 if args.nesterov else 0.0, nesterov=args.nesterov,
               convention=args.convention or "pytorch")


def check_args(args):
    """Everything that needs no data: counts, the grid, --layers when given, the output
    folder. Returns (grid, folder)."""
    for flag, least in (("--seeds", 1), ("--seed", 0), ("--epochs", 1), ("--batch-size", 1)):
        common.at_least(args, flag, least)
    if args.test_fraction is not None and not 0 <= args.test_fraction < 1:
        raise common.CLIError(f"--test-fraction must be in [0, 1), got {args.test_fraction}")
    if args.scheduler is not None:
        try:
            import dask.distributed  # noqa: F401
        except ImportError:
            raise common.CLIError("--scheduler needs dask.distributed: pip install "
                               "'inertia[dask]'") from None
    grid = build_grid(args)
    if args.layers is not None:
        layers = common.parse_layers(args.layers)
        losses.check(args.loss or common.default_loss(layers), layers[-1].activation)
    return grid, check_folder(args.out, "--out")


def check_values(opt, grid):
    """Each grid value against the optimizer, the error naming its flag."""
    for name, values in grid.items():
        for v in values:
            try:
                opt.check(**{name: v})
            except ValueError as ex:
                raise common.CLIError(f"--{name.replace('_', '-')} {v:g}: {ex}") from None


def cmd_sweep(args):
    grid, out = check_args(args)
    opt = base_optimizer(args)
    check_values(opt, grid)
    run = prepare_run(args)          # train's data path: files, classes, scaling, split
    net, (X, y), loss = run.net, run.train, run.loss
    n_val = len(run.val[0]) if run.val else 0
    points = int(np.prod([len(v) for v in grid.values()]))
    common.check_fit_memory(net, len(X), args.batch_size, n_val, args.epochs,
                            points * args.seeds)
    seeds = list(range(args.seed, args.seed + args.seeds))
    batch = "full batch" if args.batch_size is None else f"batch {args.batch_size}"
    where = f"on the Dask cluster at {args.scheduler}" if args.scheduler else "here"
    task = f"{len(run.classes)}-class classification, " if run.classes is not None else ""
    print(f"inertia sweep: {common.describe(net)} on {run.label}"
          f"{'' if 'samples' in run.label else f' ({len(X)} samples)'}"
          f"{f' / {n_val} validation' if n_val else ''}, {task}{loss} loss, "
          f"{_describe(opt)}, {batch}, {args.epochs} epochs")
    print(f"  {points} grid points x {len(seeds)} seeds = {points * len(seeds)} runs, {where}")
    t0 = time.perf_counter()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DivergenceWarning)
        result = sweep(net, X, y, loss, opt, grid, seeds=seeds, epochs=args.epochs,
                       batch_size=args.batch_size, validation_data=run.val,
                       cluster=args.scheduler,
                       progress=not args.quiet)
    secs = time.perf_counter() - t0
    print()
    print_table(result, len(seeds))
    stopped = sum(d is not None for d in result.diverged)
    print()
    if stopped:
        print(f"{stopped} of {len(result)} runs diverged (stopped at their last finite state)")
    best = result.summary()[0]
    print((f"best: {_point(best[0])} at {best[1]:.6g} (mean over {best[3]} seeds); "
           if np.isfinite(best[1]) else "every run diverged; ")
          + f"{len(result)} runs in {secs:.1f} s")
    write_pictures(result, out)
    return 0 if np.isfinite(best[1]) else 3


def _describe(opt):
    if isinstance(opt, QHM):
        return "QHM"
    return f"SGD ({opt.convention.name} convention{', nesterov' if opt.nesterov else ''})"


def _point(point):
    return ", ".join(f"{k} {v:g}" for k, v in point.items())


def print_table(result, n_seeds):
    """The grid points, best first: each hyperparameter, the mean and spread (std) of the
    final loss over the seeds that finished, and how many seeds diverged."""
    names = result.names
    what = "final " + result.final_name         # e.g. "final validation mse"
    w = max(16, len(what) + 2)
    head = "".join(f"{n:>12}" for n in names)
    print(head + f"{what:>{w}}{'± std':>12}{'diverged':>10}")
    for point, mean, std, finished, stopped in result.summary():
        cells = "".join(f"{point[n]:>12g}" for n in names)
        if finished:
            cells += f"{mean:>{w}.6g}{std:>12.3g}"
        else:
            cells += f"{'diverged':>{w}}{'-':>12}"
        print(cells + f"{f'{stopped}/{n_seeds}':>10}")


def write_pictures(result, out):
    y = "momentum" if "momentum" in result.names and result.names[0] != "momentum" else None
    x = result.names[0]
    if y is None and len(result.names) > 1:
        y = result.names[1]
    heat = result.plot(os.path.join(out, "sweep-heatmap.png"), x=x, y=y, what="heatmap")
    curves = result.plot(os.path.join(out, "sweep-curves.png"), x=x, y=y, what="curves")
    print(f"wrote {heat} and {curves}")


def add_parser(sub):
    """The ``sweep`` subcommand on the ``inertia`` parser's subparsers."""
    p = sub.add_parser("sweep", help="train a grid of learning rates and momenta over seeds",
                       description="Train every combination of the grid values for each "
                                   "seed (runs with one seed share their initial weights "
                                   "and shuffling); print the final losses best first and "
                                   "draw them over lr x momentum.")
    common.add_data_args(p)
    p.add_argument("--layers", default=None,
                   help="UNITS:ACTIVATION[:PARAMETER...],... (default 8:sigmoid,8:tanh and "
                        "an output layer for the task: 1:linear; K:softmax or 1:sigmoid for "
                        "classes)")
    p.add_argument("--loss", choices=losses.NAMES, default=None,
                   help="default: cross_entropy for softmax, bce for sigmoid, else mse")
    _task_args(p)
    p.add_argument("--test-fraction", type=float, default=None,
                   help="fraction held out as validation data: each run's validation loss "
                        "is recorded (default 0)")
    p.add_argument("--standardize", action="store_true", help="standardise inputs and target")
    p.add_argument("--optimizer", choices=["sgd", "qhm"], default="sgd")
    p.add_argument("--convention", choices=list(CONVENTIONS), default=None,
                   help="momentum convention of sgd (default pytorch)")
    p.add_argument("--nesterov", action="store_true", help="Nesterov momentum (sgd)")
    p.add_argument("--lr", default="0.01:1:8log", help=f"learning rates: {GRID_HELP} "
                                                        "(default 0.01:1:8log)")
    p.add_argument("--momentum", default="0,0.5,0.9,0.95,0.99",
                   help="momenta (default 0,0.5,0.9,0.95,0.99)")
    p.add_argument("--nu", default=None, help="QHM's nu values (--optimizer qhm)")
    p.add_argument("--weight-decay", default=None, help="weight decay values")
    p.add_argument("--seeds", type=common.int_arg, default=3,
                   help="initialisations per grid point (default 3)")
    p.add_argument("--seed", type=common.int_arg, default=0, help="first seed (default 0)")
    p.add_argument("--epochs", type=common.int_arg, default=200, help="epochs (default 200)")
    p.add_argument("--batch-size", type=common.int_arg, default=None,
                   help="mini-batch size (default: full batch; 1: online)")
    p.add_argument("--engine", default="numpy", help="array engine: numpy (default) or torch")
    p.add_argument("--device", default=None, help="device of the torch engine")
    p.add_argument("--dtype", choices=["float32", "float64"], default="float32",
                   help="float32 (default) or float64")
    p.add_argument("--scheduler", default=None,
                   help="a Dask scheduler address (tcp://HOST:8786): run the sweep there")
    p.add_argument("--out", default=common.DEFAULT_OUT,
                   help=f"folder for the pictures (default {common.DEFAULT_OUT})")
    p.add_argument("--quiet", action="store_true", help="no progress bar")
    p.set_defaults(func=cmd_sweep, resume=None, hidden="8:sigmoid,8:tanh")
    return p
