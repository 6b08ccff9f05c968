"""Divergence: a NaN or infinite loss or parameter stops training at the last finite state
(both loops), says so once, and the CLI exits 3 without overwriting --save."""

import os
import subprocess
import sys
import warnings

import numpy as np
import pytest

import inertia
from inertia import Dense, Network, SGD


def _data(n=64, seed=0):
    rng = np.random.default_rng(seed)
    X = rng.uniform(0, 1, (n, 4))
    y = np.sin(X[:, :1]) + np.cos(X[:, 1:2]) + np.tanh(X[:, 2:3]) + X[:, 3:4] ** 2
    return X, y


def _net(dtype="float64"):
    return Network(4, [Dense(8, "sigmoid"), Dense(6, "tanh"), Dense(1)], seed=0, dtype=dtype)


def _diverge(compiled, batch_size, policy="stop", dtype="float64"):
    X, y = _data()
    net, opt = _net(dtype), SGD(lr=50.0, momentum=0.9)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        h = inertia.fit(net, X, y, "mse", opt, epochs=200, batch_size=batch_size, seed=0,
                        progress=False, compiled=compiled, on_divergence=policy)
    return net, opt, h, [w for w in caught if issubclass(w.category, inertia.DivergenceWarning)]


@pytest.mark.parametrize("compiled", [True, False])
@pytest.mark.parametrize("batch_size", [None, 16])
@pytest.mark.parametrize("dtype", ["float64", "float32"])
def test_stop_goes_back_to_the_last_finite_state(compiled, batch_size, dtype):
    X, y = _data()
    net, opt, h, caught = _diverge(compiled, batch_size, dtype=dtype)
    d = h.diverged
    assert d is not None and len(caught) == 1
    assert "lr" in str(caught[0].message) and "\n" not in str(caught[0].message)
    per = 1 if batch_size is None else 4
    assert h.epochs == d.epoch < 200 and 0 <= d.step < per
    assert np.isfinite(h.loss).all()
    assert np.isfinite(net.flat).all() and np.isfinite(net.loss(X, y, "mse"))
    # the state kept is the one a plain run of as many steps reaches: parameters and
    # counters agree (the step that diverged, and before it the step whose result had a
    # non-finite loss, are undone)
    kept = opt.state.step
    assert kept in (d.epoch * per + d.step, d.epoch * per + d.step - 1)
    if batch_size is None:
        ref, ref_opt = _net(dtype), SGD(lr=50.0, momentum=0.9)
        inertia.fit(ref, X, y, "mse", ref_opt, epochs=kept, progress=False,
                    compiled=compiled, on_divergence="continue")
        assert np.array_equal(ref.flat, net.flat)
        assert np.array_equal(ref_opt.state.velocity[0], opt.state.velocity[0])
        assert ref_opt.state.step == kept


def test_raise_carries_the_record_and_continue_trains_on():
    with pytest.raises(inertia.Diverged) as info:
        _diverge(None, None, policy="raise")
    assert info.value.diverged is not None and info.value.history.diverged is info.value.diverged
    assert issubclass(inertia.DivergenceWarning, Warning)
    net, opt, h, caught = _diverge(None, None, policy="continue")
    assert h.diverged is None and not caught and h.epochs == 200
    assert not np.isfinite(h.loss[-1])


def test_bad_policy_is_refused_before_training():
    X, y = _data()
    net = _net()
    before = net.flat.copy()
    with pytest.raises(ValueError, match="on_divergence must be one of stop, raise, continue"):
        inertia.fit(net, X, y, "mse", SGD(lr=0.1), epochs=3, on_divergence="ignore")
    assert np.array_equal(before, net.flat)


def test_divergence_in_the_update_is_found_in_that_step():
    """A parameter that overflows in the update (finite loss) stops the run in that step;
    the network keeps the state before it."""
    X, y = _data(16)
    y = 100 * y                          # gradients of some hundreds: lr * g overflows
    for compiled in (True, False):
        net = Network(4, [Dense(1)], seed=0, dtype="float32")
        opt = SGD(lr=1e38, momentum=0.0)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            h = inertia.fit(net, X, y, "mse", opt, epochs=5, progress=False, compiled=compiled)
        d = h.diverged
        assert d == (0, 0, d.loss) and np.isfinite(d.loss), compiled
        assert np.array_equal(net.flat, _first_weights()), compiled
        assert opt.state.step == 0


