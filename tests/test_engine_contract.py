"""Every installed engine against the engine protocol (``inertia.engines.base``).

Every registered engine subclasses ``Engine`` and implements each name of ``PRIMITIVES``
with the protocol's signature (``test_engine_implements_the_protocol``).

Each primitive is checked, for float32 and float64, against a NumPy float64 reference computed
from exactly the values the engine holds (the host copy of the engine array), so the only
difference is the engine's own arithmetic. Engine arrays are made with ``from_host`` and read
back with ``to_host`` only, so the suite also runs unchanged for non-NumPy engines.

Contract points checked besides the values: the output is the object passed in (identity),
inputs are never modified, and ``beta == 0`` never reads the output (NaN there does not
propagate).
"""

from __future__ import annotations

import numpy as np
import pytest
from scipy.special import expit

import inertia

DTYPES = ["float32", "float64"]
RTOL = {"float32": 1e-5, "float64": 1e-12}
TINY = 1e-30

ELEMENTWISE = ["linear", "sigmoid", "tanh", "relu"]
LOSS_FITS = [("mse", a) for a in ELEMENTWISE] + [("quadratic", a) for a in ELEMENTWISE] + [
    ("bce", "sigmoid"), ("cross_entropy", "softmax")]


# --------------------------------------------------------------------------- helpers
@pytest.fixture(params=DTYPES)
def dtype(request):
    return request.param


@pytest.fixture
def e(engine_name, dtype):
    return inertia.engines.get(engine_name, dtype)


def put(e, x):
    """(engine array, float64 host copy of exactly what the engine holds)."""
    arr = e.from_host(np.asarray(x, dtype=np.float64))
    return arr, host(e, arr)


def host(e, arr):
    return np.asarray(e.to_host(arr), dtype=np.float64)


def nan_array(e, shape):
    return e.from_host(np.full(shape, np.nan))


def assert_close(got, ref, dtype, scale=None, what=""):
    """|got - ref| <= rtol * scale elementwise (scale defaults to |ref|)."""
    got = np.asarray(got, dtype=np.float64)
    ref = np.asarray(ref, dtype=np.float64)
    assert got.shape == ref.shape, f"{what}: shape {got.shape} != {ref.shape}"
    assert np.all(np.isfinite(got)), f"{what}: non-finite values in {got}"
    scale = np.abs(ref) if scale is None else np.broadcast_to(np.asarray(scale, float),
                                                              ref.shape)
    err = np.abs(got - ref)
    bound = RTOL[dtype] * scale + TINY
    bad = err > bound
    assert not bad.any(), (f"{what}: max error {err.max():.3g} (relative to scale "
                           f"{(err / np.maximum(scale, TINY)).max():.3g}) exceeds rtol "
                           f"{RTOL[dtype]}\n got {got}\n ref {ref}")


def assert_unchanged(e, arr, before, what="input"):
    np.testing.assert_array_equal(host(e, arr), before, err_msg=f"{what} was modified")


# --------------------------------------------------------------------------- the protocol
@pytest.mark.parametrize("name", list(inertia.engines.ENGINES))
def test_engine_implements_the_protocol(name):
    """Each registered engine's class subclasses Engine and defines every primitive itself,
    taking the protocol's parameters (in order, with the same defaults; extra ones only
    after them, with defaults); the derived loss methods are the protocol's own."""
    import importlib
    import inspect

    from inertia.engines.base import PRIMITIVES, Engine

    mod, cls_name = inertia.engines.ENGINES[name]
    try:
        cls = getattr(importlib.import_module(mod), cls_name)
    except ImportError:
        pytest.skip(f"engine {name} is not installed")
    assert issubclass(cls, Engine), f"{cls_name} does not subclass Engine"
    for prim in PRIMITIVES:
        impl = getattr(cls, prim)
        assert impl is not getattr(Engine, prim), f"{cls_name} does not implement {prim}"
        want = list(inspect.signature(getattr(Engine, prim)).parameters.values())
        got = list(inspect.signature(impl).parameters.values())
        assert [(p.name, p.default) for p in got[:len(want)]] == \
            [(p.name, p.default) for p in want], f"{cls_name}.{prim}: signature {got}"
        assert all(p.default is not inspect.Parameter.empty for p in got[len(want):]), \
            f"{cls_name}.{prim}: extra parameters without defaults"
    for derived in ("loss", "loss_delta_"):
        assert getattr(cls, derived).__qualname__.split(".")[-1] == derived
    public = {n for n in vars(cls) if not n.startswith("_") and callable(vars(cls)[n])}
    assert public <= set(PRIMITIVES) | {"loss"}, \
        f"{cls_name} has primitives outside the protocol: {public - set(PRIMITIVES)}"


