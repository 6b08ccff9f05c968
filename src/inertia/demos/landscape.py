"""Descent, heavy ball and Nesterov on two 2-D landscapes, their paths drawn over contours.

(a) The quadratic f(w) = 1/2 w^T A w, A = diag(L, m), condition number kappa = L / m, with
Polyak's tuning for each method, so the measured rates can be held against theory:

    q = (sqrt kappa - 1) / (sqrt kappa + 1)
    descent      alpha = 2 / (L + m)                          rate (kappa - 1) / (kappa + 1)
    heavy ball   alpha = 4 / (sqrt L + sqrt m)^2, beta = q^2  rate q
    Nesterov     alpha = 1 / L, mu = q                        rate 1 - 1 / sqrt kappa
                 (the standard tuning for strongly convex quadratics)

(b) The Rosenbrock function (1 - x)^2 + 100 (y - x^2)^2, one hand-tuned step size and momentum.

Every step is ``inertia.SGD(lr=alpha, momentum=beta, nesterov=..., convention="tf1")`` in its
functional form: b = beta b + g; w -= alpha b, which is the heavy-ball iteration
w_{k+1} = w_k - alpha g_k + beta (w_k - w_{k-1}); with ``nesterov=True``,
w -= alpha (g + beta b), Nesterov's method written at its look-ahead point. The gradients are
the analytic ones.

Heavy ball and Nesterov, tuned this way, sit on a double root of their iteration: the error
behaves like k rate^k rather than rate^k, so they take a few more steps than
log(tol) / log(rate), and a plain ratio of errors overstates their rate (by 1-10%, more for
small kappa). The measured rate is therefore a fit over the tail of the run (from 1e-3 to
1e-12 of the starting error) of log err_k = a + b log k + k log rate: the k^b term takes up
the prefactor (b comes out near 1 for them and 0 for descent).
"""

from __future__ import annotations

import math
import os

import numpy as np

NAME = "landscape"
SUMMARY = "descent, heavy ball, Nesterov on a quadratic and Rosenbrock: rates vs Polyak's theory"

KAPPA_MAX = 1e12              # beyond it 1 - 2 / (kappa + 1) is within rounding of 1
TOL = 1e-6                    # "steps to 1e-6": ||w_k - w*|| <= TOL ||w_0 - w*||
RATE_WINDOW = (1e-3, 1e-12)   # the tail over which the rate is measured
STOP = 1e-13                  # a run stops once its error has shrunk this much
METHODS = ("plain", "momentum", "nesterov")
LABELS = {"plain": "plain descent", "momentum": "heavy ball", "nesterov": "Nesterov"}
FIGSIZE = (11.0, 4.8)         # both PNGs: paths over contours | error per step
GIF_FIGSIZE = (6.4, 5.0)
GIF_DPI = 80
ROSENBROCK_START = (-1.5, 2.0)
ROSENBROCK_TUNED = (1e-3, 0.9)  # step size, momentum: descent crawls, both momenta arrive


# ------------------------------------------------------------------------------ the functions
def quadratic(kappa, m=1.0):
    """(f, grad, w_star) of f(w) = 1/2 (L w1^2 + m w2^2), L = kappa m."""
    a = np.array([kappa * m, m], dtype=float)

    def f(w1, w2):
        return 0.5 * (a[0] * np.asarray(w1) ** 2 + a[1] * np.asarray(w2) ** 2)

    def grad(w):
        return a * w

    return f, grad, np.zeros(2)


def rosenbrock(a=1.0, b=100.0):
    """(f, grad, w_star) of f(x, y) = (a - x)^2 + b (y - x^2)^2."""

    def f(x, y):
        x, y = np.asarray(x), np.asarray(y)
        return (a - x) ** 2 + b * (y - x * x) ** 2

    def grad(w):
        x, y = w
        return np.array([-2.0 * (a - x) - 4.0 * b * x * (y - x * x), 2.0 * b * (y - x * x)])

    return f, grad, np.array([a, a * a])


