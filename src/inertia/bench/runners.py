"""The systems a workload is timed on, and one runner per system.

Every runner trains the same network from the same initial weights (inertia's seed-0
initialisation, ``initial_params``) on the same rows in the same order, with heavy-ball momentum
at a constant learning rate, in float32: inertia on each engine (its compiled loop and, as a
variant, one engine call a primitive), PyTorch eager, JAX + optax jit, scikit-learn's MLP and a
plain NumPy loop. ``reference_params`` and ``max_rel_param_diff`` check that they did.

Parameters cross between runners in inertia's layout: a list of (W (out, in), b (out,)) pairs,
one per layer.
"""

from __future__ import annotations

import re
import time
import warnings
from dataclasses import dataclass, replace

import numpy as np

from .workloads import batches, make_data


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

GPU_ONLY = "CPU only: the GPU workload runs the GPU systems"


# --------------------------------------------------------------------------------- plan
def plan(w, engines, peers, device):
    """The systems of workload ``w`` (a list of System, inertia's first), and {name: why
    skipped}."""
    systems, skipped = inertia_systems(w, engines, device)
    peer_list, peer_skipped = peer_systems(w, peers, device)
    return systems + peer_list, {**skipped, **peer_skipped}


def inertia_systems(w, engines, device):
    """inertia on each engine, then each engine's variants: momentum 0 (W1, W2), engine calls
    instead of the compiled loop (NumPy engine, networks the loop takes) and the README's
    neanderthal run (W1). Returns (systems, {name: why skipped})."""
    from ..fused import MAX_WIDTH

    out, skipped = [], {}
    on_gpu = device == "cuda"
    for e in engines:
        dev = "cpu" if e == "numpy" else device
        label = f"inertia {e}" + (f" ({dev})" if on_gpu else "")
        if w.gpu and on_gpu and dev != "cuda":
            skipped[label] = GPU_ONLY
            continue
        out.append(System(label, "inertia", dev, engine=e))
    for e in engines:
        base = next((s for s in out if s.engine == e and not s.variant), None)
        if base is None:
            continue
        if w.key in ("W1", "W2"):
            out.append(replace(base, name=base.name + " · momentum 0", momentum=0.0,
                               variant=True))
        if e == "numpy" and max(w.sizes) <= MAX_WIDTH:
            out.append(replace(base, name=base.name + " · engine calls", compiled=False,
                               variant=True,
                               note="fit(compiled=False): one engine call a primitive, "
                                    "BLAS gemms, instead of the compiled loop"))
        if w.key == "W1":
            out.append(replace(base, name=base.name + " · neanderthal wd 0.1",
                               convention="neanderthal", weight_decay=0.1, variant=True,
                               note="the README's run: neanderthal convention, decoupled "
                                    "decay lr wd / n on weights, biases without momentum"))
    return out, skipped


def peer_systems(w, peers, device):
    """One System per peer (PEERS keys) for workload ``w``, and {name: why skipped}.
    scikit-learn's MLP has one hidden activation: it runs the first hidden one in every
    hidden layer, and says so in its note."""
    out, skipped = [], {}
    on_gpu = device == "cuda"
    for p in peers:
        label = PEERS[p][0]
        dev = device if p in ("torch", "jax") else "cpu"
        if on_gpu and p != "jax":          # jax: named after the device it finds
            label += f" ({dev})"
        if w.gpu and on_gpu and dev != "cuda":
            skipped[label] = GPU_ONLY
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
    """The shared initial weights: inertia's Glorot/He initialisation from seed 0 for the
    network of ``w`` with activations ``acts`` (default ``w.acts``), as a list of
    (W float32 (out, in), b float32 (out,)) pairs."""
    from ..network import Dense, Network

    acts = acts or w.acts
    net = Network(w.sizes[0], [Dense(u, a) for u, a in zip(w.sizes[1:], acts)], seed=0,
                  dtype="float32", engine="numpy")
    return net.parameters()


# ------------------------------------------------------------------------------- runners
class Runner:
    """Trains one system of one workload on X (n, in) float32 and y (the workload's targets,
    see ``make_data``) from ``init`` ((W (out, in), b (out,)) pairs, copied or converted,
    never written). ``train(E)`` runs E epochs; ``params()`` returns (W, b) pairs in
    inertia's layout as new float64 NumPy arrays."""

    def __init__(self, system, w, X, y, init):
        self.s, self.w = system, w
        self.acts = system.acts or w.acts
        self.mu = w.momentum if system.momentum is None else system.momentum
        self.n = X.shape[0]
        self.batch = None if w.batch is None else min(w.batch, self.n)
        self.device = system.device

    def sync(self):
        """Wait for the device's queued work (nothing on a CPU)."""

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
        """What the JSON records of this runner's library and device."""
        return {"device": self.device}


