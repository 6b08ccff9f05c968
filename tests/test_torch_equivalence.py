"""inertia against the real torch.optim.SGD and torch.nn losses, in float64.

1. Functional level: ``SGD.step`` on plain NumPy arrays == ``torch.optim.SGD.step`` for every
   (momentum, dampening, nesterov, weight_decay) torch accepts, with an lr change mid-run;
   the combinations torch rejects are rejected by inertia too.
2. End to end: ``fit`` on a small network == a torch ``nn.Sequential`` trained by
   ``torch.optim.SGD`` from the same initial weights (mse full batch and mini-batch for every
   combination; bce and cross-entropy with integer labels and one-hot targets).
3. Loss values: ``History.loss`` == torch's loss measured before each update.
4. Conventions tied to PyTorch: tf1 and optax == pytorch with dampening 0 == hand-written
   TF1 ApplyMomentum and optax trace+scale; ema == torch SGD with lr (1 - mu) and a zero
   first buffer.
5. Real optax.sgd, when optax and jax are importable.
"""

import itertools

import numpy as np
import pytest

torch = pytest.importorskip("torch")
nn = torch.nn

import inertia  # noqa: E402

RTOL, ATOL = 1e-10, 1e-12
STEPS = 50
SWITCH = 25                 # the step at which lr changes
LR0, LR1 = 0.1, 0.03

MOMENTA = (0.0, 0.9)
DAMPENINGS = (0.0, 0.5)
NESTEROVS = (False, True)
DECAYS = (0.0, 1e-2)


def _valid(mu, damp, nest):
    """torch.optim.SGD's own rule: Nesterov needs momentum > 0 and zero dampening."""
    return not nest or (mu > 0 and damp == 0)


ALL = list(itertools.product(MOMENTA, DAMPENINGS, NESTEROVS, DECAYS))
VALID = [c for c in ALL if _valid(*c[:3])]
INVALID = [c for c in ALL if not _valid(*c[:3])]


def _ids(c):
    mu, damp, nest, wd = c
    return f"mu{mu}-damp{damp}-{'nest' if nest else 'plain'}-wd{wd}"


# ---------------------------------------------------------------------------------------------
# helpers
# ---------------------------------------------------------------------------------------------
def _arrays(seed=0):
    """A few random float64 parameters (2-D weights, 1-D bias) and a gradient sequence."""
    rng = np.random.default_rng(seed)
    shapes = [(4, 3), (4,), (2, 4)]
    params = [rng.standard_normal(s) for s in shapes]
    grads = [[rng.standard_normal(s) for s in shapes] for _ in range(STEPS)]
    return params, grads


def _lr(t):
    return LR0 if t < SWITCH else LR1


def _run_inertia_functional(params, grads, convention="pytorch", **hyper):
    ps = [p.copy() for p in params]
    opt = inertia.SGD(LR0, convention=convention, **hyper)
    state = opt.init(ps)
    for t, g in enumerate(grads):
        if t == SWITCH:
            opt.set(lr=LR1)
        opt.step(ps, [x.copy() for x in g], state)
    return ps


def _run_torch_functional(params, grads, lr_scale=1.0, zero_first_buffer=False, **hyper):
    ts = [torch.tensor(p, dtype=torch.float64, requires_grad=True) for p in params]
    opt = torch.optim.SGD(ts, lr=LR0 * lr_scale, **hyper)
    if zero_first_buffer:       # torch then takes buf = mu * 0 + (1 - dampening) g on step 1
        for p in ts:
            opt.state[p]["momentum_buffer"] = torch.zeros_like(p)
    for t, g in enumerate(grads):
        if t == SWITCH:
            for group in opt.param_groups:
                group["lr"] = LR1 * lr_scale
        for p, x in zip(ts, g):
            p.grad = torch.tensor(x, dtype=torch.float64)
        opt.step()
    return [p.detach().numpy().copy() for p in ts]


