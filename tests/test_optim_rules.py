"""The momentum update rules: hand-worked examples, momentum at no extra engine cost, the fused
training step against the unfused gradient-then-step loop, hyperparameter validation and the
algebraic identities between conventions."""

from __future__ import annotations

from collections import Counter

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays

import inertia
from inertia import SGD, Dense, Network
from inertia.optim import CONVENTIONS

HEAVY_BALL = ["pytorch", "tf1", "optax", "ema", "keras", "sklearn", "neanderthal",
              "previous_delta"]


def one_line(excinfo):
    msg = str(excinfo.value)
    assert msg and "\n" not in msg, f"not a one-line message: {msg!r}"
    return msg


# =========================================================================== a. previous_delta
def test_previous_delta_hand_worked_example():
    # From the online-training source: lr = 0.01, momentum = 0.5, w starts at 3.516.
    opt = SGD(0.01, momentum=0.5, convention="previous_delta")
    w = np.array([[3.516]])
    state = opt.init([w])
    # step 1: g = -4.4; delta = lr * g = 0.01 * -4.4 = -0.044; no previous delta (0)
    #         w := w - delta - mu * 0 = 3.516 + 0.044 = 3.56
    opt.step([w], [np.array([[-4.4]])], state)
    assert w[0, 0] == pytest.approx(3.56, rel=1e-12, abs=0)
    assert state.velocity[0][0, 0] == pytest.approx(-0.044, rel=1e-12)   # stores lr * g
    # step 2: g = -2.70; delta = 0.01 * -2.70 = -0.027; previous delta -0.044
    #         w := 3.56 - (-0.027) - 0.5 * (-0.044) = 3.56 + 0.027 + 0.022 = 3.609
    opt.step([w], [np.array([[-2.70]])], state)
    assert w[0, 0] == pytest.approx(3.609, rel=1e-12, abs=0)
    assert state.velocity[0][0, 0] == pytest.approx(-0.027, rel=1e-12)
    assert state.step == 2


def test_previous_delta_design_form():
    # DESIGN's form: w = 3.56, lr 0.01, gradient step 2.70 (descent direction, g = -2.70),
    # mu 0.5, previous delta 0.044 (a step of +0.044, stored as lr * g_prev = -0.044):
    #   w := 3.56 + 0.01 * 2.70 + 0.5 * 0.044 = 3.56 + 0.027 + 0.022 = 3.609
    opt = SGD(0.01, momentum=0.5, convention="previous_delta")
    w = np.array([[3.56]])
    state = opt.init([w])
    state.velocity[0][...] = -0.044
    state.step, state.started = 1, True
    opt.step([w], [np.array([[-2.70]])], state)
    assert w[0, 0] == pytest.approx(3.609, rel=1e-12, abs=0)


def test_previous_delta_bias_takes_the_same_rule():
    # a 1-D parameter (a bias) follows the same arithmetic as the weight above
    opt = SGD(0.01, momentum=0.5, convention="previous_delta")
    b = np.array([3.516])
    state = opt.init([b])
    opt.step([b], [np.array([-4.4])], state)
    opt.step([b], [np.array([-2.70])], state)
    assert b[0] == pytest.approx(3.609, rel=1e-12, abs=0)


