"""Bad input: one-line ValueError naming the problem and the fix, raised before any work."""

import numpy as np
import pytest

import inertia
from inertia import SGD, Dense, Network


def net2():
    return inertia.Network(3, [inertia.Dense(4, "tanh"), inertia.Dense(2, "linear")], seed=0,
                           dtype="float64")


def good():
    rng = np.random.default_rng(0)
    return rng.normal(size=(20, 3)), rng.normal(size=(20, 2))


def one_line(excinfo):
    msg = str(excinfo.value)
    assert msg and "\n" not in msg
    return msg


def assert_untouched(net, before, opt):
    for (w, b), (w0, b0) in zip(net.parameters(), before):
        np.testing.assert_array_equal(w, w0)
        np.testing.assert_array_equal(b, b0)
    assert opt.state is None


@pytest.mark.parametrize("mutate, words", [
    (lambda X, y: (X[:, :2], y), "takes 3 input(s)"),
    (lambda X, y: (X, y[:10]), "X has 20 rows but y has 10"),
    (lambda X, y: (X, y[:, :1]), "targets have 1 column(s) but the network has 2"),
    (lambda X, y: (np.where(np.arange(20)[:, None] == 19, np.nan, X), y), "NaN"),
    (lambda X, y: (X, np.where(np.arange(20)[:, None] == 19, np.inf, y)), "NaN, inf"),
    (lambda X, y: (X[:0], y[:0]), "no rows"),
    (lambda X, y: (X.astype(str), y), "non-numbers"),
])
def test_data_errors_before_training(mutate, words):
    net, opt = net2(), inertia.SGD(lr=0.1, momentum=0.9)
    before = net.parameters()
    X, y = mutate(*good())
    with pytest.raises(ValueError) as ei:
        inertia.fit(net, X, y, "mse", opt, epochs=3, progress=False)
    assert words in one_line(ei)
    assert_untouched(net, before, opt)


@pytest.mark.parametrize("kwargs, words", [
    (dict(loss="hinge"), "unknown loss 'hinge'"),
    (dict(loss="bce"), "does not fit a 'linear' output"),
    (dict(loss="cross_entropy"), "does not fit a 'linear' output"),
    (dict(epochs=None), "epochs is missing"),
    (dict(epochs=-1), "epochs must be a non-negative integer"),
    (dict(batch_size=0), "batch_size must be a positive integer"),
    (dict(schedule=[(5, {"lr": 0.1}), (5, {"momentum": 1.0})], epochs=None),
     "momentum must be in [0, 1)"),
    (dict(schedule=[(5, {"learning_rate": 0.1})], epochs=None), "unknown hyperparameter"),
    (dict(schedule=[(5, {"lr": 0.1})]), "either epochs or a schedule"),
    (dict(schedule=[(0, {"lr": 0.1})], epochs=None), "epochs must be a positive integer"),
    (dict(validation_data=(np.zeros((5, 4)), np.zeros((5, 2)))), "takes 3 input(s)"),
    (dict(optimizer="sgd"), "must be an inertia optimizer"),
])
def test_fit_argument_errors(kwargs, words):
    net, opt = net2(), inertia.SGD(lr=0.1, momentum=0.9)
    before = net.parameters()
    X, y = good()
    args = dict(loss="mse", optimizer=opt, epochs=3, progress=False)
    args.update(kwargs)
    with pytest.raises(ValueError) as ei:
        inertia.fit(net, X, y, **args)
    assert words in one_line(ei)
    assert_untouched(net, before, opt)


@pytest.mark.parametrize("build, words", [
    (lambda: inertia.Dense(4, "mish"), "unknown activation 'mish'"),
    (lambda: inertia.Dense(0, "tanh"), "positive integer"),
    (lambda: inertia.Network(3, [inertia.Dense(4, "softmax"), inertia.Dense(2, "linear")]),
     "softmax is only allowed on the output layer"),
    (lambda: inertia.Network(3, [inertia.Dense(2)], engine="jax"), "unknown engine 'jax'"),
    (lambda: inertia.Network(3, [inertia.Dense(2)], dtype="float16"), "float32 or float64"),
    (lambda: inertia.Network(0, [inertia.Dense(2)]), "n_inputs must be a positive integer"),
    (lambda: inertia.Network(3, []), "at least one Dense layer"),
    (lambda: inertia.SGD(lr=0.1, convention="adam"), "unknown convention 'adam'"),
    (lambda: inertia.SGD(lr=float("nan")), "finite number"),
])
def test_construction_errors(build, words):
    with pytest.raises(ValueError) as ei:
        build()
    assert words in one_line(ei)


def test_cross_entropy_label_errors():
    net = inertia.Network(3, [inertia.Dense(3, "softmax")], seed=0)
    X = np.zeros((4, 3))
    with pytest.raises(ValueError) as ei:
        inertia.fit(net, X, np.array([0, 1, 3, 1]), "cross_entropy", inertia.SGD(lr=0.1),
                    epochs=1)
    assert "integer class labels in [0, 2]" in one_line(ei)
    with pytest.raises(ValueError) as ei:
        inertia.fit(net, X, np.full((4, 3), 0.5), "cross_entropy", inertia.SGD(lr=0.1),
                    epochs=1)
    assert "summing to 1" in one_line(ei)


