"""The torch engine against the NumPy engine: whole training runs agree (float64 to 1e-12,
float32 to float32 tolerance), models move between engines, the device is checked, and
importing inertia does not import torch."""

from __future__ import annotations

import subprocess
import sys

import numpy as np
import pytest

import inertia

torch = pytest.importorskip("torch")

CUDA = torch.cuda.is_available()


def max_rel_diff(a, b):
    """max |a - b| over the parameters of one layer, relative to max |b| (the layer's scale)."""
    return float(np.max(np.abs(a - b)) / max(np.max(np.abs(b)), 1e-300))


def assert_nets_close(got, ref, rtol, what=""):
    for i, ((wg, bg), (wr, br)) in enumerate(zip(got.parameters(), ref.parameters())):
        for name, g, r in (("W", wg, wr), ("b", bg, br)):
            assert g.dtype == r.dtype and g.shape == r.shape
            assert np.all(np.isfinite(g)), f"{what}: layer {i} {name} not finite"
            err = max_rel_diff(g, r)
            assert err <= rtol, f"{what}: layer {i} {name} differs by {err:.3g} > {rtol}"


def small_data(n=60, seed=0):
    rng = np.random.default_rng(seed)
    X = rng.normal(size=(n, 3))
    return X, np.sin(X[:, :1]) + 0.1 * X[:, 1:2] ** 2


def small_net(engine, dtype="float64", hidden="tanh", out="linear", n_out=1):
    return inertia.Network(3, [inertia.Dense(8, hidden), inertia.Dense(5, "sigmoid"),
                               inertia.Dense(n_out, out)],
                           seed=3, dtype=dtype, engine=engine)


def train_both(make_opt, loss="mse", y=None, out="linear", n_out=1, hidden="tanh", **fit_kw):
    X, yy = small_data()
    y = yy if y is None else y
    nets = {}
    for engine in ("numpy", "torch"):
        net = small_net(engine, hidden=hidden, out=out, n_out=n_out)
        opt = make_opt()
        hist = inertia.fit(net, X, y, loss, opt, progress=False, **fit_kw)
        nets[engine] = (net, hist, opt)
    return nets


# --------------------------------------------------------------------------- exactness
SGD_CASES = {
    "pytorch": dict(lr=0.05, momentum=0.9, dampening=0.1, weight_decay=0.01,
                    convention="pytorch"),
    "pytorch-nesterov": dict(lr=0.05, momentum=0.9, nesterov=True, weight_decay=0.01,
                             convention="pytorch"),
    "keras": dict(lr=0.05, momentum=0.9, weight_decay=0.01, convention="keras"),
    "keras-nesterov": dict(lr=0.05, momentum=0.8, nesterov=True, convention="keras"),
    "neanderthal-nesterov": dict(lr=0.1, momentum=0.8, nesterov=True, weight_decay=0.1,
                                 convention="neanderthal"),
    "sklearn": dict(lr=0.05, momentum=0.9, weight_decay=0.1, convention="sklearn"),
    "sklearn-nesterov": dict(lr=0.05, momentum=0.9, nesterov=True, convention="sklearn"),
    "tf1": dict(lr=0.02, momentum=0.9, convention="tf1"),
    "ema": dict(lr=0.2, momentum=0.9, convention="ema"),
    "previous_delta": dict(lr=0.05, momentum=0.5, convention="previous_delta"),
}
BATCHES = {"full": dict(batch_size=None), "mini": dict(batch_size=16, shuffle=True, seed=7),
           "online": dict(batch_size=1, shuffle=True, seed=7)}


@pytest.mark.parametrize("batch", ["full", "mini"])
@pytest.mark.parametrize("case", sorted(SGD_CASES))
def test_sgd_training_equals_numpy_float64(case, batch):
    epochs = 60 if batch == "full" else 15
    nets = train_both(lambda: inertia.SGD(**SGD_CASES[case]), epochs=epochs, **BATCHES[batch])
    (net_t, hist_t, opt_t), (net_n, hist_n, opt_n) = nets["torch"], nets["numpy"]
    assert_nets_close(net_t, net_n, 1e-12, f"{case} {batch}")
    np.testing.assert_allclose(hist_t.loss, hist_n.loss, rtol=1e-12)
    for vt, vn in zip(opt_t.state.velocity, opt_n.state.velocity):
        assert isinstance(vt, torch.Tensor) and isinstance(vn, np.ndarray)
        assert max_rel_diff(net_t.e.to_host(vt), vn) <= 1e-12