# --------------------------------------------------------------------------- memory
def test_engine_attributes(e, dtype):
    assert isinstance(e.name, str) and e.name
    assert np.dtype(e.dtype) == np.dtype(dtype)
    e.synchronize()


def test_zeros_and_empty(e, dtype):
    for shape in [(3,), (4, 5), (1, 1)]:
        z = e.zeros(shape)
        h = e.to_host(z)
        assert h.shape == shape and h.dtype == np.dtype(dtype)
        assert np.all(h == 0)
        m = e.empty(shape)
        hm = e.to_host(m)
        assert hm.shape == shape and hm.dtype == np.dtype(dtype)


def test_from_host_copies_and_converts(e, dtype, rng):
    x = rng.standard_normal((4, 3))
    a = e.from_host(x)
    h = e.to_host(a)
    assert h.dtype == np.dtype(dtype) and h.shape == (4, 3)
    np.testing.assert_array_equal(h, x.astype(dtype))
    x[...] = 123.0                                    # the engine array holds a copy
    np.testing.assert_array_equal(e.to_host(a), h)
    # non-contiguous and integer host inputs
    xt = rng.standard_normal((3, 5)).T
    np.testing.assert_array_equal(e.to_host(e.from_host(xt)), xt.astype(dtype))
    xi = np.arange(6).reshape(2, 3)
    hi = e.to_host(e.from_host(xi))
    assert hi.dtype == np.dtype(dtype)
    np.testing.assert_array_equal(hi, xi.astype(dtype))
    if isinstance(a, np.ndarray):                    # host engines: C-contiguous
        assert a.flags.c_contiguous
        assert e.from_host(xt).flags.c_contiguous


def test_to_host_returns_a_copy(e, rng):
    a, h0 = put(e, rng.standard_normal((3, 4)))
    h = e.to_host(a)
    assert isinstance(h, np.ndarray)
    if isinstance(a, np.ndarray):
        assert not np.shares_memory(h, a)
    h[...] = 7.0                                      # writing the copy leaves the engine alone
    assert_unchanged(e, a, h0, "engine array after writing its to_host copy")


def test_copy(e, rng):
    src, hs = put(e, rng.standard_normal((5, 2)))
    dst = nan_array(e, (5, 2))
    out = e.copy(src, dst)
    assert out is dst
    np.testing.assert_array_equal(host(e, dst), hs)
    assert_unchanged(e, src, hs, "copy src")


def test_take_rows(e, rng):
    x, hx = put(e, rng.standard_normal((6, 3)))
    idx = np.array([4, 0, 4, 2, 5])
    out = nan_array(e, (5, 3))
    r = e.take_rows(x, idx, out)
    assert r is out
    np.testing.assert_array_equal(host(e, out), hx[idx])
    assert_unchanged(e, x, hx, "take_rows x")
    out1 = nan_array(e, (1, 3))
    e.take_rows(x, np.array([3]), out1)
    np.testing.assert_array_equal(host(e, out1), hx[[3]])


# --------------------------------------------------------------------------- BLAS
GEMM_SHAPES = [(5, 7, 3), (1, 4, 1), (6, 1, 2), (2, 3, 8)]
ALPHAS = [1.0, -0.5, 2.5]
BETAS = [0.0, 1.0, 0.75, -2.0]


