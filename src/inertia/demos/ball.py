"""The bumpy valley: a ball that follows the slope stops at a small bump; a ball with momentum
rolls over it to the bottom.

The valley is y = 0.2 (x - 0.5)^2 sampled at x = 0, 0.01, ..., 0.99, with a small bump added at
one point. A ball starts at the left end and at each step looks at the slope to the next point.
Plain descent moves right while that slope is negative. The momentum ball moves right while
its velocity, the exponential moving average v = mu v + (1 - mu) slope, is negative; that
average is computed by ``inertia.SGD(convention="ema")`` itself, one step per point.
"""

from __future__ import annotations

import os

import numpy as np

from . import DemoResult
from ..files import atomic_path

NAME = "ball"
SUMMARY = "a ball in a bumpy valley: plain descent stops at the bump, momentum rolls past it"

N_POINTS = 100
BUMP_AT = 25
DEFAULT_BUMP = 2e-3
DEFAULT_MOMENTUM = 0.6
SWEEP = np.round(np.arange(0.0, 0.95 + 1e-9, 0.01), 2)


def add_arguments(p):
    p.add_argument("--momentum", type=float, default=DEFAULT_MOMENTUM,
                   help=f"momentum mu of the rolling ball, in [0, 1) (default {DEFAULT_MOMENTUM})")
    p.add_argument("--bump", type=float, default=DEFAULT_BUMP,
                   help=f"height of the bump added at x = {BUMP_AT / N_POINTS:g} "
                        f"(default {DEFAULT_BUMP:g})")


# ------------------------------------------------------------------------------ compute
def valley(bump=DEFAULT_BUMP, n=N_POINTS, bump_at=BUMP_AT):
    """x = 0, 0.01, ..., (n - 1) / 100 and y = 0.2 (x - 0.5)^2 with ``bump`` added at index
    ``bump_at``."""
    if not np.isfinite(bump):
        raise ValueError(f"--bump must be a finite number, got {bump}")
    x = np.arange(n) / 100.0
    y = 0.2 * (x - 0.5) ** 2
    y[bump_at] += bump
    return x, y


def slopes(x, y):
    """The slope from each point to the next: (y[i+1] - y[i]) / (x[i+1] - x[i])."""
    return np.diff(y) / np.diff(x)


def smoothed_slopes(s, momentum):
    """The velocity the momentum rule keeps while it is fed the slopes ``s`` one by one: the
    EMA v = mu v + (1 - mu) s of ``inertia.SGD(convention="ema")``, read from its state after
    each step. With momentum 0 it is the slope itself."""
    from ..optim.sgd import SGD

    opt = SGD(lr=1.0, momentum=momentum, convention="ema")
    position = np.zeros(1)                  # the rule moves it too; only the velocity is used
    state = opt.init([position])
    v = np.empty(len(s))
    for i, g in enumerate(s):
        opt.step([position], [np.array([g])], state)
        v[i] = state.velocity[0][0]
    return v


def roll(x, y, momentum):
    """Roll a ball from index 0. It moves one point right while its velocity (the slope for
    momentum 0, the EMA of the slopes it has met otherwise) is negative.

    Returns (path, velocities): the indices it visited, ending where it stops, and the
    velocity it had at each of them (the last one is the first that is not negative, unless
    the ball reached the right end)."""
    v = smoothed_slopes(slopes(x, y), momentum)
    # the ball meets the slopes s_0, s_1, ... in order, so its velocity at point i is v[i]
    stop = int(np.argmax(v >= 0)) if np.any(v >= 0) else len(x) - 1
    return list(range(stop + 1)), v[:stop + 1]


def sweep(x, y, momenta=SWEEP, bump_at=BUMP_AT):
    """Where the ball stops for each momentum; (momenta, stops, smallest crossing mu or None)."""
    stops = np.array([roll(x, y, float(mu))[0][-1] for mu in momenta])
    crossing = stops > bump_at
    first = float(momenta[np.argmax(crossing)]) if crossing.any() else None
    return np.asarray(momenta), stops, first


