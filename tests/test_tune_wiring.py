"""The tuner and compare on the sweep, "auto" learning rates and momenta (SGD, fit, the
estimators, the command line) and the ``tune`` command."""

import math
import os
import subprocess
import sys
import warnings

import numpy as np
import pytest

import inertia
from inertia.training import SeedAfter
from inertia import SGD, Dense, Network
from inertia.tuning import many
from inertia.tuning import race as race_mod

SRC = os.path.dirname(os.path.dirname(inertia.__file__))


def _data(n=64, seed=0):
    rng = np.random.default_rng(seed)
    X = rng.normal(size=(n, 3))
    y = np.sin(X[:, :1]) + 0.5 * X[:, 1:2] * X[:, 2:3]
    return X, y


def _net(seed=1, dtype="float64"):
    return Network(3, [Dense(6, "tanh"), Dense(1, "linear")], seed=seed, dtype=dtype)


# --- train_many through the sweep equals the sequential fits it replaced --------------------

def _train_many_by_fits(configs, X, y, loss, upto, batch_size, val, seed, initial_loss):
    """The tuner's training as it was: one fit per configuration and chunk, each chunk going
    on with the previous one's shuffling."""
    for c in configs:
        if not c.alive:
            continue
        for end in many.boundaries(upto):
            if c.epochs >= end:
                continue
            start = c.epochs
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", RuntimeWarning)
                h = inertia.fit(c.net, X, y, loss=loss, optimizer=c.opt, epochs=end - start,
                                batch_size=batch_size, seed=SeedAfter(seed, start),
                                validation_data=val, progress=False)
            c.loss.extend(h.loss)
            c.val.extend(h.val_loss)
            if len(h.loss) < end - start or many.diverged(h.loss, initial_loss):
                c.diverged = c.epochs
                break


def test_train_many_through_the_sweep_equals_sequential_fits():
    X, y = _data()
    val = _data(32, seed=5)
    net = _net()
    pairs = [(0.01, 0.0), (0.05, 0.9), (0.3, 0.5), (50.0, 0.99)]     # the last one diverges
    init = net.loss(X, y, "mse")
    a, b = many.new_configs(net, pairs), many.new_configs(net, pairs)
    for upto in (3, 7):                               # continued across two calls, as a race
        many.train_many(a, X, y, "mse", upto, 16, val, 4, init)
        _train_many_by_fits(b, X, y, "mse", upto, 16, val, 4, init)
    assert a[-1].diverged is not None and a[0].diverged is None
    for ca, cb in zip(a, b):
        assert ca.loss == cb.loss and ca.val == cb.val and ca.diverged == cb.diverged
        for (Wa, ba), (Wb, bb) in zip(ca.net.parameters(), cb.net.parameters()):
            np.testing.assert_array_equal(Wa, Wb)
            np.testing.assert_array_equal(ba, bb)
    for c, (lr, mu) in zip(a, pairs):           # each live one is its single fit, bit for bit
        if c.diverged is None:
            one = net.copy()
            h = inertia.fit(one, X, y, loss="mse", optimizer=inertia.SGD(lr, momentum=mu),
                            epochs=7, batch_size=16, seed=4, validation_data=val,
                            progress=False)
            assert c.loss == h.loss and c.val == h.val_loss
            for (Wa, _), (Wb, _) in zip(c.net.parameters(), one.parameters()):
                np.testing.assert_array_equal(Wa, Wb)


def test_train_many_goes_through_train_group(monkeypatch):
    calls = []
    real = many._train_group

    def spy(nets, opts, *args, **kw):
        calls.append(len(nets))
        return real(nets, opts, *args, **kw)

    monkeypatch.setattr(many, "_train_group", spy)
    X, y = _data()
    configs = many.new_configs(_net(), [(0.01, 0.0), (0.02, 0.5), (0.03, 0.9)])
    many.train_many(configs, X, y, "mse", 4)
    assert calls == [3, 3, 3]                         # chunks 1, 2, 4: every run in one group


# --- compare on the sweep equals the fits it replaced --------------------------------------

def _compare_by_fits(X, y, layers, loss, convention, settings, segments, every, seeds,
                     batch_size, dtype):
    curves = np.empty((len(seeds), len(settings), segments * every))
    for si, seed in enumerate(seeds):
        base = Network(X.shape[1], layers, seed=seed, dtype=dtype)
        for ki, (lr, wd, mu) in enumerate(settings):
            net = base.copy()
            opt = SGD(lr=lr, momentum=mu, weight_decay=wd, convention=convention)
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", inertia.DivergenceWarning)
                hist = inertia.fit(net, X, y, loss=loss, optimizer=opt,
                                   schedule=[(every, {})] * segments, batch_size=batch_size,
                                   seed=seed, progress=False)
            curves[si, ki] = np.nan
            curves[si, ki, :len(hist.loss)] = hist.loss
    return curves


