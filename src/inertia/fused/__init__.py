"""The fused loop: whole training steps of a small network in one numba call.

runner.py   the driver (``CompiledSteps``): when the loop applies (``unsupported``), its flat
            buffers, the coefficient rows of a run of steps, the threads and their
            measurement; imports no numba
tiles.py    the kernel (``train_steps``): tiles of ``TILE`` rows through the forward pass,
            the loss, the backward pass, the gradient sums and the closed-form update
runs.py     the multi-run kernel (``train_runs``): a group of runs sharing data, batches and
            row order, each tile gathered once for every run, tiles.py's stages per run
lanes.py    the multi-run kernel with eight runs in the vector lanes (``train_lanes``), for
            float32 groups of 16 or more runs (``applies``)
group.py    their driver for a sweep's group (``train_group``)

The contract between them: ``tiles.train_steps(data, plan, network, params, scratch, out,
parallel, check[, weights_sq])``, every array C-contiguous, of the network's dtype unless named otherwise;
L layers, p = the number of parameters, S steps, C = ``CHUNKS``, T = ``tiles.TILE``.

data      (X (N, n_in), Y (N, n_out), order (N,) int64): the rows, read only
plan      (starts (S,) int64, counts (S,) int64, kinds (S,) int64, coef (K, 2 L, 8)):
          step s trains on rows order[starts[s]:starts[s] + counts[s]] with the rows
          coef[kinds[s]] of ``rule.Step.table()`` (A B C D E F H look; weights of layer l
          in row 2 l, its biases in 2 l + 1); read only
network   (sizes (L + 1,) int64, acts (L, 4) float64 = ``tiles.act_table``, loss code
          (``ops.losses`` record's ``code``), fast: float32 takes the SIMD kernels)
params    (P, V, G, Pb, Vb), each (p,): the flat parameters (``Network.flat``: layer by
          layer W (out, in) row-major, then b), the velocity in the same layout, the
          gradient, and the one-step-back copy of P and V; P, V, Pb, Vb are updated in place
          (P and V are the network's and the optimizer's own memory), G is scratch
scratch   (Gs (C, p), Zs (C, T * tiles.tile_rows), Ds (C, T * sum(sizes[1:])),
          xts (C, T * n_in), yts (C, T * n_out), scales (C, 1), totals (C,) float64): one
          row per chunk of a batch, written only by that chunk's thread
out       (S,) float64: step s's batch loss
parallel  the chunks of a batch run on numba's threads (the same bits as on one thread)
check     a non-finite loss or parameter puts P, V back (see ``train_steps``)
weights_sq  optional, (S,) float64: step s's sum of squared weights (biases not counted)
          before its update, summed in the update pass (left out: not computed)

No two arguments alias. It returns the number of steps run: S, or the index of the step
that diverged (with ``check``). The axis over runs (several configurations trained
together, ``runs.train_runs``) adds a leading run axis to P, V, G, Pb, Vb, coef, out, Gs and
totals and leaves data, plan and network as they are (runs.py states the rest).
"""

from .runner import CHUNKS, MAX_WIDTH, CompiledSteps, threads, unsupported

__all__ = ["CHUNKS", "MAX_WIDTH", "CompiledSteps", "threads", "unsupported"]