def _assert_all_close(got, want):
    assert len(got) == len(want)
    for k, (a, b) in enumerate(zip(got, want)):
        np.testing.assert_allclose(a, b, rtol=RTOL, atol=ATOL, err_msg=f"array {k}")


# ---------------------------------------------------------------------------------------------
# 1. functional level
# ---------------------------------------------------------------------------------------------
@pytest.mark.parametrize("mu,damp,nest,wd", VALID, ids=[_ids(c) for c in VALID])
def test_functional_step_matches_torch_sgd(mu, damp, nest, wd):
    params, grads = _arrays()
    hyper = dict(momentum=mu, dampening=damp, nesterov=nest, weight_decay=wd)
    got = _run_inertia_functional(params, grads, **hyper)
    want = _run_torch_functional(params, grads, **hyper)
    _assert_all_close(got, want)
    # the run did move the parameters (the check is not vacuous)
    assert not np.allclose(got[0], params[0])


@pytest.mark.parametrize("mu,damp,nest,wd", INVALID, ids=[_ids(c) for c in INVALID])
def test_invalid_combinations_rejected_like_torch(mu, damp, nest, wd):
    hyper = dict(momentum=mu, dampening=damp, nesterov=nest, weight_decay=wd)
    p = torch.zeros(3, dtype=torch.float64, requires_grad=True)
    with pytest.raises(ValueError):
        torch.optim.SGD([p], lr=LR0, **hyper)
    with pytest.raises(ValueError):
        inertia.SGD(LR0, **hyper)
    # and set() cannot reach such a combination from a valid optimizer either
    opt = inertia.SGD(LR0, momentum=0.9)
    with pytest.raises(ValueError):
        opt.set(**hyper)


def test_valid_combinations_accepted_by_both():
    p = torch.zeros(3, dtype=torch.float64, requires_grad=True)
    for mu, damp, nest, wd in VALID:
        hyper = dict(momentum=mu, dampening=damp, nesterov=nest, weight_decay=wd)
        torch.optim.SGD([p], lr=LR0, **hyper)
        inertia.SGD(LR0, **hyper)


# ---------------------------------------------------------------------------------------------
# 2. end to end
# ---------------------------------------------------------------------------------------------
_TORCH_ACT = {"tanh": nn.Tanh, "sigmoid": nn.Sigmoid, "relu": nn.ReLU, "linear": None,
              "softmax": None}     # softmax: torch's CrossEntropyLoss takes the logits


def _torch_copy(net):
    """An nn.Sequential of nn.Linear + activations holding net's current weights (float64)."""
    mods = []
    for (W, b), act in zip(net.parameters(), net.acts):
        lin = nn.Linear(W.shape[1], W.shape[0], dtype=torch.float64)
        with torch.no_grad():
            lin.weight.copy_(torch.from_numpy(W))
            lin.bias.copy_(torch.from_numpy(b))
        mods.append(lin)
        if _TORCH_ACT[act] is not None:
            mods.append(_TORCH_ACT[act]())
    return nn.Sequential(*mods)


def _torch_params(model):
    lins = [m for m in model if isinstance(m, nn.Linear)]
    return [(m.weight.detach().numpy().copy(), m.bias.detach().numpy().copy()) for m in lins]


def _torch_loss(name):
    if name == "mse":
        return nn.MSELoss()
    if name == "bce":
        return nn.BCELoss()
    if name == "cross_entropy":
        return nn.CrossEntropyLoss()
    if name == "quadratic":
        return lambda a, y: ((y - a) ** 2).sum() / (2 * a.shape[0])
    raise ValueError(name)