class InertiaRunner(Runner):
    """``inertia.fit`` on a Network of the system's engine and device, SGD in the system's
    convention, no shuffling, the system's ``compiled``."""

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

        self.torch = torch
        dev = torch.device(system.device)
        self.model, self.linears = self._model(init)
        self.model = self.model.to(dev)
        self.lossf = self._loss()
        self.X = torch.from_numpy(X).to(dev)
        self.y = torch.from_numpy(y).to(dev)
        self.opt = torch.optim.SGD(self.model.parameters(), lr=w.lr, momentum=self.mu)
        self.slices = batches(self.n, self.batch)
        self.last_loss = None

    def _model(self, init):
        """(nn.Sequential on the CPU, its nn.Linear layers) holding copies of ``init``; the
        output activation is left to the loss where the loss takes logits (bce,
        cross-entropy)."""
        torch, nn = self.torch, self.torch.nn
        acts = {"sigmoid": nn.Sigmoid, "tanh": nn.Tanh, "relu": nn.ReLU}
        mods, linears = [], []
        last = len(self.acts) - 1
        for i, ((W, b), a) in enumerate(zip(init, self.acts)):
            lin = nn.Linear(W.shape[1], W.shape[0])
            with torch.no_grad():
                lin.weight.copy_(torch.from_numpy(np.ascontiguousarray(W)))
                lin.bias.copy_(torch.from_numpy(np.ascontiguousarray(b)))
            mods.append(lin)
            linears.append(lin)
            if a in acts and not (i == last and self.w.loss in ("bce", "cross_entropy")):
                mods.append(acts[a]())
        return nn.Sequential(*mods), linears

    def _loss(self):
        """The workload's loss as torch computes it: (output, target) -> scalar tensor."""
        nn = self.torch.nn
        if self.w.loss == "quadratic":          # sum (a - y)^2 / (2n) = MSELoss * k / 2
            k = self.w.sizes[-1]
            mse = nn.MSELoss()
            return lambda out, t: mse(out, t) * (k / 2)
        if self.w.loss == "bce":
            return nn.BCEWithLogitsLoss()
        return nn.CrossEntropyLoss()

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
        import optax

        self.jax = jax
        dev = jax.devices("cpu")[0]
        if system.device == "cuda":
            try:
                dev = jax.devices("gpu")[0]
            except RuntimeError:
                pass
        self.device = "cuda" if dev.platform == "gpu" else "cpu"
        self.dev = dev
        tx = optax.sgd(w.lr, momentum=self.mu)
        step = self._step(tx)
        self.params_ = [(self._put(W), self._put(b)) for W, b in init]
        self.state = tx.init(self.params_)
        self.epoch, self.args = self._jit_epoch(step, X, y)
        self.last_loss = None

    def _put(self, a):
        return self.jax.device_put(a, self.dev)

    def _loss(self):
        """The workload's loss as a function (params, x (m, in), t) -> scalar of the
        network's forward pass; bce and cross-entropy take the logits."""
        import jax
        import jax.numpy as jnp
        import optax

        acts = {"sigmoid": jax.nn.sigmoid, "tanh": jnp.tanh, "relu": jax.nn.relu,
                "linear": lambda z: z}
        hidden = [acts[a] for a in self.acts[:-1]]
        out_act = acts.get(self.acts[-1])
        loss_name = self.w.loss

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

        return lossf

    def _step(self, tx):
        """One optax step as a lax.scan body: ((params, state), (x, t)) -> ((params, state),
        loss value)."""
        jax = self.jax
        import optax

        lossf = self._loss()

        def step(carry, xt):
            params, state = carry
            value, g = jax.value_and_grad(lossf)(params, *xt)
            upd, state = tx.update(g, state, params)
            return (optax.apply_updates(params, upd), state), value

        return step

    def _jit_epoch(self, step, X, y):
        """(jitted epoch (params, state, *args) -> ((params, state), mean loss), its args on
        the device): one step on (X, y) for full batch; else the full batches stacked
        (nb, bs, ...) for lax.scan and the remainder rows."""
        jax, put = self.jax, self._put
        n, bs = self.n, self.batch
        if bs is None or bs >= n:
            return jax.jit(lambda p, s, x, t: step((p, s), (x, t))), (put(X), put(y))
        nb = n // bs
        rem = n - nb * bs
        Xb = put(X[:nb * bs].reshape((nb, bs) + X.shape[1:]))
        yb = put(y[:nb * bs].reshape((nb, bs) + y.shape[1:]))
        Xr, yr = put(X[nb * bs:]), put(y[nb * bs:])

        def epoch(p, s, Xb, yb, Xr, yr):
            (p, s), values = jax.lax.scan(step, (p, s), (Xb, yb))
            total = values.sum()
            if rem:
                (p, s), v = step((p, s), (Xr, yr))
                total = total + v
            return (p, s), total / (nb + (1 if rem else 0))

        return jax.jit(epoch), (Xb, yb, Xr, yr)

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


# ------------------------------------------------------------------- the plain NumPy loop
def _identity(z):
    return z


