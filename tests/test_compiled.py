"""fit's compiled path (``inertia.fused``, ``fused/tiles.py``) against the engine-call loop.

1. The closed form: ``sgd.coefficients`` (and ``SGD.step_coefficients`` over a run of steps,
   ``QHM.step_coefficients``) equals the update rule ``update_`` / ``apply_`` it replaces.
2. float64 end to end: ``fit(compiled=True)`` and ``fit(compiled=False)`` from the same weights
   give the same weights, History and optimizer state for every convention, batching, loss and
   output, schedule (segments, per-step), QHM, continued fits and validation data; batches of
   several tiles give the same numbers on one thread or several.
3. float32: the two paths agree within float32 tolerance.
4. Where the compiled path cannot run, ``compiled=True`` raises a one-line ValueError and
   ``compiled=None`` falls back to the engine loop; a bad INERTIA_THREADS raises one line.
5. An impossible scheduled value raises before the compiled path changes any weight.
6. Steady-state compiled calls allocate nothing that stays (tracemalloc).
7. A diverging run records its nan/inf loss on the compiled path, as on the engine loop.
"""

from __future__ import annotations

import copy
import tracemalloc
import warnings

import numba
import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import inertia
from inertia import QHM, SGD, Dense, Network, schedules
from inertia.fused.runner import MAX_WIDTH, CompiledSteps
from inertia.fused import tiles as steps
from inertia.engines.numpy import NumpyEngine
from inertia.optim import CONVENTIONS
from inertia.optim.sgd import coefficients, update_

RTOL = 1e-11          # float64: compiled vs engine loop (observed <= 3e-12)
ATOL = 1e-13
N_ROWS = 50           # batch 16 -> 16, 16, 16, 2: a smaller last batch


def one_line(excinfo):
    msg = str(excinfo.value)
    assert msg and "\n" not in msg, f"not a one-line message: {msg!r}"
    return msg


def _sgd_cases():
    """(convention, nesterov, dampening) for every form the update rule has."""
    for name, c in CONVENTIONS.items():
        for nest in ([False] if c.nesterov is None else [False, True]):
            yield name, nest, 0.0
        if c.dampening:
            yield name, False, 0.3


def _case_id(conv, nest, damp, decay=None):
    return (f"{conv}-{'nesterov' if nest else 'heavy'}{'-damp' if damp else ''}"
            + ("" if decay is None else "-wd" if decay else "-wd0"))


SGD_CASES = list(_sgd_cases())
SGD_IDS = [_case_id(*c) for c in SGD_CASES]
# with weight decay off and on (where the convention has one)
DECAY_CASES = [c + (decay,) for c in SGD_CASES for decay in (False, True)
               if not (decay and CONVENTIONS[c[0]].weight_decay is None)]
DECAY_IDS = [_case_id(*c) for c in DECAY_CASES]


def _decay(conv):
    """A weight decay the convention allows (0 where it has none)."""
    c = CONVENTIONS[conv]
    if c.weight_decay is None:
        return 0.0
    return 2.0 if c.decay_per_n else 0.05               # per-n: 2 / 16 = 0.125 a step


# ================================================================== 1. the closed form
def _rule(conv, lr, mu, damp, nest, wd, is_bias, n, first, scale, v, g, w):
    """``update_`` through the functional form's acc (out = alpha g + beta out), after the
    momentum correction's rescaling of v (as SGD.apply_ does). Returns (v', w')."""
    e = NumpyEngine("float64")
    v, w = v * scale, w.copy()
    gbuf = np.empty_like(w)

    def acc(alpha, beta, out):
        return e.axpby(alpha, g, beta, out)

    update_(e, CONVENTIONS[conv], lr, mu, damp, nest, wd, w, acc, v, gbuf, is_bias, n, first)
    return v, w


def _closed(c, v, g, w):
    """The closed form and, per element, the size of its terms (the scale of rounding)."""
    A, B, C, D, E, F, H = c[:7]
    v1 = A * v + B * g + C * w
    w1 = D * w + E * v1 + F * g + H * v
    mv = abs(A * v) + abs(B * g) + abs(C * w)
    # D = 1 - lr (...) wd can cancel to about 0 while the rule itself subtracts terms of the
    # size of w: its rounding is on the scale of |w| too
    mw = abs(D * w) + abs(E * v1) + abs(F * g) + abs(H * v) + abs(w)
    return v1, w1, mv, mw


def _assert_close_terms(got, want, mag, rel=1e-14, what=""):
    # relative to the terms that were summed: a wrong coefficient misses by a whole term
    err = np.abs(got - want)
    bad = err > rel * mag + 1e-300
    assert not bad.any(), f"{what}: max error {err.max():.3g} vs terms {mag[bad].min():.3g}"


@pytest.mark.parametrize("conv, nest, damp, decay", DECAY_CASES, ids=DECAY_IDS)
@settings(max_examples=30, deadline=None)
@given(lr=st.floats(1e-3, 2.0), mu=st.floats(0.0, 0.99), wd=st.floats(1e-3, 3.0),
       n=st.integers(1, 64), scale=st.sampled_from([1.0, 0.25, 0.5, 2.0, 3.7]),
       is_bias=st.booleans(), first=st.booleans(), seed=st.integers(0, 2**32 - 1))
