"""inertia.sweep: every run equals a separate fit of its configuration and seed; divergence
masking; seeds; grid validation; SweepResult's methods; the pictures; the command."""

import io
import os
import subprocess
import sys
import warnings

import numpy as np
import pytest

import inertia
from inertia import SGD, QHM, Dense, Network, schedules
from inertia.optim import CONVENTIONS

LAYERS = [Dense(5, "tanh"), Dense(1, "linear")]


def data(n=30, seed=0):
    rng = np.random.default_rng(seed)
    X = rng.uniform(-1, 1, (n, 3))
    y = np.sin(X[:, :1]) + 0.5 * X[:, 1:2] * X[:, 2:3]
    return X, y


def separate(config, X, y, base, dtype="float64", start=None, **kw):
    """The run a sweep must reproduce: a network of that seed (or a copy of ``start``), a
    fresh optimizer with ``base``'s settings and the configuration's values, one fit."""
    cfg = dict(config)
    seed = cfg.pop("seed")
    net = start.copy() if start is not None else Network(3, LAYERS, seed=seed, dtype=dtype)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", inertia.DivergenceWarning)
        opt = type(base)(**{**base.config(), **cfg})
        hist = inertia.fit(net, X, y, "mse", opt, seed=0 if seed is None else seed,
                           progress=False, **kw)
    return net, hist


def assert_run_equals(result, k, net, hist, rtol=1e-12):
    """Run k's weights, losses and divergence record equal the separate fit's: to
    ``rtol`` relative, with an absolute floor of rtol times the array's scale (values near
    zero carry the round-off of their larger neighbours)."""
    got = result.network(k).parameters()
    for (w1, b1), (w2, b2) in zip(got, net.parameters()):
        for a, b in ((w1, w2), (b1, b2)):
            np.testing.assert_allclose(a, b, rtol=rtol, atol=rtol * max(1.0, np.abs(b).max()))
    n = len(hist.loss)
    np.testing.assert_allclose(result.loss[k, :n], hist.loss, rtol=rtol, atol=0)
    assert np.isnan(result.loss[k, n:]).all()
    assert result.history(k).diverged == hist.diverged


@pytest.mark.parametrize("conv", list(CONVENTIONS))
@pytest.mark.parametrize("batch_size, n, epochs", [(None, 30, 6), (7, 30, 3), (1, 12, 2)],
                         ids=["full", "minibatch-uneven", "online"])
def test_every_run_equals_a_separate_fit(conv, batch_size, n, epochs):
    X, y = data(n)
    base = SGD(0.1, convention=conv)
    grid = {"lr": [0.02, 0.2], "momentum": [0.0, 0.9]}
    res = inertia.sweep(Network(3, LAYERS, dtype="float64"), X, y, "mse", base, grid,
                        seeds=[3, 11], epochs=epochs, batch_size=batch_size)
    assert len(res.configs) == 8 and res.loss.shape == (8, epochs)
    for k, cfg in enumerate(res.configs):
        net, hist = separate(cfg, X, y, base, epochs=epochs, batch_size=batch_size)
        assert_run_equals(res, k, net, hist)


