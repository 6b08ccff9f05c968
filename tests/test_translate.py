"""inertia.translate: every translation of docs/CONVENTIONS.md ("Translating between
frameworks") run on both sides, against the real peer library where it is installed.

Each run is 100 steps on float64 parameters (a 3x4 weight matrix and a bias vector) whose
gradient is a fixed affine function of the parameters, g = A x + c, so that the trajectories
couple: a wrong step changes every later gradient. The learning rate changes twice during a
run (``opt.set(lr=...)`` on the inertia side, the peer's own learning-rate setting on the
other), and ``translate`` is told the schedule.
"""

import os
import warnings

os.environ.setdefault("KERAS_BACKEND", "torch")

import numpy as np  # noqa: E402
import pytest  # noqa: E402
from hypothesis import HealthCheck, given, note, settings  # noqa: E402
from hypothesis import strategies as st  # noqa: E402

import inertia  # noqa: E402
from inertia import NotRepresentable, translate  # noqa: E402
from inertia.cli import main  # noqa: E402
from inertia.optim import nesterov as nesterov_coords  # noqa: E402
from inertia.optim.translate import (  # noqa: E402
    carried_state, framework_call, lr_factor, translation)

STEPS = 100
N = 8                        # the batch size passed to the per-n decay conventions
RTOL = 1e-9
CONVS = list(inertia.CONVENTIONS)


# --------------------------------------------------------------------------- the problem
def problem(seed=0, shapes=((3, 4), (3,))):
    """Initial parameters and g(params) = A x + c on the flattened parameters x."""
    r = np.random.default_rng(seed)
    params = [r.normal(size=s) for s in shapes]
    dim = sum(int(np.prod(s)) for s in shapes)
    Q, _ = np.linalg.qr(r.normal(size=(dim, dim)))
    A = Q @ np.diag(r.uniform(0.2, 1.0, size=dim)) @ Q.T
    c = r.normal(size=dim)

    def grad(ps):
        x = np.concatenate([np.ravel(p) for p in ps])
        g = A @ x + c
        out, i = [], 0
        for s in shapes:
            k = int(np.prod(s))
            out.append(g[i:i + k].reshape(s))
            i += k
        return out

    return params, grad


def lr_steps(lr, changing=True):
    """lr for 30 steps, then 0.4 lr for 35, then 0.6 lr: two changes, one down, one up."""
    if not changing:
        return [lr] * STEPS
    return [lr] * 30 + [0.4 * lr] * 35 + [0.6 * lr] * (STEPS - 65)


def run(opt, params0, grad, lrs, n=N):
    """The trajectory (steps x parameters, flattened) of an inertia optimizer."""
    params = [p.copy() for p in params0]
    state = opt.init(params)
    out = []
    for lr in lrs:
        opt.set(lr=lr)
        at = opt.lookahead_point(params, state) if getattr(opt, "lookahead", False) else params
        opt.step(params, grad(at), state, n=n)
        out.append(np.concatenate([p.ravel() for p in params]))
    return np.array(out)


def assert_same(got, want, rtol=RTOL, what=""):
    scale = np.abs(want).max()
    np.testing.assert_allclose(got, want, rtol=rtol, atol=1e-3 * rtol * scale, err_msg=what)


def rel_diff(a, b):
    return np.abs(a - b).max() / np.abs(b).max()


def schedule_of(lrs):
    return lambda k: lrs[k]