def test_coefficients_equal_update_rule(conv, nest, damp, decay, lr, mu, wd, n, scale, is_bias,
                                        first, seed):
    wd = wd if decay else 0.0
    rng = np.random.default_rng(seed)
    shape = (4,) if is_bias else (3, 4)
    v, g, w = (rng.normal(size=shape) for _ in range(3))
    v_ref, w_ref = _rule(conv, lr, mu, damp, nest, wd, is_bias, n, first, scale, v, g, w)
    c = coefficients(CONVENTIONS[conv], lr, mu, damp, nest, wd, is_bias, n, first, scale)
    assert c.shape == (8,)
    v1, w1, mv, mw = _closed(c, v, g, w)
    _assert_close_terms(v1, v_ref, mv, what="velocity")
    _assert_close_terms(w1, w_ref, mw, what="weights")
    # the look-ahead shift: mu for the weights of look-ahead Nesterov, 0 everywhere else
    look = mu if (nest and CONVENTIONS[conv].nesterov == "lookahead" and not is_bias) else 0.0
    assert c[7] == look


@pytest.mark.parametrize("conv, nest, damp", SGD_CASES, ids=SGD_IDS)
def test_coefficients_vectorise_over_steps(conv, nest, damp):
    # rows of the array form equal the scalar form, step by step
    rng = np.random.default_rng(3)
    k = 6
    lr, mu = rng.uniform(0.01, 1, k), rng.uniform(0.1, 0.95, k)
    n, scale = rng.integers(1, 40, k), rng.uniform(0.5, 2, k)
    first = np.array([True, False, True, False, False, True])
    wd = _decay(conv)
    for is_bias in (False, True):
        rows = coefficients(CONVENTIONS[conv], lr, mu, damp, nest, wd, is_bias, n, first, scale)
        assert rows.shape == (k, 8)
        for i in range(k):
            one = coefficients(CONVENTIONS[conv], lr[i], mu[i], damp, nest, wd, is_bias, n[i],
                               first[i], scale[i])
            np.testing.assert_array_equal(rows[i], one)


@pytest.mark.parametrize("conv, nest, damp", SGD_CASES, ids=SGD_IDS)
@pytest.mark.parametrize("start", ["fresh", "started"])
def test_sgd_step_coefficients_follow_apply_over_a_run(conv, nest, damp, start):
    """first step, momentum correction and per-step (lr, mu, n) tracked as apply_ tracks them."""
    rng = np.random.default_rng(11)
    c = CONVENTIONS[conv]
    opt = SGD(0.1, momentum=0.9, dampening=damp, nesterov=nest, weight_decay=_decay(conv),
              convention=conv, momentum_correction=not c.previous_delta)
    W, b = rng.normal(size=(3, 4)), rng.normal(size=(3,))
    state = opt.init([W, b])
    if start == "started":
        for v in state.velocity:
            v[...] = rng.normal(size=v.shape)
        state.step, state.started, state.last_lr = 5, True, 0.3
    # lr changes (momentum correction), repeats (no rescale), mu starting at 0 (no Nesterov)
    lrs = np.array([0.1, 0.1, 0.05, 0.2, 0.2, 0.07, 0.07, 0.3])
    mus = np.array([0.0, 0.0, 0.9, 0.5, 0.0, 0.8, 0.8, 0.6]) if not nest else \
        np.array([0.9, 0.9, 0.5, 0.7, 0.7, 0.8, 0.8, 0.6])
    ns = np.array([16, 16, 16, 2, 16, 7, 16, 1])
    opt.state = copy.deepcopy(state)
    cw, cb = opt.step_coefficients(lrs, mus, ns)
    assert cw.shape == cb.shape == (len(lrs), 8)
    opt.advance_(len(lrs), lrs, mus)
    advanced = opt.state_meta()
    opt.state = None
    for i in range(len(lrs)):
        opt.set(lr=float(lrs[i]), momentum=float(mus[i]))
        gW, gb = rng.normal(size=W.shape), rng.normal(size=b.shape)
        before = [(v.copy(), p.copy()) for v, p in zip(state.velocity, (W, b))]
        opt.step([W, b], [gW, gb], state, n=int(ns[i]))
        for (v0, p0), v1, p1, g, cc, what in zip(before, state.velocity, (W, b), (gW, gb),
                                                 (cw[i], cb[i]), ("W", "b")):
            vc, pc, mv, mw = _closed(cc, v0, g, p0)
            _assert_close_terms(vc, v1, mv, what=f"step {i} {what} velocity")
            _assert_close_terms(pc, p1, mw, what=f"step {i} {what}")
    # advance_ records the run as the per-step finish_step_ did
    assert advanced == {k: getattr(state, k) for k in advanced}