def test_segments_and_step_schedules_and_validation():
    X, y = data(40)
    Xv, yv = data(15, seed=1)
    segs = [(2, {}), (2, {"lr": 0.05}), (1, {"momentum": 0.5})]
    res = inertia.sweep(Network(3, LAYERS, dtype="float64"), X, y, "mse", SGD(0.1),
                        {"lr": [0.1, 0.3], "momentum": [0.8, 0.95]}, seeds=[1],
                        schedule=segs, batch_size=9, validation_data=(Xv, yv))
    for k, cfg in enumerate(res.configs):
        net, hist = separate(cfg, X, y, SGD(0.1), schedule=segs, batch_size=9,
                             validation_data=(Xv, yv))
        assert_run_equals(res, k, net, hist)
        np.testing.assert_allclose(res.val_loss[k], hist.val_loss, rtol=1e-12)
        assert res.history(k).segment_loss == pytest.approx(hist.segment_loss, rel=1e-12)
    assert res.final == pytest.approx(res.val_loss[:, -1], rel=0)
    assert res.best == int(np.argmin(res.val_loss[:, -1]))
    lr_s, mu_s = schedules.cosine(0.2, 40), schedules.sutskever(0.95)
    res = inertia.sweep(Network(3, LAYERS, dtype="float64"), X, y, "mse",
                        SGD(0.1, convention="keras"), {"weight_decay": [0.0, 0.01]}, seeds=[0, 2],
                        epochs=4, batch_size=10, lr_schedule=lr_s, momentum_schedule=mu_s)
    for k, cfg in enumerate(res.configs):
        net, hist = separate(cfg, X, y, SGD(0.1, convention="keras"), epochs=4, batch_size=10,
                             lr_schedule=lr_s, momentum_schedule=mu_s)
        assert_run_equals(res, k, net, hist)


def test_qhm_grid_over_nu_and_float32():
    X, y = data(33)
    res = inertia.sweep(Network(3, LAYERS, dtype="float32"), X, y, "mse", QHM(0.1),
                        {"nu": [0.0, 0.7, 1.0], "momentum": [0.9]}, seeds=[5], epochs=3,
                        batch_size=8)
    assert [c["nu"] for c in res.configs] == [0.0, 0.7, 1.0]
    for k, cfg in enumerate(res.configs):
        net, hist = separate(cfg, X, y, QHM(0.1),
                             dtype="float32", epochs=3, batch_size=8)
        assert_run_equals(res, k, net, hist, rtol=1e-5)   # float32: a few ulps of rounding


def test_a_diverged_run_is_stopped_and_masked_and_the_others_go_on():
    X, y = data(30)
    with pytest.warns(inertia.DivergenceWarning, match="1 of 3 runs diverged"):
        res = inertia.sweep(Network(3, LAYERS, dtype="float64"), X, y, "mse", SGD(0.1),
                            {"lr": [0.05, 1e12, 0.2]}, seeds=[0], epochs=5, batch_size=10)
    d = res.diverged[1]
    assert d is not None and res.diverged[0] is None and res.diverged[2] is None
    assert np.isnan(res.loss[1, d.epoch:]).all()
    assert np.isnan(res.final[1]) and np.isfinite(res.final[[0, 2]]).all()
    assert res.best in (0, 2) and res.best == int(np.nanargmin(res.final))
    for k, cfg in enumerate(res.configs):
        net, hist = separate(cfg, X, y, SGD(0.1), epochs=5, batch_size=10)
        assert_run_equals(res, k, net, hist)
    assert all(np.isfinite(w).all() for wb in res.network(1).parameters() for w in wb)
    rows = res.rows()
    assert rows[1]["diverged"] and rows[1]["diverged_epoch"] == d.epoch + 1


def test_seeds_none_starts_every_run_from_the_given_network():
    X, y = data(30)
    net = Network(3, LAYERS, seed=42, dtype="float64")
    before = net.parameters()
    res = inertia.sweep(net, X, y, "mse", SGD(0.1), {"lr": [0.05, 0.1]}, epochs=3,
                        batch_size=6)
    assert [c["seed"] for c in res.configs] == [None, None]
    for (w, b), (w0, b0) in zip(net.parameters(), before):     # net itself untouched
        assert np.array_equal(w, w0) and np.array_equal(b, b0)
    for k, cfg in enumerate(res.configs):
        ref, hist = separate(cfg, X, y, SGD(0.1), start=net, epochs=3, batch_size=6)
        assert_run_equals(res, k, ref, hist)


