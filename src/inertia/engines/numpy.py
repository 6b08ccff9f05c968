"""NumPy engine: SciPy BLAS (gemm/gemv/axpy/scal with in-place outputs) over C-contiguous arrays,
NumPy ufuncs with ``out=`` for the element-wise verbs.

BLAS is column-major; a C-contiguous (m, n) array is the column-major (n, m) array of its
transpose, so c := alpha op(a) op(b) + beta c is computed as
c.T := alpha op(b).T op(a).T + beta c.T, with the same trans flags and the operands swapped.
"""

from __future__ import annotations

import numpy as np
from scipy.linalg import blas

from ..ops import activations, losses
from .base import Engine, parse_dtype

DTYPES = {"float32": np.float32, "float64": np.float64}
BINARY = {"add": np.add, "sub": np.subtract, "mul": np.multiply, "div": np.divide,
          "maximum": np.maximum, "minimum": np.minimum}
UNARY = {"exp": np.exp, "log": np.log, "log1p": np.log1p, "abs": np.abs, "neg": np.negative,
         "sqrt": np.sqrt}


def _kernels():
    """The compiled float32 kernels, or None where numba is not installed."""
    try:
        from . import simd as kernels
    except ImportError:
        return None
    return kernels
_CONTROLLER = []


def _blas_controller():
    """One threadpoolctl controller for the process: making one scans the loaded libraries
    (milliseconds), limiting threads through it does not."""
    if not _CONTROLLER:
        from threadpoolctl import ThreadpoolController

        _CONTROLLER.append(ThreadpoolController())
    return _CONTROLLER[0]


# gemms smaller than this run on one BLAS thread during training (see NumpyEngine.threads)
SHARED_GEMM_FLOPS = 4e6


