"""Whether 512-bit vectors would speed up the sweep on this machine.

The sweep's lane kernel (``inertia.fused.lanes``) keeps eight runs of float32 in one 256-bit
vector. numba compiles for the host's tuning, which on AVX-512 CPUs prefers 256-bit vectors;
the feature ``-prefer-256-bit`` in ``NUMBA_CPU_FEATURES`` lets LLVM use 512-bit ones. It
applies to every numba function of a process, so inertia cannot set it for its kernels alone;
this measures what it would give.

W6's sweep (64 configurations of the 4-8-8-1 network on ``smooth_regression(10000)``, 50
epochs) runs in child processes, alternating the host's tuning and 512-bit vectors, each with
its own numba cache, ``--rounds`` times (best of 3 sweeps a process). It prints run-epochs a
second and the ratio, at full batch and at batch 64. Processes on one machine differ by 10% or
so, hence the alternation and the rounds. Run: ``python benchmarks/vector_width.py`` (about
two minutes).
"""

import argparse
import os
import subprocess
import sys
import tempfile

CHILD = r'''
import sys, time, warnings
import numpy as np
import inertia
warnings.simplefilter("ignore")
X, y = inertia.data.smooth_regression(10000, seed=0)
net = inertia.Network(4, [inertia.Dense(8, "sigmoid"), inertia.Dense(8, "tanh"),
                          inertia.Dense(1, "linear")], seed=0)
grid = {"lr": list(np.geomspace(0.01, 1, 8)),
        "momentum": [0, 0.5, 0.7, 0.8, 0.9, 0.95, 0.97, 0.99]}
bs = int(sys.argv[1])
run = lambda epochs: inertia.sweep(net, X, y, loss="mse", optimizer=inertia.SGD(0.1, 0.9),
                                   grid=grid, seeds=None, epochs=epochs, batch_size=bs)
run(2)
times = []
for _ in range(3):
    t = time.perf_counter()
    run(50)
    times.append(time.perf_counter() - t)
print(64 * 50 / min(times))
'''


def host_features():
    import llvmlite.binding as llvm

    return llvm.get_host_cpu_features().flatten()


def child(batch, wide, cache):
    env = dict(os.environ, NUMBA_CACHE_DIR=cache)
    if wide:
        env["NUMBA_CPU_FEATURES"] = host_features() + ",-prefer-256-bit"
    out = subprocess.run([sys.executable, "-c", CHILD, str(batch)], env=env, check=True,
                         capture_output=True, text=True).stdout
    return float(out.strip().splitlines()[-1])


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--rounds", type=int, default=2, help="alternations of the two processes")
    args = p.parse_args(argv)
    import llvmlite.binding as llvm

    avx512 = "+avx512f" in host_features().split(",")
    print(f"host CPU as LLVM names it: {llvm.get_host_cpu_name()}; AVX-512: {avx512}")
    with tempfile.TemporaryDirectory() as tmp:
        for batch, name in ((10000, "full batch"), (64, "batch 64")):
            best = {False: 0.0, True: 0.0}
            for _ in range(args.rounds):
                for wide in (False, True):
                    cache = os.path.join(tmp, "512" if wide else "256")
                    best[wide] = max(best[wide], child(batch, wide, cache))
            print(f"{name:10s}  host tuning {best[False]:8.0f}  512-bit {best[True]:8.0f} "
                  f"run-epochs/s  ratio {best[True] / best[False]:.3f}")


if __name__ == "__main__":
    main()
