"""inertia's ``keras`` and ``sklearn`` conventions against the real Keras and scikit-learn.

Functional level: the same random gradients go to Keras' ``SGD.apply`` / scikit-learn's
``SGDOptimizer.update_params`` and to ``inertia.SGD.step``; the parameters must agree to
rtol 1e-10 in float64 after 50 steps.

End to end: the same network, the same initial weights and the same full-batch data, trained
by ``MLPRegressor`` (``partial_fit`` and ``fit`` with ``warm_start``) or by a compiled
``keras.Sequential`` (``train_on_batch``), and by ``inertia.fit``; weights must agree to rtol
1e-9 after 20 steps.

Keras keeps a float ``learning_rate`` in a variable of dtype ``keras.config.floatx()`` and its
torch backend computes the decoupled decay factor ``1 - weight_decay * learning_rate`` in that
dtype, so with the default float32 floatx a float64 model is updated with a float32-rounded
learning rate (0.05 -> 0.0500000007...) and decay factor: a relative error near 1e-8 that has
nothing to do with the momentum convention. The Keras tests therefore run with floatx float64
(the fixture below sets it and restores it).
"""

import os
import warnings

os.environ.setdefault("KERAS_BACKEND", "torch")

import numpy as np  # noqa: E402
import pytest  # noqa: E402

import inertia  # noqa: E402

keras = pytest.importorskip("keras")
torch = pytest.importorskip("torch")
sk_opt = pytest.importorskip("sklearn.neural_network._stochastic_optimizers")
from sklearn.exceptions import ConvergenceWarning  # noqa: E402
from sklearn.neural_network import MLPRegressor  # noqa: E402

# keras' torch backend converts tensors with np.array(x, copy=False): a NumPy 2 notice per call
pytestmark = pytest.mark.filterwarnings("ignore:__array__ implementation:DeprecationWarning")

RTOL_STEP = 1e-10
RTOL_FIT = 1e-9

MOMENTUM_NESTEROV = [(0.0, False), (0.9, False), (0.9, True)]


@pytest.fixture
def floatx64():
    """Keras floatx float64 for the duration of one test (see the module docstring)."""
    old = keras.config.floatx()
    keras.config.set_floatx("float64")
    try:
        yield
    finally:
        keras.config.set_floatx(old)


def _np(x):
    return np.asarray(keras.ops.convert_to_numpy(x), dtype=np.float64)


def _t(x):
    return torch.as_tensor(np.array(x, dtype=np.float64))


def _random_problem(seed=0, shape=(5, 4)):
    r = np.random.default_rng(seed)
    W0 = r.normal(size=shape)
    b0 = r.normal(size=shape[0])
    grads = [(r.normal(size=shape), r.normal(size=shape[0])) for _ in range(50)]
    return W0, b0, grads


# 1. Keras SGD, functional ------------------------------------------------------------------

@pytest.mark.parametrize("weight_decay", [0.0, 1e-2])
@pytest.mark.parametrize("momentum,nesterov", MOMENTUM_NESTEROV)
def test_keras_sgd_functional(floatx64, momentum, nesterov, weight_decay):
    W0, b0, grads = _random_problem(seed=1)
    lr, lr2 = 0.05, 0.02
    kopt = keras.optimizers.SGD(learning_rate=lr, momentum=momentum, nesterov=nesterov,
                                weight_decay=weight_decay or None)
    kW = keras.Variable(W0, dtype="float64", name="kernel")
    kb = keras.Variable(b0, dtype="float64", name="bias")
    opt = inertia.SGD(lr, momentum=momentum, nesterov=nesterov, weight_decay=weight_decay,
                      convention="keras")
    params = [W0.copy(), b0.copy()]
    state = opt.init(params)
    for k, (gW, gb) in enumerate(grads):
        if k == 25:                                    # learning-rate change mid-run
            kopt.learning_rate = lr2
            opt.set(lr=lr2)
        kopt.apply([_t(gW), _t(gb)], [kW, kb])
        opt.step(params, [gW, gb], state)
        if k in (0, 24, 25, 49):
            np.testing.assert_allclose(params[0], _np(kW), rtol=RTOL_STEP, atol=0,
                                       err_msg=f"W after step {k + 1}")
            np.testing.assert_allclose(params[1], _np(kb), rtol=RTOL_STEP, atol=0,
                                       err_msg=f"b after step {k + 1}")
    assert float(_np(kopt.learning_rate)) == lr2
    assert state.step == 50


