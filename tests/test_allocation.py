"""Steady-state training allocates nothing per step on the NumPy engine (tracemalloc)."""

import tracemalloc

import numpy as np
import pytest

import inertia

CASES = [
    ("W1-like", [(32, "sigmoid"), (16, "tanh"), (1, "linear")], 4, "quadratic",
     dict(lr=0.2, momentum=0.4, weight_decay=0.1, convention="neanderthal")),
    ("relu-mse", [(32, "relu"), (1, "sigmoid")], 4, "mse",
     dict(lr=0.1, momentum=0.9, convention="pytorch", weight_decay=1e-3)),
    ("bce", [(64, "sigmoid"), (1, "sigmoid")], 20, "bce",
     dict(lr=0.1, momentum=0.9, nesterov=True, convention="keras")),
    ("ema", [(16, "tanh"), (2, "linear")], 4, "mse", dict(lr=0.1, momentum=0.9,
                                                           convention="ema")),
]


@pytest.mark.parametrize("name, layers, n_in, loss, hyper", CASES, ids=[c[0] for c in CASES])
def test_no_allocation_growth_over_100_steps(name, layers, n_in, loss, hyper):
    rng = np.random.default_rng(0)
    n = 2000
    X = rng.random((n, n_in)).astype(np.float32)
    k = layers[-1][0]
    y = (rng.random((n, k)) > 0.5).astype(np.float32)
    net = inertia.Network(n_in, [inertia.Dense(u, a) for u, a in layers], seed=0)
    opt = inertia.SGD(**hyper)
    net.bind(opt)
    e = net.e
    bs = 64
    bufs = net.buffers(bs)
    Xe, ye = e.from_host(X), e.from_host(y)
    order = np.arange(n)

    def steps(count):
        for s in range(count):
            idx = order[(s * bs) % (n - bs):(s * bs) % (n - bs) + bs]
            e.take_rows(Xe, idx, bufs.x)
            e.take_rows(ye, idx, bufs.y)
            net.train_step_(bufs, loss, opt)

    steps(5)                                   # buffers, scratch and caches now exist
    kept, grew = [], []
    for _ in range(2):                          # a real leak shows in both windows
        tracemalloc.start()
        try:
            before, _ = tracemalloc.get_traced_memory()
            tracemalloc.reset_peak()
            steps(100)
            after, peak = tracemalloc.get_traced_memory()
        finally:
            tracemalloc.stop()
        kept.append(after - before)
        grew.append(peak - before)
    one_activation = bs * max(u for u, _ in layers) * 4
    assert min(kept) < 4096, f"{kept} bytes kept after 100 steps"
    # a single array-sized temporary would show here; Python's small objects do not reach it
    assert min(grew) < one_activation, f"peak grew by {grew} bytes in a step"


def test_fit_full_batch_keeps_no_temporaries():
    X, y = inertia.datasets.smooth_regression(10_000, seed=1)
    net = inertia.Network(4, [inertia.Dense(32, "sigmoid"), inertia.Dense(16, "tanh"),
                              inertia.Dense(1, "linear")], seed=0)
    opt = inertia.SGD(lr=0.2, momentum=0.4, weight_decay=0.1, convention="neanderthal")
    inertia.fit(net, X, y, "quadratic", opt, epochs=3, progress=False)
    bufs = net.buffers(10_000)
    net.e.copy(X.astype(net.dtype), bufs.x)      # the compiled fit leaves these unused
    net.e.copy(y.reshape(-1, 1).astype(net.dtype), bufs.y)
    net.train_step_(bufs, "quadratic", opt)
    tracemalloc.start()
    try:
        before, _ = tracemalloc.get_traced_memory()
        tracemalloc.reset_peak()
        for _ in range(100):
            net.train_step_(bufs, "quadratic", opt)
        after, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert after - before < 4096
    assert peak - before < 10_000 * 4           # less than one column of one activation
