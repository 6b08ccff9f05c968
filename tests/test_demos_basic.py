"""The ball, smoothing, decay and pingpong demos: run through the command line, then their
findings checked through the modules' compute functions."""

import math
import struct

import numpy as np
import pytest

from inertia.cli import main
from inertia.demos import ball, decay, pingpong, smoothing

DPI = 110          # inertia.plots.DPI; not imported here so the test module loads no matplotlib


def run(capsys, *argv):
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


def png_size(path):
    data = path.read_bytes()
    assert data[:8] == b"\x89PNG\r\n\x1a\n", f"{path} is not a PNG"
    assert data[12:16] == b"IHDR"
    return struct.unpack(">II", data[16:24])


def expect_png(path, figsize):
    assert path.exists(), f"{path} was not written"
    assert png_size(path) == (round(figsize[0] * DPI), round(figsize[1] * DPI))


# ------------------------------------------------------------------------------- listing
def test_list_names_the_four_demos_one_line_each(capsys):
    code, out, err = run(capsys, "demo", "--list")
    assert code == 0, err
    lines = out.splitlines()
    for name in ("ball", "smoothing", "decay", "pingpong"):
        mine = [ln for ln in lines if ln.split()[:1] == [name]]
        assert len(mine) == 1, f"{name}: {mine}"
        assert len(mine[0].split()) > 3          # a name and a one-line summary


# ---------------------------------------------------------------------------------- ball
def test_ball_command_writes_pictures_and_gif(tmp_path, capsys):
    code, out, err = run(capsys, "demo", "ball", "--out", str(tmp_path), "--gif")
    assert code == 0, err
    assert "plain descent (follows the slope) stops at index 24" in out
    assert "smallest mu that crosses the bump is 0.48" in out
    expect_png(tmp_path / "ball.png", (8, 5))
    expect_png(tmp_path / "ball_sweep.png", (8, 5))
    gif = (tmp_path / "ball.gif").read_bytes()
    assert gif[:6] == b"GIF89a"
    assert struct.unpack("<HH", gif[6:10]) == (560, 352)
    assert not list(tmp_path.glob(".*"))                # no temporary files left behind


def test_ball_findings():
    r = ball.compute()
    assert r["plain_stop"] == 24 == r["bump_at"] - 1
    assert r["momentum_stop"] > r["bump_at"]
    assert abs(r["momentum_stop"] - 50) <= 3 and r["bottom"] == 50
    x, y = ball.valley()
    assert y[25] - 0.2 * (0.25 - 0.5) ** 2 == pytest.approx(2e-3)
    # the sweep's smallest crossing momentum is where crossing starts
    first = r["smallest_crossing_mu"]
    assert first is not None and 0 < first < 0.6
    assert ball.roll(x, y, round(first - 0.01, 2))[0][-1] == 24
    assert ball.roll(x, y, first)[0][-1] > 25
    assert r["all_above_cross"]


def test_ball_velocity_is_the_optimizers_ema():
    x, y = ball.valley()
    s = ball.slopes(x, y)
    v = ball.smoothed_slopes(s, 0.6)
    ref, acc = [], 0.0
    mag, tol = 0.0, []
    for i, g in enumerate(s):
        acc = 0.6 * acc + 0.4 * g
        ref.append(acc)
        # the optimizer sums the same terms in another order (scal then axpy, maybe fused):
        # each of the i + 1 terms may round by a few ulps of the magnitudes summed so far,
        # so the bound is absolute (the EMA crosses zero, where a relative one means nothing)
        mag = 0.6 * mag + 0.4 * abs(g)
        tol.append(4 * np.finfo(np.float64).eps * (i + 1) * mag)
    assert np.all(np.abs(np.asarray(v) - ref) <= tol)
    np.testing.assert_array_equal(ball.smoothed_slopes(s, 0.0), s)


def test_ball_options(tmp_path, capsys):
    code, out, err = run(capsys, "demo", "ball", "--out", str(tmp_path), "--bump", "0",
                         "--momentum", "0.3")
    assert code == 0, err
    assert "plain descent (follows the slope) stops at index 50" in out
    r = ball.compute(momentum=0.3, bump=0.0)
    assert r["smallest_crossing_mu"] == 0.0
    code, out, err = run(capsys, "demo", "ball", "--out", str(tmp_path), "--momentum", "1")
    assert code == 2 and "momentum must be in [0, 1)" in err and len(err.splitlines()) == 1


# ----------------------------------------------------------------------------- smoothing
def test_smoothing_command(tmp_path, capsys):
    code, out, err = run(capsys, "demo", "smoothing", "--out", str(tmp_path))
    assert code == 0, err
    assert "real curve:    largest uphill step" in out
    assert "rebuilt curve: no uphill step" in out
    expect_png(tmp_path / "smoothing.png", (8, 5))


