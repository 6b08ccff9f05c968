"""The convergence-rate map of heavy ball over the (step size alpha, momentum beta) plane.

On a quadratic with Hessian eigenvalues in [m, L], the heavy-ball iteration
w_{k+1} = w_k - alpha g_k + beta (w_k - w_{k-1}) acts on each eigendirection (eigenvalue
lambda) through the 2x2 matrix

    T(lambda) = [[1 + beta - alpha lambda, -beta],
                 [1,                        0   ]]

whose eigenvalues are the roots of z^2 - t z + beta = 0, t = 1 + beta - alpha lambda. The rate
per step is the worst spectral radius over the spectrum, rho(alpha, beta) =
max over lambda in [m, L] of rho(T(lambda)), computed here exactly from the closed form of the
roots:

    t^2 < 4 beta   complex pair, |z| = sqrt(beta)
    t^2 >= 4 beta  real roots, max |z| = (|t| + sqrt(t^2 - 4 beta)) / 2

Why the max over [m, L] sits at lambda = m or lambda = L: the radius is a nondecreasing
function of |t| (sqrt(beta), the least a product-beta pair can have, until t^2 = 4 beta, then
increasing), and |t| = |1 + beta - alpha lambda| is convex in lambda, so its largest value on
an interval is at an end. (The tests check this against a dense sweep of lambda.)

Polyak's optimum: alpha* = 4 / (sqrt L + sqrt m)^2, beta* = ((sqrt kappa - 1)/(sqrt kappa + 1))^2,
rate (sqrt kappa - 1)/(sqrt kappa + 1); plain descent (beta = 0) at best alpha = 2 / (L + m),
rate (kappa - 1)/(kappa + 1). The iteration diverges where rho >= 1: beta >= 1 or
alpha L >= 2 (1 + beta).
"""

from __future__ import annotations

import math
import os

import numpy as np

from .landscape import KAPPA_MAX

NAME = "rate"
SUMMARY = "heavy ball's rate per step over (step size, momentum): the optimum, where it diverges"

FIGSIZE = (8.5, 6.8)
GIF_FIGSIZE = (6.4, 5.4)
GIF_DPI = 80
ALPHA_SPAN = 1.1              # the map's alpha axis runs to ALPHA_SPAN * 4 / L


# ------------------------------------------------------------------------------ the theory
def check_spectrum(m, L):
    for name, x in (("m", m), ("L", L)):
        if not (isinstance(x, (int, float)) and math.isfinite(x) and x > 0):
            raise ValueError(f"{name} must be a positive number, got {x}")
    if not L > m:
        raise ValueError(f"need L > m (kappa = L/m > 1), got m = {m}, L = {L}: raise --kappa")


def iteration_matrix(alpha, beta, lam):
    """The heavy-ball iteration on one eigendirection: (e_{k+1}, e_k) = T (e_k, e_{k-1})."""
    return np.array([[1.0 + beta - alpha * lam, -beta], [1.0, 0.0]])


def radius(alpha, beta, lam):
    """Spectral radius of T(lambda), exact, from the roots of z^2 - t z + beta (broadcasts)."""
    alpha, beta, lam = np.broadcast_arrays(np.asarray(alpha, float), np.asarray(beta, float),
                                           np.asarray(lam, float))
    t = 1.0 + beta - alpha * lam
    disc = t * t - 4.0 * beta
    real = (np.abs(t) + np.sqrt(np.maximum(disc, 0.0))) / 2.0
    return np.where(disc < 0.0, np.sqrt(np.maximum(beta, 0.0)), real)


def rate(alpha, beta, m, L):
    """rho(alpha, beta) = max over lambda in [m, L] of radius(alpha, beta, lambda), attained at
    an end of the interval (see the module docstring); broadcasts over alpha and beta."""
    return np.maximum(radius(alpha, beta, m), radius(alpha, beta, L))


def optimum(m, L):
    """Polyak's heavy-ball tuning: (alpha*, beta*, rate)."""
    kappa = L / m
    q = (math.sqrt(kappa) - 1.0) / (math.sqrt(kappa) + 1.0)
    return 4.0 / (math.sqrt(L) + math.sqrt(m)) ** 2, q * q, q


def descent_optimum(m, L):
    """Best plain descent (beta = 0): (alpha, rate)."""
    return 2.0 / (L + m), (L - m) / (L + m)