def test_compare_on_the_sweep_is_bit_identical_nan_included():
    from inertia.cli.compare import run_compare

    X, y = _data(48)
    layers = [Dense(5, "sigmoid"), Dense(1, "linear")]
    settings = [(0.2, 0.0, 0.0), (0.2, 0.02, 0.7), (400.0, 0.0, 0.9)]   # the last diverges
    args = (X.astype(np.float32), y.astype(np.float32), layers, "quadratic", "neanderthal",
            settings, 3, 4, [2, 3], 8)
    got = run_compare(*args, dtype="float32", progress=False)
    want = _compare_by_fits(*args, dtype="float32")
    assert got.shape == (2, 3, 12)
    assert np.isnan(want[:, 2, -1]).all() and np.isfinite(want[:, :2]).all()
    np.testing.assert_array_equal(got, want)


# --- "auto" in SGD, fit, tune ----------------------------------------------------------------

def test_sgd_auto_is_a_placeholder_and_a_functional_step_refuses_it():
    opt = SGD(lr="auto", momentum=0.9)
    assert opt.auto == ["lr"] and opt.momentum == 0.9
    assert SGD(lr=0.1, momentum="auto").auto == ["momentum"]
    params = [np.zeros((2, 2)), np.zeros(2)]
    with pytest.raises(ValueError, match=r'lr="auto".*inertia.fit') as ex:
        opt.step(params, [np.ones((2, 2)), np.ones(2)], opt.init(params))
    assert "\n" not in str(ex.value)
    for bad in ("Auto", "x", None):
        with pytest.raises(ValueError, match="finite number or \"auto\""):
            SGD(lr=bad)


@pytest.mark.parametrize("fixed", [{}, {"momentum": 0.9}, {"lr": 0.05}])
def test_fit_with_auto_runs_the_race_first_and_sets_its_choice(fixed):
    X, y = _data()
    val = _data(32, seed=5)
    auto = {"lr": "auto", "momentum": "auto", **fixed}
    opt = SGD(**auto)
    net = _net()
    start = net.copy()
    h = inertia.fit(net, X, y, "mse", opt, epochs=8, batch_size=16, validation_data=val,
                    seed=3, progress=False)
    race = inertia.tune(start, X, y, "mse", 8, batch_size=16, validation_data=val, seed=3,
                        **fixed)
    assert (opt.lr, opt.momentum) == (race.lr, race.momentum)
    for k, v in fixed.items():
        assert getattr(opt, k) == v
    assert h.tuned == race.summary() and "tuned (race)" in str(h.tuned)
    # then the training is a plain fit with the chosen values
    want = inertia.fit(start, X, y, "mse", SGD(race.lr, momentum=race.momentum), epochs=8,
                       batch_size=16, validation_data=val, seed=3, progress=False)
    assert h.loss == want.loss and opt.auto == []


def test_tune_searches_the_free_value_only():
    X, y = _data()
    net = _net()
    r = inertia.tune(net, X, y, "mse", 8, batch_size=16, momentum=0.5)
    assert r.momentum == 0.5 and {e["momentum"] for e in r.trace} == {0.5}
    assert len({e["lr"] for e in r.trace}) == len(race_mod.grid(1.0, momenta=(0.5,)))
    r = inertia.tune(net, X, y, "mse", 8, batch_size=16, lr=0.02)
    assert r.lr == 0.02 and {e["lr"] for e in r.trace} == {0.02}
    # a fixed lr in the "ema" convention: each momentum's PyTorch lr is lr (1 - mu)
    r = inertia.tune(net, X, y, "mse", 8, batch_size=16, lr=0.02,
                     optimizer=SGD(1.0, convention="ema"))
    assert all(math.isclose(e["lr"], 0.02 * (1 - e["momentum"])) for e in r.trace)
    assert math.isclose(r.optimizer.lr, 0.02)


@pytest.mark.parametrize("kw, match", [
    ({"lr": 0.1, "momentum": 0.9}, "both fixed"),
    ({"lr": "x"}, "auto\" or a number"),
    ({"momentum": 1.5}, "momentum must be in"),
    ({"momentum": 0.9, "method": "curvature"}, "cannot keep momentum fixed"),
    ({"lr": 0.1, "method": "range"}, "cannot keep lr fixed"),
])
def test_tune_refuses_bad_fixed_values_in_one_line(kw, match):
    X, y = _data()
    with pytest.raises(ValueError, match=match) as ex:
        inertia.tune(_net(), X, y, "mse", 8, **kw)
    assert "\n" not in str(ex.value)