def _first_weights():
    return Network(4, [Dense(1)], seed=0, dtype="float32").flat


def _cli(*args, cwd):
    env = dict(os.environ, PYTHONPATH=os.path.dirname(os.path.dirname(inertia.__file__)))
    return subprocess.run([sys.executable, "-m", "inertia", *args], capture_output=True,
                          text=True, cwd=cwd, env=env, timeout=300)


def test_cli_diverged_run_exits_3_and_keeps_the_saved_model(tmp_path):
    common = ["train", "--samples", "200", "--epochs", "50", "--quiet", "--save", "model.npz"]
    r = _cli(*common, cwd=tmp_path)
    assert r.returncode == 0, r.stderr
    good = (tmp_path / "model.npz").read_bytes()
    r = _cli(*common, "--lr", "50", "--momentum", "0.9", "--plot", "loss.png", cwd=tmp_path)
    assert r.returncode == 3, r.stdout + r.stderr
    lines = [ln for ln in r.stderr.splitlines() if ln.strip()]
    assert len(lines) == 1 and "diverged" in lines[0] and "model.npz was not written" in lines[0]
    assert (tmp_path / "model.npz").read_bytes() == good
    assert (tmp_path / "loss.png").exists()
    # trained on through NaN, as asked: the curve shows it, but the run is not a finished
    # one and its NaN weights (a file load would refuse) are not saved
    r = _cli(*common, "--lr", "50", "--momentum", "0.9", "--on-divergence", "continue",
             cwd=tmp_path)
    assert r.returncode == 3 and "nan" in r.stdout.lower(), r.stdout + r.stderr
    assert "cost after the last step is nan" in r.stderr
    assert (tmp_path / "model.npz").read_bytes() == good


def test_compare_marks_the_diverged_setting_and_finishes_the_others(tmp_path):
    r = _cli("compare", "--samples", "200", "--segments", "2", "--every", "10",
             "--settings", "0.2,0,0.5;500,0,0.9", "--quiet", "--out", str(tmp_path),
             cwd=tmp_path)
    assert r.returncode == 0, r.stderr
    table = r.stdout.splitlines()
    rows = [ln for ln in table if ln.strip().startswith(("10", "20"))]
    assert rows and all("diverged" in ln for ln in rows[-1:])
    assert all(ln.split()[1].replace(".", "").isdigit() for ln in rows)
    assert any("[500 0 0.9] diverged" in ln for ln in table)
    assert "lowest final" in r.stdout and "[0.2 0 0.5]" in r.stdout.split("lowest final")[1]
    assert (tmp_path / "compare.png").exists()


def test_plot_marks_divergence(monkeypatch, tmp_path):
    pytest.importorskip("matplotlib")
    from inertia import plots

    figs = []
    monkeypatch.setattr(plots, "save", lambda fig, path: figs.append(fig) or path)
    plots.loss_curves({"run": (np.arange(1, 6), [1.0, 0.5, 2.0, 9.0, 40.0])},
                      str(tmp_path / "x.png"), "t", diverged={"run": 6})
    ax = figs[0].axes[0]
    labels = [t.get_text() for t in ax.get_legend().get_texts()]
    assert labels == ["run (diverged at 6)"]
    marks = [ln for ln in ax.lines if ln.get_marker() == "X"]
    assert len(marks) == 1 and list(marks[0].get_xdata()) == [6]
    assert list(marks[0].get_ydata()) == [40.0]


def test_divergence_at_the_first_step_of_a_compiled_call(tmp_path):
    """One step a call (full batch, a checkpoint every epoch): a non-finite loss at a call's
    first step goes back into the previous call, counters included; the checkpoint is
    removed with the run."""
    X, y = _data()
    path = str(tmp_path / "run.ckpt")
    net, opt = _net(), SGD(lr=50.0, momentum=0.9)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", inertia.DivergenceWarning)
        h = inertia.fit(net, X, y, "mse", opt, epochs=200, progress=False, compiled=True,
                        checkpoint=path, checkpoint_every=1)
    d = h.diverged
    assert d is not None and not os.path.exists(path)
    ref, ref_opt = _net(), SGD(lr=50.0, momentum=0.9)
    inertia.fit(ref, X, y, "mse", ref_opt, epochs=opt.state.step, progress=False,
                compiled=True, on_divergence="continue")
    # a non-finite loss undoes the step before it too; a non-finite update only itself
    assert opt.state.step == (d.epoch - 1 if not np.isfinite(d.loss) else d.epoch)
    assert np.array_equal(ref.flat, net.flat)
    assert ref_opt.state_meta() == opt.state_meta()


