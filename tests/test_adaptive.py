"""Adam, AdamW, QHM and AggMo.

1. Adam / AdamW (amsgrad, weight decay, an lr change mid-run via ``set``) against the real
   torch.optim.Adam / AdamW in float64: functional form step by step, and network form
   (``fit`` vs an nn.Sequential with the same initial weights; full batch and mini-batch,
   mse and cross-entropy).
2. QHM: nu = 0 is plain SGD, nu = 1 is the EMA convention, nu = beta is torch's Nesterov SGD
   with lr (1 - beta); and QHM against a transcription of facebookresearch/qhoptim's step.
3. AggMo against a transcription of the authors' step (AtheMathmo/AggMo); betas [0] is plain
   SGD and betas [mu] is PyTorch's momentum SGD.
4. Network form of all four: fused ``fit`` == the unfused loop (net.gradients + opt.step +
   set_parameters); save/load mid-run is bitwise; bad hyperparameters raise one-line errors.
"""

import numpy as np
import pytest

import inertia

torch = pytest.importorskip("torch")
nn = torch.nn

STEPS = 50
SWITCH = 25
SHAPES = [(4, 3), (4,), (2, 4), (2,)]


def _arrays(seed=0, steps=STEPS):
    rng = np.random.default_rng(seed)
    params = [rng.standard_normal(s) for s in SHAPES]
    grads = [[rng.standard_normal(s) for s in SHAPES] for _ in range(steps)]
    return params, grads


def _assert_close(got, want, rtol, atol=0.0):
    assert len(got) == len(want)
    for k, (a, b) in enumerate(zip(got, want)):
        np.testing.assert_allclose(a, b, rtol=rtol, atol=atol, err_msg=f"array {k}")


def _assert_equal(got, want):
    assert len(got) == len(want)
    for k, (a, b) in enumerate(zip(got, want)):
        np.testing.assert_array_equal(a, b, err_msg=f"array {k}")


def one_line(ei):
    msg = str(ei.value)
    assert msg and "\n" not in msg, msg


# ---------------------------------------------------------------------------------------------
# 1. Adam / AdamW vs torch, functional
# ---------------------------------------------------------------------------------------------
ADAM_CASES = {
    "adam": ("adam", dict(lr=0.01)),
    "adam-amsgrad": ("adam", dict(lr=0.01, amsgrad=True)),
    "adam-wd": ("adam", dict(lr=0.01, weight_decay=0.1)),
    "adam-wd-amsgrad-betas-eps": ("adam", dict(lr=0.02, betas=(0.5, 0.9), eps=1e-3,
                                               weight_decay=0.05, amsgrad=True)),
    "adamw": ("adamw", dict(lr=0.01)),                      # default weight_decay 0.01
    "adamw-wd-amsgrad": ("adamw", dict(lr=0.01, weight_decay=0.3, amsgrad=True)),
    "adamw-betas-eps": ("adamw", dict(lr=0.05, betas=(0.8, 0.99), eps=1e-4, weight_decay=0.0)),
}
LR1 = 0.003


def _inertia_adam(kind, kw):
    return (inertia.Adam if kind == "adam" else inertia.AdamW)(**kw)


def _torch_adam(kind, params, kw):
    cls = torch.optim.Adam if kind == "adam" else torch.optim.AdamW
    kw = dict(kw)
    if kind == "adamw":
        kw.setdefault("weight_decay", 0.01)     # torch's AdamW default is 0.01 as well
    return cls(params, foreach=False, **kw)


@pytest.mark.parametrize("case", list(ADAM_CASES))
def test_adam_functional_matches_torch(case):
    kind, kw = ADAM_CASES[case]
    params, grads = _arrays()
    ps = [p.copy() for p in params]
    opt = _inertia_adam(kind, kw)
    state = opt.init(ps)
    ts = [torch.tensor(p, dtype=torch.float64, requires_grad=True) for p in params]
    topt = _torch_adam(kind, ts, kw)
    for t, g in enumerate(grads):
        if t == SWITCH:
            opt.set(lr=LR1)
            for group in topt.param_groups:
                group["lr"] = LR1
        opt.step(ps, [x.copy() for x in g], state)
        for p, x in zip(ts, g):
            p.grad = torch.tensor(x, dtype=torch.float64)
        topt.step()
        _assert_close(ps, [p.detach().numpy() for p in ts], rtol=1e-10, atol=1e-13)
    assert state.step == STEPS
    # the state holds torch's buffers
    for j, p in enumerate(ts):
        st = topt.state[p]
        np.testing.assert_allclose(state.exp_avg[j], st["exp_avg"].numpy(), rtol=1e-10,
                                   atol=1e-14)
        np.testing.assert_allclose(state.exp_avg_sq[j], st["exp_avg_sq"].numpy(), rtol=1e-10,
                                   atol=1e-14)
        if kw.get("amsgrad"):
            np.testing.assert_allclose(state.max_exp_avg_sq[j], st["max_exp_avg_sq"].numpy(),
                                       rtol=1e-10, atol=1e-14)
    assert not np.allclose(ps[0], params[0])


