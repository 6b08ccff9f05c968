"""Nesterov momentum in its two coordinates, and momentum correction.

Look-ahead form (Neanderthal convention): the iterate w is stored and the gradient is taken at
u = w + mu v (``opt.lookahead_point``); v = mu v - lr g(u), w += v.
Reparameterised form (Keras; PyTorch / TF1 with v = -lr b): u itself is stored and the gradient
is taken at u; v = mu v - lr g(u), u += mu v - lr g(u).

1. On a quadratic g = A w + c with weight matrices only (Neanderthal's biases take plain SGD
   steps, so they are left out), both forms visit the same look-ahead points for 50 steps:
   ``to_reparameterised(look_opt, w, look_state)`` == u after every step, ``to_lookahead``
   inverts it, and the velocities agree (v = -lr b for PyTorch / TF1).
2. Network level: Keras Nesterov vs Neanderthal Nesterov satisfy W_keras = W_nean + mu V_nean
   after every epoch. Neanderthal biases get no momentum while Keras biases do, so the
   comparison uses data on which every bias gradient vanishes (an odd network, tanh hidden
   layer and linear output with zero biases, on data symmetric under (x, y) -> (-x, -y); or a
   linear layer on centred data): the biases stay 0 in both, and the relation is exact for
   the weights. On ordinary data the biases differ and so, through them, do the weights.
3. Momentum correction under an lr schedule: Keras with correction == TF1 / PyTorch without
   (v = -lr b exactly); PyTorch with correction == Keras without; without correction the two
   forms differ.
"""

import numpy as np
import pytest

import inertia
from inertia.optim.nesterov import to_lookahead, to_reparameterised

SHAPES = [(3, 4), (2, 5)]
STEPS = 50
N = 10          # the batch size the per-n conventions ask for (no effect: weight decay is 0)
RTOL, ATOL = 1e-11, 1e-12


def _quadratic(seed=0):
    """g(w) = A w + c on the concatenation of the weight matrices; A symmetric positive
    definite with eigenvalues in [0.1, 2]."""
    rng = np.random.default_rng(seed)
    d = sum(int(np.prod(s)) for s in SHAPES)
    Q, _ = np.linalg.qr(rng.standard_normal((d, d)))
    A = Q @ np.diag(np.linspace(0.1, 2.0, d)) @ Q.T
    c = rng.standard_normal(d)

    def grad(params):
        z = np.concatenate([p.ravel() for p in params])
        g = A @ z + c
        out, k = [], 0
        for s in SHAPES:
            m = int(np.prod(s))
            out.append(g[k:k + m].reshape(s))
            k += m
        return out

    w0 = [rng.standard_normal(s) for s in SHAPES]
    return grad, w0


def _close(got, want, msg=""):
    assert len(got) == len(want)
    for k, (a, b) in enumerate(zip(got, want)):
        np.testing.assert_allclose(a, b, rtol=RTOL, atol=ATOL, err_msg=f"{msg} array {k}")


