"""The activation records (``inertia.ops.activations``) and the five activations added through
them: leaky_relu, elu, gelu (exact and tanh), silu, softplus.

1. Spelling: keyword and string parameters, the canonical spelling, one-line errors, save/load
   and the CLI's --layers.
2. Element-wise, on every engine and dtype: ``activate_`` == ``torch.nn.functional`` and
   ``activate_backward_`` == torch autograd through it (in either dtype within a bound derived
   from the number of roundings, see ROUNDINGS).
3. Central differences in float64 on every engine: ``net.gradients`` with the new activations
   in hidden layers (one or two), kinks kept out of reach of the perturbation.
4. End to end: 50 steps of ``fit`` (SGD, momentum 0.9, mini-batches) on the NumPy engine
   (engine calls and the compiled loop) and the torch engine == a hand-written torch training
   loop on the same batches from the same weights: 1e-10 relative in float64; in float32 as
   close to the float64 run as torch's own float32 run is (see test_end_to_end_float32).
5. Nothing allocated in a training step on the NumPy engine with the new activations.
"""

from __future__ import annotations

import tracemalloc

import numpy as np
import pytest

import inertia
from inertia import SGD, Dense, Network
from inertia.ops import activations

torch = pytest.importorskip("torch")
F = torch.nn.functional

# (spelling, the hand-written torch.nn.functional form) for every new activation; softplus
# with beta 2 and threshold 1 reaches its linear branch on ordinary inputs
CASES = {
    "leaky_relu": lambda x: F.leaky_relu(x),
    "leaky_relu:0.2": lambda x: F.leaky_relu(x, negative_slope=0.2),
    "elu": lambda x: F.elu(x),
    "elu:alpha=0.5": lambda x: F.elu(x, alpha=0.5),
    "gelu": lambda x: F.gelu(x),
    "gelu:tanh": lambda x: F.gelu(x, approximate="tanh"),
    "silu": lambda x: F.silu(x),
    "softplus": lambda x: F.softplus(x),
    "softplus:beta=2:threshold=1": lambda x: F.softplus(x, beta=2.0, threshold=1.0),
}
SPECS = list(CASES)
BY_SPEC = {activations.get(s).spec: f for s, f in CASES.items()}     # canonical spellings
NEW = ("leaky_relu", "elu", "gelu", "silu", "softplus")


def one_line(excinfo):
    msg = str(excinfo.value)
    assert msg and "\n" not in msg, f"not a one-line message: {msg!r}"
    return msg


# --------------------------------------------------------------------------- 1. spelling
def test_every_new_activation_has_a_record_on_every_path():
    from inertia.fused import tiles as steps

    for name in NEW:
        rec = activations.RECORDS[name]
        assert rec.which in ("output", "input")
        assert rec.init in ("he_normal", "glorot_uniform")
        assert rec.torch is not None
        assert steps.ACT_CODES[name] == rec.code
    codes = [r.code for r in activations.RECORDS.values()]
    assert len(set(codes)) == len(codes)


def test_parameter_spellings_agree():
    a = Dense(64, "leaky_relu", negative_slope=0.2)
    assert a == Dense(64, "leaky_relu:0.2") == Dense(64, "leaky_relu:negative_slope=0.2")
    assert a.activation == "leaky_relu:negative_slope=0.2"
    assert Dense(3, "leaky_relu:0.01").activation == "leaky_relu"      # the default
    assert Dense(3, "gelu", approximate="tanh").activation == "gelu:approximate=tanh"
    assert Dense(3, "gelu:tanh") == Dense(3, "gelu:approximate=tanh")
    assert Dense(3, "softplus:2:5").activation == "softplus:beta=2.0:threshold=5.0"
    assert Dense(3, "softplus", threshold=5).activation == "softplus:threshold=5.0"
    assert activations.get("elu:0.5").kwargs == {"alpha": 0.5}


@pytest.mark.parametrize("layer", [
    lambda: Dense(3, "swish"),
    lambda: Dense(3, "leaky_relu:-0.1"),
    lambda: Dense(3, "leaky_relu:abc"),
    lambda: Dense(3, "leaky_relu:0.1:0.2"),
    lambda: Dense(3, "elu", alpha=0.0),
    lambda: Dense(3, "elu", alpha=float("nan")),
    lambda: Dense(3, "gelu:erf"),
    lambda: Dense(3, "silu:1"),
    lambda: Dense(3, "sigmoid", slope=1),
    lambda: Dense(3, "softplus:beta=2", beta=3),
    lambda: Dense(3, "softplus:gamma=1"),
])
def test_bad_spellings_raise_one_line(layer):
    with pytest.raises(ValueError) as ei:
        layer()
    one_line(ei)