def test_optimizer_state_from_other_network():
    X, y = good()
    opt = inertia.SGD(lr=0.1, momentum=0.9)
    inertia.fit(net2(), X, y, "mse", opt, epochs=1, progress=False)
    other = inertia.Network(3, [inertia.Dense(5, "tanh"), inertia.Dense(2)], seed=0)
    with pytest.raises(ValueError) as ei:
        inertia.fit(other, X, y, "mse", opt, epochs=1, progress=False)
    assert "opt.reset()" in one_line(ei)


def test_set_parameters_errors():
    net = net2()
    with pytest.raises(ValueError) as ei:
        net.set_parameters([(np.zeros((4, 3)), np.zeros(4))])
    assert "2 layers" in one_line(ei)
    with pytest.raises(ValueError) as ei:
        net.set_parameters([(np.zeros((3, 4)), np.zeros(4)), (np.zeros((2, 4)), np.zeros(2))])
    assert "expected W (4, 3)" in one_line(ei)


def test_file_errors(tmp_path):
    (tmp_path / "e.csv").write_text("")
    (tmp_path / "h.csv").write_text("a,b\n")
    (tmp_path / "bad.npy").write_bytes(b"\x00\x01garbage")
    for path, words in [(tmp_path / "missing.csv", "no such file"), (tmp_path / "e.csv", "empty"),
                        (tmp_path / "h.csv", "no data rows"), (tmp_path / "bad.npy", "cannot read")]:
        with pytest.raises(ValueError) as ei:
            inertia.datasets.load(path)
        assert words in one_line(ei)
    with pytest.raises(ValueError) as ei:
        inertia.load(tmp_path / "bad.npy")
    assert "cannot read model file" in one_line(ei)
    np.savez(tmp_path / "notmodel.npz", X=np.zeros((2, 2)))
    with pytest.raises(ValueError) as ei:
        inertia.load(tmp_path / "notmodel.npz")
    assert "not an inertia model file" in one_line(ei)
    with pytest.raises(ValueError) as ei:
        inertia.save(tmp_path / "no" / "dir" / "m.npz", net2())
    assert "does not exist" in one_line(ei)


def _one(f, words):
    with pytest.raises(ValueError) as info:
        f()
    msg = one_line(info)
    assert words in msg, msg


def test_refusals_before_a_sweep_or_a_race():
    """What a sweep or a race cannot honour is refused up front, in one line: "auto" in a
    sweep, a grid axis a schedule overrides, a tuned value a schedule overrides, a
    convention that cannot hold the chosen momentum, settings the race does not search,
    a budget short of the curvature estimate and the race, a network or a seed that is not
    one."""
    X, y = good()
    SGD, sweep, tune, fit = inertia.SGD, inertia.sweep, inertia.tune, inertia.fit
    for f, words in [
            (lambda: sweep(net2(), X, y, "mse", SGD("auto"), {"momentum": [0, 0.9]}, epochs=2),
             'not lr="auto"'),
            (lambda: sweep(net2(), X, y, "mse", SGD(0.1), {"lr": ["auto", 0.1]}, epochs=2),
             'not lr="auto"'),
            (lambda: sweep(net2(), X, y, "mse", SGD(0.1), {"lr": [0.01, 0.1]}, epochs=2,
                           lr_schedule=inertia.schedules.cosine(0.1, 10)), "lr_schedule sets"),
            (lambda: sweep(net2(), X, y, "mse", SGD(0.1), {"lr": [0.01, 0.1]},
                           schedule=[(1, {"lr": 0.2}), (1, {})]), "first segment sets it"),
            (lambda: fit(net2(), X, y, "mse", SGD("auto", momentum="auto"),
                         schedule=[(2, {}), (2, {"lr": 0.1})]), "segments set lr"),
            (lambda: tune(net2(), X, y, "mse", epochs=30,
                          optimizer=SGD(0.1, convention="neanderthal")), "give momentum=0"),
            (lambda: fit(net2(), X, y, "mse", SGD("auto", momentum=0.9,
                                                  convention="previous_delta"), epochs=30),
             "give momentum=0"),
            (lambda: tune(net2(), X, y, "mse", epochs=30,
                          optimizer=SGD(0.1, momentum=0.9, dampening=0.5)), "not with dampening"),
            (lambda: tune(net2(), X, y, "mse", epochs=30, method="curvature",
                          optimizer=SGD(0.1, momentum=0.9, nesterov=True)),
             "chosen by method='race'"),
            (lambda: tune(net2(), X, y, "mse", epochs=4, batch_size=8, budget=12),
             "budget >= 14.25"),
            (lambda: tune(net2(), X, y, "mse", epochs=5), "give epochs >= 6, mini-batches"),
            (lambda: tune("net", X, y, "mse", epochs=4), "tune trains an inertia.Network"),
            (lambda: fit("net", X, y, "mse", SGD(0.1), epochs=1), "fit trains an inertia.Network"),
            (lambda: fit(net2(), X, y, "mse", SGD(0.1), epochs=1, seed=-1), "seed must be"),
            (lambda: tune(net2(), X, y, "mse", epochs=4, seed=1.5), "seed must be"),
            (lambda: SGD(0.1, momentum=0.9, nesterov="no"), "nesterov must be True or False"),
            (lambda: inertia.translate(SGD("auto"), to="keras"), 'lr="auto"')]:
        _one(f, words)
    # the least budget named is enough, and a momentum of 0 tunes in neanderthal's convention
    assert tune(net2(), X, y, "mse", epochs=4, batch_size=8, budget=14.25).cost <= 14.25 + 1e-9
    assert tune(net2(), X, y, "mse", epochs=6).rungs[0][0] == 2     # ranked after a step
    r = tune(net2(), X, y, "mse", epochs=8, momentum=0,
             optimizer=SGD(0.1, convention="neanderthal"))
    assert r.momentum == 0 and r.optimizer.convention.name == "neanderthal"