@pytest.mark.parametrize("nu", [1.0, 0.7, 0.0])
@pytest.mark.parametrize("wd", [0.0, 0.1])
def test_qhm_step_coefficients_follow_apply(nu, wd):
    rng = np.random.default_rng(5)
    opt = QHM(0.1, momentum=0.9, nu=nu, weight_decay=wd)
    W, b = rng.normal(size=(3, 4)), rng.normal(size=(3,))
    state = opt.init([W, b])
    for v in state.buffer:
        v[...] = rng.normal(size=v.shape)
    lrs = np.array([0.1, 0.05, 0.05, 0.3, 0.2])
    mus = np.array([0.9, 0.0, 0.5, 0.99, 0.7])
    opt.state = copy.deepcopy(state)
    cw, cb = opt.step_coefficients(lrs, mus, np.array([16, 16, 2, 16, 1]))
    np.testing.assert_array_equal(cw, cb)            # QHM treats biases as weights
    opt.advance_(len(lrs), lrs, mus)
    assert opt.state.step == len(lrs)
    opt.state = None
    for i in range(len(lrs)):
        opt.set(lr=float(lrs[i]), momentum=float(mus[i]))
        gW, gb = rng.normal(size=W.shape), rng.normal(size=b.shape)
        before = [(v.copy(), p.copy()) for v, p in zip(state.buffer, (W, b))]
        opt.step([W, b], [gW, gb], state)
        for (v0, p0), v1, p1, g, cc in zip(before, state.buffer, (W, b), (gW, gb),
                                           (cw[i], cb[i])):
            vc, pc, mv, mw = _closed(cc, v0, g, p0)
            _assert_close_terms(vc, v1, mv, what=f"step {i} buffer")
            _assert_close_terms(pc, p1, mw, what=f"step {i} weights")


# ================================================================== 2. float64 end to end
OUTPUTS = {   # (loss, output activation, outputs)
    "mse-linear": ("mse", "linear", 2),
    "quadratic-linear": ("quadratic", "linear", 2),
    "mse-sigmoid": ("mse", "sigmoid", 2),
    "quadratic-tanh": ("quadratic", "tanh", 2),
    "mse-relu": ("mse", "relu", 2),
    "bce-sigmoid": ("bce", "sigmoid", 2),
    "cross_entropy-softmax": ("cross_entropy", "softmax", 3),
}

BATCHING = {
    "full": dict(batch_size=None),
    "batch16": dict(batch_size=16, shuffle=False),
    "online": dict(batch_size=1, shuffle=False),
    "batch16-shuffled": dict(batch_size=16, shuffle=True, seed=7),
}


def _data(loss="mse", out="linear", k=2, n=N_ROWS, seed=0):
    rng = np.random.default_rng(seed)
    X = rng.normal(size=(n, 5))
    if loss == "cross_entropy":
        return X, (X[:, 0] > 0).astype(int) + (X[:, 1] > 0.5)          # labels 0, 1, 2
    if loss == "bce":
        return X, (X[:, :k] > 0).astype(float)
    y = np.sin(X[:, :k]) + 0.1 * X[:, k:2 * k]
    if out == "sigmoid":
        return X, 1 / (1 + np.exp(-2 * y))
    if out == "tanh":
        return X, np.tanh(y)
    if out == "relu":
        return X, np.abs(y)
    return X, y


def _net(out="linear", k=2, dtype="float64", hidden=None, n_in=5):
    """5 -> 7 tanh -> 6 sigmoid -> k ``out`` unless other hidden layers are given."""
    hidden = [Dense(7, "tanh"), Dense(6, "sigmoid")] if hidden is None else hidden
    return Network(n_in, list(hidden) + [Dense(k, out)], seed=3, dtype=dtype)


def _train(compiled, make_opt, X, y, loss, calls, make_net=_net, before=None):
    """A fresh network and optimizer trained by the fits in ``calls`` (fit keyword dicts)."""
    net, opt = make_net(), make_opt()
    if before is not None:
        before(net, opt)
    hists = [inertia.fit(net, X, y, loss, opt, progress=False, compiled=compiled, **kw)
             for kw in calls]
    return net, opt, hists


def _params(net):
    return np.concatenate([x.ravel() for wb in net.parameters() for x in wb])


def _assert_allclose(x, z, rtol, atol, what):
    # elements near 0 are held to the array's scale: rounding differences in a long run grow
    # with the largest weights, not with each element
    scale = float(np.max(np.abs(z), initial=0.0))
    np.testing.assert_allclose(x, z, rtol=rtol, atol=max(atol, rtol * scale), err_msg=what)


def _assert_same(a, b, rtol=RTOL, atol=ATOL, loss_rtol=None):
    """Same weights, History and optimizer state (buffers, step, started, last_lr, config)."""
    (na, oa, ha), (nb, ob, hb) = a, b
    loss_rtol = rtol if loss_rtol is None else loss_rtol
    _assert_allclose(_params(na), _params(nb), rtol, atol, "weights")
    for h1, h2 in zip(ha, hb):
        assert h1.epochs == h2.epochs and len(h1.time) == len(h2.time)
        for field in ("loss", "val_loss", "segment_loss"):
            x, z = getattr(h1, field), getattr(h2, field)
            assert len(x) == len(z), field
            np.testing.assert_allclose(x, z, rtol=loss_rtol, atol=0, err_msg=field)
    assert oa.config() == ob.config()
    assert oa.state_meta() == ob.state_meta()               # step, started, last_lr
    for name in oa.STATE_LISTS:
        for v1, v2 in zip(getattr(oa.state, name), getattr(ob.state, name)):
            assert v1.shape == v2.shape
            _assert_allclose(v1, v2, rtol, atol, name)


def _both(make_opt, X, y, loss, calls, **kw):
    return (_train(True, make_opt, X, y, loss, calls, **kw),
            _train(False, make_opt, X, y, loss, calls, **kw))


