"""Learning-rate and momentum schedules (``inertia.schedules``).

1. Each schedule against its formula at chosen steps (the hand-computed values are in the
   comments), and against PyTorch's schedulers where one exists (StepLR, CosineAnnealingLR,
   OneCycleLR with cycle_momentum) step by step.
2. ``schedules.parse``: every command-line name, and one-line ValueErrors for bad strings.
3. ``fit(lr_schedule=, momentum_schedule=)`` equals a hand-written loop that calls
   ``opt.set(lr=s(t), momentum=m(t))`` before every step (full batch and mini-batch); both
   schedules read the optimizer's one step counter, across fit calls too; a schedule whose
   value the optimizer rejects raises before training and leaves the weights untouched.
"""

import math
import warnings

import numpy as np
import pytest

import inertia
from inertia import schedules as S

torch = pytest.importorskip("torch")


def one_line(exc_info):
    msg = str(exc_info.value)
    assert msg and "\n" not in msg, msg


# ---------------------------------------------------------------------------------------------
# 1. formulas
# ---------------------------------------------------------------------------------------------
def test_constant():
    s = S.constant(0.1)
    for t in (0, 1, 17, 10**6):
        assert s(t) == 0.1
    assert S.constant(0.0)(5) == 0.0          # a zero momentum is a valid constant


def test_step_formula():
    s = S.step(0.1, 10, 0.5)
    # 0.1 * 0.5 ** floor(t / 10)
    assert s(0) == 0.1
    assert s(9) == 0.1
    assert s(10) == 0.05                       # 0.1 * 0.5
    assert s(19) == 0.05
    assert s(25) == 0.025                      # 0.1 * 0.25
    assert s(100) == pytest.approx(0.1 / 1024, rel=1e-15)     # 0.1 * 0.5 ** 10
    assert S.step(1.0, 3)(7) == pytest.approx(0.01, rel=1e-15)  # default gamma 0.1, 2 decays


@pytest.mark.parametrize("value,step_size,gamma", [(0.1, 10, 0.5), (0.3, 7, 0.1), (1.0, 1, 0.9)])
def test_step_matches_torch_steplr(value, step_size, gamma):
    p = torch.zeros(1, dtype=torch.float64, requires_grad=True)
    opt = torch.optim.SGD([p], lr=value)
    sched = torch.optim.lr_scheduler.StepLR(opt, step_size=step_size, gamma=gamma)
    s = S.step(value, step_size, gamma)
    for t in range(60):
        assert s(t) == pytest.approx(opt.param_groups[0]["lr"], rel=1e-12), t
        opt.step()
        sched.step()


def test_inverse_scaling_formula():
    s = S.inverse_scaling(0.1, 0.5)
    # 0.1 / sqrt(t + 1)
    assert s(0) == 0.1
    assert s(3) == pytest.approx(0.05, rel=1e-15)            # 0.1 / 2
    assert s(99) == pytest.approx(0.01, rel=1e-15)           # 0.1 / 10
    s2 = S.inverse_scaling(1.0, 1.0)
    assert s2(4) == pytest.approx(0.2, rel=1e-15)            # 1 / 5
    assert S.inverse_scaling(0.3, 0.0)(1000) == 0.3          # power 0: constant


def test_inverse_scaling_formula_is_sklearn_update_rule():
    """scikit-learn's SGDOptimizer (learning_rate="invscaling") sets
    learning_rate = learning_rate_init / (time_step + 1) ** power_t in iteration_ends: the
    same formula (the clocks differ: see test_inverse_scaling_per_samples_is_sklearn_mlp)."""
    sk = pytest.importorskip("sklearn.neural_network._stochastic_optimizers")
    opt = sk.SGDOptimizer([np.zeros(3)], learning_rate_init=0.2, lr_schedule="invscaling",
                          power_t=0.25)
    s = S.inverse_scaling(0.2, 0.25)
    for t in (0, 1, 2, 9, 99, 12345):
        opt.iteration_ends(t)
        assert s(t) == pytest.approx(opt.learning_rate, rel=1e-15), t


