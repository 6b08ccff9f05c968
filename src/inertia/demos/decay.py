"""How long momentum remembers: the weight of a gradient k steps old is mu^k.

The weights are not computed from the formula but measured: the ``tf1`` momentum rule
(b = mu b + g, b starting at 0) is fed one unit gradient and then zeros, and its velocity after
k more steps is the weight mu^k that the optimizer gives a gradient k steps old. The effective
memory 1 / (1 - mu) is the sum of those weights.
"""

from __future__ import annotations

import math
import os

import numpy as np

from . import DemoResult

NAME = "decay"
SUMMARY = "how long momentum remembers: the weight mu^k of a gradient k steps old"

DEFAULT_MOMENTA = (0.5, 0.6, 0.9, 0.99)
DEFAULT_THRESHOLD = 0.01


def _momenta(text):
    try:
        mus = [float(t) for t in text.split(",") if t.strip()]
    except ValueError:
        raise ValueError(f"--momenta {text!r}: write numbers separated by commas, "
                         "e.g. 0.5,0.9,0.99") from None
    if not mus:
        raise ValueError("--momenta is empty: give e.g. 0.5,0.9,0.99")
    for mu in mus:
        if not 0 < mu < 1:
            raise ValueError(f"--momenta: {mu:g} is not in (0, 1)")
    return mus


def add_arguments(p):
    p.add_argument("--momenta", default=",".join(f"{m:g}" for m in DEFAULT_MOMENTA),
                   help="momentum values, comma-separated (default "
                        + ",".join(f"{m:g}" for m in DEFAULT_MOMENTA) + ")")
    p.add_argument("--threshold", type=float, default=DEFAULT_THRESHOLD,
                   help=f"report when a weight falls below this (default {DEFAULT_THRESHOLD:g})")


# ------------------------------------------------------------------------------ compute
def impulse_weights(mu, steps, convention="tf1"):
    """The optimizer's velocity after a unit gradient followed by ``steps`` zero gradients:
    w[k] is the weight of a gradient k steps old (mu^k under tf1, (1 - mu) mu^k under ema)."""
    from ..optim.sgd import SGD

    opt = SGD(lr=1.0, momentum=mu, convention=convention)
    p = np.zeros(1)
    state = opt.init([p])
    w = np.empty(steps + 1)
    opt.step([p], [np.ones(1)], state)
    w[0] = state.velocity[0][0]
    zero = np.zeros(1)
    for k in range(1, steps + 1):
        opt.step([p], [zero], state)
        w[k] = state.velocity[0][0]
    return w


def steps_below(mu, threshold=DEFAULT_THRESHOLD):
    """The smallest k with mu^k < threshold: ceil(log t / log mu), one more when mu^k lands
    exactly on the threshold (mu = 0.1, t = 0.01: 0.1^2 is not below 0.01, 0.1^3 is)."""
    if not 0 < mu < 1 or not 0 < threshold:
        raise ValueError(f"need 0 < mu < 1 and threshold > 0, got mu = {mu}, "
                         f"threshold = {threshold}")
    if threshold > 1:
        return 0
    k = max(math.ceil(math.log(threshold) / math.log(mu)), 0)
    while mu ** k >= threshold:           # the logarithms rounded down, or an exact hit
        k += 1
    while k > 0 and mu ** (k - 1) < threshold:
        k -= 1
    return k


def first_below(w, threshold):
    """The first index where the weights ``w`` are below ``threshold`` (None if never)."""
    below = np.flatnonzero(w < threshold)
    return int(below[0]) if below.size else None


def compute(momenta=DEFAULT_MOMENTA, threshold=DEFAULT_THRESHOLD):
    if not 0 < threshold < 1:
        raise ValueError(f"--threshold must be in (0, 1), got {threshold:g}")
    rows = []
    steps = max(int(max(steps_below(mu, threshold) for mu in momenta) * 1.15) + 5, 60)
    for mu in momenta:
        formula = steps_below(mu, threshold)
        w = impulse_weights(mu, steps)
        rows.append({"mu": mu, "weights": w, "memory": 1.0 / (1.0 - mu),
                     "below_formula": formula, "below_measured": first_below(w, threshold),
                     "weight_sum": float(w.sum())})
    return {"rows": rows, "threshold": threshold}


