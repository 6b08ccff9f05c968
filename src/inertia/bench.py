"""``inertia bench``: inertia against PyTorch, JAX + optax, scikit-learn and a NumPy loop.

Every system trains the same network from the same initial weights on the same data with the
same update rule (heavy-ball momentum, constant learning rate, no weight decay, no shuffling),
in float32. The systems of one workload run in ONE run, alternating: after a warm-up and a
calibration pass, each repetition runs every system once (the order rotated by one system per
repetition), so that a slow minute on a shared machine hits them all alike.

Each system of each workload lives in its own fresh process, forked from a server that has
already imported the libraries (so no process pays for another's thread pools or allocator
caches, and the peak memory of one system is not mixed with another's). The parent sends
"train E epochs" and the process answers with the seconds measured around it by
``time.perf_counter`` (after a CUDA synchronize where the system is on a GPU).

What is reported, per workload and system:

- median time per epoch (and per step) over the repetitions, and the interquartile range;
- the ratio of the system's median to inertia's fastest engine (> 1: slower than inertia);
- peak RSS growth: the kernel's resident-set high-water mark (VmHWM, reset through
  /proc/self/clear_refs just before the system builds its model) minus the resident set at
  that moment, after warm-up, calibration and every timed repetition. It counts the model, the
  optimizer state, the system's own copy of the data, per-step temporaries, JIT compilation
  and allocator caches, whatever allocates them (NumPy, PyTorch's allocator, XLA). It excludes
  the library imports, the host NumPy data every system starts from, and lazy first-use
  initialisation (thread pools, code pages): before the reset each process trains a 64-row
  copy of the problem for one epoch. With CUDA, also torch's ``max_memory_allocated`` growth;
- the share of this machine's measured limits: GEMM FLOP/s (the network's three gemms per
  layer per step: forward, backward delta except for the first layer, weight gradient) over
  the best float32 sgemm rate of a 2048^3 ``scipy.linalg.blas.sgemm``, and transcendental
  elements per second (one per sigmoid/tanh/softmax output) over the rate of ``np.exp`` on
  1e7 float32 elements (one thread), both measured in the same run;
- a check that the systems did train the same thing: after the timed runs every system
  retrains from the shared initial weights for a few steps on the workload's first rows, and
  the largest parameter difference to inertia's NumPy engine (relative to the largest
  parameter) is reported.

The results go to ``benchmarks/results/bench-DATE-HOST.json`` (machine, versions, BLAS, every
raw timing), written atomically, with a bar chart beside it.
"""

from __future__ import annotations

import gc
import importlib
import importlib.util
import json
import math
import os
import platform
import re
import socket
import sys
import time
import traceback
import warnings
from dataclasses import asdict, dataclass, replace
from datetime import datetime

import numpy as np

DEFAULT_OUT = os.path.join("benchmarks", "results")
SCHEMA = 1


# ----------------------------------------------------------------------------- workloads
@dataclass(frozen=True)
class Workload:
    """One benchmark problem. ``batch`` None is full batch."""

    key: str
    title: str
    sizes: tuple
    acts: tuple
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
    """(X float32 (n, d), y) of a workload: y (n, 1) float32, or int64 labels (n,) for
    cross-entropy. Deterministic: every process builds the same arrays."""
    from . import data as datasets

    if w.data == "smooth":
        X, y = datasets.smooth_regression(w.n, seed=1)
    elif w.data == "binary":
        X, y = datasets.random_binary(w.n, w.sizes[0], seed=0)
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
    """Iris, the first 120 rows after a seeded shuffle, standardised: (X (120, 4), labels).
    Without scikit-learn, a seeded synthetic set of the same shape (3 Gaussian classes)."""
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
    """The (start, stop) of each batch of an epoch, in order."""
    bs = n if batch is None else min(batch, n)
    return [(s, min(s + bs, n)) for s in range(0, n, bs)]


def gemm_flops(sizes, n, batch):
    """FLOPs of one epoch's gemms: per layer and step the forward 2 m in out, the backward
    delta 2 m out in (not for the first layer) and the weight gradient 2 m out in."""
    total = 0
    for s, e in batches(n, batch):
        m = e - s
        for i, (a, b) in enumerate(zip(sizes[:-1], sizes[1:])):
            total += 2 * m * a * b * (3 if i > 0 else 2)
    return total


def transcendentals(sizes, acts, n):
    """sigmoid, tanh and softmax outputs evaluated per epoch (one exp-like call each)."""
    return sum(n * u for u, a in zip(sizes[1:], acts) if a in ("sigmoid", "tanh", "softmax"))


# ------------------------------------------------------------------------------- systems
@dataclass(frozen=True)
class System:
    """One trainer in a workload."""

    name: str
    kind: str                  # inertia | torch | jax | sklearn | numpy-loop
    device: str = "cpu"
    engine: str | None = None
    momentum: float | None = None        # None: the workload's
    convention: str = "pytorch"
    weight_decay: float = 0.0
    variant: bool = False      # an inertia variant: not a ratio base, not in the chart
    compiled: bool | None = None   # inertia: fit's compiled= (None: its default)
    acts: tuple | None = None  # the architecture this system runs, when it cannot run the
    note: str = ""             # workload's own (scikit-learn: one hidden activation)


PEERS = {
    # name: (label, modules needed, how to install)
    "torch": ("PyTorch eager", ("torch",), "pip install torch"),
    "jax": ("JAX + optax jit", ("jax", "optax"), "pip install jax optax"),
    "sklearn": ("scikit-learn MLP", ("sklearn",), "pip install scikit-learn"),
    "numpy-loop": ("NumPy loop", (), ""),
}

SK_ACT = {"sigmoid": "logistic", "tanh": "tanh", "relu": "relu", "linear": "identity"}


def installed(module):
    """Whether ``module`` can be imported (without importing it)."""
    try:
        return importlib.util.find_spec(module) is not None
    except (ImportError, ValueError):
        return False


def plan(w, engines, peers, device):
    """The systems of workload ``w``, and {name: why skipped}."""
    from . import compiled as compiled_mod

    out, skipped = [], {}
    on_gpu = device == "cuda"
    for e in engines:
        dev = "cpu" if e == "numpy" else device
        label = f"inertia {e}" + (f" ({dev})" if on_gpu else "")
        if w.gpu and on_gpu and dev != "cuda":
            skipped[label] = "CPU only: the GPU workload runs the GPU systems"
            continue
        out.append(System(label, "inertia", dev, engine=e))
    for e in engines:
        base = next((s for s in out if s.engine == e and not s.variant), None)
        if base is None:
            continue
        if w.key in ("W1", "W2"):
            out.append(replace(base, name=base.name + " · momentum 0", momentum=0.0,
                               variant=True))
        if e == "numpy" and max(w.sizes) <= compiled_mod.MAX_WIDTH:
            out.append(replace(base, name=base.name + " · engine calls", compiled=False,
                               variant=True,
                               note="fit(compiled=False): one engine call a primitive, "
                                    "BLAS gemms, instead of the compiled loop"))
        if w.key == "W1":
            out.append(replace(base, name=base.name + " · neanderthal wd 0.1",
                               convention="neanderthal", weight_decay=0.1, variant=True,
                               note="the README's run: neanderthal convention, decoupled "
                                    "decay lr wd / n on weights, biases without momentum"))
    for p in peers:
        label = PEERS[p][0]
        dev = device if p in ("torch", "jax") else "cpu"
        if on_gpu and p != "jax":          # jax: named after the device it finds
            label += f" ({dev})"
        if w.gpu and on_gpu and dev != "cuda":
            skipped[label] = "CPU only: the GPU workload runs the GPU systems"
            continue
        acts, note = None, ""
        if p == "sklearn":
            hidden = w.acts[:-1]
            if len(set(hidden)) > 1:
                acts = (hidden[0],) * len(hidden) + (w.acts[-1],)
                note = (f"scikit-learn's MLP has one hidden activation: {SK_ACT[hidden[0]]} in "
                        f"every hidden layer (the workload has {', '.join(hidden)})")
        out.append(System(label, p, dev, acts=acts, note=note))
    return out, skipped