# =========================================================================== b. neanderthal
def test_neanderthal_hand_worked_example():
    # V = mu V - lr g;  W = (1 - lr lambda / n) W + V;  b -= lr g_b (no momentum, no decay)
    # lr = 0.1, mu = 0.5, lambda = 0.2, n = 4  ->  decay factor 1 - 0.1 * 0.2 / 4 = 0.995
    opt = SGD(0.1, momentum=0.5, weight_decay=0.2, convention="neanderthal")
    W = np.array([[1.0]])
    b = np.array([0.5])
    state = opt.init([W, b])
    # step 1: gW = 2.0, gb = 1.0
    #   V = 0.5 * 0 - 0.1 * 2.0 = -0.2
    #   W = 0.995 * 1.0 + (-0.2) = 0.795
    #   b = 0.5 - 0.1 * 1.0 = 0.4
    opt.step([W, b], [np.array([[2.0]]), np.array([1.0])], state, n=4)
    assert state.velocity[0][0, 0] == pytest.approx(-0.2, rel=1e-12)
    assert W[0, 0] == pytest.approx(0.795, rel=1e-12)
    assert b[0] == pytest.approx(0.4, rel=1e-12)
    # step 2: gW = -3.0, gb = 0.5
    #   V = 0.5 * (-0.2) - 0.1 * (-3.0) = -0.1 + 0.3 = 0.2
    #   W = 0.995 * 0.795 + 0.2 = 0.791025 + 0.2 = 0.991025
    #   b = 0.4 - 0.1 * 0.5 = 0.35
    opt.step([W, b], [np.array([[-3.0]]), np.array([0.5])], state, n=4)
    assert state.velocity[0][0, 0] == pytest.approx(0.2, rel=1e-12)
    assert W[0, 0] == pytest.approx(0.991025, rel=1e-12)
    assert b[0] == pytest.approx(0.35, rel=1e-12)
    assert state.velocity[1][0] == 0.0                 # the bias has no velocity


def test_neanderthal_needs_n_for_weight_decay():
    opt = SGD(0.1, momentum=0.5, weight_decay=0.2, convention="neanderthal")
    W = np.array([[1.0]])
    state = opt.init([W])
    with pytest.raises(ValueError) as ei:
        opt.step([W], [np.array([[2.0]])], state)
    one_line(ei)


# =========================================================================== c. no extra cost
class CountingEngine:
    """Forwards every attribute to the real engine and counts calls of each primitive."""

    def __init__(self, inner):
        self._inner = inner
        self.counts = Counter()

    def __getattr__(self, name):
        attr = getattr(self._inner, name)
        if callable(attr) and not name.startswith("_"):
            def counted(*args, **kwargs):
                self.counts[name] += 1
                return attr(*args, **kwargs)
            return counted
        return attr


def _data(n=40, n_in=4, n_out=2, seed=0):
    rng = np.random.default_rng(seed)
    return rng.standard_normal((n, n_in)), rng.standard_normal((n, n_out))


LAYOUTS = {
    "1 layer": [Dense(2, "linear")],
    "3 layers": [Dense(6, "tanh"), Dense(5, "relu"), Dense(2, "linear")],
}


def _count_fit(conv, mu, wd, batch_size, layers, X, y):
    net = Network(X.shape[1], layers, seed=1, dtype="float64")
    net.e = CountingEngine(net.e)
    opt = SGD(0.01, momentum=mu, weight_decay=wd, convention=conv)
    inertia.fit(net, X, y, "mse", opt, epochs=1, batch_size=batch_size, progress=False,
                seed=0, compiled=False)
    first = Counter(net.e.counts)                      # includes one-off allocations
    net.e.counts.clear()
    inertia.fit(net, X, y, "mse", opt, epochs=1, batch_size=batch_size, progress=False,
                seed=0, compiled=False)
    return first, Counter(net.e.counts)