def compute(momentum=DEFAULT_MOMENTUM, bump=DEFAULT_BUMP):
    """Every number the demo reports."""
    x, y = valley(bump)
    plain_path, plain_v = roll(x, y, 0.0)
    mom_path, mom_v = roll(x, y, momentum)
    mus, stops, first = sweep(x, y)
    crossing = stops > BUMP_AT
    monotone = first is not None and bool(np.all(crossing[mus >= first]))
    return {"x": x, "y": y, "momentum": momentum, "bump": bump, "bump_at": BUMP_AT,
            "plain_path": plain_path, "plain_v": plain_v, "plain_stop": plain_path[-1],
            "momentum_path": mom_path, "momentum_v": mom_v, "momentum_stop": mom_path[-1],
            "bottom": int(np.argmin(y)), "sweep_mu": mus, "sweep_stop": stops,
            "smallest_crossing_mu": first, "all_above_cross": monotone}


# --------------------------------------------------------------------------------- draw
def _where(r, i):
    return f"index {i} (x = {r['x'][i]:.2f})"


def mark_zoom(ax, ins):
    """Outline on ``ax`` the region that the inset ``ins`` shows."""
    from matplotlib.patches import Rectangle

    (x0, x1), (y0, y1) = ins.get_xlim(), ins.get_ylim()
    ax.add_patch(Rectangle((x0, y0), x1 - x0, y1 - y0, fill=False, ec="0.5", lw=1, zorder=0.5))


def draw(r, path):
    from .. import plots

    x, y = r["x"], r["y"]
    fig, ax = plots.new_figure()
    ax.plot(x, y, color="0.3", lw=1.4, zorder=1, label="the valley y = 0.2 (x - 0.5)²")
    mp, pp = r["momentum_path"], r["plain_path"]
    ps, ms = r["plain_stop"], r["momentum_stop"]
    mom, plain = plots.COLORS["momentum"], plots.COLORS["plain"]
    ax.plot(x[mp], y[mp], "o", ms=8, mfc="none", mec=mom, mew=1.3, zorder=2,
            label=f"points the momentum ball visits (mu = {r['momentum']:g})")
    ax.plot(x[pp], y[pp], "o", ms=3.5, color=plain, zorder=3,
            label="points the plain descent ball visits")
    for stop, c in ((ms, mom), (ps, plain)):
        ax.plot(x[stop], y[stop], "o", ms=14, color=c, mec="black", mew=0.8, zorder=4)
    b = r["bump_at"]
    ax.annotate(f"plain descent stops\nat x = {x[ps]:.2f}", xy=(x[ps], y[ps]),
                xytext=(x[ps] - 0.22, y[ps] - 0.012), fontsize=10, color=plain,
                arrowprops=dict(arrowstyle="->", color=plain))
    ax.annotate(f"momentum stops at x = {x[ms]:.2f}\n(the bottom is x = {x[r['bottom']]:.2f})",
                xy=(x[ms], y[ms]), xytext=(x[ms] + 0.05, y[ms] - 0.0095), fontsize=10,
                color=mom, arrowprops=dict(arrowstyle="->", color=mom))
    # a close-up of the bump
    lo, hi = max(b - 8, 0), min(b + 8, len(x) - 1)
    ins = ax.inset_axes([0.34, 0.36, 0.27, 0.36])
    sl = slice(lo, hi + 1)
    ins.plot(x[sl], y[sl], color="0.3", lw=1.2)
    m_in = [i for i in mp if lo <= i <= hi]
    p_in = [i for i in pp if lo <= i <= hi]
    ins.plot(x[m_in], y[m_in], "o", ms=7, mfc="none", mec=mom, mew=1.2)
    ins.plot(x[p_in], y[p_in], "o", ms=3, color=plain)
    if lo <= ps <= hi:
        ins.plot(x[ps], y[ps], "o", ms=10, color=plain, mec="black", mew=0.8)
    ins.annotate(f"bump\n(+{r['bump']:g})", xy=(x[b], y[b]), xytext=(x[b] + 0.025, y[b] + 0.002),
                 fontsize=8, arrowprops=dict(arrowstyle="->", color="black"))
    ins.set_title("close-up of the bump", fontsize=9)
    ins.tick_params(labelsize=7)
    ins.grid(True, alpha=0.3)
    mark_zoom(ax, ins)
    plain_says = "stops at the bump" if ps < b else "rolls over the bump"
    mom_says = "rolls over it" if ms > b else "is stopped too"
    ax.set_title(f"A ball rolling down a bumpy valley: plain descent {plain_says},\n"
                 f"momentum (EMA velocity, mu = {r['momentum']:g}) {mom_says}", fontsize=12)
    ax.set_xlabel("position x", fontsize=11)
    ax.set_ylabel("height y", fontsize=11)
    ax.set_ylim(min(y.min(), 0) - 0.013, y.max() + 0.004)
    ax.grid(True, alpha=0.3)
    ax.legend(fontsize=9, loc="upper center", framealpha=0.9)
    return plots.save(fig, path)