def test_keras_sgd_apply_gradients_form(floatx64):
    """``apply_gradients(zip(grads, vars))`` takes the same steps as ``apply``."""
    W0, b0, grads = _random_problem(seed=2)
    kopt = keras.optimizers.SGD(learning_rate=0.05, momentum=0.9, nesterov=True,
                                weight_decay=1e-2)
    kW = keras.Variable(W0, dtype="float64")
    kb = keras.Variable(b0, dtype="float64")
    opt = inertia.SGD(0.05, momentum=0.9, nesterov=True, weight_decay=1e-2, convention="keras")
    params = [W0.copy(), b0.copy()]
    state = opt.init(params)
    for gW, gb in grads:
        kopt.apply_gradients(zip([_t(gW), _t(gb)], [kW, kb]))
        opt.step(params, [gW, gb], state)
    np.testing.assert_allclose(params[0], _np(kW), rtol=RTOL_STEP, atol=0)
    np.testing.assert_allclose(params[1], _np(kb), rtol=RTOL_STEP, atol=0)


@pytest.mark.parametrize("momentum", [0.0, 0.9])
def test_keras_decays_biases_too(floatx64, momentum):
    """With a zero gradient, Keras shrinks the bias by (1 - lr wd) per step, as inertia's
    keras convention does (it has decay_biases=True, unlike sklearn)."""
    lr, wd, steps = 0.05, 1e-2, 3
    b0 = np.array([1.0, -2.0, 3.0])
    kopt = keras.optimizers.SGD(learning_rate=lr, momentum=momentum, weight_decay=wd)
    kb = keras.Variable(b0, dtype="float64", name="bias")
    opt = inertia.SGD(lr, momentum=momentum, weight_decay=wd, convention="keras")
    params = [b0.copy()]
    state = opt.init(params)
    for _ in range(steps):
        kopt.apply([_t(np.zeros(3))], [kb])
        opt.step(params, [np.zeros(3)], state)
    expected = b0 * (1 - lr * wd) ** steps
    np.testing.assert_allclose(_np(kb), expected, rtol=1e-14)      # Keras decays the bias
    np.testing.assert_allclose(params[0], expected, rtol=1e-14)    # and so does inertia
    assert inertia.optim.conventions.get("keras").decay_biases


# 2. scikit-learn SGDOptimizer, functional --------------------------------------------------

@pytest.mark.parametrize("momentum,nesterov", MOMENTUM_NESTEROV)
def test_sklearn_sgd_optimizer_functional(momentum, nesterov):
    W0, b0, grads = _random_problem(seed=3)
    lr, lr2 = 0.05, 0.02
    sk_params = [W0.copy(), b0.copy()]
    sopt = sk_opt.SGDOptimizer(sk_params, learning_rate_init=lr, lr_schedule="constant",
                               momentum=momentum, nesterov=nesterov)
    opt = inertia.SGD(lr, momentum=momentum, nesterov=nesterov, convention="sklearn")
    params = [W0.copy(), b0.copy()]
    state = opt.init(params)
    for k, (gW, gb) in enumerate(grads):
        if k == 25:                                    # learning-rate change mid-run
            sopt.learning_rate = lr2
            opt.set(lr=lr2)
        sopt.update_params(sk_params, [gW, gb])
        opt.step(params, [gW, gb], state, n=10)
    np.testing.assert_allclose(params[0], sk_params[0], rtol=RTOL_STEP, atol=0)
    np.testing.assert_allclose(params[1], sk_params[1], rtol=RTOL_STEP, atol=0)
    for v, sv in zip(state.velocity, sopt.velocities):
        np.testing.assert_allclose(v, sv, rtol=RTOL_STEP, atol=0)