@pytest.mark.parametrize("batching", list(BATCHING))
@pytest.mark.parametrize("conv, nest, damp, decay", DECAY_CASES, ids=DECAY_IDS)
def test_every_convention_matches_engine_loop(conv, nest, damp, decay, batching):
    wd = _decay(conv) if decay else 0.0
    X, y = _data()

    def make_opt():
        return SGD(0.05, momentum=0.8, dampening=damp, nesterov=nest, weight_decay=wd,
                   convention=conv)

    c, e = _both(make_opt, X, y, "mse", [dict(epochs=3, **BATCHING[batching])])
    _assert_same(c, e)
    assert c[1].state.step == 3 * {"full": 1, "online": N_ROWS}.get(batching, 4)


@pytest.mark.parametrize("batching", ["full", "batch16-shuffled", "online"])
@pytest.mark.parametrize("conv", ["pytorch", "neanderthal"])
@pytest.mark.parametrize("output", list(OUTPUTS))
def test_every_loss_and_output_matches_engine_loop(output, conv, batching):
    loss, out, k = OUTPUTS[output]
    X, y = _data(loss, out, k)
    c, e = _both(lambda: SGD(0.1, momentum=0.9, nesterov=True, weight_decay=_decay(conv),
                             convention=conv),
                 X, y, loss, [dict(epochs=3, **BATCHING[batching])],
                 make_net=lambda: _net(out, k))
    _assert_same(c, e)


LAYOUTS = {   # layer shapes the kernel loops treat differently
    "no hidden layer": ([], 5),
    "relu hidden": ([Dense(9, "relu")], 5),
    "wide inputs, 3 hidden": ([Dense(9, "sigmoid"), Dense(4, "tanh"), Dense(5, "relu")], 11),
}


TILE = steps.TILE
TILED = {   # (rows, batch_size): one tile, then batches of several tiles (and a part tile)
    "50 rows batch 16": (N_ROWS, 16),
    "3 tiles full batch": (2 * TILE + 37, None),
    "2 tiles batch, shuffled": (2 * TILE + 37, TILE + 10),
}


@pytest.mark.parametrize("tiled", list(TILED))
@pytest.mark.parametrize("layout", list(LAYOUTS))
def test_layouts_and_multi_tile_batches_match_engine_loop(layout, tiled):
    # a batch above the kernel's tile is summed over several tiles (on several threads)
    hidden, n_in = LAYOUTS[layout]
    rows, batch_size = TILED[tiled]
    rng = np.random.default_rng(2)
    X = rng.normal(size=(rows, n_in))
    y = np.sin(X[:, :2])
    c, e = _both(lambda: SGD(0.05, momentum=0.9, weight_decay=0.01, convention="keras"),
                 X, y, "mse", [dict(epochs=3, batch_size=batch_size, seed=1)],
                 make_net=lambda: _net(hidden=hidden, n_in=n_in))
    _assert_same(c, e)


CORES = numba.config.NUMBA_NUM_THREADS


@pytest.mark.skipif(CORES < 2, reason="one thread only")
@pytest.mark.parametrize("batch_size", [None, 2 * TILE + 10])
def test_thread_count_does_not_change_the_numbers(monkeypatch, batch_size):
    # a batch of several tiles is cut into chunks summed in a fixed order: one thread or
    # several give bitwise the same result
    X, y = _data(n=4 * TILE + 37)
    runs = []
    for nth in (1, CORES):
        monkeypatch.setenv("INERTIA_THREADS", str(nth))
        runs.append(_train(True, lambda: SGD(0.05, momentum=0.9, nesterov=True), X, y, "mse",
                           [dict(epochs=4, batch_size=batch_size, seed=1)]))
    np.testing.assert_array_equal(_params(runs[0][0]), _params(runs[1][0]))
    assert runs[0][2][0].loss == runs[1][2][0].loss
    _assert_same(runs[1], _train(False, lambda: SGD(0.05, momentum=0.9, nesterov=True), X, y,
                                 "mse", [dict(epochs=4, batch_size=batch_size, seed=1)]))


@pytest.mark.parametrize("value", ["0", "-2", "two"])
def test_bad_thread_setting_raises_one_line_before_training(monkeypatch, value):
    monkeypatch.setenv("INERTIA_THREADS", value)
    X, y = _data()
    net = _net()
    before = _params(net)
    with pytest.raises(ValueError) as ei:
        inertia.fit(net, X, y, "mse", SGD(0.1, momentum=0.9), epochs=2, progress=False)
    assert "INERTIA_THREADS" in one_line(ei)
    np.testing.assert_array_equal(_params(net), before)


@pytest.mark.skipif(CORES >= inertia.fused.runner.CHUNKS, reason="needs fewer cores than chunks")
def test_more_threads_than_cores_still_trains(monkeypatch):
    monkeypatch.setenv("INERTIA_THREADS", str(CORES + 1))
    X, y = _data(n=2 * TILE + 37)
    a = _train(True, lambda: SGD(0.05, momentum=0.9), X, y, "mse", [dict(epochs=2)])
    monkeypatch.setenv("INERTIA_THREADS", "1")
    b = _train(True, lambda: SGD(0.05, momentum=0.9), X, y, "mse", [dict(epochs=2)])
    np.testing.assert_array_equal(_params(a[0]), _params(b[0]))