def test_runs_with_a_seed_share_the_initial_weights_of_that_seed():
    X, y = data(20)
    res = inertia.sweep(Network(3, LAYERS), X, y, "mse", SGD(0.1),
                        {"lr": [0.1, 0.2], "momentum": [0.0, 0.9]}, seeds=[0, 7], epochs=0)
    for k, cfg in enumerate(res.configs):
        want = Network(3, LAYERS, seed=cfg["seed"]).parameters()
        for (w, b), (w0, b0) in zip(res.network(k).parameters(), want):
            assert np.array_equal(w, w0) and np.array_equal(b, b0)
    w_a = res.network(0).parameters()[0][0]
    w_b = res.network(1).parameters()[0][0]      # run 1: the same grid point, seed 7
    assert res.configs[1]["seed"] == 7 and not np.array_equal(w_a, w_b)


@pytest.mark.parametrize("kw, message", [
    ({"grid": {"learning_rate": [0.1]}}, "not a hyperparameter of SGD: use lr"),
    ({"grid": {"lr": [0.1, -1.0]}}, "grid point {'lr': -1.0}"),
    ({"grid": {}}, "grid is empty"),
    ({"grid": {"lr": 0.1}}, "must be a non-empty list"),
    ({"grid": [{"lr": 0.1}, {"momentum": 0.5}]}, "same hyperparameters"),
    ({"grid": "lr"}, "grid must be a dict"),
    ({"seeds": [1, 1]}, "seeds has repeats"),
    ({"seeds": [-1]}, "non-negative integers"),
    ({"seeds": []}, "non-empty list"),
    ({"on_divergence": "raise"}, "'stop' or 'continue'"),
    ({"cluster": 8786}, "Dask scheduler address"),
    ({"epochs": -1}, "epochs must be a non-negative integer"),
    ({"batch_size": 0}, "batch_size must be a positive integer"),
    ({"optimizer": "sgd"}, "optimizer must be an inertia optimizer"),
    ({"grid": {"momentum": [0.5, 0.0]}, "schedule": [(1, {"nesterov": True})], "epochs": None,
      "optimizer": SGD(0.1, momentum=0.9)},
     "grid point {'momentum': 0.0}"),
])
def test_bad_arguments_fail_in_one_line_before_any_run(kw, message, monkeypatch):
    from inertia.sweeps import runs

    def boom(*a, **k):
        raise AssertionError("a run started")
    monkeypatch.setattr(runs, "fit", boom)
    X, y = data(10)
    args = {"optimizer": SGD(0.1), "grid": {"lr": [0.1]}, "epochs": 2}
    args.update(kw)
    with pytest.raises(ValueError, match=None) as info:
        inertia.sweep(Network(3, LAYERS), X, y, "mse", **args)
    assert message in str(info.value) and "\n" not in str(info.value)


def test_result_methods():
    X, y = data(20)
    res = inertia.sweep(Network(3, LAYERS, dtype="float64"), X, y, "mse", SGD(0.1),
                        [{"lr": 0.1, "momentum": 0.0}, {"lr": 0.1, "momentum": 0.9}],
                        seeds=[0, 1, 2], epochs=4)
    assert len(res) == 6 and res.names == ["lr", "momentum"]
    net = res.network(res.best)
    pred = net.predict(X) if hasattr(net, "predict") else None
    assert pred is None or pred.shape[0] == 20
    assert res.history(-1).loss == pytest.approx(list(res.loss[-1]), rel=0)
    with pytest.raises(IndexError, match="out of range"):
        res.network(6)
    summary = res.summary()
    assert [s[3] for s in summary] == [3, 3]
    for point, mean, std, finished, stopped in summary:
        ks = [k for k, c in enumerate(res.configs) if c["momentum"] == point["momentum"]]
        assert mean == pytest.approx(res.final[ks].mean(), rel=1e-12)
        assert std == pytest.approx(res.final[ks].std(), rel=1e-9)
    assert summary[0][1] <= summary[1][1]
    try:
        import pandas  # noqa: F401
    except ImportError:
        with pytest.raises(ImportError, match="pip install pandas"):
            res.to_frame()
    else:
        frame = res.to_frame()
        assert list(frame["seed"]) == [0, 1, 2, 0, 1, 2] and len(frame) == 6
    assert "6 runs x 4 epochs" in repr(res)