# --------------------------------------------------------------------------------- draw
def draw(r, path, near=50):
    """Two panels, log weight against k: the first ``near`` steps, and all the steps until
    the slowest weight falls below the threshold."""
    from matplotlib import colormaps

    from .. import plots

    rows, t = r["rows"], r["threshold"]
    cmap = colormaps["viridis"]
    colors = [cmap(0.8 * i / max(len(rows) - 1, 1)) for i in range(len(rows))]
    fig, ax = plots.new_figure(figsize=(11, 5.6))
    ax.remove()
    left, right = fig.subplots(1, 2)
    kmax = max(row["below_measured"] for row in rows) * 1.12 + 2
    floor = t / 20
    panels = ((left, near), (right, kmax))
    for row, c in zip(rows, colors):
        w = row["weights"]
        k = np.arange(len(w))
        kb = row["below_measured"]
        mem = row["memory"]
        for a, top in panels:
            keep = (k <= top) & (w >= floor / 2)
            a.plot(k[keep], w[keep], "-", color=c, lw=2,
                   label=f"mu = {row['mu']:g}: memory {mem:.3g} steps, below {t:g} after {kb}"
                   if a is left else None)
            if mem <= top:
                a.axvline(mem, color=c, ls="--", lw=1.2)
            if kb <= top and (a is right) == (kb > near):
                a.plot(kb, w[kb], "o", ms=7, color=c, mec="black", mew=0.6, zorder=4)
                a.plot([kb, kb], [floor, w[kb]], ":", color=c, lw=1.5)
                a.text(kb, floor * 1.15, f"{kb}", ha="center", va="bottom", fontsize=10.5,
                       color=c,
                       bbox=dict(boxstyle="round,pad=0.15", fc="white", ec="none", alpha=0.85))
    for a, top in panels:
        a.axhline(t, color="0.3", ls=":", lw=1.2)
        a.text(top * 0.25, t * 0.85, f"{t:g} of a fresh gradient", ha="left", va="top",
               fontsize=9, color="0.3")
        a.set_xlim(0, top)
        a.set_yscale("log")
        a.set_ylim(floor, 1.6)
        a.set_xlabel("steps back k", fontsize=11)
        a.grid(True, which="major", alpha=0.3)
    left.set_title(f"the first {near} steps", fontsize=11)
    right.set_title(f"until every weight is below {t:g}", fontsize=11)
    left.set_ylabel("weight in the velocity (log scale)", fontsize=11)
    fig.legend(loc="outside lower center", ncol=2, fontsize=9.5, frameon=False,
               title=f"dashed lines: the memory 1/(1 - mu) in steps; dots and numbers: the "
                     f"first k with mu^k < {t:g}", title_fontsize=9.5)
    fig.suptitle("How long momentum remembers: a gradient k steps old weighs mu^k in the "
                 "velocity\n(measured: the tf1 rule b = mu b + g fed one unit gradient, "
                 "then zeros)", fontsize=12)
    return plots.save(fig, path)


# ---------------------------------------------------------------------------------- run
def _steps(k):
    return f"{k} step" + ("" if k == 1 else "s")


def run(args):
    r = compute(_momenta(args.momenta), args.threshold)
    t = r["threshold"]
    lines = ["weight of a gradient k steps old in the momentum velocity, measured by feeding "
             "the tf1 rule one unit gradient and then zeros (it is mu^k):"]
    for row in r["rows"]:
        same = row["below_measured"] == row["below_formula"]
        lines.append(
            f"  mu = {row['mu']:<5g} effective memory 1/(1 - mu) = {row['memory']:>6.3g} steps; "
            f"the weight falls below {t:g} after {_steps(row['below_measured'])} "
            f"(mu^{row['below_measured']} = {row['weights'][row['below_measured']]:.3g})"
            + ("" if same else f" [the formula says {row['below_formula']}]"))
    mus = [row["mu"] for row in r["rows"]]
    if len(mus) > 1:
        a, b = r["rows"][0], r["rows"][-1]
        lines.append(f"from mu = {a['mu']:g} to {b['mu']:g} the memory grows "
                     f"{b['memory'] / a['memory']:.3g}x: a gradient stays in the velocity "
                     f"{_steps(b['below_measured'])} instead of {a['below_measured']}")
    if getattr(args, "gif", False):
        lines.append("(this demo draws no animation: --gif is ignored)")
    files = [draw(r, os.path.join(args.out, "decay.png"))]
    findings = {"threshold": t,
                "below": {row["mu"]: row["below_measured"] for row in r["rows"]},
                "formula": {row["mu"]: row["below_formula"] for row in r["rows"]},
                "memory": {row["mu"]: row["memory"] for row in r["rows"]}}
    return DemoResult(lines=lines, files=files, findings=findings)