# ------------------------------------------------------------------------------ the theory
def polyak_tuning(kappa, m=1.0):
    """{method: {lr, momentum, nesterov, rate}}: the tuned hyperparameters for a quadratic with
    eigenvalues m and L = kappa m, and the rate per step theory gives for them."""
    if not (isinstance(kappa, (int, float)) and math.isfinite(kappa) and 1 < kappa <= KAPPA_MAX):
        raise ValueError(f"--kappa must be a number in (1, {KAPPA_MAX:g}], got {kappa} (past it "
                         "the rates round to 1 in double precision)")
    L = kappa * m
    sk = math.sqrt(kappa)
    q = (sk - 1.0) / (sk + 1.0)
    return {
        "plain": {"lr": 2.0 / (L + m), "momentum": 0.0, "nesterov": False,
                  "rate": (kappa - 1.0) / (kappa + 1.0)},
        "momentum": {"lr": 4.0 / (math.sqrt(L) + math.sqrt(m)) ** 2, "momentum": q * q,
                     "nesterov": False, "rate": q},
        "nesterov": {"lr": 1.0 / L, "momentum": q, "nesterov": True, "rate": 1.0 - 1.0 / sk},
    }


def theory_steps(rate, tol=TOL):
    """Steps after which rate^k <= tol."""
    return math.ceil(math.log(tol) / math.log(rate))


# ------------------------------------------------------------------------------ the runs
def make_optimizer(lr, momentum, nesterov):
    from ..optim import SGD

    return SGD(lr=lr, momentum=momentum, nesterov=nesterov, convention="tf1")


def run_path(grad, w0, w_star, lr, momentum, nesterov, steps, stop=STOP):
    """The iterates w_0, w_1, ... of ``SGD(convention="tf1")`` from w0: an array (k + 1, 2).
    Stops after ``steps`` steps, once ||w_k - w*|| <= stop ||w_0 - w*||, or on divergence."""
    opt = make_optimizer(lr, momentum, nesterov)
    w = np.array(w0, dtype=float)
    state = opt.init([w])
    e0 = float(np.linalg.norm(w - w_star))
    path = [w.copy()]
    for _ in range(int(steps)):
        opt.step([w], [grad(w)], state)
        path.append(w.copy())
        err = float(np.linalg.norm(w - w_star))
        if not math.isfinite(err) or err > 1e6 * max(e0, 1.0) or err <= stop * e0:
            break
    return np.array(path)


def errors(path, w_star):
    return np.linalg.norm(path - w_star, axis=1)


def steps_to(err, tol=TOL):
    """First k with err_k <= tol err_0, or None if the run never got there."""
    hit = np.nonzero(err <= tol * err[0])[0]
    return int(hit[0]) if hit.size else None


def measured_rate(err, window=RATE_WINDOW):
    """(rate, b): the least-squares fit of log err_k = a + b log k + k log rate over the tail,
    from the first step below window[0] err_0 to the first below window[1] err_0 (or the
    last step). The k^b term takes up the polynomial prefactor of a double root (b ~ 1),
    which would otherwise bias a plain ratio of errors; b ~ 0 for a simple geometric decay.
    Falls back to (err_k / err_0)^(1 / k), b = 0, when the tail has fewer than 4 steps."""
    err = np.asarray(err, dtype=float)
    k1, k2 = steps_to(err, window[0]), steps_to(err, window[1])
    n = len(err) - 1
    if k2 is None:
        k2 = n
    if k1 is None or k2 - k1 < 3 or not np.all(err[k1:k2 + 1] > 0):
        if n < 1 or not (err[n] > 0 and err[0] > 0 and math.isfinite(err[n])):
            return float("nan"), 0.0
        return float((err[n] / err[0]) ** (1.0 / n)), 0.0
    k = np.arange(k1, k2 + 1, dtype=float)
    X = np.column_stack([np.ones_like(k), np.log(k), k])
    c, *_ = np.linalg.lstsq(X, np.log(err[k1:k2 + 1]), rcond=None)
    return float(np.exp(c[2])), float(c[1])


