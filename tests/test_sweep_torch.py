"""The torch engine's sweep group (inertia.sweeps.batched): every run of a group trained
together with batched matmuls equals its own fit on the torch engine, to 1e-12 relative in
float64 and to float32 rounding: conventions, Nesterov, QHM, batch layouts, shuffling,
validation data, a schedule, a diverging run among them; and the sweep on the torch engine
equals the NumPy engine's."""

import warnings

import numpy as np
import pytest

torch = pytest.importorskip("torch")

import inertia  # noqa: E402
from inertia import QHM, SGD, Dense, Network  # noqa: E402
from inertia.optim import CONVENTIONS  # noqa: E402
from inertia.sweeps import batched  # noqa: E402

LAYERS = [Dense(6, "sigmoid"), Dense(5, "tanh"), Dense(1, "linear")]
# float32: a few hundred units of rounding after the few steps of these runs, relative to
# the array's largest entry (the two paths round the same sums in different orders)
TOL = {"float64": 1e-12, "float32": 300 * float(np.finfo(np.float32).eps)}


def data(n, seed=0):
    rng = np.random.default_rng(seed)
    X = rng.uniform(-1, 1, (n, 4))
    y = np.sin(X[:, :1]) + 0.5 * X[:, 1:2] * X[:, 2:3]
    return X, y


def make(kind, hyper, dtype, layers=LAYERS, seed=3):
    net = Network(4, layers, seed=seed, dtype=dtype, engine="torch")
    return net, kind(**hyper)


def separate(kind, hyper, X, y, loss, plan, dtype, layers=LAYERS):
    net, opt = make(kind, hyper, dtype, layers)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", inertia.DivergenceWarning)
        hist = inertia.fit(net, X, y, loss, opt, progress=False, **plan)
    return net, opt, hist


def close(a, b, tol):
    a, b = np.asarray(a, dtype=np.float64), np.asarray(b, dtype=np.float64)
    assert a.shape == b.shape
    scale = max(1.0, float(np.abs(b).max(initial=0)))
    assert np.all(np.abs(a - b) <= tol * scale), (a, b)


def assert_same(net, opt, hist, net2, opt2, hist2, tol):
    """Weights, velocities, step counter, losses and the divergence record."""
    for (w1, b1), (w2, b2) in zip(net.parameters(), net2.parameters()):
        close(w1, w2, tol)
        close(b1, b2, tol)
    buf = opt.closed_form().buffer
    for v1, v2 in zip(getattr(opt.state, buf), getattr(opt2.state, buf)):
        close(v1.cpu().numpy(), v2.cpu().numpy(), tol)
    assert opt.state.step == opt2.state.step
    close(hist.loss, hist2.loss, tol)
    close(hist.val_loss, hist2.val_loss, tol)
    close(hist.val_accuracy, hist2.val_accuracy, tol)
    close(hist.segment_loss, hist2.segment_loss, tol)
    assert (hist.diverged is None) == (hist2.diverged is None)
    if hist.diverged is not None:
        assert hist.diverged.epoch == hist2.diverged.epoch
        assert hist.diverged.step == hist2.diverged.step


def check_group(kind, hypers, X, y, plan, dtype, loss="mse", layers=LAYERS):
    pairs = [make(kind, h, dtype, layers) for h in hypers]
    nets, opts = [p[0] for p in pairs], [p[1] for p in pairs]
    hists = batched.train_group(nets, opts, X, y, loss, plan)
    assert hists is not None
    for h, net, opt, hist in zip(hypers, nets, opts, hists):
        assert_same(net, opt, hist, *separate(kind, h, X, y, loss, plan, dtype, layers),
                    TOL[dtype])
    return hists


DTYPES = ["float64", "float32"]
BIG = {"float64": 1e200, "float32": 1e30}      # a learning rate that overflows within steps


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("conv", sorted(CONVENTIONS))
def test_every_convention(conv, dtype):
    X, y = data(40)
    hypers = [{"lr": 0.02, "momentum": 0.0}, {"lr": 0.1, "momentum": 0.9},
              {"lr": 0.05, "momentum": 0.5, "weight_decay": 0.01}]
    if CONVENTIONS[conv].weight_decay is None:
        del hypers[2]["weight_decay"]
    hypers = [{**h, "convention": conv} for h in hypers]
    check_group(SGD, hypers, X, y, {"epochs": 3, "batch_size": 8, "seed": 1}, dtype)


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("conv", ["pytorch", "keras", "neanderthal", "ema"])
def test_nesterov_and_dampening(conv, dtype):
    X, y = data(40)
    hypers = [{"lr": 0.05, "momentum": 0.9, "nesterov": True, "convention": conv},
              {"lr": 0.1, "momentum": 0.5, "nesterov": True, "convention": conv,
               "weight_decay": 0.01}]
    if conv == "pytorch":
        hypers.append({"lr": 0.1, "momentum": 0.8, "dampening": 0.3, "convention": conv})
    check_group(SGD, hypers, X, y, {"epochs": 3, "batch_size": 8, "seed": 2}, dtype)


