"""Subnormal numbers flushed to zero inside the compiled loops (``flush`` ... ``restore``).

An operation on a subnormal float (below 1.2e-38 in float32, 2.2e-308 in float64) takes a
slow path in the CPU: measured here, a float32 multiply-add loop over subnormal inputs ran
60 times slower than over normal ones. Training produces them as it goes on (a saturated
sigmoid's derivative, a gradient that has all but vanished), and a compiled full-batch
sweep of W6 slowed from 20 to 58 ns a run-row between its first and its tenth epoch, then
stayed there. XLA (JAX) and TensorFlow (Keras) run their CPU kernels with subnormals flushed
for the same reason; PyTorch offers it (``torch.set_flush_denormal``).

``flush()`` sets the x86 MXCSR's flush-to-zero and denormals-are-zero bits of the calling
thread and returns the register as it was; ``restore(old)`` puts it back. Each kernel sets
them on entry and puts them back before it returns, on every thread it runs on (the state is
per thread), so nothing outside the compiled loops sees the change. A value that would be
subnormal becomes zero: results differ from unflushed arithmetic only where a number falls
below the smallest normal float, far below anything a loss or a weight shows. On other
processors both are no-ops (the loops run as before).
"""

from __future__ import annotations

import platform

import numpy as np
from numba import njit, types
from numba.extending import intrinsic

FTZ_DAZ = 0x8040          # MXCSR bit 15 flush to zero, bit 6 denormals are zero
X86 = platform.machine().lower() in ("x86_64", "amd64", "i686", "x86")


def _mxcsr_call(builder, name, ptr):
    from llvmlite import ir

    i8p = ir.IntType(8).as_pointer()
    fn = builder.module.declare_intrinsic(name, fnty=ir.FunctionType(ir.VoidType(), [i8p]))
    builder.call(fn, [builder.bitcast(ptr, i8p)])


@intrinsic
def _get_mxcsr(typingctx):
    def codegen(context, builder, signature, args):
        from llvmlite import ir

        ptr = builder.alloca(ir.IntType(32))
        _mxcsr_call(builder, "llvm.x86.sse.stmxcsr", ptr)
        return builder.load(ptr)
    return types.uint32(), codegen


@intrinsic
def _set_mxcsr(typingctx, value):
    def codegen(context, builder, signature, args):
        from llvmlite import ir

        ptr = builder.alloca(ir.IntType(32))
        builder.store(args[0], ptr)
        _mxcsr_call(builder, "llvm.x86.sse.ldmxcsr", ptr)
        return context.get_dummy_value()
    return types.void(types.uint32), codegen


if X86:
    @njit(cache=True, nogil=True)
    def flush():
        """Flush subnormals to zero on this thread; returns the state to restore."""
        old = _get_mxcsr()
        _set_mxcsr(old | np.uint32(FTZ_DAZ))
        return old

    @njit(cache=True, nogil=True)
    def restore(old):
        """Put this thread's floating-point state back as ``flush`` found it."""
        _set_mxcsr(old)
else:                                   # pragma: no cover - not an x86 processor
    @njit(cache=True, nogil=True)
    def flush():
        return np.uint32(0)

    @njit(cache=True, nogil=True)
    def restore(old):
        pass