def quadratic_experiment(kappa=100.0, steps=20000, m=1.0, start=None):
    """Each method with its Polyak tuning on A = diag(kappa m, m); returns the numbers.

    start defaults to (1 / sqrt(kappa), 1): both directions carry the same share of f."""
    tuning = polyak_tuning(kappa, m)
    f, grad, w_star = quadratic(kappa, m)
    w0 = np.array(start if start is not None else (1.0 / math.sqrt(kappa), 1.0), dtype=float)
    out = {"kappa": float(kappa), "L": kappa * m, "m": m, "start": w0, "w_star": w_star,
           "f": f, "methods": {}}
    for name in METHODS:
        t = tuning[name]
        path = run_path(grad, w0, w_star, t["lr"], t["momentum"], t["nesterov"], steps)
        err = errors(path, w_star)
        rate, power = measured_rate(err)
        power = 0.0 if abs(power) < 5e-3 else power
        out["methods"][name] = dict(t, path=path, err=err, steps=steps_to(err),
                                    theory_steps=theory_steps(t["rate"]), measured_rate=rate,
                                    prefactor_power=power,
                                    rate_off=abs(rate - t["rate"]) / t["rate"],
                                    ran=len(path) - 1)
    return out


def rosenbrock_experiment(lr=ROSENBROCK_TUNED[0], momentum=ROSENBROCK_TUNED[1], steps=5000,
                          start=ROSENBROCK_START):
    """Descent, heavy ball and Nesterov from ``start`` with one step size (and one momentum
    for the two momentum methods); returns the numbers."""
    f, grad, w_star = rosenbrock()
    w0 = np.array(start, dtype=float)
    out = {"lr": lr, "momentum": momentum, "start": w0, "w_star": w_star, "f": f,
           "methods": {}}
    for name in METHODS:
        mu = 0.0 if name == "plain" else momentum
        path = run_path(grad, w0, w_star, lr, mu, name == "nesterov", steps)
        err = errors(path, w_star)
        out["methods"][name] = {"lr": lr, "momentum": mu, "nesterov": name == "nesterov",
                                "path": path, "err": err, "steps": steps_to(err),
                                "ran": len(path) - 1, "final_error": float(err[-1]),
                                "diverged": not math.isfinite(err[-1]) or err[-1] > err[0]}
    return out


# ------------------------------------------------------------------------------ drawing
def _steps_text(s, ran):
    return f"{s}" if s is not None else f"> {ran}"


def _contours(ax, f, xlim, ylim, log_levels):
    """Contour lines of f over the window: log-spaced levels (Rosenbrock) or levels evenly
    spaced in sqrt(f) (a quadratic: evenly spaced ellipses)."""
    x = np.linspace(*xlim, 200)
    y = np.linspace(*ylim, 200)
    X, Y = np.meshgrid(x, y)
    Z = f(X, Y)
    if log_levels:
        levels = np.geomspace(max(Z.min(), 1e-2), Z.max(), 11)
    else:
        levels = Z.max() * np.linspace(0.0, 1.0, 11)[1:] ** 2
    ax.contour(X, Y, Z, levels=levels, colors="0.6", linewidths=0.6, zorder=1)
    ax.set_xlim(*xlim)
    ax.set_ylim(*ylim)


def _limits(paths, w_star, start, pad=0.08, legend_room=0.0):
    pts = np.vstack([np.vstack(paths), w_star[None], start[None]])
    lo, hi = pts.min(axis=0), pts.max(axis=0)
    span = np.maximum(hi - lo, 1e-12)
    return ((lo[0] - pad * span[0], hi[0] + pad * span[0]),
            (lo[1] - (pad + legend_room) * span[1], hi[1] + pad * span[1]))


