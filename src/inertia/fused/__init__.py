"""The fused loop: whole training steps of a small network in one numba call.

runner.py   the driver (``CompiledSteps``): when the loop applies (``unsupported``), its flat
            buffers, the coefficient rows of a run of steps, the threads; imports no numba
tiles.py    the kernel (``train_steps``): tiles of ``TILE`` rows through the forward pass,
            the loss, the backward pass, the gradient sums and the closed-form update

Importing this package imports neither numba nor the kernel.
"""

from .runner import CHUNKS, MAX_WIDTH, CompiledSteps, threads, unsupported

__all__ = ["CHUNKS", "MAX_WIDTH", "CompiledSteps", "threads", "unsupported"]