# --------------------------------------------------------------------------- the table
# (source convention, source hyperparameters, target): every exact row of the table
EXACT = [
    # heavy ball, lr outside, zero start: pytorch (d = 0) == tf1 == optax
    ("pytorch", dict(momentum=0.9), "tf1"),
    ("pytorch", dict(momentum=0.9, nesterov=True, weight_decay=0.05), "optax"),
    ("tf1", dict(momentum=0.9, weight_decay=0.05), "pytorch"),
    ("optax", dict(momentum=0.8, nesterov=True), "pytorch"),
    ("tf1", dict(momentum=0.9, nesterov=True, weight_decay=0.05), "optax"),
    ("pytorch", dict(momentum=0.9, momentum_correction=True), "tf1"),
    # ema(lr) == tf1(lr (1 - mu)), with coupled decay and Nesterov
    ("ema", dict(momentum=0.9, weight_decay=0.05), "pytorch"),
    ("ema", dict(momentum=0.9, nesterov=True), "tf1"),
    ("pytorch", dict(momentum=0.9, nesterov=True, weight_decay=0.05), "ema"),
    ("optax", dict(momentum=0.9), "ema"),
    # lr outside <-> lr inside (wd = 0): v = -lr b, momentum correction switched
    ("pytorch", dict(momentum=0.9), "keras"),
    ("pytorch", dict(momentum=0.9, nesterov=True), "keras"),
    ("keras", dict(momentum=0.9), "pytorch"),
    ("keras", dict(momentum=0.9, nesterov=True), "tf1"),
    ("tf1", dict(momentum=0.9, nesterov=True), "sklearn"),
    ("sklearn", dict(momentum=0.9, nesterov=True), "pytorch"),
    ("ema", dict(momentum=0.9), "keras"),
    ("keras", dict(momentum=0.9, nesterov=True), "ema"),
    ("sklearn", dict(momentum=0.9), "optax"),
    ("keras", dict(momentum=0.9, momentum_correction=True), "pytorch"),
    ("pytorch", dict(momentum=0.9, momentum_correction=True), "keras"),
    # keras == sklearn (wd = 0)
    ("keras", dict(momentum=0.9, nesterov=True), "sklearn"),
    ("sklearn", dict(momentum=0.9), "keras"),
    # momentum 0: plain SGD
    ("pytorch", dict(dampening=0.5, weight_decay=0.05), "keras"),
    ("keras", dict(weight_decay=0.05), "tf1"),
    ("ema", dict(weight_decay=0.05), "optax"),
    ("keras", dict(weight_decay=0.05), "pytorch"),
    ("sklearn", dict(weight_decay=0.5), "neanderthal"),
    ("neanderthal", dict(weight_decay=0.5), "sklearn"),
    ("previous_delta", dict(), "pytorch"),
    ("keras", dict(), "previous_delta"),
    ("neanderthal", dict(), "keras"),
    ("tf1", dict(), "neanderthal"),
    ("pytorch", dict(), "sklearn"),
    # the same convention
    ("pytorch", dict(momentum=0.9, dampening=0.5, weight_decay=0.05), "pytorch"),
    ("keras", dict(momentum=0.9, weight_decay=0.05), "keras"),
    ("sklearn", dict(momentum=0.9, nesterov=True, weight_decay=0.5), "sklearn"),
    ("neanderthal", dict(momentum=0.9, nesterov=True, weight_decay=0.5), "neanderthal"),
    ("previous_delta", dict(momentum=0.5), "previous_delta"),
]

# (source convention, source hyperparameters, target, a word the reason must contain)
NOT_REPRESENTABLE = [
    ("pytorch", dict(momentum=0.9, dampening=0.5), "tf1", "undamped"),
    ("pytorch", dict(momentum=0.9, dampening=0.9), "ema", "undamped"),
    ("pytorch", dict(momentum=0.9, dampening=0.5), "keras", "undamped"),
    ("tf1", dict(momentum=0.9, weight_decay=0.05), "keras", "decoupled"),
    ("keras", dict(momentum=0.9, weight_decay=0.05), "pytorch", "decoupled"),
    ("ema", dict(momentum=0.9, weight_decay=0.05), "keras", "decoupled"),
    ("sklearn", dict(momentum=0.9, weight_decay=0.5), "keras", "biases"),
    ("sklearn", dict(momentum=0.9, weight_decay=0.5), "tf1", "biases"),
    ("sklearn", dict(weight_decay=0.5), "pytorch", "biases"),
    ("keras", dict(weight_decay=0.05), "sklearn", "biases"),
    ("neanderthal", dict(momentum=0.9), "keras", "plain SGD"),
    ("keras", dict(momentum=0.9), "neanderthal", "plain SGD"),
    ("neanderthal", dict(momentum=0.9, nesterov=True), "keras", "to_reparameterised"),
    ("keras", dict(momentum=0.9, nesterov=True), "neanderthal", "look-ahead"),
    ("previous_delta", dict(momentum=0.5), "keras", "two-tap"),
    ("tf1", dict(momentum=0.5), "previous_delta", "previous"),
    ("tf1", dict(weight_decay=0.05), "previous_delta", "no weight decay"),
]


def _ids(cases):
    return [f"{c[0]}->{c[2]}:" + ",".join(f"{k}={v}" for k, v in c[1].items()) for c in cases]


@pytest.mark.parametrize("changing", [True, False], ids=["lr-change", "constant-lr"])
@pytest.mark.parametrize("source,hyper,target", EXACT, ids=_ids(EXACT))
def test_exact_translation_runs_the_same(source, hyper, target, changing):
    params0, grad = problem(seed=1)
    lr = 0.5 if hyper.get("momentum", 0) == 0 else 0.1
    lrs = lr_steps(lr, changing)
    src = inertia.SGD(lr, convention=source, **hyper)
    tr = translation(src, target, schedule_of(lrs) if changing else None)
    tgt = tr.target
    assert tgt.convention.name == target and tgt.state is None
    assert translate(src, target, schedule_of(lrs) if changing else None).config() == \
        tgt.config()
    assert tr.lr_factor == pytest.approx(tgt.lr / lr, rel=1e-15)
    want = run(src, params0, grad, lrs)
    got = run(tgt, params0, grad, [tr.lr_factor * x for x in lrs])
    assert_same(got, want, what=f"{source} -> {target}")
    if changing and tr.lr_factor != 1:                   # the target's schedule is scaled
        assert tr.lr_schedule(40) == pytest.approx(tr.lr_factor * lrs[40], rel=1e-15)


