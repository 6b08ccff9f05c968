"""The multi-run compiled loop (inertia.fused.group / fused.runs): every run of a group
trained together equals its own fit bit for bit: conventions, batch layouts, a diverging run
among them, validation data, a schedule, one thread and two."""

import warnings

import numba
import numpy as np
import pytest

import inertia
from inertia import SGD, QHM, Dense, Network
from inertia.fused import group as fused_group
from inertia.fused.group import train_group
from inertia.optim import CONVENTIONS
from inertia.sweeps.runs import _train_group

LAYERS = [Dense(6, "sigmoid"), Dense(5, "tanh"), Dense(1, "linear")]


def data(n, seed=0):
    rng = np.random.default_rng(seed)
    X = rng.uniform(-1, 1, (n, 4))
    y = np.sin(X[:, :1]) + 0.5 * X[:, 1:2] * X[:, 2:3]
    return X, y


def group(conv, hypers, seed=3, dtype="float64"):
    nets = [Network(4, LAYERS, seed=seed, dtype=dtype) for _ in hypers]
    opts = [SGD(**{"lr": 0.1, "convention": conv, **h}) for h in hypers]
    return nets, opts


def separate(conv, hyper, X, y, plan, seed=3, dtype="float64"):
    net = Network(4, LAYERS, seed=seed, dtype=dtype)
    opt = SGD(**{"lr": 0.1, "convention": conv, **hyper})
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", inertia.DivergenceWarning)
        hist = inertia.fit(net, X, y, "mse", opt, progress=False, **plan)
    return net, opt, hist


def assert_same(net, opt, hist, net2, opt2, hist2):
    """Bit for bit: weights, velocity, the optimizer's counters and settings (lr and
    momentum included), losses, divergence record."""
    for (w1, b1), (w2, b2) in zip(net.parameters(), net2.parameters()):
        np.testing.assert_array_equal(w1, w2)
        np.testing.assert_array_equal(b1, b2)
    name = opt.closed_form().buffer                  # SGD's velocity, QHM's buffer
    for v1, v2 in zip(getattr(opt.state, name), getattr(opt2.state, name)):
        np.testing.assert_array_equal(v1, v2)
    assert opt.state_meta() == opt2.state_meta()
    assert opt.config() == opt2.config()
    assert (opt.lr, opt.momentum) == (opt2.lr, opt2.momentum)
    np.testing.assert_array_equal(hist.loss, hist2.loss)
    np.testing.assert_array_equal(hist.val_loss, hist2.val_loss)
    assert hist.diverged == hist2.diverged


HYPERS = [{"lr": 0.02, "momentum": 0.0}, {"lr": 0.2, "momentum": 0.9},
          {"lr": 1e200, "momentum": 0.9},           # overflows at its second step
          {"lr": 0.05, "momentum": 0.5}]


@pytest.fixture(params=[1, 2], ids=["1-thread", "2-threads"])
def threads(request, monkeypatch):
    if request.param > numba.config.NUMBA_NUM_THREADS:
        pytest.skip("numba has one thread here")
    monkeypatch.setenv("INERTIA_THREADS", str(request.param))
    if request.param > 1:          # three slots of runs (the last of two) on two threads
        monkeypatch.setattr(fused_group, "SLOTS", 3)
        monkeypatch.setattr(fused_group, "SLOT_RUNS", 1)
    return request.param


@pytest.mark.parametrize("conv", list(CONVENTIONS))
@pytest.mark.parametrize("batch_size, n, epochs", [(None, 700, 4), (64, 600, 3), (1, 40, 2)],
                         ids=["full", "minibatch-uneven", "online"])
def test_group_equals_separate_fits(conv, batch_size, n, epochs, threads):
    X, y = data(n)
    hypers = HYPERS
    plan = {"epochs": epochs, "batch_size": batch_size, "seed": 5}
    nets, opts = group(conv, hypers)
    hists = train_group(nets, opts, X, y, "mse", plan)
    assert hists is not None
    for net, opt, hist, hyper in zip(nets, opts, hists, hypers):
        assert_same(net, opt, hist, *separate(conv, hyper, X, y, plan))
    assert hists[2].diverged is not None          # the diverging run stopped...
    assert hists[0].diverged is None and len(hists[0].loss) == epochs   # ...the others not