def test_online_training_equals_numpy_float64():
    nets = train_both(lambda: inertia.SGD(**SGD_CASES["neanderthal-nesterov"]), epochs=3,
                      **BATCHES["online"])
    assert_nets_close(nets["torch"][0], nets["numpy"][0], 1e-12, "online")


@pytest.mark.parametrize("batch", ["full", "mini"])
@pytest.mark.parametrize("kind,kw", [("adam", dict(lr=0.01)),
                                     ("adam", dict(lr=0.01, weight_decay=0.01, amsgrad=True)),
                                     ("adamw", dict(lr=0.01, weight_decay=0.05))],
                         ids=["adam", "adam-l2-amsgrad", "adamw"])
def test_adam_training_equals_numpy_float64(kind, kw, batch):
    cls = inertia.Adam if kind == "adam" else inertia.AdamW
    epochs = 60 if batch == "full" else 15
    nets = train_both(lambda: cls(**kw), epochs=epochs, **BATCHES[batch])
    assert_nets_close(nets["torch"][0], nets["numpy"][0], 1e-12, f"{kind} {batch}")
    np.testing.assert_allclose(nets["torch"][1].loss, nets["numpy"][1].loss, rtol=1e-12)


@pytest.mark.parametrize("opt", ["qhm", "aggmo"])
def test_momentum_family_equals_numpy_float64(opt):
    make = (lambda: inertia.QHM(lr=0.05, momentum=0.9, nu=0.7)) if opt == "qhm" else \
        (lambda: inertia.AggMo(lr=0.05, betas=[0.0, 0.9, 0.99]))
    nets = train_both(make, epochs=10, batch_size=16, shuffle=True, seed=1)
    assert_nets_close(nets["torch"][0], nets["numpy"][0], 1e-12, opt)


def test_losses_and_activations_end_to_end_float64():
    X, _ = small_data()
    labels = (X[:, 0] > 0).astype(int) + (X[:, 1] > 0.5).astype(int)
    cases = [
        dict(loss="cross_entropy", y=labels, out="softmax", n_out=3, hidden="relu"),
        dict(loss="bce", y=(X[:, :1] > 0).astype(float), out="sigmoid", hidden="relu"),
        dict(loss="quadratic", out="tanh", hidden="sigmoid"),
        dict(loss="mse", out="relu", hidden="tanh"),
    ]
    for c in cases:
        nets = train_both(lambda: inertia.SGD(lr=0.1, momentum=0.9), epochs=30, batch_size=20,
                          shuffle=True, seed=2, **c)
        assert_nets_close(nets["torch"][0], nets["numpy"][0], 1e-12, c["loss"])
        np.testing.assert_allclose(nets["torch"][1].loss, nets["numpy"][1].loss, rtol=1e-12)


def test_validation_loss_and_gradients_equal_numpy_float64():
    X, y = small_data()
    nets = train_both(lambda: inertia.SGD(lr=0.05, momentum=0.9), epochs=10,
                      validation_data=(X[:20], y[:20]))
    np.testing.assert_allclose(nets["torch"][1].val_loss, nets["numpy"][1].val_loss,
                               rtol=1e-12)
    vt, gt = nets["torch"][0].gradients(X, y, "mse")
    vn, gn = nets["numpy"][0].gradients(X, y, "mse")
    assert vt == pytest.approx(vn, rel=1e-12)
    for (dwt, dbt), (dwn, dbn) in zip(gt, gn):
        assert max_rel_diff(dwt, dwn) <= 1e-11 and max_rel_diff(dbt, dbn) <= 1e-11