def test_adam_grads_are_not_modified_and_state_is_separate():
    params, grads = _arrays(steps=3)
    opt = inertia.Adam(0.01, weight_decay=0.1)
    ps = [p.copy() for p in params]
    state = opt.init(ps)
    g0 = [x.copy() for x in grads[0]]
    opt.step(ps, grads[0], state)
    _assert_equal(grads[0], g0)
    assert opt.state is None          # the functional form leaves the optimizer's own state


# ---------------------------------------------------------------------------------------------
# 1b. Adam / AdamW vs torch, network
# ---------------------------------------------------------------------------------------------
_TORCH_ACT = {"tanh": nn.Tanh, "sigmoid": nn.Sigmoid, "relu": nn.ReLU, "linear": None,
              "softmax": None}


def _torch_copy(net):
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
    return [(m.weight.detach().numpy().copy(), m.bias.detach().numpy().copy())
            for m in model if isinstance(m, nn.Linear)]


def _problem(loss, seed=3):
    rng = np.random.default_rng(seed)
    X = rng.standard_normal((64, 3))
    if loss == "mse":
        y = np.sin(X[:, :1]) + 0.5 * X[:, 1:2] * X[:, 2:3] + 0.1 * rng.standard_normal((64, 1))
        net = inertia.Network(3, [inertia.Dense(8, "tanh"), inertia.Dense(4, "sigmoid"),
                                  inertia.Dense(1, "linear")], seed=7, dtype="float64")
        return X, y, y, net, nn.MSELoss()
    labels = np.digitize(X[:, 0] + 0.5 * X[:, 1], [-0.5, 0.5]).astype(np.int64)
    net = inertia.Network(3, [inertia.Dense(8, "tanh"), inertia.Dense(3, "softmax")], seed=13,
                          dtype="float64")
    return X, labels, labels, net, nn.CrossEntropyLoss()


@pytest.mark.parametrize("batch_size", [None, 32], ids=["full", "mini"])
@pytest.mark.parametrize("loss", ["mse", "cross_entropy"])
@pytest.mark.parametrize("case", ["adam", "adam-wd-amsgrad-betas-eps", "adamw",
                                  "adamw-wd-amsgrad"])
def test_adam_network_matches_torch(case, loss, batch_size):
    kind, kw = ADAM_CASES[case]
    X, y, yt, net, crit = _problem(loss)
    model = _torch_copy(net)
    opt = _inertia_adam(kind, kw)
    topt = _torch_adam(kind, model.parameters(), kw)
    # 30 steps: 30 full-batch epochs, or 15 epochs of 2 batches of 32 (shuffle=False)
    epochs = 30 if batch_size is None else 15
    half = epochs // 2
    inertia.fit(net, X, y, loss, opt, epochs=half, batch_size=batch_size, shuffle=False,
                progress=False)
    opt.set(lr=LR1)
    inertia.fit(net, X, y, loss, opt, epochs=epochs - half, batch_size=batch_size,
                shuffle=False, progress=False)
    Xt, ytt = torch.from_numpy(X), torch.from_numpy(yt)
    bs = X.shape[0] if batch_size is None else batch_size
    for ep in range(epochs):
        if ep == half:
            for group in topt.param_groups:
                group["lr"] = LR1
        for s in range(0, X.shape[0], bs):
            topt.zero_grad()
            crit(model(Xt[s:s + bs]), ytt[s:s + bs]).backward()
            topt.step()
    assert opt.state.step == 30
    for k, ((W, b), (Wt, bt)) in enumerate(zip(net.parameters(), _torch_params(model))):
        np.testing.assert_allclose(W, Wt, rtol=1e-9, atol=1e-12, err_msg=f"layer {k} W")
        np.testing.assert_allclose(b, bt, rtol=1e-9, atol=1e-12, err_msg=f"layer {k} b")