def draw_sweep(r, path):
    from .. import plots

    mus, stops = r["sweep_mu"], r["sweep_stop"]
    fig, ax = plots.new_figure()
    cross = stops > r["bump_at"]
    ax.plot(mus, stops, color="0.6", lw=1, zorder=1)
    ax.plot(mus[~cross], stops[~cross], "o", ms=4, color=plots.COLORS["plain"],
            label="stopped by the bump (as plain descent is)")
    ax.plot(mus[cross], stops[cross], "o", ms=4, color=plots.COLORS["momentum"],
            label="rolled past the bump")
    ax.axhline(r["bump_at"], color="black", ls=":", lw=1)
    ax.text(mus[0], r["bump_at"] + 1, "the bump", fontsize=9)
    ax.axhline(r["bottom"], color="0.4", ls="--", lw=1)
    ax.text(mus[0], r["bottom"] + 1, "the bottom of the valley", fontsize=9)
    first = r["smallest_crossing_mu"]
    if first is not None:
        ax.axvline(first, color=plots.COLORS["momentum"], lw=1, ls="--")
        ax.text(first + 0.01, (r["bump_at"] + r["bottom"]) / 2,
                f"smallest mu that crosses: {first:.2f}", fontsize=10,
                color=plots.COLORS["momentum"])
    ax.set_title(f"Where the ball stops, for each momentum mu (bump of {r['bump']:g})",
                 fontsize=12)
    ax.set_xlabel("momentum mu", fontsize=11)
    ax.set_ylabel("stopping point (index of x)", fontsize=11)
    ax.set_ylim(0, max(stops.max(), r["bottom"]) + 8)
    ax.grid(True, alpha=0.3)
    ax.legend(fontsize=9, loc="lower right", framealpha=0.9)
    return plots.save(fig, path)


