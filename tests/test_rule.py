"""optim/rule.py, the one statement of the momentum step, and what reads it.

1. A Convention is its flags: a record with ema's flags under another name runs ema's steps
   bit for bit, and ``translate`` treats it exactly as ema, in both directions, for every
   preset and hyperparameters (decisions read flags, never names).
2. The look-ahead shift is one function for every place that takes it. For a convention whose
   biases have momentum, look-ahead Nesterov shifts the biases too, and the engine loop, the
   compiled loop and the functional ``lookahead_point`` agree. Independent checks: Sutskever's
   NAG written by hand on every parameter; and the coordinate change to Keras's
   reparameterised Nesterov (itself checked against Keras), biases included. An lr-outside
   look-ahead convention shifts its buffer b by -lr mu (v = -lr b), so it runs the lr-inside
   one's steps.
3. The compiled loop's contract is declared: ``closed_form()`` is None for AggMo and Adam, a
   ClosedForm naming the buffer list for SGD and QHM.
4. The engine driver and the table: a hand-worked previous_delta step (the article's
   numbers), PyTorch's Nesterov with decay by hand, and decoupled decay in an lr-outside
   record (a flag combination no preset has) against the loop written out and against keras.
"""

import dataclasses
import itertools

import numpy as np
import pytest

import inertia
from inertia import Dense, Network, NotRepresentable
from inertia.optim import CONVENTIONS, SGD, Convention, rule
from inertia.optim.nesterov import to_reparameterised
from inertia.optim.translate import translation

EMA2 = dataclasses.replace(CONVENTIONS["ema"], name="moving_average",
                           spelling=inertia.optim.Spelling(), source="")


# ================================================================ 1. flags, not names
def _grad(params, A, c):
    x = np.concatenate([p.ravel() for p in params])
    g = A @ x + c
    out, k = [], 0
    for p in params:
        out.append(g[k:k + p.size].reshape(p.shape))
        k += p.size
    return out


def _problem(seed=0):
    rng = np.random.default_rng(seed)
    params = [rng.normal(size=(3, 4)), rng.normal(size=(3,))]
    d = 15
    Q, _ = np.linalg.qr(rng.normal(size=(d, d)))
    A = Q @ np.diag(rng.uniform(0.2, 1.0, d)) @ Q.T
    return params, A, rng.normal(size=d)


def _run(opt, params0, A, c, steps=40, n=8):
    params = [p.copy() for p in params0]
    state = opt.init(params)
    for _ in range(steps):
        at = opt.lookahead_point(params, state) if opt.lookahead else params
        opt.step(params, _grad(at, A, c), state, n=n)
    return params


@pytest.mark.parametrize("nest", [False, True])
@pytest.mark.parametrize("wd", [0.0, 0.05])
def test_renamed_ema_runs_emas_steps(nest, wd):
    params0, A, c = _problem()
    want = _run(SGD(0.1, 0.9, nesterov=nest, weight_decay=wd, convention="ema"), params0, A, c)
    got = _run(SGD(0.1, 0.9, nesterov=nest, weight_decay=wd, convention=EMA2), params0, A, c)
    for g, w in zip(got, want):
        np.testing.assert_array_equal(g, w)


def _hypers(conv):
    for mu, d, nest, wd, corr in itertools.product([0.0, 0.9], [0.0, 0.5], [False, True],
                                                   [0.0, 0.05], [False, True]):
        try:
            yield SGD(0.1, mu, d, nest, wd, convention=conv, momentum_correction=corr)
        except ValueError:
            pass


def _outcome(opt, to, schedule):
    try:
        tr = translation(opt, to, schedule)
    except NotRepresentable as ex:
        return ("refused", str(ex).replace("moving_average", "ema"))
    cfg = dict(tr.target.config(), convention=None)
    same = "exact: the same convention"             # ema -> its twin: the same rule, renamed
    notes = [same if n.startswith("exact: the same rule") else n for n in tr.notes]
    return (cfg, tr.lr_factor, tr.target.momentum_correction,
            [n.replace("moving_average", "ema") for n in notes])


@pytest.mark.parametrize("other", list(CONVENTIONS))
@pytest.mark.parametrize("schedule", [None, inertia.schedules.cosine(0.1, 100)],
                         ids=["constant", "cosine"])
def test_renamed_ema_translates_exactly_like_ema(other, schedule):
    checked = 0
    for src in _hypers(other):                     # into ema and into its twin
        assert _outcome(src, EMA2, schedule) == _outcome(src, "ema", schedule), repr(src)
        checked += 1
    for twin in _hypers(EMA2):                     # out of ema and out of its twin
        h = dict(twin.config(), convention="ema")
        assert _outcome(twin, other, schedule) == _outcome(SGD(**h), other, schedule), h
        checked += 1
    assert checked >= 14                            # previous_delta has the fewest