# ------------------------------------------------------------------------------ the map
def rate_map(m=1.0, L=100.0, n=300, alpha_max=None):
    """rho over an n x n grid: alpha in (0, alpha_max] (default 1.1 * 4 / L, past the
    largest step that can converge), beta in [0, 1). Returns the grid, the map (rows: beta),
    the theoretical optimum and its rate, the grid's best point, and the diverging fraction."""
    check_spectrum(m, L)
    if n < 2:
        raise ValueError(f"--grid must be at least 2, got {n}")
    alpha_max = ALPHA_SPAN * 4.0 / L if alpha_max is None else float(alpha_max)
    alphas = np.linspace(alpha_max / n, alpha_max, n)
    betas = np.arange(n) / n                       # [0, 1), beta = 1 never converges
    rho = rate(alphas[None, :], betas[:, None], m, L)
    a_opt, b_opt, q = optimum(m, L)
    rho_opt = float(rate(a_opt, b_opt, m, L))
    i, j = np.unravel_index(np.argmin(rho), rho.shape)
    a_gd, r_gd = descent_optimum(m, L)
    return {
        "m": m, "L": L, "kappa": L / m, "alphas": alphas, "betas": betas, "rho": rho,
        "alpha_opt": a_opt, "beta_opt": b_opt, "rate_theory": q, "rate_opt": rho_opt,
        "grid_best": (float(alphas[j]), float(betas[i]), float(rho[i, j])),
        "diverging_fraction": float(np.mean(rho >= 1.0)),
        "alpha_gd": a_gd, "rate_gd": r_gd, "rate_gd_computed": float(rate(a_gd, 0.0, m, L)),
    }


# ------------------------------------------------------------------------------ drawing
def _levels(r):
    """Colour bands at round rates, finer towards 1 (where plain descent and small steps
    live): 0.1 apart up to 0.8, 0.85, then 1 - {10, 5, 3, 2} 10^-j down to a twentieth of
    descent's 1 - rate."""
    lo = math.floor(r["rate_opt"] * 100) / 100
    fine = [1.0 - c * 10.0 ** -j for j in range(1, 7) for c in (1.0, 0.5, 0.3, 0.2)]
    finest = (1.0 - r["rate_gd"]) / 20
    levels = [x / 10 for x in range(1, 9)] + [0.85] + [x for x in fine if 1.0 - x >= finest]
    levels = sorted({lo, *[x for x in levels if x > lo + 1e-9], 1.0})
    return np.array(levels)


def draw_map(ax, r, fontsize=10, compact=False, alpha_unit=1.0, alpha_label="step size alpha"):
    """The map on ``ax`` (alpha plotted in units of ``alpha_unit``); returns the filled
    contour set, for a colorbar."""
    from matplotlib.colors import BoundaryNorm
    from matplotlib.patches import Patch

    from .. import plots

    u = alpha_unit
    A, B, rho = r["alphas"] / u, r["betas"], r["rho"]
    levels = _levels(r)
    cmap = _cmap()
    norm = BoundaryNorm(levels, cmap.N)
    cs = ax.contourf(A, B, np.minimum(rho, 1.0 - 1e-12), levels=levels, cmap=cmap, norm=norm)
    # the divergence region: rho >= 1, grey and hatched
    ax.contourf(A, B, rho, levels=[1.0, np.inf], colors=["0.82"], hatches=["///"])
    ax.contour(A, B, rho, levels=[1.0], colors="black", linewidths=1.2)
    a_opt, b_opt, a_gd = r["alpha_opt"] / u, r["beta_opt"], r["alpha_gd"] / u
    xs = np.array([0.0, a_gd, A[-1]])
    if compact:
        labels = (f"plain descent (beta = 0), best: rate {r['rate_gd']:.4f}",
                  f"optimum (alpha*, beta* = {b_opt:.3f}): rate {r['rate_opt']:.4f}",
                  "diverges: rho ≥ 1")
    else:
        labels = (f"plain descent (beta = 0); its best alpha = 2/(L+m) = {r['alpha_gd']:.4g}: "
                  f"rate {r['rate_gd']:.4f}",
                  f"heavy-ball optimum alpha* = {r['alpha_opt']:.4g}, beta* = {b_opt:.4f}: "
                  f"rate {r['rate_opt']:.4f}",
                  f"diverges: rho ≥ 1 ({r['diverging_fraction']:.0%} of the map)")
    handles = [
        ax.plot(xs, np.zeros(3), color=plots.COLORS["plain"], lw=3.5, marker="o", ms=9,
                mec="black", markevery=[1], zorder=5, clip_on=False, label=labels[0])[0],
        ax.plot(a_opt, b_opt, marker="*", ms=18, color=plots.COLORS["momentum"], mec="black",
                ls="none", zorder=6, label=labels[1])[0],
    ]
    if not compact:
        ga, gb, gr = r["grid_best"]
        handles.append(ax.plot(ga / u, gb, marker="X", ms=8, color="white", mec="black",
                               ls="none", zorder=5,
                               label=f"best grid point: rate {gr:.4f}")[0])
    handles.append(Patch(facecolor="0.82", hatch="///", edgecolor="black", label=labels[2]))
    # label the divergence region where it is widest: the bottom right corner
    ax.text(0.985, 0.13, "diverges\n(rho ≥ 1)", transform=ax.transAxes, ha="right",
            va="bottom", fontsize=fontsize, bbox={"facecolor": "white", "edgecolor": "0.5",
                                                  "alpha": 0.9})
    ax.set_xlim(0, A[-1])
    ax.set_ylim(-0.015, 1.0)
    ax.set_xlabel(alpha_label, fontsize=fontsize + 1)
    ax.set_ylabel("momentum beta", fontsize=fontsize + 1)
    # below the map, so that it hides no part of it
    ax.legend(handles=handles, fontsize=fontsize - 1, loc="upper center",
              bbox_to_anchor=(0.5, -0.11 - 0.02 * (10 - fontsize)), framealpha=0.95)
    return cs


