"""``inertia compare``: train copies of one network from the same initial weights under
several [lr weight_decay momentum] settings; a table of the cost and a plot."""

from __future__ import annotations

import os
import time
import warnings

import numpy as np

from .. import data as datasets
from ..ops import losses
from .. import training
from ..files import check_folder, check_output
from ..network import Network
from ..optim import CONVENTIONS, SGD
from .common import (DEFAULT_OUT, CLIError, add_data_args, at_least, check_fit_memory,
                     default_loss, describe, int_arg, load_data, parse_layers)


def add_parser(subparsers):
    p = subparsers.add_parser(
        "compare", help="compare momentum settings from one initialisation",
        description="Train copies of one network, all from the same initial "
                    "weights, under several [lr weight_decay momentum] "
                    "settings; print the cost every K epochs and plot it.")
    add_data_args(p)
    p.add_argument("--layers", default="8:sigmoid,8:tanh,1:linear",
                   help="UNITS:ACTIVATION,... (default 8:sigmoid,8:tanh,1:linear)")
    p.add_argument("--loss", choices=losses.NAMES, default="quadratic",
                   help="default quadratic")
    p.add_argument("--convention", choices=list(CONVENTIONS), default="neanderthal",
                   help="the momentum convention of the settings (default neanderthal)")
    p.add_argument("--settings", default=DEFAULT_SETTINGS,
                   help=f"'lr,weight_decay,momentum;...' (default {DEFAULT_SETTINGS})")
    p.add_argument("--segments", type=int_arg, default=8, help="rows of the table (default 8)")
    p.add_argument("--every", type=int_arg, default=50, help="epochs per row (default 50)")
    p.add_argument("--seeds", type=int_arg, default=1,
                   help="repeat over K initialisations, showing mean ± std (default 1)")
    p.add_argument("--seed", type=int_arg, default=0, help="first initialisation seed (default 0)")
    p.add_argument("--batch-size", type=int_arg, default=None,
                   help="rows a step (default: full batch)")
    p.add_argument("--engine", default="numpy", help="array engine: numpy (default) or torch")
    p.add_argument("--dtype", choices=["float32", "float64"], default="float32",
                   help="float32 (default) or float64")
    p.add_argument("--out", default=DEFAULT_OUT, help=f"folder for the plot ({DEFAULT_OUT})")
    p.add_argument("--plot", default=None,
                   help="plot path: .png, .pdf, .svg or .jpg (default OUT/compare.png)")
    p.add_argument("--quiet", action="store_true", help="no progress bar")
    p.set_defaults(func=cmd_compare)
    return p


DEFAULT_SETTINGS = "0.2,0,0;0.2,0.02,0;0.2,0.02,0.01;0.2,0.02,0.7"


def parse_settings(text):
    out = []
    for part in text.split(";"):
        part = part.strip()
        if not part:
            continue
        try:
            vals = [float(x) for x in part.split(",")]
        except ValueError:
            raise CLIError(f"--settings: {part!r} is not LR,WEIGHT_DECAY,MOMENTUM numbers") \
                from None
        if len(vals) != 3:
            raise CLIError(f"--settings: {part!r} needs three numbers: lr,weight_decay,momentum")
        out.append(tuple(vals))
    if not out:
        raise CLIError("--settings is empty: write e.g. '0.2,0,0;0.2,0.02,0.7'")
    return out


def run_compare(X, y, layers, loss, convention, settings, segments, every, seeds,
                batch_size=None, dtype="float32", engine="numpy", progress=True):
    """Train copies of one network (shared initial weights per seed) under each setting
    (lr, weight_decay, momentum) for ``segments`` x ``every`` epochs, as one
    ``inertia.sweep`` over the settings and the seeds (run k: setting k // len(seeds), seed
    k % len(seeds)). Returns an array (seeds, settings, segments * every) of per-epoch
    losses, NaN from the epoch where a run diverged on (that run stops there; the others
    finish). ``progress``: the sweep's progress bar (``inertia.sweep``'s)."""
    from ..sweeps import sweep

    opts = [SGD(lr=lr, momentum=mu, weight_decay=wd, convention=convention)
            for lr, wd, mu in settings]                              # checks every setting
    net = Network(X.shape[1], layers, seed=seeds[0], dtype=dtype, engine=engine)
    grid = [{"lr": lr, "weight_decay": wd, "momentum": mu} for lr, wd, mu in settings]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", training.DivergenceWarning)
        res = sweep(net, X, y, loss, opts[0], grid=grid, seeds=list(seeds),
                    schedule=[(every, {})] * segments, batch_size=batch_size,
                    progress=progress)
    loss = np.full((res.loss.shape[0], segments * every), np.nan)   # every run may stop early
    loss[:, :res.loss.shape[1]] = res.loss
    return loss.reshape(len(settings), len(seeds), -1).transpose(1, 0, 2)


def compare_checks(args):
    """Check ``compare``'s counts and output path before any work; returns the plot path."""
    for flag in ("--seeds", "--segments", "--every", "--batch-size"):
        at_least(args, flag, 1)
    at_least(args, "--seed", 0)
    if args.plot is not None:
        return check_output(args.plot, "--plot", picture=True)
    return os.path.join(check_folder(args.out, "--out"), "compare.png")