def initial_params(w, acts=None):
    """The shared initial weights: inertia's Glorot/He initialisation from seed 0, as a list
    of (W (out, in), b (out,)) float32 arrays."""
    from .network import Dense, Network

    acts = acts or w.acts
    net = Network(w.sizes[0], [Dense(u, a) for u, a in zip(w.sizes[1:], acts)], seed=0,
                  dtype="float32", engine="numpy")
    return net.parameters()


# ------------------------------------------------------------------------------- runners
class Runner:
    """Trains one system; ``train(E)`` runs E epochs, ``params()`` returns (W, b) pairs in
    inertia's layout (W (out, in)) as float64 NumPy arrays."""

    def __init__(self, system, w, X, y, init):
        self.s, self.w = system, w
        self.acts = system.acts or w.acts
        self.mu = w.momentum if system.momentum is None else system.momentum
        self.n = X.shape[0]
        self.batch = None if w.batch is None else min(w.batch, self.n)
        self.device = system.device

    def sync(self):
        pass

    def timed(self, epochs):
        """(wall seconds, CPU seconds of all this process's threads) for ``epochs``."""
        self.sync()
        c0 = time.process_time()
        t0 = time.perf_counter()
        self.train(epochs)
        self.sync()
        t = time.perf_counter() - t0
        return t, time.process_time() - c0

    def info(self):
        return {"device": self.device}


class InertiaRunner(Runner):
    def __init__(self, system, w, X, y, init):
        super().__init__(system, w, X, y, init)
        import inertia

        self.inertia = inertia
        layers = [inertia.Dense(u, a) for u, a in zip(w.sizes[1:], self.acts)]
        self.net = inertia.Network(w.sizes[0], layers, seed=0, dtype="float32",
                                   engine=system.engine, device=system.device)
        self.net.set_parameters(init)
        self.opt = inertia.SGD(w.lr, momentum=self.mu, weight_decay=system.weight_decay,
                               convention=system.convention)
        self.X, self.y = X, y

    def train(self, epochs):
        self.inertia.fit(self.net, self.X, self.y, loss=self.w.loss, optimizer=self.opt,
                         epochs=epochs, batch_size=self.batch, shuffle=False, progress=False,
                         compiled=self.s.compiled)

    def sync(self):
        self.net.e.synchronize()

    def params(self):
        return [(W.astype(np.float64), b.astype(np.float64)) for W, b in self.net.parameters()]

    def info(self):
        return {"device": self.device, "engine": repr(self.net.e)}


class TorchRunner(Runner):
    """nn.Sequential + torch.optim.SGD, a standard loop over slices of pre-made tensors; the
    epoch loss is accumulated on the device (no per-step host synchronisation)."""

    def __init__(self, system, w, X, y, init):
        super().__init__(system, w, X, y, init)
        import torch
        from torch import nn

        self.torch = torch
        dev = torch.device(system.device)
        acts = {"sigmoid": nn.Sigmoid, "tanh": nn.Tanh, "relu": nn.ReLU}
        mods, self.linears = [], []
        last = len(self.acts) - 1
        for i, ((W, b), a) in enumerate(zip(init, self.acts)):
            lin = nn.Linear(W.shape[1], W.shape[0])
            with torch.no_grad():
                lin.weight.copy_(torch.from_numpy(np.ascontiguousarray(W)))
                lin.bias.copy_(torch.from_numpy(np.ascontiguousarray(b)))
            mods.append(lin)
            self.linears.append(lin)
            if a in acts and not (i == last and w.loss in ("bce", "cross_entropy")):
                mods.append(acts[a]())
        self.model = nn.Sequential(*mods).to(dev)
        if w.loss == "quadratic":          # sum (a - y)^2 / (2n) = MSELoss * k / 2
            k = w.sizes[-1]
            mse = nn.MSELoss()
            self.lossf = lambda out, t: mse(out, t) * (k / 2)
        elif w.loss == "bce":
            self.lossf = nn.BCEWithLogitsLoss()
        else:
            self.lossf = nn.CrossEntropyLoss()
        self.X = torch.from_numpy(X).to(dev)
        self.y = torch.from_numpy(y).to(dev)
        self.opt = torch.optim.SGD(self.model.parameters(), lr=w.lr, momentum=self.mu)
        self.slices = batches(self.n, self.batch)
        self.last_loss = None

    def train(self, epochs):
        model, opt, lossf, X, y = self.model, self.opt, self.lossf, self.X, self.y
        for _ in range(epochs):
            total = self.torch.zeros((), device=X.device)
            for s, e in self.slices:
                opt.zero_grad()
                loss = lossf(model(X[s:e]), y[s:e])
                loss.backward()
                opt.step()
                total += loss.detach()
            self.last_loss = total / len(self.slices)

    def sync(self):
        if self.device == "cuda":
            self.torch.cuda.synchronize()

    def params(self):
        return [(lin.weight.detach().cpu().double().numpy(),
                 lin.bias.detach().cpu().double().numpy()) for lin in self.linears]

    def info(self):
        t = self.torch
        build = re.findall(r"\b(?:BLAS_INFO|LAPACK_INFO|USE_MKL|USE_MKLDNN|USE_OPENMP)=\w+",
                           t.__config__.show())
        parallel = [ln.strip() for ln in t.__config__.parallel_info().splitlines()
                    if ln.strip() and not ln.startswith("-")][:6]
        d = {"device": self.device, "threads": t.get_num_threads(), "build": build,
             "parallel": parallel}
        if self.device == "cuda":
            d["gpu"] = t.cuda.get_device_name()
        return d


class JaxRunner(Runner):
    """A jitted epoch: lax.scan over the full batches, then the remainder batch, in one
    compiled function (full batch: one jitted step per epoch). optax.sgd(lr, momentum)."""

    def __init__(self, system, w, X, y, init):
        super().__init__(system, w, X, y, init)
        import jax
        import jax.numpy as jnp
        import optax
        from jax import lax

        self.jax = jax
        dev = jax.devices("cpu")[0]
        if system.device == "cuda":
            try:
                dev = jax.devices("gpu")[0]
            except RuntimeError:
                pass
        self.device = "cuda" if dev.platform == "gpu" else "cpu"
        self.dev = dev
        acts = {"sigmoid": jax.nn.sigmoid, "tanh": jnp.tanh, "relu": jax.nn.relu,
                "linear": lambda z: z}
        hidden = [acts[a] for a in self.acts[:-1]]
        out_act = acts.get(self.acts[-1])
        loss_name = w.loss

        def forward(params, x):
            for (W, b), f in zip(params[:-1], hidden):
                x = f(x @ W.T + b)
            W, b = params[-1]
            return x @ W.T + b

        def lossf(params, x, t):
            z = forward(params, x)
            if loss_name == "quadratic":
                return jnp.sum((out_act(z) - t) ** 2) / (2 * x.shape[0])
            if loss_name == "bce":
                return jnp.mean(optax.sigmoid_binary_cross_entropy(z, t))
            return jnp.mean(optax.softmax_cross_entropy_with_integer_labels(z, t))

        tx = optax.sgd(w.lr, momentum=self.mu)

        def step(carry, xt):
            params, state = carry
            value, g = jax.value_and_grad(lossf)(params, *xt)
            upd, state = tx.update(g, state, params)
            return (optax.apply_updates(params, upd), state), value

        put = lambda a: jax.device_put(a, dev)  # noqa: E731
        self.params_ = [(put(W), put(b)) for W, b in init]
        self.state = tx.init(self.params_)
        n, bs = self.n, self.batch
        if bs is None or bs >= n:
            self.args = (put(X), put(y))
            self.epoch = jax.jit(lambda p, s, x, t: step((p, s), (x, t)))
        else:
            nb = n // bs
            rem = n - nb * bs
            Xb = put(X[:nb * bs].reshape((nb, bs) + X.shape[1:]))
            yb = put(y[:nb * bs].reshape((nb, bs) + y.shape[1:]))
            Xr, yr = put(X[nb * bs:]), put(y[nb * bs:])
            self.args = (Xb, yb, Xr, yr)

            def epoch(p, s, Xb, yb, Xr, yr):
                (p, s), values = lax.scan(step, (p, s), (Xb, yb))
                total = values.sum()
                if rem:
                    (p, s), v = step((p, s), (Xr, yr))
                    total = total + v
                return (p, s), total / (nb + (1 if rem else 0))

            self.epoch = jax.jit(epoch)
        self.last_loss = None

    def train(self, epochs):
        p, s = self.params_, self.state
        for _ in range(epochs):
            (p, s), self.last_loss = self.epoch(p, s, *self.args)
        self.params_, self.state = p, s

    def sync(self):
        self.jax.block_until_ready((self.params_, self.state))

    def params(self):
        return [(np.asarray(W, dtype=np.float64), np.asarray(b, dtype=np.float64))
                for W, b in self.params_]

    def info(self):
        return {"device": self.device, "jax_device": str(self.dev),
                "backend": self.jax.default_backend()}