def test_new_activations_are_hidden_only_as_losses_say():
    with pytest.raises(ValueError) as ei:
        net = Network(2, [Dense(3, "gelu")], dtype="float64")
        inertia.fit(net, np.zeros((4, 2)), np.zeros((4, 3)), "mse", SGD(0.1), epochs=1,
                    progress=False)
    one_line(ei)


def test_save_load_keeps_parameters(tmp_path):
    net = Network(3, [Dense(5, "leaky_relu:0.3"), Dense(4, "softplus", beta=2.0),
                      Dense(1)], seed=2, dtype="float64")
    inertia.save(tmp_path / "m.npz", net)
    back, _ = inertia.load(tmp_path / "m.npz")
    assert back.acts == net.acts == ["leaky_relu:negative_slope=0.3", "softplus:beta=2.0",
                                     "linear"]
    X = np.random.default_rng(0).standard_normal((6, 3))
    np.testing.assert_array_equal(back.predict(X), net.predict(X))


def test_cli_layers_take_new_activations(capsys):
    from inertia.cli import main, parse_layers

    assert parse_layers("8:gelu,4:leaky_relu:0.2,1") == [
        Dense(8, "gelu"), Dense(4, "leaky_relu", negative_slope=0.2), Dense(1)]
    rc = main(["train", "--data", "smooth-regression", "--samples", "200", "--layers",
               "8:gelu,4:silu,1:linear", "--epochs", "2", "--quiet"])
    assert rc in (0, None), capsys.readouterr().err
    assert "gelu, silu" in capsys.readouterr().out


def test_cli_bad_activation_is_an_error_line(capsys):
    from inertia.cli import main

    rc = main(["train", "--data", "smooth-regression", "--samples", "50", "--layers",
               "8:gelu:sigmoid,1", "--epochs", "1", "--quiet"])
    assert rc != 0
    err = capsys.readouterr().err
    assert err.startswith("inertia: error:") and "approximate" in err and "Traceback" not in err


# --------------------------------------------------------------------------- 2. element-wise
# a forward or derivative here is at most ~12 roundings of relative size eps/2 (products,
# sums, and exp/erf/tanh/log1p within an ulp or two) of terms no larger than 1 + |x| (GELU's
# z Phi(z), softplus's z, their derivatives' Phi + z phi), in inertia and in torch alike; the
# bound takes twice that count, in either dtype
ROUNDINGS = 24


def _grid(rng):
    x = np.concatenate([rng.uniform(-6, 6, 60), [-30.0, -1e-3, 0.0, 1e-3, 0.4999, 0.5001, 12.0,
                                                  25.0, -800.0, 800.0]])
    return x.reshape(-1, 5)


def _torch_reference(spec, x, delta):
    """f(x) and delta * f'(x) from torch.nn.functional and autograd, in float64."""
    xt = torch.tensor(x, dtype=torch.float64, requires_grad=True)
    y = CASES[spec](xt)
    (g,) = torch.autograd.grad(y, xt, torch.tensor(delta, dtype=torch.float64))
    return y.detach().numpy(), g.numpy()


@pytest.mark.parametrize("dtype", ["float64", "float32"])
@pytest.mark.parametrize("spec", SPECS)
def test_elementwise_equals_torch_functional(engine_name, dtype, spec):
    rng = np.random.default_rng(SPECS.index(spec))
    e = inertia.engines.get(engine_name, dtype)
    x = _grid(rng).astype(dtype).astype(np.float64)          # exactly what the engine holds
    delta = rng.standard_normal(x.shape).astype(dtype).astype(np.float64)
    want_f, want_d = _torch_reference(spec, x, delta)
    z = e.from_host(x)
    a = e.from_host(x)
    assert e.activate_(spec, a) is a
    got_f = np.asarray(e.to_host(a), dtype=np.float64)
    d = e.from_host(delta)
    assert e.activate_backward_(spec, a, d, z) is d
    got_d = np.asarray(e.to_host(d), dtype=np.float64)
    np.testing.assert_array_equal(np.asarray(e.to_host(z), dtype=np.float64), x)  # z unchanged
    eps = np.finfo(dtype).eps / 2
    tol_f = ROUNDINGS * eps * (1 + np.abs(x))
    tol_d = ROUNDINGS * eps * (1 + np.abs(x)) * np.abs(delta)
    assert np.all(np.abs(got_f - want_f) <= tol_f), \
        f"{spec} forward: worst {np.max(np.abs(got_f - want_f) / tol_f):.3g} x the bound"
    assert np.all(np.abs(got_d - want_d) <= tol_d), \
        f"{spec} derivative: worst {np.max(np.abs(got_d - want_d) / tol_d):.3g} x the bound"