# The peer is the loop a user writes: the classic activations as plain allocating NumPy
# expressions. The records' NumPy forms (in place, with scratch arrays) cost a call and an
# allocation more per use, a tenth of a small batch's step, so they serve only the
# activations a user would not write out (the others below).
PLAIN = {
    "sigmoid": (lambda z: 1 / (1 + np.exp(-z)), lambda a, z: a * (1 - a)),
    "tanh": (np.tanh, lambda a, z: 1 - a * a),
    "relu": (lambda z: np.maximum(z, 0), lambda a, z: (a > 0).astype(a.dtype)),
}


def numpy_activation(name):
    """The NumPy loop's activation ``name`` as (forward, derivative): forward(z) returns a new
    array a = f(z) of z's shape; derivative(a, z) returns a new array f'(z), from the output
    a or the pre-activation z; derivative is None where f' = 1 (linear; softmax, whose work
    the cross-entropy loss does from the logits). ``PLAIN`` where it has the activation,
    else the record's NumPy forms (``inertia.ops.activations``) on copies."""
    from ..ops import activations

    act = activations.get(name)
    if act.rec.identity or act.rec.rowwise:
        return _identity, None
    if act.spec in PLAIN:
        return PLAIN[act.spec]
    return ((lambda z: activations.forward(name, z)),
            (lambda a, z: activations.derivative(name, a, z)))


class NumpyLoopRunner(Runner):
    """A plain NumPy loop: forward with @, backward with fresh arrays, PyTorch's momentum
    (b = mu b + g; w -= lr b). Cross-entropy targets become one-hot float32 (n, k)."""

    def __init__(self, system, w, X, y, init):
        super().__init__(system, w, X, y, init)
        self.W = [np.array(W, dtype=np.float32) for W, _ in init]
        self.b = [np.array(b, dtype=np.float32) for _, b in init]
        self.vW = [np.zeros_like(W) for W in self.W]
        self.vb = [np.zeros_like(b) for b in self.b]
        self.forward_fns, self.derivative_fns = zip(*(numpy_activation(a) for a in self.acts))
        self.X = X
        if w.loss == "cross_entropy":
            Y = np.zeros((self.n, w.sizes[-1]), dtype=np.float32)
            Y[np.arange(self.n), y] = 1
            self.y = Y
        else:
            self.y = y
        self.slices = batches(self.n, self.batch)
        self.last_loss = None

    def loss_and_delta(self, z, t):
        """(loss value, dL/dz (m, k) a new array) of the output logits z (m, k) against the
        targets t (m, k): quadratic through the output activation, bce and cross-entropy from
        the logits."""
        m, k = z.shape
        loss = self.w.loss
        if loss == "quadratic":
            out = self.forward_fns[-1](z)
            diff = out - t
            value = float((diff * diff).sum()) / (2 * m)
            delta = diff / m
            deriv = self.derivative_fns[-1]
            if deriv is not None:
                delta = delta * deriv(out, z)
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
        return value, delta

    def step(self, x, t):
        """One training step on the rows x (m, in) with targets t; returns the loss."""
        L = len(self.W)
        acts = [x]
        zs = []
        a = x
        for i in range(L - 1):
            zs.append(a @ self.W[i].T + self.b[i])
            a = self.forward_fns[i](zs[-1])
            acts.append(a)
        z = a @ self.W[-1].T + self.b[-1]
        value, delta = self.loss_and_delta(z, t)
        for i in range(L - 1, -1, -1):
            gW = delta.T @ acts[i]
            gb = delta.sum(axis=0)
            if i > 0:                                   # before W[i] changes
                delta = (delta @ self.W[i]) * self.derivative_fns[i - 1](acts[i], zs[i - 1])
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


# ------------------------------------------------------------------------------- checks
def max_rel_param_diff(params, ref):
    """max |p - p_ref| / max |p_ref| over all parameters of two lists of (W, b) pairs (the
    largest reference parameter, 1 where all are 0); None where their shapes differ."""
    scale = max(float(np.max(np.abs(W))) for pair in ref for W in pair) or 1.0
    worst = 0.0
    for (W, b), (RW, Rb) in zip(params, ref):
        if np.shape(W) != np.shape(RW) or np.shape(b) != np.shape(Rb):
            return None
        worst = max(worst, float(np.max(np.abs(W - RW))), float(np.max(np.abs(b - Rb))))
    return worst / scale


def reference_params(w, n, acts, momentum, convention, weight_decay, epochs, rows):
    """inertia's NumPy engine trained for ``epochs`` from the shared weights on the first
    ``rows`` of the workload's ``n`` rows: float64 (W, b) pairs."""
    system = System("reference", "inertia", "cpu", engine="numpy", momentum=momentum,
                    convention=convention, weight_decay=weight_decay, acts=acts)
    X, y = make_data(w, n)
    rows = min(rows, X.shape[0])
    r = InertiaRunner(system, w, X[:rows], y[:rows], initial_params(w, acts))
    r.train(epochs)
    return r.params()