def _path_axes(ax, exp, shown, every, log_levels, labels, window=None, legend_room=0.0):
    """Contours, start, optimum and each method's path (its first ``shown[method]`` steps,
    a dot every ``every`` steps) in the method's colour; returns {method: Line2D}. The view
    is ``window`` ((xmin, xmax), (ymin, ymax)) or fits the paths."""
    from .. import plots

    paths = [exp["methods"][nm]["path"][: shown[nm] + 1] for nm in METHODS]
    if window is not None:
        xlim, ylim = window
    else:
        xlim, ylim = _limits(paths, exp["w_star"], exp["start"], legend_room=legend_room)
    _contours(ax, exp["f"], xlim, ylim, log_levels)
    lines = {}
    for nm, p in zip(METHODS, paths):
        (lines[nm],) = ax.plot(p[:, 0], p[:, 1], color=plots.COLORS[nm], lw=1.0, marker="o",
                               ms=3.5, markevery=every, label=labels[nm], zorder=3)
    ax.plot(*exp["start"], marker="s", ms=8, color="black", ls="none", label="start", zorder=5)
    ax.plot(*exp["w_star"], marker="*", ms=16, color="gold", mec="black", ls="none",
            label="optimum w*", zorder=5)
    ax.set_xlabel("w1", fontsize=11)
    ax.set_ylabel("w2", fontsize=11)
    return lines


def _error_axes(ax, exp, theory=True):
    from .. import plots

    for nm in METHODS:
        d = exp["methods"][nm]
        err = d["err"] / d["err"][0]
        k = np.arange(len(err))
        ax.semilogy(k, err, color=plots.COLORS[nm], lw=1.8, label=LABELS[nm])
        if theory and "rate" in d:
            ax.semilogy(k, d["rate"] ** k, color=plots.COLORS[nm], lw=1.1, ls="--",
                        label=f"theory rate^k, rate {d['rate']:.4f}")
    ax.axhline(TOL, color="0.3", lw=0.8, ls=":")
    ax.text(0.99, TOL, "1e-6", transform=ax.get_yaxis_transform(), ha="right", va="bottom",
            fontsize=9, color="0.3")
    ax.set_xlabel("step k", fontsize=11)
    ax.set_ylabel("||w_k - w*|| / ||w_0 - w*|| (log scale)", fontsize=11)
    ax.grid(True, which="major", alpha=0.3)
    ax.legend(fontsize=9, framealpha=0.92, loc="upper right")


def _two_panels():
    from matplotlib.figure import Figure

    from .. import plots

    fig = Figure(figsize=FIGSIZE, dpi=plots.DPI, layout="constrained")
    ax, ax2 = fig.subplots(1, 2, width_ratios=[1.15, 1])
    return fig, ax, ax2


def _legend_labels(M):
    return {nm: f"{LABELS[nm]}: diverged" if M[nm].get("diverged") else
            f"{LABELS[nm]}: {_steps_text(M[nm]['steps'], M[nm]['ran'])} steps to 1e-6"
            for nm in METHODS}


def draw_quadratic(exp, path, every=5, cap=200):
    """Two panels: the paths over the contours (each up to where it shrank its error by 1e-6,
    at most ``cap`` steps) and the error per step against theory's rate^k."""
    from .. import plots

    fig, ax, ax2 = _two_panels()
    M = exp["methods"]
    shown = {nm: min(M[nm]["steps"] or M[nm]["ran"], cap) for nm in METHODS}
    _path_axes(ax, exp, shown, every, False, _legend_labels(M), legend_room=0.45)
    ax.set_xlabel("w1 (steep direction, curvature L; the axes are not to scale)", fontsize=11)
    ax.set_ylabel("w2 (flat direction, curvature m)", fontsize=11)
    drawn = ", ".join(f"{LABELS[nm]} {shown[nm]}" for nm in METHODS)
    ax.set_title(f"Paths, a dot every {every} steps (steps drawn: {drawn})", fontsize=10)
    ax.legend(fontsize=9, framealpha=0.95, loc="lower center", ncol=2)
    _error_axes(ax2, exp)
    ax2.set_title("Error per step, measured (solid) and theory (dashed)", fontsize=10)
    ax2.set_xlim(0, max(M[nm]["steps"] or M[nm]["ran"] for nm in METHODS) * 1.05)
    ax2.set_ylim(1e-7, 3)
    p, h, n = M["plain"], M["momentum"], M["nesterov"]
    fig.suptitle(f"Quadratic f(w) = 1/2 (L w1² + m w2²), kappa = L/m = {exp['kappa']:g}, "
                 f"Polyak's tuning: descent alpha = 2/(L+m) = {p['lr']:.4g};\nheavy ball "
                 f"alpha* = {h['lr']:.4g}, beta* = {h['momentum']:.4g}; Nesterov (standard "
                 f"strongly convex tuning) alpha = 1/L = {n['lr']:.4g}, mu = {n['momentum']:.4g}",
                 fontsize=11.5)
    return plots.save(fig, path)