def draw_gif(r, path, fps=10, hold=8):
    """Both balls rolling, one frame per step; written through a temporary file."""
    from matplotlib.animation import PillowWriter

    from .. import plots

    x, y = r["x"], r["y"]
    paths = {"plain": r["plain_path"], "momentum": r["momentum_path"]}
    n = max(len(p) for p in paths.values())
    fig, ax = plots.new_figure(figsize=(7, 4.4))
    ax.plot(x, y, "o-", color="0.35", lw=1.2, ms=2)
    b = r["bump_at"]
    ax.annotate("bump", xy=(x[b], y[b]), xytext=(x[b] + 0.06, y[b] + 0.01), fontsize=10,
                arrowprops=dict(arrowstyle="->"))
    balls = {}
    for kind, label, ms in (("momentum", f"momentum (mu = {r['momentum']:g})", 14),
                            ("plain", "plain descent", 9)):
        balls[kind], = ax.plot([], [], "o", ms=ms, color=plots.COLORS[kind], mec="black",
                               mew=0.8, label=label)
    ax.set_xlabel("position x", fontsize=11)
    ax.set_ylabel("height y", fontsize=11)
    ax.set_ylim(min(y.min(), 0) - 0.006, y.max() + 0.004)
    ax.grid(True, alpha=0.3)
    leg = ax.legend(fontsize=9, loc="upper center")
    names = {kind: text.get_text() for kind, text in zip(balls, leg.get_texts())}
    texts = dict(zip(balls, leg.get_texts()))
    title = ax.set_title("Two balls in a bumpy valley: step 0", fontsize=12)
    fig.draw_without_rendering()         # lay out once, then keep that layout for every frame
    fig.set_layout_engine("none")
    with atomic_path(path) as tmp:             # the temporary keeps the .gif extension
        writer = PillowWriter(fps=fps)
        with writer.saving(fig, tmp, dpi=80):
            for t in range(n + hold):
                for kind, p in paths.items():
                    i = p[min(t, len(p) - 1)]
                    balls[kind].set_data([x[i]], [y[i]])
                    if t >= len(p) - 1:
                        texts[kind].set_text(f"{names[kind]}: stopped at x = {x[i]:.2f}")
                title.set_text(f"Two balls in a bumpy valley: step {min(t, n - 1)}")
                writer.grab_frame()
    return path


# ---------------------------------------------------------------------------------- run
def describe(r):
    x = r["x"]
    ps, ms = r["plain_stop"], r["momentum_stop"]
    lines = [
        f"bumpy valley: y = 0.2 (x - 0.5)^2 at x = 0, 0.01, ..., {x[-1]:.2f}, bump of "
        f"{r['bump']:g} at {_where(r, r['bump_at'])}; the bottom is at {_where(r, r['bottom'])}",
        f"plain descent (follows the slope) stops at {_where(r, ps)}"
        + (f", just before the bump: the slope ahead is +{r['plain_v'][-1]:.3g}"
           if ps == r["bump_at"] - 1 else ""),
        f"momentum mu = {r['momentum']:g} (EMA of the slopes) stops at {_where(r, ms)}"
        + (", past the bump: its velocity facing the bump was "
           f"{r['momentum_v'][r['bump_at'] - 1]:.3g}"
           if ms > r["bump_at"] else "")
        + (f"; {ms - r['bottom']} point(s) beyond the bottom" if ms > r["bottom"] else "")
        + (", stopped by the bump too" if ms == r["bump_at"] - 1 else ""),
    ]
    first = r["smallest_crossing_mu"]
    mus = r["sweep_mu"]
    if first is None:
        lines.append(f"sweep mu = {mus[0]:.2f} .. {mus[-1]:.2f}: no momentum carries the ball "
                     "past the bump")
    else:
        below = [m for m in mus if m < first]
        lines.append(f"sweep mu = {mus[0]:.2f} .. {mus[-1]:.2f} (step 0.01): the smallest mu that "
                     f"crosses the bump is {first:.2f}"
                     + (f" (mu = {below[-1]:.2f} stops at index "
                        f"{int(r['sweep_stop'][len(below) - 1])})" if below else "")
                     + ("; every larger mu crosses too" if r["all_above_cross"]
                        else "; some larger mu do not cross"))
    return lines


def run(args):
    r = compute(momentum=args.momentum, bump=args.bump)
    files = [draw(r, os.path.join(args.out, "ball.png")),
             draw_sweep(r, os.path.join(args.out, "ball_sweep.png"))]
    if getattr(args, "gif", False):
        files.append(draw_gif(r, os.path.join(args.out, "ball.gif")))
    findings = {k: r[k] for k in ("plain_stop", "momentum_stop", "bottom",
                                  "smallest_crossing_mu", "all_above_cross")}
    return DemoResult(lines=describe(r), files=files, findings=findings)