@pytest.mark.parametrize("trans_a", [False, True])
@pytest.mark.parametrize("trans_b", [False, True])
def test_gemm(e, dtype, rng, trans_a, trans_b):
    for m, k, n in GEMM_SHAPES:
        a_shape = (k, m) if trans_a else (m, k)
        b_shape = (n, k) if trans_b else (k, n)
        for alpha in ALPHAS:
            for beta in BETAS:
                what = f"gemm trans_a={trans_a} trans_b={trans_b} {m}x{k}x{n} " \
                       f"alpha={alpha} beta={beta}"
                a, ha = put(e, rng.standard_normal(a_shape))
                b, hb = put(e, rng.standard_normal(b_shape))
                if beta == 0.0:
                    c, hc = nan_array(e, (m, n)), np.zeros((m, n))
                else:
                    c, hc = put(e, rng.standard_normal((m, n)))
                oa = ha.T if trans_a else ha
                ob = hb.T if trans_b else hb
                ref = alpha * (oa @ ob) + (beta * hc if beta != 0 else 0.0)
                scale = abs(alpha) * (np.abs(oa) @ np.abs(ob)) + abs(beta) * np.abs(hc)
                r = e.gemm(alpha, a, b, beta, c, trans_a=trans_a, trans_b=trans_b)
                assert r is c, f"{what}: did not return the output object"
                assert_close(host(e, c), ref, dtype, scale, what)
                assert_unchanged(e, a, ha, f"{what}: a")
                assert_unchanged(e, b, hb, f"{what}: b")


def test_gemm_default_flags(e, dtype, rng):
    a, ha = put(e, rng.standard_normal((3, 4)))
    b, hb = put(e, rng.standard_normal((4, 2)))
    c = nan_array(e, (3, 2))
    e.gemm(1.0, a, b, 0.0, c)
    assert_close(host(e, c), ha @ hb, dtype, np.abs(ha) @ np.abs(hb), "gemm defaults")


def test_sum_rows(e, dtype, rng):
    for n, k in [(7, 3), (1, 4), (5, 1), (40, 6)]:
        for alpha in ALPHAS:
            for beta in BETAS:
                what = f"sum_rows {n}x{k} alpha={alpha} beta={beta}"
                d, hd = put(e, rng.standard_normal((n, k)))
                if beta == 0.0:
                    out, ho = nan_array(e, (k,)), np.zeros(k)
                else:
                    out, ho = put(e, rng.standard_normal(k))
                ref = alpha * hd.sum(axis=0) + (beta * ho if beta != 0 else 0.0)
                scale = abs(alpha) * np.abs(hd).sum(axis=0) + abs(beta) * np.abs(ho)
                r = e.sum_rows(alpha, d, beta, out)
                assert r is out, f"{what}: did not return the output object"
                assert_close(host(e, out), ref, dtype, scale, what)
                assert_unchanged(e, d, hd, f"{what}: d")


def test_add_row(e, dtype, rng):
    for n, k in [(4, 3), (1, 5), (6, 1)]:
        b, hb = put(e, rng.standard_normal(k))
        z, hz = put(e, rng.standard_normal((n, k)))
        r = e.add_row(b, z)
        assert r is z
        assert_close(host(e, z), hz + hb, dtype, np.abs(hz) + np.abs(hb), "add_row")
        assert_unchanged(e, b, hb, "add_row b")


@pytest.mark.parametrize("shape", [(7,), (3, 4)])
def test_axpy(e, dtype, rng, shape):
    for alpha in ALPHAS + [0.0]:
        x, hx = put(e, rng.standard_normal(shape))
        y, hy = put(e, rng.standard_normal(shape))
        r = e.axpy(alpha, x, y)
        assert r is y
        assert_close(host(e, y), alpha * hx + hy, dtype, abs(alpha) * np.abs(hx) + np.abs(hy),
                     f"axpy alpha={alpha}")
        assert_unchanged(e, x, hx, "axpy x")


@pytest.mark.parametrize("shape", [(7,), (3, 4)])
def test_axpby(e, dtype, rng, shape):
    for alpha in ALPHAS:
        for beta in BETAS + [0.3]:
            what = f"axpby alpha={alpha} beta={beta}"
            x, hx = put(e, rng.standard_normal(shape))
            if beta == 0.0:
                y, hy = nan_array(e, shape), np.zeros(shape)
            else:
                y, hy = put(e, rng.standard_normal(shape))
            ref = alpha * hx + (beta * hy if beta != 0 else 0.0)
            r = e.axpby(alpha, x, beta, y)
            assert r is y, f"{what}: did not return the output object"
            assert_close(host(e, y), ref, dtype, abs(alpha) * np.abs(hx) + abs(beta) * np.abs(hy),
                         what)
            assert_unchanged(e, x, hx, f"{what}: x")


