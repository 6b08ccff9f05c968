"""The functional optimizer (``opt.init`` / ``opt.step``) on the parameter lists the peers' own
optimizer tests use: non-contiguous views (``W.T``, strided slices, a strided bias),
zero-size parameters, a float64 and a float32 parameter in one list, checked against the real
torch.optim step by step in float64 (torch's test_optim cases) and against hand-worked values
(optax's sgd / trace / ema tests).

Tolerances: torch and inertia evaluate the same formulas in a different order, so each step
may differ by a few ulps of the largest term it adds; the parameters here stay O(1) and the
loss is a contracting quadratic, so after ``STEPS`` steps the difference stays below
STEPS * 16 ulps of the largest magnitude involved (``_tol``).
"""

import numpy as np
import pytest

import inertia

torch = pytest.importorskip("torch")

STEPS = 12
EPS64 = np.finfo(np.float64).eps
EPS32 = np.finfo(np.float32).eps


def _tol(arrays, eps, steps=STEPS):
    """Absolute tolerance: 16 ulps of the largest magnitude per step, over ``steps`` steps."""
    scale = max([float(np.abs(a).max()) for a in arrays if np.size(a)] + [1.0])
    return steps * 16 * eps * scale


def _views(rng, dtype=np.float64):
    """Parameters as torch's test_optim builds them, one of each layout, each a view into its
    own base array (the bases are returned to check that the writes land in them):
    C-contiguous W, W.T (F-contiguous), a strided slice [..., ::2], a strided bias, a
    zero-size weight and a zero-size bias."""
    bases = [rng.standard_normal((4, 3)), rng.standard_normal((3, 5)),
             rng.standard_normal((5, 6)), rng.standard_normal(8),
             np.zeros((0, 3)), np.zeros(0)]
    bases = [b.astype(dtype) for b in bases]
    views = [bases[0], bases[1].T, bases[2][:, ::2], bases[3][::2], bases[4], bases[5]]
    assert not views[1].flags.c_contiguous and views[1].flags.f_contiguous
    assert not views[2].flags.c_contiguous and not views[2].flags.f_contiguous
    assert not views[3].flags.c_contiguous
    return bases, views


def _targets(views, rng):
    return [rng.standard_normal(v.shape).astype(v.dtype) for v in views]


def _grads(params, targets):
    """Gradient of the quadratic sum (p - t)^2 / 2 + 0.1 sum p^3 / 3: depends on the
    parameters, so a step that was skipped shows in every later gradient."""
    return [(p - t) + 0.1 * p * p for p, t in zip(params, targets)]


# inertia optimizer, torch optimizer (on a list of tensors)
TORCH_CASES = {
    "sgd": (lambda: inertia.SGD(0.1),
            lambda ps: torch.optim.SGD(ps, lr=0.1)),
    "sgd-momentum-wd": (lambda: inertia.SGD(0.1, momentum=0.9, weight_decay=0.05),
                        lambda ps: torch.optim.SGD(ps, lr=0.1, momentum=0.9,
                                                   weight_decay=0.05)),
    "sgd-dampening": (lambda: inertia.SGD(0.05, momentum=0.8, dampening=0.3),
                      lambda ps: torch.optim.SGD(ps, lr=0.05, momentum=0.8, dampening=0.3)),
    "sgd-nesterov": (lambda: inertia.SGD(0.05, momentum=0.9, nesterov=True,
                                         weight_decay=0.01),
                     lambda ps: torch.optim.SGD(ps, lr=0.05, momentum=0.9, nesterov=True,
                                                weight_decay=0.01)),
    "adam": (lambda: inertia.Adam(0.05, weight_decay=0.1),
             lambda ps: torch.optim.Adam(ps, lr=0.05, weight_decay=0.1)),
    "adam-amsgrad": (lambda: inertia.Adam(0.05, amsgrad=True),
                     lambda ps: torch.optim.Adam(ps, lr=0.05, amsgrad=True)),
    "adamw": (lambda: inertia.AdamW(0.05, betas=(0.8, 0.99), weight_decay=0.2),
              lambda ps: torch.optim.AdamW(ps, lr=0.05, betas=(0.8, 0.99), weight_decay=0.2)),
}


def _torch_step(topt, tparams, targets):
    with torch.no_grad():
        for p, g in zip(tparams, _grads([p.numpy() for p in tparams], targets)):
            p.grad = torch.from_numpy(np.ascontiguousarray(g))
    topt.step()


