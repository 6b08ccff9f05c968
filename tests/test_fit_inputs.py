"""fit's arguments that used to go unchecked: each is a one-line error
before any work (the network unchanged), where it used to train on a value that meant
something else."""

import numpy as np
import pytest

import inertia
from inertia import SGD, Dense, Network
from inertia.schedules import constant


def _data(n=40):
    rng = np.random.default_rng(0)
    return rng.normal(size=(n, 3)), rng.normal(size=n)


def _net(out="linear", dtype="float32"):
    return Network(3, [Dense(4, "tanh"), Dense(1, out)], seed=0, dtype=dtype)


def _refused(words, net=None, X=None, y=None, loss="mse", opt=None, **kw):
    X0, y0 = _data()
    net = net or _net()
    before = net.flat.copy()
    with pytest.raises(ValueError, match=words) as err:
        inertia.fit(net, X0 if X is None else X, y0 if y is None else y, loss,
                    opt or SGD(0.01), **{"epochs": 2, "progress": False, **kw})
    assert "\n" not in str(err.value)
    np.testing.assert_array_equal(net.flat, before)


def test_data_beyond_the_dtype_or_complex_is_refused():
    X, y = _data()
    _refused(r"X holds .* \(row 0, column \d\), beyond float32's range", X=X * 1e39)
    _refused(r"y holds .* beyond float32's range", y=y * 1e39)
    _refused(r"X_val holds .* beyond float32's range", validation_data=(X * 1e39, y))
    _refused("X holds complex numbers", X=X + 1j)
    _refused("y holds complex numbers", y=y + 1j)
    _refused("sample_weight holds values beyond float32's range",
             sample_weight=np.full(40, 1e308))
    _refused(r"sample_weight is all zero in float32 \(too small to hold\)",
             sample_weight=np.full(40, 1e-320))
    hist = inertia.fit(_net(dtype="float64"), X * 1e39, y, "mse", SGD(1e-90), epochs=1,
                       progress=False)                 # float64 holds them
    assert np.isfinite(hist.loss).all()


def test_boolean_bce_targets_train_as_zero_and_one():
    X, y = _data()
    a, b = _net("sigmoid"), _net("sigmoid")
    ha = inertia.fit(a, X, y > 0, "bce", SGD(0.1), epochs=3, progress=False)
    hb = inertia.fit(b, X, (y > 0).astype(float), "bce", SGD(0.1), epochs=3, progress=False)
    assert ha.loss == hb.loss


@pytest.mark.parametrize("name", ["shuffle", "progress", "record_steps"])
def test_a_flag_that_is_not_a_boolean_is_refused(name):
    _refused(f"{name} must be True or False, got 'no'", batch_size=8, **{name: "no"})


def test_a_segment_setting_what_a_step_schedule_sets_is_refused():
    _refused("a schedule segment sets lr and lr_schedule sets it at every step",
             epochs=None, schedule=[(2, {"lr": 0.5})], lr_schedule=constant(0.001))
    _refused("a schedule segment sets momentum and momentum_schedule",
             epochs=None, schedule=[(2, {"momentum": 0.5})], opt=SGD(0.01, momentum=0.1),
             momentum_schedule=constant(0.9))


def test_auto_with_sample_weight_is_refused_before_the_race():
    _refused('lr="auto" with sample_weight: the race trains without weights',
             opt=SGD("auto"), sample_weight=np.ones(40), batch_size=8)


def test_zero_weight_batches_of_a_seeded_run_are_found_before_any_work(monkeypatch):
    """The orders of a seeded shuffled run are replayed from its seed, so a batch of weight
    0 in any epoch is refused before the first step (not after epochs of training); a
    vanishingly unlikely one is left to the per-epoch check."""
    from inertia.training import plan as plan_mod

    w = np.r_[np.zeros(30), np.ones(10)]
    _refused(r"batch \d+ of epoch \d+ \(8 rows\) holds only rows of sample weight 0.*more "
             r"than the 30 rows of weight 0", batch_size=8, seed=0, epochs=20, sample_weight=w)
    calls = []
    monkeypatch.setattr(plan_mod, "first_order", lambda p: calls.append(p) or (_ for _ in ()))
    X, y = _data(2000)
    w = np.ones(2000)
    w[:100] = 0                      # a batch of 64 zeros: about 1e-84 a batch
    run = plan_mod.make_plan(_net(), X, y, "mse", SGD(0.01), 2, 64, True, 0, None, None,
                             False, None, None, None, "stop", None, 1, sample_weight=w)
    assert run.w is not None and calls == []         # no replay of the orders


def test_checkpoint_every_without_a_checkpoint_is_refused(tmp_path):
    _refused("checkpoint_every applies to a run kept with checkpoint=PATH",
             checkpoint_every="30s")
    X, y = _data()
    hist = inertia.fit(_net(), X, y, "mse", SGD(0.01), epochs=2, progress=False,
                       checkpoint=str(tmp_path / "c.npz"))       # every epoch, by default
    assert len(hist.loss) == 2 and not (tmp_path / "c.npz").exists()