# --------------------------------------------------------------------------- float32
def test_float32_engines_agree_after_100_epochs():
    """A 4-32-16-1 net on smooth_regression(1000), 100 epochs: float32 round-off apart.

    (A run that is sensitive to round-off, such as one that first overshoots, amplifies
    float32 rounding differently in every engine, and in NumPy float32 against float64 too;
    this one is smooth, so what is compared is the engines' arithmetic.)"""
    X, y = inertia.datasets.smooth_regression(1000, seed=1)
    nets = {}
    for engine in ("numpy", "torch"):
        net = inertia.Network(4, [inertia.Dense(32, "sigmoid"), inertia.Dense(16, "tanh"),
                                  inertia.Dense(1, "linear")], seed=0, dtype="float32",
                              engine=engine)
        opt = inertia.SGD(lr=0.05, momentum=0.4, convention="neanderthal")
        hist = inertia.fit(net, X, y, "quadratic", opt, epochs=100, progress=False)
        nets[engine] = (net, hist)
    (net_t, hist_t), (net_n, hist_n) = nets["torch"], nets["numpy"]
    assert net_t.dtype == net_n.dtype == np.dtype("float32")
    for (wt, bt), (wn, bn) in zip(net_t.parameters(), net_n.parameters()):
        assert wt.dtype == np.float32
        np.testing.assert_allclose(wt, wn, rtol=1e-4, atol=1e-5)
        np.testing.assert_allclose(bt, bn, rtol=1e-4, atol=1e-5)
    np.testing.assert_allclose(hist_t.loss, hist_n.loss, rtol=1e-4)
    assert hist_t.loss[-1] < 0.5 * hist_t.loss[0]
    np.testing.assert_allclose(net_t.predict(X[:50]), net_n.predict(X[:50]), rtol=1e-4,
                               atol=1e-5)


def test_float32_adam_mini_batch_engines_agree():
    X, y = inertia.datasets.smooth_regression(1000, seed=2)
    out = {}
    for engine in ("numpy", "torch"):
        net = inertia.Network(4, [inertia.Dense(32, "tanh"), inertia.Dense(1, "linear")],
                              seed=0, dtype="float32", engine=engine)
        inertia.fit(net, X, y, "mse", inertia.Adam(lr=1e-3), epochs=5, batch_size=50,
                    seed=0, progress=False)
        out[engine] = net.parameters()
    for (wt, bt), (wn, bn) in zip(out["torch"], out["numpy"]):
        np.testing.assert_allclose(wt, wn, rtol=1e-4, atol=1e-5)
        np.testing.assert_allclose(bt, bn, rtol=1e-4, atol=1e-5)


# --------------------------------------------------------------------------- across engines
@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_save_on_torch_load_on_numpy(tmp_path, dtype):
    X, y = small_data()
    net = small_net("torch", dtype=dtype)
    opt = inertia.SGD(lr=0.05, momentum=0.9, convention="keras")
    inertia.fit(net, X, y, "mse", opt, epochs=10, batch_size=16, progress=False)
    path = tmp_path / "m.npz"
    inertia.save(path, net, optimizer=opt)
    back, oback = inertia.load(path, engine="numpy")
    assert back.engine == "numpy" and back.dtype == np.dtype(dtype)
    for (wb, bb), (wt, bt) in zip(back.parameters(), net.parameters()):
        np.testing.assert_array_equal(wb, wt)                # the very same numbers
        np.testing.assert_array_equal(bb, bt)
    # the same network; the predictions differ only by the two BLAS libraries' round-off
    rtol = {"float32": 1e-5, "float64": 1e-13}[dtype]
    np.testing.assert_allclose(back.predict(X), net.predict(X), rtol=rtol, atol=rtol)
    assert oback.state.step == opt.state.step
    for vb, vt in zip(oback.state.velocity, opt.state.velocity):
        assert isinstance(vb, np.ndarray)
        np.testing.assert_array_equal(vb, net.e.to_host(vt))
    again, _ = inertia.load(path)                           # the engine it was saved from
    assert again.engine == "torch"
    np.testing.assert_array_equal(again.predict(X), net.predict(X))


