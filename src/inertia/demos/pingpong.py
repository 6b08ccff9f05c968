"""The mini-batch ping-pong: epoch by epoch, plain mini-batch SGD's loss zig-zags; momentum
averages the batches' conflicting gradients and zig-zags less.

A 1000-500-1 sigmoid network learns random labels (``inertia.datasets.random_binary``: N(0, 1)
inputs, the first half labelled 0, the second half 1) with BCE loss, shuffled batches of 64 and
lr 1e-5, once with plain SGD and once with momentum 0.9 (PyTorch's convention), both from the
same initial weights and with the same shuffling. The zig-zag measure of a loss curve is the
mean absolute change of the loss from one epoch to the next, divided by the mean loss.
"""

from __future__ import annotations

import os
import time
import warnings

import numpy as np

from . import DemoResult

NAME = "pingpong"
SUMMARY = "mini-batch SGD's loss zig-zags between epochs; momentum 0.9 damps it"

DEFAULT_EPOCHS = 1000         # about a minute on two cores; 2000 is the full experiment
DEFAULTS = {"samples": 1000, "dim": 1000, "hidden": 500, "batch_size": 64, "lr": 1e-5,
            "momentum": 0.9, "seed": 0}


def add_arguments(p):
    p.add_argument("--epochs", type=int, default=DEFAULT_EPOCHS,
                   help=f"epochs per method (default {DEFAULT_EPOCHS}, about a minute; "
                        "2000 runs the full experiment)")
    p.add_argument("--samples", type=int, default=DEFAULTS["samples"],
                   help=f"number of random samples (default {DEFAULTS['samples']})")
    p.add_argument("--dim", type=int, default=DEFAULTS["dim"],
                   help=f"input dimension (default {DEFAULTS['dim']})")
    p.add_argument("--hidden", type=int, default=DEFAULTS["hidden"],
                   help=f"sigmoid units in the hidden layer (default {DEFAULTS['hidden']})")
    p.add_argument("--batch-size", type=int, default=DEFAULTS["batch_size"],
                   help=f"mini-batch size (default {DEFAULTS['batch_size']})")
    p.add_argument("--lr", type=float, default=DEFAULTS["lr"],
                   help=f"learning rate of both methods (default {DEFAULTS['lr']:g})")
    p.add_argument("--momentum", type=float, default=DEFAULTS["momentum"],
                   help=f"momentum of the second run, pytorch convention "
                        f"(default {DEFAULTS['momentum']:g})")
    p.add_argument("--seed", type=int, default=DEFAULTS["seed"],
                   help="seed of the data, the initial weights and the shuffling (default 0)")


# ------------------------------------------------------------------------------ compute
def zigzag(loss):
    """Mean absolute change of the loss between consecutive epochs, over the mean loss."""
    loss = np.asarray(loss, dtype=float)
    if loss.size < 2:
        return float("nan")
    return float(np.abs(np.diff(loss)).mean() / loss.mean())


def experiment(samples=1000, dim=1000, hidden=500, batch_size=64, lr=1e-5, epochs=DEFAULT_EPOCHS,
               momentum=0.9, seed=0, progress=False):
    """Train plain SGD and momentum from one initialisation on ``random_binary``; return the
    per-epoch losses, zig-zag measures and timings of both, and their ratio."""
    from .. import data
    from ..network import Dense, Network
    from ..optim.sgd import SGD
    from ..training import DivergenceWarning, fit

    if not isinstance(epochs, (int, np.integer)) or epochs < 2:
        raise ValueError(f"--epochs must be at least 2 (the zig-zag compares consecutive "
                         f"epochs), got {epochs}")
    if not isinstance(batch_size, (int, np.integer)) or batch_size < 1:
        raise ValueError(f"--batch-size must be a positive integer, got {batch_size}")
    if momentum == 0:
        raise ValueError("--momentum 0 would compare plain SGD with itself: give e.g. 0.9")
    X, y = data.random_binary(samples, dim, seed=seed)
    base = Network(dim, [Dense(hidden, "sigmoid"), Dense(1, "sigmoid")], seed=seed)
    opts = {"plain": SGD(lr=lr, momentum=0.0, convention="pytorch"),
            "momentum": SGD(lr=lr, momentum=momentum, convention="pytorch")}   # checks both
    runs = {}
    for kind, opt in opts.items():
        net = base.copy()
        t0 = time.perf_counter()
        with warnings.catch_warnings():      # a diverged run is refused below, in one line
            warnings.simplefilter("ignore", RuntimeWarning)
            warnings.simplefilter("ignore", DivergenceWarning)
            hist = fit(net, X, y, loss="bce", optimizer=opt, epochs=int(epochs),
                       batch_size=int(batch_size), shuffle=True, seed=seed, progress=progress)
        if hist.diverged is not None:
            raise ValueError(f"the {kind} run diverged at lr {lr:g}: give a smaller --lr")
        loss = np.asarray(hist.loss)
        runs[kind] = {"loss": loss, "seconds": time.perf_counter() - t0, "zigzag": zigzag(loss),
                      "up_fraction": float(np.mean(np.diff(loss) > 0))}
    zp, zm = runs["plain"]["zigzag"], runs["momentum"]["zigzag"]
    ratio = zm / zp if zp > 0 else float("nan")
    return {"runs": runs, "ratio": ratio, "epochs": int(epochs), "samples": samples,
            "dim": dim, "hidden": hidden, "batch_size": int(batch_size), "lr": lr,
            "momentum": momentum, "seed": seed}