@pytest.mark.parametrize("source,hyper", [("pytorch", dict(momentum=0.9)),
                                          ("keras", dict(momentum=0.9, nesterov=True)),
                                          ("ema", dict(momentum=0.8)),
                                          ("sklearn", dict(momentum=0.9))])
def test_lr_inside_outside_need_the_schedule(source, hyper):
    """Across lr-inside and lr-outside, the constant-lr translation diverges after an lr
    change; with the schedule it does not (the target's correction is switched)."""
    params0, grad = problem(seed=2)
    lrs = lr_steps(0.1)
    target = "keras" if not inertia.CONVENTIONS[source].lr_inside else "tf1"
    src = inertia.SGD(0.1, convention=source, **hyper)
    want = run(src, params0, grad, lrs)
    f = lr_factor(src, target)
    naive = translate(src, target)
    assert not naive.momentum_correction
    assert rel_diff(run(naive, params0, grad, [f * x for x in lrs]), want) > 1e-4
    exact = translate(src, target, lr_schedule=schedule_of(lrs))
    assert exact.momentum_correction
    assert_same(run(exact, params0, grad, [f * x for x in lrs]), want)


def test_per_step_momentum_equals_the_correction():
    """pytorch -> keras under a schedule: keras without correction and a per-step momentum
    mu_k = mu lr_k / lr_(k-1) is the same as keras with momentum_correction=True."""
    params0, grad = problem(seed=3)
    mu, lrs = 0.9, [0.1] * 30 + [0.05] * 40 + [0.02] * 30     # decreasing: mu_k < 1
    want = run(inertia.SGD(0.1, mu), params0, grad, lrs)
    opt = inertia.SGD(0.1, mu, convention="keras")
    params = [p.copy() for p in params0]
    state = opt.init(params)
    got = []
    for k, lr in enumerate(lrs):
        opt.set(lr=lr, momentum=mu * lr / lrs[k - 1] if k else mu)
        opt.step(params, grad(params), state)
        got.append(np.concatenate([p.ravel() for p in params]))
    assert_same(np.array(got), want)


@pytest.mark.parametrize("source,hyper,target,word", NOT_REPRESENTABLE,
                         ids=_ids(NOT_REPRESENTABLE))
def test_not_representable_really_is(source, hyper, target, word):
    """translate refuses, with a one-line reason, and the naive translation (the same
    hyperparameters under the target's convention, where valid) does take other steps."""
    src = inertia.SGD(0.1, convention=source, **hyper)
    with pytest.raises(NotRepresentable) as ex:
        translate(src, target)
    msg = str(ex.value)
    assert word in msg and "\n" not in msg
    assert isinstance(ex.value, ValueError)
    params0, grad = problem(seed=4)
    lrs = lr_steps(0.1, changing=False)
    T = inertia.CONVENTIONS[target]
    naive = inertia.SGD(0.1, hyper.get("momentum", 0.0),
                        hyper.get("dampening", 0.0) if T.dampening else 0.0,
                        hyper.get("nesterov", False) and T.nesterov is not None,
                        hyper.get("weight_decay", 0.0) if T.weight_decay else 0.0,
                        convention=target)
    assert rel_diff(run(naive, params0, grad, lrs), run(src, params0, grad, lrs)) > 1e-4


def test_pytorch_dampening_is_not_ema_with_any_learning_rate():
    """pytorch (d = mu) and ema differ in the first buffer; no ema learning rate fixes it:
    the best single scale of the ema trajectory's displacement still misses."""
    params0, grad = problem(seed=5)
    lrs = lr_steps(0.1, changing=False)
    want = run(inertia.SGD(0.1, 0.9, dampening=0.9), params0, grad, lrs)
    for lr in (0.1, 0.1 / 0.1, 0.1 * 0.9):
        got = run(inertia.SGD(lr, 0.9, convention="ema"), params0, grad, [lr] * STEPS)
        assert rel_diff(got, want) > 1e-4