def _sklearn_mlp_rates(n, batch_size, lr0, power_t, epochs):
    """The learning rate of every update scikit-learn's MLPRegressor(solver="sgd",
    learning_rate="invscaling") makes, read inside its SGDOptimizer."""
    sk = pytest.importorskip("sklearn.neural_network._stochastic_optimizers")
    from sklearn.neural_network import MLPRegressor

    rates = []
    original = sk.SGDOptimizer._get_updates

    def recording(self, grads):
        rates.append(self.learning_rate)
        return original(self, grads)

    rng = np.random.default_rng(0)
    X, y = rng.normal(size=(n, 3)), rng.normal(size=n)
    sk.SGDOptimizer._get_updates = recording
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            MLPRegressor(hidden_layer_sizes=(4,), solver="sgd", learning_rate="invscaling",
                         learning_rate_init=lr0, power_t=power_t, batch_size=batch_size, max_iter=epochs, tol=0.0,
                         n_iter_no_change=10**6, random_state=0).fit(X, y)
    finally:
        sk.SGDOptimizer._get_updates = original
    return np.array(rates)


@pytest.mark.parametrize("n, batch_size, power_t", [(23, 5, 0.5), (20, 4, 0.25),
                                                    (17, None, 0.5), (9, 1, 0.75)])
