"""Every loss on extreme logits (+-1e4, +-80, +-1e20, mixed scales), float32 and float64, on
every engine and in the compiled training loop, against torch.nn.functional in float64.

The logits are exact in the working dtype and the reference is computed from the same
numbers in float64, so the only differences are our rounding. Each row's loss is a sum of
terms >= 0 computed with a relative error of a few ulps per term (k terms per row, the
softmax's log adding an absolute error of about k ulps), and the batch mean of values >= 0
adds log2(n) ulps; so the tolerance is 16 (k + log2 n + 4) ulps of (1 + |reference|).
A batch-wide subtraction of two large sums (the old formula) misses by orders more.
"""

import math

import numpy as np
import pytest

import inertia

torch = pytest.importorskip("torch")
F = torch.nn.functional

DTYPES = ["float32", "float64"]
N, K = 64, 5


def _tol(ref, dtype, n=N, k=K):
    eps = np.finfo(dtype).eps
    return 16 * (k + math.log2(n) + 4) * eps * (1.0 + abs(ref))


def _logits(scale, dtype, rng, n=N, k=K):
    """(n, k) logits exact in ``dtype``: rows at +-scale with O(1) offsets in multiples of 1/8
    (exact at these magnitudes; at 1e20 they vanish and a row's logits are equal), so that
    each row's cross-entropy is O(1) on huge logits; or rows of mixed scales and signs; or
    rows whose first logit is far ahead ("confident": loss ~ 0)."""
    if scale == "mixed":
        per_row = rng.choice([1e4, 80.0, 3.0, 1e-3], size=(n, 1))
        z = per_row * rng.choice([-1.0, 1.0], size=(n, k)) + rng.integers(-8, 8, (n, k)) / 8
    elif scale == "confident":                # the target class far ahead: loss ~ 0
        z = np.full((n, k), -1e4)
        z[:, 0] = 1e4
    else:                                     # one sign per row: row losses O(1)
        z = scale * rng.choice([-1.0, 1.0], size=(n, 1)) + np.zeros((n, k))
        if scale < 1e6:
            z = z + rng.integers(-8, 8, (n, k)) / 8
    return z.astype(dtype)


def _targets(name, kind, z, dtype, rng):
    """(host targets as the user passes them, the same as float64 for the reference)."""
    n, k = z.shape
    if name == "cross_entropy":
        if kind == "labels":
            labels = np.zeros(n, dtype=np.int64) if np.all(z[:, 0] == z.max(axis=1)) \
                else rng.integers(0, k, n)
            return labels, labels
        p = rng.dirichlet(np.ones(k), size=n).astype(dtype)
        p[:, -1] = 1 - p[:, :-1].sum(axis=1, dtype=dtype)       # rows sum to 1 in dtype
        p = np.clip(p, 0, 1)
        return p, p.astype(np.float64)
    if kind == "labels":
        y = (rng.random(z.shape) > 0.5).astype(dtype)
    else:
        y = rng.random(z.shape).astype(dtype)
    return y, y.astype(np.float64)


def _reference(name, z64, a64, y64):
    z, a = torch.from_numpy(z64), torch.from_numpy(a64)
    y = torch.from_numpy(y64)
    if name == "cross_entropy":
        return F.cross_entropy(z, y).item()
    if name == "bce":
        return F.binary_cross_entropy_with_logits(z, y).item()
    if name == "mse":
        return F.mse_loss(a, y).item()
    return F.mse_loss(a, y, reduction="sum").item() / (2 * a.shape[0])


OUTPUT = {"cross_entropy": "softmax", "bce": "sigmoid", "mse": "linear", "quadratic": "linear"}
SCALES = {"cross_entropy": [1e4, 80.0, 1e20, "mixed", "confident"],
          "bce": [1e4, 80.0, 1e20, "mixed", "confident"],
          "mse": [1e4, 80.0, "mixed"], "quadratic": [1e4, 80.0, "mixed"]}
CASES = [(name, kind, scale) for name in OUTPUT for kind in ("labels", "soft")
         for scale in SCALES[name]]


def _engine_value(engine, dtype, name, z, y):
    e = inertia.engines.get(engine, dtype)
    act = OUTPUT[name]
    ze, ae, ye = e.from_host(z), e.from_host(z), e.from_host(y)
    if act != "linear":
        e.activate_(act, ae)
    value = e.loss(name, ze, ae, ye)
    np.testing.assert_array_equal(e.to_host(ze), z)          # the logits are not changed
    return value, e.to_host(ae).astype(np.float64)


@pytest.mark.parametrize("name, kind, scale", CASES)
@pytest.mark.parametrize("dtype", DTYPES)
def test_engine_loss_matches_torch_on_extreme_logits(engine_name, dtype, name, kind, scale):
    rng = np.random.default_rng(7)
    z = _logits(scale, dtype, rng)
    y_user, y64 = _targets(name, kind, z, dtype, rng)
    y = inertia.ops.losses.prepare_targets(name, y_user, K, np.dtype(dtype))
    value, a64 = _engine_value(engine_name, dtype, name, z, y)
    ref = _reference(name, z.astype(np.float64), a64, y64)
    assert isinstance(value, float)
    assert value >= 0.0, f"{name} read {value}"
    assert abs(value - ref) <= _tol(ref, dtype), (value, ref)