def test_plot_writes_a_picture_and_checks_its_arguments_first(tmp_path):
    X, y = data(20)
    with pytest.warns(inertia.DivergenceWarning):
        res = inertia.sweep(Network(3, LAYERS, dtype="float64"), X, y, "mse", SGD(0.1),
                            {"lr": [0.05, 1e12], "momentum": [0.0, 0.9]}, seeds=[0, 1],
                            epochs=4, batch_size=5)
    path = tmp_path / "sweep.png"
    assert res.plot(str(path)) == str(path)
    assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert res.plot(str(tmp_path / "curves.svg"), what="curves").endswith(".svg")
    fig = res.plot(x="momentum", y=None)
    assert len(fig.axes) >= 2
    for kw, message in [({"path": str(tmp_path / "x.txt")}, "picture"),
                        ({"x": "nu"}, "not an axis of the grid"),
                        ({"y": "lr"}, "pick two different"),
                        ({"what": "both!"}, "what must be one of")]:
        with pytest.raises(ValueError, match=message):
            res.plot(**kw)
    assert not (tmp_path / "x.txt").exists()


class _Terminal(io.StringIO):
    """A stand-in for a terminal's stderr: tqdm draws its bar here."""

    def isatty(self):
        return True


class _Counter:
    """A stand-in for the progress bar: the run-epochs it is told about."""

    def __init__(self, total, **kw):
        self.total, self.n, self.closed = total, 0, False

    def update(self, k):
        self.n += k

    def close(self):
        self.closed = True


@pytest.mark.parametrize("fused", ["1", "0"], ids=["group", "fits"])
def test_progress_counts_every_run_epoch_and_changes_no_number(fused, monkeypatch):
    """The bar counts run-epochs of all shards (a diverged run's remaining epochs when it
    stops), on the group's compiled loop and on the fits one by one, reaches its total,
    and progress on or off gives the same numbers; drawn on a terminal's stderr."""
    from inertia.sweeps import api
    from inertia.training import loop

    monkeypatch.setenv("INERTIA_SWEEP_FUSED", fused)
    X, y = data(30)
    kw = dict(seeds=[0, 4], epochs=5, batch_size=10)
    grid = {"lr": [0.05, 1e200, 0.2]}           # 1e200 overflows in its first epoch
    bars = []

    def counter(total, **kw):
        bars.append(_Counter(total))
        return bars[-1]

    with monkeypatch.context() as m:
        m.setattr(api, "progress_bar", counter)
        with pytest.warns(inertia.DivergenceWarning):
            on = inertia.sweep(Network(3, LAYERS, dtype="float64"), X, y, "mse", SGD(0.1),
                               grid, **kw)
    (bar,) = bars
    assert bar.total == 6 * 5 and bar.n == bar.total and bar.closed
    assert any(d is not None and d.epoch < 4 for d in on.diverged)
    terminal = _Terminal()
    monkeypatch.setattr(sys, "stderr", terminal)
    monkeypatch.setattr(loop, "BAR_DELAY", 0.0)
    with pytest.warns(inertia.DivergenceWarning):
        shown = inertia.sweep(Network(3, LAYERS, dtype="float64"), X, y, "mse", SGD(0.1),
                              grid, **kw)
    assert "run-epoch" in terminal.getvalue()
    terminal.seek(0)
    terminal.truncate()
    with pytest.warns(inertia.DivergenceWarning):
        off = inertia.sweep(Network(3, LAYERS, dtype="float64"), X, y, "mse", SGD(0.1),
                            grid, progress=False, **kw)
    assert terminal.getvalue() == ""
    for res in (shown, off):
        assert np.array_equal(res.loss, on.loss, equal_nan=True)
        assert res.diverged == on.diverged
        for k in range(len(on)):
            for a, b in zip(res.network(k).parameters(), on.network(k).parameters()):
                assert all(np.array_equal(u, v) for u, v in zip(a, b))