def test_fit_refuses_auto_with_a_schedule_before_any_work():
    X, y = _data()
    with pytest.raises(ValueError, match="lr_schedule"):
        inertia.fit(_net(), X, y, "mse", SGD(lr="auto"), epochs=4,
                    lr_schedule=lambda t: 0.1, progress=False)
    with pytest.raises(ValueError, match="epochs"):        # fit's own checks come first
        inertia.fit(_net(), X, y, "mse", SGD(lr="auto"), epochs=0, progress=False)


def test_estimators_auto():
    from inertia.estimators import MLPClassifier, MLPRegressor

    X, y = _data(80)
    m = MLPRegressor(hidden_layer_sizes=(5,), learning_rate_init="auto", momentum="auto",
                     max_iter=8, batch_size=20, random_state=0)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        m.fit(X, y.ravel())
    assert m.get_params()["learning_rate_init"] == "auto"
    assert m.tuned_.lr == m.learning_rate_ and m.tuned_.momentum == m.momentum_
    assert m.tuned_.convention == "sklearn" and np.isfinite(m.loss_)
    # nesterovs_momentum=True (scikit-learn's default): chosen for the Nesterov form it trains
    assert m.tuned_.nesterov and m._inertia_optimizer.nesterov and m.momentum_ > 0
    plain = MLPRegressor(hidden_layer_sizes=(5,), learning_rate_init="auto", momentum="auto",
                         nesterovs_momentum=False, max_iter=8, batch_size=20, random_state=0)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        plain.fit(X, y.ravel())
    assert not plain.tuned_.nesterov and not plain._inertia_optimizer.nesterov
    assert plain.tuned_.configs > m.tuned_.configs         # heavy ball also tries momentum 0
    c = MLPClassifier(hidden_layer_sizes=(5,), learning_rate_init="auto", momentum=0.9,
                      max_iter=8, batch_size=20, random_state=0)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        c.fit(X, (y.ravel() > 0).astype(int))
    assert c.momentum_ == 0.9
    assert c.tuned_.momentum == 0.9 and c.tuned_.lr == c.learning_rate_
    with pytest.raises(ValueError, match="optimizer=\"sgd\" only"):
        MLPRegressor(learning_rate_init="auto", optimizer="adam").fit(X, y.ravel())


# --- the command line --------------------------------------------------------------------------

def _cli(*argv, cwd=None):
    env = {**os.environ, "PYTHONPATH": SRC}
    return subprocess.run([sys.executable, "-m", "inertia", *argv], capture_output=True,
                          text=True, env=env, cwd=cwd)


def test_train_lr_auto_prints_the_choice_before_training(tmp_path):
    r = _cli("train", "--lr", "auto", "--momentum", "0.9", "--epochs", "6", "--samples",
             "300", "--batch-size", "50", "--quiet")
    assert r.returncode == 0, r.stderr
    lines = r.stdout.splitlines()
    assert lines[0].startswith("  tuned (race): lr=") and "momentum=0.9" in lines[0]
    assert "runs of 6 epochs" in lines[0]
    lr = float(lines[0].split("lr=")[1].split()[0])
    assert f"lr {lr:g}"[:7] in lines[2]                   # the plan shows the chosen lr
    bad = _cli("train", "--lr", "auto", "--lr-schedule", "cosine")
    assert bad.returncode == 2 and bad.stderr.startswith("inertia: error: --lr auto")
    bad = _cli("train", "--lr", "fast")
    assert bad.returncode == 2 and "not a number or auto" in bad.stderr


def test_tune_command_prints_the_choice_and_draws_it(tmp_path):
    r = _cli("tune", "--epochs", "8", "--samples", "400", "--batch-size", "50",
             "--test-fraction", "0.25", "--out", str(tmp_path))
    assert r.returncode == 0, r.stderr
    out = r.stdout
    n = len(race_mod.grid(1.0))
    assert "chosen: lr " in out and f"runs of 8 epochs, {n} configurations tried" in out
    rows = [line.split() for line in out.splitlines() if line[:6].strip().isdigit()]
    assert [int(row[1]) for row in rows] == [2, 4, 8]           # rungs at 1/4, 1/2, 8 epochs
    assert int(rows[0][2]) == n and int(rows[-1][2]) >= 1
    assert (tmp_path / "tune.png").stat().st_size > 10000
    for argv, match in [(("--lr", "0.1", "--momentum", "0.9"), "both fixed"),
                        (("--budget", "0.5"), "cannot pay"),
                        (("--test-fraction", "1.5"), "--test-fraction"),
                        (("--method", "curvature", "--momentum", "0.9"), "cannot keep"),
                        (("--method", "curvature", "--nesterov"), "chosen by method='race'"),
                        (("--nesterov", "--convention", "previous_delta"), "no Nesterov form")]:
        bad = _cli("tune", "--epochs", "8", "--samples", "200", "--out", str(tmp_path), *argv)
        assert bad.returncode == 2 and bad.stderr.startswith("inertia: error:"), bad.stderr
        assert match in bad.stderr and len(bad.stderr.strip().splitlines()) == 1
        assert bad.stdout == ""                  # refused before the header, before the data