@pytest.mark.parametrize("case", list(TORCH_CASES))
def test_non_contiguous_and_zero_size_params_match_torch(case):
    """torch test_optim's non-contiguous and zero-size parameters: every view is updated in
    place, in its base array, exactly as torch updates a contiguous copy."""
    make, make_torch = TORCH_CASES[case]
    rng = np.random.default_rng(1)
    bases, params = _views(rng)
    targets = _targets(params, rng)
    start = [b.copy() for b in bases]
    tparams = [torch.tensor(np.ascontiguousarray(p), dtype=torch.float64) for p in params]
    for p in tparams:
        p.requires_grad_(True)
    topt = make_torch(tparams)
    opt = make()
    state = opt.init(params)
    for _ in range(STEPS):
        opt.step(params, _grads(params, targets), state)
        _torch_step(topt, tparams, targets)
        want = [p.detach().numpy() for p in tparams]
        for j, (p, w) in enumerate(zip(params, want)):
            np.testing.assert_allclose(p, w, rtol=0, atol=_tol(want, EPS64),
                                       err_msg=f"{case}: parameter {j} after a step")
    for j in range(4):                          # every non-empty one moved, in its base array
        assert not np.allclose(bases[j], start[j]), f"parameter {j} was not updated"
    np.testing.assert_array_equal(bases[2][:, 1::2], start[2][:, 1::2])   # the gaps untouched
    np.testing.assert_array_equal(bases[3][1::2], start[3][1::2])


def _sgd_conventions():
    """(id, SGD keywords) for every convention, with weight decay and Nesterov where it has
    them."""
    cases = []
    for conv in inertia.CONVENTIONS.values():
        kw = dict(convention=conv.name, momentum=0.9)
        if conv.weight_decay is not None:
            kw["weight_decay"] = 0.01
        cases.append((conv.name, kw))
        if conv.nesterov is not None:
            cases.append((conv.name + "-nesterov", dict(kw, nesterov=True)))
    return cases


ALL_OPTIMIZERS = [pytest.param(lambda kw=kw: inertia.SGD(0.05, **kw), id="sgd-" + name)
                  for name, kw in _sgd_conventions()] + [
    pytest.param(lambda: inertia.QHM(0.05, momentum=0.9, nu=0.7, weight_decay=0.01), id="qhm"),
    pytest.param(lambda: inertia.QHM(0.05, momentum=0.9, nu=1.0), id="qhm-nu1"),
    pytest.param(lambda: inertia.AggMo(0.05, weight_decay=0.01), id="aggmo"),
    pytest.param(lambda: inertia.Adam(0.05, weight_decay=0.01, amsgrad=True), id="adam"),
    pytest.param(lambda: inertia.AdamW(0.05), id="adamw"),
]


@pytest.mark.parametrize("make", ALL_OPTIMIZERS)
def test_every_optimizer_updates_views_as_contiguous_copies(make):
    """For every optimizer and convention: a step on W.T, a strided slice and a strided bias
    gives the step on contiguous copies of them (the same rule, only the memory layout
    differs), and zero-size parameters go through."""
    rng = np.random.default_rng(2)
    bases, views = _views(rng)
    copies = [np.ascontiguousarray(v).copy() for v in views]
    targets = _targets(views, rng)
    opt_v, opt_c = make(), make()
    state_v, state_c = opt_v.init(views), opt_c.init(copies)
    moved = [v.copy() for v in views]
    for _ in range(STEPS):
        opt_v.step(views, _grads(views, targets), state_v, n=8)
        opt_c.step(copies, _grads(copies, targets), state_c, n=8)
    for j, (v, c) in enumerate(zip(views, copies)):
        np.testing.assert_allclose(v, c, rtol=0, atol=_tol(copies, EPS64),
                                   err_msg=f"parameter {j}")
    for j in range(4):
        assert not np.allclose(views[j], moved[j]), f"parameter {j} was not updated"


@pytest.mark.parametrize("make", ALL_OPTIMIZERS)
def test_mixed_float32_float64_params_each_keep_their_dtype(make):
    """torch test_optim's step with a float64 and a float32 parameter: each is updated, in its
    own dtype, with state buffers of its own dtype, as two separate optimizers would."""
    rng = np.random.default_rng(3)
    p64 = rng.standard_normal((3, 4))
    p32 = rng.standard_normal(5).astype(np.float32)
    t64, t32 = rng.standard_normal((3, 4)), rng.standard_normal(5).astype(np.float32)
    mixed = [p64.copy(), p32.copy()]
    alone64, alone32 = [p64.copy()], [p32.copy()]
    opt, o64, o32 = make(), make(), make()
    state = opt.init(mixed)
    s64, s32 = o64.init(alone64), o32.init(alone32)
    for name in opt.STATE_LISTS:
        bufs = getattr(state, name)
        P = len(mixed)
        assert [b.dtype for b in bufs] == [mixed[i % P].dtype for i in range(len(bufs))]
    for _ in range(STEPS):
        opt.step(mixed, _grads(mixed, [t64, t32]), state, n=8)
        o64.step(alone64, _grads(alone64, [t64]), s64, n=8)
        o32.step(alone32, _grads(alone32, [t32]), s32, n=8)
    assert mixed[0].dtype == np.float64 and mixed[1].dtype == np.float32
    np.testing.assert_array_equal(mixed[0], alone64[0])
    np.testing.assert_array_equal(mixed[1], alone32[0])
    assert not np.allclose(mixed[1], p32) and not np.allclose(mixed[0], p64)