class SklearnRunner(Runner):
    """MLPRegressor / MLPClassifier(solver="sgd", constant learning rate, momentum without
    Nesterov, alpha=0, shuffle=False), one ``partial_fit`` per epoch, started from the
    shared weights with a fresh SGDOptimizer (zero velocities)."""

    def __init__(self, system, w, X, y, init):
        super().__init__(system, w, X, y, init)
        from sklearn.exceptions import ConvergenceWarning
        from sklearn.neural_network import MLPClassifier, MLPRegressor

        self.cw = ConvergenceWarning
        hidden = self.acts[:-1]
        common = dict(hidden_layer_sizes=tuple(w.sizes[1:-1]), activation=SK_ACT[hidden[0]],
                      solver="sgd", learning_rate="constant", learning_rate_init=w.lr,
                      momentum=self.mu, nesterovs_momentum=False, alpha=0.0,
                      batch_size=self.batch or self.n, shuffle=False, max_iter=1, tol=0.0,
                      n_iter_no_change=10**9, early_stopping=False, random_state=0)
        self.kw = {}
        if w.loss == "quadratic":
            self.est = MLPRegressor(**common)
            self.y = y.ravel() if y.shape[1] == 1 else y
        else:
            self.est = MLPClassifier(**common)
            self.y = y.ravel().astype(np.int64)
            classes = np.arange(max(2, w.sizes[-1]))
            self.kw = {"classes": classes}
        self.X = X
        m = min(self.n, self.batch or self.n)
        with warnings.catch_warnings():                  # build the estimator ...
            warnings.simplefilter("ignore")
            self.est.partial_fit(X[:m], self.y[:m], **self.kw)
        self.est.coefs_ = [np.array(W.T, order="C") for W, _ in init]   # ... load copies
        self.est.intercepts_ = [b.copy() for _, b in init]
        del self.est._optimizer                          # and start a fresh optimizer
        self.kw = {}

    def train(self, epochs):
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", self.cw)
            for _ in range(epochs):
                self.est.partial_fit(self.X, self.y)

    def params(self):
        return [(np.asarray(c.T, dtype=np.float64), np.asarray(b, dtype=np.float64))
                for c, b in zip(self.est.coefs_, self.est.intercepts_)]

    def info(self):
        import sklearn
        return {"device": "cpu", "sklearn": sklearn.__version__,
                "coef_dtype": str(self.est.coefs_[0].dtype)}


class NumpyLoopRunner(Runner):
    """A plain NumPy loop: forward with @, backward with fresh arrays, PyTorch's momentum
    (b = mu b + g; w -= lr b)."""

    def __init__(self, system, w, X, y, init):
        super().__init__(system, w, X, y, init)
        self.W = [np.array(W, dtype=np.float32) for W, _ in init]
        self.b = [np.array(b, dtype=np.float32) for _, b in init]
        self.vW = [np.zeros_like(W) for W in self.W]
        self.vb = [np.zeros_like(b) for b in self.b]
        self.X = X
        if w.loss == "cross_entropy":
            Y = np.zeros((self.n, w.sizes[-1]), dtype=np.float32)
            Y[np.arange(self.n), y] = 1
            self.y = Y
        else:
            self.y = y
        self.slices = batches(self.n, self.batch)
        self.last_loss = None

    @staticmethod
    def _act(name, z):
        if name == "sigmoid":
            return 1 / (1 + np.exp(-z))
        if name == "tanh":
            return np.tanh(z)
        if name == "relu":
            return np.maximum(z, 0)
        return z

    @staticmethod
    def _deriv(name, a):
        if name == "sigmoid":
            return a * (1 - a)
        if name == "tanh":
            return 1 - a * a
        if name == "relu":
            return (a > 0).astype(a.dtype)
        return None

    def step(self, x, t):
        L = len(self.W)
        acts = [x]
        a = x
        for i in range(L - 1):
            a = self._act(self.acts[i], a @ self.W[i].T + self.b[i])
            acts.append(a)
        z = a @ self.W[-1].T + self.b[-1]
        m, k = z.shape
        loss = self.w.loss
        if loss == "quadratic":
            out = self._act(self.acts[-1], z)
            diff = out - t
            value = float((diff * diff).sum()) / (2 * m)
            delta = diff / m
            d = self._deriv(self.acts[-1], out)
            if d is not None:
                delta = delta * d
        elif loss == "bce":
            p = 1 / (1 + np.exp(-z))
            value = float((np.maximum(z, 0) - z * t + np.log1p(np.exp(-np.abs(z)))).mean())
            delta = (p - t) / (m * k)
        else:
            zs = z - z.max(axis=1, keepdims=True)
            ez = np.exp(zs)
            s = ez.sum(axis=1, keepdims=True)
            value = float(-(t * (zs - np.log(s))).sum()) / m
            delta = (ez / s - t) / m
        for i in range(L - 1, -1, -1):
            gW = delta.T @ acts[i]
            gb = delta.sum(axis=0)
            if i > 0:                                   # before W[i] changes
                delta = (delta @ self.W[i]) * self._deriv(self.acts[i - 1], acts[i])
            self.vW[i] = self.mu * self.vW[i] + gW
            self.vb[i] = self.mu * self.vb[i] + gb
            self.W[i] = self.W[i] - self.w.lr * self.vW[i]
            self.b[i] = self.b[i] - self.w.lr * self.vb[i]
        return value

    def train(self, epochs):
        X, y = self.X, self.y
        for _ in range(epochs):
            total = 0.0
            for s, e in self.slices:
                total += self.step(X[s:e], y[s:e])
            self.last_loss = total / len(self.slices)

    def params(self):
        return [(W.astype(np.float64), b.astype(np.float64)) for W, b in zip(self.W, self.b)]


RUNNERS = {"inertia": InertiaRunner, "torch": TorchRunner, "jax": JaxRunner,
           "sklearn": SklearnRunner, "numpy-loop": NumpyLoopRunner}


# ------------------------------------------------------------------------------ memory
def _status():
    """{VmRSS, VmHWM} in bytes from /proc/self/status (empty where there is none)."""
    out = {}
    try:
        with open("/proc/self/status") as f:
            for line in f:
                if line.startswith(("VmRSS:", "VmHWM:")):
                    key, val = line.split(":", 1)
                    out[key] = int(val.split()[0]) * 1024
    except OSError:
        pass
    return out


def _reset_peak():
    """Reset the resident-set high-water mark to the current resident set. Returns the
    method used: "clear_refs" or "ru_maxrss" (the lifetime peak, where the reset is not
    allowed)."""
    try:
        with open("/proc/self/clear_refs", "w") as f:
            f.write("5")
        return "clear_refs"
    except OSError:
        return "ru_maxrss"