class NumpyEngine(Engine):
    name = "numpy"

    def __init__(self, dtype="float32", device="cpu"):
        if device not in (None, "cpu"):
            raise ValueError(f"the numpy engine runs on the cpu only, not {device!r}: use "
                             "engine='torch' for other devices")
        dt = parse_dtype(dtype)
        self.dtype = dt
        p = "s" if dt == np.float32 else "d"
        self._gemm = getattr(blas, p + "gemm")
        self._gemv = getattr(blas, p + "gemv")
        self._axpy = getattr(blas, p + "axpy")
        self._ger = getattr(blas, p + "ger")
        self._scal = getattr(blas, p + "scal")
        self._ones = np.ones(0, dtype=dt)
        self._scratch = {}
        self._act_scratches = {}
        self._acts = {}
        # SIMD sigmoid/tanh and their derivatives for float32; float64 keeps NumPy's functions
        self._k = _kernels()
        self._k32 = self._k if dt == np.float32 else None

    def __repr__(self):
        return f"NumpyEngine(dtype={self.dtype.name!r})"

    def threads(self, flops):
        """A context for a training run whose largest gemm does ``flops`` operations: BLAS
        keeps one thread when a call is too small to share (the threads' hand-off costs more
        than it saves, and on a busy machine a waiting BLAS thread can stall a small gemm for
        milliseconds), its default otherwise. INERTIA_BLAS_THREADS overrides the choice."""
        import os
        from contextlib import nullcontext

        want = os.environ.get("INERTIA_BLAS_THREADS")
        if want:
            return _blas_controller().limit(limits=int(want), user_api="blas")
        if flops >= SHARED_GEMM_FLOPS:
            return nullcontext()
        return _blas_controller().limit(limits=1, user_api="blas")

    # memory
    def zeros(self, shape):
        return np.zeros(shape, dtype=self.dtype)

    def empty(self, shape):
        return np.empty(shape, dtype=self.dtype)

    def is_array(self, x):
        return isinstance(x, np.ndarray) and x.dtype == self.dtype

    def from_host(self, x):
        return np.array(x, dtype=self.dtype, order="C", copy=True)

    def to_host(self, x):
        return np.array(x, copy=True)

    def copy(self, src, dst):
        np.copyto(dst, src)
        return dst

    def synchronize(self):
        pass

    # BLAS
    def gemm(self, alpha, a, b, beta, c, trans_a=False, trans_b=False):
        ct = c.T
        r = self._gemm(alpha, b.T, a.T, beta, ct, trans_a=trans_b, trans_b=trans_a,
                       overwrite_c=1)
        if r is not ct:  # only when c was not C-contiguous in the engine dtype
            c[...] = r.T
        return c


    def _ones_for(self, n):
        if self._ones.shape[0] < n:
            self._ones = np.ones(n, dtype=self.dtype)
        return self._ones[:n]

    def sum_rows(self, alpha, d, beta, out):
        # out := alpha d.T ones + beta out: a C-contiguous d (n, k) is the column-major (k, n)
        r = self._gemv(alpha, d.T, self._ones_for(d.shape[0]), beta, out, trans=0,
                       overwrite_y=1)
        if r is not out:
            out[...] = r
        return out

    def add_row(self, b, z):
        if self._k is not None and z.flags.c_contiguous:
            self._k.add_row_(b, z)
            return z
        # z.T (k, n) += b ones^T: a rank-1 update in place (NumPy's broadcast add into its own
        # input copies z first)
        zt = z.T
        r = self._ger(1.0, b, self._ones_for(z.shape[0]), a=zt, overwrite_a=1)
        if r is not zt:
            z[...] = r.T
        return z

    def _blas_pair(self, x, y):
        """Flat views of x and y in one memory order for a level-1 BLAS call that writes y in
        place, or None when y is not a contiguous array of the engine dtype (reshape(-1)
        would give a copy, and BLAS would write into the copy) or has no elements (BLAS
        refuses length 0; NumPy's in-place operators do nothing). x may be copied."""
        if y.dtype != self.dtype or y.size == 0:
            return None
        if y.flags.c_contiguous:
            return (None if x is None else x.reshape(-1)), y.reshape(-1)
        if y.flags.f_contiguous:                 # e.g. W.T: walk both in y's memory order
            return (None if x is None else x.T.reshape(-1)), y.T.reshape(-1)
        return None

    def axpy(self, alpha, x, y):
        """y := alpha x + y in place; y may be any writable view (strided ones go through
        NumPy with one temporary)."""
        # a training step's every buffer: non-empty, C-contiguous, the engine dtype
        if y.flags.c_contiguous and y.dtype is self.dtype and y.size:
            self._axpy(x.reshape(-1), y.reshape(-1), a=alpha)
            return y
        flat = self._blas_pair(x, y)
        if flat is None:
            y += alpha * np.asarray(x)
            return y
        self._axpy(flat[0], flat[1], a=alpha)
        return y

    def axpby(self, alpha, x, beta, y):
        """y := alpha x + beta y in place (beta = 0: y is not read); y as in ``axpy``."""
        if beta == 0.0:
            np.multiply(x, alpha, out=y)
            return y
        flat = self._blas_pair(x, y)
        if flat is None:
            if beta != 1.0:
                y *= beta
            y += alpha * np.asarray(x)
            return y
        if beta != 1.0:
            self._scal(beta, flat[1])
        self._axpy(flat[0], flat[1], a=alpha)
        return y

    def scal(self, alpha, x):
        """x := alpha x in place; x may be any writable view."""
        if x.flags.c_contiguous and x.dtype is self.dtype and x.size:     # as in axpy
            self._scal(alpha, x.reshape(-1))
            return x
        flat = self._blas_pair(None, x)
        if flat is None:
            x *= alpha
            return x
        self._scal(alpha, flat[1])
        return x

    # element-wise verbs
    def op_(self, fn, x, y, out):
        BINARY[fn](x, y, out=out)
        return out

    def map_(self, fn, x, out):
        UNARY[fn](x, out=out)
        return out

    # the ufuncs' own reduce: np.sum / np.max with out= pass through Python wrappers that
    # cost more than the reduction of a small batch
    def row_sum(self, x, out):
        np.add.reduce(x, axis=1, keepdims=True, out=out)
        return out

    def row_max(self, x, out):
        np.maximum.reduce(x, axis=1, keepdims=True, out=out)
        return out

    def total(self, x):
        return float(np.add.reduce(x, axis=None))

    def dot(self, x, y):
        return float(np.vdot(x, y))

    # network
    def tmp(self, shape, slot=0, dtype=None):
        """A scratch array of ``shape`` (and ``dtype``, default the engine's) kept by the
        engine: made the first time a shape is asked for, then reused, so that kernels
        allocate nothing in a training step. Slot k gives a second, distinct array of the same
        shape."""
        key = (tuple(shape), slot, dtype)
        t = self._scratch.get(key)
        if t is None:
            if len(self._scratch) > 64:          # many evaluation sizes: start afresh
                self._scratch.clear()
                self._act_scratches.clear()
            t = self._scratch[key] = np.empty(shape, dtype=dtype or self.dtype)
        return t

    def _act_scratch(self, act, shape):
        """The record's scratch arrays ("f": engine dtype, "b": boolean) for this shape, as
        one tuple made once (a step then makes no new objects for it)."""
        by_shape = self._act_scratches.setdefault(act.spec, {})
        s = by_shape.get(shape)
        if s is None:
            s = by_shape[shape] = tuple(self.tmp(shape, i, bool if k == "b" else None)
                                        for i, k in enumerate(act.rec.scratch))
        return s

    def _act(self, name):
        """The Activation of a spelling, looked up once per engine."""
        act = self._acts.get(name)
        if act is None:
            act = self._acts[name] = activations.get(name)
        return act

    def activate_(self, name, z):
        act = self._acts.get(name) or self._act(name)
        rec = act.rec
        if rec.identity:
            return z
        if rec.rowwise:
            return activations.softmax_rows(z, self.tmp((z.shape[0], 1)))
        k = self._k32
        if k is not None and rec.simd32 and z.flags.c_contiguous:
            getattr(k, rec.simd32[0])(z.reshape(-1))
            return z
        with np.errstate(over="ignore", under="ignore"):
            rec.np_forward(z, act.values, self._act_scratch(act, z.shape))
        return z

    def activate_backward_(self, name, a, delta, z=None):
        act = self._acts.get(name) or self._act(name)
        rec = act.rec
        if rec.identity:
            return delta
        k = self._k32
        if k is not None and rec.simd32 and a.flags.c_contiguous and delta.flags.c_contiguous:
            getattr(k, rec.simd32[1])(a.reshape(-1), delta.reshape(-1))
            return delta
        src = act.source(a, z)
        rec.np_derivative(src, delta, act.values, self._act_scratch(act, src.shape))
        return delta

    def loss(self, name, z, a, y, w=None, w_sum=None):
        with np.errstate(over="ignore", under="ignore"):     # a diverged run's loss is inf
            return losses.value(self, name, z, a, y, w, w_sum)

    def take_rows(self, x, idx, out):
        x.take(idx, axis=0, out=out)         # the method: np.take's wrapper costs a microsecond
        return out