def _lr_at(t, lrs):
    return lrs[(t // 10) % len(lrs)]


@pytest.mark.parametrize("mu", [0.9, 0.5])
@pytest.mark.parametrize("lr_change", [False, True], ids=["const-lr", "lr-change"])
def test_keras_and_lookahead_visit_the_same_points(mu, lr_change):
    grad, w0 = _quadratic()
    lrs = [0.1, 0.05, 0.2] if lr_change else [0.1]
    look = inertia.SGD(lrs[0], momentum=mu, nesterov=True, convention="neanderthal")
    rep = inertia.SGD(lrs[0], momentum=mu, nesterov=True, convention="keras")
    assert look.lookahead and not rep.lookahead
    w = [p.copy() for p in w0]
    u = [p.copy() for p in w0]
    ls, rs = look.init(w), rep.init(u)
    for t in range(STEPS):
        look.set(lr=_lr_at(t, lrs))
        rep.set(lr=_lr_at(t, lrs))
        point = look.lookahead_point(w, ls)
        _close(point, u, f"step {t}: gradient points")          # the same look-ahead point
        look.step(w, grad(point), ls, n=N)
        rep.step(u, grad(u), rs, n=N)
        _close(to_reparameterised(look, w, ls), u, f"step {t}: to_reparameterised")
        _close(to_lookahead(rep, u, rs), w, f"step {t}: to_lookahead (keras)")
        _close(to_lookahead(look, to_reparameterised(look, w, ls), ls), w, f"step {t}: round")
        _close(ls.velocity, rs.velocity, f"step {t}: velocity")
    assert not np.allclose(w[0], w0[0])
    assert not np.allclose(w[0], u[0])           # the two coordinates are different points


@pytest.mark.parametrize("convention", ["pytorch", "tf1"])
@pytest.mark.parametrize("mu", [0.9, 0.5])
def test_lr_outside_nesterov_and_lookahead_visit_the_same_points(convention, mu):
    """PyTorch / TF1 store b with v = -lr b: u = w - lr mu b."""
    grad, w0 = _quadratic(1)
    lr = 0.1
    look = inertia.SGD(lr, momentum=mu, nesterov=True, convention="neanderthal")
    rep = inertia.SGD(lr, momentum=mu, nesterov=True, convention=convention)
    w = [p.copy() for p in w0]
    u = [p.copy() for p in w0]
    ls, rs = look.init(w), rep.init(u)
    for t in range(STEPS):
        point = look.lookahead_point(w, ls)
        _close(point, u, f"step {t}: gradient points")
        look.step(w, grad(point), ls, n=N)
        rep.step(u, grad(u), rs, n=N)
        _close(to_reparameterised(look, w, ls), u, f"step {t}: to_reparameterised")
        _close(to_lookahead(rep, u, rs), w, f"step {t}: to_lookahead ({convention})")
        _close(ls.velocity, [-lr * b for b in rs.velocity], f"step {t}: v = -lr b")
        # from the reparameterised side: u -> w -> u
        _close(to_reparameterised(rep, to_lookahead(rep, u, rs), rs), u, f"step {t}: round")


def test_lr_outside_with_momentum_correction_follows_lookahead_under_lr_changes():
    """With an lr that changes, the lr-outside buffer b must be rescaled (momentum
    correction) for v = -lr b to keep holding; then the same points are visited."""
    grad, w0 = _quadratic(2)
    lrs = [0.1, 0.04, 0.15]
    look = inertia.SGD(lrs[0], momentum=0.9, nesterov=True, convention="neanderthal")
    rep = inertia.SGD(lrs[0], momentum=0.9, nesterov=True, convention="pytorch",
                      momentum_correction=True)
    w = [p.copy() for p in w0]
    u = [p.copy() for p in w0]
    ls, rs = look.init(w), rep.init(u)
    for t in range(STEPS):
        look.set(lr=_lr_at(t, lrs))
        rep.set(lr=_lr_at(t, lrs))
        point = look.lookahead_point(w, ls)
        _close(point, u, f"step {t}")
        look.step(w, grad(point), ls, n=N)
        rep.step(u, grad(u), rs, n=N)
        _close(to_reparameterised(look, w, ls), u, f"step {t}")
        _close(to_lookahead(rep, u, rs), w, f"step {t}")


def test_per_n_conventions_step_without_n_when_there_is_no_weight_decay():
    """n is needed only to scale a weight decay (``_check_step`` asks for it only when
    weight_decay != 0): without weight decay the functional step must work without it, and
    give what it gives with any n."""
    grad, w0 = _quadratic()
    for convention in ("neanderthal", "sklearn"):
        a = [p.copy() for p in w0]
        b = [p.copy() for p in w0]
        oa = inertia.SGD(0.1, momentum=0.9, convention=convention)
        ob = inertia.SGD(0.1, momentum=0.9, convention=convention)
        sa, sb = oa.init(a), ob.init(b)
        for _ in range(3):
            oa.step(a, grad(a), sa)
            ob.step(b, grad(b), sb, n=7)
        for p, q in zip(a, b):
            np.testing.assert_array_equal(p, q)


def test_conversions_leave_inputs_alone_and_skip_neanderthal_biases():
    rng = np.random.default_rng(5)
    params = [rng.standard_normal((3, 2)), rng.standard_normal(3)]
    look = inertia.SGD(0.1, momentum=0.9, nesterov=True, convention="neanderthal")
    st = look.init(params)
    st.velocity = [rng.standard_normal((3, 2)), rng.standard_normal(3)]
    before = [p.copy() for p in params]
    u = to_reparameterised(look, params, st)
    np.testing.assert_array_equal(params[0], before[0])
    np.testing.assert_allclose(u[0], params[0] + 0.9 * st.velocity[0], rtol=1e-15)
    np.testing.assert_array_equal(u[1], params[1])            # no momentum on the bias
    np.testing.assert_array_equal(look.lookahead_point(params, st)[1], params[1])
    keras = inertia.SGD(0.1, momentum=0.9, nesterov=True, convention="keras")
    u = to_reparameterised(keras, params, st)
    np.testing.assert_allclose(u[1], params[1] + 0.9 * st.velocity[1], rtol=1e-15)


# ---------------------------------------------------------------------------------------------
# 2. network level
# ---------------------------------------------------------------------------------------------
def _odd_problem():
    """A network that is an odd function while its biases are 0 (tanh hidden layers, linear
    output), and data symmetric under (x, y) -> (-x, -y): every output and hidden delta is
    odd in x, so each bias gradient is a sum of pairs d, -d and vanishes. The biases stay 0
    under either rule, and the look-ahead shift of the weights keeps the network odd."""
    rng = np.random.default_rng(4)
    X0 = rng.standard_normal((24, 3))
    y0 = np.hstack([np.sin(X0[:, :1]) + 0.3 * X0[:, 1:2] ** 3, X0[:, 2:3] * np.cos(X0[:, :1])])
    X, y = np.vstack([X0, -X0]), np.vstack([y0, -y0])
    net = inertia.Network(3, [inertia.Dense(6, "tanh"), inertia.Dense(4, "tanh"),
                              inertia.Dense(2, "linear")], seed=3, dtype="float64")
    return X, y, net


def _centred_problem():
    """One linear layer on centred X and y: the bias gradient 2/(nk) sum_i (W x_i + b - y_i)
    is 0 while b = 0, at w and at any look-ahead point."""
    rng = np.random.default_rng(6)
    X = rng.standard_normal((40, 4))
    X -= X.mean(axis=0)
    y = X @ rng.standard_normal((4, 2)) + 0.1 * rng.standard_normal((40, 2))
    y -= y.mean(axis=0)
    net = inertia.Network(4, [inertia.Dense(2, "linear")], seed=8, dtype="float64")
    return X, y, net


def _flat(net):
    return [x for wb in net.parameters() for x in wb]


@pytest.mark.parametrize("problem", [_odd_problem, _centred_problem], ids=["odd", "centred"])
def test_network_keras_weights_are_neanderthal_lookahead_points(problem):
    X, y, net_n = problem()
    net_k = net_n.copy()
    mu = 0.9
    on = inertia.SGD(0.05, momentum=mu, nesterov=True, convention="neanderthal")
    ok = inertia.SGD(0.05, momentum=mu, nesterov=True, convention="keras")
    for epoch in range(40):
        inertia.fit(net_n, X, y, "mse", on, epochs=1, progress=False)
        inertia.fit(net_k, X, y, "mse", ok, epochs=1, progress=False)
        pn, pk = _flat(net_n), _flat(net_k)
        # the weights: W_keras = W_nean + mu V_nean, and the same velocities
        u = to_reparameterised(on, pn, on.state)
        for i in range(0, len(pn), 2):
            np.testing.assert_allclose(pk[i], u[i], rtol=1e-10, atol=1e-13,
                                       err_msg=f"epoch {epoch} W{i // 2}")
            np.testing.assert_allclose(pk[i], pn[i] + mu * on.state.velocity[i], rtol=1e-10,
                                       atol=1e-13, err_msg=f"epoch {epoch} W{i // 2}")
            np.testing.assert_allclose(ok.state.velocity[i], on.state.velocity[i], rtol=1e-9,
                                       atol=1e-13, err_msg=f"epoch {epoch} V{i // 2}")
        # the biases never move away from 0 (up to rounding) in either network
        for i in range(1, len(pn), 2):
            assert np.max(np.abs(pn[i])) < 1e-13 and np.max(np.abs(pk[i])) < 1e-13, epoch
    # not vacuous: the weights moved, and the two networks hold different points
    w0 = problem()[2].parameters()[0][0]
    assert not np.allclose(net_n.parameters()[0][0], w0)
    assert np.max(np.abs(_flat(net_k)[0] - _flat(net_n)[0])) > 1e-5


def test_network_biases_break_the_relation_on_ordinary_data():
    """The control: on data whose bias gradients do not vanish, Neanderthal's momentum-free
    biases make the two networks genuinely different, so the weight relation fails."""
    rng = np.random.default_rng(7)
    X = rng.standard_normal((48, 3))
    y = np.sin(X[:, :1]) + 1.0
    net_n = inertia.Network(3, [inertia.Dense(6, "tanh"), inertia.Dense(1, "linear")], seed=3,
                            dtype="float64")
    net_k = net_n.copy()
    on = inertia.SGD(0.05, momentum=0.9, nesterov=True, convention="neanderthal")
    ok = inertia.SGD(0.05, momentum=0.9, nesterov=True, convention="keras")
    inertia.fit(net_n, X, y, "mse", on, epochs=30, progress=False)
    inertia.fit(net_k, X, y, "mse", ok, epochs=30, progress=False)
    u = to_reparameterised(on, _flat(net_n), on.state)
    assert np.max(np.abs(u[0] - _flat(net_k)[0])) > 1e-6


# ---------------------------------------------------------------------------------------------
# 3. momentum correction
# ---------------------------------------------------------------------------------------------
LRS = [0.1, 0.05, 0.2, 0.02]          # changes every 10 steps, down and up


def _run_functional(convention, nesterov, correction, grad, w0, steps=STEPS):
    opt = inertia.SGD(LRS[0], momentum=0.9, nesterov=nesterov, convention=convention,
                      momentum_correction=correction)
    w = [p.copy() for p in w0]
    st = opt.init(w)
    for t in range(steps):
        opt.set(lr=_lr_at(t, LRS))
        opt.step(w, grad(w), st)
    return w, st, opt


@pytest.mark.parametrize("nesterov", [False, True])
@pytest.mark.parametrize("lr_outside", ["tf1", "pytorch"])
def test_keras_with_correction_equals_lr_outside_without(nesterov, lr_outside):
    grad, w0 = _quadratic(3)
    wk, sk, ok = _run_functional("keras", nesterov, True, grad, w0)
    wt, stt, ot = _run_functional(lr_outside, nesterov, False, grad, w0)
    _close(wk, wt)
    _close(sk.velocity, [-ot.lr * b for b in stt.velocity], "v = -lr b")


@pytest.mark.parametrize("nesterov", [False, True])
def test_pytorch_with_correction_equals_keras_without(nesterov):
    grad, w0 = _quadratic(3)
    wp, sp, op = _run_functional("pytorch", nesterov, True, grad, w0)
    wk, sk, ok = _run_functional("keras", nesterov, False, grad, w0)
    _close(wp, wk)
    _close(sk.velocity, [-op.lr * b for b in sp.velocity], "v = -lr b")


@pytest.mark.parametrize("nesterov", [False, True])
def test_without_correction_the_forms_differ(nesterov):
    grad, w0 = _quadratic(3)
    wk, _, _ = _run_functional("keras", nesterov, False, grad, w0)
    wt, _, _ = _run_functional("tf1", nesterov, False, grad, w0)
    diff = max(np.max(np.abs(a - b)) for a, b in zip(wk, wt))
    assert diff > 1e-6
    # and before the first lr change they agree: the difference comes from the changes
    wk, _, _ = _run_functional("keras", nesterov, False, grad, w0, steps=10)
    wt, _, _ = _run_functional("tf1", nesterov, False, grad, w0, steps=10)
    _close(wk, wt)


def _fit_net(convention, nesterov, correction, batch_size=None):
    rng = np.random.default_rng(9)
    X = rng.standard_normal((48, 3))
    y = np.sin(X[:, :1]) + 0.5 * X[:, 1:2]
    net = inertia.Network(3, [inertia.Dense(6, "tanh"), inertia.Dense(1, "linear")], seed=5,
                          dtype="float64")
    opt = inertia.SGD(LRS[0], momentum=0.9, nesterov=nesterov, convention=convention,
                      momentum_correction=correction)
    epochs = 40 if batch_size is None else 14          # mini-batch: 3 steps per epoch
    inertia.fit(net, X, y, "mse", opt, epochs=epochs, batch_size=batch_size, shuffle=False,
                progress=False, lr_schedule=lambda t: _lr_at(t, LRS))
    return _flat(net), opt


@pytest.mark.parametrize("batch_size", [None, 16], ids=["full", "mini"])
@pytest.mark.parametrize("nesterov", [False, True])
def test_network_momentum_correction_under_lr_schedule(nesterov, batch_size):
    k_corr, ok = _fit_net("keras", nesterov, True, batch_size)
    tf1, ot = _fit_net("tf1", nesterov, False, batch_size)
    _close(k_corr, tf1, "keras+correction vs tf1")
    _close(ok.state.velocity, [-ot.lr * b for b in ot.state.velocity], "v = -lr b")
    p_corr, _ = _fit_net("pytorch", nesterov, True, batch_size)
    keras, _ = _fit_net("keras", nesterov, False, batch_size)
    _close(p_corr, keras, "pytorch+correction vs keras")
    diff = max(np.max(np.abs(a - b)) for a, b in zip(keras, tf1))
    assert diff > 1e-6, diff