@pytest.mark.parametrize("layout", list(LAYOUTS))
@pytest.mark.parametrize("batch_size", [None, 16])
@pytest.mark.parametrize("conv", HEAVY_BALL)
def test_momentum_at_no_extra_cost(conv, batch_size, layout):
    X, y = _data()
    layers = LAYOUTS[layout]
    L = len(layers)
    steps = 1 if batch_size is None else -(-len(X) // batch_size)    # 40 / 16 -> 3 batches
    decays = [0.0] if CONVENTIONS[conv].weight_decay is None else [0.0, 1e-3]
    for wd in decays:
        first0, epoch0 = _count_fit(conv, 0.0, wd, batch_size, layers, X, y)
        first9, epoch9 = _count_fit(conv, 0.9, wd, batch_size, layers, X, y)
        what = f"{conv}, batch_size={batch_size}, {layout}, weight_decay={wd}"
        # same calls, primitive by primitive, with and without momentum
        assert epoch9 == epoch0, f"{what}: momentum 0.9 {dict(epoch9)} vs 0 {dict(epoch0)}"
        assert first9 == first0, f"{what}: first epoch {dict(first9)} vs {dict(first0)}"
        assert sum(epoch9.values()) == sum(epoch0.values())
        # gemm per step: L forward + L weight gradients (momentum fused in) + L - 1 deltas
        assert epoch9["gemm"] == steps * (3 * L - 1), f"{what}: {epoch9['gemm']} gemm calls"
        assert first9["gemm"] == steps * (3 * L - 1)


# =========================================================================== d. fused = unfused
def _flat(pairs):
    return [np.array(x, dtype=np.float64) for wb in pairs for x in wb]


def _pairs(flat):
    return [(flat[i], flat[i + 1]) for i in range(0, len(flat), 2)]


def _fused_cases():
    for conv in HEAVY_BALL:
        c = CONVENTIONS[conv]
        nesterovs = [False] if c.nesterov is None else [False, True]
        for nest in nesterovs:
            yield conv, nest, 0.0
        if c.dampening:
            yield conv, False, 0.3


FUSED_CASES = list(_fused_cases())


def _weight_decay(conv):
    c = CONVENTIONS[conv]
    if c.weight_decay is None:
        return 0.0
    return 2.0 if c.decay_per_n else 0.05             # per-n conventions: 2 / 40 = 0.05


@pytest.mark.parametrize("batch_size", [None, 16])
@pytest.mark.parametrize("conv,nesterov,dampening", FUSED_CASES)
def test_fused_equals_unfused(conv, nesterov, dampening, batch_size):
    X, y = _data(n=40, n_in=4, n_out=2, seed=5)
    layers = [Dense(6, "tanh"), Dense(5, "sigmoid"), Dense(2, "linear")]
    kw = dict(lr=0.05, momentum=0.9, dampening=dampening, nesterov=nesterov,
              weight_decay=_weight_decay(conv), convention=conv)
    net = Network(4, layers, seed=2, dtype="float64")
    net2 = net.copy()
    w_start = _flat(net.parameters())

    # fused: fit (momentum folded into the gradient gemm), shuffle off for mini-batches
    opt = SGD(**kw)
    epochs = 30 if batch_size is None else 10          # 30 steps either way
    hist = inertia.fit(net, X, y, "mse", opt, epochs=epochs, batch_size=batch_size,
                       shuffle=False, progress=False)

    # unfused: gradient at the (look-ahead) point, then the functional step
    opt2 = SGD(**kw)
    params = _flat(net2.parameters())
    state = opt2.init(params)
    bs = len(X) if batch_size is None else batch_size
    batch_losses = []
    for _ in range(epochs):
        for s in range(0, len(X), bs):
            Xb, yb = X[s:s + bs], y[s:s + bs]
            at = opt2.lookahead_point(params, state) if opt2.lookahead else params
            net2.set_parameters(_pairs(at))
            value, grads = net2.gradients(Xb, yb, "mse")
            batch_losses.append(value)
            opt2.step(params, _flat(grads), state, n=len(Xb))
        net2.set_parameters(_pairs(params))
    assert state.step == 30 == opt.state.step

    fused = _flat(net.parameters())
    assert any(np.abs(f - s).max() > 1e-3 for f, s in zip(fused, w_start)), "did not train"
    for i, (f, u) in enumerate(zip(fused, params)):
        np.testing.assert_allclose(f, u, rtol=1e-10, atol=1e-10 * np.abs(u).max(),
                                   err_msg=f"parameter {i} ({kw}, batch_size={batch_size})")
    epoch_losses = np.array(batch_losses).reshape(epochs, -1).mean(axis=1)
    np.testing.assert_allclose(hist.loss, epoch_losses, rtol=1e-10)
    for v1, v2 in zip(opt.state.velocity, state.velocity):
        np.testing.assert_allclose(net.e.to_host(v1), v2, rtol=1e-10,
                                   atol=1e-10 * max(np.abs(v2).max(), 1e-300))


# =========================================================================== e. bad hyperparameters
BAD = [
    dict(lr=0.0),
    dict(lr=-0.01),
    dict(lr=float("nan")),
    dict(lr=0.1, momentum=-0.1),
    dict(lr=0.1, momentum=1.0),
    dict(lr=0.1, momentum=1.5),
    dict(lr=0.1, momentum=float("inf")),
    dict(lr=0.1, momentum=0.9, dampening=-0.1),
    dict(lr=0.1, momentum=0.9, dampening=1.5),
    dict(lr=0.1, momentum=0.9, dampening=0.1, nesterov=True),
    dict(lr=0.1, nesterov=True),
    dict(lr=0.1, momentum=0.0, nesterov=True),
    dict(lr=0.1, weight_decay=-1e-4),
    dict(lr=0.1, convention="adam"),
    dict(lr=0.1, momentum=0.9, weight_decay=1e-4, convention="previous_delta"),
    dict(lr=0.1, momentum=0.9, nesterov=True, convention="previous_delta"),
] + [dict(lr=0.1, momentum=0.9, dampening=0.1, convention=c) for c in CONVENTIONS
     if c != "pytorch"]


@pytest.mark.parametrize("kw", BAD, ids=lambda kw: ",".join(f"{k}={v}" for k, v in kw.items()))
def test_bad_hyperparameters_raise(kw):
    with pytest.raises(ValueError) as ei:
        SGD(**kw)
    one_line(ei)
    # set() validates the same way and leaves the optimizer unchanged
    conv = kw.get("convention", "pytorch")
    if conv in CONVENTIONS:
        opt = SGD(0.1, convention=conv)
        before = opt.config()
        changes = {k: v for k, v in kw.items() if k != "convention"}
        with pytest.raises(ValueError) as ei:
            opt.set(**changes)
        one_line(ei)
        assert opt.config() == before


@pytest.mark.parametrize("kw", [
    dict(lr=1e-9), dict(lr=0.1, momentum=0.0), dict(lr=0.1, momentum=0.999),
    dict(lr=0.1, momentum=0.9, dampening=1.0), dict(lr=0.1, momentum=0.9, dampening=0.0),
    dict(lr=0.1, momentum=0.9, nesterov=True, weight_decay=0.1),
    dict(lr=0.1, momentum=0.9, convention="previous_delta"),
])
def test_boundary_hyperparameters_accepted(kw):
    SGD(**kw)


def test_bad_schedule_hyperparameters_raise_before_training():
    X, y = _data(n=8)
    net = Network(4, [Dense(2)], dtype="float64")
    before = net.parameters()
    with pytest.raises(ValueError) as ei:
        inertia.fit(net, X, y, "mse", SGD(0.1, momentum=0.9),
                    schedule=[(2, {"lr": 0.1}), (2, {"momentum": 1.0})], progress=False)
    one_line(ei)
    for (w0, b0), (w1, b1) in zip(before, net.parameters()):
        np.testing.assert_array_equal(w0, w1)
        np.testing.assert_array_equal(b0, b1)


# =========================================================================== f. identities
def _trajectory(opt, grads, shapes, w0):
    params = [np.array(w, copy=True) for w in w0]
    state = opt.init(params)
    out = []
    for g in grads:
        gs, k = [], 0
        for s in shapes:
            size = int(np.prod(s))
            gs.append(g[k:k + size].reshape(s).copy())
            k += size
        opt.step(params, gs, state, n=7)
        out.append([p.copy() for p in params])
    return out


def _assert_same_trajectory(t1, t2, what):
    scale = max(1.0, max(np.abs(p).max() for step in t1 + t2 for p in step))
    for k, (s1, s2) in enumerate(zip(t1, t2)):
        for p1, p2 in zip(s1, s2):
            np.testing.assert_allclose(p1, p2, rtol=1e-9, atol=1e-9 * scale,
                                       err_msg=f"{what}, step {k}")


SHAPES = [(2, 3), (3,)]
W0 = [np.array([[0.5, -1.0, 2.0], [0.0, 0.25, -0.75]]), np.array([0.1, -0.2, 0.3])]

hyper = dict(
    lr=st.floats(1e-4, 1.0),
    mu=st.floats(0.0, 0.99),
    wd=st.one_of(st.just(0.0), st.floats(1e-6, 1e-2)),
    nesterov=st.booleans(),
    grads=st.integers(1, 25).flatmap(
        lambda k: arrays(np.float64, (k, 9), elements=st.floats(-10, 10))),
)


@settings(max_examples=60, deadline=None)
@given(**hyper)
def test_ema_equals_tf1_with_scaled_lr(lr, mu, wd, nesterov, grads):
    # ema: v = mu v + (1 - mu)(g + wd w), w -= lr v.  With v = (1 - mu) b this is
    # tf1: b = mu b + (g + wd w), w -= lr (1 - mu) b, b starting at zero.
    nesterov = nesterov and mu > 0
    ema = SGD(lr, momentum=mu, weight_decay=wd, nesterov=nesterov, convention="ema")
    tf1 = SGD(lr * (1 - mu), momentum=mu, weight_decay=wd, nesterov=nesterov,
              convention="tf1")
    _assert_same_trajectory(_trajectory(ema, grads, SHAPES, W0),
                            _trajectory(tf1, grads, SHAPES, W0),
                            f"ema(lr={lr}, mu={mu}, wd={wd}, nesterov={nesterov}) vs tf1")


@settings(max_examples=60, deadline=None)
@given(**{k: v for k, v in hyper.items() if k != "wd"})
def test_keras_equals_tf1_without_weight_decay(lr, mu, nesterov, grads):
    # keras: v = mu v - lr g, w += v;  tf1: b = mu b + g, w -= lr b.  At constant lr,
    # v_keras = -lr b_tf1 at every step, so the weights agree (Nesterov forms too).
    nesterov = nesterov and mu > 0
    keras = SGD(lr, momentum=mu, nesterov=nesterov, convention="keras")
    tf1 = SGD(lr, momentum=mu, nesterov=nesterov, convention="tf1")
    tk = _trajectory(keras, grads, SHAPES, W0)
    tt = _trajectory(tf1, grads, SHAPES, W0)
    _assert_same_trajectory(tk, tt, f"keras(lr={lr}, mu={mu}, nesterov={nesterov}) vs tf1")


def test_hyperparameter_set_on_its_attribute_reaches_the_next_step():
    # SGD keeps each step's engine calls for a run of steps; a hyperparameter set straight
    # on its attribute must still change the next step, exactly as ``set`` does, and a
    # pickled optimizer goes on with the same steps
    import pickle

    rng = np.random.default_rng(3)
    w0 = rng.standard_normal((3, 2))
    grads = [rng.standard_normal((3, 2)) for _ in range(4)]

    def run(change):
        opt = SGD(0.1, momentum=0.9)
        w = w0.copy()
        state = opt.init([w])
        for g in grads[:2]:                   # past the first step: the steady step's calls
            opt.step([w], [g], state)
        opt, state = change(opt, state)
        for g in grads[2:]:
            opt.step([w], [g], state)
        return w

    def by_attribute(opt, state):
        opt.lr, opt.momentum = 0.05, 0.5
        return opt, state

    kept = run(lambda opt, state: (opt, state))
    by_set = run(lambda opt, state: (opt.set(lr=0.05, momentum=0.5), state))
    assert not np.array_equal(kept, by_set)
    assert np.array_equal(run(by_attribute), by_set)
    assert np.array_equal(run(lambda *pair: pickle.loads(pickle.dumps(pair))), kept)