def test_renamed_ema_translation_runs_the_same():
    # not only the same numbers as ema's: the translated optimizer really takes ema's steps
    params0, A, c = _problem(1)
    src = SGD(0.1, 0.9, weight_decay=0.05, convention="tf1")
    tr = translation(src, EMA2)
    assert tr.lr_factor == pytest.approx(1 / (1 - 0.9))
    want = _run(src, params0, A, c)
    got = _run(tr.target, params0, A, c)
    for g, w in zip(got, want):
        np.testing.assert_allclose(g, w, rtol=1e-10, atol=1e-12)


def test_a_record_without_a_framework_spells_the_inertia_call():
    fc = inertia.optim.translate.framework_call(SGD(0.1, 0.9, convention=EMA2))
    assert fc.call == 'inertia.SGD(lr=0.1, momentum=0.9, convention="moving_average")'
    assert fc.notes == []


# ================================================================ 2. one look-ahead shift
# Sutskever's look-ahead Nesterov with every parameter shifted, biases included
ALL_LOOK = Convention("lookahead_all", lr_inside=True, nesterov="lookahead",
                      weight_decay="decoupled")
ALL_LOOK_OUT = Convention("lookahead_all_outside", nesterov="lookahead")


def test_shift_is_mu_v_on_every_parameter_with_momentum():
    assert rule.shift(ALL_LOOK, 0.1, 0.9, True) == 0.9
    assert rule.shift(CONVENTIONS["neanderthal"], 0.1, 0.9, True) == 0.0     # no bias momentum
    assert rule.shift(CONVENTIONS["neanderthal"], 0.1, 0.9, False) == 0.9
    assert rule.shift(ALL_LOOK_OUT, 0.1, 0.9, False) == pytest.approx(-0.09)  # v = -lr b
    opt = SGD(0.1, 0.9, nesterov=True, convention=ALL_LOOK)
    assert opt.lookahead_shift(True) == opt.lookahead_shift(False) == 0.9
    keras = SGD(0.1, 0.9, nesterov=True, convention="keras")      # reparameterised: no shift
    assert not keras.lookahead and keras.lookahead_shift(False) == 0.0


def _nag_by_hand(params0, A, c, lr, mu, steps):
    """v = mu v - lr g(w + mu v); w += v, on every parameter: the textbook rule."""
    w = [p.copy() for p in params0]
    v = [np.zeros_like(p) for p in params0]
    for _ in range(steps):
        g = _grad([p + mu * q for p, q in zip(w, v)], A, c)
        v = [mu * q - lr * gi for q, gi in zip(v, g)]
        w = [p + q for p, q in zip(w, v)]
    return w


@pytest.mark.parametrize("conv", [ALL_LOOK, ALL_LOOK_OUT], ids=lambda c: c.name)
def test_lookahead_on_biases_is_sutskevers_nag(conv):
    params0, A, c = _problem(2)
    want = _nag_by_hand(params0, A, c, 0.1, 0.9, 40)
    got = _run(SGD(0.1, 0.9, nesterov=True, convention=conv), params0, A, c)
    for g, w in zip(got, want):
        np.testing.assert_allclose(g, w, rtol=1e-10, atol=1e-12)


def test_lookahead_on_biases_is_keras_nesterov_after_the_coordinate_change():
    params0, A, c = _problem(3)
    look = SGD(0.1, 0.9, nesterov=True, convention=ALL_LOOK)
    keras = SGD(0.1, 0.9, nesterov=True, convention="keras")
    w, u = [p.copy() for p in params0], [p.copy() for p in params0]
    ls, ks = look.init(w), keras.init(u)
    for t in range(40):
        look.step(w, _grad(look.lookahead_point(w, ls), A, c), ls)
        keras.step(u, _grad(u, A, c), ks)
        for a, b in zip(to_reparameterised(look, w, ls), u):   # biases included
            np.testing.assert_allclose(a, b, rtol=1e-10, atol=1e-12, err_msg=f"step {t}")


def _data(n=50, seed=0):
    rng = np.random.default_rng(seed)
    X = rng.normal(size=(n, 5))
    return X, np.sin(X[:, :2]) + 0.3


def _fit(conv, compiled, batch_size):
    X, y = _data()
    net = Network(5, [Dense(7, "tanh"), Dense(2, "linear")], seed=3, dtype="float64")
    opt = SGD(0.05, 0.9, nesterov=True, weight_decay=0.01, convention=conv)
    inertia.fit(net, X, y, "mse", opt, epochs=6, batch_size=batch_size, shuffle=False,
                progress=False, compiled=compiled)
    return net, opt