MC_CASES = [(cv, n, d) for cv, n, d in SGD_CASES if not CONVENTIONS[cv].previous_delta]


@pytest.mark.parametrize("batching", ["full", "batch16-shuffled"])
@pytest.mark.parametrize("conv, nest, damp", MC_CASES,
                         ids=[i for i, c in zip(SGD_IDS, SGD_CASES) if c in MC_CASES])
def test_momentum_correction_across_schedule_segments(conv, nest, damp, batching):
    X, y = _data()
    wd = _decay(conv)
    segs = [(2, {"lr": 0.1}), (2, {"lr": 0.05}),
            (2, {"lr": 0.2, "momentum": 0.5, "weight_decay": wd / 2})]
    c, e = _both(lambda: SGD(0.1, momentum=0.9, dampening=damp, nesterov=nest, weight_decay=wd,
                             convention=conv, momentum_correction=True),
                 X, y, "mse", [dict(schedule=segs, **BATCHING[batching])])
    _assert_same(c, e)
    assert len(c[2][0].segment_loss) == 3 and c[1].state.last_lr == 0.2


def _zero_then_momentum(t):
    """mu 0 for three steps (PyTorch's first buffer comes later), back to 0, then 0.5."""
    return 0.0 if t < 3 else (0.9 if t < 7 else (0.0 if t < 9 else 0.5))


@pytest.mark.parametrize("batching", ["full", "batch16-shuffled", "online"])
@pytest.mark.parametrize("conv, nest, damp", SGD_CASES, ids=SGD_IDS)
def test_per_step_schedules_match_engine_loop(conv, nest, damp, batching):
    X, y = _data()
    mc = not CONVENTIONS[conv].previous_delta
    fits = [dict(epochs=4, lr_schedule=schedules.cosine(0.1, 60, final=0.01),
                 momentum_schedule=schedules.sutskever(0.95, every=5), **BATCHING[batching])]
    if not nest:                                         # mu = 0 steps need no Nesterov
        fits.append(dict(epochs=3, momentum_schedule=_zero_then_momentum,
                         **BATCHING[batching]))
    for fit_kw in fits:
        c, e = _both(lambda: SGD(0.1, momentum=0.9, dampening=damp, nesterov=nest,
                                 weight_decay=_decay(conv), convention=conv,
                                 momentum_correction=mc),
                     X, y, "mse", [fit_kw])
        _assert_same(c, e)


@pytest.mark.parametrize("batching", ["full", "batch16-shuffled", "online"])
@pytest.mark.parametrize("nu", [1.0, 0.7, 0.0])
@pytest.mark.parametrize("sched", [False, True], ids=["constant", "scheduled"])
def test_qhm_matches_engine_loop(nu, batching, sched):
    X, y = _data()
    kw = dict(epochs=3, **BATCHING[batching])
    if sched:
        kw.update(lr_schedule=schedules.cosine(0.1, 60, final=0.01),
                  momentum_schedule=schedules.demon(0.9, 100))
    c, e = _both(lambda: QHM(0.1, momentum=0.9, nu=nu, weight_decay=0.01), X, y, "mse", [kw])
    _assert_same(c, e)


def _set_state(net, opt):
    """A state with non-zero velocities, a step count and a different last learning rate."""
    net.bind(opt)
    rng = np.random.default_rng(9)
    for v in opt.state.velocity:
        v[...] = 0.1 * rng.normal(size=v.shape)
    opt.state.step, opt.state.started, opt.state.last_lr = 7, True, 0.3


@pytest.mark.parametrize("conv, nest, damp", MC_CASES,
                         ids=[i for i, c in zip(SGD_IDS, SGD_CASES) if c in MC_CASES])
def test_training_from_a_set_state_matches_engine_loop(conv, nest, damp):
    # the kernel reads the velocities given (not zeros) and rescales them for the new lr
    X, y = _data()
    c, e = _both(lambda: SGD(0.1, momentum=0.8, dampening=damp, nesterov=nest,
                             weight_decay=_decay(conv), convention=conv,
                             momentum_correction=True),
                 X, y, "mse", [dict(epochs=3, batch_size=16, seed=2)], before=_set_state)
    _assert_same(c, e)
    assert c[1].state.step == 7 + 12


CONTINUE_CASES = {
    "pytorch": (lambda: SGD(0.05, momentum=0.9, convention="pytorch"),
                [dict(epochs=3), dict(epochs=3)], dict(epochs=6)),
    "keras lr change": (lambda: SGD(0.1, momentum=0.9, nesterov=True, weight_decay=0.01,
                                    convention="keras", momentum_correction=True),
                        [dict(schedule=[(3, {"lr": 0.1})]), dict(schedule=[(3, {"lr": 0.05})])],
                        dict(schedule=[(3, {"lr": 0.1}), (3, {"lr": 0.05})])),
    "neanderthal lr_schedule": (lambda: SGD(0.1, momentum=0.9, nesterov=True, weight_decay=2.0,
                                            convention="neanderthal"),
                                [dict(epochs=3, lr_schedule=schedules.cosine(0.1, 30)),
                                 dict(epochs=3, lr_schedule=schedules.cosine(0.1, 30))],
                                dict(epochs=6, lr_schedule=schedules.cosine(0.1, 30))),
    "qhm": (lambda: QHM(0.1, momentum=0.9, nu=0.7),
            [dict(epochs=3), dict(epochs=3)], dict(epochs=6)),
}


