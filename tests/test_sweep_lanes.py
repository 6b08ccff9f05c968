"""Sweep groups of float32 runs train eight runs side by side in the vector
lanes (inertia.fused.lanes): every run equals its own fit to float32 rounding (the rows'
gradient sums are added in another order), stops where its fit stops, and its numbers depend
neither on the thread count nor on the other runs of its group. The row-inner kernels keep
their bits whatever ran first."""

import os
import subprocess
import sys
import warnings

import numba
import numpy as np
import pytest

import inertia
from inertia import SGD, Dense, Network
from inertia.fused import group as fused_group
from inertia.fused import lanes
from inertia.fused.group import train_group
from inertia.optim import CONVENTIONS

LAYERS = [Dense(6, "sigmoid"), Dense(5, "tanh"), Dense(1, "linear")]
# 16 settings and one that overflows at its second step: three lane groups, the last of one run
HYPERS = ([{"lr": lr, "momentum": mu} for lr in (0.01, 0.03, 0.1, 0.3)
           for mu in (0.0, 0.5, 0.9, 0.95)] + [{"lr": 1e30, "momentum": 0.9}])
# float32 rounding, grown over a few dozen steps: the largest differences seen are near 2e-5
RTOL = 1e-4


def data(n, seed=0, k_out=1):
    rng = np.random.default_rng(seed)
    X = rng.uniform(-1, 1, (n, 4)).astype(np.float32)
    y = np.sin(X[:, :1]) + 0.5 * X[:, 1:2] * X[:, 2:3]
    if k_out > 1:                                     # one-hot classes from y's quantiles
        cls = np.digitize(y[:, 0], np.quantile(y[:, 0], np.linspace(0, 1, k_out + 1)[1:-1]))
        y = np.eye(k_out)[cls]
    return X, y.astype(np.float32)


def nets_opts(conv, hypers, layers=LAYERS, seed=3):
    nets = [Network(4, layers, seed=seed, dtype="float32") for _ in hypers]
    opts = [SGD(**{"lr": 0.1, "convention": conv, **h}) for h in hypers]
    return nets, opts


def fit_one(conv, hyper, X, y, loss, plan, layers=LAYERS):
    (net,), (opt,) = nets_opts(conv, [hyper], layers)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", inertia.DivergenceWarning)
        hist = inertia.fit(net, X, y, loss, opt, progress=False, **plan)
    return net, opt, hist


def close(a, b):
    b = np.asarray(b, dtype=np.float64)
    scale = max(1.0, float(np.abs(b).max())) if b.size else 1.0
    np.testing.assert_allclose(np.asarray(a, dtype=np.float64), b, rtol=RTOL,
                               atol=RTOL * scale)


def assert_close(net, opt, hist, net2, opt2, hist2):
    """To float32 rounding: weights, velocity, losses; exactly: the optimizer's counters
    and settings, where the run stopped."""
    assert (hist.diverged is None) == (hist2.diverged is None)
    if hist.diverged is not None:
        assert (hist.diverged.epoch, hist.diverged.step) == \
            (hist2.diverged.epoch, hist2.diverged.step)
    assert opt.state_meta() == opt2.state_meta()
    assert opt.config() == opt2.config()
    assert (opt.lr, opt.momentum) == (opt2.lr, opt2.momentum)
    if hist.diverged is not None:
        return                 # the state gone back to: finite, not compared past overflow
    for (w1, b1), (w2, b2) in zip(net.parameters(), net2.parameters()):
        close(w1, w2)
        close(b1, b2)
    name = opt.closed_form().buffer
    for v1, v2 in zip(getattr(opt.state, name), getattr(opt2.state, name)):
        close(v1, v2)
    close(hist.loss, hist2.loss)
    close(hist.val_loss, hist2.val_loss)