def _cmap():
    from matplotlib import colormaps

    return colormaps["viridis"]


def _colorbar(fig, ax, cs, fontsize=11):
    cb = fig.colorbar(cs, ax=ax, ticks=cs.levels)
    cb.ax.set_yticklabels([f"{v:g}" for v in cs.levels], fontsize=fontsize - 2)
    cb.set_label("spectral radius (rate per step)", fontsize=fontsize)
    return cb


def draw(r, path):
    from .. import plots

    fig, ax = plots.new_figure(FIGSIZE)
    cs = draw_map(ax, r)
    _colorbar(fig, ax, cs)
    ax.set_title(f"Heavy ball's rate per step on a quadratic with eigenvalues in "
                 f"[m, L] = [{r['m']:g}, {r['L']:g}] (kappa {r['kappa']:g}):\n"
                 f"max over lambda of the spectral radius of [[1 + beta - alpha lambda, -beta], "
                 f"[1, 0]]", fontsize=11)
    return plots.save(fig, path)


def write_gif(path, m=1.0, kappas=None, n=150):
    """The map as kappa grows from 2 to 1000 (m fixed; alpha in units of 1/L, so that the
    frames line up): the fast region narrows towards alpha L = 4, beta = 1."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    from .. import plots

    kappas = np.geomspace(2.0, 1000.0, 28) if kappas is None else kappas
    images = []
    for kappa in kappas:
        r = rate_map(m, kappa * m, n)
        fig = Figure(figsize=GIF_FIGSIZE, dpi=GIF_DPI, layout="constrained")
        FigureCanvasAgg(fig)
        ax = fig.add_subplot()
        cs = draw_map(ax, r, fontsize=8, compact=True, alpha_unit=1.0 / r["L"],
                      alpha_label="step size alpha, in units of 1/L")
        _colorbar(fig, ax, cs, fontsize=9)
        ax.set_title(f"Heavy ball's rate per step, kappa = L/m = {kappa:.3g}", fontsize=10)
        fig.canvas.draw()
        images.append(plots.canvas_frame(fig, colors=96))
    return plots.save_gif(images, path, frame_ms=250)


# ------------------------------------------------------------------------------ the command
def add_arguments(p):
    p.add_argument("--kappa", type=float, default=100.0,
                   help="condition number L/m, with m = 1 (default 100)")
    p.add_argument("--grid", type=int, default=300,
                   help="grid points per axis (default 300)")


def run(args):
    from . import DemoResult

    if not (math.isfinite(args.kappa) and 1 < args.kappa <= KAPPA_MAX):
        raise ValueError(f"--kappa must be a number in (1, {KAPPA_MAX:g}], got {args.kappa} "
                         "(past it the rates round to 1 in double precision)")
    m = 1.0
    r = rate_map(m, args.kappa * m, args.grid)
    ga, gb, gr = r["grid_best"]
    gap = gr - r["rate_opt"]
    lines = [
        f"heavy ball on a quadratic with eigenvalues in [m, L] = [{m:g}, {r['L']:g}] "
        f"(kappa {r['kappa']:g}): rate per step = max over lambda of the spectral radius of "
        "[[1 + beta - alpha lambda, -beta], [1, 0]]",
        f"  grid: {args.grid} x {args.grid}, step size alpha in (0, {r['alphas'][-1]:.4g}], "
        f"momentum beta in [0, 1)",
        f"  optimum (Polyak): alpha* = 4/(sqrt L + sqrt m)^2 = {r['alpha_opt']:.5g}, "
        f"beta* = {r['beta_opt']:.5f}, rate {r['rate_opt']:.6f} "
        f"(theory (sqrt kappa - 1)/(sqrt kappa + 1) = {r['rate_theory']:.6f})",
        f"  best grid point: alpha = {ga:.5g}, beta = {gb:.5f}, rate {gr:.6f} "
        + (f"({gap:.2g} above the optimum: no grid point beats it)" if gap >= 0
           else f"({-gap:.2g} BELOW the optimum)"),
        f"  best plain descent: alpha = 2/(L+m) = {r['alpha_gd']:.5g}, rate "
        f"{r['rate_gd']:.6f}",
        f"  diverges (rho >= 1) on {r['diverging_fraction']:.1%} of the map: where "
        "alpha L >= 2 (1 + beta)",
        f"finding: at the optimum, heavy ball shrinks the error by 1e-6 in "
        f"{math.ceil(math.log(1e-6) / math.log(r['rate_opt']))} steps where the best plain "
        f"descent needs {math.ceil(math.log(1e-6) / math.log(r['rate_gd']))}",
    ]
    findings = {k: v for k, v in r.items() if k not in ("alphas", "betas", "rho")}
    findings["grid_min"] = float(r["rho"].min())
    files = [draw(r, os.path.join(args.out, "rate.png"))]
    if args.gif:
        files.append(write_gif(os.path.join(args.out, "rate.gif"), m))
    return DemoResult(lines=lines, files=files, findings=findings)