def test_checked_engine_loop_allocates_nothing_per_step():
    """The one-step-back copies are made once per fit: 60 checked steps reach the same peak
    memory as none (a step-sized temporary would add at least an activation column)."""
    import tracemalloc

    X, y = inertia.datasets.smooth_regression(10_000, seed=1)
    net = Network(4, [Dense(32, "sigmoid"), Dense(16, "tanh"), Dense(1)], seed=0,
                  dtype="float32")
    opt = SGD(lr=0.2, momentum=0.4, weight_decay=0.1, convention="neanderthal")
    inertia.fit(net, X, y, "quadratic", opt, epochs=2, progress=False, compiled=False)
    peaks = []
    for epochs in (0, 60):
        tracemalloc.start()
        try:
            before, _ = tracemalloc.get_traced_memory()
            tracemalloc.reset_peak()
            inertia.fit(net, X, y, "quadratic", opt, epochs=epochs, progress=False,
                        compiled=False)
            peaks.append(tracemalloc.get_traced_memory()[1] - before)
        finally:
            tracemalloc.stop()
    assert peaks[1] - peaks[0] < 10_000 * 4, peaks


def _saturating_run(batch_size):
    """A float32 net whose tanh output keeps the loss finite while a huge learning rate
    drives the weights past the float32 range in an update (epoch 1, step 2 with batches
    of 5): the divergence the parameter check finds."""
    net = Network(4, [Dense(3, "tanh"), Dense(1, "tanh")], seed=0, dtype="float32")
    return net, SGD(lr=1e25, momentum=0.9), 300


@pytest.mark.parametrize("batch_size,every,kind", [(16, 64, "loss"), (5, 64, "loss"),
                                                   (2, 3, "loss"), (1, 7, "loss"),
                                                   (5, 64, "update"), (5, 4, "update"),
                                                   (None, 64, "loss"), (None, 4, "update")])
def test_the_way_back_replays_to_the_same_bits_as_a_copy_every_step(monkeypatch, batch_size,
                                                                     every, kind):
    """The engine loop copies its state, and checks its parameters, only now and then, and
    replays the steps since: it stops in the same step with the same parameters, buffers
    and counters as a copy and a check before every step (shuffled mini-batches, the
    divergence inside an epoch, from a non-finite loss or a non-finite update; full batch,
    where the copies are not taken at every epoch's start and a replay crosses epochs)."""
    from inertia.training import divergence

    X, y = _data()
    back_to = divergence.Snapshot.back_to
    replayed = []

    def counting(self, target, replay):
        def step(t, order):
            replayed[-1] += 1
            return replay(t, order)
        return back_to(self, target, step)

    monkeypatch.setattr(divergence.Snapshot, "back_to", counting)
    kept = []
    for copy_every in (1, every):
        monkeypatch.setattr(divergence.Snapshot, "EVERY", copy_every)
        replayed.append(0)
        net, opt, epochs = _saturating_run(batch_size) if kind == "update" else \
            (_net(), SGD(lr=8.0, momentum=0.9), 200)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            h = inertia.fit(net, X, y, "mse", opt, epochs=epochs, batch_size=batch_size,
                            seed=1, progress=False, compiled=False)
        assert h.diverged is not None
        assert np.isfinite(h.diverged.loss) == (kind == "update")
        kept.append((h.diverged, net.flat.copy(), [v.copy() for v in opt.state.velocity],
                     opt.state_meta(), list(h.loss)))
    (d1, p1, v1, m1, l1), (d2, p2, v2, m2, l2) = kept
    assert replayed[1] > 0, replayed
    assert d1 == d2 and l1 == l2
    np.testing.assert_array_equal(p1, p2)
    for a, b in zip(v1, v2):
        np.testing.assert_array_equal(a, b)
    assert m1 == m2