ROSENBROCK_WINDOW = ((-2.0, 2.0), (-0.6, 3.0))


def draw_rosenbrock(exp, path, shown_steps=1000, every=50):
    """Two panels: where each method got in its first ``shown_steps`` steps, over log-spaced
    contours, and the distance to the minimum per step."""
    from .. import plots

    fig, ax, ax2 = _two_panels()
    M = exp["methods"]
    shown = {nm: min(shown_steps, M[nm]["ran"]) for nm in METHODS}
    _path_axes(ax, exp, shown, every, True, _legend_labels(M), window=ROSENBROCK_WINDOW)
    for nm in METHODS:                      # where each one is at step shown_steps
        ax.plot(*M[nm]["path"][shown[nm]], marker="o", ms=8, color=plots.COLORS[nm],
                mec="black", ls="none", zorder=4)
    ax.set_title(f"The first {shown_steps} steps over log-spaced contours (a dot every "
                 f"{every} steps, big dot: step {shown_steps})", fontsize=10)
    ax.legend(fontsize=9, framealpha=0.95, loc="upper right")
    _error_axes(ax2, exp, theory=False)
    if max(M[nm]["ran"] for nm in METHODS) > shown_steps:
        ax2.axvline(shown_steps, color="0.5", lw=0.8, ls="--")
        ax2.text(shown_steps, 2, f" step {shown_steps}", fontsize=9, color="0.3", va="top")
    ax2.set_title("Distance to the minimum (1, 1) per step", fontsize=10)
    ax2.set_ylim(1e-7, 3)
    s = exp["start"]
    fig.suptitle(f"Rosenbrock f(w) = (1 - w1)² + 100 (w2 - w1²)² from ({s[0]:g}, {s[1]:g}): "
                 f"step size alpha = {exp['lr']:g} for all three,\nmomentum "
                 f"{exp['momentum']:g} for heavy ball and Nesterov"
                 + (" (hand-tuned)" if (exp["lr"], exp["momentum"]) == ROSENBROCK_TUNED else ""),
                 fontsize=11.5)
    return plots.save(fig, path)