def _torch_train(model, X, y, loss, lrs, batch_size=None, **hyper):
    """Train with torch.optim.SGD; ``lrs`` is a list of (epochs, lr) segments. Returns the list
    of batch losses measured before each update."""
    crit = _torch_loss(loss)
    opt = torch.optim.SGD(model.parameters(), lr=lrs[0][1], **hyper)
    n = X.shape[0]
    bs = n if batch_size is None else batch_size
    Xt = torch.from_numpy(X)
    yt = torch.from_numpy(y)
    losses = []
    for epochs, lr in lrs:
        for group in opt.param_groups:
            group["lr"] = lr
        for _ in range(epochs):
            for s in range(0, n, bs):
                opt.zero_grad()
                value = crit(model(Xt[s:s + bs]), yt[s:s + bs])
                value.backward()
                opt.step()
                losses.append(value.item())
    return losses


def _regression_data(seed=3):
    rng = np.random.default_rng(seed)
    X = rng.standard_normal((64, 3))
    y = (np.sin(X[:, :1]) + 0.5 * X[:, 1:2] * X[:, 2:3]
         + 0.1 * rng.standard_normal((64, 1)))
    return X, y


def _regression_net():
    return inertia.Network(3, [inertia.Dense(8, "tanh"), inertia.Dense(4, "sigmoid"),
                               inertia.Dense(1, "linear")], seed=7, dtype="float64")


def _assert_same_weights(net, model):
    got = net.parameters()
    want = _torch_params(model)
    for k, ((W, b), (Wt, bt)) in enumerate(zip(got, want)):
        np.testing.assert_allclose(W, Wt, rtol=RTOL, atol=ATOL, err_msg=f"layer {k} W")
        np.testing.assert_allclose(b, bt, rtol=RTOL, atol=ATOL, err_msg=f"layer {k} b")


@pytest.mark.parametrize("mu,damp,nest,wd", VALID, ids=[_ids(c) for c in VALID])
def test_end_to_end_mse_full_batch(mu, damp, nest, wd):
    X, y = _regression_data()
    net = _regression_net()
    model = _torch_copy(net)
    start = net.parameters()
    hyper = dict(momentum=mu, dampening=damp, nesterov=nest, weight_decay=wd)
    opt = inertia.SGD(LR0, **hyper)
    h1 = inertia.fit(net, X, y, "mse", opt, epochs=SWITCH, progress=False)
    opt.set(lr=LR1)                      # a second fit continues the optimizer's state
    h2 = inertia.fit(net, X, y, "mse", opt, epochs=STEPS - SWITCH, progress=False)
    tl = _torch_train(model, X, y, "mse", [(SWITCH, LR0), (STEPS - SWITCH, LR1)], **hyper)
    _assert_same_weights(net, model)
    np.testing.assert_allclose(h1.loss + h2.loss, tl, rtol=RTOL, atol=ATOL)
    assert not np.allclose(net.parameters()[0][0], start[0][0])


@pytest.mark.parametrize("mu,damp,nest,wd", VALID, ids=[_ids(c) for c in VALID])
def test_end_to_end_mse_mini_batch(mu, damp, nest, wd):
    X, y = _regression_data()
    net = _regression_net()
    model = _torch_copy(net)
    hyper = dict(momentum=mu, dampening=damp, nesterov=nest, weight_decay=wd)
    opt = inertia.SGD(LR0, **hyper)
    # 64 rows in batches of 16: 4 steps per epoch; 6 + 7 epochs = 52 steps, lr switched at 24
    schedule = [(6, {"lr": LR0}), (7, {"lr": LR1})]
    hist = inertia.fit(net, X, y, "mse", opt, batch_size=16, shuffle=False, schedule=schedule,
                       progress=False)
    tl = _torch_train(model, X, y, "mse", [(6, LR0), (7, LR1)], batch_size=16, **hyper)
    _assert_same_weights(net, model)
    # History.loss is the mean of each epoch's batch losses
    np.testing.assert_allclose(hist.loss, np.asarray(tl).reshape(13, 4).mean(axis=1),
                               rtol=RTOL, atol=ATOL)