def _joined(hists):
    h = inertia.History()
    for x in hists:
        h.loss += x.loss
        h.val_loss += x.val_loss
        h.segment_loss += x.segment_loss
        h.time += x.time
    return h


@pytest.mark.parametrize("batch_size", [None, 16])
@pytest.mark.parametrize("case", list(CONTINUE_CASES))
def test_two_fits_continue_one_on_both_paths(case, batch_size):
    make_opt, twice, once = CONTINUE_CASES[case]
    X, y = _data()
    common = dict(batch_size=batch_size, shuffle=False)
    runs = {}
    for compiled in (True, False):
        n2, o2, h2 = _train(compiled, make_opt, X, y, "mse", [dict(kw, **common) for kw in twice])
        n1, o1, h1 = _train(compiled, make_opt, X, y, "mse", [dict(once, **common)])
        # on one path, continuing is exactly one long fit
        np.testing.assert_array_equal(_params(n2), _params(n1))
        np.testing.assert_array_equal(_joined(h2).loss, h1[0].loss)
        assert o2.state_meta() == o1.state_meta()
        runs[compiled] = (n2, o2, [_joined(h2)])
    _assert_same(runs[True], runs[False])
    # and the paths hand the state to each other: compiled then engine loop, and back
    for first, second in ((True, False), (False, True)):
        net, opt = _net(), make_opt()
        hs = [inertia.fit(net, X, y, "mse", opt, progress=False, compiled=cp,
                          **dict(kw, **common)) for cp, kw in zip((first, second), twice)]
        _assert_same((net, opt, [_joined(hs)]), runs[False])


@pytest.mark.parametrize("batching", ["full", "batch16-shuffled"])
@pytest.mark.parametrize("make_opt", [lambda: SGD(0.1, momentum=0.9, convention="tf1"),
                                      lambda: QHM(0.1, momentum=0.9, nu=0.7)],
                         ids=["sgd", "qhm"])
@pytest.mark.parametrize("val_rows", [30, N_ROWS])     # N_ROWS: the training batch's size
def test_validation_loss_matches_engine_loop(make_opt, batching, val_rows):
    X, y = _data()
    Xv, yv = _data(n=val_rows, seed=1)
    c, e = _both(make_opt, X, y, "mse",
                 [dict(epochs=4, validation_data=(Xv, yv), **BATCHING[batching])])
    _assert_same(c, e)
    assert len(c[2][0].val_loss) == 4
    assert c[2][0].val_loss[-1] == pytest.approx(c[0].loss(Xv, yv, "mse"), rel=1e-14)


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(data=st.data())
def test_random_runs_match_engine_loop(data):
    conv, nest, damp = data.draw(st.sampled_from(SGD_CASES), label="case")
    c = CONVENTIONS[conv]
    wd = data.draw(st.sampled_from([0.0, _decay(conv)]), label="wd")
    mu = data.draw(st.sampled_from([0.1 if nest else 0.0, 0.5, 0.9, 0.99]), label="mu")
    # a stable run (effective step lr / (1 - mu) <= 0.5): a chaotic one amplifies the paths'
    # last-bit differences without bound
    lr = data.draw(st.floats(1e-3, 0.5 * (1 - mu)), label="lr")
    hyper = dict(lr=lr, momentum=mu, dampening=damp, nesterov=nest, weight_decay=wd,
                 convention=conv,
                 momentum_correction=(not c.previous_delta) and data.draw(st.booleans()))
    output = data.draw(st.sampled_from(list(OUTPUTS)), label="output")
    loss, out, k = OUTPUTS[output]
    rows = data.draw(st.integers(1, 70), label="rows")
    bs = data.draw(st.one_of(st.none(), st.integers(1, 70)), label="batch_size")
    fit_kw = dict(epochs=data.draw(st.integers(0, 3), label="epochs"), batch_size=bs,
                  shuffle=data.draw(st.booleans()), seed=data.draw(st.integers(0, 99)))
    X, y = _data(loss, out, k, n=rows, seed=data.draw(st.integers(0, 99)))
    ca, en = _both(lambda: SGD(**hyper), X, y, loss, [fit_kw], make_net=lambda: _net(out, k))
    _assert_same(ca, en)


def test_compiled_none_runs_the_compiled_path_for_sgd():
    # auto: the very numbers of compiled=True (bitwise), not the engine loop's
    X, y = _data()
    runs = [_train(cp, lambda: SGD(0.05, momentum=0.9, nesterov=True), X, y, "mse",
                   [dict(epochs=3, batch_size=16, seed=1)]) for cp in (None, True)]
    np.testing.assert_array_equal(_params(runs[0][0]), _params(runs[1][0]))
    assert runs[0][2][0].loss == runs[1][2][0].loss


# ================================================================== 3. float32
F32_OUTPUTS = {
    "quadratic-linear": ("quadratic", "linear", 1),
    "mse-tanh": ("mse", "tanh", 1),
    "bce-sigmoid": ("bce", "sigmoid", 1),
    "cross_entropy-softmax": ("cross_entropy", "softmax", 3),
}