def test_derivative_from_the_input_needs_z(engine_name):
    e = inertia.engines.get(engine_name, "float64")
    a, d = e.from_host(np.ones((2, 2))), e.from_host(np.ones((2, 2)))
    with pytest.raises(ValueError) as ei:
        e.activate_backward_("gelu", a, d)
    assert "pre-activation" in one_line(ei)


@pytest.mark.parametrize("spec", ["sigmoid", "tanh", "relu", "linear"] + SPECS)
def test_host_forms_derivative_is_the_central_difference(spec):
    """ops.activations.forward / derivative (new arrays; the benchmark's NumPy loop) in
    float64: f' equals (f(z + h) - f(z - h)) / 2h to O(h^2) ~ 1e-10, kinks kept away."""
    z = np.random.default_rng(0).uniform(-3, 3, (5, 7))
    for k in _kinks(spec) + ([0.0] if spec == "relu" else []):
        z[np.abs(z - k) < 0.1] = k + 0.5
    h = 1e-5
    numeric = (activations.forward(spec, z + h) - activations.forward(spec, z - h)) / (2 * h)
    before = z.copy()
    exact = activations.derivative(spec, activations.forward(spec, z), z)
    np.testing.assert_array_equal(z, before)
    np.testing.assert_allclose(exact, numeric, rtol=0, atol=1e-9)


# --------------------------------------------------------------------------- 3. gradients
EPS = 1e-6
RTOL_FD, ATOL_FD = 1e-6, 1e-9      # as tests/test_gradients.py: rounding of L(w +- eps) / eps
MARGIN = 1e-3                      # kinks: a perturbation moves z by < 1e-5


def _kinks(spec):
    """Pre-activations where the function or its derivative jumps."""
    act = activations.get(spec)
    name = act.rec.name
    if name == "leaky_relu" or (name == "elu" and act.kwargs["alpha"] != 1.0):
        return [0.0]
    if name == "softplus":
        return [act.kwargs["threshold"] / act.kwargs["beta"]]
    return []


def _host_pre_activations(net, X):
    out, a = [], X
    for (w, b), spec in zip(net.parameters(), net.acts):
        z = a @ w.T + b
        out.append((spec, z))
        a = BY_SPEC[spec](torch.from_numpy(z)).numpy() if spec in BY_SPEC else z
    return out


def _gradient_case(engine, hidden, seed):
    rng = np.random.default_rng(seed)
    layers = [Dense(4, s) for s in hidden] + [Dense(2, "linear")]
    net = Network(3, layers, seed=seed, dtype="float64", engine=engine)
    for _ in range(1000):
        params = [(w, rng.uniform(-0.5, 0.5, b.shape)) for w, b in net.parameters()]
        net.set_parameters(params)
        X = rng.standard_normal((6, 3)) * 1.5
        if all(np.abs(z - k).min() > MARGIN for spec, z in _host_pre_activations(net, X)
               for k in _kinks(spec)):
            return net, X, rng.standard_normal((6, 2))
    raise AssertionError("no kink-free case found")


def _numerical_gradient(net, X, y):
    params = net.parameters()
    out = []
    for i, pair in enumerate(params):
        grads = []
        for j, arr in enumerate(pair):
            g = np.zeros_like(arr)
            for idx in np.ndindex(arr.shape):
                vals = []
                for sign in (1.0, -1.0):
                    p = [(w.copy(), b.copy()) for w, b in params]
                    p[i][j][idx] += sign * EPS
                    net.set_parameters(p)
                    vals.append(net.loss(X, y, "mse"))
                g[idx] = (vals[0] - vals[1]) / (2 * EPS)
            grads.append(g)
        out.append(grads)
    net.set_parameters(params)
    return out


@pytest.mark.parametrize("hidden", [[s] for s in SPECS]
                         + [["gelu", "leaky_relu:0.2"], ["softplus:beta=2:threshold=1", "silu"],
                            ["elu:alpha=0.5", "gelu:tanh"]],
                         ids=lambda h: "+".join(h))