@pytest.mark.parametrize("shape", [(7,), (3, 4)])
def test_scal(e, dtype, rng, shape):
    for alpha in [2.5, -0.5, 1.0, 0.0]:
        x, hx = put(e, rng.standard_normal(shape))
        r = e.scal(alpha, x)
        assert r is x
        assert_close(host(e, x), alpha * hx, dtype, np.abs(alpha * hx), f"scal alpha={alpha}")


# --------------------------------------------------------------------------- verbs
BINARY_REF = {"add": np.add, "sub": np.subtract, "mul": np.multiply, "div": np.divide,
              "maximum": np.maximum, "minimum": np.minimum}
UNARY_REF = {"exp": np.exp, "log": np.log, "log1p": np.log1p, "abs": np.abs,
             "neg": np.negative, "sqrt": np.sqrt}


def _rounding_scale(fn, hx, hy):
    """What one rounding of fn(x, y) is relative to (division: the quotient's size)."""
    if fn in ("add", "sub"):
        return np.abs(hx) + np.abs(hy)
    return np.abs(BINARY_REF[fn](hx, hy))


@pytest.mark.parametrize("fn", list(BINARY_REF))
def test_op(e, dtype, rng, fn):
    """Arrays both sides, a float on either side, an (n, 1) column broadcast, and out
    aliasing an input: one rounding of the float64 result."""
    from inertia.engines.base import BINARY

    assert set(BINARY) == set(BINARY_REF)
    shape = (4, 3)
    x, hx = put(e, away_from_zero(rng, shape))
    y, hy = put(e, away_from_zero(rng, shape))
    col, hcol = put(e, away_from_zero(rng, (4, 1)))
    c = 0.75
    for what, a, ha, b, hb in [("arrays", x, hx, y, hy), ("float first", c, c, y, hy),
                               ("float second", x, hx, c, c), ("column", x, hx, col, hcol)]:
        out = nan_array(e, shape)
        r = e.op_(fn, a, b, out)
        assert r is out, f"op_ {fn} {what}: did not return out"
        ref = BINARY_REF[fn](ha, hb)
        assert_close(host(e, out), ref, dtype, _rounding_scale(fn, ha, hb), f"op_ {fn} {what}")
    assert_unchanged(e, x, hx, f"op_ {fn} x")
    assert_unchanged(e, y, hy, f"op_ {fn} y")
    r = e.op_(fn, x, y, x)                                  # out aliases x
    assert r is x
    assert_close(host(e, x), BINARY_REF[fn](hx, hy), dtype, _rounding_scale(fn, hx, hy),
                 f"op_ {fn} in place")


@pytest.mark.parametrize("fn", list(UNARY_REF))
def test_map(e, dtype, rng, fn):
    from inertia.engines.base import UNARY

    assert set(UNARY) == set(UNARY_REF)
    x, hx = put(e, rng.uniform(0.1, 3.0, (5, 3)) * (1 if fn in ("log", "log1p", "sqrt") else
                                                     rng.choice([-1.0, 1.0], (5, 3))))
    out = nan_array(e, (5, 3))
    assert e.map_(fn, x, out) is out
    ref = UNARY_REF[fn](hx)
    scale = np.abs(ref)                         # x is exactly what the engine holds
    assert_close(host(e, out), ref, dtype, scale, f"map_ {fn}")
    assert_unchanged(e, x, hx, f"map_ {fn} x")
    assert e.map_(fn, x, x) is x
    assert_close(host(e, x), ref, dtype, scale, f"map_ {fn} in place")


@pytest.mark.parametrize("shape", [(7, 3), (1, 4), (5, 1)])
def test_row_sum_row_max_total(e, dtype, rng, shape):
    x, hx = put(e, rng.standard_normal(shape))
    out = nan_array(e, (shape[0], 1))
    assert e.row_sum(x, out) is out
    assert_close(host(e, out), hx.sum(axis=1, keepdims=True), dtype,
                 np.abs(hx).sum(axis=1, keepdims=True), "row_sum")
    out = nan_array(e, (shape[0], 1))
    assert e.row_max(x, out) is out
    np.testing.assert_array_equal(host(e, out), hx.max(axis=1, keepdims=True))
    t = e.total(x)
    assert type(t) is float
    assert_close(t, hx.sum(), dtype, np.abs(hx).sum(), "total")
    assert_unchanged(e, x, hx, "row_sum/row_max/total x")