def test_end_to_end_mini_batch_uneven_last_batch():
    """batch 24 of 64 rows: slices 24, 24, 16 (the last one smaller), as torch slices them."""
    X, y = _regression_data()
    net = _regression_net()
    model = _torch_copy(net)
    hyper = dict(momentum=0.9, nesterov=True, weight_decay=1e-2)
    opt = inertia.SGD(LR0, **hyper)
    inertia.fit(net, X, y, "mse", opt, epochs=10, batch_size=24, shuffle=False, progress=False)
    _torch_train(model, X, y, "mse", [(10, LR0)], batch_size=24, **hyper)
    _assert_same_weights(net, model)


def _classification_data(k, seed=5):
    rng = np.random.default_rng(seed)
    X = rng.standard_normal((64, 3))
    if k == 1:
        y = (X[:, 0] + X[:, 1] * X[:, 2] > 0).astype(np.float64).reshape(-1, 1)
        return X, y
    labels = (np.digitize(X[:, 0] + 0.5 * X[:, 1], [-0.5, 0.5])).astype(np.int64)
    return X, labels


BCE_CE_HYPER = [dict(momentum=0.9, nesterov=True, weight_decay=1e-2),
                dict(momentum=0.9, dampening=0.5)]


@pytest.mark.parametrize("hyper", BCE_CE_HYPER, ids=["nesterov-wd", "dampening"])
def test_end_to_end_bce(hyper):
    X, y = _classification_data(1)
    net = inertia.Network(3, [inertia.Dense(8, "tanh"), inertia.Dense(1, "sigmoid")], seed=11,
                          dtype="float64")
    model = _torch_copy(net)
    assert isinstance(model[-1], nn.Sigmoid)
    opt = inertia.SGD(LR0, **hyper)
    hist = inertia.fit(net, X, y, "bce", opt, schedule=[(SWITCH, {"lr": 0.5}),
                                                        (STEPS - SWITCH, {"lr": 0.2})],
                       progress=False)
    tl = _torch_train(model, X, y, "bce", [(SWITCH, 0.5), (STEPS - SWITCH, 0.2)], **hyper)
    _assert_same_weights(net, model)
    np.testing.assert_allclose(hist.loss, tl, rtol=RTOL, atol=ATOL)


@pytest.mark.parametrize("targets", ["labels", "one_hot"])
@pytest.mark.parametrize("hyper", BCE_CE_HYPER, ids=["nesterov-wd", "dampening"])
def test_end_to_end_cross_entropy(hyper, targets):
    X, labels = _classification_data(3)
    k = 3
    net = inertia.Network(3, [inertia.Dense(8, "tanh"), inertia.Dense(k, "softmax")], seed=13,
                          dtype="float64")
    model = _torch_copy(net)
    assert isinstance(model[-1], nn.Linear)       # torch's CrossEntropyLoss takes the logits
    if targets == "labels":
        y_inertia, y_torch = labels, labels       # int64 class indices for torch
    else:
        onehot = np.eye(k)[labels]
        y_inertia, y_torch = onehot, onehot       # class probabilities for torch
    opt = inertia.SGD(LR0, **hyper)
    h1 = inertia.fit(net, X, y_inertia, "cross_entropy", opt, epochs=SWITCH, progress=False)
    opt.set(lr=LR1)
    h2 = inertia.fit(net, X, y_inertia, "cross_entropy", opt, epochs=STEPS - SWITCH,
                     progress=False)
    tl = _torch_train(model, X, y_torch, "cross_entropy", [(SWITCH, LR0), (STEPS - SWITCH, LR1)],
                      **hyper)
    _assert_same_weights(net, model)
    np.testing.assert_allclose(h1.loss + h2.loss, tl, rtol=RTOL, atol=ATOL)


def test_end_to_end_cross_entropy_mini_batch_labels():
    X, labels = _classification_data(3)
    net = inertia.Network(3, [inertia.Dense(8, "relu"), inertia.Dense(3, "softmax")], seed=17,
                          dtype="float64")
    model = _torch_copy(net)
    hyper = dict(momentum=0.9, weight_decay=1e-2)
    opt = inertia.SGD(LR0, **hyper)
    inertia.fit(net, X, labels, "cross_entropy", opt, epochs=12, batch_size=16, shuffle=False,
                progress=False)
    _torch_train(model, X, labels, "cross_entropy", [(12, LR0)], batch_size=16, **hyper)
    _assert_same_weights(net, model)