def test_gradients_match_central_differences(engine_name, hidden):
    net, X, y = _gradient_case(engine_name, hidden, 5 + len("".join(hidden)))
    _, grads = net.gradients(X, y, "mse")
    num = _numerical_gradient(net, X, y)
    for i, ((dw, db), (nw, nb)) in enumerate(zip(grads, num)):
        assert np.abs(dw).max() > 1e-6, f"layer {i}: the weight gradient is all ~zero"
        np.testing.assert_allclose(dw, nw, rtol=RTOL_FD, atol=ATOL_FD, err_msg=f"dW {i}")
        np.testing.assert_allclose(db, nb, rtol=RTOL_FD, atol=ATOL_FD, err_msg=f"db {i}")


# --------------------------------------------------------------------------- 4. end to end
ROWS, BATCH, EPOCHS = 60, 12, 10          # 5 steps an epoch: 50 steps
LR, MU = 0.02, 0.9          # the weights move by 0.4 to 1, the run stays far from chaos
RTOL, ATOL = 1e-10, 1e-12


def _data():
    rng = np.random.default_rng(3)
    X = rng.standard_normal((ROWS, 3))
    y = np.sin(X[:, :1]) + 0.5 * X[:, 1:2] * X[:, 2:3]
    return X, y


def _torch_loop(spec, start, X, y, dtype):
    """A hand-written torch training loop: two hidden layers of ``spec`` (the
    torch.nn.functional form in CASES), a linear output, MSE, torch.optim.SGD(momentum=MU)
    on the same batches in order. Returns the weights [(W, b), ...] as float64."""
    tdt = getattr(torch, dtype)
    ps = [torch.tensor(a, dtype=tdt, requires_grad=True) for wb in start for a in wb]
    opt = torch.optim.SGD(ps, lr=LR, momentum=MU)
    f = CASES[spec]
    Xt, yt = torch.tensor(X, dtype=tdt), torch.tensor(y, dtype=tdt)
    for _ in range(EPOCHS):
        for s in range(0, ROWS, BATCH):
            x = Xt[s:s + BATCH]
            h = f(x @ ps[0].T + ps[1])
            h = f(h @ ps[2].T + ps[3])
            out = h @ ps[4].T + ps[5]
            opt.zero_grad()
            F.mse_loss(out, yt[s:s + BATCH]).backward()
            opt.step()
    return [(ps[i].detach().double().numpy(), ps[i + 1].detach().double().numpy())
            for i in range(0, 6, 2)]


PATHS = [("numpy", False), ("numpy", True), ("torch", False)]


def _fit(spec, engine, compiled, dtype, start, X, y):
    net = Network(3, [Dense(8, spec), Dense(6, spec), Dense(1)], seed=11, dtype=dtype,
                  engine=engine)
    net.set_parameters(start)
    inertia.fit(net, X, y, "mse", SGD(LR, momentum=MU), epochs=EPOCHS, batch_size=BATCH,
                shuffle=False, progress=False, compiled=compiled if engine == "numpy" else None)
    return net.parameters()


def _start(spec):
    return Network(3, [Dense(8, spec), Dense(6, spec), Dense(1)], seed=11,
                   dtype="float64").parameters()


@pytest.mark.parametrize("spec", SPECS)
def test_end_to_end_float64_equals_torch_loop(spec):
    X, y = _data()
    start = _start(spec)
    want = _torch_loop(spec, start, X, y, "float64")
    moved = max(np.abs(w - w0).max() for (w, _), (w0, _) in zip(want, start))
    assert moved > 1e-2, "the run barely moved the weights"
    net = Network(3, [Dense(8, spec), Dense(6, spec), Dense(1)], dtype="float64")
    net.set_parameters(start)
    # both branches are taken (softplus's default threshold 20 is out of reach: the case
    # with threshold 1 takes its linear branch)
    for k in [k for k in _kinks(spec) if abs(k) < 10]:
        zs = np.concatenate([z.ravel() for _, z in _host_pre_activations(net, X)[:2]])
        assert (zs < k).any() and (zs > k).any(), f"{spec}: every z on one side of {k}"
    for engine, compiled in PATHS:
        got = _fit(spec, engine, compiled, "float64", start, X, y)
        for i, ((w, b), (wt, bt)) in enumerate(zip(got, want)):
            what = f"{spec} {engine} compiled={compiled} layer {i}"
            np.testing.assert_allclose(w, wt, rtol=RTOL, atol=ATOL, err_msg=what + " W")
            np.testing.assert_allclose(b, bt, rtol=RTOL, atol=ATOL, err_msg=what + " b")