def test_save_on_numpy_resume_on_torch_float64(tmp_path):
    """Train N on numpy, save, resume N on torch == 2N on numpy (to 1e-12)."""
    X, y = small_data()
    kw = dict(lr=0.05, momentum=0.8, nesterov=True, convention="pytorch")
    a = small_net("numpy")
    oa = inertia.SGD(**kw)
    inertia.fit(a, X, y, "mse", oa, epochs=20, batch_size=16, shuffle=False, progress=False)
    b = small_net("numpy")
    ob = inertia.SGD(**kw)
    inertia.fit(b, X, y, "mse", ob, epochs=10, batch_size=16, shuffle=False, progress=False)
    inertia.save(tmp_path / "m.npz", b, optimizer=ob)
    c, oc = inertia.load(tmp_path / "m.npz", engine="torch")
    assert c.engine == "torch"
    inertia.fit(c, X, y, "mse", oc, epochs=10, batch_size=16, shuffle=False, progress=False)
    assert_nets_close(c, a, 1e-12, "resume on torch")


def test_optimizer_state_moves_between_engines():
    """An optimizer whose state lives on one engine continues on a network of the other."""
    X, y = small_data()
    ref = small_net("numpy")
    oref = inertia.Adam(lr=0.01)
    inertia.fit(ref, X, y, "mse", oref, epochs=10, progress=False)
    a = small_net("torch")
    opt = inertia.Adam(lr=0.01)
    inertia.fit(a, X, y, "mse", opt, epochs=5, progress=False)
    assert all(isinstance(b, torch.Tensor) for b in opt.state.exp_avg)
    b = small_net("numpy").set_parameters(a.parameters())
    inertia.fit(b, X, y, "mse", opt, epochs=5, progress=False)
    assert all(isinstance(v, np.ndarray) for v in opt.state.exp_avg)
    assert_nets_close(b, ref, 1e-12, "adam state moved torch -> numpy")


def test_is_array(engine_name):
    for dtype, other in [("float32", "float64"), ("float64", "float32")]:
        e = inertia.engines.get(engine_name, dtype)
        assert e.is_array(e.zeros((2, 3))) and e.is_array(e.from_host(np.ones(3)))
        assert not e.is_array(inertia.engines.get(engine_name, other).zeros((2,)))
        assert not e.is_array([0.0, 1.0])
    t = inertia.engines.get("torch", "float64")
    n = inertia.engines.get("numpy", "float64")
    assert not t.is_array(n.zeros((2,))) and not n.is_array(t.zeros((2,)))


# --------------------------------------------------------------------------- engine details
def test_engine_dtype_is_numpy_dtype_and_tensors_need_no_grad():
    for dtype in ("float32", "float64"):
        e = inertia.engines.get("torch", dtype)
        assert e.name == "torch" and e.dtype == np.dtype(dtype)
        assert e.tdtype == getattr(torch, dtype)
        net = small_net("torch", dtype=dtype)
        assert net.dtype.name == dtype and "engine='torch'" in repr(net)
        for p in net.params():
            assert isinstance(p, torch.Tensor) and p.dtype == e.tdtype
            assert not p.requires_grad and p.is_contiguous()
    with pytest.raises(ValueError, match="float32 or float64"):
        inertia.engines.get("torch", "float16")


def test_nothing_requires_grad_and_autograd_records_nothing():
    e = inertia.engines.get("torch", "float64")
    src = torch.ones(3, requires_grad=True)
    a = e.from_host(src)                                    # a detached copy
    assert not a.requires_grad and e.is_array(a) and not e.is_array(src)
    X, y = small_data()
    net = small_net("torch")
    with torch.enable_grad():
        inertia.fit(net, X, y, "mse", inertia.Adam(lr=0.01), epochs=3, batch_size=16,
                    progress=False)
    for p in net.params():
        assert not p.requires_grad and p.grad_fn is None and p.grad is None


def test_gemm_beta_zero_ignores_nan_with_transposes():
    e = inertia.engines.get("torch", "float64")
    rng = np.random.default_rng(0)
    a, b = rng.normal(size=(4, 3)), rng.normal(size=(5, 3))
    c = e.from_host(np.full((4, 5), np.nan))
    e.gemm(2.0, e.from_host(a), e.from_host(b), 0.0, c, trans_b=True)
    # torch's and NumPy's BLAS sum the 3 (resp. 4) products in their own order: a few ulps
    # of the magnitudes summed, absolute (an entry near zero has no relative accuracy)
    eps = np.finfo(np.float64).eps
    assert np.all(np.abs(e.to_host(c) - 2 * a @ b.T) <= 4 * 3 * eps * 2 * np.abs(a) @ np.abs(b).T)
    y = e.from_host(np.full(3, np.inf))
    e.sum_rows(1.0, e.from_host(a), 0.0, y)
    assert np.all(np.abs(e.to_host(y) - a.sum(axis=0)) <= 4 * 4 * eps * np.abs(a).sum(axis=0))