@pytest.mark.parametrize("shape", [(7, 3), (1, 4), (5, 1)])
def test_dot(e, dtype, rng, shape):
    x, hx = put(e, rng.standard_normal(shape))
    y, hy = put(e, rng.standard_normal(shape))
    t = e.dot(x, y)
    assert type(t) is float
    assert_close(t, float((hx * hy).sum()), dtype, float(np.abs(hx * hy).sum()), "dot")
    assert e.dot(x, x) == pytest.approx(float((hx * hx).sum()), rel=1e-5 if dtype == "float32"
                                        else 1e-12)
    assert_unchanged(e, x, hx, "dot x")
    assert_unchanged(e, y, hy, "dot y")


def test_tmp_is_kept_per_shape_and_slot(e):
    a, b = e.tmp((3, 2)), e.tmp((3, 2), 1)
    assert a is e.tmp((3, 2)) and b is e.tmp((3, 2), 1) and a is not b
    assert tuple(e.to_host(a).shape) == (3, 2) and e.to_host(a).dtype == np.dtype(e.dtype)


# --------------------------------------------------------------------------- activations
def f_ref(name, z):
    """Reference activations in float64."""
    if name == "linear":
        return z.copy()
    if name == "sigmoid":
        return expit(z)
    if name == "tanh":
        return np.tanh(z)
    if name == "relu":
        return np.maximum(z, 0.0)
    if name == "softmax":
        s = np.exp(z - z.max(axis=1, keepdims=True))
        return s / s.sum(axis=1, keepdims=True)
    raise AssertionError(name)


def fprime_from_output(name, a):
    """f'(z) written in terms of a = f(z)."""
    if name == "linear":
        return np.ones_like(a)
    if name == "sigmoid":
        return a * (1.0 - a)
    if name == "tanh":
        return 1.0 - a * a
    if name == "relu":
        return (a > 0).astype(np.float64)
    raise AssertionError(name)


def fprime_from_input(name, z):
    if name == "linear":
        return np.ones_like(z)
    if name == "sigmoid":
        s = expit(z)
        return s * (1.0 - s)
    if name == "tanh":
        return 1.0 / np.cosh(z) ** 2
    if name == "relu":
        return (z > 0).astype(np.float64)
    raise AssertionError(name)


def away_from_zero(rng, shape, lo=0.05, hi=3.0):
    return rng.uniform(lo, hi, shape) * rng.choice([-1.0, 1.0], shape)


@pytest.mark.parametrize("name", ELEMENTWISE + ["softmax"])
def test_activate(e, dtype, rng, name):
    for shape in [(5, 4), (1, 3), (6, 1)]:
        if name == "softmax" and shape[1] == 1:
            continue
        z, hz = put(e, rng.uniform(-4, 4, shape))
        r = e.activate_(name, z)
        assert r is z
        ref = f_ref(name, hz)
        assert_close(host(e, z), ref, dtype, what=f"activate_ {name} {shape}")


@pytest.mark.parametrize("name", ELEMENTWISE + ["softmax"])
def test_activate_large_inputs(e, dtype, name):
    hz = np.array([[1000.0, -1000.0, 0.5], [-800.0, 700.0, 999.0], [80.0, -80.0, -1000.0]])
    z, hz = put(e, hz)
    e.activate_(name, z)
    got = host(e, z)
    assert np.all(np.isfinite(got)), f"activate_ {name} on large inputs gave {got}"
    ref = f_ref(name, hz)
    assert_close(got, ref, dtype, np.maximum(np.abs(ref), 1e-300), f"activate_ {name} large")


def test_softmax_rows(e, dtype, rng):
    hz = rng.uniform(-5, 5, (6, 4))
    z, hz = put(e, hz)
    r = e.activate_("softmax", z)
    assert r is z
    got = host(e, z)
    assert_close(got, f_ref("softmax", hz), dtype, what="activate_('softmax')")
    assert_close(got.sum(axis=1), np.ones(6), dtype, what="softmax rows sum")