# ---------------------------------------------------------------------------------------------
# 3. loss values
# ---------------------------------------------------------------------------------------------
@pytest.mark.parametrize("loss", ["mse", "quadratic", "bce", "cross_entropy"])
def test_history_loss_equals_torch_loss_before_each_update(loss):
    if loss in ("mse", "quadratic"):
        X, y = _regression_data()
        y = np.hstack([y, 0.5 * y])                  # two outputs: mse and quadratic differ
        layers = [inertia.Dense(6, "tanh"), inertia.Dense(2, "linear")]
    elif loss == "bce":
        X, y = _classification_data(1)
        layers = [inertia.Dense(6, "tanh"), inertia.Dense(1, "sigmoid")]
    else:
        X, y = _classification_data(3)
        layers = [inertia.Dense(6, "tanh"), inertia.Dense(3, "softmax")]
    net = inertia.Network(3, layers, seed=19, dtype="float64")
    model = _torch_copy(net)
    hyper = dict(momentum=0.9, nesterov=True)
    opt = inertia.SGD(LR0, **hyper)
    hist = inertia.fit(net, X, y, loss, opt, epochs=30, progress=False)
    tl = _torch_train(model, X, y, loss, [(30, LR0)], **hyper)
    assert len(hist.loss) == 30
    np.testing.assert_allclose(hist.loss, tl, rtol=RTOL, atol=ATOL)
    _assert_same_weights(net, model)
    # the first value is the loss of the initial weights, as inertia itself measures it
    fresh = inertia.Network(3, layers, seed=19, dtype="float64")
    assert fresh.loss(X, y, loss) == pytest.approx(tl[0], rel=RTOL)


def test_quadratic_is_half_sum_over_n():
    """quadratic == sum((y - a)^2) / (2n), n the number of rows (not n * outputs)."""
    X, y = _regression_data()
    y = np.hstack([y, -y, 2 * y])
    net = inertia.Network(3, [inertia.Dense(5, "tanh"), inertia.Dense(3, "linear")], seed=23,
                          dtype="float64")
    a = torch.from_numpy(net.predict(X))
    want = (((torch.from_numpy(y) - a) ** 2).sum() / (2 * X.shape[0])).item()
    assert net.loss(X, y, "quadratic") == pytest.approx(want, rel=RTOL)
    mse = nn.MSELoss()(a, torch.from_numpy(y)).item()
    assert net.loss(X, y, "mse") == pytest.approx(mse, rel=RTOL)


# ---------------------------------------------------------------------------------------------
# 4. conventions tied to PyTorch
# ---------------------------------------------------------------------------------------------
def _tf1_apply_momentum(params, grads, mu, nesterov, wd):
    """TF1's ApplyMomentum, from tensorflow/core/kernels/training_ops.cc (ApplyMomentum functor):
        accum = accum * momentum + grad
        use_nesterov: var -= grad * lr + accum * momentum * lr
        else:         var -= accum * lr
    accum starts at zero (the slot is zero-initialised). Weight decay is an L2 term in the loss:
    grad += wd * var."""
    ps = [p.copy() for p in params]
    accum = [np.zeros_like(p) for p in ps]
    for t, gs in enumerate(grads):
        lr = _lr(t)
        for p, a, g in zip(ps, accum, gs):
            g = g + wd * p
            a *= mu
            a += g
            if nesterov:
                p -= g * lr + a * mu * lr
            else:
                p -= a * lr
    return ps