@pytest.mark.parametrize("batch_size", [None, 16, 1])
@pytest.mark.parametrize("conv, nest", [("pytorch", True), ("keras", False),
                                        ("neanderthal", True), ("previous_delta", False)])
@pytest.mark.parametrize("output", list(F32_OUTPUTS))
def test_float32_matches_engine_loop(output, conv, nest, batch_size):
    loss, out, k = F32_OUTPUTS[output]
    X, y = inertia.datasets.smooth_regression(60, seed=1)
    if loss == "bce":
        y = (y > np.median(y)).astype(np.float32)
    elif loss == "cross_entropy":
        y = np.digitize(y[:, 0], np.quantile(y[:, 0], [1 / 3, 2 / 3]))
    elif out == "tanh":
        y = y / 3
    # online classification at lr 0.1 is chaotic: float32 rounding grows without bound there
    lr = 0.02 if batch_size == 1 and loss in ("bce", "cross_entropy") else 0.1
    c, e = _both(lambda: SGD(lr, momentum=0.9, nesterov=nest, convention=conv,
                             weight_decay=0.0 if conv == "previous_delta" else 0.01),
                 X, y, loss, [dict(epochs=20, batch_size=batch_size, seed=3)],
                 make_net=lambda: Network(4, [Dense(7, "sigmoid"), Dense(6, "tanh"),
                                              Dense(k, out)], seed=2, dtype="float32"))
    assert c[0].flat.dtype == np.float32 and c[1].state.velocity[0].dtype == np.float32
    # observed: weights within 1e-5, losses within 3e-5 relative
    _assert_same(c, e, rtol=1e-4, atol=1e-4, loss_rtol=3e-4)


# ================================================================== 4. where it cannot run
def _small_net(width=7, engine="numpy"):
    return Network(5, [Dense(width, "tanh"), Dense(1, "linear")], seed=0, dtype="float64",
                   engine=engine)


def _refusals():
    yield "adam", lambda: (_small_net(), inertia.Adam(0.01)), "Adam"
    yield "aggmo", lambda: (_small_net(), inertia.AggMo(0.01)), "AggMo"
    yield "wide", lambda: (_small_net(MAX_WIDTH + 1), SGD(0.01, momentum=0.9)), \
        str(MAX_WIDTH)

    def torch_net():
        pytest.importorskip("torch")
        return _small_net(engine="torch"), SGD(0.01, momentum=0.9)

    yield "torch", torch_net, "torch"


REFUSALS = list(_refusals())


@pytest.mark.parametrize("make, says", [r[1:] for r in REFUSALS], ids=[r[0] for r in REFUSALS])
def test_compiled_true_refuses_with_one_line(make, says):
    X, y = _data(k=1)
    net, opt = make()
    before = _params(net)
    with pytest.raises(ValueError) as ei:
        inertia.fit(net, X, y, "mse", opt, epochs=2, progress=False, compiled=True)
    msg = one_line(ei)
    assert "compiled" in msg and says in msg
    np.testing.assert_array_equal(_params(net), before)


@pytest.mark.parametrize("make, says", [r[1:] for r in REFUSALS], ids=[r[0] for r in REFUSALS])
def test_compiled_none_falls_back_to_engine_loop(make, says):
    X, y = _data(k=1)
    (na, oa), (nb, ob) = make(), make()
    ha = inertia.fit(na, X, y, "mse", oa, epochs=2, batch_size=16, seed=0, progress=False)
    hb = inertia.fit(nb, X, y, "mse", ob, epochs=2, batch_size=16, seed=0, progress=False,
                     compiled=False)
    np.testing.assert_array_equal(_params(na), _params(nb))
    assert ha.loss == hb.loss


@pytest.mark.parametrize("value", ["yes", "True", 2, 0.5, [True]])
def test_compiled_must_be_none_true_or_false(value):
    X, y = _data(k=1)
    net = _small_net()
    before = _params(net)
    with pytest.raises(ValueError) as ei:
        inertia.fit(net, X, y, "mse", SGD(0.1), epochs=1, progress=False, compiled=value)
    assert "compiled" in one_line(ei)
    np.testing.assert_array_equal(_params(net), before)


# ================================================================== 5. impossible schedules
def _bad_at_3(good, bad):
    return lambda t: bad if t == 3 else good


BAD_SCHEDULES = {
    "lr -1": (dict(), dict(lr_schedule=_bad_at_3(0.1, -1.0))),
    "lr nan": (dict(), dict(lr_schedule=_bad_at_3(0.1, float("nan")))),
    "momentum 1": (dict(), dict(momentum_schedule=_bad_at_3(0.9, 1.0))),
    "momentum -0.1": (dict(), dict(momentum_schedule=_bad_at_3(0.9, -0.1))),
    "nesterov momentum 0": (dict(nesterov=True), dict(momentum_schedule=_bad_at_3(0.9, 0.0))),
}