@pytest.mark.parametrize("dtype", ["float64", "float32"])
@pytest.mark.parametrize("loss,out", [("quadratic", "tanh"), ("bce", "sigmoid")])
def test_compiled_loop_equals_engine_calls_over_tiles(dtype, loss, out):
    """Batches of several tiles (so several chunks), widths that are not multiples of the
    kernels' blocks, layers that keep z next to layers that do not: the compiled loop ==
    the engine-call loop (float64 to 1e-12 relative after 18 steps; float32 within 1e-5,
    its SIMD sigmoid and tanh being the engine's own)."""
    from inertia.fused import tiles as steps

    rng = np.random.default_rng(4)
    n = 2 * steps.TILE + 61
    X = rng.standard_normal((n, 5))
    y = (rng.random((n, 2)) > 0.5).astype(float)
    layers = [Dense(9, "gelu"), Dense(7, "elu:0.5"), Dense(6, "softplus:2:1"), Dense(5, "silu"),
              Dense(3, "leaky_relu:0.2"), Dense(3, "gelu:tanh"), Dense(2, out)]
    nets = []
    for compiled in (False, True):
        net = Network(5, layers, seed=3, dtype=dtype)
        inertia.fit(net, X, y, loss, SGD(0.05, momentum=0.9), epochs=6, batch_size=200,
                    shuffle=True, seed=1, progress=False, compiled=compiled)
        nets.append(net.parameters())
    rtol = 1e-12 if dtype == "float64" else 1e-5
    assert _distance(nets[1], nets[0]) < rtol


def _distance(got, ref):
    """max |got - ref| over every parameter, relative to the largest |ref|."""
    top = max(np.abs(a).max() for wb in ref for a in wb)
    return max(np.abs(g - r).max() for gwb, rwb in zip(got, ref) for g, r in zip(gwb, rwb)) / top


@pytest.mark.parametrize("spec", SPECS)
def test_end_to_end_float32(spec):
    """float32 runs drift from the float64 run by rounding alone; torch's float32 loop
    measures how far this computation drifts in 50 steps. Each inertia float32 path must
    stay as close to the float64 run as that (a factor of 10 for the different order of
    roundings; a wrong formula would be 1e-3 or more away), and within 1e-4."""
    X, y = _data()
    start = _start(spec)
    ref = _torch_loop(spec, start, X, y, "float64")
    torch32 = _distance(_torch_loop(spec, start, X, y, "float32"), ref)
    eps32 = np.finfo(np.float32).eps
    assert torch32 < 1e-4
    for engine, compiled in PATHS:
        got = _distance(_fit(spec, engine, compiled, "float32", start, X, y), ref)
        assert got <= 10 * torch32 + 10 * eps32 and got < 1e-4, \
            f"{spec} {engine} compiled={compiled}: {got:.3g} from float64, torch32 {torch32:.3g}"


# --------------------------------------------------------------------------- 5. allocation
@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_no_allocation_in_a_training_step(dtype):
    rng = np.random.default_rng(0)
    n, bs = 512, 64
    X = rng.standard_normal((n, 4)).astype(dtype)
    y = rng.standard_normal((n, 1)).astype(dtype)
    layers = [Dense(32, "gelu"), Dense(16, "softplus:beta=2:threshold=1"), Dense(16, "elu"),
              Dense(8, "leaky_relu:0.2"), Dense(8, "silu"), Dense(8, "gelu:tanh"), Dense(1)]
    net = Network(4, layers, seed=0, dtype=dtype)
    opt = SGD(0.01, momentum=0.9)
    net.bind(opt)
    e = net.e
    bufs = net.buffers(bs)

    def steps(count):
        for s in range(count):
            idx = np.arange((s * bs) % n, (s * bs) % n + bs)
            e.take_rows(X, idx, bufs.x)
            e.take_rows(y, idx, bufs.y)
            net.train_step_(bufs, "mse", opt)

    steps(5)
    kept, grew = [], []
    for _ in range(2):
        tracemalloc.start()
        try:
            before, _ = tracemalloc.get_traced_memory()
            tracemalloc.reset_peak()
            steps(50)
            after, peak = tracemalloc.get_traced_memory()
        finally:
            tracemalloc.stop()
        kept.append(after - before)
        grew.append(peak - before)
    assert min(kept) < 4096, f"{kept} bytes kept after 50 steps"
    one_activation = bs * 32 * np.dtype(dtype).itemsize    # the widest layer's array
    assert min(grew) < one_activation, f"peak grew by {grew} bytes in a step"