def test_lookahead_nesterov_is_the_reparameterised_one_after_the_coordinate_change():
    """The message of neanderthal (Nesterov) -> keras names to_reparameterised: with weights
    only (no biases, whose plain-SGD rule is the other obstacle) and wd = 0, the look-ahead
    iterates W shifted by mu V are keras-Nesterov's parameters at every step."""
    params0, grad = problem(seed=6, shapes=((3, 4),))
    lrs = lr_steps(0.1)
    la = inertia.SGD(0.1, 0.9, nesterov=True, convention="neanderthal")
    with pytest.raises(NotRepresentable, match="to_reparameterised"):
        translate(la, "keras")
    rp = inertia.SGD(0.1, 0.9, nesterov=True, convention="keras")
    p_la, p_rp = [p.copy() for p in params0], [p.copy() for p in params0]
    s_la, s_rp = la.init(p_la), rp.init(p_rp)
    for lr in lrs:
        la.set(lr=lr)
        rp.set(lr=lr)
        la.step(p_la, grad(la.lookahead_point(p_la, s_la)), s_la, n=N)
        rp.step(p_rp, grad(p_rp), s_rp)
        u = nesterov_coords.to_reparameterised(la, p_la, s_la)
        assert_same(u[0], p_rp[0])
    assert rel_diff(p_la[0], p_rp[0]) > 1e-4          # without the change they differ


# --------------------------------------------------------------------------- QHM, AggMo, Adam
@pytest.mark.parametrize("nu,beta,target,nest", [(1.0, 0.9, "ema", False),
                                                 (0.9, 0.9, "pytorch", True),
                                                 (0.7, 0.7, "keras", True),
                                                 (0.0, 0.9, "keras", False),
                                                 (1.0, 0.9, "sklearn", False)])
def test_qhm_translates_when_an_sgd_has_it(nu, beta, target, nest):
    params0, grad = problem(seed=7)
    lrs = lr_steps(0.5)
    wd = 0.05 if target in ("ema", "pytorch") else 0.0
    q = inertia.QHM(0.5, momentum=beta, nu=nu, weight_decay=wd)
    tr = translation(q, target, schedule_of(lrs))
    assert tr.target.nesterov == nest
    want = run(q, params0, grad, lrs)
    assert_same(run(tr.target, params0, grad, [tr.lr_factor * x for x in lrs]), want)


def test_aggmo_with_one_damping_is_the_heavy_ball():
    params0, grad = problem(seed=8)
    lrs = lr_steps(0.1)
    a = inertia.AggMo(0.1, betas=[0.9], weight_decay=0.05)
    tgt = translate(a, "optax", schedule_of(lrs))
    assert_same(run(tgt, params0, grad, lrs), run(a, params0, grad, lrs))


@pytest.mark.parametrize("opt,word", [(inertia.QHM(0.5, 0.9, 0.7), "nu"),
                                      (inertia.AggMo(0.1), "velocities"),
                                      (inertia.Adam(), "root mean square"),
                                      (inertia.AdamW(), "root mean square")])
def test_relatives_without_an_sgd_form(opt, word):
    with pytest.raises(NotRepresentable, match=word):
        translate(opt, "pytorch")


# --------------------------------------------------------------------------- the real peers
def peer_cases(targets):
    return [c for c in EXACT if c[2] in targets]


def _translated(source, hyper, target, lr):
    lrs = lr_steps(lr)
    src = inertia.SGD(lr, convention=source, **hyper)
    tr = translation(src, target, schedule_of(lrs))
    params0, grad = problem(seed=1)
    want = run(src, params0, grad, lrs)
    return tr.target, [tr.lr_factor * x for x in lrs], params0, grad, want


def _lr0(hyper):
    return 0.5 if hyper.get("momentum", 0) == 0 else 0.1


@pytest.mark.parametrize("source,hyper,target", peer_cases({"pytorch"}),
                         ids=_ids(peer_cases({"pytorch"})))
def test_torch_peer(source, hyper, target):
    torch = pytest.importorskip("torch")
    tgt, lrs, params0, grad, want = _translated(source, hyper, target, _lr0(hyper))
    ts = [torch.tensor(p.copy(), dtype=torch.float64) for p in params0]
    opt = torch.optim.SGD(ts, lr=lrs[0], momentum=tgt.momentum, dampening=tgt.dampening,
                          nesterov=tgt.nesterov, weight_decay=tgt.weight_decay)
    got, old = [], lrs[0]
    for lr in lrs:
        if lr != old:
            for group in opt.param_groups:
                group["lr"] = lr
            if tgt.momentum_correction:                 # torch has none: scale by hand
                for p in ts:
                    if "momentum_buffer" in opt.state[p]:
                        opt.state[p]["momentum_buffer"].mul_(old / lr)
            old = lr
        for p, g in zip(ts, grad([p.numpy() for p in ts])):
            p.grad = torch.tensor(g)
        opt.step()
        got.append(np.concatenate([p.numpy().ravel() for p in ts]))
    assert_same(np.array(got), want)