@pytest.mark.parametrize("first", [1, 2, 5])
def test_epoch_split_between_threads_and_one(first, monkeypatch):
    """An epoch run in two calls (its first steps on threads, the rest on one thread, as
    ``_ways`` probes the other way): each run's losses and stop stitched together equal its
    fit's, whichever part the diverging run stops in (it overflows at its second step)."""
    if numba.config.NUMBA_NUM_THREADS < 2:
        pytest.skip("numba has one thread here")
    monkeypatch.setenv("INERTIA_THREADS", "2")
    monkeypatch.setattr(fused_group, "SLOTS", 3)
    monkeypatch.setattr(fused_group, "SLOT_RUNS", 1)
    monkeypatch.setattr(fused_group._Group, "_ways",
                        lambda self, S, live: [(0, first, True), (first, S, False)])
    X, y = data(300)
    plan = {"epochs": 2, "batch_size": 32, "seed": 4}
    nets, opts = group("pytorch", HYPERS)
    hists = train_group(nets, opts, X, y, "mse", plan)
    for net, opt, hist, hyper in zip(nets, opts, hists, HYPERS):
        assert_same(net, opt, hist, *separate("pytorch", hyper, X, y, plan))
    assert hists[2].diverged is not None and hists[2].diverged.step == 1


def _group_equals_fits(conv, X, y, plan):
    """Two runs of ``conv`` trained as a group end as their separate fits (segment losses
    too); returns the group's Histories."""
    hypers = [{"lr": 0.1, "momentum": 0.9}, {"lr": 0.3, "momentum": 0.2}]
    nets, opts = group(conv, hypers)
    hists = _train_group(nets, opts, X, y, "mse", plan)
    for net, opt, hist, hyper in zip(nets, opts, hists, hypers):
        net2, opt2, hist2 = separate(conv, hyper, X, y, plan)
        assert_same(net, opt, hist, net2, opt2, hist2)
        assert hist.segment_loss == hist2.segment_loss
    return hists


def test_validation_schedule_and_qhm(threads):
    X, y = data(300)
    Xv, yv = data(50, seed=1)
    plan = {"schedule": [(2, {"lr": 0.05}), (2, {"momentum": 0.5})], "batch_size": 32,
            "seed": 1, "validation_data": (Xv, yv)}
    _group_equals_fits("pytorch", X, y, plan)
    nets = [Network(4, LAYERS, seed=2) for _ in range(2)]
    opts = [QHM(lr=0.1, momentum=0.9, nu=nu) for nu in (0.7, 1.0)]
    plan = {"epochs": 3, "batch_size": 50, "seed": 0}
    hists = train_group(nets, opts, X, y, "mse", plan)
    for net, opt, hist, nu in zip(nets, opts, hists, (0.7, 1.0)):
        net2 = Network(4, LAYERS, seed=2)
        opt2 = QHM(lr=0.1, momentum=0.9, nu=nu)
        hist2 = inertia.fit(net2, X, y, "mse", opt2, progress=False, **plan)
        assert_same(net, opt, hist, net2, opt2, hist2)


@pytest.mark.filterwarnings("ignore:overflow encountered in cast:RuntimeWarning")
def test_continue_policy_and_float32():
    X, y = data(200)
    plan = {"epochs": 2, "batch_size": 16, "seed": 0, "on_divergence": "continue"}
    # float32 holds no lr of 1e200 (refused): 1e30 overflows the loss at the second step
    hypers = [h if h["lr"] < 1e30 else {**h, "lr": 1e30} for h in HYPERS]
    nets, opts = group("keras", hypers, dtype="float32")
    hists = train_group(nets, opts, X, y, "mse", plan)
    assert not np.isfinite(hists[2].loss[-1])                  # it did overflow
    for net, opt, hist, hyper in zip(nets, opts, hists, hypers):
        net2, opt2, hist2 = separate("keras", hyper, X, y, plan, dtype="float32")
        assert_same(net, opt, hist, net2, opt2, hist2)


