"""The theory demos: `landscape` (descent, heavy ball and Nesterov against Polyak's rates) and
`rate` (heavy ball's spectral radius over the (step size, momentum) plane)."""

import math
import struct

import numpy as np
import pytest

from inertia import plots
from inertia.cli import main
from inertia.demos import landscape, rate
from inertia.optim import sgd as sgd_module

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


def png_size(path):
    """(width, height) from the IHDR chunk: bytes 16..24 of a PNG."""
    with open(path, "rb") as f:
        head = f.read(24)
    assert head[:8] == PNG_MAGIC, f"{path} is not a PNG"
    assert head[12:16] == b"IHDR"
    return struct.unpack(">II", head[16:24])


def expected_pixels(figsize, dpi=plots.DPI):
    return round(figsize[0] * dpi), round(figsize[1] * dpi)


# ------------------------------------------------------------------------------ landscape
@pytest.fixture(scope="module")
def quad():
    return landscape.quadratic_experiment(kappa=100.0, steps=20000)


def test_heavy_ball_beats_descent_and_matches_polyak(quad):
    M = quad["methods"]
    gd, hb, nag = M["plain"], M["momentum"], M["nesterov"]
    assert gd["steps"] is not None and hb["steps"] is not None
    assert hb["steps"] < gd["steps"]
    # about sqrt(kappa) = 10 times fewer: the prefactor k of the double root costs a little
    assert 5 < gd["steps"] / hb["steps"] <= 10
    for d in (gd, hb, nag):
        assert abs(d["measured_rate"] - d["rate"]) / d["rate"] < 0.05
        assert d["rate_off"] < 0.05
    # the tuned rates themselves
    assert hb["rate"] == pytest.approx(9 / 11)
    assert gd["rate"] == pytest.approx(99 / 101)
    assert nag["rate"] == pytest.approx(0.9)
    # descent at 2/(L+m) contracts both directions by exactly its rate: no prefactor
    assert gd["steps"] == gd["theory_steps"]
    assert abs(gd["prefactor_power"]) < 0.05 and hb["prefactor_power"] > 0.5


@pytest.mark.parametrize("kappa", [4.0, 30.0, 1000.0])
def test_measured_rates_within_five_percent_across_kappa(kappa):
    q = landscape.quadratic_experiment(kappa=kappa, steps=50000)
    for name, d in q["methods"].items():
        assert d["rate_off"] < 0.05, (name, d["measured_rate"], d["rate"])
    assert q["methods"]["momentum"]["steps"] < q["methods"]["plain"]["steps"]


def test_polyak_tuning_formulas():
    t = landscape.polyak_tuning(100.0)
    assert t["plain"]["lr"] == pytest.approx(2 / 101)
    assert t["momentum"]["lr"] == pytest.approx(4 / 121)
    assert t["momentum"]["momentum"] == pytest.approx((9 / 11) ** 2)
    assert t["nesterov"]["lr"] == pytest.approx(0.01)
    assert t["nesterov"]["momentum"] == pytest.approx(9 / 11)
    assert landscape.theory_steps(0.5) == 20          # 0.5^20 < 1e-6 < 0.5^19
    with pytest.raises(ValueError, match="kappa"):
        landscape.polyak_tuning(1.0)


def _tol(points, a, grad):
    """Absolute tolerance for a few steps recomputed by hand in another order: each step
    rounds a few ulps of the magnitudes it sums (|w|, a |g(w)|, the momentum term, of the
    same size), and the steps carry earlier errors on (a |H| < 1 here)."""
    scale = max(float(np.max(np.abs(w) + a * np.abs(grad(w)))) for w in points)
    return 8 * len(points) * np.finfo(np.float64).eps * scale


