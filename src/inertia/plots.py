"""matplotlib figures, drawn with the object API (no pyplot, no display needed).

Imported only when a command draws, so ``import inertia`` never loads matplotlib. Methods keep
their colours across every figure: plain descent, momentum and Nesterov always look the same.
"""

from __future__ import annotations

import numpy as np
from matplotlib.figure import Figure

from .files import atomic_write, picture_format

# one colour per kind of method, the same in every figure
COLORS = {"plain": "#1f77b4", "momentum": "#d62728", "nesterov": "#2ca02c"}
CYCLE = ["#1f77b4", "#d62728", "#2ca02c", "#ff7f0e", "#9467bd", "#8c564b", "#e377c2",
         "#7f7f7f", "#bcbd22", "#17becf"]
FIGSIZE = (8, 5)
DPI = 110


def new_figure(figsize=FIGSIZE):
    fig = Figure(figsize=figsize, dpi=DPI, layout="constrained")
    return fig, fig.add_subplot()


def save(fig, path):
    """Write the figure atomically, in the format its extension names (png, pdf, svg, jpg;
    anything else is a one-line ValueError before drawing)."""
    fmt = picture_format(path)
    atomic_write(path, lambda f: fig.savefig(f, format=fmt, dpi=DPI))
    return path


def _log_worthy(values):
    v = np.asarray([x for x in values if np.isfinite(x) and x > 0])
    return v.size > 1 and v.max() / v.min() > 30


def loss_curves(curves, path, title, xlabel="epoch", ylabel="loss", colors=None, bands=None,
                val_curves=None, val_label="{} (test)", diverged=None):
    """Plot named curves {label: (x, y)} (optionally with {label: (lo, hi)} spread bands and
    dashed validation curves, labelled ``val_label.format(label)``) and save to ``path``.
    ``diverged`` {label: x}: those runs diverged at x (an X marker at the curve's last
    finite point, "(diverged at x)" in the legend). Log scale when the values span
    decades."""
    fig, ax = new_figure()
    allv = []
    for k, (label, (x, y)) in enumerate(curves.items()):
        c = (colors or {}).get(label, CYCLE[k % len(CYCLE)])
        where = (diverged or {}).get(label)
        ax.plot(x, y, color=c, lw=1.6,
                label=label if where is None else f"{label} (diverged at {where:g})")
        if where is not None:
            _mark_divergence(ax, x, y, where, c)
        allv.extend(np.asarray(y, dtype=float).ravel())
        if bands and label in bands:
            lo, hi = bands[label]
            ax.fill_between(x, lo, hi, color=c, alpha=0.18, lw=0)
        if val_curves and label in val_curves:
            vx, vy = val_curves[label]
            ax.plot(vx, vy, color=c, lw=1.2, ls="--", label=val_label.format(label))
    if _log_worthy(allv):
        ax.set_yscale("log")
        ylabel += " (log scale)"
    ax.set_title(title, fontsize=12)
    ax.set_xlabel(xlabel, fontsize=11)
    ax.set_ylabel(ylabel, fontsize=11)
    ax.grid(True, which="major", alpha=0.3)
    ax.legend(fontsize=9, framealpha=0.9)
    return save(fig, path)


def _mark_divergence(ax, x, y, where, color):
    """An X at (where, the curve's last finite value) and a dotted line to it."""
    y = np.asarray(y, dtype=float)
    ok = np.flatnonzero(np.isfinite(y))
    last = y[ok[-1]] if ok.size else 0.0
    if ok.size:
        ax.plot([np.asarray(x)[ok[-1]], where], [last, last], color=color, lw=1.0, ls=":")
    ax.plot([where], [last], marker="X", ms=11, color=color, mec="black", ls="none")
    ax.annotate("diverged", (where, last), textcoords="offset points", xytext=(-8, 8),
                ha="right", fontsize=9, color=color)


def canvas_frame(fig, colors=64):
    """The figure as drawn now, as a palette image (one frame of a GIF)."""
    from PIL import Image

    rgba = np.asarray(fig.canvas.buffer_rgba())
    return Image.fromarray(rgba[..., :3].copy()).quantize(colors=colors, method=2)


def save_gif(frames, path, frame_ms, last_ms=1500):
    """Write PIL frames as a looping GIF, atomically; the last frame is held ``last_ms``."""
    durations = [frame_ms] * (len(frames) - 1) + [last_ms]
    atomic_write(path, lambda fh: frames[0].save(fh, format="GIF", save_all=True,
                                                 append_images=frames[1:],
                                                 duration=durations, loop=0))
    return path