def _optax_sgd(params, grads, mu, nesterov, wd):
    """optax.sgd, from optax/_src/alias.py (sgd = chain(trace(decay=momentum, nesterov),
    scale_by_learning_rate(lr))) and optax/_src/transform.py (trace):
        new_trace = g + decay * trace
        updates   = g + decay * new_trace if nesterov else new_trace
        w        += -lr * updates
    trace starts at zeros. Weight decay: add_decayed_weights(wd) before sgd, g + wd * w."""
    ps = [p.copy() for p in params]
    trace = [np.zeros_like(p) for p in ps]
    for t, gs in enumerate(grads):
        lr = _lr(t)
        for k, (p, g) in enumerate(zip(ps, gs)):
            g = g + wd * p
            new_trace = g + mu * trace[k]
            updates = g + mu * new_trace if nesterov else new_trace
            trace[k] = new_trace
            p += -lr * updates
    return ps


TIED = list(itertools.product(MOMENTA, NESTEROVS, DECAYS))
TIED = [c for c in TIED if _valid(c[0], 0.0, c[1])]


def _tied_ids(c):
    mu, nest, wd = c
    return f"mu{mu}-{'nest' if nest else 'plain'}-wd{wd}"


@pytest.mark.parametrize("convention", ["tf1", "optax"])
@pytest.mark.parametrize("mu,nest,wd", TIED, ids=[_tied_ids(c) for c in TIED])
def test_tf1_and_optax_equal_pytorch_without_dampening(convention, mu, nest, wd):
    params, grads = _arrays(seed=1)
    hyper = dict(momentum=mu, nesterov=nest, weight_decay=wd)
    got = _run_inertia_functional(params, grads, convention=convention, **hyper)
    _assert_all_close(got, _run_torch_functional(params, grads, **hyper))
    _assert_all_close(got, _run_inertia_functional(params, grads, convention="pytorch",
                                                   **hyper))
    ref = (_tf1_apply_momentum if convention == "tf1" else _optax_sgd)(params, grads, mu, nest,
                                                                       wd)
    _assert_all_close(got, ref)


@pytest.mark.parametrize("mu,nest,wd", TIED, ids=[_tied_ids(c) for c in TIED])
def test_hand_written_tf1_and_optax_agree(mu, nest, wd):
    """The two hand-written references are the same rule (b starts at 0, so b1 = g)."""
    params, grads = _arrays(seed=2)
    _assert_all_close(_tf1_apply_momentum(params, grads, mu, nest, wd),
                      _optax_sgd(params, grads, mu, nest, wd))


@pytest.mark.parametrize("convention", ["tf1", "optax"])
def test_tf1_and_optax_reject_dampening(convention):
    with pytest.raises(ValueError):
        inertia.SGD(LR0, momentum=0.9, dampening=0.5, convention=convention)


@pytest.mark.parametrize("convention", ["tf1", "optax"])
def test_tf1_and_optax_end_to_end_equal_torch(convention):
    X, y = _regression_data()
    net = _regression_net()
    model = _torch_copy(net)
    hyper = dict(momentum=0.9, nesterov=True, weight_decay=1e-2)
    opt = inertia.SGD(LR0, convention=convention, **hyper)
    inertia.fit(net, X, y, "mse", opt, epochs=12, batch_size=16, shuffle=False, progress=False)
    _torch_train(model, X, y, "mse", [(12, LR0)], batch_size=16, **hyper)
    _assert_same_weights(net, model)


EMA = [(mu, nest, wd) for mu in (0.5, 0.9) for nest in NESTEROVS for wd in DECAYS]


