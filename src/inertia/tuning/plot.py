"""Pictures of a ``TuneResult`` (matplotlib, imported only here, in ``inertia.plots`` style).

race       left: the lr x momentum grid, each configuration coloured by the last rung it
           reached (diverged ones as crosses, the winner as a star, a slowed leader
           (``race.slower``) as a diamond); right: the loss curve of
           every configuration, coloured the same way, with the rungs as dashed lines
range      the loss against the learning rate, with the rise and the suggestion marked
curvature  the learning-rate axis with 1 / lambda_max, heavy ball's stability limit at the
           chosen momentum, and the choice
"""

from __future__ import annotations

import math

import numpy as np
from matplotlib.figure import Figure

from .. import plots
from .curvature import polyak_pair

DIVERGED = "#7f7f7f"


def draw(result, path):
    if result.method == "race":
        return _race(result, path)
    if result.method == "range":
        return _range(result, path)
    return _curvature(result, path)


def _reached(entry, n_rungs):
    """The rung a configuration reached: its dropped_at, or the last rung for the winner."""
    return n_rungs - 1 if entry["dropped_at"] is None else entry["dropped_at"]


def _race(result, path):
    fig = Figure(figsize=(12, 5), dpi=plots.DPI, layout="constrained")
    grid_ax, curve_ax = fig.subplots(1, 2, width_ratios=[1, 1.3])
    rungs = result.rungs
    colors = plots.CYCLE
    momenta = sorted({e["momentum"] for e in result.trace})
    row = {m: i for i, m in enumerate(momenta)}
    for e in result.trace:
        if e["diverged"] is not None:
            grid_ax.scatter(e["lr"], row[e["momentum"]], marker="x", color=DIVERGED, s=30)
            continue
        k = _reached(e, len(rungs))
        winner = e["lr"] == result.lr and e["momentum"] == result.momentum
        grid_ax.scatter(e["lr"], row[e["momentum"]], color=colors[k % len(colors)],
                        s=240 if winner else 25 + 22 * k,
                        marker="*" if winner else "D" if e["entered"] else "o",
                        edgecolor="black" if winner or e["entered"] else "none", zorder=3)
        curve = e["val_loss"] or e["loss"]
        curve_ax.plot(np.arange(1, len(curve) + 1), curve, color=colors[k % len(colors)],
                      lw=2.4 if winner else 0.9, alpha=1.0 if winner else 0.55,
                      zorder=3 if winner else 2)
    for k, (ep, count) in enumerate(rungs):
        grid_ax.scatter([], [], color=colors[k % len(colors)],
                        label=f"reached rung {k + 1} ({ep} epoch{'s' * (ep != 1)}, "
                              f"{count} configs)")
        curve_ax.axvline(ep, color=colors[k % len(colors)], ls="--", lw=0.8)
    grid_ax.scatter([], [], marker="x", color=DIVERGED, label="diverged, dropped at once")
    if any(e["entered"] for e in result.trace):
        grid_ax.scatter([], [], marker="D", color="white", edgecolor="black",
                        label="a leader slowed (past its best), trained from the start")
    grid_ax.set_xscale("log")
    grid_ax.set_yticks(range(len(momenta)), [f"{m:g}" for m in momenta])
    grid_ax.set_xlabel("learning rate (log scale)")
    grid_ax.set_ylabel("momentum")
    form = "Nesterov " if result.optimizer.nesterov else ""
    grid_ax.set_title(f"race: lr {result.lr:.3g}, {form}momentum {result.momentum:g} (star), "
                      f"cost {result.cost:.2f} runs", fontsize=11)
    grid_ax.legend(fontsize=8, loc="upper left", bbox_to_anchor=(0, -0.12), ncol=2)
    kind = "validation" if any(e["val_loss"] for e in result.trace) else "training"
    curve_ax.set_yscale("log")
    curve_ax.set_xlabel("epoch")
    curve_ax.set_ylabel(f"{kind} loss (log scale)")
    curve_ax.set_title("every configuration's loss; rungs dashed, winner bold", fontsize=11)
    curve_ax.grid(True, alpha=0.3)
    return plots.save(fig, path)


def _range(result, path):
    rt = result.range_test
    fig, ax = plots.new_figure()
    ax.plot(rt.lrs, rt.losses, color=plots.CYCLE[0], lw=0.8, alpha=0.5, label="loss")
    ax.plot(rt.lrs, rt.smoothed, color=plots.CYCLE[0], lw=1.8, label="smoothed")
    ax.axvline(rt.lr_rise, color=plots.CYCLE[1], ls="--", label=f"rise {rt.lr_rise:.3g}")
    ax.axvline(rt.lr, color=plots.CYCLE[2], ls="-", label=f"chosen lr {rt.lr:.3g}")
    ax.set_xscale("log")
    if plots._log_worthy(rt.losses):
        ax.set_yscale("log")
    ax.set_xlabel("learning rate (log scale)")
    ax.set_ylabel("loss")
    ax.set_title(f"LR range test, momentum {result.momentum:g}", fontsize=12)
    ax.grid(True, alpha=0.3)
    ax.legend(fontsize=9)
    return plots.save(fig, path)


def _curvature(result, path):
    c = result.curvature
    fig, ax = plots.new_figure(figsize=(8, 2.8))
    limit = 2 * (1 + result.momentum) / c.lambda_max
    marks = [(1 / c.lambda_max, "1 / lambda_max", plots.CYCLE[0]),
             (limit, f"stability limit at momentum {result.momentum:.3g}", plots.CYCLE[1]),
             (result.lr, f"chosen lr {result.lr:.3g}", plots.CYCLE[2])]
    for x, label, color in marks:
        ax.axvline(x, color=color, lw=2, label=label)
    ax.set_xscale("log")
    ax.set_xlim(min(m[0] for m in marks) / 10, max(m[0] for m in marks) * 10)
    ax.set_yticks([])
    ax.set_xlabel("learning rate (log scale)")
    how = _curvature_choice(c, result.momentum)
    ax.set_title(f"curvature: lambda_max {c.lambda_max:.3g}, {how}", fontsize=11)
    ax.legend(fontsize=9)
    return plots.save(fig, path)


def _curvature_choice(c, momentum):
    """How the curvature method chose, for the picture's title."""
    if c.lambda_min is None:
        return f"momentum {momentum:.3g}"
    if c.reliable and math.isclose(momentum, polyak_pair(c.lambda_max, c.lambda_min)[1]):
        return f"lambda_min {c.lambda_min:.3g}: Polyak's pair"
    why = ("mini-batches" if c.reliable else "unreliable" if c.lambda_min > 0
           else "not positive")
    return f"lambda_min {c.lambda_min:.3g} ({why}): momentum {momentum:.3g}"
