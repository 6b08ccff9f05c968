"""Dense layers and the Network: buffers allocated once, explicit forward and backward passes.

Layout: rows are samples. A layer with ``units`` outputs holds W (units, n_in) and b (units,),
as ``torch.nn.Linear`` stores them, and computes z = a_prev @ W.T + b, a = f(z).
"""

from __future__ import annotations

import sys
from dataclasses import dataclass

import numpy as np

from . import engines
from .ops import losses
from .data import check_memory, check_seed
from .ops import activations


def check_network(net, what):
    """A one-line ValueError unless ``net`` is an ``inertia.Network`` (``what``: the call)."""
    if not isinstance(net, Network):
        raise ValueError(f"{what} trains an inertia.Network (e.g. Network(4, [Dense(8, "
                         f"'tanh'), Dense(1)])), got {type(net).__name__}")


def all_finite(a, block=1 << 16):
    """Whether every element of ``a`` is finite, checked in blocks of rows so that the
    temporary stays small (np.isfinite on the whole array makes a copy of its size)."""
    a = np.asarray(a)
    if a.ndim == 0 or a.size <= block:
        return bool(np.all(np.isfinite(a)))
    rows = max(1, block // max(1, a[0].size))
    return all(bool(np.all(np.isfinite(a[i:i + rows]))) for i in range(0, a.shape[0], rows))


@dataclass(frozen=True, init=False)
class Dense:
    """A fully-connected layer: ``units`` outputs and an activation (``inertia.ops.activations``):
    linear, sigmoid, tanh, relu, leaky_relu, elu, gelu, silu, softplus, or softmax (only as the
    output layer, with cross-entropy). Parameters by keyword or in the string:
    ``Dense(64, "leaky_relu", negative_slope=0.2)`` == ``Dense(64, "leaky_relu:0.2")``;
    ``activation`` holds the canonical spelling (``"leaky_relu:negative_slope=0.2"``)."""

    units: int
    activation: str = "linear"

    def __init__(self, units, activation="linear", **params):
        if not isinstance(units, (int, np.integer)) or isinstance(units, bool) or units < 1:
            raise ValueError(f"Dense units must be a positive integer, got {units!r}")
        object.__setattr__(self, "units", units)
        object.__setattr__(self, "activation", activations.get(activation, **params).spec)


class UnsupportedNetwork(ValueError):
    """Layers that inertia does not build: a softmax before the output layer, or of one unit
    (``load`` names it as such, not as a damaged file)."""


class Views(list):
    """``net.W`` / ``net.b``: the layers' live views into ``net.flat``, the parameters that
    training updates. Read them, or write into them in place (``net.W[i][...] = value``);
    replacing an entry (``net.W[i] = value``) would detach it, so it is refused."""

    def __init__(self, name, items):
        super().__init__(items)
        self.name = name

    def _refuse(self, *args, **kwargs):
        raise TypeError(f"net.{self.name}[i] = ... (or adding, removing an entry) would detach "
                        f"it from the parameters training updates: use net.set_parameters(...) "
                        f"or assign in place (net.{self.name}[i][...] = value)")

    def __reduce__(self):                     # copy and pickle without append
        return Views, (self.name, list(self))

    def __setitem__(self, i, value):
        # net.W[i] -= x updates the array in place, then stores the same object back
        if not (isinstance(i, (int, np.integer)) and super().__getitem__(i) is value):
            self._refuse()

    __delitem__ = __iadd__ = __imul__ = _refuse
    append = extend = insert = pop = remove = clear = sort = reverse = _refuse


def _refuse_sparse(X, name):
    sparse = sys.modules.get("scipy.sparse")      # no scipy.sparse imported: X is not one
    if sparse is not None and sparse.issparse(X):
        raise ValueError(f"{name} is a {type(X).__name__}: sparse input is not supported: "
                         f"convert with .toarray()")


class _Buffers:
    """Everything one batch size needs, allocated once. Hidden layer i: z[i] receives the
    pre-activation and becomes a[i] in place, unless its derivative needs z (the record's
    ``which``): then a[i] is a buffer of its own and pre[i] is z[i] (else pre[i] is None).
    w (n, 1): the batch's sample weights, filled by the caller when it trains with weights
    (``train_step_(..., weighted=True)``); evaluation never reads it."""

    def __init__(self, e, sizes, n, keeps_input):
        self.n = n
        self.x = e.empty((n, sizes[0]))
        self.y = e.empty((n, sizes[-1]))
        self.w = e.empty((n, 1))
        self.z = [e.empty((n, s)) for s in sizes[1:]]
        self.a_out = e.empty((n, sizes[-1]))                  # output: z and a both kept
        self.d = [e.empty((n, s)) for s in sizes[1:]]
        hidden = range(len(sizes) - 2)
        self.pre = [self.z[i] if keeps_input[i] else None for i in hidden] + [self.z[-1]]
        self.a = [e.empty(self.z[i].shape) if keeps_input[i] else self.z[i]
                  for i in hidden] + [self.a_out]


class Scaling:
    """How a model's data were standardized in training, applied by ``Network.predict``.

    mean, std       (n_inputs,) float64: inputs are standardized as (X - mean) / std
    y_mean, y_std   (n_outputs,) float64 or None: the network's outputs are scaled back to
                    the target's units as out * y_std + y_mean (regression only)

    ``inertia.load`` sets ``network.scaling`` from the model file's ``extra`` record (the
    CLI's ``--standardize`` writes ``mean``, ``std`` and, for a regression target,
    ``y_mean``, ``y_std`` there); ``Scaling.from_extra`` does the same for any dict.
    """

    def __init__(self, mean, std, y_mean=None, y_std=None):
        self.mean, self.std = mean, std
        self.y_mean, self.y_std = y_mean, y_std

    @classmethod
    def from_extra(cls, extra, n_inputs, n_outputs):
        """The Scaling an ``extra`` record describes (None when it has none), or a one-line
        ValueError naming the malformed entry."""
        got = {}
        for key, n in (("mean", n_inputs), ("std", n_inputs), ("y_mean", n_outputs),
                       ("y_std", n_outputs)):
            if extra.get(key) is None:
                got[key] = None
                continue
            try:
                a = np.array(extra[key], dtype=np.float64)
            except (TypeError, ValueError):
                raise ValueError(f"its {key} record is not a list of numbers") from None
            if a.shape != (n,) or not np.all(np.isfinite(a)) or \
                    key.endswith("std") and not np.all(a > 0):
                raise ValueError(f"its {key} record is not {n} finite numbers"
                                 + (" above 0" if key.endswith("std") else ""))
            got[key] = a
        if (got["mean"] is None) != (got["std"] is None) or \
                (got["y_mean"] is None) != (got["y_std"] is None):
            raise ValueError("its scaling record has a mean without a std or the reverse")
        if got["mean"] is None and got["y_mean"] is None:
            return None
        return cls(**got)

    def predict(self, net, X):
        """The outputs for X (n, n_inputs) in the original units: a new (n, n_outputs) array."""
        if self.mean is not None:
            X = (np.asarray(X, dtype=np.float64) - self.mean) / self.std
        out = net.predict(X, raw=True)
        if self.y_mean is not None:
            out = np.asarray(out, dtype=np.float64) * self.y_std + self.y_mean
        return out


def parameter_count(sizes):
    """Weights and biases of dense layers of ``sizes`` (inputs first)."""
    return sum(o * i + o for i, o in zip(sizes, sizes[1:]))


def _length(x):
    try:
        return f"of length {len(x)}"
    except TypeError:
        return "(not a pair)"


class Network:
    """A fully-connected network.

    ``Network(n_inputs, [Dense(32, "sigmoid"), ..., Dense(1, "linear")], seed=0,
    dtype="float32", engine="numpy")``

    Weights follow the activation record's init rule (He-normal for relu and its smooth
    relatives leaky_relu, elu, gelu, silu, softplus; Glorot-uniform otherwise) from ``seed``,
    drawn in float64 on the host so that every engine and dtype starts from the same numbers;
    biases start at 0.
    ``device`` picks the device of engines that have several ("cpu", "cuda").
    """

    def __init__(self, n_inputs, layers, seed=0, dtype="float32", engine="numpy", device=None):
        if not isinstance(n_inputs, (int, np.integer)) or isinstance(n_inputs, bool) \
                or n_inputs < 1:
            raise ValueError(f"n_inputs must be a positive integer, got {n_inputs!r}")
        layers = list(layers)
        if not layers:
            raise ValueError("a network needs at least one Dense layer")
        for i, layer in enumerate(layers):
            if not isinstance(layer, Dense):
                raise ValueError(f"layer {i} is {layer!r}: pass inertia.Dense(units, activation)")
            if activations.get(layer.activation).rec.rowwise and i != len(layers) - 1:
                raise UnsupportedNetwork(
                    f"softmax is only allowed on the output layer (layer {i} of {len(layers)}): "
                    "use tanh, sigmoid or relu for hidden layers")
        if activations.get(layers[-1].activation).rec.rowwise and layers[-1].units == 1:
            raise UnsupportedNetwork(
                "a softmax of one unit always outputs 1 (cross-entropy stays 0): for two "
                "classes use Dense(1, 'sigmoid') with loss 'bce'")
        check_seed(seed)
        self.e = engines.get(engine, dtype, device=device)
        self.dtype = self.e.dtype
        self.engine = self.e.name
        self.layers = layers
        self.sizes = [int(n_inputs)] + [int(layer.units) for layer in layers]
        self.seed = seed
        self.acts = [layer.activation for layer in layers]
        self._keeps_input = [activations.get(a).keeps_input for a in self.acts]
        rng = np.random.default_rng(seed)
        # every parameter lives in one flat array, layer by layer (W row-major, then b): the
        # compiled training loop reads them as one buffer; W and b are views into it
        n_params = parameter_count(self.sizes)
        check_memory(n_params * self.dtype.itemsize, f"the network's {n_params:,} parameters")
        self.flat = self.e.zeros((n_params,))
        W, b = [], []
        off = 0
        for n_in, layer in zip(self.sizes[:-1], layers):
            if activations.get(layer.activation).rec.init == "he_normal":
                w = rng.normal(0.0, np.sqrt(2.0 / n_in), (layer.units, n_in))
            else:
                lim = np.sqrt(6.0 / (n_in + layer.units))
                w = rng.uniform(-lim, lim, (layer.units, n_in))
            size = layer.units * n_in
            W.append(self.e.copy(self.e.from_host(w),
                                 self.flat[off:off + size].reshape(layer.units, n_in)))
            off += size
            b.append(self.flat[off:off + layer.units])
            off += layer.units
        self.W, self.b = Views("W", W), Views("b", b)
        self._bufs: dict[int, _Buffers] = {}
        self._gbufs = None
        self.scaling = None

    def __repr__(self):
        ls = ", ".join(f"Dense({layer.units}, {layer.activation!r})" for layer in self.layers)
        return (f"Network({self.n_inputs}, [{ls}], dtype={self.dtype.name!r}, "
                f"engine={self.engine!r})")

    @property
    def n_inputs(self):
        return self.sizes[0]

    @property
    def n_outputs(self):
        return self.sizes[-1]

    @property
    def output_activation(self):
        return self.acts[-1]

    def params(self):
        """The engine arrays [W0, b0, W1, b1, ...] (live, not copies)."""
        return [x for wb in zip(self.W, self.b) for x in wb]

    # parameters ----------------------------------------------------------------
    def parameters(self):
        """A list of (W, b) NumPy copies: W (out, in), b (out,)."""
        return [(self.e.to_host(w), self.e.to_host(b)) for w, b in zip(self.W, self.b)]

    def set_parameters(self, params):
        """Set the weights from a list of (W, b) pairs shaped as ``parameters()`` returns."""
        try:
            params = list(params)
        except TypeError:
            raise TypeError(f"set_parameters takes a list of (W, b) pairs, one per layer (as "
                            f"parameters() returns), got {type(params).__name__}") from None
        if len(params) != len(self.layers):
            raise ValueError(f"got {len(params)} (W, b) pairs for a network of "
                             f"{len(self.layers)} layers")
        new = []
        for i, (pair, n_in, n_out) in enumerate(zip(params, self.sizes[:-1], self.sizes[1:])):
            try:
                w, b = pair
            except (TypeError, ValueError):
                raise ValueError(f"layer {i}: expected a (W, b) pair as parameters() returns, "
                                 f"got {type(pair).__name__} {_length(pair)}") from None
            w, b = np.asarray(w), np.asarray(b)
            if w.shape != (n_out, n_in) or b.shape != (n_out,):
                raise ValueError(f"layer {i}: expected W {(n_out, n_in)} and b {(n_out,)}, "
                                 f"got {w.shape} and {b.shape}")
            with np.errstate(over="ignore", invalid="ignore"):     # as the network holds them
                w, b = w.astype(self.dtype, copy=False), b.astype(self.dtype, copy=False)
            if not (np.all(np.isfinite(w)) and np.all(np.isfinite(b))):
                raise ValueError(f"layer {i}: parameters contain NaN or inf (in "
                                 f"{self.dtype.name})")
            new.append((w, b))
        for i, (w, b) in enumerate(new):
            self.e.copy(self.e.from_host(w), self.W[i])
            self.e.copy(self.e.from_host(b), self.b[i])
        return self

    def copy(self):
        """An independent network with the same layers and weights."""
        net = Network(self.n_inputs, self.layers, seed=self.seed, dtype=self.dtype.name,
                      engine=self.e)
        net.scaling = self.scaling
        return net.set_parameters(self.parameters())

    # buffers ---------------------------------------------------------------------
    def buffers(self, n):
        bufs = self._bufs.get(n)
        if bufs is None:
            if len(self._bufs) >= 4:      # keep the training sizes, drop an evaluation size
                self._bufs.pop(next(iter(self._bufs)))
            bufs = self._bufs[n] = _Buffers(self.e, self.sizes, n, self._keeps_input)
        return bufs

    def check_inputs(self, X, name="X"):
        """X as an array (n, n_inputs) of numbers (booleans count as 0/1), or a one-line
        ValueError naming ``name``."""
        _refuse_sparse(X, name)
        X = np.asarray(X)
        if X.ndim == 1 and self.n_inputs == 1:
            X = X.reshape(-1, 1)
        if X.ndim != 2 or X.shape[1] != self.n_inputs:
            raise ValueError(f"{name} has shape {X.shape} but the network takes "
                             f"{self.n_inputs} input(s): pass an array of shape "
                             f"(n_samples, {self.n_inputs})")
        if X.shape[0] == 0:
            raise ValueError(f"{name} has no rows")
        if np.iscomplexobj(X):
            raise ValueError(f"{name} holds complex numbers: pass real values")
        numbers = np.issubdtype(X.dtype, np.number) or X.dtype == np.bool_
        if not numbers or not all_finite(X):
            raise ValueError(f"{name} contains NaN, inf or non-numbers: clean or drop those "
                             "rows first")
        return X

    # forward / backward -------------------------------------------------------
    def forward_(self, bufs):
        """Forward pass on bufs.x; returns the output activation buffer."""
        e = self.e
        a = bufs.x
        last = len(self.layers) - 1
        for i in range(len(self.layers)):
            z = bufs.z[i]
            e.gemm(1.0, a, self.W[i], 0.0, z, trans_b=True)
            e.add_row(self.b[i], z)
            if i == last or self._keeps_input[i]:          # z kept: a in its own buffer
                a = e.activate_(self.acts[i], e.copy(z, bufs.a[i]))
            else:
                a = e.activate_(self.acts[i], z)
        return a

    def backward_(self, bufs, loss, weighted=False):
        """Output delta and backpropagation through every layer (deltas only), with the
        sample weights in bufs.w when ``weighted``. Returns the loss value measured in this
        forward pass."""
        e = self.e
        L = len(self.layers)
        w, w_sum = (bufs.w, e.total(bufs.w)) if weighted else (None, None)
        value = e.loss(loss, bufs.z[-1], bufs.a_out, bufs.y, w, w_sum)
        e.loss_delta_(loss, self.acts[-1], bufs.z[-1], bufs.a_out, bufs.y, bufs.d[-1], w,
                      w_sum)
        for i in range(L - 1, 0, -1):
            e.gemm(1.0, bufs.d[i], self.W[i], 0.0, bufs.d[i - 1])
            e.activate_backward_(self.acts[i - 1], bufs.a[i - 1], bufs.d[i - 1],
                                 bufs.pre[i - 1])
        return value

    def train_step_(self, bufs, loss, opt, weighted=False):
        """One fused update on the batch already in bufs.x / bufs.y (and its sample weights in
        bufs.w when ``weighted``: the loss is sum_i w_i l_i over the weights' sum, which also
        takes the batch size's place in a per-n weight decay). Returns the batch loss.

        Each parameter is handed to ``opt.apply_`` with an ``acc(alpha, beta, out)`` that
        writes alpha * gradient + beta * out: a gemm for W, a gemv for b."""
        e = self.e
        L = len(self.layers)
        look_w, look_b = opt.lookahead_shift(False), opt.lookahead_shift(True)
        for i in range(L):                         # gradient at the look-ahead point w + mu v
            if look_w:
                e.axpy(look_w, opt.lookahead_velocity(2 * i), self.W[i])
            if look_b:
                e.axpy(look_b, opt.lookahead_velocity(2 * i + 1), self.b[i])
        self.forward_(bufs)
        w, w_sum = (bufs.w, e.total(bufs.w)) if weighted else (None, None)
        value = e.loss_value_delta_(loss, self.acts[-1], bufs.z[-1], bufs.a_out, bufs.y,
                                    bufs.d[-1], w, w_sum)
        n = bufs.n if w is None else w_sum
        gb = self._grad_buffers() if opt.needs_grad_buffer else None
        for i in range(L - 1, -1, -1):
            d = bufs.d[i]
            a_prev = bufs.a[i - 1] if i > 0 else bufs.x
            if i > 0:                              # D_prev before W changes
                e.gemm(1.0, d, self.W[i], 0.0, bufs.d[i - 1])
                e.activate_backward_(self.acts[i - 1], a_prev, bufs.d[i - 1],
                                     bufs.pre[i - 1])
            if look_w:                             # back from the look-ahead point
                e.axpy(-look_w, opt.lookahead_velocity(2 * i), self.W[i])
            if look_b:
                e.axpy(-look_b, opt.lookahead_velocity(2 * i + 1), self.b[i])

            def acc_w(alpha, beta, out, d=d, a_prev=a_prev):
                return e.gemm(alpha, d, a_prev, beta, out, trans_a=True)

            def acc_b(alpha, beta, out, d=d):
                return e.sum_rows(alpha, d, beta, out)

            opt.apply_(e, 2 * i, self.W[i], acc_w, gb[2 * i] if gb else None, False, n)
            opt.apply_(e, 2 * i + 1, self.b[i], acc_b, gb[2 * i + 1] if gb else None, True, n)
        opt.finish_step_()
        return value

    def _grad_buffers(self):
        if self._gbufs is None:
            self._gbufs = [self.e.zeros(p.shape) for p in self.params()]
        return self._gbufs

    def bind(self, opt):
        """Give ``opt`` a state for this network (zero buffers) unless it has a matching one."""
        return opt.ensure_state(self.e, [tuple(p.shape) for p in self.params()])

    # evaluation -----------------------------------------------------------------
    def predict(self, X, raw=False):
        """Outputs for inputs X (n_samples, n_inputs): a NumPy array (n_samples, n_outputs).

        With a ``scaling`` (set by ``inertia.load`` for a model saved with standardized
        data, such as the CLI's ``--standardize``), X is in the original units: it is
        standardized with the stored mean/std first, and a regression output is scaled back
        to the target's original units. ``raw=True`` skips both: X goes in as the network
        saw it in training and the outputs come back as the network gives them."""
        _refuse_sparse(X, "X")
        if self.scaling is not None and not raw:
            return self.scaling.predict(self, X)
        X = self.check_inputs(X)
        bufs = self.buffers(X.shape[0])
        self.e.copy(self.e.from_host(X), bufs.x)
        return self.e.to_host(self.forward_(bufs))

    def _load(self, X, y, loss, sample_weight):
        """Checked (X, y, sample weights) copied into the buffers of their size: the buffers
        and whether weights were given."""
        losses.check(loss, self.output_activation)
        X = self.check_inputs(X)
        yy = losses.prepare_targets(loss, y, self.n_outputs, self.dtype)
        if yy.shape[0] != X.shape[0]:
            raise ValueError(f"X has {X.shape[0]} rows but y has {yy.shape[0]}")
        w = losses.check_sample_weight(sample_weight, X.shape[0], self.dtype)
        bufs = self.buffers(X.shape[0])
        self.e.copy(self.e.from_host(X), bufs.x)
        self.e.copy(self.e.from_host(yy), bufs.y)
        if w is not None:
            self.e.copy(self.e.from_host(w), bufs.w)
        return bufs, w is not None

    def loss(self, X, y, loss, sample_weight=None):
        """The loss of the network on (X, y), weighted by ``sample_weight`` ((n,), >= 0) when
        given: sum_i w_i l_i over sum_i w_i (see ``inertia.ops.losses.value``)."""
        bufs, weighted = self._load(X, y, loss, sample_weight)
        self.forward_(bufs)
        w, w_sum = (bufs.w, self.e.total(bufs.w)) if weighted else (None, None)
        return self.e.loss(loss, bufs.z[-1], bufs.a_out, bufs.y, w, w_sum)

    def gradients(self, X, y, loss, sample_weight=None):
        """The loss and its gradient on (X, y) (weighted by ``sample_weight`` as in ``loss``):
        (value, [(dW, db), ...]) as NumPy arrays, without changing the weights (the unfused
        reference for the fused training step)."""
        bufs, weighted = self._load(X, y, loss, sample_weight)
        self.forward_(bufs)
        value = self.backward_(bufs, loss, weighted)
        out = []
        for i in range(len(self.layers)):
            a_prev = bufs.a[i - 1] if i > 0 else bufs.x
            dw = self.e.zeros(self.W[i].shape)
            db = self.e.zeros(self.b[i].shape)
            self.e.gemm(1.0, bufs.d[i], a_prev, 0.0, dw, trans_a=True)
            self.e.sum_rows(1.0, bufs.d[i], 0.0, db)
            out.append((self.e.to_host(dw), self.e.to_host(db)))
        return value, out