def hypers_for(conv):
    """HYPERS, with Nesterov's look-ahead in two runs where the convention has it."""
    hypers = [dict(h) for h in HYPERS]
    try:
        SGD(0.1, momentum=0.9, nesterov=True, convention=conv)
    except ValueError:                                # the convention has no look-ahead
        return hypers
    hypers[5]["nesterov"] = hypers[10]["nesterov"] = True
    return hypers


def test_which_groups_train_in_the_lanes():
    assert lanes.applies(np.float32, 16) and lanes.applies("float32", 64)
    assert not lanes.applies(np.float64, 64)                # float64 keeps its fits' bits
    assert not lanes.applies(np.float32, 15)                # fewer than two lane groups


@pytest.mark.parametrize("conv", list(CONVENTIONS))
@pytest.mark.parametrize("batch_size, n, epochs",
                         [(16, 300, 2), (64, 150, 3), (1, 40, 2), (100, 330, 2), (None, 150, 3)],
                         ids=["minibatch-uneven", "one-tile-uneven", "online",
                              "tiles-uneven", "full-batch"])
def test_lanes_equal_separate_fits(conv, batch_size, n, epochs):
    X, y = data(n)
    plan = {"epochs": epochs, "batch_size": batch_size, "seed": 5}
    hypers = hypers_for(conv)
    nets, opts = nets_opts(conv, hypers)
    group = fused_group._Group(nets, opts, fused_group._plans(nets, opts, X, y, "mse",
                                                                plan)[0])
    assert group.kernel is lanes.train_lanes                # the lanes, not train_runs
    hists = train_group(nets, opts, X, y, "mse", plan)
    for net, opt, hist, hyper in zip(nets, opts, hists, hypers):
        assert_close(net, opt, hist, *fit_one(conv, hyper, X, y, "mse", plan))
    per_epoch = -(-n // (batch_size or n))
    stop = hists[-1].diverged
    assert stop is not None and stop.epoch * per_epoch + stop.step == 1   # its second step
    assert all(h.diverged is None and len(h.loss) == epochs for h in hists[:4])


@pytest.mark.parametrize("layers, loss, k_out", [
    ([Dense(6, "relu"), Dense(5, "gelu"), Dense(3, "softmax")], "cross_entropy", 3),
    ([Dense(4, "silu"), Dense(1, "sigmoid")], "bce", 1),
    ([Dense(5, "softplus"), Dense(5, "elu"), Dense(3, "leaky_relu"), Dense(1, "tanh")],
     "quadratic", 1),
    ([Dense(7, "gelu:approximate=tanh"), Dense(2, "relu")], "mse", 2),
], ids=["softmax-ce", "sigmoid-bce", "tanh-quadratic", "relu-mse"])
def test_lanes_losses_and_activations(layers, loss, k_out):
    X, y = data(200, k_out=k_out)
    if loss == "bce":
        y = (y > np.median(y)).astype(np.float32)
    Xv, yv = X[:50], y[:50]
    plan = {"epochs": 2, "batch_size": 32, "seed": 2, "validation_data": (Xv, yv)}
    hypers = HYPERS[:16]
    nets, opts = nets_opts("pytorch", hypers, layers)
    hists = train_group(nets, opts, X, y, loss, plan)
    assert hists is not None
    for net, opt, hist, hyper in zip(nets, opts, hists, hypers):
        assert_close(net, opt, hist, *fit_one("pytorch", hyper, X, y, loss, plan, layers))


def _trained(hypers, threads, monkeypatch, slots=fused_group.SLOTS):
    monkeypatch.setenv("INERTIA_THREADS", str(threads))
    monkeypatch.setattr(fused_group, "SLOTS", slots)
    X, y = data(200)
    nets, opts = nets_opts("keras", hypers)
    hists = train_group(nets, opts, X, y, "mse", {"epochs": 2, "batch_size": 16, "seed": 1})
    return [(net.flat.copy(), hist.loss) for net, hist in zip(nets, hists)]


def test_lanes_same_bits_on_any_thread_count_and_group(monkeypatch):
    """A run's numbers do not depend on the threads, the slots or its group's other runs (the
    16 runs of two full lane groups, placed elsewhere in a group of three)."""
    if numba.config.NUMBA_NUM_THREADS < 2:
        pytest.skip("numba has one thread here")
    one = _trained(HYPERS, 1, monkeypatch)
    two = _trained(HYPERS, 2, monkeypatch, slots=3)
    bigger = _trained(HYPERS[8:] + HYPERS[:8] + HYPERS[:7], 2, monkeypatch)
    for k, (w, loss) in enumerate(one[:16]):
        np.testing.assert_array_equal(w, two[k][0])
        np.testing.assert_array_equal(loss, two[k][1])
        j = (k - 8) % 17                                   # its place in the bigger group
        np.testing.assert_array_equal(w, bigger[j][0])
        np.testing.assert_array_equal(loss, bigger[j][1])


_FIT_AFTER = """
import hashlib, sys
import numpy as np, inertia
from inertia import SGD, Dense, Network
from inertia.fused.group import train_group
rng = np.random.default_rng(0)
X = rng.uniform(-1, 1, (700, 4)).astype(np.float32)
y = np.sin(X[:, :1]).astype(np.float32)
layers = [Dense(6, "sigmoid"), Dense(5, "tanh"), Dense(1, "linear")]
if sys.argv[1] == "lanes-first":                              # the lanes compile first
    nets = [Network(4, layers, seed=3, dtype="float32") for _ in range(16)]
    train_group(nets, [SGD(0.05, momentum=0.9) for _ in nets], X, y, "mse",
                {"epochs": 1, "batch_size": 32, "seed": 0})
net = Network(4, layers, seed=3, dtype="float32")
inertia.fit(net, X, y, "mse", SGD(0.3, momentum=0.9), epochs=3, seed=0, progress=False)
print(hashlib.sha256(net.flat.tobytes()).hexdigest())
"""


def test_fits_keep_their_bits_when_the_lanes_compile_first(tmp_path):
    """The lanes compile with LLVM's SLP vectorizer on; the functions they share with the
    row-inner kernels must not be compiled (and cached) that way: a fit in a process with an
    empty numba cache that compiled the lanes first ends with the bits of one in a process
    that did not."""
    digests = []
    for first in ("lanes-first", "fit-only"):
        env = {**os.environ, "NUMBA_CACHE_DIR": str(tmp_path / first)}
        done = subprocess.run([sys.executable, "-c", _FIT_AFTER, first], env=env,
                              capture_output=True, text=True, timeout=900)
        assert done.returncode == 0, done.stderr[-2000:]
        digests.append(done.stdout.split()[-1])
    assert digests[0] == digests[1]


@pytest.mark.parametrize("which", ["lr", "momentum"])
@pytest.mark.parametrize("conv", ["pytorch", "keras", "sklearn"])
def test_lanes_with_per_step_schedules(conv, which):
    """A per-step lr or momentum schedule (each lane's coefficient rows change every step,
    the other setting the runs' own): every run still equals its fit to rounding."""
    from inertia import schedules as S

    X, y = data(200)
    total = 3 * -(-200 // 16)
    if which == "lr":
        sched = {"lr_schedule": S.linear_warmup(0.1, 5, after=S.cosine(0.1, total,
                                                                       final=0.01))}
        hypers = [{"lr": 0.1, "momentum": mu} for mu in np.linspace(0.0, 0.95, 16)]
    else:
        sched = {"momentum_schedule": S.cosine(0.9, total, final=0.5)}
        hypers = [{"lr": lr, "momentum": 0.9} for lr in np.geomspace(0.003, 0.1, 16)]
    plan = {"epochs": 3, "batch_size": 16, "seed": 4, **sched}
    nets, opts = nets_opts(conv, hypers)
    hists = train_group(nets, opts, X, y, "mse", plan)
    assert hists is not None
    for net, opt, hist, hyper in zip(nets, opts, hists, hypers):
        assert_close(net, opt, hist, *fit_one(conv, hyper, X, y, "mse", plan))