def test_uncovered_groups_fall_back():
    X, y = data(50)
    nets, opts = group("pytorch", HYPERS[:2])
    plan = {"epochs": 1, "on_divergence": "raise"}
    assert train_group(nets, opts, X, y, "mse", plan) is None
    assert train_group(nets[:1], opts[:1], X, y, "mse", {"epochs": 1}) is None
    assert all(o.state is None or o.state.step == 0 for o in opts)


def spike(t):
    """A learning rate of 0.1 with one step of 1e200 (step 3): every run overflows after
    it, mid-epoch in mini-batches, at the first step of epoch 4 in full batch."""
    return 1e200 if t == 3 else 0.1


def schedules(kind, total):
    """fit's lr_schedule / momentum_schedule of one kind, ``total`` the run's steps."""
    S = inertia.schedules
    return {"lr": {"lr_schedule": S.cosine(0.3, total, final=0.01)},
            "momentum": {"momentum_schedule": S.demon(0.9, total)},
            "both": {"lr_schedule": S.linear_warmup(0.2, 3, after=S.cosine(0.2, total)),
                     "momentum_schedule": S.sutskever(0.95, every=max(1, total // 4))},
            "lr-spike": {"lr_schedule": spike}}[kind]


def scheduled_hypers(conv):
    """Runs that differ in what the schedules leave to them: lr 1e200 overflows at its
    second step where the lr is not scheduled, weight decay 1e41 (not in previous_delta)
    after a few steps under any schedule, momentum correction follows the lr's changes."""
    out = [{"lr": 0.02, "momentum": 0.0}, {"lr": 0.2, "momentum": 0.9},
           {"lr": 1e200, "momentum": 0.9}]
    if conv != "previous_delta":
        out += [{"lr": 0.05, "momentum": 0.5, "weight_decay": 1e41},
                {"lr": 0.1, "momentum": 0.9, "momentum_correction": True}]
    return out


@pytest.mark.parametrize("conv", ["pytorch", "keras", "neanderthal", "previous_delta"])
@pytest.mark.parametrize("kind", ["lr", "momentum", "both", "lr-spike"])
@pytest.mark.parametrize("batch_size, n, epochs", [(None, 200, 6), (32, 150, 3), (1, 20, 2)],
                         ids=["full", "minibatch-uneven", "online"])
@pytest.mark.parametrize("blocks", ["whole-run", "epochs"])
def test_scheduled_group_equals_separate_fits(conv, kind, batch_size, n, epochs, blocks,
                                              threads, monkeypatch):
    """Per-step lr and momentum schedules: each run's own coefficient rows, made for the
    whole run at once or an epoch at a time; every run equals its fit bit for bit
    (weights, velocity, counters, lr and momentum attributes, History), runs diverging
    mid-epoch (or at an epoch's first step) among them."""
    X, y = data(n)
    per = -(-n // (batch_size or n))
    if blocks == "epochs":
        monkeypatch.setattr(fused_group, "ROW_STEPS", 2 * per - 1)
    plan = {"epochs": epochs, "batch_size": batch_size, "seed": 5,
            **schedules(kind, epochs * per)}
    hypers = scheduled_hypers(conv)
    nets, opts = group(conv, hypers)
    hists = train_group(nets, opts, X, y, "mse", plan)
    assert hists is not None
    for net, opt, hist, hyper in zip(nets, opts, hists, hypers):
        assert_same(net, opt, hist, *separate(conv, hyper, X, y, plan))
    stopped = [h.diverged for h in hists if h.diverged is not None]
    if kind == "lr-spike":
        assert len(stopped) == len(hists)
    else:
        assert hists[0].diverged is None and len(hists[0].loss) == epochs
        assert stopped or (conv == "previous_delta" and kind != "momentum")


def test_fit_lr_after_divergence_whatever_the_calls():
    """A compiled fit that diverges at the first step of a call (full batch: the loss of
    epoch 4 overflows after the spike at step 3, and the state goes back before step 3)
    leaves lr at the last kept step's value (0.1, not the spike's) whether its calls are one
    epoch each (validation data) or span epochs, as the group's do."""
    X, y = data(200)
    Xv, yv = data(20, seed=1)
    out = []
    for extra in ({}, {"validation_data": (Xv, yv)}):
        net, opt, hist = separate("pytorch", {"momentum": 0.9}, X, y,
                                  {"epochs": 6, "lr_schedule": spike, **extra})
        assert hist.diverged[:2] == (4, 0)
        out.append((opt.lr, opt.state_meta(), net.parameters()[0][0].tolist()))
    assert out[0] == out[1] and out[0][0] == 0.1 and out[0][1]["step"] == 3
    # both loops go back to the same step and leave the last kept step's lr (0.1), not the
    # lr of the step that found the divergence (0.2)
    def spike_then_more(t):
        return 0.2 if t > 3 else spike(t)

    ends = []
    for compiled in (True, False):
        net, opt, hist = separate("pytorch", {"momentum": 0.9}, X, y,
                                  {"epochs": 6, "lr_schedule": spike_then_more,
                                   "compiled": compiled})
        assert hist.diverged[:2] == (4, 0)
        ends.append((opt.lr, opt.state_meta()))
    assert ends[0] == ends[1] == out[0][:2]


def test_scheduled_segments_validation_and_qhm(threads):
    """Per-step schedules with a segment schedule (the segments' settings at their first
    epoch, the schedules on top), validation data, QHM."""
    X, y = data(300)
    Xv, yv = data(50, seed=1)
    plan = {"schedule": [(2, {"weight_decay": 1e-4}), (2, {"momentum": 0.5,
                                                          "weight_decay": 1e-3})],
            "batch_size": 40, "seed": 1, "validation_data": (Xv, yv),
            "lr_schedule": inertia.schedules.cosine(0.2, 30, final=0.01)}
    for hist in _group_equals_fits("keras", X, y, plan):
        assert len(hist.val_loss) == 4
    plan = {"epochs": 3, "batch_size": 50, "seed": 0,
            "momentum_schedule": inertia.schedules.demon(0.9, 18),
            "lr_schedule": inertia.schedules.cosine(0.2, 18)}
    nets = [Network(4, LAYERS, seed=2) for _ in range(2)]
    opts = [QHM(lr=0.1, momentum=0.9, nu=nu) for nu in (0.7, 1.0)]
    hists = train_group(nets, opts, X, y, "mse", plan)
    assert hists is not None
    for net, opt, hist, nu in zip(nets, opts, hists, (0.7, 1.0)):
        net2 = Network(4, LAYERS, seed=2)
        opt2 = QHM(lr=0.1, momentum=0.9, nu=nu)
        hist2 = inertia.fit(net2, X, y, "mse", opt2, progress=False, **plan)
        assert_same(net, opt, hist, net2, opt2, hist2)


def test_scheduled_epoch_split_between_threads_and_one(monkeypatch):
    """Per-step rows with an epoch run in two calls (``_ways``' probe): kinds index the
    epoch's rows, so the second part takes its own steps' values."""
    if numba.config.NUMBA_NUM_THREADS < 2:
        pytest.skip("numba has one thread here")
    monkeypatch.setenv("INERTIA_THREADS", "2")
    monkeypatch.setattr(fused_group, "SLOTS", 3)
    monkeypatch.setattr(fused_group, "SLOT_RUNS", 1)
    monkeypatch.setattr(fused_group._Group, "_ways",
                        lambda self, S, live: [(0, 3, True), (3, S, False)])
    X, y = data(300)
    plan = {"epochs": 2, "batch_size": 32, "seed": 4, **schedules("both", 20)}
    hypers = scheduled_hypers("pytorch")
    nets, opts = group("pytorch", hypers)
    hists = train_group(nets, opts, X, y, "mse", plan)
    for net, opt, hist, hyper in zip(nets, opts, hists, hypers):
        assert_same(net, opt, hist, *separate("pytorch", hyper, X, y, plan))


def test_mixed_scheduled_group_falls_back(monkeypatch):
    """Runs of which some are scheduled per step and others not (not made by a sweep):
    the fits one by one."""
    X, y = data(60)
    nets, opts = group("pytorch", HYPERS[:2])
    calls = []
    from inertia.training import plan as plan_mod

    made = plan_mod.make_plan

    def make(net, X, y, loss, opt, *args, **kw):
        p = made(net, X, y, loss, opt, *args, **kw)
        calls.append(p)
        if len(calls) == 2:          # the second run as if it had no per-step schedule
            p.planned, p.momentum_scheduled = None, False
        return p

    monkeypatch.setattr(plan_mod, "make_plan", make)
    plan = {"epochs": 1, "lr_schedule": inertia.schedules.constant(0.1)}
    assert train_group(nets, opts, X, y, "mse", plan) is None
    assert len(calls) == 2 and all(o.state is None or o.state.step == 0 for o in opts)


def test_blocks_of_epochs_equal_separate_fits(monkeypatch):
    """Calls of several epochs (as long as the segment lasts): every run equals its fit bit
    for bit, one diverging inside a block, past its first epoch, the segments' settings
    set at their first epochs."""
    monkeypatch.setenv("INERTIA_THREADS", "1")
    monkeypatch.setattr(fused_group, "CALL_SECONDS", 1e9)      # blocks up to the segment end
    steps = []
    call = fused_group._Group.call

    def counted(self, X, y, order, starts, *args):
        steps.append(starts.shape[0])
        return call(self, X, y, order, starts, *args)

    monkeypatch.setattr(fused_group._Group, "call", counted)
    X, y = data(64)
    plan = {"schedule": [(3, {"lr": 0.05}), (5, {"momentum": 0.5})], "batch_size": 16,
            "seed": 2}
    hypers = [{"lr": 0.02, "momentum": 0.0}, {"lr": 0.2, "momentum": 0.9},
              {"lr": 0.05, "momentum": 0.5, "weight_decay": 1e41}]
    nets, opts = group("pytorch", hypers)
    hists = train_group(nets, opts, X, y, "mse", plan)
    assert steps == [4, 8, 20]                  # epoch 0, then each segment's rest
    for net, opt, hist, hyper in zip(nets, opts, hists, hypers):
        assert_same(net, opt, hist, *separate("pytorch", hyper, X, y, plan))
    assert hists[0].diverged is None and len(hists[0].loss) == 8
    assert hists[2].diverged is not None and hists[2].diverged.epoch >= 1


def test_a_group_keeps_its_shuffling_for_the_fit_that_goes_on(monkeypatch):
    """After a group's epochs, the generator and row order are kept (``remember_order``):
    a plan with SeedAfter(seed, epochs) starts from them, the same as replaying the
    shuffles, and a group that goes on from there equals one trained in a single go."""
    from inertia.training import SeedAfter
    from inertia.training import plan as plan_mod

    monkeypatch.setattr(plan_mod, "_AFTER", {})
    X, y = data(50)
    nets, opts = group("pytorch", HYPERS[:2])
    train_group(nets, opts, X, y, "mse", {"epochs": 3, "batch_size": 8, "seed": 5})
    assert list(plan_mod._AFTER) == [(5, 50, 3)]
    after = type("P", (), {"seed": SeedAfter(5, 3), "n": 50, "shuffle": True})()
    rng, order = plan_mod.first_order(after)
    plan_mod._AFTER.clear()
    rng2, order2 = plan_mod.first_order(after)           # replayed from the start
    np.testing.assert_array_equal(order, order2)
    assert rng.bit_generator.state == rng2.bit_generator.state
    train_group(nets, opts, X, y, "mse", {"epochs": 2, "batch_size": 8,
                                          "seed": SeedAfter(5, 3)})
    whole, whole_opts = group("pytorch", HYPERS[:2])
    train_group(whole, whole_opts, X, y, "mse", {"epochs": 5, "batch_size": 8, "seed": 5})
    for a, b in zip(nets, whole):
        for (w1, b1), (w2, b2) in zip(a.parameters(), b.parameters()):
            np.testing.assert_array_equal(w1, w2)
            np.testing.assert_array_equal(b1, b2)


def test_large_scheduled_rows_fall_back(monkeypatch):
    """Per-step schedules whose rows (every run's, at least an epoch of steps) would take
    more than MAX_ROW_BYTES: the fits one by one (``_train_group`` then runs them, each equal
    to its fit); under the limit, the group."""
    X, y = data(40)
    plan = {"epochs": 2, "batch_size": 1, "seed": 1,
            "lr_schedule": inertia.schedules.cosine(0.1, 80)}
    nets, opts = group("pytorch", HYPERS[:2])
    need = fused_group._row_bytes(nets, type("P", (), {"starts": np.arange(40)})())
    assert need == 2 * (40 * (fused_group.ROW_STEPS // 40)) * 2 * len(LAYERS) * 8 * 8
    monkeypatch.setattr(fused_group, "MAX_ROW_BYTES", need - 1)
    assert train_group(nets, opts, X, y, "mse", plan) is None
    assert all(o.state is None or o.state.step == 0 for o in opts)
    hists = _train_group(nets, opts, X, y, "mse", plan)
    for net, opt, hist, hyper in zip(nets, opts, hists, HYPERS[:2]):
        assert_same(net, opt, hist, *separate("pytorch", hyper, X, y, plan))
    monkeypatch.setattr(fused_group, "MAX_ROW_BYTES", need)
    nets, opts = group("pytorch", HYPERS[:2])
    assert train_group(nets, opts, X, y, "mse", plan) is not None


def test_constant_rows_made_once(monkeypatch):
    """Without per-step schedules each run's coefficient rows are made again only when its
    settings or state scalars change (the first two epochs: the first step's rows, then
    ``started``), not every epoch; with them, once a block of epochs of about ROW_STEPS
    steps for each live run."""
    from inertia.fused import runner

    made = []
    rows = runner.CompiledSteps.rows

    def counted(self, counts, lr, mu, out=None):
        made.append(np.ndim(lr))
        return rows(self, counts, lr, mu, out)

    monkeypatch.setattr(runner.CompiledSteps, "rows", counted)
    X, y = data(100)
    hypers = HYPERS[:2]
    nets, opts = group("pytorch", hypers)
    train_group(nets, opts, X, y, "mse", {"epochs": 6, "batch_size": 30, "seed": 0})
    assert made == [0] * 4
    made.clear()
    scheduled = {"epochs": 6, "batch_size": 30, "seed": 0,
                 "lr_schedule": inertia.schedules.cosine(0.1, 24)}
    nets, opts = group("pytorch", hypers)
    train_group(nets, opts, X, y, "mse", scheduled)
    assert made == [1] * 2                          # 24 steps: one block
    made.clear()
    monkeypatch.setattr(fused_group, "ROW_STEPS", 9)          # blocks of two epochs
    nets2, opts2 = group("pytorch", hypers)
    train_group(nets2, opts2, X, y, "mse", scheduled)
    assert made == [1] * 6
    for net, opt, net2, opt2 in zip(nets, opts, nets2, opts2):
        np.testing.assert_array_equal(net.flat, net2.flat)
        assert opt.state_meta() == opt2.state_meta()


def test_bench_sweep_command(capsys, tmp_path):
    """``inertia bench --sweep --tiny`` times both ways (its own check: the sweep's losses
    equal the fits' bit for bit), prints a line per batch layout and writes the record."""
    import json

    from inertia.bench.run import main

    assert main(["--sweep", "--tiny", "--peers", "none", "--out", str(tmp_path)]) == 0
    lines = [ln for ln in capsys.readouterr().out.splitlines() if ln.startswith("W6")]
    assert len(lines) == 2 and all("run-epochs/s" in ln and "ratio" in ln for ln in lines)
    (path,) = tmp_path.glob("sweep-*.json")
    rec = json.loads(path.read_text())["W6"]
    for layout in ("batch 64", "full batch"):
        assert rec[layout]["ratio"] == pytest.approx(rec[layout]["sweep"] / rec[layout]["fits"])
        torch_rec = rec[layout]["torch engine"]          # torch installed: the batched group
        if torch_rec is not None:
            assert torch_rec["device"] == "cpu" and torch_rec["agreement"] <= 1e-3
            assert torch_rec["ratio"] == pytest.approx(torch_rec["sweep"] / torch_rec["fits"])


def test_bench_sweep_options_checked(capsys, tmp_path):
    from inertia.bench.run import main

    assert main(["--sweep", "--tiny", "--peers", "keras", "--out", str(tmp_path)]) == 2
    assert "choose from torch, jax" in capsys.readouterr().err
    assert main(["--tiny", "--jax-python", "python"]) == 2
    assert "--jax-python goes with --sweep" in capsys.readouterr().err
    assert main(["--tiny", "--configs", "64"]) == 2
    assert "--configs goes with --sweep" in capsys.readouterr().err
    assert main(["--sweep", "--tiny", "--configs", "60", "--out", str(tmp_path)]) == 2
    assert "--configs must be a square number" in capsys.readouterr().err


@pytest.mark.parametrize("system, batch", [("torch", 16), ("torch", 0), ("jax", 16),
                                           ("jax", 0)])
def test_sweep_peers_train_what_the_fits_train(system, batch):
    """The W6 peers (bench/sweep_peers.py, in-process here) start from the same weights and
    take the rows in the fits' order: each run's epoch losses equal inertia's fits' to
    float32 rounding (a few steps of a converging run: rounding differences of order
    1e-7 relative; 1e-4 leaves room and still fails for any other data order, network or
    optimizer convention)."""
    pytest.importorskip(system)
    if system == "jax":
        pytest.importorskip("optax")
    from inertia.bench import sweep_peers
    from inertia.bench.sweeps import network

    X, y = inertia.data.smooth_regression(96, seed=1)
    lrs, mus = np.array([0.01, 0.05], np.float32), np.array([0.0, 0.9], np.float32)
    d = {"X": X, "y": y, "lrs": lrs, "momenta": mus, "seed": 0, "batch": batch}
    for k, (W, b) in enumerate(network().parameters()):
        d[f"W{k}"], d[f"b{k}"] = W, b
    if system == "torch":              # the peer sets one thread: this process's back after
        import torch

        threads = torch.get_num_threads()
        try:
            seconds, loss = sweep_peers.run_torch(d, 2, False)
        finally:
            torch.set_num_threads(threads)
    else:
        seconds, loss = sweep_peers.run_jax(d, 2, False)
    assert seconds > 0 and loss.shape == (2, 2)
    for r in range(2):
        h = inertia.fit(network(), X, y, "mse",
                        SGD(float(lrs[r]), momentum=float(mus[r]), convention="pytorch"),
                        epochs=2, batch_size=batch or None, seed=0, progress=False)
        np.testing.assert_allclose(loss[r], h.loss, rtol=1e-4)


@pytest.mark.parametrize("runs, slots", [(6, 2), (3, 2), (16, 4), (64, 4)])
def test_slots_a_thread(runs, slots, monkeypatch):
    """Two slots a thread for groups with at least SLOT_RUNS runs a slot, one below (its
    slots even, each tile serving more runs)."""
    if numba.config.NUMBA_NUM_THREADS < 2:
        pytest.skip("numba has one thread here")
    monkeypatch.setenv("INERTIA_THREADS", "2")
    X, y = data(100)
    nets, opts = group("pytorch", [{"lr": 0.01 * (k + 1)} for k in range(runs)])
    plans = fused_group._plans(nets, opts, X, y, "mse", {"epochs": 1, "batch_size": 100})
    assert fused_group._Group(nets, opts, plans[0]).scratch[1].shape[0] == slots