def test_softmax_rows_stable(e, dtype):
    hz = np.array([[1000.0, 1001.0, 1002.0],
                   [1000.0, 1000.0, 1000.0],
                   [-1000.0, 0.0, 1000.0],
                   [-1000.0, -1001.0, -999.0],
                   [3.0e4, -3.0e4, 0.0]])
    z, hz = put(e, hz)
    e.activate_("softmax", z)
    got = host(e, z)
    assert np.all(np.isfinite(got)), f"softmax overflowed: {got}"
    assert_close(got.sum(axis=1), np.ones(len(hz)), dtype, what="softmax rows sum (large)")
    ref = f_ref("softmax", hz)
    assert_close(got, ref, dtype, np.maximum(ref, 1e-300), "softmax large")
    np.testing.assert_allclose(got[1], [1 / 3] * 3, rtol=RTOL[dtype])
    assert got[2, 2] == pytest.approx(1.0, rel=RTOL[dtype])


@pytest.mark.parametrize("name", ELEMENTWISE)
def test_activate_backward(e, dtype, rng, name):
    shape = (6, 4)
    hz_in = away_from_zero(rng, shape, 0.05, 2.0)     # relu: no kink; sigmoid/tanh: no saturation
    a, ha = put(e, f_ref(name, hz_in))
    delta, hd = put(e, rng.standard_normal(shape))
    r = e.activate_backward_(name, a, delta)
    assert r is delta
    got = host(e, delta)
    ref = hd * fprime_from_output(name, ha)
    # sigmoid/tanh compute f' = a - a^2 / 1 - a^2 with cancellation: scale by |delta|
    assert_close(got, ref, dtype, np.abs(hd), f"activate_backward_ {name}")
    if dtype == "float64":                             # and the analytic derivative in z
        ref_z = hd * fprime_from_input(name, hz_in)
        assert_close(got, ref_z, dtype, 10 * np.abs(hd), f"activate_backward_ {name} vs f'(z)")
    assert_unchanged(e, a, ha, f"activate_backward_ {name} a")


def test_activate_backward_relu_zero_output(e, dtype):
    # a = relu(z) = 0 for z <= 0: the derivative is 0 there
    a, ha = put(e, np.array([[0.0, 2.0, 0.0, 0.5]]))
    delta, _ = put(e, np.array([[3.0, -4.0, 5.0, 6.0]]))
    e.activate_backward_("relu", a, delta)
    np.testing.assert_array_equal(host(e, delta), [[0.0, -4.0, 0.0, 6.0]])


# --------------------------------------------------------------------------- losses
def loss_case(rng, loss, act, n=5, k=3):
    """Host z, a = f(z) and targets y (float64) for one (loss, activation) pair."""
    if act == "relu":
        z = away_from_zero(rng, (n, k), 0.05, 2.0)
    else:
        z = rng.uniform(-2.5, 2.5, (n, k))
    if loss == "bce":
        y = rng.uniform(0, 1, (n, k))
        y[0] = np.round(y[0])                          # hard and soft targets
    elif loss == "cross_entropy":
        y = np.zeros((n, k))
        y[np.arange(n), rng.integers(0, k, n)] = 1.0
    else:
        y = rng.standard_normal((n, k))
    return z, f_ref(act, z), y


def loss_ref(loss, z, a, y):
    n, k = z.shape
    if loss == "mse":
        return np.sum((a - y) ** 2) / (n * k)
    if loss == "quadratic":
        return np.sum((a - y) ** 2) / (2 * n)
    if loss == "bce":
        # -(y log s(z) + (1 - y) log(1 - s(z))), with log s(z) = -log(1 + e^-z)
        return np.sum(y * np.logaddexp(0, -z) + (1 - y) * np.logaddexp(0, z)) / (n * k)
    if loss == "cross_entropy":
        lse = np.log(np.sum(np.exp(z - z.max(axis=1, keepdims=True)), axis=1)) + z.max(axis=1)
        return np.sum(lse * y.sum(axis=1) - np.sum(y * z, axis=1)) / n
    raise AssertionError(loss)