def test_inverse_scaling_per_samples_is_sklearn_mlp(n, batch_size, power_t):
    """per="samples" gives the rate of every step of scikit-learn's MLP over several epochs,
    an uneven last batch included (23 rows in batches of 5: 4 full ones and one of 3)."""
    epochs = 6
    want = _sklearn_mlp_rates(n, batch_size or n, 0.05, power_t, epochs)
    per = -(-n // (batch_size or n))
    assert want.shape == (epochs * per,)
    s = S.inverse_scaling(0.05, power_t, per="samples", n_samples=n, batch_size=batch_size)
    got = np.array([s(t) for t in range(epochs * per)])
    np.testing.assert_allclose(got, want, rtol=1e-15)
    # the step-counting form is a different schedule (it falls inside the first epoch)
    steps = np.array([S.inverse_scaling(0.05, power_t)(t) for t in range(epochs * per)])
    if power_t > 0 and per > 1:
        assert not np.allclose(steps, want, rtol=1e-3)


def test_inverse_scaling_per_samples_hand_worked():
    # 10 rows in batches of 4: 3 steps per epoch; after e epochs 10 e samples are seen
    s = S.inverse_scaling(1.0, 1.0, per="samples", n_samples=10, batch_size=4)
    assert [s(t) for t in range(3)] == [1.0, 1.0, 1.0]
    assert [s(t) for t in range(3, 6)] == [1 / 11] * 3
    assert s(6) == 1 / 21


@pytest.mark.parametrize("kw", [dict(per="epochs"), dict(per="samples"),
                                dict(per="samples", n_samples=0),
                                dict(per="samples", n_samples=5, batch_size=0),
                                dict(n_samples=5)])
def test_inverse_scaling_bad_per(kw):
    with pytest.raises(ValueError) as ei:
        S.inverse_scaling(0.1, 0.5, **kw)
    assert "\n" not in str(ei.value)


def test_cosine_formula():
    s = S.cosine(0.1, 100, final=0.001)
    # final + (value - final) (1 + cos(pi t / total)) / 2
    assert s(0) == pytest.approx(0.1, rel=1e-15)
    assert s(50) == pytest.approx(0.0505, rel=1e-14)         # 0.001 + 0.099 / 2
    assert s(100) == pytest.approx(0.001, rel=1e-14)
    assert s(25) == pytest.approx(0.001 + 0.099 * (1 + math.sqrt(0.5)) / 2, rel=1e-14)
    assert s(150) == s(100) == s(10**6)                      # held at final after total
    assert S.cosine(0.2, 10)(10) == pytest.approx(0.0, abs=1e-17)   # default final 0


@pytest.mark.parametrize("value,total,final", [(0.1, 100, 0.001), (0.5, 37, 0.0), (0.9, 5, 0.2)])
def test_cosine_matches_torch_cosine_annealing(value, total, final):
    p = torch.zeros(1, dtype=torch.float64, requires_grad=True)
    opt = torch.optim.SGD([p], lr=value)
    sched = torch.optim.lr_scheduler.CosineAnnealingLR(opt, T_max=total, eta_min=final)
    s = S.cosine(value, total, final)
    for t in range(total + 1):
        assert s(t) == pytest.approx(opt.param_groups[0]["lr"], rel=1e-10, abs=1e-15), t
        opt.step()
        sched.step()


def test_linear_warmup():
    s = S.linear_warmup(0.1, 10)
    # start + (value - start) (t + 1) / steps, start 0: the first step already moves
    assert s(0) == pytest.approx(0.01, rel=1e-15)            # 0.1 * 1 / 10
    assert s(4) == pytest.approx(0.05, rel=1e-15)            # 0.1 * 5 / 10
    assert s(9) == pytest.approx(0.1, rel=1e-15)             # the last warm-up step: value
    assert s(10) == 0.1
    assert s(1000) == 0.1
    s = S.linear_warmup(0.1, 4, start=0.02)
    assert s(0) == pytest.approx(0.04, rel=1e-15)            # 0.02 + 0.08 * 1 / 4
    assert s(1) == pytest.approx(0.06, rel=1e-15)            # 0.02 + 0.08 * 2 / 4
    # with a schedule after the warm-up: after(t - steps)
    s = S.linear_warmup(0.1, 10, start=0.01, after=S.cosine(0.1, 20))
    assert s(10) == pytest.approx(0.1, rel=1e-15)            # cosine(0)
    assert s(20) == pytest.approx(0.05, rel=1e-14)           # cosine(10) = 0.1 (1 + 0) / 2
    assert s(30) == pytest.approx(0.0, abs=1e-17)            # cosine(20) = 0


def _sutskever_formula(t, mu_max, every=250):
    return min(1 - 2 ** (-1 - math.log2(math.floor(t / every) + 1)), mu_max)


def test_sutskever_docstring_example_exact():
    # t = 1000: floor(1000 / 250) + 1 = 5, 1 - 2^(-1 - log2 5) = 1 - 1/10 = 0.9 (< 0.99)
    assert S.sutskever(mu_max=0.99)(1000) == 0.9


@pytest.mark.parametrize("t,want", [
    (0, 0.5),            # j = 1: 1 - 2^-1
    (249, 0.5),          # still j = 1
    (250, 0.75),         # j = 2: 1 - 2^-2
    (999, 0.875),        # j = 4: 1 - 2^-3
    (10**6, 0.99),       # j = 4001: 1 - 1/8002 = 0.999875, capped at mu_max
])
def test_sutskever_formula(t, want):
    s = S.sutskever(mu_max=0.99)
    assert s(t) == want
    assert s(t) == pytest.approx(_sutskever_formula(t, 0.99), rel=1e-15)


def test_sutskever_formula_everywhere_and_cap():
    s = S.sutskever(mu_max=0.95)
    for t in list(range(0, 6000, 125)) + [6249, 6250, 10**5]:
        assert s(t) == pytest.approx(_sutskever_formula(t, 0.95), rel=1e-15, abs=1e-16), t
    # j = 10 (t = 2250..2499): 1 - 1/20 = 0.95 reaches the cap
    assert s(2250) == pytest.approx(0.95, rel=1e-15)
    assert s(10**5) == 0.95
    assert S.sutskever(mu_max=0.9, every=10)(40) == 0.9       # j = 5: exactly the cap


def test_demon():
    T = 100
    s = S.demon(0.9, T)
    # beta0 (1 - t/T) / ((1 - beta0) + beta0 (1 - t/T))
    assert s(0) == pytest.approx(0.9, rel=1e-15)              # 0.9 / (0.1 + 0.9)
    assert s(T // 2) == pytest.approx(0.45 / 0.55, rel=1e-15)  # 0.8181...
    assert s(T) == 0.0
    assert s(2 * T) == 0.0 and s(10**6) == 0.0
    # t = 75: r = 0.25, 0.225 / (0.1 + 0.225) = 0.6923...
    assert s(75) == pytest.approx(0.225 / 0.325, rel=1e-15)
    # monotone from beta0 to 0
    vals = [s(t) for t in range(T + 1)]
    assert all(a > b for a, b in zip(vals, vals[1:]))


def _torch_one_cycle(max_lr, total, pct_start=0.3, div_factor=25.0, final_div_factor=1e4,
                     base_momentum=0.85, max_momentum=0.95):
    p = torch.zeros(1, dtype=torch.float64, requires_grad=True)
    opt = torch.optim.SGD([p], lr=max_lr, momentum=0.9)
    sched = torch.optim.lr_scheduler.OneCycleLR(
        opt, max_lr=max_lr, total_steps=total, pct_start=pct_start, div_factor=div_factor,
        final_div_factor=final_div_factor, cycle_momentum=True, base_momentum=base_momentum,
        max_momentum=max_momentum, anneal_strategy="cos", three_phase=False)
    lrs, moms = [], []
    for t in range(total):
        lrs.append(opt.param_groups[0]["lr"])
        moms.append(opt.param_groups[0]["momentum"])
        opt.step()
        if t < total - 1:
            sched.step()
    return lrs, moms


@pytest.mark.parametrize("max_lr,total,kw", [
    (0.1, 100, {}),
    (0.5, 37, {}),
    (0.2, 50, dict(pct_start=0.45, div_factor=10.0, final_div_factor=100.0,
                   base_momentum=0.8, max_momentum=0.9)),
    (1.0, 3, {}),
])
def test_one_cycle_matches_torch(max_lr, total, kw):
    lrs, moms = _torch_one_cycle(max_lr, total, **kw)
    lr_kw = {k: v for k, v in kw.items() if k in ("pct_start", "div_factor", "final_div_factor")}
    m_kw = {k: v for k, v in kw.items() if k in ("pct_start", "base_momentum", "max_momentum")}
    s = S.one_cycle(max_lr, total, **lr_kw)
    m = S.one_cycle_momentum(total, **m_kw)
    for t in range(total):
        assert s(t) == pytest.approx(lrs[t], rel=1e-12), t
        assert m(t) == pytest.approx(moms[t], rel=1e-12), t
    # beyond the cycle both hold their last value
    assert s(total + 5) == s(total - 1)
    assert m(total + 5) == m(total - 1)


def test_one_cycle_endpoints():
    s = S.one_cycle(0.1, 100)
    m = S.one_cycle_momentum(100)
    assert s(0) == pytest.approx(0.1 / 25, rel=1e-15)         # initial = max_lr / div_factor
    assert s(29) == pytest.approx(0.1, rel=1e-15)             # peak at pct_start * total - 1
    assert s(99) == pytest.approx(0.1 / 25 / 1e4, rel=1e-12)  # initial / final_div_factor
    assert m(0) == pytest.approx(0.95, rel=1e-15)
    assert m(29) == pytest.approx(0.85, rel=1e-15)
    assert m(99) == pytest.approx(0.95, rel=1e-15)


def test_negative_step_rejected():
    with pytest.raises(ValueError) as ei:
        S.constant(0.1)(-1)
    one_line(ei)


@pytest.mark.parametrize("make", [
    lambda: S.constant(-0.1), lambda: S.constant(float("nan")),
    lambda: S.step(0.1, 0), lambda: S.step(0.1, 2.5), lambda: S.step(0.0, 10),
    lambda: S.inverse_scaling(0.1, -1.0), lambda: S.cosine(0.1, 0),
    lambda: S.cosine(0.1, 10, final=-0.1), lambda: S.linear_warmup(0.1, 0),
    lambda: S.linear_warmup(0.1, 5, after=3.0), lambda: S.sutskever(1.0),
    lambda: S.sutskever(0.9, every=0), lambda: S.demon(1.0), lambda: S.demon(0.9, 0),
    lambda: S.one_cycle(0.1, 1), lambda: S.one_cycle(0.1, 10, pct_start=1.0),
    lambda: S.one_cycle_momentum(10, 0.95, 0.85), lambda: S.one_cycle_momentum(10, 0.5, 1.0),
])
def test_bad_schedule_arguments(make):
    with pytest.raises(ValueError) as ei:
        make()
    one_line(ei)


# ---------------------------------------------------------------------------------------------
# 2. parse
# ---------------------------------------------------------------------------------------------
@pytest.mark.parametrize("text,kind,want", [
    ("constant", "lr", S.constant(0.1)),
    ("step:100", "lr", S.step(0.1, 100, 0.1)),
    ("step:100,0.5", "lr", S.step(0.1, 100, 0.5)),
    ("inverse_scaling", "lr", S.inverse_scaling(0.1, 0.5)),
    ("inverse_scaling:0.25", "lr", S.inverse_scaling(0.1, 0.25)),
    ("inverse-scaling:0.25", "lr", S.inverse_scaling(0.1, 0.25)),
    ("cosine", "lr", S.cosine(0.1, 1000, 0.0)),
    ("cosine:0.001", "lr", S.cosine(0.1, 1000, 0.001)),
    ("warmup:50", "lr", S.linear_warmup(0.1, 50)),
    ("one_cycle", "lr", S.one_cycle(0.1, 1000)),
    ("one-cycle", "lr", S.one_cycle(0.1, 1000)),
])
def test_parse_lr(text, kind, want):
    got = S.parse(text, 0.1, 1000, kind)
    assert got == want, (got, want)
    for t in (0, 1, 99, 100, 500, 999):
        assert got(t) == want(t)


@pytest.mark.parametrize("text,want", [
    ("constant", S.constant(0.9)),
    ("step:100,0.5", S.step(0.9, 100, 0.5)),
    ("cosine", S.cosine(0.9, 1000, 0.0)),
    ("cosine:0.5", S.cosine(0.9, 1000, 0.5)),
    ("sutskever", S.sutskever(0.99)),
    ("sutskever:0.9", S.sutskever(0.9)),
    ("demon", S.demon(0.9, 1000)),
    ("one_cycle", S.one_cycle_momentum(1000, 0.85, 0.95)),
    ("one_cycle:0.8,0.9", S.one_cycle_momentum(1000, 0.8, 0.9)),
])
def test_parse_momentum(text, want):
    got = S.parse(text, 0.9, 1000, "momentum")
    assert got == want, (got, want)
    for t in (0, 1, 250, 999, 5000):
        assert got(t) == want(t)


def test_parse_covers_every_listed_name():
    examples = {"step": "step:10", "warmup": "warmup:10"}
    for kind, names, base in (("lr", S.LR_NAMES, 0.1), ("momentum", S.MOMENTUM_NAMES, 0.9)):
        for name in names:
            s = S.parse(examples.get(name, name), base, 100, kind)
            assert callable(s) and math.isfinite(s(0)) and repr(s)


def test_parse_small_total_is_usable():
    s = S.parse("one_cycle", 0.1, 1)              # total < 2 is raised to 2
    assert s == S.one_cycle(0.1, 2)
    assert math.isfinite(s(0)) and math.isfinite(s(1))


@pytest.mark.parametrize("text,kind", [
    ("nope", "lr"), ("", "lr"), ("step", "lr"), ("warmup", "lr"), ("step:abc", "lr"),
    ("step:0", "lr"), ("step:-3", "momentum"), ("cosine:-1", "lr"), ("warmup:0", "lr"),
    ("sutskever", "lr"), ("demon", "lr"), ("inverse_scaling", "momentum"), ("warmup:5", "momentum"),
    ("sutskever:1.5", "momentum"), ("sutskever:x", "momentum"),
    ("one_cycle:0.95,0.85", "momentum"), ("step:nan", "lr"),
    ("step:inf", "lr"), ("warmup:inf", "lr"), ("step:1e400", "momentum"),
    # more arguments than the schedule takes, or a fraction of a step: never ignored
    ("step:10,0.5,3", "lr"), ("constant:3", "lr"), ("one_cycle:0.5", "lr"),
    ("cosine:0,1", "momentum"), ("demon:0.5", "momentum"), ("step:10.5", "lr"),
    ("warmup:2.5", "lr"),
])
def test_parse_bad_strings_raise_one_line_value_error(text, kind):
    with pytest.raises(ValueError) as ei:
        S.parse(text, 0.1 if kind == "lr" else 0.9, 100, kind)
    one_line(ei)


# ---------------------------------------------------------------------------------------------
# 3. fit with schedules
# ---------------------------------------------------------------------------------------------
def _net(seed=0):
    return inertia.Network(3, [inertia.Dense(6, "tanh"), inertia.Dense(1, "linear")],
                           seed=seed, dtype="float64")


def _data(n=40, seed=0):
    rng = np.random.default_rng(seed)
    X = rng.normal(size=(n, 3))
    return X, np.sin(X[:, :1]) + 0.1 * X[:, 1:2]


def _flat(net):
    return [x for wb in net.parameters() for x in wb]


def _assert_same(a, b, rtol=1e-13, atol=1e-15):
    for k, (p, q) in enumerate(zip(_flat(a), _flat(b))):
        np.testing.assert_allclose(p, q, rtol=rtol, atol=atol, err_msg=f"array {k}")


def _manual(net, X, y, opt, lr_s, mom_s, epochs, batch_size=None):
    """The loop fit's schedules stand for: set lr and momentum from the step counter, then
    one full-batch fit step on the batch."""
    n = X.shape[0]
    bs = n if batch_size is None else batch_size
    t = 0 if opt.state is None else opt.state.step
    for _ in range(epochs):
        for s in range(0, n, bs):
            ch = {}
            if lr_s is not None:
                ch["lr"] = lr_s(t)
            if mom_s is not None:
                ch["momentum"] = mom_s(t)
            opt.set(**ch)
            inertia.fit(net, X[s:s + bs], y[s:s + bs], "mse", opt, epochs=1, progress=False)
            t += 1
            assert opt.state.step == t


SCHEDULE_PAIRS = {
    "step+sutskever": (S.step(0.1, 5, 0.5), S.sutskever(0.95, every=3)),
    "cosine+demon": (S.cosine(0.1, 30, 0.01), S.demon(0.9, 30)),
    "one_cycle": (S.one_cycle(0.2, 30), S.one_cycle_momentum(30)),
    "lr only": (S.inverse_scaling(0.1, 0.5), None),
    "momentum only": (None, S.cosine(0.9, 20, 0.3)),
}


@pytest.mark.parametrize("batch_size", [None, 16], ids=["full", "mini"])
@pytest.mark.parametrize("name", list(SCHEDULE_PAIRS))
def test_fit_with_schedules_equals_manual_loop(name, batch_size):
    lr_s, mom_s = SCHEDULE_PAIRS[name]
    X, y = _data()
    epochs = 12 if batch_size is None else 5      # mini: 40 rows in 16, 16, 8: 15 steps
    a, b = _net(), _net()
    oa = inertia.SGD(0.1, momentum=0.9, nesterov=True)
    ob = inertia.SGD(0.1, momentum=0.9, nesterov=True)
    inertia.fit(a, X, y, "mse", oa, epochs=epochs, batch_size=batch_size, shuffle=False,
                progress=False, lr_schedule=lr_s, momentum_schedule=mom_s)
    _manual(b, X, y, ob, lr_s, mom_s, epochs, batch_size)
    _assert_same(a, b)
    steps = epochs * (1 if batch_size is None else 3)
    assert oa.state.step == ob.state.step == steps
    # the last step ran with the schedules' values at t = steps - 1
    if lr_s is not None:
        assert oa.lr == lr_s(steps - 1)
    if mom_s is not None:
        assert oa.momentum == mom_s(steps - 1)
    # and the schedules did something: a constant run ends elsewhere
    c = _net()
    inertia.fit(c, X, y, "mse", inertia.SGD(0.1, momentum=0.9, nesterov=True), epochs=epochs,
                batch_size=batch_size, shuffle=False, progress=False)
    assert not np.allclose(_flat(a)[0], _flat(c)[0], rtol=1e-8, atol=0)


class Recorder:
    """A schedule that records the steps it is asked about."""

    def __init__(self, f):
        self.f = f
        self.calls = []

    def __call__(self, t):
        self.calls.append(t)
        return self.f(t)


def test_schedules_share_the_optimizer_step_counter_across_fits():
    X, y = _data()
    lr_s, mom_s = S.step(0.1, 4, 0.5), S.sutskever(0.95, every=2)
    ra, rm = Recorder(lr_s), Recorder(mom_s)
    a = _net()
    oa = inertia.SGD(0.1, momentum=0.5)
    inertia.fit(a, X, y, "mse", oa, epochs=7, progress=False, lr_schedule=ra,
                momentum_schedule=rm)
    assert ra.calls[-7:] == list(range(7))
    assert ra.calls == rm.calls
    # mini-batch second fit: 3 steps per epoch, continuing at t = 7
    inertia.fit(a, X, y, "mse", oa, epochs=2, batch_size=16, shuffle=False, progress=False,
                lr_schedule=ra, momentum_schedule=rm)
    assert ra.calls[-6:] == list(range(7, 13))
    assert ra.calls == rm.calls
    assert set(ra.calls) == set(range(13))
    assert oa.state.step == 13
    assert oa.lr == lr_s(12) and oa.momentum == mom_s(12)
    # same as one manual run of 7 full-batch steps then 6 mini-batch steps
    b = _net()
    ob = inertia.SGD(0.1, momentum=0.5)
    _manual(b, X, y, ob, lr_s, mom_s, 7)
    _manual(b, X, y, ob, lr_s, mom_s, 2, batch_size=16)
    _assert_same(a, b)


def test_two_fits_equal_one_fit_with_schedules():
    X, y = _data()
    lr_s, mom_s = S.cosine(0.1, 20, 0.01), S.demon(0.9, 20)
    a, b = _net(), _net()
    oa = inertia.SGD(0.1, momentum=0.9, convention="keras")
    ob = inertia.SGD(0.1, momentum=0.9, convention="keras")
    inertia.fit(a, X, y, "mse", oa, epochs=20, progress=False, lr_schedule=lr_s,
                momentum_schedule=mom_s)
    inertia.fit(b, X, y, "mse", ob, epochs=8, progress=False, lr_schedule=lr_s,
                momentum_schedule=mom_s)
    inertia.fit(b, X, y, "mse", ob, epochs=12, progress=False, lr_schedule=lr_s,
                momentum_schedule=mom_s)
    for p, q in zip(_flat(a), _flat(b)):
        np.testing.assert_array_equal(p, q)


def test_lr_schedule_with_qhm_and_adam():
    """lr schedules apply to every optimizer; a momentum schedule to QHM's momentum."""
    X, y = _data()
    for make, mom_s in ((lambda: inertia.QHM(0.5, momentum=0.9, nu=0.7), S.demon(0.9, 10)),
                        (lambda: inertia.Adam(0.01), None),
                        (lambda: inertia.AggMo(0.05), None)):
        lr_s = S.step(0.5 if mom_s is not None else 0.05, 3, 0.5)
        a, b = _net(), _net()
        oa, ob = make(), make()
        inertia.fit(a, X, y, "mse", oa, epochs=10, progress=False, lr_schedule=lr_s,
                    momentum_schedule=mom_s)
        _manual(b, X, y, ob, lr_s, mom_s, 10)
        _assert_same(a, b)


@pytest.mark.parametrize("kw", [
    dict(momentum_schedule=lambda t: 1.0),
    dict(momentum_schedule=S.constant(1.5)),
    dict(momentum_schedule=lambda t: -0.1),
    dict(lr_schedule=lambda t: 0.0),
    dict(lr_schedule=lambda t: -0.1),
    dict(lr_schedule=lambda t: float("nan")),
    dict(lr_schedule=0.1),
    dict(momentum_schedule="sutskever"),
    dict(lr_schedule=S.constant(0.1), momentum_schedule=lambda t: 1.0),
])
def test_invalid_schedule_raises_before_training(kw):
    X, y = _data()
    net = _net()
    start = _flat(net)
    opt = inertia.SGD(0.1, momentum=0.9)
    with pytest.raises(ValueError) as ei:
        inertia.fit(net, X, y, "mse", opt, epochs=5, progress=False, **kw)
    one_line(ei)
    for p, q in zip(start, _flat(net)):
        np.testing.assert_array_equal(p, q)
    assert opt.state is None or opt.state.step == 0
    assert opt.lr == 0.1 and opt.momentum == 0.9


def test_invalid_schedule_value_at_the_continuing_step_raises_before_training():
    """The check uses the optimizer's step counter: valid at t = 0, invalid at t = 5."""
    X, y = _data()
    net = _net()
    opt = inertia.SGD(0.1, momentum=0.9)
    inertia.fit(net, X, y, "mse", opt, epochs=5, progress=False)
    start = _flat(net)
    with pytest.raises(ValueError) as ei:
        inertia.fit(net, X, y, "mse", opt, epochs=5, progress=False,
                    momentum_schedule=lambda t: 0.9 if t < 5 else 1.0)
    one_line(ei)
    for p, q in zip(start, _flat(net)):
        np.testing.assert_array_equal(p, q)
    assert opt.state.step == 5


def test_momentum_schedule_needs_an_optimizer_with_momentum():
    X, y = _data()
    net = _net()
    start = _flat(net)
    for opt in (inertia.Adam(0.01), inertia.AggMo(0.1)):
        with pytest.raises(ValueError) as ei:
            inertia.fit(net, X, y, "mse", opt, epochs=2, progress=False,
                        momentum_schedule=S.constant(0.9))
        one_line(ei)
    for p, q in zip(start, _flat(net)):
        np.testing.assert_array_equal(p, q)


def test_parsed_warmup_schedule_trains():
    """The command line's ``--lr-schedule warmup:STEPS`` must be usable with fit: a linear
    warm-up from 0 gives lr = 0 at t = 0, which SGD rejects (lr must be > 0)."""
    X, y = _data()
    net = _net()
    opt = inertia.SGD(0.1, momentum=0.9)
    s = S.parse("warmup:5", 0.1, 20, "lr")
    inertia.fit(net, X, y, "mse", opt, epochs=20, progress=False, lr_schedule=s)
    assert opt.state.step == 20 and opt.lr == 0.1