@pytest.mark.parametrize("quiet", [False, True], ids=["bar", "quiet"])
def test_cli_bar_on_stderr_only(quiet, tmp_path, capsys, monkeypatch):
    """``inertia sweep`` draws the bar on a terminal's stderr unless --quiet, never on
    stdout (the table stays clean)."""
    from inertia.cli import main
    from inertia.training import loop

    terminal = _Terminal()
    monkeypatch.setattr(sys, "stderr", terminal)
    monkeypatch.setattr(loop, "BAR_DELAY", 0.0)
    args = ["sweep", "--samples", "60", "--layers", "4:tanh,1:linear", "--lr", "0.1,0.3",
            "--momentum", "0,0.9", "--seeds", "1", "--epochs", "3", "--out", str(tmp_path)]
    assert main(args + (["--quiet"] if quiet else [])) == 0
    out = capsys.readouterr().out
    assert "best:" in out and "\r" not in out and "\x1b" not in out
    assert ("run-epoch" in terminal.getvalue()) != quiet


def cli(*args, cwd=None):
    env = dict(os.environ, PYTHONPATH=os.path.dirname(os.path.dirname(inertia.__file__)))
    return subprocess.run([sys.executable, "-m", "inertia", "sweep", *args],
                          capture_output=True, text=True, env=env, cwd=cwd, timeout=300)


def test_cli_table_and_pictures(tmp_path):
    """The table best first and the pictures; piped, the output has no progress bar (no
    carriage returns or escapes on stdout, nothing on stderr)."""
    out = cli("--samples", "200", "--layers", "4:tanh,1:linear", "--lr", "0.01:1:3log",
              "--momentum", "0,0.9", "--seeds", "2", "--epochs", "5", "--batch-size", "50",
              "--out", str(tmp_path))
    assert out.returncode == 0, out.stderr
    assert "\r" not in out.stdout and "\x1b" not in out.stdout and out.stderr == ""
    lines = out.stdout.splitlines()
    head = next(i for i, line in enumerate(lines) if line.split()[:2] == ["lr", "momentum"])
    rows = [line.split() for line in lines[head + 1:head + 7]]
    assert sorted(float(r[0]) for r in rows) == pytest.approx([0.01, 0.01, 0.1, 0.1, 1, 1])
    means = [float(r[2]) for r in rows if r[2] != "diverged"]
    assert means == sorted(means)                      # best first
    for name in ("sweep-heatmap.png", "sweep-curves.png"):
        assert (tmp_path / name).read_bytes()[:4] == b"\x89PNG"


def test_cli_classification_file_with_validation(tmp_path):
    """A data file whose target holds class names: the network ends in softmax, the loss
    is cross-entropy, --test-fraction holds rows out and the table and pictures rank by the
    validation loss, as ``train`` and ``tune`` treat the same file."""
    rng = np.random.default_rng(0)
    X = rng.normal(size=(90, 3))
    names = np.array(["ant", "bee", "cat"])[np.argmax(X, axis=1)]
    path = tmp_path / "three.csv"
    rows = ["a,b,c,kind"] + [f"{u:.4f},{v:.4f},{w:.4f},{k}" for (u, v, w), k in zip(X, names)]
    path.write_text("\n".join(rows) + "\n")
    out = cli("--data", str(path), "--lr", "0.1,1", "--momentum", "0,0.9", "--seeds", "1",
              "--epochs", "5", "--batch-size", "16", "--test-fraction", "0.2", "--standardize",
              "--out", str(tmp_path))
    assert out.returncode == 0, out.stderr
    head = out.stdout.splitlines()[0]
    assert "3-8-8-3 (sigmoid, tanh, softmax)" in head and "72 samples) / 18 validation" in head
    assert "3-class classification, cross_entropy loss" in head
    assert "final validation cross_entropy" in out.stdout
    for name in ("sweep-heatmap.png", "sweep-curves.png"):
        assert (tmp_path / name).read_bytes()[:4] == b"\x89PNG"