@pytest.mark.parametrize("mu,nest,wd", EMA, ids=[_tied_ids(c) for c in EMA])
def test_ema_equals_torch_with_scaled_lr_and_zero_first_buffer(mu, nest, wd):
    """ema: v = mu v + (1 - mu)(g + wd w), v0 = 0, w -= lr v. With u = v / (1 - mu):
    u = mu u + (g + wd w), u0 = 0, w -= lr (1 - mu) u: torch SGD(lr (1 - mu), momentum=mu)
    whose buffer is pre-set to zeros (its first buffer is then mu * 0 + g; with dampening 0
    that equals torch's own first-step copy of g, so the pre-set is only for faithfulness).
    Nesterov likewise: w -= lr ((1 - mu) g + mu v) = lr (1 - mu) (g + mu u)."""
    params, grads = _arrays(seed=4)
    hyper = dict(momentum=mu, nesterov=nest, weight_decay=wd)
    got = _run_inertia_functional(params, grads, convention="ema", **hyper)
    want = _run_torch_functional(params, grads, lr_scale=1 - mu, zero_first_buffer=True,
                                 **hyper)
    _assert_all_close(got, want)
    # with dampening 0 the pre-set zero buffer changes nothing: torch's first-step copy
    # buf = g equals mu * 0 + (1 - 0) g, so plain torch SGD(lr (1 - mu), mu) matches too
    plain = _run_torch_functional(params, grads, lr_scale=1 - mu, **hyper)
    _assert_all_close(got, plain)


@pytest.mark.parametrize("mu", [0.5, 0.9])
def test_ema_equals_torch_dampening_mu_with_zero_first_buffer(mu):
    """The same relation read the other way: ema is torch's dampening = mu, from a zero buffer."""
    params, grads = _arrays(seed=5)
    got = _run_inertia_functional(params, grads, convention="ema", momentum=mu)
    want = _run_torch_functional(params, grads, zero_first_buffer=True, momentum=mu,
                                 dampening=mu)
    _assert_all_close(got, want)
    # here the zero buffer matters: torch's own first buffer is g, undamped
    plain = _run_torch_functional(params, grads, momentum=mu, dampening=mu)
    assert not np.allclose(got[0], plain[0], rtol=1e-6)


def test_ema_end_to_end_equals_torch():
    X, y = _regression_data()
    net = _regression_net()
    model = _torch_copy(net)
    mu = 0.9
    opt = inertia.SGD(LR0, momentum=mu, nesterov=True, weight_decay=1e-2, convention="ema")
    inertia.fit(net, X, y, "mse", opt, epochs=STEPS, progress=False)
    topt = torch.optim.SGD(model.parameters(), lr=LR0 * (1 - mu), momentum=mu, nesterov=True,
                           weight_decay=1e-2)
    for p in model.parameters():
        topt.state[p]["momentum_buffer"] = torch.zeros_like(p)
    Xt, yt = torch.from_numpy(X), torch.from_numpy(y)
    for _ in range(STEPS):
        topt.zero_grad()
        nn.MSELoss()(model(Xt), yt).backward()
        topt.step()
    _assert_same_weights(net, model)


# ---------------------------------------------------------------------------------------------
# 5. real optax, when installed
# ---------------------------------------------------------------------------------------------
@pytest.mark.parametrize("mu,nest,wd", TIED, ids=[_tied_ids(c) for c in TIED])
def test_optax_convention_equals_real_optax(mu, nest, wd):
    optax = pytest.importorskip("optax")
    jax = pytest.importorskip("jax")
    jax.config.update("jax_enable_x64", True)
    jnp = jax.numpy

    params, grads = _arrays(seed=6)
    got = _run_inertia_functional(params, grads, convention="optax", momentum=mu,
                                  nesterov=nest, weight_decay=wd)

    def make(learning_rate):
        return optax.chain(optax.add_decayed_weights(wd),
                           optax.sgd(learning_rate, momentum=mu, nesterov=nest))

    tx = optax.inject_hyperparams(make)(learning_rate=LR0)
    ps = [jnp.asarray(p, dtype=jnp.float64) for p in params]
    state = tx.init(ps)
    for t, gs in enumerate(grads):
        if t == SWITCH:
            state.hyperparams["learning_rate"] = jnp.asarray(LR1, dtype=jnp.float64)
        updates, state = tx.update([jnp.asarray(g, dtype=jnp.float64) for g in gs], state, ps)
        ps = optax.apply_updates(ps, updates)
    _assert_all_close(got, [np.asarray(p) for p in ps])