# ---------------------------------------------------------------------------------------------
# 2. QHM
# ---------------------------------------------------------------------------------------------
def _run(opt, params, grads, lrs=None):
    ps = [p.copy() for p in params]
    state = opt.init(ps)
    for t, g in enumerate(grads):
        if lrs is not None and t in lrs:
            opt.set(lr=lrs[t])
        opt.step(ps, [x.copy() for x in g], state)
    return ps


@pytest.mark.parametrize("wd", [0.0, 0.01])
def test_qhm_nu0_is_plain_sgd_exactly(wd):
    params, grads = _arrays()
    got = _run(inertia.QHM(0.1, momentum=0.9, nu=0.0, weight_decay=wd), params, grads,
               {SWITCH: 0.03})
    want = _run(inertia.SGD(0.1, momentum=0.0, weight_decay=wd, convention="pytorch"),
                params, grads, {SWITCH: 0.03})
    _assert_equal(got, want)


@pytest.mark.parametrize("wd", [0.0, 0.01])
def test_qhm_nu1_is_ema_momentum(wd):
    params, grads = _arrays()
    got = _run(inertia.QHM(0.1, momentum=0.9, nu=1.0, weight_decay=wd), params, grads,
               {SWITCH: 0.03})
    want = _run(inertia.SGD(0.1, momentum=0.9, weight_decay=wd, convention="ema"), params,
                grads, {SWITCH: 0.03})
    # the same sums in another order (the weight decay joins the buffer before or after the
    # gradient): each step may differ by a few ulps of the largest parameter, and elements
    # near zero carry the absolute error of the terms that cancelled there
    scale = max(float(np.abs(w).max()) for w in want)
    _assert_close(got, want, rtol=0, atol=STEPS * 4 * np.finfo(np.float64).eps * scale)


@pytest.mark.parametrize("beta,wd", [(0.9, 0.0), (0.9, 0.01), (0.5, 0.1)])
def test_qhm_nu_beta_is_torch_nesterov(beta, wd):
    """nu = beta: w -= lr ((1 - beta) g + beta buf), buf the EMA, is torch's Nesterov SGD
    w -= lr (1 - beta) (g + beta b), b = beta b + g."""
    lr = 0.2
    params, grads = _arrays()
    got = _run(inertia.QHM(lr, momentum=beta, nu=beta, weight_decay=wd), params, grads)
    ts = [torch.tensor(p, dtype=torch.float64, requires_grad=True) for p in params]
    topt = torch.optim.SGD(ts, lr=lr * (1 - beta), momentum=beta, nesterov=True,
                           weight_decay=wd)
    for g in grads:
        for p, x in zip(ts, g):
            p.grad = torch.tensor(x, dtype=torch.float64)
        topt.step()
    _assert_close(got, [p.detach().numpy() for p in ts], rtol=1e-10, atol=1e-13)


def _qhoptim_qhm(params, grads, lr, momentum, nu, weight_decay, lrs=None):
    """A NumPy transcription of facebookresearch/qhoptim, qhoptim/pyt/qhm.py, QHM.step
    (weight_decay_type="grad"):

        d_p = p.grad.data
        if weight_decay != 0: d_p.add_(weight_decay, p.data)
        if len(param_state) == 0: param_state["momentum_buffer"] = torch.zeros_like(p.data)
        momentum_buffer.mul_(momentum).add_(1.0 - momentum, d_p)
        p.data.add_(-lr * nu, momentum_buffer)
        p.data.add_(-lr * (1.0 - nu), d_p)
    """
    ps = [p.copy() for p in params]
    bufs = [np.zeros_like(p) for p in ps]
    for t, gs in enumerate(grads):
        if lrs is not None and t in lrs:
            lr = lrs[t]
        for p, buf, g in zip(ps, bufs, gs):
            d_p = g.copy()
            if weight_decay != 0:
                d_p += weight_decay * p
            buf *= momentum
            buf += (1.0 - momentum) * d_p
            p += -lr * nu * buf
            p += -lr * (1.0 - nu) * d_p
    return ps


@pytest.mark.parametrize("momentum,nu,wd", [(0.999, 0.7, 0.0), (0.9, 0.7, 0.01),
                                             (0.95, 0.3, 0.1), (0.5, 0.0, 0.01),
                                             (0.8, 1.0, 0.01)])
