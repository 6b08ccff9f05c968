"""The pictures of a sweep: the final loss as a heatmap over two grid axes and the loss
curves, in ``inertia.plots``' style. matplotlib is imported here, only when drawing."""

from __future__ import annotations

import numpy as np

WHAT = ("both", "heatmap", "curves")


def _check(result, path, x, y, color, what):
    from ..files import check_output

    if what not in WHAT:
        raise ValueError(f"what must be one of {', '.join(WHAT)}, got {what!r}")
    for flag, axis in (("x", x), ("y", y), ("color", color)):
        if axis is not None and axis not in result.names:
            raise ValueError(f"{flag}={axis!r} is not an axis of the grid: use one of "
                             f"{', '.join(result.names)}" + (" or None" if flag != "x" else ""))
    if x is None:
        raise ValueError(f"x must name a grid axis: one of {', '.join(result.names)}")
    if y is not None and y == x:
        raise ValueError(f"x and y are both {x!r}: pick two different grid axes or y=None")
    if path is not None:
        check_output(path, "path", picture=True)


def plot(result, path, x, y, color, what):
    """See ``SweepResult.plot``."""
    _check(result, path, x, y, color, what)
    from matplotlib.figure import Figure

    from .. import plots

    panels = 2 if what == "both" else 1
    fig = Figure(figsize=(6.5 * panels, 5), dpi=plots.DPI, layout="constrained")
    axes = fig.subplots(1, panels, squeeze=False)[0]
    if what in ("both", "heatmap"):
        heatmap(fig, axes[0], result, x, y)
    if what in ("both", "curves"):
        curves(fig, axes[-1], result, color or x)
    if path is None:
        return fig
    with np.errstate(over="ignore"):        # diverged curves far outside a log axis
        return plots.save(fig, path)


def _values(result, axis):
    """The distinct values of a grid axis, in the grid's order."""
    seen = []
    for c in result.configs:
        if c[axis] not in seen:
            seen.append(c[axis])
    return seen


def _cells(result, x, y):
    """(mean final loss over seeds and other axes, diverged runs, runs) per (y, x) cell."""
    xs = _values(result, x)
    ys = _values(result, y) if y is not None else [None]
    mean = np.full((len(ys), len(xs)), np.nan)
    stopped = np.zeros(mean.shape, dtype=int)
    count = np.zeros(mean.shape, dtype=int)
    for k, c in enumerate(result.configs):
        i, j = (ys.index(c[y]) if y is not None else 0), xs.index(c[x])
        count[i, j] += 1
        stopped[i, j] += result.diverged[k] is not None
    for i in range(len(ys)):
        for j in range(len(xs)):
            ks = [k for k, c in enumerate(result.configs) if c[x] == xs[j]
                  and (y is None or c[y] == ys[i])]
            vals = result.final[ks]
            vals = vals[np.isfinite(vals)]
            if vals.size:
                mean[i, j] = vals.mean()
    return xs, ys, mean, stopped, count


def heatmap(fig, ax, result, x, y):
    """Final loss over x (columns) and y (rows); grey cells have no finished run, an X marks
    a cell where runs diverged (the count in the cell's text)."""
    from matplotlib.colors import LogNorm
    from matplotlib.lines import Line2D

    xs, ys, mean, stopped, count = _cells(result, x, y)
    ok = mean[np.isfinite(mean)]
    log = ok.size > 1 and ok.min() > 0 and ok.max() / ok.min() > 30
    norm = LogNorm(ok.min(), ok.max()) if log else None
    shown = np.ma.masked_invalid(mean)
    cmap = _cmap()
    im = ax.imshow(shown, origin="lower", aspect="auto", cmap=cmap, norm=norm)
    if ok.size:                                 # no scale when every run diverged
        fig.colorbar(im, ax=ax,
                     label=f"final {result.final_name}" + (" (log scale)" if log else ""))
    for i in range(len(ys)):
        for j in range(len(xs)):
            text = "" if np.isnan(mean[i, j]) else f"{mean[i, j]:.3g}"
            if stopped[i, j]:
                ax.plot(j, i + 0.12, marker="x", ms=14, mew=2.5, color="#d62728")
                ax.text(j, i - 0.28, f"{stopped[i, j]}/{count[i, j]}", ha="center",
                        va="center", fontsize=7, color="black")
            dark = np.isfinite(mean[i, j]) and im.norm(mean[i, j]) < 0.5
            ax.text(j, i, text, ha="center", va="center", fontsize=8,
                    color="white" if dark else "black")
    ax.set_xticks(range(len(xs)), [_label(v) for v in xs],
                  rotation=45 if len(xs) > 6 else 0)
    ax.set_xlabel(x, fontsize=11)
    if y is not None:
        ax.set_yticks(range(len(ys)), [_label(v) for v in ys])
        ax.set_ylabel(y, fontsize=11)
    else:
        ax.set_yticks([])
    over = _over(result, [x, y])
    ax.set_title(f"final {result.final_name} ({over})", fontsize=12)
    if stopped.any():
        # below the axis label (the constrained layout makes room for it there)
        fig.legend(handles=[Line2D([], [], ls="", marker="x", color="#d62728", mew=2.5,
                                   label="diverged (runs stopped / runs); grey: none "
                                         "finished")],
                   loc="outside lower center", fontsize=9)