@pytest.fixture
def keras64():
    keras = pytest.importorskip("keras")
    old = keras.config.floatx()
    keras.config.set_floatx("float64")
    try:
        yield keras
    finally:
        keras.config.set_floatx(old)


@pytest.mark.filterwarnings("ignore:__array__ implementation:DeprecationWarning")
@pytest.mark.parametrize("source,hyper,target", peer_cases({"keras"}),
                         ids=_ids(peer_cases({"keras"})))
def test_keras_peer(keras64, source, hyper, target):
    keras = keras64
    torch = pytest.importorskip("torch")
    tgt, lrs, params0, grad, want = _translated(source, hyper, target, _lr0(hyper))
    opt = keras.optimizers.SGD(learning_rate=lrs[0], momentum=tgt.momentum,
                               nesterov=tgt.nesterov, weight_decay=tgt.weight_decay or None)
    vs = [keras.Variable(p.copy(), dtype="float64") for p in params0]

    def np_(v):
        return np.asarray(keras.ops.convert_to_numpy(v), dtype=np.float64)

    got, old = [], lrs[0]
    for lr in lrs:
        if lr != old:
            if tgt.momentum_correction and opt.built:   # keras has none: scale by hand
                for m in opt.momentums:
                    m.assign(m * (lr / old))
            opt.learning_rate = lr
            old = lr
        gs = grad([np_(v) for v in vs])
        opt.apply([torch.as_tensor(g) for g in gs], vs)
        got.append(np.concatenate([np_(v).ravel() for v in vs]))
    assert_same(np.array(got), want)


@pytest.mark.parametrize("source,hyper,target", peer_cases({"sklearn"}),
                         ids=_ids(peer_cases({"sklearn"})))
def test_sklearn_peer(source, hyper, target):
    sk = pytest.importorskip("sklearn.neural_network._stochastic_optimizers")
    tgt, lrs, params0, grad, want = _translated(source, hyper, target, _lr0(hyper))
    params = [p.copy() for p in params0]
    opt = sk.SGDOptimizer(params, learning_rate_init=lrs[0], lr_schedule="constant",
                          momentum=tgt.momentum, nesterov=tgt.nesterov)
    alpha = tgt.weight_decay
    got, old = [], lrs[0]
    for lr in lrs:
        if lr != old:
            if tgt.momentum_correction:               # SGDOptimizer has none: scale by hand
                opt.velocities = [v * (lr / old) for v in opt.velocities]
            opt.learning_rate = lr
            old = lr
        gW, gb = grad(params)
        opt.update_params(params, [gW + alpha * params[0] / N, gb])   # as MLP adds alpha W/n
        got.append(np.concatenate([p.ravel() for p in params]))
    assert_same(np.array(got), want)


@pytest.mark.parametrize("source,hyper,target", peer_cases({"optax"}),
                         ids=_ids(peer_cases({"optax"})))
def test_optax_peer(source, hyper, target):
    optax = pytest.importorskip("optax")
    import jax

    old_x64 = jax.config.jax_enable_x64
    jax.config.update("jax_enable_x64", True)
    try:
        import jax.numpy as jnp

        tgt, lrs, params0, grad, want = _translated(source, hyper, target, _lr0(hyper))
        lr_table = jnp.asarray(lrs, dtype=jnp.float64)
        parts = [optax.add_decayed_weights(tgt.weight_decay)] if tgt.weight_decay else []
        if tgt.momentum_correction:
            # optax.sgd is chain(trace, scale_by_learning_rate): spelled out so that the
            # trace can be rescaled by hand (optax has no momentum correction)
            parts += [optax.trace(decay=tgt.momentum, nesterov=tgt.nesterov),
                      optax.scale_by_schedule(lambda c: -lr_table[c])]
        else:
            parts.append(optax.sgd(learning_rate=lambda c: lr_table[c],
                                   momentum=tgt.momentum, nesterov=tgt.nesterov))
        tx = optax.chain(*parts)
        params = [jnp.asarray(p) for p in params0]
        state = tx.init(params)
        got, old = [], lrs[0]
        for lr in lrs:
            if lr != old and tgt.momentum_correction:
                k = len(parts) - 2                      # the trace's place in the chain
                tr = state[k]
                state = tuple(s if i != k else tr._replace(
                    trace=jax.tree.map(lambda t: t * (old / lr), tr.trace))
                    for i, s in enumerate(state))
            old = lr
            gs = [jnp.asarray(g) for g in grad([np.asarray(p) for p in params])]
            updates, state = tx.update(gs, state, params)
            params = optax.apply_updates(params, updates)
            got.append(np.concatenate([np.asarray(p).ravel() for p in params]))
    finally:
        jax.config.update("jax_enable_x64", old_x64)
    assert_same(np.array(got), want)