def write_gif(exp, path, title, every, log_levels, horizon, frames=90, window=None,
              legend_room=0.0, legend_loc="best"):
    """Animate the three paths step by step (up to ``horizon`` steps) into a GIF: the first
    30 steps one frame each, later ones on a geometric clock. The contours are drawn once and
    the paths blitted over them."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    from .. import plots

    fig = Figure(figsize=GIF_FIGSIZE, dpi=GIF_DPI, layout="constrained")
    canvas = FigureCanvasAgg(fig)
    ax = fig.add_subplot()
    M = exp["methods"]
    horizon = int(min(horizon, max(M[nm]["ran"] for nm in METHODS)))
    shown = {nm: min(horizon, M[nm]["ran"]) for nm in METHODS}
    lines = _path_axes(ax, exp, shown, every, log_levels, LABELS, window=window,
                       legend_room=legend_room)
    ax.legend(fontsize=8, framealpha=0.95, loc=legend_loc, ncol=2 if legend_room else 1)
    ax.set_title(title, fontsize=10)
    stamp = ax.text(0.02, 0.97, "", transform=ax.transAxes, fontsize=10, va="top",
                    bbox={"facecolor": "white", "edgecolor": "0.7", "alpha": 0.9})
    canvas.draw()                       # settle the layout with the full paths
    fig.set_layout_engine("none")
    for a in (*lines.values(), stamp):
        a.set_animated(True)
    canvas.draw()
    background = canvas.copy_from_bbox(fig.bbox)
    ks = np.unique(np.concatenate([np.arange(0, min(30, horizon) + 1),
                                   np.geomspace(30, max(horizon, 31), frames - 30).astype(int)]))
    ks = ks[ks <= horizon]
    images = []
    for k in ks:
        canvas.restore_region(background)
        for nm in METHODS:
            p = M[nm]["path"][: min(k, M[nm]["ran"]) + 1]
            lines[nm].set_data(p[:, 0], p[:, 1])
            ax.draw_artist(lines[nm])
        stamp.set_text(f"step {k}")
        ax.draw_artist(stamp)
        images.append(plots.canvas_frame(fig, colors=64))
    return plots.save_gif(images, path, frame_ms=80)


# ------------------------------------------------------------------------------ the command
def add_arguments(p):
    p.add_argument("--kappa", type=float, default=100.0,
                   help="condition number L/m of the quadratic, m = 1 (default 100)")
    p.add_argument("--steps", type=int, default=20000,
                   help="most steps per method and function (default 20000)")
    p.add_argument("--rosenbrock-lr", type=float, default=ROSENBROCK_TUNED[0],
                   help="step size on Rosenbrock, the same for all three (default 0.001)")
    p.add_argument("--rosenbrock-momentum", type=float, default=ROSENBROCK_TUNED[1],
                   help="momentum on Rosenbrock, heavy ball and Nesterov (default 0.9)")


def report_quadratic(q):
    M = q["methods"]
    p, h, n = M["plain"], M["momentum"], M["nesterov"]
    lines = [
        f"quadratic f(w) = 1/2 w^T A w, A = diag({q['L']:g}, {q['m']:g}), kappa "
        f"{q['kappa']:g}, from w0 = ({q['start'][0]:.4g}, {q['start'][1]:.4g}); every step "
        "is inertia.SGD(convention='tf1')",
        f"  Polyak's tuning: descent alpha = 2/(L+m) = {p['lr']:.5g}; heavy ball "
        f"alpha* = 4/(sqrt L + sqrt m)^2 = {h['lr']:.5g}, beta* = "
        f"((sqrt kappa - 1)/(sqrt kappa + 1))^2 = {h['momentum']:.5g}",
        f"  Nesterov: the standard strongly convex tuning alpha = 1/L = {n['lr']:.5g}, "
        f"mu = (sqrt kappa - 1)/(sqrt kappa + 1) = {n['momentum']:.5g}, rate 1 - 1/sqrt kappa",
        "",
        f"  {'method':<14}{'steps to 1e-6':>14}{'theory':>9}{'measured rate':>15}"
        f"{'theory rate':>13}{'off by':>9}{'fitted b':>10}",
    ]
    for nm in METHODS:
        d = M[nm]
        lines.append(f"  {LABELS[nm]:<14}{_steps_text(d['steps'], d['ran']):>14}"
                     f"{d['theory_steps']:>9}{d['measured_rate']:>15.5f}{d['rate']:>13.5f}"
                     f"{d['rate_off']:>9.2%}{d['prefactor_power'] + 0.0:>10.2f}")
    lines.append("  theory steps = log(1e-6)/log(rate); measured rate: least-squares fit of "
                 "log err_k = a + b log k + k log rate from 1e-3 to 1e-12 of the start")
    lines.append("  heavy ball and Nesterov sit on a double root (b ~ 1): their error is "
                 "~ k rate^k, so they need more steps than rate^k alone")
    return lines


def report_rosenbrock(r):
    M = r["methods"]
    s = r["start"]
    cells = []
    for nm in METHODS:
        d = M[nm]
        if d["diverged"]:
            cells.append(f"{LABELS[nm]} diverged")
        elif d["steps"] is None:
            cells.append(f"{LABELS[nm]} > {d['ran']} (still {d['final_error']:.2g} away)")
        else:
            cells.append(f"{LABELS[nm]} {d['steps']}")
    return [f"Rosenbrock (1 - w1)^2 + 100 (w2 - w1^2)^2 from ({s[0]:g}, {s[1]:g}), "
            f"alpha {r['lr']:g}, momentum {r['momentum']:g}: steps to shrink ||w - (1, 1)|| "
            f"by 1e-6: " + ", ".join(cells)]


def run(args):
    from . import DemoResult

    if args.steps < 1:
        raise ValueError(f"--steps must be at least 1, got {args.steps}")
    try:
        make_optimizer(args.rosenbrock_lr, args.rosenbrock_momentum, False)
    except ValueError as ex:
        raise ValueError(f"--rosenbrock-lr/--rosenbrock-momentum: {ex}") from None
    if args.rosenbrock_momentum == 0:
        raise ValueError("--rosenbrock-momentum must be > 0: heavy ball and Nesterov need it "
                         "(e.g. 0.9)")
    q = quadratic_experiment(args.kappa, args.steps)
    r = rosenbrock_experiment(args.rosenbrock_lr, args.rosenbrock_momentum, args.steps)

    lines = report_quadratic(q)
    M = q["methods"]
    p, h = M["plain"], M["momentum"]
    findings = {"kappa": q["kappa"]}
    for nm in METHODS:
        d = M[nm]
        findings[nm] = {k: d[k] for k in ("lr", "momentum", "nesterov", "rate", "steps",
                                          "theory_steps", "measured_rate", "rate_off",
                                          "prefactor_power")}
    for nm in METHODS:
        d = r["methods"][nm]
        findings[f"rosenbrock_{nm}"] = {k: d[k] for k in ("lr", "momentum", "steps",
                                                          "final_error", "diverged")}
    if p["steps"] is not None and h["steps"] is not None:
        fewer = p["steps"] / h["steps"]
        findings["speedup"] = fewer
        lines.append(f"finding: tuned heavy ball needs {fewer:.1f}x fewer steps than tuned "
                     f"descent ({h['steps']} vs {p['steps']}; sqrt(kappa) = "
                     f"{math.sqrt(q['kappa']):.3g}), and its measured rate {h['measured_rate']:.4f}"
                     f" is within {h['rate_off']:.2%} of the theoretical {h['rate']:.4f}")
    else:
        lines.append(f"finding: tuned descent did not shrink its error by 1e-6 within "
                     f"{args.steps} steps; heavy ball "
                     + (f"did in {h['steps']}" if h["steps"] is not None else "did not either")
                     + " (raise --steps)")
    lines.append("")
    lines.extend(report_rosenbrock(r))

    files = [draw_quadratic(q, os.path.join(args.out, "landscape_quadratic.png")),
             draw_rosenbrock(r, os.path.join(args.out, "landscape_rosenbrock.png"))]
    if args.gif:
        horizon = max(min(M[nm]["steps"] or M[nm]["ran"], 400) for nm in METHODS)
        files.append(write_gif(q, os.path.join(args.out, "landscape_quadratic.gif"),
                               f"Quadratic, kappa {q['kappa']:g}, Polyak's tuning", 5, False,
                               horizon, legend_room=0.45, legend_loc="lower center"))
        files.append(write_gif(r, os.path.join(args.out, "landscape_rosenbrock.gif"),
                               f"Rosenbrock, alpha {r['lr']:g}, momentum {r['momentum']:g}",
                               50, True, 3000, window=ROSENBROCK_WINDOW,
                               legend_loc="upper right"))
    return DemoResult(lines=lines, files=files, findings=findings)