def cmd_compare(args):
    plot = compare_checks(args)
    table, label, _ = load_data(args)
    X, y = table.X, table.y
    layers = parse_layers(args.layers)
    loss = args.loss or default_loss(layers)
    losses.check(loss, layers[-1].activation)
    settings = parse_settings(args.settings)
    names = [f"[{lr:g} {wd:g} {mu:g}]" for lr, wd, mu in settings]
    tmp = Network(X.shape[1], layers, seed=0, dtype=args.dtype, engine=args.engine)
    check_compare_data(args, table, tmp, loss, len(settings))
    seeds = list(range(args.seed, args.seed + args.seeds))
    batch = "full batch" if args.batch_size is None else f"batch {args.batch_size}"
    where = label if label.endswith("samples)") else f"{label} ({len(X)} samples)"
    print(f"inertia compare: {describe(tmp)} on {where}, {loss} loss, "
          f"{args.convention} convention, {batch}")
    print(f"  {args.segments} x {args.every} epochs per setting [lr weight_decay momentum], "
          f"every column from the same initial weights"
          + (f"; mean ± std over {len(seeds)} seeds" if len(seeds) > 1 else f"; seed {seeds[0]}"))
    t0 = time.perf_counter()
    curves = run_compare(X, y, layers, loss, args.convention, settings, args.segments,
                         args.every, seeds, args.batch_size, args.dtype, args.engine,
                         progress=not args.quiet)
    secs = time.perf_counter() - t0
    mean = curves.mean(axis=0)          # NaN where a seed diverged
    print_table(args, names, seeds, curves)
    diverged = _report_diverged(names, seeds, curves)
    final = np.where(np.isnan(mean[:, -1]), np.inf, mean[:, -1])
    best = int(np.argmin(final))
    print((f"lowest final {loss} cost: {names[best]} at {mean[best, -1]:.4f}; "
           if np.isfinite(final[best]) else "every setting diverged; ")
          + f"{len(seeds) * len(settings)} runs in {secs:.1f} s")
    title = (f"Momentum comparison: {describe(tmp)}\n{args.convention} convention, {batch}, "
             + ("one shared initialisation" if len(seeds) == 1
                else f"mean of {len(seeds)} seeds (band: min to max)"))
    plot_compare(curves, settings, diverged, plot, title, loss)
    return 0 if np.isfinite(final[best]) else 3


def check_compare_data(args, table, net, loss, n_settings=1):
    """The data fits the network (inputs in range, buffers in memory, as many targets as
    outputs), before any training."""
    datasets.check_range(table.X, [str(c) for c in table.features], net.dtype, args.data)
    check_fit_memory(net, len(table.X), args.batch_size, 0, args.segments * args.every,
                     n_settings * args.seeds)
    y = table.y
    if net.n_outputs != (y.shape[1] if y.ndim == 2 else 1) and loss != "cross_entropy":
        raise CLIError(f"the data has {y.shape[1]} target column(s) but the network has "
                       f"{net.n_outputs} output(s): change the last layer in --layers")


def print_table(args, names, seeds, curves):
    """The cost of every setting (columns) every ``--every`` epochs (rows); mean ± std over
    the seeds when there are several; "diverged" once a run's cost is NaN."""
    marks = [args.every * (k + 1) for k in range(args.segments)]
    mean, std = curves.mean(axis=0), curves.std(axis=0)
    width = max(12, *(len(nm) + 1 for nm in names))
    if len(seeds) > 1:
        width = max(width, 19)
    print()
    print("epoch".rjust(6) + "".join(nm.rjust(width + 1) for nm in names))
    for ep in marks:
        cells = []
        for ki in range(len(names)):
            m = mean[ki, ep - 1]
            f = ".4f" if abs(m) < 1e6 else ".4g"
            cell = f"{m:{f}}" if len(seeds) == 1 else f"{m:{f}} ± {std[ki, ep - 1]:{f}}"
            if np.isnan(m):
                cell = "diverged"
            cells.append(cell.rjust(width + 1))
        print(f"{ep:6d}" + "".join(cells))
    print()


def plot_compare(curves, settings, diverged, path, title, loss):
    """The mean curve of each setting (a min-to-max band over several seeds) to ``path``."""
    from .. import plots

    mean = curves.mean(axis=0)
    x = np.arange(1, curves.shape[2] + 1)
    labels = [f"lr {lr:g}, weight decay {wd:g}, momentum {mu:g}" for lr, wd, mu in settings]
    cur = {nm: (x, mean[k]) for k, nm in enumerate(labels)}
    bands = None
    if curves.shape[0] > 1:
        bands = {nm: (curves[:, k].min(axis=0), curves[:, k].max(axis=0))
                 for k, nm in enumerate(labels)}
    plots.loss_curves(cur, path, title, ylabel=f"{loss} cost", bands=bands,
                      diverged={labels[k]: ep for k, ep in diverged.items()} or None)
    print(f"wrote the plot to {path}")


def _report_diverged(names, seeds, curves):
    """Print which settings diverged (their curves end in NaN) and in which epoch for each
    seed; returns {setting index: the first epoch (from 1) a seed diverged in}."""
    stopped = np.isnan(curves).any(axis=2)          # (seeds, settings)
    first = np.isnan(curves).argmax(axis=2) + 1      # the epoch each run diverged in
    out = {}
    for ki in np.flatnonzero(stopped.any(axis=0)):
        runs = [f"seed {seeds[si]} in epoch {first[si, ki]}"
                for si in np.flatnonzero(stopped[:, ki])]
        print(f"{names[ki]} diverged ({', '.join(runs)}): its runs stopped at their last "
              "finite state; try a smaller lr")
        out[int(ki)] = float(first[stopped[:, ki], ki].min())
    return out