@pytest.mark.parametrize("dtype", DTYPES)
def test_qhm(dtype):
    X, y = data(40)
    hypers = [{"lr": 0.1, "momentum": 0.9, "nu": 0.7},
              {"lr": 0.05, "momentum": 0.99, "nu": 1.0, "weight_decay": 0.01}]
    check_group(QHM, hypers, X, y, {"epochs": 3, "batch_size": 8, "seed": 0}, dtype)


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("layout", [{"batch_size": None}, {"batch_size": 7},
                                    {"batch_size": 1}, {"batch_size": 8, "shuffle": False}],
                         ids=["full", "mini-last-smaller", "online", "unshuffled"])
def test_batch_layouts(layout, dtype):
    X, y = data(23)
    hypers = [{"lr": 0.05, "momentum": 0.9}, {"lr": 0.02, "momentum": 0.5}]
    check_group(SGD, hypers, X, y, {"epochs": 2, "seed": 4, **layout}, dtype)


@pytest.mark.parametrize("dtype", DTYPES)
def test_validation_and_schedule(dtype):
    X, y = data(60)
    plan = {"schedule": [(2, {"lr": 0.1, "momentum": 0.9}), (2, {"lr": 0.02})],
            "batch_size": 16, "seed": 5, "validation_data": data(20, seed=1)}
    hypers = [{"lr": 0.1, "momentum": 0.5}, {"lr": 0.1, "momentum": 0.0,
                                             "convention": "keras"}]
    check_group(SGD, hypers, X, y, plan, dtype)


def test_classification_with_accuracy():
    X, y = data(40)
    labels = (y[:, 0] > 0).astype(int) + (X[:, 3] > 0)
    layers = [Dense(6, "tanh"), Dense(3, "softmax")]
    plan = {"epochs": 3, "batch_size": 8, "seed": 0,
            "validation_data": (X[:10], labels[:10])}
    hists = check_group(SGD, [{"lr": 0.3, "momentum": 0.9}, {"lr": 0.1, "momentum": 0.5}],
                        X, labels, plan, "float64", "cross_entropy", layers)
    assert len(hists[0].val_accuracy) == 3


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("batch_size", [8, None])
def test_a_diverging_run_stops_alone(batch_size, dtype):
    X, y = data(40)
    hypers = [{"lr": 0.02, "momentum": 0.5}, {"lr": BIG[dtype], "momentum": 0.9},
              {"lr": 0.05, "momentum": 0.9}]
    hists = check_group(SGD, hypers, X, y, {"epochs": 3, "batch_size": batch_size,
                                            "seed": 1}, dtype)
    assert hists[1].diverged is not None
    assert hists[0].diverged is None and len(hists[0].loss) == 3


def test_continue_trains_on():
    X, y = data(40)
    hypers = [{"lr": 0.02, "momentum": 0.5}, {"lr": 0.05, "momentum": 0.9}]
    check_group(SGD, hypers, X, y, {"epochs": 2, "batch_size": 8, "seed": 1,
                                    "on_divergence": "continue"}, "float64")


def test_not_covered_returns_none():
    X, y = data(20)
    nets = [make(SGD, {"lr": 0.1}, "float64")[0] for _ in range(2)]
    opts = [SGD(lr=0.1), SGD(lr=0.2)]
    assert batched.train_group(nets[:1], opts[:1], X, y, "mse", {"epochs": 1}) is None
    assert batched.train_group(nets, opts, X, y, "mse",
                               {"epochs": 1, "lr_schedule": lambda t: 0.1}) is None
    adam = [inertia.Adam(lr=0.01), inertia.Adam(lr=0.02)]
    assert batched.train_group(nets, adam, X, y, "mse", {"epochs": 1}) is None
    numpy_nets = [Network(4, LAYERS, seed=3, dtype="float64") for _ in range(2)]
    assert batched.train_group(numpy_nets, opts, X, y, "mse", {"epochs": 1}) is None


def test_sweep_torch_equals_numpy():
    X, y = data(50)
    grid = {"lr": [0.02, 0.1], "momentum": [0.0, 0.9]}
    kw = dict(grid=grid, seeds=[0, 1], epochs=3, batch_size=8,
              validation_data=data(10, seed=2))
    out = {}
    for engine in ("numpy", "torch"):
        net = Network(4, LAYERS, seed=0, dtype="float64", engine=engine)
        out[engine] = inertia.sweep(net, X, y, "mse", SGD(lr=0.1), **kw)
    a, b = out["torch"], out["numpy"]
    close(a.loss, b.loss, 1e-12)
    close(a.val_loss, b.val_loss, 1e-12)
    for k in range(len(a.loss)):
        for (w1, b1), (w2, b2) in zip(a.network(k).parameters(), b.network(k).parameters()):
            close(w1, w2, 1e-12)
            close(b1, b2, 1e-12)


@pytest.mark.parametrize("dtype", DTYPES)
def test_gradient_in_blocks_of_runs(dtype, monkeypatch):
    """On the CPU a large batch's gradient is taken a block of runs at a time: the same
    runs (here one run a block, and a diverging run in the middle)."""
    monkeypatch.setattr(batched, "CACHE_BYTES", 1)
    X, y = data(30)
    hypers = [{"lr": 0.05, "momentum": 0.9}, {"lr": BIG[dtype], "momentum": 0.9},
              {"lr": 0.02, "momentum": 0.5, "nesterov": True}]
    check_group(SGD, hypers, X, y, {"epochs": 2, "batch_size": 16, "seed": 1}, dtype)