def _label(v):
    return f"{v:.3g}" if isinstance(v, float) else str(v)


def _cmap():
    import matplotlib

    return matplotlib.colormaps["viridis"].with_extremes(bad="#cccccc")


def _over(result, axes):
    parts = []
    if result.seeded:
        parts.append(f"mean over {len({c['seed'] for c in result.configs})} seeds")
    rest = [n for n in result.names if n not in axes]
    if rest:
        parts.append(f"and over {', '.join(rest)}" if parts else f"mean over {', '.join(rest)}")
    return " ".join(parts) if parts else "one run a cell"


def curves(fig, ax, result, color):
    """The training loss per epoch of each grid point (mean over seeds; a curve ends where
    a seed diverged), coloured by the grid axis ``color``."""
    import matplotlib
    from matplotlib.colors import LogNorm, Normalize

    from .. import plots

    values = _values(result, color)
    numeric = all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in values)
    logc = numeric and min(values) > 0 and max(values) / min(values) > 30
    norm = (LogNorm if logc else Normalize)(min(values), max(values)) if numeric else None
    cmap = matplotlib.colormaps["viridis"]
    epochs = np.arange(1, result.loss.shape[1] + 1)
    kept, wild = [], []
    for ks in result.points().values():
        v = result.configs[ks[0]][color]
        shade = cmap(norm(v)) if numeric else plots.CYCLE[values.index(v) % len(plots.CYCLE)]
        mean = result.loss[ks].mean(axis=0)
        stopped = any(result.diverged[k] is not None for k in ks)
        ax.plot(epochs, mean, color=shade, lw=1.0, alpha=0.8, ls=":" if stopped else "-")
        last = np.flatnonzero(np.isfinite(mean))
        if stopped and last.size:
            ax.plot(epochs[last[-1]], mean[last[-1]], marker="x", color="#d62728", ms=7)
        (wild if stopped else kept).extend(mean[np.isfinite(mean)])
    if numeric:
        fig.colorbar(matplotlib.cm.ScalarMappable(norm=norm, cmap=cmap), ax=ax, label=color)
    ylabel = result.loss_name
    shown = np.asarray(kept or wild, dtype=float)
    if plots._log_worthy(shown):
        ax.set_yscale("log")
        ylabel += " (log scale)"
    if kept and shown.size and shown.min() > 0:
        ax.set_ylim(shown.min() / 1.3, shown.max() * 1.3)   # diverged curves leave the frame
    if wild:
        ax.plot([], [], ls=":", marker="x", color="#d62728", label="a seed diverged (dotted,\n"
                "X at its last finite epoch;\nmay lie above the frame)")
        ax.legend(fontsize=9, framealpha=0.9)
    ax.set_xlabel("epoch", fontsize=11)
    ax.set_ylabel(f"training {ylabel}", fontsize=11)
    ax.set_title(f"loss curves, one a grid point ({_over(result, result.names)}), "
                 f"coloured by {color}", fontsize=10)
    ax.grid(True, which="major", alpha=0.3)