def test_qhm_matches_qhoptim_transcription(momentum, nu, wd):
    params, grads = _arrays()
    got = _run(inertia.QHM(0.5, momentum=momentum, nu=nu, weight_decay=wd), params, grads,
               {SWITCH: 0.2})
    want = _qhoptim_qhm(params, grads, 0.5, momentum, nu, wd, {SWITCH: 0.2})
    _assert_close(got, want, rtol=1e-12, atol=1e-14)
    assert not np.allclose(got[0], params[0])


def test_qhm_defaults_are_qhoptim_recommended():
    opt = inertia.QHM(1.0)
    assert opt.momentum == 0.999 and opt.nu == 0.7 and opt.weight_decay == 0.0


# ---------------------------------------------------------------------------------------------
# 3. AggMo
# ---------------------------------------------------------------------------------------------
def _authors_aggmo(params, grads, lr, betas, weight_decay, lrs=None):
    """A NumPy transcription of AtheMathmo/AggMo, aggmo.py, AggMo.step:

        d_p = p.grad.data
        if weight_decay != 0: d_p.add_(weight_decay, p.data)      # once, before the loop
        (buffers start at zeros_like(p), one per beta)
        for beta in betas:
            buf.mul_(beta).add_(d_p)
            p.data.sub_(group['lr'] / total_mom, buf)              # total_mom = len(betas)
    """
    ps = [p.copy() for p in params]
    bufs = [[np.zeros_like(p) for _ in betas] for p in ps]
    K = float(len(betas))
    for t, gs in enumerate(grads):
        if lrs is not None and t in lrs:
            lr = lrs[t]
        for p, pb, g in zip(ps, bufs, gs):
            d_p = g.copy()
            if weight_decay != 0:
                d_p += weight_decay * p
            for buf, beta in zip(pb, betas):
                buf *= beta
                buf += d_p
                p -= (lr / K) * buf
    return ps


@pytest.mark.parametrize("betas,wd", [((0.0, 0.9, 0.99), 0.0), ((0.0, 0.9, 0.99), 0.01),
                                      ((0.5, 0.9), 0.1), ((0.0, 0.9, 0.99, 0.999), 0.001)])
def test_aggmo_matches_authors_transcription(betas, wd):
    params, grads = _arrays()
    got = _run(inertia.AggMo(0.05, betas=betas, weight_decay=wd), params, grads,
               {SWITCH: 0.02})
    want = _authors_aggmo(params, grads, 0.05, betas, wd, {SWITCH: 0.02})
    _assert_close(got, want, rtol=1e-12, atol=1e-14)
    assert not np.allclose(got[0], params[0])


@pytest.mark.parametrize("wd", [0.0, 0.01])
def test_aggmo_beta0_is_plain_sgd(wd):
    params, grads = _arrays()
    got = _run(inertia.AggMo(0.1, betas=[0.0], weight_decay=wd), params, grads, {SWITCH: 0.03})
    want = _run(inertia.SGD(0.1, weight_decay=wd), params, grads, {SWITCH: 0.03})
    _assert_equal(got, want)


@pytest.mark.parametrize("mu,wd", [(0.9, 0.0), (0.9, 0.01), (0.5, 0.1)])
def test_aggmo_single_beta_is_torch_momentum_sgd(mu, wd):
    """K = 1: b = mu b + g (from 0, so b_1 = g as torch's first buffer); w -= lr b."""
    params, grads = _arrays()
    got = _run(inertia.AggMo(0.1, betas=[mu], weight_decay=wd), params, grads)
    ts = [torch.tensor(p, dtype=torch.float64, requires_grad=True) for p in params]
    topt = torch.optim.SGD(ts, lr=0.1, momentum=mu, weight_decay=wd)
    for g in grads:
        for p, x in zip(ts, g):
            p.grad = torch.tensor(x, dtype=torch.float64)
        topt.step()
    _assert_close(got, [p.detach().numpy() for p in ts], rtol=1e-10, atol=1e-13)
    # and inertia's own pytorch convention
    want = _run(inertia.SGD(0.1, momentum=mu, weight_decay=wd), params, grads)
    _assert_close(got, want, rtol=1e-12, atol=1e-14)


def test_aggmo_number_of_betas_is_fixed_while_it_has_a_state():
    opt = inertia.AggMo(0.1, betas=[0.0, 0.9])
    net = inertia.Network(3, [inertia.Dense(2)], dtype="float64")
    inertia.fit(net, np.ones((4, 3)), np.ones((4, 2)), "mse", opt, epochs=1, progress=False)
    before = opt.config()
    with pytest.raises(ValueError) as ei:
        opt.set(lr=0.5, weight_decay=0.1, betas=[0.0, 0.5, 0.9])
    one_line(ei)
    assert opt.config() == before             # a refused set changes nothing
    opt.set(betas=[0.1, 0.8])                  # same count: fine
    assert opt.betas == (0.1, 0.8)