def test_steps_are_the_library_sgd_heavy_ball(monkeypatch):
    """Two steps of run_path equal the heavy-ball recursion done by hand, and every step goes
    through inertia's SGD.step."""
    _, grad, w_star = landscape.quadratic(10.0)
    w0 = np.array([0.3, -1.0])
    a, b = 0.05, 0.6
    calls = []
    real_step = sgd_module.SGD.step

    def counting_step(self, params, grads, state, n=None):
        calls.append(self.convention.name)
        return real_step(self, params, grads, state, n=n)

    monkeypatch.setattr(sgd_module.SGD, "step", counting_step)
    path = landscape.run_path(grad, w0, w_star, a, b, False, steps=2, stop=0.0)
    assert calls == ["tf1", "tf1"]
    w1 = w0 - a * grad(w0)                                   # b_1 = g_0
    w2 = w1 - a * grad(w1) + b * (w1 - w0)                   # w - alpha g + beta (w - w_prev)
    np.testing.assert_allclose(path, [w0, w1, w2], rtol=0, atol=_tol([w0, w1, w2], a, grad))

    # Nesterov in tf1: b = mu b + g; w -= lr (g + mu b)
    path = landscape.run_path(grad, w0, w_star, a, b, True, steps=2, stop=0.0)
    g0 = grad(w0)
    n1 = w0 - a * (g0 + b * g0)
    g1 = grad(n1)
    n2 = n1 - a * (g1 + b * (b * g0 + g1))
    np.testing.assert_allclose(path, [w0, n1, n2], rtol=0, atol=_tol([w0, n1, n2], a, grad))

    # plain descent: momentum 0
    path = landscape.run_path(grad, w0, w_star, a, 0.0, False, steps=1, stop=0.0)
    np.testing.assert_allclose(path[1], w0 - a * grad(w0), rtol=0,
                               atol=_tol([w0, path[1]], a, grad))


def test_rosenbrock_gradient_and_momentum_helps():
    f, grad, w_star = landscape.rosenbrock()
    w = np.array([-1.2, 0.7])
    h = 1e-6
    num = [(f(*(w + h * e)) - f(*(w - h * e))) / (2 * h) for e in np.eye(2)]
    np.testing.assert_allclose(grad(w), num, rtol=1e-6)
    np.testing.assert_allclose(grad(w_star), 0.0, atol=1e-12)
    r = landscape.rosenbrock_experiment(steps=4000)
    M = r["methods"]
    assert M["momentum"]["steps"] is not None and M["nesterov"]["steps"] is not None
    assert M["plain"]["steps"] is None                     # descent is still on its way
    assert not any(d["diverged"] for d in M.values())


def test_measured_rate_removes_the_double_root_prefactor():
    k = np.arange(400, dtype=float)
    r = 0.8
    assert landscape.measured_rate(r ** k)[0] == pytest.approx(r, rel=1e-9)
    est, power = landscape.measured_rate((3 + 2 * k) * r ** k)
    assert est == pytest.approx(r, rel=2e-3) and power == pytest.approx(1, abs=0.1)


# ------------------------------------------------------------------------------ rate
@pytest.fixture(scope="module")
def rmap():
    return rate.rate_map(m=1.0, L=100.0, n=300)


def test_radius_closed_form_matches_eigvals():
    rng = np.random.default_rng(0)
    for _ in range(200):
        a, b, lam = rng.uniform(0, 0.05), rng.uniform(0, 1), rng.uniform(1, 100)
        want = np.abs(np.linalg.eigvals(rate.iteration_matrix(a, b, lam))).max()
        assert rate.radius(a, b, lam) == pytest.approx(want, rel=1e-9, abs=1e-12)


@pytest.mark.parametrize("a,b", [(0.005, 0.0), (0.0198, 0.0), (0.021, 0.0), (0.01, 0.5),
                                 (0.033, 0.67), (0.03, 0.9), (0.04, 0.3), (0.002, 0.95)])
def test_max_over_the_spectrum_is_at_an_end(a, b):
    """rho(alpha, beta) from the two ends equals the max over a dense sweep of lambda
    (radius is nondecreasing in |1 + beta - alpha lambda|, which is convex in lambda)."""
    lams = np.linspace(1.0, 100.0, 2001)
    dense = max(np.abs(np.linalg.eigvals(rate.iteration_matrix(a, b, lam))).max()
                for lam in lams)
    assert float(rate.rate(a, b, 1.0, 100.0)) == pytest.approx(dense, rel=1e-6, abs=1e-7)