@pytest.mark.parametrize("dtype", DTYPES)
def test_batch_of_large_logits_keeps_its_value(engine_name, dtype):
    """The reported case: logits near 1e4 whose losses are 0.66 to 0.88 per row; summed over
    a batch and then subtracted, float32 read 0."""
    n = 512
    z = np.zeros((n, 3))
    z[:, 0] = 1e4
    z[:, 1] = 1e4 - 0.25 * (np.arange(n) % 3 + 1)      # gaps 0.25, 0.5, 0.75 from the max
    z[:, 2] = -1e4
    z = z.astype(dtype)
    labels = np.ones(n, dtype=np.int64)                 # the runner-up class
    y = inertia.ops.losses.prepare_targets("cross_entropy", labels, 3, np.dtype(dtype))
    value, _ = _engine_value(engine_name, dtype, "cross_entropy", z, y)
    ref = F.cross_entropy(torch.from_numpy(z.astype(np.float64)), torch.from_numpy(labels))
    assert 0.5 < ref.item() < 1.0
    assert abs(value - ref.item()) <= _tol(ref.item(), dtype, n=n, k=3)


def _exact_net(name, dtype, engine, n=300, k=3, scale=1e4, seed=0):
    """A one-layer network whose logits are exact: inputs are signed unit vectors, so each
    row's logits are a signed column of W, +-scale plus O(1) offsets (so each row's
    cross-entropy is O(1)). Returns (net, X, y as passed, z64, y64)."""
    rng = np.random.default_rng(seed)
    m = 4
    W = (scale * rng.choice([-1.0, 1.0], size=(1, m))        # a row's logits share one scale
         + rng.integers(-8, 8, (k, m)) / 8).astype(dtype)
    cols = np.arange(n) % m
    signs = rng.choice([-1.0, 1.0], size=n)
    X = np.zeros((n, m), dtype=dtype)
    X[np.arange(n), cols] = signs
    z64 = X.astype(np.float64) @ W.astype(np.float64).T
    net = inertia.Network(m, [inertia.Dense(k, OUTPUT[name])], dtype=dtype, engine=engine)
    net.set_parameters([(W, np.zeros(k, dtype=dtype))])
    if name == "cross_entropy":
        labels = rng.integers(0, k, n)
        return net, X, labels, z64, labels
    y = (rng.random((n, k)) > 0.5).astype(dtype)
    return net, X, y, z64, y.astype(np.float64)


FIT_CASES = [("numpy", True), ("numpy", False), ("torch", False)]


@pytest.mark.parametrize("name", ["cross_entropy", "bce", "mse"])
@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("engine, compiled", FIT_CASES,
                         ids=["numpy-compiled", "numpy-loop", "torch-loop"])
def test_fit_training_and_validation_loss_on_large_logits(engine, compiled, dtype, name):
    """fit's recorded losses (the compiled loop's tile-by-tile sums, the engine loop, the
    validation pass) on a tiny net with logits near +-1e6, against torch in float64. The
    learning rate is so small that the step leaves the weights as they were."""
    if engine not in inertia.engines.available():
        pytest.skip(f"{engine} engine not installed")
    # 1e6: float32's ulp there is 1/16, so the offsets stay exact and a per-row sum(y) lse -
    # y.z (the compiled loop's old form) would lose ~1/32 per row
    scale = 1e6 if name != "mse" else 80.0
    net, X, y, z64, y64 = _exact_net(name, dtype, engine, scale=scale)
    a64 = z64                                            # mse: linear output
    ref = _reference(name, z64, a64, y64)
    hist = inertia.fit(net, X, y, name, inertia.SGD(1e-30, momentum=0.5), epochs=1,
                       validation_data=(X, y), progress=False, compiled=compiled)
    k = z64.shape[1]
    for what, value in (("training", hist.loss[0]), ("validation", hist.val_loss[0])):
        assert value >= 0.0, f"{what} loss read {value}"
        assert abs(value - ref) <= _tol(ref, dtype, n=X.shape[0], k=k), (what, value, ref)


@pytest.mark.parametrize("dtype", DTYPES)
def test_compiled_loop_mini_batches_on_large_logits(dtype):
    """Mini-batches of 100 rows (a partial last one) through the compiled loop: the epoch
    loss is the mean of the batch losses, each as torch computes it."""
    net, X, y, z64, y64 = _exact_net("cross_entropy", dtype, "numpy", n=350, scale=1e6)
    hist = inertia.fit(net, X, y, "cross_entropy", inertia.SGD(1e-30), epochs=1,
                       batch_size=100, shuffle=False, progress=False, compiled=True)
    refs = [F.cross_entropy(torch.from_numpy(z64[s:s + 100]),
                            torch.from_numpy(y64[s:s + 100])).item() for s in range(0, 350, 100)]
    ref = float(np.mean(refs))
    assert hist.loss[0] >= 0.0
    assert abs(hist.loss[0] - ref) <= _tol(ref, dtype, n=100, k=3)


def test_soft_targets_must_be_probabilities():
    y = np.array([[1.5, -0.5], [0.5, 0.5]])
    with pytest.raises(ValueError, match="one-hot .*probability"):
        inertia.ops.losses.prepare_targets("cross_entropy", y, 2, np.float64)