# --------------------------------------------------------------------------- property
@st.composite
def optimizer_pairs(draw):
    source = draw(st.sampled_from(CONVS))
    target = draw(st.sampled_from(CONVS))
    S = inertia.CONVENTIONS[source]
    mu = draw(st.sampled_from([0.0, 0.3, 0.6, 0.9]))
    nest = bool(mu and S.nesterov and draw(st.booleans()))
    d = draw(st.sampled_from([0.0, 0.3, 0.9])) if S.dampening and not nest else 0.0
    wd = draw(st.sampled_from([0.0, 0.05, 0.2])) if S.weight_decay else 0.0
    corr = draw(st.booleans()) if not S.previous_delta else False
    lr = draw(st.sampled_from([0.02, 0.1, 0.3]))
    factors = draw(st.lists(st.tuples(st.integers(1, STEPS - 1),
                                      st.sampled_from([0.25, 0.5, 1.5, 2.0])),
                            max_size=3))
    lrs = [lr] * STEPS
    for k, f in sorted(factors):                  # capped: the runs stay stable, so that
        lrs[k:] = [min(x * f, 0.6) for x in lrs[k:]]  # round-off is not amplified
    src = inertia.SGD(lr, mu, d, nest, wd, convention=source, momentum_correction=corr)
    return src, target, lrs, bool(factors)