def test_aggmo_betas_count_change_in_a_fit_schedule_raises_before_training():
    """fit checks every segment before the first step: a segment that changes the number of
    betas of an optimizer with a state must be refused up front, not after training."""
    X, y, _, net, _ = _problem("mse")
    opt = inertia.AggMo(0.05, betas=[0.0, 0.9])
    inertia.fit(net, X, y, "mse", opt, epochs=1, progress=False)
    start = _flat(net)
    with pytest.raises(ValueError) as ei:
        inertia.fit(net, X, y, "mse", opt, schedule=[(3, {}), (3, {"betas": [0.0, 0.5, 0.9]})],
                    progress=False)
    one_line(ei)
    _assert_equal(_flat(net), start)
    assert opt.state.step == 1


# ---------------------------------------------------------------------------------------------
# 4. network form: fused == unfused; save/load; bad hyperparameters
# ---------------------------------------------------------------------------------------------
NET_OPTS = {
    "qhm": lambda: inertia.QHM(0.5, momentum=0.9, nu=0.7, weight_decay=0.01),
    "aggmo": lambda: inertia.AggMo(0.05, betas=(0.0, 0.9, 0.99), weight_decay=0.01),
    "adam": lambda: inertia.Adam(0.01, weight_decay=0.01),
    "adam-amsgrad": lambda: inertia.Adam(0.01, amsgrad=True),
    "adamw": lambda: inertia.AdamW(0.01, weight_decay=0.1),
}


def _flat(net):
    return [x for wb in net.parameters() for x in wb]


def _unflat(flat):
    return [(flat[i], flat[i + 1]) for i in range(0, len(flat), 2)]


@pytest.mark.parametrize("loss", ["mse", "cross_entropy"])
@pytest.mark.parametrize("name", list(NET_OPTS))
def test_fused_fit_equals_unfused_loop(name, loss):
    X, y, _, net, _ = _problem(loss)
    ref = net.copy()
    opt = NET_OPTS[name]()
    inertia.fit(net, X, y, loss, opt, epochs=30, progress=False)

    uopt = NET_OPTS[name]()
    params = _flat(ref)
    state = uopt.init(params)
    for _ in range(30):
        _, grads = ref.gradients(X, y, loss)
        uopt.step(params, [g for gb in grads for g in gb], state, n=X.shape[0])
        ref.set_parameters(_unflat(params))
    _assert_close(_flat(net), _flat(ref), rtol=1e-10, atol=1e-12)
    assert state.step == opt.state.step == 30
    for name_ in opt.STATE_LISTS:
        _assert_close(getattr(opt.state, name_), getattr(state, name_), rtol=1e-10,
                      atol=1e-12)


@pytest.mark.parametrize("name", list(NET_OPTS))
def test_fused_fit_equals_unfused_loop_mini_batch(name):
    X, y, _, net, _ = _problem("mse")
    ref = net.copy()
    opt = NET_OPTS[name]()
    inertia.fit(net, X, y, "mse", opt, epochs=5, batch_size=24, shuffle=False, progress=False)
    uopt = NET_OPTS[name]()
    params = _flat(ref)
    state = uopt.init(params)
    for _ in range(5):
        for s in range(0, 64, 24):                        # 24, 24, 16
            _, grads = ref.gradients(X[s:s + 24], y[s:s + 24], "mse")
            uopt.step(params, [g for gb in grads for g in gb], state, n=len(X[s:s + 24]))
            ref.set_parameters(_unflat(params))
    _assert_close(_flat(net), _flat(ref), rtol=1e-10, atol=1e-12)


SAVE_OPTS = {
    "qhm": NET_OPTS["qhm"],
    "aggmo": NET_OPTS["aggmo"],
    "adam-amsgrad": lambda: inertia.Adam(0.01, betas=(0.8, 0.99), eps=1e-6, weight_decay=0.01,
                                         amsgrad=True),
    "adamw": NET_OPTS["adamw"],
}