@pytest.mark.parametrize("momentum,nesterov", MOMENTUM_NESTEROV)
def test_sklearn_sgd_optimizer_with_alpha(momentum, nesterov):
    """SGDOptimizer has no decay of its own: MLP's _backprop adds alpha W / n to the weight
    gradients (not to the intercepts) before calling it. inertia's sklearn convention does
    that itself from weight_decay=alpha and n."""
    W0, b0, grads = _random_problem(seed=4)
    lr, alpha, n = 0.05, 0.5, 8
    sk_params = [W0.copy(), b0.copy()]
    sopt = sk_opt.SGDOptimizer(sk_params, learning_rate_init=lr, lr_schedule="constant",
                               momentum=momentum, nesterov=nesterov)
    opt = inertia.SGD(lr, momentum=momentum, nesterov=nesterov, weight_decay=alpha,
                      convention="sklearn")
    params = [W0.copy(), b0.copy()]
    state = opt.init(params)
    for gW, gb in grads:
        sopt.update_params(sk_params, [gW + alpha * sk_params[0] / n, gb])
        opt.step(params, [gW, gb], state, n=n)
    np.testing.assert_allclose(params[0], sk_params[0], rtol=RTOL_STEP, atol=0)
    np.testing.assert_allclose(params[1], sk_params[1], rtol=RTOL_STEP, atol=0)


# 3. scikit-learn MLPRegressor, end to end --------------------------------------------------

def _regression_data(n=32, d=3, seed=5):
    r = np.random.default_rng(seed)
    X = r.normal(size=(n, d))
    y = np.sin(X @ np.array([1.0, -0.5, 0.3])[:d]) + 0.1 * r.normal(size=n)
    return X, y


def _mlp(lr, momentum, nesterov, alpha, n, max_iter=1, warm_start=False):
    return MLPRegressor(hidden_layer_sizes=(8,), activation="tanh", solver="sgd",
                        learning_rate="constant", learning_rate_init=lr, momentum=momentum,
                        nesterovs_momentum=nesterov, alpha=alpha, batch_size=n, shuffle=False,
                        max_iter=max_iter, tol=0.0, n_iter_no_change=10**6,
                        early_stopping=False, random_state=0, warm_start=warm_start)