def test_smoothing_findings():
    r = smoothing.compute()
    assert r["real_rise"] > 0 and r["real_rise_at"] == 24          # the step onto the bump
    assert r["real_rise"] == pytest.approx(0.2 * (0.25**2 - 0.26**2) + 2e-3)
    assert r["smooth_rise"] <= 0                                    # no uphill step at all
    assert np.all(np.diff(r["smooth"][:r["smooth_min"] + 1]) <= 0)
    # the smoothed valley's lowest point is where the momentum ball stops
    assert r["smooth_min"] == ball.compute()["momentum_stop"]
    # too little momentum leaves the bump in
    assert smoothing.compute(momentum=0.3)["smooth_rise"] > 0
    # no momentum: the rebuilt curve is the real one
    np.testing.assert_allclose(smoothing.compute(momentum=0.0)["smooth"], r["y"], atol=1e-15)


# --------------------------------------------------------------------------------- decay
def test_decay_command(tmp_path, capsys):
    code, out, err = run(capsys, "demo", "decay", "--out", str(tmp_path))
    assert code == 0, err
    for mu, k in ((0.5, 7), (0.6, 10), (0.9, 44), (0.99, 459)):
        assert f"falls below 0.01 after {k} steps" in out
    assert "the formula says" not in out
    expect_png(tmp_path / "decay.png", (11, 5.6))


def test_decay_findings():
    r = decay.compute()
    for row in r["rows"]:
        mu, w = row["mu"], row["weights"]
        k = np.arange(len(w))
        np.testing.assert_allclose(w, mu ** k, rtol=1e-12)          # what the optimizer does
        want = math.ceil(math.log(0.01) / math.log(mu))
        assert row["below_measured"] == row["below_formula"] == want
        assert w[want] < 0.01 <= w[want - 1]
        assert row["memory"] == pytest.approx(1 / (1 - mu))


def test_decay_exact_threshold():
    # mu^k landing exactly on the threshold is not below it
    assert decay.steps_below(0.5, 0.25) == 3
    assert decay.first_below(decay.impulse_weights(0.5, 10), 0.25) == 3
    assert decay.steps_below(0.1, 0.01) == 3
    assert decay.first_below(decay.impulse_weights(0.1, 10), 0.01) == 3
    ema = decay.impulse_weights(0.9, 5, convention="ema")            # (1 - mu) mu^k
    np.testing.assert_allclose(ema, 0.1 * 0.9 ** np.arange(6), rtol=1e-12)


# ------------------------------------------------------------------------------ pingpong
SMALL = dict(samples=200, dim=50, hidden=20, batch_size=64, lr=1e-3, epochs=60)


def test_pingpong_command(tmp_path, capsys):
    code, out, err = run(capsys, "demo", "pingpong", "--out", str(tmp_path), "--quiet",
                         "--samples", "200", "--dim", "50", "--hidden", "20", "--lr", "1e-3",
                         "--epochs", "60")
    assert code == 0, err
    assert "plain SGD" in out and "momentum 0.9" in out and "zig-zag" in out
    assert "% less than plain SGD's" in out
    expect_png(tmp_path / "pingpong.png", (8.5, 6))
    for epochs in ("2", "3"):             # fewer changes than the rolling mean's window
        code, out, err = run(capsys, "demo", "pingpong", "--out", str(tmp_path / epochs),
                             "--quiet", "--samples", "100", "--dim", "20", "--hidden", "5",
                             "--epochs", epochs)
        assert code == 0, err
        expect_png(tmp_path / epochs / "pingpong.png", (8.5, 6))


def test_pingpong_findings():
    r = pingpong.experiment(**SMALL)
    plain, mom = r["runs"]["plain"], r["runs"]["momentum"]
    assert len(plain["loss"]) == len(mom["loss"]) == 60
    assert mom["zigzag"] < 0.8 * plain["zigzag"]
    assert r["ratio"] == pytest.approx(mom["zigzag"] / plain["zigzag"])
    # the measure itself
    assert pingpong.zigzag([1.0, 2.0, 1.0]) == pytest.approx(1 / (4 / 3))
    # the same start: the first update is the same under both (pytorch's first b = g)
    assert abs(plain["loss"][0] - mom["loss"][0]) < 0.05


def test_pingpong_rejects_one_epoch(tmp_path, capsys):
    code, out, err = run(capsys, "demo", "pingpong", "--out", str(tmp_path), "--epochs", "1",
                         "--samples", "20", "--dim", "5", "--hidden", "3")
    assert code == 2 and "--epochs must be at least 2" in err