@pytest.mark.parametrize("batch_size", [None, 16])
@pytest.mark.parametrize("conv", [ALL_LOOK, CONVENTIONS["neanderthal"]], ids=lambda c: c.name)
def test_engine_compiled_and_functional_lookahead_agree(conv, batch_size):
    engine, _ = _fit(conv, False, batch_size)
    compiled, _ = _fit(conv, True, batch_size)
    # the functional form: gradients at lookahead_point, then step
    X, y = _data()
    net = Network(5, [Dense(7, "tanh"), Dense(2, "linear")], seed=3, dtype="float64")
    opt = SGD(0.05, 0.9, nesterov=True, weight_decay=0.01, convention=conv)
    params = [x for wb in net.parameters() for x in wb]
    state = opt.init(params)
    bs = len(X) if batch_size is None else batch_size
    start = [p.copy() for p in params]
    for _ in range(6):
        for s in range(0, len(X), bs):
            at = opt.lookahead_point(params, state)
            net.set_parameters([(at[i], at[i + 1]) for i in range(0, len(at), 2)])
            _, grads = net.gradients(X[s:s + bs], y[s:s + bs], "mse")
            opt.step(params, [g for wb in grads for g in wb], state, n=len(X[s:s + bs]))
    for a, b, p, p0 in zip(_flat(engine), _flat(compiled), params, start):
        assert np.abs(p - p0).max() > 1e-4, "did not train"
        np.testing.assert_allclose(a, p, rtol=1e-10, atol=1e-12)
        np.testing.assert_allclose(b, p, rtol=1e-10, atol=1e-12)


def _flat(net):
    return [x for wb in net.parameters() for x in wb]


def test_a_weights_only_shift_is_not_nag():
    # the control: shifting only the weights while the biases carry momentum (what the
    # network and the compiled loop did before the shift was stated once) is another rule
    params0, A, c = _problem(2)
    want = _nag_by_hand(params0, A, c, 0.1, 0.9, 40)
    opt = SGD(0.1, 0.9, nesterov=True, convention=ALL_LOOK)
    params = [p.copy() for p in params0]
    state = opt.init(params)
    for _ in range(40):
        at = [params[0] + 0.9 * state.velocity[0], params[1]]
        opt.step(params, _grad(at, A, c), state)
    assert max(np.abs(p - w).max() for p, w in zip(params, want)) > 1e-6


# ================================================================ 3. the declared contract
def test_closed_form_is_declared():
    for opt in (inertia.Adam(), inertia.AdamW(), inertia.AggMo(0.1)):
        assert opt.closed_form() is None
    for opt, buffer in ((SGD(0.1, 0.9), "velocity"), (inertia.QHM(0.1, 0.9, 0.7), "buffer")):
        form = opt.closed_form()
        assert isinstance(form, rule.ClosedForm) and form.buffer == buffer
        opt.state = opt.init([np.zeros((2, 3)), np.zeros(2)])
        w, b = form.coefficients(np.array([0.1, 0.2]), np.array([0.9, 0.9]), np.array([4, 4]))
        assert w.shape == b.shape == (2, 8)


# ================================================================ 4. the engine driver
def test_previous_delta_worked_example():
    # the article's numbers: w = 3.56, lr = 0.01, descent gradient 2.70 (g = -2.70),
    # mu = 0.5, previous delta 0.044 (stored as lr g_prev = -0.044):
    # w = 3.56 + 0.01 * 2.70 + 0.5 * 0.044 = 3.56 + 0.027 + 0.022 = 3.609
    opt = SGD(0.01, 0.5, convention="previous_delta")
    w = np.array([3.56])
    state = opt.init([w])
    state.velocity[0][...] = -0.044
    state.step, state.started = 1, True
    opt.step([w], [np.array([-2.70])], state)
    assert w[0] == pytest.approx(3.609, abs=1e-12)
    assert state.velocity[0][0] == pytest.approx(-0.027, abs=1e-15)


def test_table_folds_decay_into_c_and_d():
    # pytorch Nesterov with decay, by hand: g~ = g + wd w; b' = mu b + g~;
    # w' = w - lr (g~ + mu b') = (1 - lr wd) w - lr mu b' - lr g
    lr, mu, wd = 0.1, 0.9, 0.01
    s = rule.sgd(CONVENTIONS["pytorch"], lr, mu, 0.0, True, wd, False, None, False)
    A, B, C, D, E, F, H, look = s.table()
    assert (A, B, C, H, look) == (mu, 1.0, wd, 0.0, 0.0)
    assert D == pytest.approx(1 - lr * wd) and E == pytest.approx(-lr * mu) and F == -lr


def test_decoupled_decay_with_the_lr_outside():
    # a flag combination no preset has: w = (1 - lr wd) w; b = mu b + g; w -= lr b, checked
    # against that loop by hand, and against keras (v = -lr b) through translate
    outside = Convention("decoupled_outside", weight_decay="decoupled")
    lr, mu, wd = 0.1, 0.9, 0.05
    params0, A, c = _problem(4)
    w = [p.copy() for p in params0]
    b = [np.zeros_like(p) for p in params0]
    for _ in range(40):
        g = _grad(w, A, c)
        w = [(1 - lr * wd) * p for p in w]
        b = [mu * q + gi for q, gi in zip(b, g)]
        w = [p - lr * q for p, q in zip(w, b)]
    got = _run(SGD(lr, mu, weight_decay=wd, convention=outside), params0, A, c)
    keras = translation(SGD(lr, mu, weight_decay=wd, convention=outside), "keras").target
    assert keras.lr == lr and keras.weight_decay == wd
    via_keras = _run(keras, params0, A, c)
    for x, y, z in zip(got, w, via_keras):
        np.testing.assert_allclose(x, y, rtol=1e-10, atol=1e-12)
        np.testing.assert_allclose(z, y, rtol=1e-10, atol=1e-12)