@pytest.mark.parametrize("batch_size", [None, 16], ids=["full", "mini"])
@pytest.mark.parametrize("name", list(SAVE_OPTS))
def test_save_load_resume_is_bitwise(tmp_path, name, batch_size):
    X, y, _, net, _ = _problem("mse")
    b = net.copy()
    N = 6
    oa = SAVE_OPTS[name]()
    inertia.fit(net, X, y, "mse", oa, epochs=2 * N, batch_size=batch_size, shuffle=False,
                progress=False)
    ob = SAVE_OPTS[name]()
    inertia.fit(b, X, y, "mse", ob, epochs=N, batch_size=batch_size, shuffle=False,
                progress=False)
    path = tmp_path / f"{name}.npz"
    inertia.save(path, b, ob)
    c, oc = inertia.load(path)
    assert type(oc) is type(ob) and oc.config() == ob.config()
    assert oc.state.step == ob.state.step
    for name_ in ob.STATE_LISTS:                 # the loaded state is the saved one
        _assert_equal(getattr(oc.state, name_), getattr(ob.state, name_))
    inertia.fit(c, X, y, "mse", oc, epochs=N, batch_size=batch_size, shuffle=False,
                progress=False)
    _assert_equal(_flat(c), _flat(net))
    for name_ in oa.STATE_LISTS:
        _assert_equal(getattr(oc.state, name_), getattr(oa.state, name_))
    assert oc.state.step == oa.state.step


@pytest.mark.parametrize("make", [
    lambda: inertia.Adam(lr=0.0), lambda: inertia.Adam(lr=-0.01),
    lambda: inertia.Adam(betas=(1.0, 0.999)), lambda: inertia.Adam(betas=(0.9, 1.0)),
    lambda: inertia.Adam(betas=(-0.1, 0.999)), lambda: inertia.Adam(betas=(0.9, -0.5)),
    lambda: inertia.Adam(betas=(0.9,)), lambda: inertia.Adam(betas=0.9),
    lambda: inertia.Adam(eps=-1e-8), lambda: inertia.Adam(eps=float("nan")),
    lambda: inertia.Adam(weight_decay=-0.1), lambda: inertia.AdamW(lr=0.0),
    lambda: inertia.AdamW(betas=(0.9, 1.5)), lambda: inertia.AdamW(eps=-1.0),
    lambda: inertia.AdamW(weight_decay=-1e-3),
    lambda: inertia.QHM(0.1, nu=-0.1), lambda: inertia.QHM(0.1, nu=1.1),
    lambda: inertia.QHM(0.0), lambda: inertia.QHM(0.1, momentum=1.0),
    lambda: inertia.QHM(0.1, momentum=-0.1), lambda: inertia.QHM(0.1, weight_decay=-1.0),
    lambda: inertia.QHM(0.1, nu=float("nan")),
    lambda: inertia.AggMo(0.1, betas=[]), lambda: inertia.AggMo(0.1, betas=()),
    lambda: inertia.AggMo(0.1, betas=[0.0, 1.0]), lambda: inertia.AggMo(0.1, betas=[1.5]),
    lambda: inertia.AggMo(0.1, betas=[-0.1]), lambda: inertia.AggMo(0.0),
    lambda: inertia.AggMo(0.1, weight_decay=-0.1), lambda: inertia.AggMo(0.1, betas=0.9),
])
def test_bad_hyperparameters_raise_one_line(make):
    with pytest.raises(ValueError) as ei:
        make()
    one_line(ei)


@pytest.mark.parametrize("opt,change", [
    (inertia.Adam(0.01), dict(betas=(0.9, 1.0))), (inertia.Adam(0.01), dict(eps=-1.0)),
    (inertia.Adam(0.01), dict(lr=0.0)), (inertia.AdamW(0.01), dict(lr=-1.0)),
    (inertia.QHM(0.1), dict(nu=2.0)), (inertia.QHM(0.1), dict(momentum=1.0)),
    (inertia.AggMo(0.1), dict(betas=[])), (inertia.AggMo(0.1), dict(betas=[0.0, 0.9, 1.0])),
    (inertia.Adam(0.01), dict(amsgrad=True)), (inertia.QHM(0.1), dict(betas=[0.9])),
])
def test_bad_set_raises_one_line_and_changes_nothing(opt, change):
    before = opt.config()
    with pytest.raises(ValueError) as ei:
        opt.set(**change)
    one_line(ei)
    assert opt.config() == before


def test_boundary_hyperparameters_accepted():
    inertia.Adam(betas=(0.0, 0.0), eps=0.0)
    inertia.QHM(0.1, momentum=0.0, nu=0.0)
    inertia.QHM(0.1, nu=1.0)
    inertia.AggMo(0.1, betas=[0.0])