def test_mixed_dtypes_match_torch_per_dtype():
    """torch's SGD with momentum on a float64 and a float32 parameter in one group: each
    parameter follows torch's trajectory in its own dtype."""
    rng = np.random.default_rng(4)
    p64 = rng.standard_normal((3, 4))
    p32 = rng.standard_normal((2, 3)).astype(np.float32)
    targets = [rng.standard_normal((3, 4)), rng.standard_normal((2, 3)).astype(np.float32)]
    params = [p64.copy(), p32.T.copy().T]                # the float32 one a W.T view, too
    tparams = [torch.tensor(p, requires_grad=True) for p in (p64, p32)]
    topt = torch.optim.SGD(tparams, lr=0.1, momentum=0.9, weight_decay=0.01)
    opt = inertia.SGD(0.1, momentum=0.9, weight_decay=0.01)
    state = opt.init(params)
    for _ in range(STEPS):
        opt.step(params, _grads(params, targets), state)
        _torch_step(topt, tparams, targets)
    want = [p.detach().numpy() for p in tparams]
    assert want[1].dtype == np.float32
    np.testing.assert_allclose(params[0], want[0], rtol=0, atol=_tol(want[:1], EPS64))
    np.testing.assert_allclose(params[1], want[1], rtol=0, atol=_tol(want[1:], EPS32))


def test_state_of_another_dtype_or_shape_is_refused_in_one_line():
    opt = inertia.SGD(0.1, momentum=0.9)
    p32 = [np.zeros((2, 3), dtype=np.float32)]
    state = opt.init([np.zeros((2, 3))])                 # float64 buffers
    with pytest.raises(ValueError, match="make the state with opt.init") as info:
        opt.step(p32, [np.ones((2, 3), dtype=np.float32)], state)
    assert "\n" not in str(info.value)
    with pytest.raises(ValueError, match="float32 or float64 NumPy array"):
        opt.step([[1.0, 2.0]], [[1.0, 1.0]], opt.init([np.zeros(2)]))
    ro = np.zeros(2)
    ro.flags.writeable = False
    with pytest.raises(ValueError, match="read-only"):
        opt.step([ro], [np.ones(2)], opt.init([ro]))


# --- optax's sgd / trace / ema tests, hand-worked ---------------------------------------------
OPTAX_PARAMS = (np.array([1.0, 2.0]), np.array([3.0, 4.0]))
OPTAX_UPDATES = (np.array([500.0, 5.0]), np.array([300.0, 3.0]))


def test_optax_sgd_constant_updates():
    """optax transform_test (apply_every's reference): sgd(LR) on constant updates moves each
    parameter by LR * g per step; after 50 steps w = w0 - 50 LR g."""
    lr, steps = 1e-2, 50
    params = [p.copy() for p in OPTAX_PARAMS]
    opt = inertia.SGD(lr, convention="optax")
    state = opt.init(params)
    for _ in range(steps):
        opt.step(params, [g.copy() for g in OPTAX_UPDATES], state)
    for p, p0, g in zip(params, OPTAX_PARAMS, OPTAX_UPDATES):
        want = p0 - steps * lr * g
        np.testing.assert_allclose(p, want, rtol=0, atol=steps * 4 * EPS64 * np.abs(want).max())


@pytest.mark.parametrize("nesterov", [False, True])
def test_optax_trace_hand_worked(nesterov):
    """optax.trace(decay, nesterov): t = g + decay t; the update is -lr t, or -lr (g + decay t)
    with Nesterov. Three steps worked by hand, on a strided view."""
    lr, d = 0.1, 0.9
    gs = [np.array([1.0, -2.0]), np.array([0.5, 4.0]), np.array([-3.0, 1.0])]
    base = np.array([1.0, 7.0, -1.0, 7.0])
    p = base[::2]                                       # a strided 1-D view: [1, -1]
    opt = inertia.SGD(lr, momentum=d, nesterov=nesterov, convention="optax")
    state = opt.init([p])
    t = np.zeros(2)
    want = p.copy()
    for g in gs:
        opt.step([p], [g], state)
        t = g + d * t
        want = want - lr * ((g + d * t) if nesterov else t)
        np.testing.assert_allclose(p, want, rtol=0, atol=8 * EPS64 * np.abs(want).max())
    np.testing.assert_array_equal(base[1::2], [7.0, 7.0])


def test_optax_ema_hand_worked():
    """optax transform_test.test_ema (decay 0.9, values 5 then 7, no debiasing): the EMA
    convention's velocity is (1-d) 5, then (1-d)(7 + d 5)."""
    d = 0.9
    p = np.zeros((2, 2)).T                               # a W.T view
    opt = inertia.SGD(1.0, momentum=d, convention="ema")
    state = opt.init([p])
    opt.step([p], [np.full((2, 2), 5.0)], state)
    np.testing.assert_allclose(state.velocity[0], (1 - d) * 5.0, rtol=4 * EPS64)
    opt.step([p], [np.full((2, 2), 7.0)], state)
    np.testing.assert_allclose(state.velocity[0], (1 - d) * (7.0 + d * 5.0), rtol=4 * EPS64)
    # the parameter moved by both velocities: -(v1 + v2)
    np.testing.assert_allclose(p, -((1 - d) * 5.0 + (1 - d) * (7.0 + d * 5.0)),
                               rtol=8 * EPS64)