@pytest.mark.parametrize("case", list(BAD_SCHEDULES))
def test_impossible_scheduled_value_raises_before_any_step(case):
    # 48 rows in batches of 8: step 3 lies in the first epoch
    hyper, sched = BAD_SCHEDULES[case]
    X, y = _data(k=1, n=48)
    net, opt = _small_net(), SGD(0.1, momentum=0.9, **hyper)
    before = _params(net)
    with pytest.raises(ValueError) as ei:
        inertia.fit(net, X, y, "mse", opt, epochs=3, batch_size=8, seed=0, progress=False,
                    compiled=True, **sched)
    msg = one_line(ei)
    np.testing.assert_array_equal(_params(net), before)
    assert opt.state is None                       # checked before the optimizer is bound
    # the engine loop stops at the same value with the same message
    with pytest.raises(ValueError) as ei2:
        inertia.fit(_small_net(), X, y, "mse", SGD(0.1, momentum=0.9, **hyper), epochs=3,
                    batch_size=8, seed=0, progress=False, compiled=False, **sched)
    assert one_line(ei2) == msg


def test_impossible_value_in_a_later_epoch_raises_before_any_step():
    X, y = _data(k=1, n=48)
    net, opt = _small_net(), SGD(0.1, momentum=0.9)
    before = _params(net)
    with pytest.raises(ValueError):               # 3 steps an epoch: step 4 is in epoch 2
        inertia.fit(net, X, y, "mse", opt, epochs=3, batch_size=16, shuffle=False,
                    progress=False,
                    compiled=True, lr_schedule=lambda t: -1.0 if t == 4 else 0.1)
    np.testing.assert_array_equal(_params(net), before)


# ================================================================== 6. allocation
@pytest.mark.parametrize("dtype", ["float64", "float32"])
@pytest.mark.parametrize("per_step", [False, True], ids=["constant", "per-step lr, mu"])
def test_steady_state_compiled_calls_keep_no_memory(dtype, per_step):
    X, y = _data(k=1)
    X, y = X.astype(dtype), y.astype(dtype)
    net = Network(5, [Dense(7, "tanh"), Dense(6, "sigmoid"), Dense(1)], seed=0, dtype=dtype)
    opt = SGD(0.01, momentum=0.9, nesterov=True, weight_decay=1e-3)
    net.bind(opt)
    run = CompiledSteps(net, opt, "mse", X, y)
    order = np.arange(N_ROWS)
    starts = np.arange(0, N_ROWS, 16, dtype=np.int64)
    counts = np.minimum(16, N_ROWS - starts)
    lr, mu = (np.full(4, 0.01), np.full(4, 0.9)) if per_step else (0.01, 0.9)
    for _ in range(5):                                # compiled, coefficient rows cached
        run.run(order, starts, counts, lr, mu)
    kept = []
    for _ in range(2):                                # a real leak shows in both windows
        tracemalloc.start()
        try:
            before, _ = tracemalloc.get_traced_memory()
            for _ in range(100):
                run.run(order, starts, counts, lr, mu)
            after, _ = tracemalloc.get_traced_memory()
        finally:
            tracemalloc.stop()
        kept.append(after - before)
    assert min(kept) < 4096, f"{kept} bytes kept after 100 calls"
    assert opt.state.step == (5 + 2 * 100) * 4
    assert np.all(np.isfinite(net.flat))


# ================================================================== 7. divergence
@pytest.mark.parametrize("dtype", ["float64", "float32"])
@pytest.mark.parametrize("batch_size", [None, 16])
def test_divergence_shows_as_nan_or_inf_on_both_paths(dtype, batch_size):
    X, y = _data(k=1)
    y = 1000 * y
    runs = []
    for compiled in (True, False):
        net = Network(5, [Dense(7, "tanh"), Dense(6, "sigmoid"), Dense(1)], seed=0,
                      dtype=dtype)
        opt = SGD(1e5, momentum=0.9)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")          # the engine loop's overflow warnings
            h = inertia.fit(net, X, y, "mse", opt, epochs=30, batch_size=batch_size, seed=0,
                            progress=False, compiled=compiled, on_divergence="continue")
        assert h.epochs == 30 and opt.state.step == 30 * (1 if batch_size is None else 4)
        assert not np.isfinite(h.loss[-1]), f"compiled={compiled}: {h.loss[-3:]}"
        assert not np.all(np.isfinite(net.flat))
        runs.append(h)
    # the first step (the first full-batch epoch) is finite and the same on both paths
    assert np.isfinite(runs[0].loss[0])
    if batch_size is None:
        assert runs[0].loss[0] == pytest.approx(runs[1].loss[0], rel=1e-5)


def test_coefficient_cache_tells_conventions_apart_by_their_rule():
    """A custom convention record reusing a registered name (config() shows the name only)
    gets its own coefficient rows from the compiled loop's cache, not the namesake's: the
    run after the namesake's equals the run on an empty cache."""
    import dataclasses

    from inertia.fused import runner

    base = CONVENTIONS["pytorch"]
    impostor = dataclasses.replace(CONVENTIONS["ema"], name=base.name)   # g enters as (1 - mu) g
    X, y = _data()

    def run(conv):
        net = _net()
        opt = SGD(lr=0.05, momentum=0.9, convention=conv)
        inertia.fit(net, X, y, "mse", opt, epochs=3, batch_size=16, shuffle=False,
                    progress=False, compiled=True)
        return net.flat.copy()

    runner._ROWS.clear()
    alone = run(impostor)
    runner._ROWS.clear()
    namesake = run(base)
    after = run(impostor)
    assert not np.array_equal(alone, namesake)
    np.testing.assert_array_equal(after, alone)