# --------------------------------------------------------------------------------- draw
def _verdict(ratio):
    if not np.isfinite(ratio):
        return "cannot be compared with plain SGD's (plain SGD's loss never changed)"
    return (f"zig-zags {100 * abs(1 - ratio):.1f}% {'less' if ratio < 1 else 'more'} "
            "than plain SGD's")


def _labels(r):
    return {"plain": "plain SGD (momentum 0)",
            "momentum": f"momentum {r['momentum']:g} (pytorch convention)"}


def draw(r, path):
    from .. import plots

    fig, ax = plots.new_figure(figsize=(8.5, 6))
    ax.remove()
    top, bottom = fig.subplots(2, 1, sharex=True, height_ratios=[3, 2])
    labels = _labels(r)
    # the rolling mean's window: at most the changes there are (a 2-epoch run has one)
    window = min(max(2, min(50, r["epochs"] // 10)), r["epochs"] - 1)
    means = {}
    for kind in ("plain", "momentum"):
        run = r["runs"][kind]
        loss = run["loss"]
        ep = np.arange(1, len(loss) + 1)
        c = plots.COLORS[kind]
        top.plot(ep, loss, color=c, lw=0.9, label=f"{labels[kind]}: zig-zag {run['zigzag']:.3g}")
        change = np.abs(np.diff(loss))
        rolling = np.convolve(change, np.ones(window) / window, mode="valid")
        bottom.plot(ep[window:], rolling, color=c, lw=1.6)
        bottom.axhline(change.mean(), color=c, lw=1, ls="--")
        means[kind] = change.mean()
    top.set_ylabel("BCE loss (mean over the epoch)", fontsize=11)
    top.legend(fontsize=9, loc="upper right", framealpha=0.9,
               title="zig-zag = mean |change between epochs| / mean loss", title_fontsize=9)
    top.grid(True, alpha=0.3)
    bottom.set_ylim(0, None)
    bottom.set_ylabel(f"|change of the loss|\nbetween epochs,\nmean of {window} epochs",
                      fontsize=10)
    bottom.set_xlabel("epoch", fontsize=11)
    bottom.set_title(f"|change| between epochs, mean over the whole run (dashed): plain "
                     f"{means['plain']:.3g}, momentum {means['momentum']:.3g}", fontsize=10)
    bottom.grid(True, alpha=0.3)
    bottom.set_xlim(1, r["epochs"])
    size = f"{r['dim']}-{r['hidden']}-1 sigmoid network"
    fig.suptitle(f"Mini-batch ping-pong: {size} on {r['samples']} random labels, batches of "
                 f"{r['batch_size']}, lr {r['lr']:g}\n"
                 f"momentum's loss {_verdict(r['ratio'])} "
                 "(same initial weights, same shuffling)", fontsize=12)
    return plots.save(fig, path)


# ---------------------------------------------------------------------------------- run
def describe(r):
    labels = {"plain": "plain SGD   ", "momentum": f"momentum {r['momentum']:g}"}
    lines = [f"{r['dim']}-{r['hidden']}-1 sigmoid network on random_binary({r['samples']}, "
             f"{r['dim']}) (random labels), BCE loss, shuffled batches of {r['batch_size']}, "
             f"lr {r['lr']:g}, {r['epochs']} epochs; both from the same initial weights and "
             "shuffling"]
    for kind in ("plain", "momentum"):
        run = r["runs"][kind]
        loss = run["loss"]
        lines.append(f"  {labels[kind]}: loss {loss[0]:.4f} -> {loss[-1]:.4f}, zig-zag "
                     f"{run['zigzag']:.4g} (mean |change between epochs| / mean loss), the loss "
                     f"rose in {100 * run['up_fraction']:.0f}% of epochs; "
                     f"{1000 * run['seconds'] / r['epochs']:.1f} ms/epoch")
    ratio = r["ratio"]
    if np.isfinite(ratio):
        lines.append(f"momentum's zig-zag is {ratio:.3f} x plain SGD's: its loss "
                     + _verdict(ratio))
    else:
        lines.append("plain SGD's loss did not change between epochs: no ratio to report")
    last = r["samples"] % r["batch_size"]
    if last and r["samples"] > r["batch_size"]:
        lines.append(f"note: {r['samples']} samples in batches of {r['batch_size']} leave a last "
                     f"batch of {last}, which counts as much as a full batch in the epoch's mean "
                     "loss; which samples land in it changes every epoch")
    return lines


def run(args):
    r = experiment(samples=args.samples, dim=args.dim, hidden=args.hidden,
                   batch_size=args.batch_size, lr=args.lr, epochs=args.epochs,
                   momentum=args.momentum, seed=args.seed, progress=not args.quiet)
    lines = describe(r)
    if getattr(args, "gif", False):
        lines.append("(this demo draws no animation: --gif is ignored)")
    files = [draw(r, os.path.join(args.out, "pingpong.png"))]
    findings = {"plain_zigzag": r["runs"]["plain"]["zigzag"],
                "momentum_zigzag": r["runs"]["momentum"]["zigzag"], "ratio": r["ratio"],
                "plain_final": float(r["runs"]["plain"]["loss"][-1]),
                "momentum_final": float(r["runs"]["momentum"]["loss"][-1])}
    return DemoResult(lines=lines, files=files, findings=findings)
