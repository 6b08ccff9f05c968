"""Torch engine: the protocol on torch tensors, on the cpu or a CUDA device.

Every primitive is an in-place torch operation on tensors that never require grad: the engine
makes every array itself (``zeros``, ``empty``, ``from_host``, which detaches a tensor it is
given), so autograd records nothing and no ``torch.no_grad()`` context is needed per call (it
would double the cost of a small call). The engine restates no math: activations are torch's
own aten kernels, forward and backward, named by their records (``inertia.ops.activations``);
losses and the optimizers' element-wise steps are statements in the element-wise verbs
(``op_``, ``map_``, ``row_sum``, ``row_max``), the same statements the NumPy engine runs, so
the two engines agree to round-off in float64.

On CUDA the hot path never waits for the device: outputs are written in place, the ones
vector of ``sum_rows`` and the index buffer of ``take_rows`` live on the device, and the only
host synchronisations are the Python floats that ``loss`` and ``total`` return.

This module imports torch; ``inertia.engines.get("torch")`` imports it only when asked.
"""

from __future__ import annotations

import operator

import numpy as np
import torch

from ..ops import activations
from .base import Engine, parse_dtype

DTYPES = {"float32": torch.float32, "float64": torch.float64}
BINARY = {"add": torch.add, "sub": torch.sub, "mul": torch.mul, "div": torch.div,
          "maximum": torch.maximum, "minimum": torch.minimum}
# with a Python float on one side: (op on (array, float), whether it must swap its operands)
SCALAR = {"add": (torch.add, True), "mul": (torch.mul, True), "sub": (torch.sub, False),
          "div": (torch.div, False), "maximum": (torch.clamp_min, True),
          "minimum": (torch.clamp_max, True)}
UNARY = {"exp": torch.exp, "log": torch.log, "log1p": torch.log1p, "abs": torch.abs,
         "neg": torch.neg, "sqrt": torch.sqrt}


def _device(device):
    """The torch.device for ``device`` ("cpu", "cuda", "cuda:1", a torch.device), or a
    one-line ValueError."""
    if device is None:
        device = "cpu"
    try:
        dev = torch.device(device)
    except (RuntimeError, TypeError, ValueError):
        raise ValueError(f"unknown device {device!r}: use device='cpu' or device='cuda'") \
            from None
    if dev.type == "cuda":
        if not torch.cuda.is_available():
            raise ValueError(f"CUDA is not available on this machine (device={device!r}): "
                             "use device='cpu'")
        index = torch.cuda.current_device() if dev.index is None else dev.index
        if index >= torch.cuda.device_count():
            raise ValueError(f"no CUDA device {index} (this machine has "
                             f"{torch.cuda.device_count()}): use device='cuda:0'")
        return torch.device("cuda", index)
    if dev.type != "cpu":
        raise ValueError(f"the torch engine runs on 'cpu' or 'cuda', not {device!r}")
    return dev


class _torch_threads:
    """Set torch's intra-op thread count for a block, then restore it."""

    def __init__(self, n):
        self.n = n

    def __enter__(self):
        self.old = torch.get_num_threads()
        torch.set_num_threads(self.n)
        return self

    def __exit__(self, *exc):
        torch.set_num_threads(self.old)