def loss_delta_ref(loss, act, a, y):
    n, k = a.shape
    if loss == "mse":
        return 2.0 * (a - y) / (n * k) * fprime_from_output(act, a)
    if loss == "quadratic":
        return (a - y) / n * fprime_from_output(act, a)
    if loss == "bce":
        return (a - y) / (n * k)
    if loss == "cross_entropy":
        return (a - y) / n
    raise AssertionError(loss)


@pytest.mark.parametrize("loss,act", LOSS_FITS)
def test_loss_value(e, dtype, rng, loss, act):
    hz, ha, hy = loss_case(rng, loss, act)
    z, hz = put(e, hz)
    a, ha = put(e, ha)
    y, hy = put(e, hy)
    v = e.loss(loss, z, a, y)
    assert type(v) is float
    # mse/quadratic from the output a, bce/cross-entropy from the logits z (as documented)
    ref = loss_ref(loss, hz, ha, hy)
    assert_close(v, ref, dtype, what=f"loss {loss} on {act}")
    for arr, h, nm in [(z, hz, "z"), (a, ha, "a"), (y, hy, "y")]:
        assert_unchanged(e, arr, h, f"loss {loss} {nm}")


@pytest.mark.parametrize("loss,act", LOSS_FITS)
def test_loss_delta(e, dtype, rng, loss, act):
    hz, ha, hy = loss_case(rng, loss, act)
    z, hz = put(e, hz)
    a, ha = put(e, ha)
    y, hy = put(e, hy)
    delta = nan_array(e, ha.shape)                      # the output's contents are never read
    r = e.loss_delta_(loss, act, z, a, y, delta)
    assert r is delta
    ref = loss_delta_ref(loss, act, ha, hy)
    n, k = ha.shape
    scale = (np.abs(ha) + np.abs(hy)) / n * (2 if loss == "mse" else 1) + np.abs(ref)
    assert_close(host(e, delta), ref, dtype, scale, f"loss_delta_ {loss} on {act}")
    for arr, h, nm in [(z, hz, "z"), (a, ha, "a"), (y, hy, "y")]:
        assert_unchanged(e, arr, h, f"loss_delta_ {loss} {nm}")


def test_loss_delta_is_gradient_of_loss(engine_name, rng):
    """float64 only: loss_delta_ is dL/dz by central differences of loss (a = f(z))."""
    e = inertia.engines.get(engine_name, "float64")
    for loss, act in LOSS_FITS:
        hz, _, hy = loss_case(rng, loss, act, n=3, k=3)
        y, hy = put(e, hy)

        def L(zz):
            return e.loss(loss, e.from_host(zz), e.from_host(f_ref(act, zz)), y)

        delta = e.zeros(hz.shape)
        e.loss_delta_(loss, act, e.from_host(hz), e.from_host(f_ref(act, hz)), y, delta)
        num = np.zeros_like(hz)
        eps = 1e-6
        for idx in np.ndindex(hz.shape):
            zp, zm = hz.copy(), hz.copy()
            zp[idx] += eps
            zm[idx] -= eps
            num[idx] = (L(zp) - L(zm)) / (2 * eps)
        np.testing.assert_allclose(host(e, delta), num, rtol=1e-6, atol=1e-9,
                                   err_msg=f"loss_delta_ {loss} on {act}")


def test_bce_and_cross_entropy_finite_when_saturated(e, dtype):
    hz = np.array([[40.0], [-40.0], [3.0]])
    z, hz = put(e, hz)
    a, _ = put(e, expit(hz))
    y, hy = put(e, np.array([[0.0], [1.0], [1.0]]))
    v = e.loss("bce", z, a, y)
    assert np.isfinite(v)
    assert_close(v, loss_ref("bce", hz, expit(hz), hy), dtype, what="bce")
    hz2 = np.array([[1000.0, 0.0, -1000.0], [0.0, 1000.0, 999.0]])
    z2, hz2 = put(e, hz2)
    a2, _ = put(e, f_ref("softmax", hz2))
    y2, hy2 = put(e, np.array([[0.0, 0.0, 1.0], [0.0, 0.0, 1.0]]))
    v2 = e.loss("cross_entropy", z2, a2, y2)
    assert np.isfinite(v2)
    assert_close(v2, loss_ref("cross_entropy", hz2, f_ref("softmax", hz2), hy2), dtype,
                 what="cross_entropy large logits")