def _prime(est, X, y, net):
    """A first partial_fit builds the estimator (it takes one step we throw away); then load
    inertia's initial weights (sklearn's coefs_ are (in, out)) and drop the optimizer, so the
    next call starts a fresh SGDOptimizer with zero velocities."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        est.partial_fit(X, y)
    est.coefs_ = [W.T.copy() for W, _ in net.parameters()]
    est.intercepts_ = [b.copy() for _, b in net.parameters()]
    del est._optimizer


def _compare_mlp(est, net):
    for i, ((W, b), cW, cb) in enumerate(zip(net.parameters(), est.coefs_, est.intercepts_)):
        np.testing.assert_allclose(W, cW.T, rtol=RTOL_FIT, atol=1e-14, err_msg=f"W{i}")
        np.testing.assert_allclose(b, cb, rtol=RTOL_FIT, atol=1e-14, err_msg=f"b{i}")


MLP_CASES = [(mu, nest, alpha) for mu, nest in MOMENTUM_NESTEROV for alpha in (0.0, 0.3)]


@pytest.mark.parametrize("momentum,nesterov,alpha", MLP_CASES)
def test_mlp_regressor_partial_fit(momentum, nesterov, alpha):
    X, y = _regression_data()
    n, lr, steps = X.shape[0], 0.1, 20
    net = inertia.Network(3, [inertia.Dense(8, "tanh"), inertia.Dense(1, "linear")], seed=0,
                          dtype="float64")
    est = _mlp(lr, momentum, nesterov, alpha, n)
    _prime(est, X, y, net)
    opt = inertia.SGD(lr, momentum=momentum, nesterov=nesterov, weight_decay=alpha,
                      convention="sklearn")
    sk_losses = []
    for _ in range(steps):                 # partial_fit: one epoch = one full-batch step
        est.partial_fit(X, y)
        sk_losses.append(est.loss_)
    hist = inertia.fit(net, X, y, loss="quadratic", optimizer=opt, epochs=steps,
                       batch_size=None, shuffle=False, progress=False)
    _compare_mlp(est, net)
    if alpha == 0:     # sklearn's loss_ adds 0.5 alpha ||W||^2 / n; otherwise the same cost
        np.testing.assert_allclose(hist.loss, sk_losses, rtol=RTOL_FIT)
    assert opt.state.step == steps


@pytest.mark.parametrize("momentum,nesterov,alpha", [(0.9, False, 0.3), (0.9, True, 0.3)])
def test_mlp_regressor_fit_warm_start(momentum, nesterov, alpha):
    """The same through ``fit`` (``_fit_stochastic``'s epoch loop, max_iter full-batch
    epochs, a fresh SGDOptimizer per fit call)."""
    X, y = _regression_data(seed=6)
    n, lr, steps = X.shape[0], 0.1, 20
    net = inertia.Network(3, [inertia.Dense(8, "tanh"), inertia.Dense(1, "linear")], seed=1,
                          dtype="float64")
    est = _mlp(lr, momentum, nesterov, alpha, n, max_iter=steps, warm_start=True)
    _prime(est, X, y, net)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        est.fit(X, y)
    assert est.n_iter_ == steps
    opt = inertia.SGD(lr, momentum=momentum, nesterov=nesterov, weight_decay=alpha,
                      convention="sklearn")
    inertia.fit(net, X, y, loss="quadratic", optimizer=opt, epochs=steps, batch_size=None,
                shuffle=False, progress=False)
    _compare_mlp(est, net)


# 4. Keras model, end to end ----------------------------------------------------------------
#
# Keras 3.15 on the torch backend does not compute a float64 Dense layer in float64:
# ``keras.ops.matmul`` takes its dtype from ``dtypes.result_type``, which maps float64 to float32
# on every backend but TensorFlow (``BIT64_TO_BIT32_DTYPE``), so kernel @ inputs is computed and
# returned in float32 even with float64 variables, inputs and floatx (keras-team/keras#23704,
# #23223). A compiled float64 Keras model therefore trains with float32-rounded activations and
# gradients (relative errors ~1e-7), and cannot agree with any float64 trainer to 1e-9. The tests
# below (a) train the compiled model with that demotion switched off for the test
# (monkeypatch), (b) take the gradient with torch autograd on the Keras variables' values and
# apply Keras' optimizer to them, without touching Keras internals, and (c) run stock Keras and
# check agreement only to float32 precision.

K_LR, K_MU, K_WD, K_STEPS = 0.05, 0.9, 1e-2, 20


def _keras_problem():
    r = np.random.default_rng(7)
    n, d, k = 24, 3, 2
    X = r.normal(size=(n, d))
    y = np.stack([np.sin(X[:, 0]) + X[:, 1], X[:, 2] * X[:, 0]], axis=1) \
        + 0.1 * r.normal(size=(n, k))
    net = inertia.Network(d, [inertia.Dense(8, "tanh"), inertia.Dense(k, "linear")], seed=2,
                          dtype="float64")
    model = keras.Sequential([
        keras.Input(shape=(d,), dtype="float64"),
        keras.layers.Dense(8, activation="tanh", dtype="float64"),
        keras.layers.Dense(k, activation="linear", dtype="float64"),
    ])
    model.set_weights([a for W, b in net.parameters() for a in (W.T, b)])   # kernels (in, out)
    return X, y, net, model


def _keras_sgd(nesterov):
    return keras.optimizers.SGD(learning_rate=K_LR, momentum=K_MU, nesterov=nesterov,
                                weight_decay=K_WD)


def _inertia_keras_fit(net, X, y, nesterov):
    opt = inertia.SGD(K_LR, momentum=K_MU, nesterov=nesterov, weight_decay=K_WD,
                      convention="keras")
    return inertia.fit(net, X, y, loss="mse", optimizer=opt, epochs=K_STEPS, batch_size=None,
                       shuffle=False, progress=False)


def _compare_keras(net, weights, rtol):
    start = inertia.Network(net.n_inputs, net.layers, seed=2, dtype="float64").parameters()
    for i, (W, b) in enumerate(net.parameters()):
        np.testing.assert_allclose(W, weights[2 * i].T, rtol=rtol, atol=1e-14, err_msg=f"W{i}")
        np.testing.assert_allclose(b, weights[2 * i + 1], rtol=rtol, atol=1e-14,
                                   err_msg=f"b{i}")
        assert not np.allclose(W, start[i][0], rtol=1e-3)      # training did move the weights


@pytest.fixture
def keras_float64_ops(floatx64, monkeypatch):
    """Keras ops keep float64 for this test (see above)."""
    from keras.src.backend.common import dtypes
    table = getattr(dtypes, "BIT64_TO_BIT32_DTYPE", None)
    if isinstance(table, dict) and "float64" in table:
        monkeypatch.setitem(table, "float64", "float64")
    t = torch.ones((2, 2), dtype=torch.float64)
    if keras.ops.matmul(t, t).dtype != torch.float64:
        pytest.skip("cannot make this Keras version's ops.matmul keep float64")
    assert keras.ops.matmul(t, t).dtype == torch.float64


@pytest.mark.parametrize("nesterov", [False, True])
def test_keras_model_train_on_batch(keras_float64_ops, nesterov):
    X, y, net, model = _keras_problem()
    model.compile(optimizer=_keras_sgd(nesterov), loss="mse")
    k_losses = [float(model.train_on_batch(X, y)) for _ in range(K_STEPS)]
    hist = _inertia_keras_fit(net, X, y, nesterov)
    weights = model.get_weights()
    assert all(w.dtype == np.float64 for w in weights)
    _compare_keras(net, weights, RTOL_FIT)
    # train_on_batch's loss is the forward-pass loss before the update, as History.loss
    np.testing.assert_allclose(hist.loss, k_losses, rtol=RTOL_FIT)


@pytest.mark.parametrize("nesterov", [False, True])
def test_keras_model_manual_torch_step(floatx64, nesterov):
    """Stock Keras: the model's own variables and Keras' SGD, the gradient of the MSE taken by
    torch autograd on the variables' float64 values."""
    X, y, net, model = _keras_problem()
    kopt = _keras_sgd(nesterov)
    variables = model.trainable_variables
    Xt, yt = _t(X), _t(y)
    k_losses = []
    for _ in range(K_STEPS):
        kernel0, bias0, kernel1, bias1 = (v.value for v in variables)
        h = torch.tanh(Xt @ kernel0 + bias0)
        loss = ((h @ kernel1 + bias1 - yt) ** 2).mean()
        grads = torch.autograd.grad(loss, [v.value for v in variables])
        k_losses.append(float(loss.detach()))
        kopt.apply(list(grads), variables)
    hist = _inertia_keras_fit(net, X, y, nesterov)
    weights = [_np(v) for v in variables]
    _compare_keras(net, weights, RTOL_FIT)
    np.testing.assert_allclose(hist.loss, k_losses, rtol=RTOL_FIT)


def test_keras_model_stock_float32_matmul(floatx64):
    """Stock Keras (float64 demoted to float32 inside ops.matmul, see above): the same
    training agrees to float32 precision. If Keras computes float64 layers in float64, this
    agrees to 1e-9 as well."""
    X, y, net, model = _keras_problem()
    model.compile(optimizer=_keras_sgd(False), loss="mse")
    for _ in range(K_STEPS):
        model.train_on_batch(X, y)
    _inertia_keras_fit(net, X, y, False)
    _compare_keras(net, model.get_weights(), 1e-4)   # seen: 6e-7
