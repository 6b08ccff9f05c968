"""What the momentum ball sees: the bumpy valley rebuilt from its smoothed slopes.

The momentum ball of ``inertia demo ball`` does not follow the slope but the exponential moving
average of the slopes it has met (``inertia.SGD(convention="ema")``). Integrating those averaged
slopes from the left end, y_s[0] = y[0], y_s[i + 1] = y_s[i] + v_i dx, gives the valley as that
ball sees it: the bump, a single steep uphill step in the real curve, is averaged away.
"""

from __future__ import annotations

import os

import numpy as np

from . import DemoResult
from .ball import (BUMP_AT, DEFAULT_BUMP, DEFAULT_MOMENTUM, mark_zoom, slopes,
                   smoothed_slopes, valley)

NAME = "smoothing"
SUMMARY = "the valley rebuilt from momentum's averaged slopes: the bump disappears"


def add_arguments(p):
    p.add_argument("--momentum", type=float, default=DEFAULT_MOMENTUM,
                   help=f"momentum mu of the averaging, in [0, 1) (default {DEFAULT_MOMENTUM})")
    p.add_argument("--bump", type=float, default=DEFAULT_BUMP,
                   help=f"height of the bump (default {DEFAULT_BUMP:g})")


# ------------------------------------------------------------------------------ compute
def rebuild(x, y, momentum):
    """The curve integrated from the EMA-smoothed slopes, starting at y[0]."""
    v = smoothed_slopes(slopes(x, y), momentum)
    return np.concatenate([[y[0]], y[0] + np.cumsum(v * np.diff(x))]), v


def largest_rise(y):
    """(step, index) of the largest increment y[i+1] - y[i] before the curve's minimum (the
    step from i to i + 1). A step > 0 is uphill; when there is none the value is the least
    steep descent, <= 0. (nan, None) when the minimum is the first point."""
    m = int(np.argmin(y))
    if m == 0:
        return float("nan"), None
    d = np.diff(y[:m + 1])
    i = int(np.argmax(d))
    return float(d[i]), i


def compute(momentum=DEFAULT_MOMENTUM, bump=DEFAULT_BUMP):
    x, y = valley(bump)
    ys, v = rebuild(x, y, momentum)
    real_rise, real_at = largest_rise(y)
    smooth_rise, smooth_at = largest_rise(ys)
    return {"x": x, "y": y, "smooth": ys, "velocity": v, "momentum": momentum, "bump": bump,
            "bump_at": BUMP_AT, "real_rise": real_rise, "real_rise_at": real_at,
            "real_min": int(np.argmin(y)), "smooth_rise": smooth_rise,
            "smooth_rise_at": smooth_at, "smooth_min": int(np.argmin(ys))}


# --------------------------------------------------------------------------------- draw
def draw(r, path):
    from .. import plots

    x, y, ys = r["x"], r["y"], r["smooth"]
    plain, mom = plots.COLORS["plain"], plots.COLORS["momentum"]
    fig, ax = plots.new_figure()
    ax.plot(x, y, color=plain, lw=2, label="the real valley (the slopes plain descent follows)")
    ax.plot(x, ys, color=mom, lw=2, ls="--",
            label=f"rebuilt from the EMA-smoothed slopes, mu = {r['momentum']:g}\n"
                  "(the valley the momentum ball sees)")
    for curve, key, c in ((y, "real_min", plain), (ys, "smooth_min", mom)):
        i = r[key]
        ax.plot(x[i], curve[i], "v", ms=9, color=c, mec="black", mew=0.6)
    b = r["bump_at"]
    ax.annotate(f"the bump (+{r['bump']:g})", xy=(x[b], y[b]),
                xytext=(x[b] - 0.2, y[b] - 0.012), fontsize=10, color=plain,
                arrowprops=dict(arrowstyle="->", color=plain))
    ax.text(x[r["smooth_min"]], ys[r["smooth_min"]] - 0.004,
            f"lowest points (▼): x = {x[r['real_min']]:.2f} real, "
            f"x = {x[r['smooth_min']]:.2f} rebuilt", ha="center", fontsize=9)
    # close-up around the bump
    lo, hi = max(b - 8, 0), min(b + 8, len(x) - 1)
    sl = slice(lo, hi + 1)
    ins = ax.inset_axes([0.42, 0.38, 0.3, 0.38])
    ins.plot(x[sl], y[sl], "o-", color=plain, lw=1.6, ms=3)
    ins.plot(x[sl], ys[sl], "o--", color=mom, lw=1.6, ms=3)
    ins.set_title("close-up of the bump", fontsize=9)
    ins.tick_params(labelsize=7)
    ins.grid(True, alpha=0.3)
    mark_zoom(ax, ins)
    ends = ("leave no bump to stop at" if not r["smooth_rise"] > 0
            else "still climb at the bump")
    ax.set_title("The valley as momentum sees it: the averaged slopes, integrated,\n" + ends,
                 fontsize=12)
    ax.set_xlabel("position x", fontsize=11)
    ax.set_ylabel("height y", fontsize=11)
    lo_y = min(y.min(), ys.min())
    ax.set_ylim(lo_y - 0.008, max(y.max(), ys.max()) + 0.004)
    ax.grid(True, alpha=0.3)
    ax.legend(fontsize=9, loc="upper right", framealpha=0.9)
    return plots.save(fig, path)


# ---------------------------------------------------------------------------------- run
def _rise(r, key):
    x = r["x"]
    curve = r["y"] if key == "real" else r["smooth"]
    rise, at = r[f"{key}_rise"], r[f"{key}_rise_at"]
    low = r[f"{key}_min"]
    b = r["bump_at"]
    at_bump = curve[b] - curve[b - 1]
    bump = (f"the step onto the bump (x = {x[b - 1]:.2f} -> {x[b]:.2f}) goes "
            + (f"up by {at_bump:.3g}" if at_bump > 0 else f"down by {-at_bump:.3g}"))
    if at is None:
        return "its minimum is its first point: nothing comes before it"
    where = f"before its minimum at x = {x[low]:.2f}"
    if rise > 0:
        return (f"largest uphill step {where}: +{rise:.3g} in height, at "
                f"x = {x[at]:.2f} -> {x[at + 1]:.2f}"
                + (" (onto the bump)" if at == b - 1 else f"; {bump}"))
    return f"no uphill step {where}: {bump}"


def run(args):
    r = compute(momentum=args.momentum, bump=args.bump)
    lines = [f"the bumpy valley (bump of {r['bump']:g} at x = {r['x'][r['bump_at']]:.2f}) and "
             f"the same valley rebuilt from its slopes averaged with momentum "
             f"mu = {r['momentum']:g}",
             "real curve:    " + _rise(r, "real"),
             "rebuilt curve: " + _rise(r, "smooth")]
    if r["real_rise"] > 0 and not r["smooth_rise"] > 0:
        lines.append("the bump is gone: nothing in the averaged slopes tells the momentum ball "
                     "to stop before the bottom")
    elif r["smooth_rise"] > 0:
        lines.append(f"with mu = {r['momentum']:g} the averaging is too short: an uphill step "
                     "is left where the ball stops")
    if getattr(args, "gif", False):
        lines.append("(this demo draws no animation: --gif is ignored)")
    files = [draw(r, os.path.join(args.out, "smoothing.png"))]
    findings = {k: r[k] for k in ("real_rise", "real_rise_at", "real_min", "smooth_rise",
                                  "smooth_rise_at", "smooth_min")}
    findings["smooth_rise_before_min"] = max(0.0, r["smooth_rise"])
    return DemoResult(lines=lines, files=files, findings=findings)
