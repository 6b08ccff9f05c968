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

The modules, each importing only those above it:

- ``workloads``: Workload, WORKLOADS, the data, the batches, FLOP and transcendental counts;
- ``machine``: the machine's limits and description, resident-set readings, ``installed``;
- ``runners``: the systems of a workload (``plan``) and one runner per system;
- ``processes``: a fresh process per system, the alternation, the workload's record;
- ``report``: the table, the chart, the JSON file;
- ``run``: the options, their checks and ``main``, the whole ``inertia bench`` command.
"""

from .run import main

__all__ = ["main"]