class TorchEngine(Engine):
    name = "torch"

    def __init__(self, dtype="float32", device="cpu"):
        dt = parse_dtype(dtype)
        self.dtype = dt                                   # a NumPy dtype, as every engine's
        self.tdtype = DTYPES[dt.name]
        self.device = _device(device)
        self._cuda = self.device.type == "cuda"
        self._kw = {"dtype": self.tdtype, "device": self.device}
        self._ones = {}                  # a vector of ones by length (sum_rows)
        self._idx = torch.empty(0, dtype=torch.int64, device=self.device)
        self._acts = {}
        self._scratch = {}

    def __repr__(self):
        return f"TorchEngine(dtype={self.dtype.name!r}, device={str(self.device)!r})"

    # memory
    def zeros(self, shape):
        return torch.zeros(tuple(shape), **self._kw)

    def empty(self, shape):
        return torch.empty(tuple(shape), **self._kw)

    def is_array(self, x):
        return (isinstance(x, torch.Tensor) and x.dtype == self.tdtype
                and x.device == self.device and not x.requires_grad)

    def from_host(self, x):
        if isinstance(x, torch.Tensor):
            return x.detach().to(**self._kw, copy=True).contiguous()
        h = np.array(x, dtype=self.dtype, order="C", copy=True)   # owned: from_numpy keeps it
        t = torch.from_numpy(h)
        return t.to(self.device) if self._cuda else t

    def to_host(self, x):
        if x.device.type == "cpu":
            return x.detach().numpy().copy()
        return x.detach().cpu().numpy()

    def copy(self, src, dst):
        dst.copy_(src)
        return dst

    def threads(self, flops):
        """One intra-op thread on the CPU for gemms too small to share (as NumpyEngine.threads;
        INERTIA_BLAS_THREADS overrides); the GPU is left alone."""
        import contextlib
        import os

        from .numpy import SHARED_GEMM_FLOPS

        want = os.environ.get("INERTIA_BLAS_THREADS")
        if self._cuda or (not want and flops >= SHARED_GEMM_FLOPS):
            return contextlib.nullcontext()
        return _torch_threads(int(want) if want else 1)

    def synchronize(self):
        if self._cuda:
            torch.cuda.synchronize(self.device)

    # BLAS
    def gemm(self, alpha, a, b, beta, c, trans_a=False, trans_b=False):
        # torch.addmm ignores c when beta == 0 (NaN and inf there do not propagate)
        c.addmm_(a.t() if trans_a else a, b.t() if trans_b else b,
                 beta=float(beta), alpha=float(alpha))
        return c

    def _ones_for(self, n):
        # one tensor a length, made once: slicing a longer one makes a new view every call
        o = self._ones.get(n)
        if o is None:
            if len(self._ones) >= 8:             # many evaluation sizes: start afresh
                self._ones.clear()
            o = self._ones[n] = torch.ones(n, **self._kw)
        return o

    def sum_rows(self, alpha, d, beta, out):
        out.addmv_(d.t(), self._ones_for(d.shape[0]), beta=float(beta), alpha=float(alpha))
        return out

    def add_row(self, b, z):
        z.add_(b)
        return z

    def axpy(self, alpha, x, y):
        y.add_(x, alpha=float(alpha))
        return y

    def axpby(self, alpha, x, beta, y):
        if beta == 0.0:
            torch.mul(x, float(alpha), out=y)
            return y
        if beta != 1.0:
            y.mul_(float(beta))
        y.add_(x, alpha=float(alpha))
        return y

    def scal(self, alpha, x):
        x.mul_(float(alpha))
        return x

    def tmp(self, shape, slot=0):
        key = (tuple(shape), slot)
        t = self._scratch.get(key)
        if t is None:
            if len(self._scratch) > 64:          # many evaluation sizes: start afresh
                self._scratch.clear()
            t = self._scratch[key] = torch.empty(tuple(shape), **self._kw)
        return t

    # element-wise verbs
    def op_(self, fn, x, y, out):
        if isinstance(x, torch.Tensor) and isinstance(y, torch.Tensor):
            BINARY[fn](x, y, out=out)
            return out
        f, commutes = SCALAR[fn]
        if isinstance(y, torch.Tensor):                  # a float first
            if commutes:
                return f(y, float(x), out=out)
            if fn == "sub":                             # c - y = -(y - c), exactly
                return torch.sub(y, float(x), out=out).neg_()
            return torch.div(torch.full_like(y, float(x)), y, out=out)
        return f(x, float(y), out=out)

    def map_(self, fn, x, out):
        UNARY[fn](x, out=out)
        return out

    def row_sum(self, x, out):
        torch.sum(x, dim=1, keepdim=True, out=out)
        return out

    def row_max(self, x, out):
        torch.amax(x, dim=1, keepdim=True, out=out)
        return out

    def total(self, x):
        return float(x.sum().item())

    def dot(self, x, y):
        return float(torch.dot(x.reshape(-1), y.reshape(-1)).item())

    # network
    def _act_ops(self, name):
        """(activation, forward(z), backward(src, delta)) for a spelling: the record's torch
        ops with its parameters bound, made once per spelling."""
        hit = self._acts.get(name)
        if hit is None:
            act = activations.get(name)
            ops = act.rec.torch
            fwd = bwd = None
            if ops is not None:
                kw = {**act.kwargs, **ops.kwargs}
                bkw = {**kw, **ops.backward_kwargs}
                b_op = getattr(torch.ops.aten, ops.backward).grad_input
                # the overload's own kernel call: the same op without the Python frame of
                # OpOverload.__call__ (a fifth of a small step's activation backward)
                b_op = getattr(b_op, "_op", b_op)
                source = ops.source
                if ops.forward.endswith("_"):          # a Tensor in-place method
                    fwd = operator.methodcaller(ops.forward, **kw)
                else:
                    f_op = getattr(torch.ops.aten, ops.forward).out

                    def fwd(z):
                        return f_op(z, **kw, out=z)

                if source in ("output", "self"):       # the backward's second argument
                    def bwd(src, delta):
                        return b_op(delta, src, **bkw, grad_input=delta)
                else:
                    def bwd(src, delta):
                        return b_op(delta, **{source: src}, **bkw, grad_input=delta)

            hit = self._acts[name] = (act, fwd, bwd)
        return hit

    def activate_(self, name, z):
        act, fwd, _ = self._act_ops(name)
        if fwd is not None:                      # the common case first: a torch op
            fwd(z)
            return z
        if act.rec.rowwise:                      # softmax along each row, max subtracted
            z.sub_(z.amax(dim=1, keepdim=True))
            z.exp_()
            z.div_(z.sum(dim=1, keepdim=True))
        return z

    def activate_backward_(self, name, a, delta, z=None):
        act, _, bwd = self._act_ops(name)
        if bwd is not None:
            bwd(act.source(a, z), delta)
            return delta
        if act.rec.identity:
            return delta
        return act.rec.np_derivative(a, delta, act.values, ())     # softmax raises

    def take_rows(self, x, idx, out):
        h = torch.from_numpy(np.ascontiguousarray(idx, dtype=np.int64))
        if self._cuda:
            m = h.shape[0]
            if self._idx.shape[0] < m:
                self._idx = torch.empty(m, dtype=torch.int64, device=self.device)
            i = self._idx[:m]
            # from pageable memory: the host array is staged before copy_ returns
            i.copy_(h, non_blocking=True)
            h = i
        torch.index_select(x, 0, h, out=out)
        return out