def test_sum_rows_and_take_rows_reuse_their_buffers():
    e = inertia.engines.get("torch", "float32")
    d = e.from_host(np.ones((10, 2)))
    out = e.zeros((2,))
    e.sum_rows(1.0, d, 0.0, out)
    ones = e._ones
    e.sum_rows(1.0, e.from_host(np.ones((4, 2))), 0.0, out)
    assert e._ones is ones                                  # no new ones vector per call
    np.testing.assert_array_equal(e.to_host(out), [4.0, 4.0])
    x = e.from_host(np.arange(12.0).reshape(6, 2))
    idx = np.array([5, 1, 1], dtype=np.int32)               # any integer dtype
    got = e.take_rows(x, idx, e.empty((3, 2)))
    np.testing.assert_array_equal(e.to_host(got), np.arange(12.0).reshape(6, 2)[idx])


def test_activate_backward_softmax_raises_and_unknown_names():
    e = inertia.engines.get("torch", "float32")
    a = e.zeros((2, 3))
    with pytest.raises(ValueError, match="softmax"):
        e.activate_backward_("softmax", a, e.zeros((2, 3)))
    with pytest.raises(ValueError, match="unknown activation"):
        e.activate_("swish", a)
    with pytest.raises(ValueError, match="unknown loss"):
        e.loss("hinge", a, a, a)


def test_device_cpu_spellings():
    for dev in (None, "cpu", torch.device("cpu")):
        e = inertia.engines.get("torch", "float32", device=dev)
        assert e.zeros((1,)).device.type == "cpu"
    net = inertia.Network(2, [inertia.Dense(1)], engine="torch", device="cpu")
    assert net.predict(np.ones((3, 2))).shape == (3, 1)
    with pytest.raises(ValueError, match="device"):
        inertia.engines.get("torch", "float32", device="tpu")
    with pytest.raises(ValueError, match="cpu only"):
        inertia.engines.get("numpy", "float32", device="cuda")


@pytest.mark.skipif(CUDA, reason="CUDA is available: the error is for machines without it")
def test_cuda_without_cuda_is_a_clear_error():
    for make in (lambda: inertia.engines.get("torch", "float32", device="cuda"),
                 lambda: inertia.Network(2, [inertia.Dense(1)], engine="torch",
                                         device="cuda:0")):
        with pytest.raises(ValueError) as ex:
            make()
        msg = str(ex.value)
        assert "CUDA is not available" in msg and "device='cpu'" in msg and "\n" not in msg


@pytest.mark.skipif(not CUDA, reason="needs a CUDA device")
def test_cuda_training_equals_numpy_float64():       # pragma: no cover - needs a GPU
    X, y = small_data()
    ref = small_net("numpy")
    net = inertia.Network(3, [inertia.Dense(8, "tanh"), inertia.Dense(5, "sigmoid"),
                              inertia.Dense(1, "linear")], seed=3, dtype="float64",
                          engine="torch", device="cuda")
    assert net.params()[0].device.type == "cuda"
    for n, o in ((ref, inertia.SGD(lr=0.05, momentum=0.9, nesterov=True)),
                 (net, inertia.SGD(lr=0.05, momentum=0.9, nesterov=True))):
        inertia.fit(n, X, y, "mse", o, epochs=10, batch_size=16, seed=1, progress=False)
    assert_nets_close(net, ref, 1e-10, "cuda")


# --------------------------------------------------------------------------- imports
def test_importing_inertia_does_not_import_torch():
    code = ("import inertia, sys; assert 'torch' not in sys.modules, 'torch imported'; "
            "assert 'torch' in inertia.engines.ENGINES; "
            "inertia.Network(2, [inertia.Dense(1)]).predict([[1.0, 2.0]]); "
            "assert 'torch' not in sys.modules, 'torch imported by a numpy network'")
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert r.returncode == 0, r.stderr