def test_load_blames_the_argument_not_the_file(tmp_path):
    path = str(tmp_path / "m.npz")
    inertia.save(path, net2())
    _one(lambda: inertia.load(path, engine="bad"), "cannot load")
    _one(lambda: inertia.load(path, device="cuda"), "cannot load")
    net = net2()
    big = [(np.full_like(w, 3e39), b) for w, b in net.parameters()]
    net32 = inertia.Network(3, [inertia.Dense(4, "tanh"), inertia.Dense(2, "linear")], seed=0)
    _one(lambda: net32.set_parameters(big), "NaN or inf (in float32)")


def test_save_and_a_sweeps_run_index_name_the_wrong_type(tmp_path):
    net = net2()
    path = str(tmp_path / "m.npz")
    for f, words in [(lambda: inertia.save(path, "net"), "save writes an inertia.Network"),
                     (lambda: inertia.save(path, net, optimizer="sgd"),
                      "optimizer must be an inertia optimizer")]:
        _one(f, words)
    assert not (tmp_path / "m.npz").exists()
    X, y = good()
    r = inertia.sweep(net, X, y, "mse", inertia.SGD(0.1), {"lr": [0.01, 0.1]}, epochs=1)
    for k in ("0", 1.0, True):
        with pytest.raises(TypeError, match="a run index is an integer"):
            r.network(k)
    with pytest.raises(IndexError, match="out of range"):
        r.history(2)
    _one(lambda: r.plot(123, y=None), "path must be a file path (str or pathlib.Path), got int")
    for grid, words in (([], "got an empty list"), ([0.1, 0.2], "got a list holding float")):
        _one(lambda: inertia.sweep(net, X, y, "mse", inertia.SGD(0.1), grid, epochs=1), words)
    assert r.network(-1).sizes == net.sizes


def test_a_run_whose_records_cannot_fit_in_memory_is_refused_before_training():
    X, y = good()
    for kw in ({"epochs": 10 ** 9}, {"schedule": [(10 ** 12, {})]}):
        _one(lambda: inertia.fit(net2(), X, y, "mse", inertia.SGD(0.1), **kw),
             "epochs: 64 ")


def test_save_refuses_what_load_would_call_damaged_and_keeps_the_old_file(tmp_path):
    """A model that would not load back (an optimizer state of another network, a scaling
    record load refuses, extra that JSON cannot hold) is refused before anything is written:
    the file saved before stays as it was. NumPy numbers in extra are written as numbers."""
    rng = np.random.default_rng(0)
    X, y = rng.normal(size=(40, 3)), rng.normal(size=40)
    net = Network(3, [Dense(4, "tanh"), Dense(1)], seed=0)
    path = tmp_path / "m.npz"
    inertia.save(path, net)
    before = path.read_bytes()
    other = SGD(0.1, momentum=0.9)
    inertia.fit(Network(3, [Dense(7, "tanh"), Dense(1)]), X, y, "mse", other, epochs=1,
                progress=False)
    for kw, words in [({"optimizer": other}, "would not load back .*velocity"),
                      ({"extra": {"mean": [0, 0, 0], "std": [0, 1, 1]}},
                       "would not load back .*std record"),
                      ({"extra": [1, 2]}, "extra must be a dict"),
                      ({"extra": {"a": object()}}, "extra must hold only JSON values")]:
        with pytest.raises(ValueError, match=words) as err:
            inertia.save(path, net, **kw)
        assert "\n" not in str(err.value)
        assert path.read_bytes() == before
    inertia.save(path, net, extra={"a": np.float32(1.5), "b": np.arange(2),
                                   "test_loss": float("inf")})   # train --save of an inf cost
    assert inertia.load(path)[0].extra == {"a": 1.5, "b": [0, 1], "test_loss": float("inf")}