def _peak_bytes(method):
    if method == "clear_refs":
        return _status().get("VmHWM")
    import resource
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024


# ------------------------------------------------------------------------------- worker
def _worker(conn, system, w, n, init, check_rows):
    """One system of one workload, in its own process: builds, then serves commands."""
    import signal

    signal.signal(signal.SIGINT, signal.SIG_IGN)     # Ctrl-C is the parent's to handle
    warnings.simplefilter("ignore")
    try:
        X, y = make_data(w, n)
        cls = RUNNERS[system.kind]
        # first use of the code paths (thread pools, lazy initialisation, code pages) on a
        # 64-row copy of the problem, so that the memory measured below is the training's
        def fresh():                     # every runner gets its own copy of the weights
            return [(np.array(W), np.array(b)) for W, b in init]

        pre = min(64, X.shape[0])
        cls(system, w, X[:pre], y[:pre], fresh()).train(1)
        gc.collect()
        cuda = system.device == "cuda" and system.kind in ("inertia", "torch")
        if cuda:
            import torch
            torch.cuda.synchronize()
            torch.cuda.reset_peak_memory_stats()
            gpu_base = torch.cuda.memory_allocated()
        method = _reset_peak()
        rss_base = _status().get("VmRSS") if method == "clear_refs" else _peak_bytes(method)
        runner = cls(system, w, X, y, fresh())
        info = runner.info()
        if w.gpu and system.device == "cuda" and info.get("device") != "cuda":
            conn.send(("skip", f"no GPU backend (ran on {info.get('device')})"))
            return
        conn.send(("ready", info))
        while True:
            cmd, arg = conn.recv()
            if cmd == "run":
                conn.send(("ok", runner.timed(arg)))
            elif cmd == "memory":
                peak = _peak_bytes(method)
                mem = {"method": method, "rss_base_bytes": rss_base, "rss_peak_bytes": peak,
                       "rss_growth_bytes": None if peak is None or rss_base is None
                       else max(0, peak - rss_base)}
                if cuda:
                    import torch
                    mem["gpu_growth_bytes"] = torch.cuda.max_memory_allocated() - gpu_base
                conn.send(("ok", mem))
            elif cmd == "check":
                epochs = arg
                rows = min(check_rows, X.shape[0])
                r = cls(system, w, X[:rows], y[:rows], fresh())
                r.train(epochs)
                r.sync()
                conn.send(("ok", r.params()))
            elif cmd == "quit":
                conn.send(("ok", None))
                return
    except Exception as ex:  # reported to the parent, which carries on without this system
        tb = traceback.extract_tb(ex.__traceback__)
        where = f" ({os.path.basename(tb[-1].filename)}:{tb[-1].lineno})" if tb else ""
        try:
            conn.send(("error", f"{type(ex).__name__}: {ex}{where}"))
        except OSError:
            pass
    finally:
        conn.close()


class _Proc:
    """The parent's handle on one worker."""

    def __init__(self, ctx, system, w, n, init, check_rows):
        self.system = system
        self.conn, child = ctx.Pipe()
        self.p = ctx.Process(target=_worker, args=(child, system, w, n, init, check_rows),
                             daemon=True, name=f"bench {w.key} {system.name}")
        self.p.start()
        child.close()
        self.error = None
        self.info = {}

    def recv(self, timeout):
        if not self.conn.poll(timeout):
            raise TimeoutError(f"no answer in {timeout:.0f} s")
        try:
            return self.conn.recv()
        except EOFError:
            self.p.join(5)
            raise RuntimeError(f"the process ended (exit code {self.p.exitcode})") from None

    def ask(self, cmd, arg=None, timeout=900.0):
        self.conn.send((cmd, arg))
        kind, val = self.recv(timeout)
        if kind != "ok":
            raise RuntimeError(val)
        return val

    def stop(self):
        try:
            if self.p.is_alive():
                self.conn.send(("quit", None))
                self.recv(10)
        except Exception:
            pass
        self.p.join(10)
        if self.p.is_alive():
            self.p.terminate()
            self.p.join(5)
        self.conn.close()


# ------------------------------------------------------------------------ machine limits
def machine_limits(n=2048, reps=5, exp_n=10_000_000, exp_reps=10):
    """The float32 sgemm rate (n^3, scipy.linalg.blas.sgemm, all BLAS threads) and the
    np.exp float32 element rate (one thread), with every raw time."""
    from scipy.linalg import blas

    r = np.random.default_rng(0)
    A = np.asfortranarray(r.standard_normal((n, n), dtype=np.float32))
    B = np.asfortranarray(r.standard_normal((n, n), dtype=np.float32))
    C = np.zeros((n, n), dtype=np.float32, order="F")
    blas.sgemm(1.0, A, B, 0.0, C, overwrite_c=True)              # warm-up
    times = []
    for _ in range(reps):
        t0 = time.perf_counter()
        blas.sgemm(1.0, A, B, 0.0, C, overwrite_c=True)
        times.append(time.perf_counter() - t0)
    flops = 2.0 * n ** 3
    x = r.uniform(-5.0, 5.0, exp_n).astype(np.float32)
    out = np.empty_like(x)
    np.exp(x, out=out)
    etimes = []
    for _ in range(exp_reps):
        t0 = time.perf_counter()
        np.exp(x, out=out)
        etimes.append(time.perf_counter() - t0)
    return {
        "sgemm": {"n": n, "flops": flops, "times_s": times,
                  "flops_per_s_best": flops / min(times),
                  "flops_per_s_median": flops / float(np.median(times))},
        "exp": {"n": exp_n, "times_s": etimes, "elements_per_s_best": exp_n / min(etimes),
                "elements_per_s_median": exp_n / float(np.median(etimes))},
    }


def machine_info():
    """CPU model, cores, versions and BLAS, without importing the optional libraries."""
    from importlib import metadata

    cpu = platform.processor() or platform.machine()
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    cpu = line.split(":", 1)[1].strip()
                    break
    except OSError:
        pass
    versions = {}
    for pkg in ("inertia", "numpy", "scipy", "torch", "jax", "jaxlib", "optax", "scikit-learn",
                "matplotlib"):
        try:
            versions[pkg] = metadata.version(pkg)
        except metadata.PackageNotFoundError:
            versions[pkg] = None
    blas = None
    try:
        cfg = np.show_config(mode="dicts")
        blas = cfg.get("Build Dependencies", {}).get("blas")
    except Exception:
        pass
    pools = None
    if installed("threadpoolctl"):
        try:
            import threadpoolctl
            pools = [{k: p.get(k) for k in ("internal_api", "version", "num_threads",
                                             "threading_layer", "architecture", "filepath")}
                     for p in threadpoolctl.threadpool_info()]
        except Exception:
            pools = None
    try:
        affinity = len(os.sched_getaffinity(0))
    except AttributeError:
        affinity = os.cpu_count()
    try:
        load = os.getloadavg()
    except OSError:
        load = None
    return {"cpu_model": cpu, "cores": os.cpu_count(), "cores_usable": affinity,
            "host": socket.gethostname(), "platform": platform.platform(),
            "python": platform.python_version(), "versions": versions, "numpy_blas": blas,
            "threadpools": pools, "load_average_at_start": load}


# ------------------------------------------------------------------------------- statistics
def _stats(xs):
    xs = np.asarray(xs, dtype=float)
    q1, med, q3 = np.percentile(xs, [25, 50, 75])
    return {"median": float(med), "q1": float(q1), "q3": float(q3), "iqr": float(q3 - q1),
            "min": float(xs.min()), "max": float(xs.max())}


def _rel_diff(params, ref):
    scale = max(float(np.max(np.abs(W))) for pair in ref for W in pair) or 1.0
    worst = 0.0
    for (W, b), (RW, Rb) in zip(params, ref):
        if np.shape(W) != np.shape(RW) or np.shape(b) != np.shape(Rb):
            return None
        worst = max(worst, float(np.max(np.abs(W - RW))), float(np.max(np.abs(b - Rb))))
    return worst / scale