@settings(max_examples=120, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(optimizer_pairs())
def test_translate_then_run_equals_run(case):
    src, target, lrs, changing = case
    note(f"{src!r} -> {target}, lr changes: {changing}")
    params0, grad = problem(seed=9)
    want = run(src, params0, grad, lrs)
    try:
        tr = translation(src, target, schedule_of(lrs) if changing else None)
    except NotRepresentable as ex:
        assert "\n" not in str(ex)
        T = inertia.CONVENTIONS[target]
        try:                                      # the naive translation really differs
            naive = inertia.SGD(src.lr, src.momentum, src.dampening if T.dampening else 0.0,
                                src.nesterov if T.nesterov else False,
                                src.weight_decay if T.weight_decay else 0.0,
                                convention=target)
        except ValueError:
            return
        assert rel_diff(run(naive, params0, grad, lrs), want) > 1e-6
        return
    got = run(tr.target, params0, grad, [tr.lr_factor * x for x in lrs])
    assert_same(got, want, rtol=1e-8)


# --------------------------------------------------------------------------- framework calls
def test_framework_calls():
    fc = framework_call(inertia.SGD(0.1, 0.9, convention="keras"))
    assert fc.call == "keras.optimizers.SGD(learning_rate=0.1, momentum=0.9, nesterov=False)"
    assert framework_call(inertia.SGD(0.1, 0.9)).call == (
        "torch.optim.SGD(params, lr=0.1, momentum=0.9, dampening=0, nesterov=False, "
        "weight_decay=0)")
    assert framework_call(inertia.SGD(0.1, 0.9, convention="optax")).call == \
        "optax.sgd(learning_rate=0.1, momentum=0.9, nesterov=False)"
    assert framework_call(inertia.SGD(0.1, 0.9, weight_decay=1e-4, convention="optax")).call \
        == ("optax.chain(optax.add_decayed_weights(0.0001), "
            "optax.sgd(learning_rate=0.1, momentum=0.9, nesterov=False))")
    fc = framework_call(inertia.SGD(0.1, 0.9, nesterov=True, weight_decay=0.01,
                                    convention="tf1"))
    assert fc.call == ("tf.compat.v1.train.MomentumOptimizer(learning_rate=0.1, momentum=0.9, "
                       "use_nesterov=True)")
    assert any("l2_loss" in n for n in fc.notes)
    fc = framework_call(inertia.SGD(0.1, 0.9, weight_decay=1e-4, convention="sklearn"))
    assert fc.call == ('MLPRegressor(solver="sgd", learning_rate_init=0.1, momentum=0.9, '
                       'nesterovs_momentum=False, alpha=0.0001, learning_rate="constant")')
    assert any("batch_size must equal n" in n for n in fc.notes)
    fc = framework_call(inertia.SGD(0.1, 0.9, weight_decay=0.01, convention="keras"))
    assert "weight_decay=0.01" in fc.call and any("biases too" in n for n in fc.notes)
    for conv in ("ema", "neanderthal", "previous_delta"):
        call = framework_call(inertia.SGD(0.1, 0.5, convention=conv)).call
        assert call == f'inertia.SGD(lr=0.1, momentum=0.5, convention="{conv}")'
    fc = framework_call(translate(inertia.SGD(0.1, 0.9), "keras", schedule_of(lr_steps(0.1))))
    assert any("optimizer.momentums by new/old" in n for n in fc.notes)
    assert framework_call(inertia.QHM(1.0, 0.999, 0.7)).call.startswith("qhoptim.pyt.QHM(")
    assert framework_call(inertia.AggMo(0.1)).call.startswith("aggmo.AggMo(params, lr=0.1")
    assert framework_call(inertia.AdamW()).call.startswith("torch.optim.AdamW(params, lr=0.001")


def test_translate_arguments():
    src = inertia.SGD(0.1, 0.9)
    with pytest.raises(ValueError, match="unknown convention"):
        translate(src, "jax")
    with pytest.raises(ValueError, match="callable"):
        translate(src, "keras", lr_schedule=0.1)
    assert not translate(src, "keras", inertia.schedules.constant(0.1)).momentum_correction
    with pytest.raises(ValueError, match="inertia optimizer"):
        translate("sgd", "keras")
    assert inertia.translate is translate and issubclass(inertia.NotRepresentable, ValueError)



@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(optimizer_pairs(), st.integers(1, STEPS - 2))
def test_a_translated_state_continues_the_trajectory(case, k):
    """k steps under the source, its state carried into the translation, the rest under the
    target: the source's trajectory, where carried_state carries it."""
    src, target, lrs, changing = case
    params0, grad = problem(seed=9)
    want = run(src, params0, grad, lrs)
    params = [p.copy() for p in params0]
    state = src.init(params)
    for lr in lrs[:k]:
        src.set(lr=lr)
        at = src.lookahead_point(params, state) if src.lookahead else params
        src.step(params, grad(at), state, n=N)
    try:
        tr = translation(src, target, schedule_of(lrs) if changing else None)
    except NotRepresentable:
        return
    tgt = tr.target
    carried = carried_state(src, tgt, state)
    S, T = inertia.CONVENTIONS[src.convention.name], inertia.CONVENTIONS[target]
    if carried is None:
        assert S.flags() != T.flags()
        assert (S.previous_delta or T.previous_delta) and src.momentum \
            or src.lookahead != tgt.lookahead
        return
    got = []
    for lr in lrs[k:]:
        tgt.set(lr=tr.lr_factor * lr)
        at = tgt.lookahead_point(params, carried) if tgt.lookahead else params
        tgt.step(params, grad(at), carried, n=N)
        got.append(np.concatenate([p.ravel() for p in params]))
    assert_same(np.array(got), want[k:], rtol=1e-8)


@pytest.mark.parametrize("engine, nesterov", [("numpy", False), ("numpy", True),
                                             ("torch", False), ("torch", True)])
def test_translate_carries_a_fitted_state_into_another_convention(engine, nesterov):
    """fit 3 epochs under PyTorch's rule, translate to Keras's, fit 3 more: 6 epochs under
    PyTorch's, on either engine, heavy ball or Nesterov (the torch engine's buffers are
    tensors)."""
    if engine == "torch":
        pytest.importorskip("torch")
    X = np.random.default_rng(0).normal(size=(64, 3))
    y = np.sin(X[:, :1]) + X[:, 1:2]

    def net():
        return inertia.Network(3, [inertia.Dense(5, "tanh"), inertia.Dense(1, "linear")],
                               dtype="float64", seed=1, engine=engine)

    def sgd():
        return inertia.SGD(0.05, 0.9, nesterov=nesterov)

    whole, opt = net(), sgd()
    inertia.fit(whole, X, y, loss="mse", optimizer=opt, epochs=6, batch_size=16, shuffle=False)
    half, opt = net(), sgd()
    inertia.fit(half, X, y, loss="mse", optimizer=opt, epochs=3, batch_size=16, shuffle=False)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        keras = translate(opt, "keras")
    assert keras.state.step == 12 and keras.state is not opt.state
    host = [np.asarray(v.cpu() if hasattr(v, "cpu") else v) for v in opt.state.velocity]
    np.testing.assert_allclose(np.asarray(keras.state.velocity[0].cpu() if engine == "torch"
                                          else keras.state.velocity[0]), -0.05 * host[0])
    inertia.fit(half, X, y, loss="mse", optimizer=keras, epochs=3, batch_size=16, shuffle=False)
    for a, b in zip(half.W + half.b, whole.W + whole.b):
        np.testing.assert_allclose(np.asarray(a), np.asarray(b), rtol=1e-10, atol=1e-13)


@pytest.mark.parametrize("source, target", [
    (inertia.QHM(0.1, 0.8, nu=1.0), "pytorch"), (inertia.QHM(0.1, 0.8, nu=1.0), "keras"),
    (inertia.QHM(0.1, 0.8, nu=0.8), "tf1"), (inertia.QHM(0.1, 0.8, nu=0.8), "sklearn"),
    (inertia.QHM(0.1, 0.8, nu=0.0), "keras"), (inertia.AggMo(0.1, betas=(0.8,)), "keras"),
    (inertia.AggMo(0.1, betas=(0.8,)), "ema")])
def test_qhm_and_aggmo_states_carry_as_their_sgds(source, target):
    """A QHM's buffer is the ema convention's, a one-damping AggMo's tf1's: 15 steps of the
    source, its state carried, 25 of the target equal 40 of the source."""
    params0, grad = problem(seed=4)
    want = run(source, params0, grad, [0.1] * 40)
    params = [p.copy() for p in params0]
    state = source.init(params)
    for _ in range(15):
        source.step(params, grad(params), state, n=N)
    tr = translation(source, target)
    carried = carried_state(source, tr.target, state)
    got = []
    for _ in range(25):
        at = tr.target.lookahead_point(params, carried) if tr.target.lookahead else params
        tr.target.step(params, grad(at), carried, n=N)
        got.append(np.concatenate([p.ravel() for p in params]))
    assert_same(np.array(got), want[15:], rtol=1e-8)


def test_a_state_that_cannot_be_carried_warns_at_the_callers_line(monkeypatch):
    from inertia.optim import translate as module

    opt = inertia.SGD(0.1, 0.9)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        translate(opt, "keras")                     # fresh: nothing to say
    net = inertia.Network(2, [inertia.Dense(1, "linear")], dtype="float64")
    inertia.fit(net, np.ones((4, 2)), np.ones((4, 1)), loss="mse", optimizer=opt, epochs=3,
                batch_size=4)
    # every exact translation of a trained optimizer carries its state (the tests above):
    # the warning guards a rule whose state one day would not
    monkeypatch.setattr(module, "carried_state", lambda *a: None)
    with pytest.warns(UserWarning, match="taken 3 steps.*does not carry.*translate before") as w:
        target = translate(opt, "keras")
    assert target.state is None and w[0].filename == __file__
    with pytest.warns(UserWarning, match="taken 3 steps") as w:
        translation(opt, "keras")
    assert w[0].filename == __file__


# --------------------------------------------------------------------------- the command
def cli(capsys, *argv):
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


def test_cli_translate(capsys):
    code, out, err = cli(capsys, "translate", "--from", "pytorch", "--to", "keras", "--lr",
                         "0.1", "--momentum", "0.9")
    assert code == 0, err
    assert "torch.optim.SGD(params, lr=0.1, momentum=0.9, dampening=0, nesterov=False, " \
           "weight_decay=0)" in out
    assert "keras.optimizers.SGD(learning_rate=0.1, momentum=0.9, nesterov=False)" in out
    assert "exact at a constant learning rate" in out


def test_cli_translate_with_a_schedule(capsys):
    code, out, err = cli(capsys, "translate", "--from", "ema", "--to", "tf1", "--lr", "1",
                         "--momentum", "0.9", "--nesterov", "--weight-decay", "0.01",
                         "--lr-schedule", "step:30,0.5", "--steps", "100")
    assert code == 0, err
    assert "MomentumOptimizer(learning_rate=0.09999999999999998, momentum=0.9, " \
           "use_nesterov=True)" in out
    assert "l2_loss" in out and "target lr schedule scaled(" in out
    code, out, err = cli(capsys, "translate", "--from", "tf1", "--to", "sklearn", "--lr",
                         "0.1", "--momentum", "0.9", "--lr-schedule", "cosine")
    assert code == 0, err
    assert "momentum_correction=True" in out and "per-step momentum" in out


@pytest.mark.parametrize("argv,word", [
    (["--from", "tf1", "--to", "keras", "--momentum", "0.9", "--weight-decay", "0.01"],
     "decoupled"),
    (["--from", "pytorch", "--to", "tf1", "--momentum", "0.9", "--dampening", "0.5"],
     "undamped"),
    (["--from", "neanderthal", "--to", "keras", "--momentum", "0.9", "--nesterov"],
     "inertia.optim.nesterov.to_reparameterised"),
    (["--from", "tf1", "--to", "keras", "--dampening", "0.5"], "no dampening"),
    (["--from", "tf1", "--to", "keras", "--lr-schedule", "bogus"], "unknown lr schedule"),
])
def test_cli_translate_errors(capsys, argv, word):
    code, out, err = cli(capsys, "translate", *argv)
    assert code == 2 and out == ""
    assert err.startswith("inertia: error: ") and err.count("\n") == 1 and word in err
