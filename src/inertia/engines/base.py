"""The engine protocol: the primitives layers and optimizers speak.

This file is the specification. Every engine implements every method below with the
documented shapes, aliasing and beta = 0 behaviour; ``tests/test_engine_contract.py`` checks
each installed engine against it.

Glossary (used in kernels; the public API uses words):
    w, b      weights (out, in) and biases (out,) of a dense layer
    v         velocity / momentum buffer, shaped like its parameter
    z         pre-activation, (n, out); a  activation (output of a layer), (n, out)
    delta     dL/dz for a layer, (n, out)
    lr, mu    learning rate, momentum;  wd  weight decay
    n         number of samples in the batch

Layout: rows are samples. A batch of activations is (n, features), C-contiguous.

Conventions shared by every primitive:
    * The output is the last array argument; it is mutated in place and returned.
    * ``beta == 0`` means the output's previous contents are never read: NaN or inf there
      does not propagate.
    * Inputs are never modified, except the documented output.
    * Arrays are engine arrays of the engine's dtype (see ``from_host``).
"""

from __future__ import annotations

from typing import Any, Protocol, runtime_checkable

Array = Any


def parse_dtype(dtype):
    """The NumPy dtype for "float32" / "float64" (or a dtype object); a one-line ValueError
    for anything else. Every engine exposes its dtype as this NumPy dtype."""
    import numpy as np

    try:
        dt = np.dtype(dtype)
    except TypeError:
        dt = None
    if dt is None or dt.name not in ("float32", "float64"):
        raise ValueError(f"unknown dtype {dtype!r}: choose float32 or float64")
    return dt


@runtime_checkable
class Engine(Protocol):
    name: str
    dtype: Any

    def threads(self, flops: float):
        """A context manager for a training run whose largest gemm does ``flops`` floating-point
        operations: the engine may set its thread count for the run (a no-op context is fine)."""

    # ----------------------------------------------------------------- memory
    def zeros(self, shape: tuple[int, ...]) -> Array:
        """A new array of zeros of this engine's dtype."""

    def empty(self, shape: tuple[int, ...]) -> Array:
        """A new array of this engine's dtype with undefined contents."""

    def is_array(self, x: Any) -> bool:
        """Whether ``x`` is an array of this engine, of its dtype (and on its device): one the
        other primitives accept as it is. Anything else goes through ``from_host`` first."""

    def from_host(self, x: Any) -> Array:
        """A C-contiguous engine array holding a copy of host array ``x`` in the engine dtype."""

    def to_host(self, x: Array) -> Any:
        """A NumPy copy of engine array ``x`` (never a view of engine memory)."""

    def copy(self, src: Array, dst: Array) -> Array:
        """dst := src (same shape). Returns dst."""

    def synchronize(self) -> None:
        """Wait until all queued work is done (no-op on synchronous engines)."""

    # ------------------------------------------------------------------- BLAS
    def gemm(self, alpha: float, a: Array, b: Array, beta: float, c: Array,
             trans_a: bool = False, trans_b: bool = False) -> Array:
        """c := alpha * op(a) @ op(b) + beta * c, op(x) = x.T when trans_x.

        Shapes: op(a) (m, k), op(b) (k, n), c (m, n). ``c`` must not alias ``a`` or ``b``.
        beta = 0 ignores c's contents (NaN in c does not propagate). Returns c (same object).
        """

    def gemv(self, alpha: float, a: Array, x: Array, beta: float, y: Array,
             trans: bool = False) -> Array:
        """y := alpha * op(a) @ x + beta * y. a (m, k); x (k,) or (m,) when trans. Returns y."""

    def sum_rows(self, alpha: float, d: Array, beta: float, out: Array) -> Array:
        """out := alpha * (sum over the rows of d) + beta * out.

        d (n, k), out (k,): the bias gradient of a layer whose delta is d. Returns out.
        """

    def add_row(self, b: Array, z: Array) -> Array:
        """z := z + b broadcast to every row. b (k,), z (n, k). Returns z."""

    def axpy(self, alpha: float, x: Array, y: Array) -> Array:
        """y := alpha * x + y. x, y of one shape, not aliased. Returns y."""

    def axpby(self, alpha: float, x: Array, beta: float, y: Array) -> Array:
        """y := alpha * x + beta * y. beta = 0 ignores y's contents. Returns y."""

    def scal(self, alpha: float, x: Array) -> Array:
        """x := alpha * x. Returns x."""

    def nrm2(self, x: Array) -> float:
        """Euclidean norm of all elements of x, as a Python float."""

    def dot(self, x: Array, y: Array) -> float:
        """Sum of x * y over all elements, as a Python float."""

    # ---------------------------------------------------------------- network
    def activate_(self, name: str, z: Array) -> Array:
        """z := f(z) in place for activation ``name``, a spelling of a record of
        ``inertia.ops.activations`` with its parameters (``"leaky_relu:0.2"``; softmax:
        row-wise). Returns z. An engine takes the math from the record (its NumPy form, its
        SIMD kernels, its torch ops), never restating it."""

    def activate_backward_(self, name: str, a: Array, delta: Array,
                           z: Array | None = None) -> Array:
        """delta := delta * f'(z). Returns delta. f' is computed from the output a = f(z) or
        from the pre-activation z, as the record's ``which`` says; z (same shape, not aliased
        with a or delta, unchanged) is required for the latter and ignored otherwise.

        Not defined for softmax (its Jacobian is not diagonal; it is only used as an output
        with cross-entropy, where the loss delta already is dL/dz).
        """

    def softmax_rows_(self, z: Array) -> Array:
        """z := softmax(z) along each row, computed stably (max subtracted). Returns z."""

    def loss(self, name: str, z: Array, a: Array, y: Array) -> float:
        """The value of loss ``name`` (see ``inertia.ops.losses``) for pre-activation z, output a
        and target y, all (n, k). Returns a Python float."""

    def loss_delta_(self, name: str, activation: str, z: Array, a: Array, y: Array,
                    delta: Array) -> Array:
        """delta := dL/dz for the output layer (loss ``name`` on output ``activation``). Returns
        delta. ``delta`` must not alias z, a or y."""

    def adam_step_(self, p: Array, g: Array, m: Array, v: Array, vmax: Array | None,
                   lr: float, beta1: float, beta2: float, eps: float, wd: float, t: int,
                   decoupled: bool) -> Array:
        """One Adam step on parameter p from gradient g, in place (torch.optim.Adam's order):

        decoupled: p := (1 - lr wd) p;  else g := g + wd p   (g is scratch and may change)
        m := m + (1 - beta1) (g - m);  v := beta2 v + (1 - beta2) g^2
        vmax := max(vmax, v) when vmax is given (amsgrad), and used in place of v below
        p := p - lr / (1 - beta1^t) * m / (sqrt(v) / sqrt(1 - beta2^t) + eps)

        All arrays have p's shape; t >= 1. Returns p."""

    def take_rows(self, x: Array, idx: Any, out: Array) -> Array:
        """out := x[idx] (rows gathered; idx a host integer array). Returns out."""