def _reference(w, n, acts, momentum, convention, weight_decay, epochs, rows):
    """inertia's NumPy engine trained from the shared weights on the check rows."""
    sysm = System("reference", "inertia", "cpu", engine="numpy", momentum=momentum,
                  convention=convention, weight_decay=weight_decay, acts=acts)
    X, y = make_data(w, n)
    rows = min(rows, X.shape[0])
    r = InertiaRunner(sysm, w, X[:rows], y[:rows], initial_params(w, acts))
    r.train(epochs)
    return r.params()


# ---------------------------------------------------------------------------------- config
@dataclass
class Config:
    workloads: list
    engines: list
    peers: list
    reps: int
    device: str = "cpu"
    out: str = DEFAULT_OUT
    plot: bool = True
    quick: bool = False
    tiny: bool = False
    rep_seconds: float = 0.5
    max_epochs: int = 100_000
    limit_n: int = 2048
    limit_reps: int = 5
    exp_n: int = 10_000_000


def _split(text):
    return [t.strip() for t in text.split(",") if t.strip()] if text else []


def configure(args):
    """A Config from parsed arguments; a one-line ValueError for bad ones."""
    from . import engines as engines_mod

    device = args.device
    quick, tiny = bool(args.quick), bool(getattr(args, "tiny", False))
    if args.workloads:
        wl = [k.upper() for k in _split(args.workloads)]
        bad = [k for k in wl if k not in WORKLOADS]
        if bad or not wl:
            raise ValueError(f"--workloads: unknown {', '.join(bad) or '(empty)'}: choose from "
                             f"{', '.join(WORKLOADS)}")
    else:
        wl = [k for k, w in WORKLOADS.items() if not w.gpu or device == "cuda"]
    known = list(engines_mod.ENGINES)
    have = engines_mod.available()
    notes = []
    if args.engines:
        eng = _split(args.engines)
        bad = [e for e in eng if e not in known]
        if bad or not eng:
            raise ValueError(f"--engines: unknown {', '.join(bad) or '(empty)'}: choose from "
                             f"{', '.join(known)}")
        for e in eng:
            if e not in have:
                notes.append(f"inertia engine {e}: skipped (not installed)")
        eng = [e for e in eng if e in have]
        if not eng:
            raise ValueError("none of the --engines asked for is installed: "
                             f"installed engines are {', '.join(have)}")
    else:
        eng = have
    if args.peers is None:
        peers = list(PEERS)
    elif args.peers.strip().lower() == "none":
        peers = []
    else:
        peers = _split(args.peers)
        bad = [p for p in peers if p not in PEERS]
        if bad:
            raise ValueError(f"--peers: unknown {', '.join(bad)}: choose from "
                             f"{', '.join(PEERS)} (or none)")
    avail = []
    for p in peers:
        missing = [m for m in PEERS[p][1] if not installed(m)]
        if missing:
            notes.append(f"{PEERS[p][0]}: skipped ({', '.join(missing)} not installed: "
                         f"{PEERS[p][2]})")
        else:
            avail.append(p)
    if device not in ("cpu", "cuda"):
        raise ValueError(f"--device must be cpu or cuda, got {device!r}")
    if device == "cuda":
        if not installed("torch"):
            raise ValueError("--device cuda needs PyTorch with CUDA: pip install torch")
        import torch
        if not torch.cuda.is_available():
            raise ValueError("--device cuda: PyTorch sees no CUDA GPU on this machine")
    if args.reps is not None and args.reps < 1:
        raise ValueError(f"--reps must be at least 1, got {args.reps}")
    from .files import check_folder
    check_folder(args.out, "--out")            # before any timing: a bad folder is one line
    reps = args.reps or (1 if tiny else 3 if quick else 7)
    cfg = Config(workloads=wl, engines=eng, peers=avail, reps=reps, device=device,
                 out=args.out, plot=not args.no_plot, quick=quick, tiny=tiny,
                 rep_seconds=0.0 if tiny else 0.1 if quick else 0.5,
                 limit_n=512 if tiny else 2048, limit_reps=3 if (quick or tiny) else 7,
                 exp_n=1_000_000 if tiny else 10_000_000)
    return cfg, notes


# ------------------------------------------------------------------------------- the run
def _say(msg):
    print(msg, file=sys.stderr, flush=True)


def _preload(cfg):
    mods = ["numpy", "scipy.linalg.blas", "inertia", "inertia.bench"]
    from . import engines as engines_mod
    mods += [engines_mod.ENGINES[e][0] for e in cfg.engines]
    for p in cfg.peers:
        mods += {"torch": ["torch"], "jax": ["jax", "jax.numpy", "optax"],
                 "sklearn": ["sklearn.neural_network", "sklearn.datasets"]}.get(p, [])
    if "W3" in cfg.workloads and installed("sklearn"):      # iris
        mods.append("sklearn.datasets")
    return list(dict.fromkeys(mods))


def _context(cfg):
    import multiprocessing as mp

    methods = mp.get_all_start_methods()
    if "forkserver" in methods:
        ctx = mp.get_context("forkserver")
        ctx.set_forkserver_preload(_preload(cfg))
        return ctx
    return mp.get_context("spawn")