def test_optimum_is_the_smallest_rate_on_the_grid(rmap):
    kappa = 100.0
    q = (math.sqrt(kappa) - 1) / (math.sqrt(kappa) + 1)
    assert rmap["rate_opt"] == pytest.approx(q, abs=1e-6)
    assert rmap["rate_opt"] <= rmap["rho"].min()
    ga, gb, gr = rmap["grid_best"]
    assert gr == rmap["rho"].min() and gr - rmap["rate_opt"] < 0.01   # grid resolution
    assert abs(ga - rmap["alpha_opt"]) < 2 * (rmap["alphas"][1] - rmap["alphas"][0])
    assert abs(gb - rmap["beta_opt"]) < 2 * (rmap["betas"][1] - rmap["betas"][0])
    # nudging the optimum any way makes it worse
    for da, db in [(1e-4, 0), (-1e-4, 0), (0, 1e-3), (0, -1e-3), (1e-4, 1e-3)]:
        assert rate.rate(rmap["alpha_opt"] + da, rmap["beta_opt"] + db, 1, 100) > q
    # plain descent's best
    assert rmap["alpha_gd"] == pytest.approx(2 / 101)
    assert rmap["rate_gd_computed"] == pytest.approx(99 / 101, abs=1e-12)


def test_divergence_region_is_rho_at_least_one(rmap):
    L = 100.0
    assert float(rate.rate(2.1 / L, 0.0, 1.0, L)) > 1.0        # beta = 0, alpha > 2/L
    assert float(rate.rate(1.9 / L, 0.0, 1.0, L)) < 1.0
    A, B = np.meshgrid(rmap["alphas"], rmap["betas"])
    diverge = rmap["rho"] >= 1.0
    margin = np.abs(A * L - 2 * (1 + B)) > 1e-9                # off the boundary line itself
    np.testing.assert_array_equal(diverge[margin], (A * L >= 2 * (1 + B))[margin])
    assert rmap["diverging_fraction"] == pytest.approx(diverge.mean())
    assert 0.2 < rmap["diverging_fraction"] < 0.5


# ------------------------------------------------------------------------------ the CLI
def test_cli_landscape(tmp_path, capsys):
    code = main(["demo", "landscape", "--out", str(tmp_path), "--steps", "4000", "--gif"])
    out, err = capsys.readouterr()
    assert code == 0, err
    assert "steps to 1e-6" in out and "finding: tuned heavy ball needs" in out
    assert "Nesterov" in out and "Rosenbrock" in out
    pngs = sorted(tmp_path.glob("*.png"))
    assert [p.name for p in pngs] == ["landscape_quadratic.png", "landscape_rosenbrock.png"]
    for p in pngs:
        assert png_size(p) == expected_pixels(landscape.FIGSIZE)
    for name in ("landscape_quadratic.gif", "landscape_rosenbrock.gif"):
        assert (tmp_path / name).read_bytes()[:6] == b"GIF89a"


def test_cli_rate(tmp_path, capsys):
    code = main(["demo", "rate", "--out", str(tmp_path), "--kappa", "50", "--grid", "120"])
    out, err = capsys.readouterr()
    assert code == 0, err
    q = (math.sqrt(50) - 1) / (math.sqrt(50) + 1)
    assert f"{q:.6f}" in out and "best grid point" in out and "diverges" in out
    assert png_size(tmp_path / "rate.png") == expected_pixels(rate.FIGSIZE)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["rate.png"]


@pytest.mark.parametrize("demo", ["landscape", "rate"])
def test_cli_rejects_kappa_one(tmp_path, capsys, demo):
    code = main(["demo", demo, "--out", str(tmp_path), "--kappa", "1"])
    out, err = capsys.readouterr()
    assert code == 2 and err.startswith("inertia: error:") and "kappa" in err
    assert len(err.strip().splitlines()) == 1
