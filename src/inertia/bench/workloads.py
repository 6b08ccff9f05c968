"""The benchmark's problems: each workload's network, data, batches and work counts.

A workload fixes what every system trains: the layer sizes and activations, the loss, the data
(built deterministically, so every process makes the same arrays), the batch size and the
heavy-ball hyperparameters. The counts here (gemm FLOPs, transcendental outputs) turn a time per
epoch into a share of the machine's measured limits.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class Workload:
    """One benchmark problem: a network ``sizes[0] -> ... -> sizes[-1]`` with ``acts[i]`` on
    layer i, trained with ``loss`` on ``n`` rows of ``data`` at ``lr`` and ``momentum``.
    ``batch`` None is full batch."""

    key: str
    title: str
    sizes: tuple         # (inputs, units of layer 1, ..., outputs)
    acts: tuple          # one activation name per layer, len(sizes) - 1
    loss: str
    data: str            # smooth | iris | binary | random10
    n: int
    batch: int | None
    lr: float
    momentum: float
    check_rows: int      # rows and epochs of the agreement check
    check_epochs: int
    tiny_n: int          # rows with --tiny
    quick_n: int | None = None   # rows timed with --quick (a prefix of the epoch)
    gpu: bool = False    # the GPU workload: default only with --device cuda

    def describe(self, n=None):
        """One line: key, title, architecture, loss, data, rows, batch and the rule."""
        n = self.n if n is None else n
        arch = "-".join(str(s) for s in self.sizes)
        batch = f"full batch ({n:,} rows)" if self.batch is None else f"batch {self.batch}"
        return (f"{self.key} {self.title}: {arch} ({', '.join(self.acts)}), {self.loss}, "
                f"{DATA_NAMES[self.data]} {n:,}, {batch}, lr {self.lr:g}, "
                f"momentum {self.momentum:g}")


DATA_NAMES = {"smooth": "smooth_regression", "iris": "iris", "binary": "random_binary",
              "random10": "random N(0,1) inputs with 10 random classes"}

WORKLOADS = {w.key: w for w in (
    Workload("W1", "full batch", (4, 32, 16, 1), ("sigmoid", "tanh", "linear"), "quadratic",
             "smooth", 10_000, None, 0.2, 0.4, 10_000, 3, 512),
    Workload("W2", "small batches", (4, 32, 16, 1), ("sigmoid", "tanh", "linear"), "quadratic",
             "smooth", 10_000, 32, 0.2, 0.4, 320, 1, 256, quick_n=2048),
    Workload("W3", "online", (4, 7, 3), ("tanh", "softmax"), "cross_entropy", "iris", 120, 1,
             0.2, 0.4, 20, 1, 30),
    Workload("W4", "wide", (1000, 500, 1), ("sigmoid", "sigmoid"), "bce", "binary", 1000, 64,
             0.2, 0.4, 256, 1, 128),
    Workload("W5", "large", (784, 1024, 1024, 10), ("relu", "relu", "softmax"),
             "cross_entropy", "random10", 60_000, 512, 0.01, 0.9, 2048, 1, 1024,
             quick_n=15_360, gpu=True),
)}


def make_data(w: Workload, n=None):
    """(X, y) of workload ``w``, its first ``n`` rows (default all ``w.n``): X float32
    (n, sizes[0]) C-contiguous; y float32 (n, 1) for quadratic and bce, int64 labels (n,) for
    cross-entropy. Fresh arrays, deterministic: every process builds the same ones."""
    from ..data import random_binary, smooth_regression

    if w.data == "smooth":
        X, y = smooth_regression(w.n, seed=1)
    elif w.data == "binary":
        X, y = random_binary(w.n, w.sizes[0], seed=0)
        perm = np.random.default_rng(0).permutation(w.n)   # mix the classes across batches
        X, y = X[perm], y[perm]
    elif w.data == "iris":
        X, y = iris()
    elif w.data == "random10":           # row by row, so that a prefix costs only itself
        m = w.n if n is None else min(n, w.n)
        X = np.random.default_rng(0).standard_normal((m, w.sizes[0]), dtype=np.float32)
        y = np.random.default_rng(1).integers(0, w.sizes[-1], w.n)[:m]
    else:
        raise ValueError(f"unknown data {w.data!r}")
    n = w.n if n is None else n
    X = np.ascontiguousarray(X[:n], dtype=np.float32)
    y = np.ascontiguousarray(y[:n])
    y = y.astype(np.int64) if w.loss == "cross_entropy" else y.astype(np.float32)
    return X, y


def iris():
    """Iris, the first 120 rows after a seeded shuffle, standardised: (X float32 (120, 4),
    labels int64 (120,)). Without scikit-learn, a seeded synthetic set of the same shape
    (3 Gaussian classes)."""
    try:
        from sklearn.datasets import load_iris
        d = load_iris()
        X, y = d.data, d.target
    except ImportError:
        r = np.random.default_rng(0)
        centres = r.normal(0.0, 2.0, (3, 4))
        y = np.repeat(np.arange(3), 50)
        X = centres[y] + r.normal(0.0, 1.0, (150, 4))
    idx = np.random.default_rng(0).permutation(len(X))[:120]
    X, y = X[idx], y[idx]
    X = (X - X.mean(axis=0)) / X.std(axis=0)
    return X.astype(np.float32), y.astype(np.int64)


def batches(n, batch):
    """The (start, stop) row range of each batch of an epoch of ``n`` rows, in order; ``batch``
    None is one full batch. The last batch is smaller when ``batch`` does not divide n."""
    bs = n if batch is None else min(batch, n)
    return [(s, min(s + bs, n)) for s in range(0, n, bs)]


def gemm_flops(sizes, n, batch):
    """FLOPs of one epoch's gemms: per layer and step of m rows the forward 2 m in out, the
    backward delta 2 m out in (not for the first layer) and the weight gradient 2 m out in."""
    total = 0
    for s, e in batches(n, batch):
        m = e - s
        for i, (a, b) in enumerate(zip(sizes[:-1], sizes[1:])):
            total += 2 * m * a * b * (3 if i > 0 else 2)
    return total


def transcendentals(sizes, acts, n):
    """sigmoid, tanh and softmax outputs evaluated per epoch of ``n`` rows (one exp-like call
    each)."""
    return sum(n * u for u, a in zip(sizes[1:], acts) if a in ("sigmoid", "tanh", "softmax"))