def run_workload(ctx, cfg, w, limits):
    """Run every system of one workload, round-robin. Returns the workload's record."""
    n_full = w.tiny_n if cfg.tiny else w.n
    n = w.quick_n if (cfg.quick and w.quick_n and not cfg.tiny) else n_full
    systems, skipped = plan(w, cfg.engines, cfg.peers, cfg.device)
    steps_full, steps = len(batches(n_full, w.batch)), len(batches(n, w.batch))
    desc = w.describe(n_full)
    if n != n_full:
        desc += (f" (--quick: timed on the first {n:,} rows, {steps} of {steps_full} steps; "
                 f"ms/epoch = µs/step x {steps_full})")
    rec = {"key": w.key, "title": w.title, "description": desc,
           "sizes": list(w.sizes), "activations": list(w.acts), "loss": w.loss,
           "data": DATA_NAMES[w.data], "n": n_full, "batch_size": w.batch,
           "steps_per_epoch": steps_full, "timed_rows": n, "timed_steps_per_epoch": steps,
           "lr": w.lr, "momentum": w.momentum, "weight_decay": 0.0,
           "convention": "pytorch (b = mu b + g; w -= lr b); scikit-learn's v = mu v - lr g; "
                         "w += v is the same rule at a constant learning rate",
           "gemm_flops_per_epoch": gemm_flops(w.sizes, n_full, w.batch),
           "transcendentals_per_epoch": transcendentals(w.sizes, w.acts, n_full),
           "skipped": dict(skipped), "systems": {}, "order": []}
    for name, why in skipped.items():
        _say(f"  {w.key}: {name} skipped ({why})")
    inits = {}
    t0 = time.perf_counter()
    procs = []
    for s in systems:
        acts = s.acts or w.acts
        if acts not in inits:
            inits[acts] = initial_params(w, acts)
        procs.append(_Proc(ctx, s, w, n, inits[acts], w.check_rows))
    live = []
    for pr in procs:
        try:
            kind, val = pr.recv(600)
        except (TimeoutError, RuntimeError) as ex:
            kind, val = "error", str(ex)
        if kind == "ready":
            pr.info = val
            if cfg.device == "cuda" and pr.system.kind == "jax":
                pr.system = replace(pr.system, name=f"{pr.system.name} ({val.get('device')})")
            live.append(pr)
        elif kind == "skip":
            rec["skipped"][pr.system.name] = val
            _say(f"  {w.key}: {pr.system.name} skipped ({val})")
            pr.stop()
        else:
            pr.error = val
            _say(f"  {w.key}: {pr.system.name} failed to start: {val}")
            pr.stop()
    _say(f"{w.key} {w.title}: {len(live)} systems ready in {time.perf_counter() - t0:.1f} s")

    raw = {pr.system.name: {"warmup_s": None, "calibration": [], "epochs_per_rep": None,
                            "rep_times_s": [], "rep_cpu_s": []} for pr in procs}

    def ask(pr, *a):
        try:
            return pr.ask(*a)
        except (TimeoutError, RuntimeError, OSError) as ex:
            pr.error = str(ex)
            _say(f"  {w.key}: {pr.system.name} failed: {ex}")
            return None

    for pr in live:                                      # warm-up: JIT, buffers, caches
        t = ask(pr, "run", 1)
        raw[pr.system.name]["warmup_s"] = t and t[0]
    live = [pr for pr in live if pr.error is None]
    for pr in live:         # calibration: E epochs per repetition, about rep_seconds each
        r = raw[pr.system.name]
        if cfg.tiny:
            r["epochs_per_rep"] = 1
            continue
        e = 1
        while True:
            t = ask(pr, "run", e)
            if t is None:
                break
            t = t[0]
            r["calibration"].append([e, t])
            if t >= cfg.rep_seconds / 4 or e >= cfg.max_epochs:
                break
            e = int(min(cfg.max_epochs, e * max(2, min(16, cfg.rep_seconds / 4 / max(t, 1e-9)))))
        if t is not None:
            per = max(t / e, 1e-9)
            r["epochs_per_rep"] = int(min(cfg.max_epochs, max(1, round(cfg.rep_seconds / per))))
    live = [pr for pr in live if pr.error is None]
    for k in range(cfg.reps):                            # round-robin, rotated each time
        order = live[k % len(live):] + live[:k % len(live)] if live else []
        rec["order"].append([pr.system.name for pr in order])
        for pr in order:
            if pr.error is not None:
                continue
            r = raw[pr.system.name]
            t = ask(pr, "run", r["epochs_per_rep"])
            if t is not None:
                r["rep_times_s"].append(t[0])
                r["rep_cpu_s"].append(t[1])
    mems, checks = {}, {}
    for pr in live:
        if pr.error is None:
            mems[pr.system.name] = ask(pr, "memory")
        if pr.error is None:
            checks[pr.system.name] = ask(pr, "check", w.check_epochs)
    for pr in procs:
        pr.stop()

    refs = {}
    for pr in procs:
        s = pr.system
        r = raw[s.name]
        entry = {"kind": s.kind, "device": pr.info.get("device", s.device),
                 "engine": s.engine, "variant": s.variant,
                 "momentum": w.momentum if s.momentum is None else s.momentum,
                 "convention": s.convention if s.kind == "inertia" else
                 {"sklearn": "sklearn", "jax": "optax"}.get(s.kind, "pytorch"),
                 "weight_decay": s.weight_decay, "activations": list(s.acts or w.acts),
                 "note": s.note, "info": pr.info, "error": pr.error, **r}
        if s.name in rec["skipped"]:
            continue
        if r["rep_times_s"] and r["epochs_per_rep"]:
            per_step = [t / r["epochs_per_rep"] / steps for t in r["rep_times_s"]]
            entry["step_s"] = _stats(per_step)
            entry["epoch_s"] = _stats([t * steps_full for t in per_step])
            timed_epoch = entry["step_s"]["median"] * steps
            entry["gemm_flops_per_s"] = gemm_flops(w.sizes, n, w.batch) / timed_epoch
            entry["gemm_share_of_sgemm"] = (entry["gemm_flops_per_s"]
                                            / limits["sgemm"]["flops_per_s_best"])
            tr = transcendentals(w.sizes, s.acts or w.acts, n)
            entry["transcendentals_per_s"] = tr / timed_epoch
            entry["exp_share"] = entry["transcendentals_per_s"] / limits["exp"][
                "elements_per_s_best"]
        mem = mems.get(s.name)
        if mem:
            entry["memory"] = mem
        params = checks.get(s.name)
        if params is not None:
            mu = w.momentum if s.momentum is None else s.momentum
            key = (s.acts or w.acts, mu, s.convention if s.kind == "inertia" else "pytorch",
                   s.weight_decay)
            if key not in refs:
                refs[key] = _reference(w, n, key[0], mu, key[2], key[3], w.check_epochs,
                                       w.check_rows)
            rows = min(w.check_rows, n)
            entry["check"] = {"rows": rows, "epochs": w.check_epochs,
                              "steps": w.check_epochs * len(batches(rows, w.batch)),
                              "max_rel_param_diff": _rel_diff(params, refs[key])}
        rec["systems"][s.name] = entry
    mains = [e["epoch_s"]["median"] for e in rec["systems"].values()
             if e["kind"] == "inertia" and not e["variant"] and "epoch_s" in e]
    best = min(mains) if mains else None
    rec["inertia_best_epoch_s"] = best
    for e in rec["systems"].values():
        e["ratio_to_inertia"] = (e["epoch_s"]["median"] / best
                                 if best and "epoch_s" in e else None)
    return rec


def momentum_cost(results):
    """inertia's epoch time with the workload's momentum over its time with momentum 0."""
    out = {}
    for key in ("W1", "W2"):
        rec = results.get(key)
        if not rec:
            continue
        for name, e in rec["systems"].items():
            if e["kind"] != "inertia" or e["variant"] or "epoch_s" not in e:
                continue
            zero = rec["systems"].get(name + " · momentum 0")
            if zero and "epoch_s" in zero:
                a, b = e["epoch_s"], zero["epoch_s"]
                out.setdefault(key, {})[name] = {
                    "momentum": e["momentum"], "epoch_s": a["median"],
                    "epoch_s_momentum_0": b["median"], "ratio": a["median"] / b["median"],
                    "iqrs_overlap": bool(a["q1"] <= b["q3"] and b["q1"] <= a["q3"])}
    return out


def run_bench(cfg, notes=(), command="inertia bench"):
    """Run the benchmark described by ``cfg``; returns (record, json path, png path)."""
    t_start = time.perf_counter()
    started = datetime.now().astimezone()
    machine = machine_info()
    _say(f"inertia bench: {', '.join(cfg.workloads)} · {cfg.reps} repetitions after a warm-up, "
         f"round-robin · {machine['cpu_model']} ({machine['cores']} cores)")
    for note in notes:
        _say(f"  {note}")
    limits = machine_limits(cfg.limit_n, cfg.limit_reps, cfg.exp_n)
    _say(f"  machine limits: sgemm {cfg.limit_n}^3 "
         f"{limits['sgemm']['flops_per_s_best'] / 1e9:.1f} GFLOP/s, np.exp "
         f"{limits['exp']['elements_per_s_best'] / 1e9:.2f} Gelem/s")
    ctx = _context(cfg)
    results = {}
    for key in cfg.workloads:
        results[key] = run_workload(ctx, cfg, WORKLOADS[key], limits)
    end_limits = machine_limits(cfg.limit_n, cfg.limit_reps, cfg.exp_n)
    for k in ("sgemm", "exp"):          # the peak is the best of both measurements
        limits[k]["times_s"] += end_limits[k]["times_s"]
    sg, ex = limits["sgemm"], limits["exp"]
    sg["flops_per_s_best"] = sg["flops"] / min(sg["times_s"])
    sg["flops_per_s_median"] = sg["flops"] / float(np.median(sg["times_s"]))
    ex["elements_per_s_best"] = ex["n"] / min(ex["times_s"])
    ex["elements_per_s_median"] = ex["n"] / float(np.median(ex["times_s"]))
    for rec in results.values():        # shares against the final peak
        for e in rec["systems"].values():
            if "epoch_s" in e:
                e["gemm_share_of_sgemm"] = e["gemm_flops_per_s"] / sg["flops_per_s_best"]
                e["exp_share"] = e["transcendentals_per_s"] / ex["elements_per_s_best"]
    try:
        machine["load_average_at_end"] = os.getloadavg()
    except OSError:
        machine["load_average_at_end"] = None
    wall = time.perf_counter() - t_start
    record = {
        "schema": SCHEMA,
        "date": started.isoformat(timespec="seconds"),
        "command": command,
        "wall_s": wall,
        "config": {k: v for k, v in asdict(cfg).items() if k != "out"},
        "machine": machine,
        "limits": limits,
        "workloads": results,
        "momentum_cost": momentum_cost(results),
        "notes": list(notes),
        "method": METHOD,
    }
    os.makedirs(cfg.out, exist_ok=True)
    host = "".join(c if c.isalnum() or c in "-_" else "-" for c in machine["host"])[:40]
    stem = os.path.join(cfg.out, f"bench-{started:%Y%m%d-%H%M%S}-{host}")
    json_path = stem + ".json"
    drawable = any("epoch_s" in e and not e["variant"]
                   for rec in results.values() for e in rec["systems"].values())
    png_path = stem + ".png" if cfg.plot and drawable else None
    record["files"] = {"json": os.path.basename(json_path),
                       "png": os.path.basename(png_path) if png_path else None}
    from .serialize import atomic_write

    text = json.dumps(_clean(record), indent=1, allow_nan=False)
    atomic_write(json_path, lambda f: f.write(text.encode() + b"\n"))
    if png_path:
        chart(record, png_path)
    record["wall_s"] = time.perf_counter() - t_start
    return record, json_path, png_path