def test_auto_with_another_optimizer_names_the_fix(capsys):
    from inertia.cli import main

    assert main(["train", "--lr", "auto", "--optimizer", "adam", "--epochs", "1"]) == 2
    err = capsys.readouterr().err.strip()
    assert err.count("\n") == 0 and "--optimizer sgd" in err and "Traceback" not in err


def _killed_after_two_checkpoints(monkeypatch, X, y, opt, ck, **kw):
    """A fit of 12 epochs, checkpointed every 4, stopped as by a kill after its second
    checkpoint (epoch 8)."""
    from inertia.training import checkpoint

    saves, real_save = [], checkpoint.save

    def save_then_stop(*args):
        real_save(*args)
        saves.append(1)
        if len(saves) == 2:
            raise KeyboardInterrupt
    monkeypatch.setattr(checkpoint, "save", save_then_stop)
    with pytest.raises(KeyboardInterrupt):
        inertia.fit(_net(), X, y, "mse", opt, checkpoint=ck, checkpoint_every=4, **kw)
    monkeypatch.setattr(checkpoint, "save", real_save)


def test_resuming_an_auto_fit_takes_the_recorded_choice_not_a_new_race(tmp_path,
                                                                          monkeypatch):
    from inertia.training import auto, checkpoint

    X, y = _data(200)
    ck = str(tmp_path / "run.ckpt")
    kw = dict(epochs=12, batch_size=16, seed=3, progress=False)
    ref_net, ref_opt = _net(), SGD("auto", momentum="auto")
    ref = inertia.fit(ref_net, X, y, "mse", ref_opt, **kw)
    _killed_after_two_checkpoints(monkeypatch, X, y, SGD("auto", momentum="auto"), ck, **kw)
    assert checkpoint.recorded_choice(ck)[0]["lr"] == ref_opt.lr

    def no_race(*args, **kwargs):
        raise AssertionError("the race ran again")
    monkeypatch.setattr("inertia.tuning.tune", no_race)
    # an optimizer differing in more than the "auto" values: refused before any race, the
    # optimizer left as given
    other = SGD("auto", momentum="auto", weight_decay=0.01)
    with pytest.raises(ValueError, match="another optimizer .its weight_decay 0.0, this run's "
                                         "0.01"):
        inertia.fit(_net(), X, y, "mse", other, checkpoint=ck, **kw)
    assert other.auto == ["lr", "momentum"] and os.path.exists(ck)
    net, opt = _net(), SGD("auto", momentum="auto")
    h = inertia.fit(net, X, y, "mse", opt, checkpoint=ck, **kw)
    assert h.resumed_from == (8, 0) and h.tuned == ref.tuned
    assert (opt.lr, opt.momentum) == (ref_opt.lr, ref_opt.momentum)
    assert h.loss == ref.loss and np.array_equal(net.flat, ref_net.flat)
    assert not os.path.exists(ck)


def test_a_refused_checkpoint_leaves_auto_values_as_given(tmp_path, monkeypatch):
    from inertia.training import checkpoint

    X, y = _data(200)
    ck = str(tmp_path / "run.ckpt")
    _killed_after_two_checkpoints(monkeypatch, X, y, SGD(0.05, momentum=0.9), ck,
                                  epochs=12, batch_size=16, progress=False)
    assert os.path.exists(ck) and checkpoint.recorded_choice(ck)[0] is None
    # a run whose lr was given: refused before any race, naming the lr to give
    opt = SGD("auto", momentum=0.9)
    with pytest.raises(ValueError, match="lr was given, not chosen: give lr=0.05 to resume"):
        inertia.fit(_net(), X, y, "mse", opt, epochs=12, batch_size=16, progress=False,
                    checkpoint=ck)
    assert opt.auto == ["lr"] and opt.momentum == 0.9 and os.path.exists(ck)
    # a checkpoint refused after the race (other data: restore's check) leaves "auto" too
    os.remove(ck)
    _killed_after_two_checkpoints(monkeypatch, X, y, SGD("auto", momentum=0.9), ck,
                                  epochs=12, batch_size=16, progress=False)
    opt = SGD("auto", momentum=0.9)
    with pytest.raises(ValueError, match="belongs to a run on other data"):
        inertia.fit(_net(), X[:-1], y[:-1], "mse", opt, epochs=12, batch_size=16,
                    progress=False, checkpoint=ck)
    assert opt.auto == ["lr"] and os.path.exists(ck)