@pytest.mark.parametrize("args, message", [
    (["--lr", "0.1:1:0log"], "--lr"),
    (["--lr", "-1:1:3log"], "--lr"),
    (["--lr", "a,b"], "--lr"),
    (["--momentum", "0,1.5"], "--momentum 1.5"),
    (["--seeds", "0"], "--seeds"),
    (["--nu", "0.5"], "--nu"),
    (["--epochs", "0"], "--epochs must be at least 1"),
    (["--test-fraction", "1"], "--test-fraction must be in [0, 1)"),
    (["--layers", "8:tanh,1:linear", "--loss", "cross_entropy"], "cross_entropy"),
])
def test_cli_errors_are_one_line(args, message, tmp_path):
    out = cli("--samples", "50", "--epochs", "1", "--out", str(tmp_path), *args)
    assert out.returncode == 2
    err = out.stderr.strip()
    assert err.startswith("inertia: error:") and "\n" not in err and message in err


def test_a_local_sweep_imports_neither_dask_nor_matplotlib():
    code = ("import sys, numpy as np, inertia\n"
            "X = np.linspace(-1, 1, 20).reshape(-1, 1)\n"
            "net = inertia.Network(1, [inertia.Dense(1)])\n"
            "inertia.sweep(net, X, X, 'mse', inertia.SGD(0.1), {'lr': [0.1, 0.2]}, seeds=[0],"
            " epochs=2)\n"
            "bad = [m for m in ('dask', 'distributed', 'matplotlib') if m in sys.modules]\n"
            "assert not bad, bad\n")
    env = dict(os.environ, PYTHONPATH=os.path.dirname(os.path.dirname(inertia.__file__)))
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env,
                         timeout=120)
    assert out.returncode == 0, out.stderr


@pytest.mark.parametrize("slots", [1, 2, 5, 16])
def test_shards_never_mix_seeds_and_fill_the_worker_threads(slots):
    from inertia.sweeps.api import seed_shards, split_shards

    configs = [{"lr": lr, "seed": s} for lr in (0.1, 0.2, 0.3) for s in (4, 9)]
    shards = split_shards(seed_shards(configs, True), slots)
    assert sorted(k for _, ks in shards for k in ks) == list(range(6))
    for seed, ks in shards:
        assert ks and all(configs[k]["seed"] == seed for k in ks)
    assert min(6, max(2, slots)) <= len(shards) <= min(6, 2 * -(-slots // 2))


def test_a_sweep_beyond_memory_or_with_a_repeated_point_is_refused_at_once(monkeypatch):
    """A grid of a million points is refused by its size before its points are checked one
    by one (that took minutes on its way to about 120 GB); a point given twice would train
    the same run twice."""
    import time

    from inertia import data as data_mod
    from inertia.sweeps import api

    X, y = data(40)
    net = Network(3, LAYERS, seed=0)
    for grid in ({"lr": [0.1, 0.1]}, [{"lr": 0.1}, {"lr": 0.1}]):
        with pytest.raises(ValueError, match=r"grid point \{'lr': 0.1\} is given twice"):
            inertia.sweep(net, X, y, "mse", SGD(0.01), grid, epochs=1, progress=False)
    monkeypatch.setattr(data_mod, "total_memory", lambda: 16 * 2**30)   # any machine's
    monkeypatch.setattr(api, "check_grid", lambda *a: pytest.fail("points checked first"))
    grid = {"lr": list(np.linspace(0.001, 0.1, 1000)),
            "momentum": list(np.linspace(0, 0.9, 1000))}
    t = time.perf_counter()
    with pytest.raises(ValueError, match=r"the sweep's 1,000,000 runs: .* needed but this "
                                         r"machine has 17.2 GB of memory") as err:
        inertia.sweep(net, X, y, "mse", SGD(0.01), grid, seeds=[0], epochs=1, progress=False)
    assert "\n" not in str(err.value) and time.perf_counter() - t < 5