METHOD = {
    "timing": "time.perf_counter around E epochs inside each system's own process, after a "
              "synchronize where the system is on a GPU; per-step time = rep time / E / "
              "steps, per-epoch time = per-step time x the full epoch's steps (the same as "
              "rep time / E unless --quick times a prefix of the epoch). A warm-up call of one "
              "epoch and a calibration (calls of growing E until one lasts a quarter of "
              "rep_seconds, which sets E so that a repetition lasts about rep_seconds) come "
              "first; then every repetition runs each system once, the order rotated by one "
              "system per repetition. Median and interquartile range over the repetitions. "
              "rep_cpu_s: time.process_time over the same calls (all of the process's threads; "
              "rep_cpu_s / rep_times_s is the average number of busy threads).",
    "memory": "peak RSS growth: VmHWM after warm-up, calibration and the timed repetitions "
              "minus VmRSS just before the system built its model and its copy of the data, "
              "the high-water mark reset there through /proc/self/clear_refs (method "
              "ru_maxrss: the process's lifetime peak minus its peak so far, where the reset "
              "is not allowed). Each system and workload has a fresh process forked from a "
              "server that has imported the libraries; before the reset it trains a 64-row "
              "copy of the problem for one epoch so that thread pools and lazy "
              "initialisation are not counted. On CUDA, gpu_growth_bytes is torch's "
              "max_memory_allocated growth.",
    "gemm_share": "GEMM FLOPs per epoch (per layer and step: forward 2 m in out, backward "
                  "delta 2 m out in except for the first layer, weight gradient 2 m out in) "
                  "divided by the median epoch time, over the best float32 sgemm rate "
                  "(scipy.linalg.blas.sgemm on n x n, n=2048) measured at the start and the "
                  "end of the same run.",
    "exp_share": "sigmoid/tanh/softmax outputs per epoch (one exp-like evaluation each) per "
                 "second, over the best np.exp float32 element rate (1e7 elements, one "
                 "thread) of the same run.",
    "check": "after the timed runs each system retrains from the shared initial weights on "
             "the workload's first check rows; max |p - p_ref| / max |p_ref| over all "
             "parameters against inertia's NumPy engine with the same rule and activations.",
    "same_work": "every system: float32, the same initial weights (inertia's seed-0 "
                 "initialisation), the same rows in the same order (no shuffling), the same "
                 "loss, heavy-ball momentum at a constant learning rate without weight decay "
                 "(PyTorch's b = mu b + g, w -= lr b; optax's trace; scikit-learn's v = mu v - "
                 "lr g, w += v: the same steps). The W1 'neanderthal wd 0.1' row is inertia's "
                 "README run (decoupled decay lr wd / n, biases without momentum): the same "
                 "number of engine calls, a different rule, so it is not a ratio base.",
}


def _clean(x):
    """JSON-safe: NumPy scalars to Python, non-finite floats to None, tuples to lists."""
    if isinstance(x, dict):
        return {str(k): _clean(v) for k, v in x.items()}
    if isinstance(x, (list, tuple)):
        return [_clean(v) for v in x]
    if isinstance(x, (np.floating, float)):
        x = float(x)
        return x if math.isfinite(x) else None
    if isinstance(x, np.integer):
        return int(x)
    if isinstance(x, np.bool_):
        return bool(x)
    return x


# ------------------------------------------------------------------------------- report
def _num(x, digits=4):
    """``digits`` significant digits, never in exponent form above 1e-3."""
    if x is None or not math.isfinite(x):
        return "—"
    if abs(x) >= 10 ** (digits - 1):
        return f"{x:,.0f}"
    return f"{x:.{digits}g}" if abs(x) >= 1e-3 else f"{x:.2g}"


def _pct(x):
    if x is None:
        return "—"
    x *= 100
    return f"{x:.1f}" if x >= 0.1 else f"{x:.2f}" if x >= 0.01 else "<0.01"


def table(record):
    """The report as text lines."""
    lines = []
    m, lim = record["machine"], record["limits"]
    cfg = record["config"]
    lines.append(f"inertia bench · {record['date']} · {m['host']} · {m['cpu_model']} "
                 f"({m['cores']} cores)")
    v = m["versions"]
    lines.append("  " + ", ".join(f"{k} {v[k]}" for k in ("numpy", "scipy", "torch", "jax",
                                                          "optax", "scikit-learn") if v.get(k)))
    lines.append(f"  machine limits: sgemm {lim['sgemm']['n']}^3 float32 "
                 f"{lim['sgemm']['flops_per_s_best'] / 1e9:.1f} GFLOP/s best "
                 f"({lim['sgemm']['flops_per_s_median'] / 1e9:.1f} median); np.exp float32 "
                 f"{lim['exp']['elements_per_s_best'] / 1e9:.2f} Gelem/s best, one thread")
    lines.append(f"  {cfg['reps']} repetition(s) per system after a warm-up and a calibration, "
                 "round-robin, medians with the interquartile range"
                 + (" (--quick)" if cfg["quick"] else "") + (" (--tiny: numbers mean nothing)"
                                                             if cfg["tiny"] else ""))
    for note in record["notes"]:
        lines.append(f"  {note}")
    loads = [m.get("load_average_at_start"), m.get("load_average_at_end")]
    busy = max((x[0] for x in loads if x), default=0.0)
    if busy > 0.5 * (m.get("cores_usable") or m["cores"] or 1):
        lines.append(f"  warning: the machine was busy (1-minute load average up to {busy:.1f} "
                     f"on {m['cores']} cores): other processes took CPU time; multi-threaded "
                     "BLAS and OpenMP suffer most")
    head = (f"  {'system':<42}{'ms/epoch':>10}{'IQR':>8}{'µs/step':>10}{'×inertia':>9}"
            f"{'RSS+MiB':>9}{'GEMM%':>7}{'exp%':>7}{'check':>9}")
    for key, rec in record["workloads"].items():
        lines.append("")
        lines.append(rec["description"])
        lines.append(head)
        for name, e in rec["systems"].items():
            if "epoch_s" not in e:
                lines.append(f"  {name:<42}failed: {e.get('error') or 'no timing'}")
                continue
            st, step = e["epoch_s"], e["step_s"]
            mem = e.get("memory", {})
            rss = mem.get("rss_growth_bytes")
            rss = "—" if rss is None else f"{rss / 2**20:.1f}"
            if "gpu_growth_bytes" in mem:
                rss += f"/{mem['gpu_growth_bytes'] / 2**20:.0f}g"
            chk = e.get("check", {}).get("max_rel_param_diff")
            chk = "—" if chk is None else ("0" if chk == 0 else f"{chk:.0e}")
            lines.append(f"  {name:<42}{_num(st['median'] * 1e3):>10}"
                         f"{_num(st['iqr'] * 1e3, 3):>8}{_num(step['median'] * 1e6):>10}"
                         f"{_num(e['ratio_to_inertia'], 3):>9}{rss:>9}"
                         f"{_pct(e['gemm_share_of_sgemm']):>7}{_pct(e['exp_share']):>7}"
                         f"{chk:>9}")
        for name, why in rec["skipped"].items():
            lines.append(f"  {name:<42}skipped: {why}")
        notes = {}
        for name, e in rec["systems"].items():
            if e.get("note"):
                notes.setdefault(e["note"], []).append(name)
        for note, names in notes.items():
            lines.append(f"    note · {', '.join(names)}: {note}")
        if key in ("W4", "W5"):
            for name, e in rec["systems"].items():
                if e["kind"] == "inertia" and not e["variant"] and "epoch_s" in e:
                    lines.append(f"  {name} on {key}: {e['gemm_flops_per_s'] / 1e9:.1f} GFLOP/s "
                                 f"in its 3 gemms per layer per step = "
                                 f"{100 * e['gemm_share_of_sgemm']:.0f}% of the measured "
                                 "sgemm peak")
    mc = record["momentum_cost"]
    if mc:
        lines.append("")
        parts = []
        for key, d in mc.items():
            for name, c in d.items():
                parts.append(f"{key} {name}: {c['ratio']:.3f}× "
                             f"({_num(c['epoch_s'] * 1e3)} vs {_num(c['epoch_s_momentum_0'] * 1e3)}"
                             " ms/epoch" + ("; the IQRs overlap" if c["iqrs_overlap"] else "")
                             + ")")
        lines.append("momentum's cost (epoch time with momentum / with momentum 0): "
                     + "; ".join(parts))
    lines.append("")
    lines.append("×inertia: median time / inertia's fastest engine (> 1: slower). RSS+MiB: "
                 "peak resident-set growth of the system's own process (g: GPU MiB). GEMM%: "
                 "the network's gemm FLOP/s over the sgemm peak. exp%: sigmoid/tanh/softmax "
                 "outputs per second over the np.exp rate. check: max relative parameter "
                 "difference to inertia numpy after a few steps from the same weights.")
    return lines


