"""The engine protocol: the primitives layers, optimizers and the op records speak.

This file is the specification. An engine is memory, BLAS and a small set of element-wise
verbs; it restates no math: activations and losses are records of ``inertia.ops`` (an
engine runs a record's NumPy form, SIMD kernels or torch ops, or its statement in the verbs
below), and optimizers write their steps with these calls. Every engine subclasses
``Engine`` and implements every name in ``PRIMITIVES`` with the documented signature, shapes,
aliasing and beta = 0 behaviour; ``loss``, ``loss_delta_`` and ``loss_value_delta_`` are
written here once, from the loss records, for every engine.
``tests/test_engine_contract.py`` checks each registered engine against this class,
primitive by primitive.

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

from typing import Any

from ..ops import losses as _losses

Array = Any

# every primitive an engine implements (the contract test checks each, with its signature)
PRIMITIVES = ("threads", "zeros", "empty", "is_array", "from_host", "to_host", "copy",
              "synchronize", "tmp", "gemm", "sum_rows", "add_row", "axpy", "axpby", "scal",
              "op_", "map_", "row_sum", "row_max", "total", "dot", "activate_",
              "activate_backward_", "take_rows")
# the verbs' functions
BINARY = ("add", "sub", "mul", "div", "maximum", "minimum")
UNARY = ("exp", "log", "log1p", "abs", "neg", "sqrt")


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


class Engine:
    """The protocol: subclass it and implement every name in ``PRIMITIVES``."""

    name: str
    dtype: Any          # the NumPy dtype (``parse_dtype``)

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

    def tmp(self, shape: tuple[int, ...], slot: int = 0) -> Array:
        """A scratch array of ``shape`` kept by the engine: made the first time (shape, slot)
        is asked for, then the same array again, so that a training step allocates nothing.
        Contents undefined; slot k gives a second, distinct array of one shape. Scratch is
        for the length of one call of a caller (a loss, an optimizer step), never kept."""

    # ------------------------------------------------------------------- BLAS
    def gemm(self, alpha: float, a: Array, b: Array, beta: float, c: Array,
             trans_a: bool = False, trans_b: bool = False) -> Array:
        """c := alpha * op(a) @ op(b) + beta * c, op(x) = x.T when trans_x.

        Shapes: op(a) (m, k), op(b) (k, n), c (m, n). ``c`` must not alias ``a`` or ``b``.
        beta = 0 ignores c's contents (NaN in c does not propagate). Returns c (same object).
        """

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

    # ------------------------------------------------------------ element-wise verbs
    def op_(self, fn: str, x: Array | float, y: Array | float, out: Array) -> Array:
        """out := fn(x, y) element-wise, fn one of ``BINARY`` (add, sub, mul, div, maximum,
        minimum); x and y engine arrays or Python floats (not both floats), broadcasting as
        NumPy does (an (n, 1) column against (n, k)). out may alias x or y. Returns out."""

    def map_(self, fn: str, x: Array, out: Array) -> Array:
        """out := fn(x) element-wise, fn one of ``UNARY`` (exp, log, log1p, abs, neg, sqrt).
        out may alias x. Returns out."""

    def row_sum(self, x: Array, out: Array) -> Array:
        """out := the sum of each row of x: x (n, k), out (n, 1), not aliased. Returns out."""

    def row_max(self, x: Array, out: Array) -> Array:
        """out := the max of each row of x: x (n, k), out (n, 1), not aliased. Returns out."""

    def total(self, x: Array) -> float:
        """The sum of all elements of x, as a Python float."""

    def dot(self, x: Array, y: Array) -> float:
        """The sum of all elements of x * y (x and y of one shape, unchanged), as a Python
        float: BLAS dot over the elements."""

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

    def take_rows(self, x: Array, idx: Any, out: Array) -> Array:
        """out := x[idx] (rows gathered; idx a host integer array). Returns out."""

    # ------------------------------------------------- derived: written once, from records
    def loss(self, name: str, z: Array, a: Array, y: Array, w: Array | None = None,
             w_sum: float | None = None) -> float:
        """The value of loss ``name`` (a record of ``inertia.ops.losses``) for pre-activation
        z, output a and target y, all (n, k); optional sample weights w (n, 1) summing to
        w_sum. Returns a Python float. Scratch: ``tmp`` slots 0 to 2."""
        return _losses.value(self, name, z, a, y, w, w_sum)

    def loss_value_delta_(self, name: str, activation: str, z: Array, a: Array, y: Array,
                          delta: Array, w: Array | None = None,
                          w_sum: float | None = None) -> float:
        """``loss`` and ``loss_delta_`` in one call (a training step's): returns the value,
        leaves dL/dz in ``delta``; the same numbers as the two apart."""
        return _losses.value_delta_(self, name, activation, z, a, y, delta, w, w_sum)

    def loss_delta_(self, name: str, activation: str, z: Array, a: Array, y: Array,
                    delta: Array, w: Array | None = None,
                    w_sum: float | None = None) -> Array:
        """delta := dL/dz for the output layer (loss ``name`` on output ``activation``), rows
        scaled by the sample weights w (n, 1) summing to w_sum when given. Returns delta.
        ``delta`` must not alias z, a or y."""
        return _losses.delta_(self, name, activation, z, a, y, delta, w, w_sum)