SYSTEM_COLORS = {"inertia numpy": "#d62728", "inertia torch": "#ff7f0e",
                 "torch": "#1f77b4", "jax": "#2ca02c", "sklearn": "#9467bd",
                 "numpy-loop": "#7f7f7f"}


def _color(name, e, k):
    from . import plots

    if e["kind"] == "inertia":
        return SYSTEM_COLORS.get(f"inertia {e['engine']}", plots.CYCLE[(k + 3) % 10])
    return SYSTEM_COLORS.get(e["kind"], plots.CYCLE[k % 10])


def chart(record, path):
    """Grouped bars: median time per epoch (log scale) per workload and system, IQR
    whiskers."""
    from . import plots

    wls = [rec for rec in record["workloads"].values()
           if any("epoch_s" in e and not e["variant"] for e in rec["systems"].values())]
    names = []
    for rec in wls:
        for name, e in rec["systems"].items():
            if "epoch_s" in e and not e["variant"] and name not in names:
                names.append(name)
    fig, ax = plots.new_figure(figsize=(max(8.0, 1.6 + 1.5 * len(wls)), 5.4))
    width = 0.8 / max(1, len(names))
    colors = {}
    top, bottom = 0.0, math.inf
    for gi, rec in enumerate(wls):
        for k, name in enumerate(names):
            e = rec["systems"].get(name)
            if not e or "epoch_s" not in e:
                continue
            colors.setdefault(name, _color(name, e, k))
            st = e["epoch_s"]
            x = gi - 0.4 + width * (k + 0.5)
            med = st["median"] * 1e3
            ax.bar(x, med, width * 0.92, color=colors[name],
                   label=name if name not in ax.get_legend_handles_labels()[1] else None)
            ax.errorbar(x, med, yerr=[[med - st["q1"] * 1e3], [st["q3"] * 1e3 - med]],
                        fmt="none", ecolor="black", elinewidth=0.8, capsize=2)
            top = max(top, st["q3"] * 1e3)
            bottom = min(bottom, st["q1"] * 1e3)
            if e.get("ratio_to_inertia") and e["ratio_to_inertia"] != 1.0:
                ratio = e["ratio_to_inertia"]
                text = f"{ratio:.0f}×" if ratio >= 10 else f"{ratio:#.2g}×"
                ax.annotate(text, (x, st["q3"] * 1e3),
                            xytext=(0, 2), textcoords="offset points", ha="center",
                            va="bottom", fontsize=7, rotation=90)
    ax.set_yscale("log")
    ax.set_xticks(range(len(wls)))
    ax.set_xticklabels([f"{rec['key']} {rec['title']}\n"
                        f"{'-'.join(str(s) for s in rec['sizes'])}, "
                        + ("full batch" if rec["batch_size"] is None
                           else f"batch {rec['batch_size']}")
                        for rec in wls], fontsize=9)
    ax.set_ylabel("median time per epoch (ms, log scale)", fontsize=11)
    m = record["machine"]
    ax.set_title(f"inertia bench: time per epoch, lower is better\n{m['cpu_model']}, "
                 f"{m['cores']} cores, {record['date'][:10]}; whiskers: IQR of "
                 f"{record['config']['reps']} reps; labels: time / inertia's fastest engine",
                 fontsize=11)
    ax.grid(True, axis="y", which="major", alpha=0.3)
    if top > 0:                                     # room for the ratio labels
        ax.set_ylim(bottom / 2, top * 4)
    fig.legend(fontsize=9, loc="outside lower center", ncols=min(4, len(names)),
               frameon=False)
    return plots.save(fig, path)


# ---------------------------------------------------------------------------------- CLI
def add_arguments(p):
    """The ``inertia bench`` options, on an argparse (sub)parser."""
    p.add_argument("--quick", action="store_true",
                   help="3 repetitions of about 0.1 s each, W2 timed on a 64-step prefix of "
                        "its epoch: a minute or two on an idle 2-core machine")
    p.add_argument("--tiny", action="store_true",
                   help="a smoke test on reduced data, one repetition: checks the harness, "
                        "its numbers mean nothing")
    p.add_argument("--workloads", default=None,
                   help="comma list from W1,W2,W3,W4,W5 (default W1-W4; W5 with --device cuda)")
    p.add_argument("--engines", default=None,
                   help="inertia engines to time (default: every installed one)")
    p.add_argument("--peers", default=None,
                   help=f"comma list from {','.join(PEERS)}, or none (default: all installed)")
    p.add_argument("--reps", type=int, default=None,
                   help="timed repetitions per system (default 7; --quick 3)")
    p.add_argument("--device", choices=["cpu", "cuda"], default="cpu",
                   help="cuda: inertia's torch engine and PyTorch eager on the GPU, plus W5")
    p.add_argument("--out", default=DEFAULT_OUT,
                   help=f"folder for the JSON and the chart (default {DEFAULT_OUT})")
    p.add_argument("--no-plot", action="store_true", help="write no chart")
    return p


def run(args) -> int:
    """Run ``inertia bench`` from parsed arguments; a bad argument is a ValueError."""
    cfg, notes = configure(args)
    command = "inertia " + " ".join(getattr(args, "argv", None) or ["bench"])
    record, json_path, png_path = run_bench(cfg, notes, command.strip())
    print("\n".join(table(record)))
    print()
    print(f"wrote {json_path}" + (f" and {png_path}" if png_path else "")
          + f" in {record['wall_s']:.0f} s")
    return 0


def main(argv=None):
    """``inertia bench ARGS`` from Python (benchmarks/run.py): the command line's own entry,
    with its one-line errors."""
    from .cli import main as cli_main

    argv = sys.argv[1:] if argv is None else list(argv)
    return cli_main(["bench", *argv])


if __name__ == "__main__":
    raise SystemExit(main())
