"""Time one training path of today's inertia against the same path at an older commit, in one
process, alternating rep by rep (separate processes on a shared machine differ by 10-15%,
more than the changes being measured).

    python benchmarks/ab.py W2 compiled                 # against BASE (default 0713d33)
    python benchmarks/ab.py W3 engine --base HEAD~5 --reps 21
    python benchmarks/ab.py W2 torch --epochs 2

The older commit's ``src/inertia`` is taken with ``git archive`` into a temporary folder and
imported as the package ``inertia_base`` (its module-path strings rewritten), so both run in
this interpreter. A workload (``inertia.bench.workloads``) is trained on its first 2,048 rows
without shuffling: ``compiled`` is ``fit``'s compiled loop, ``engine`` ``fit(compiled=False)``
on the NumPy engine, ``torch`` the torch engine. Each rep is one ``fit`` of ``--epochs`` epochs
(default: about 0.1 s of work), timed in thread CPU time; the report is each side's median
time a step and the median of the per-pair ratios today / base. Prints only; nothing is
written. Needs git and the repository's history.
"""

from __future__ import annotations

import argparse
import importlib
import os
import pathlib
import statistics
import subprocess
import sys
import tempfile
import time

ROOT = pathlib.Path(__file__).resolve().parent.parent
BASE = "0713d33"         # the code before the restructuring (docs/ARCHITECTURE.md, "Speed")
MODES = ("compiled", "engine", "torch")


def base_package(commit, folder):
    """Unpack ``commit``'s src/inertia into ``folder``/inertia_base and return the module."""
    archive = subprocess.run(["git", "-C", str(ROOT), "archive", commit, "src/inertia"],
                             check=True, capture_output=True).stdout
    subprocess.run(["tar", "-x", "-C", folder], input=archive, check=True)
    pkg = pathlib.Path(folder) / "inertia_base"
    (pathlib.Path(folder) / "src" / "inertia").rename(pkg)
    for path in pkg.rglob("*.py"):
        text = path.read_text()
        for quote in ('"', "'"):
            text = text.replace(f"{quote}inertia.", f"{quote}inertia_base.")
        path.write_text(text)
    sys.path.insert(0, folder)
    return importlib.import_module("inertia_base")


def trainer(pkg, workload, X, y, mode):
    """fit(epochs) on ``pkg``'s network for the workload (the same weights seed both sides)."""
    layers = [pkg.Dense(u, a) for u, a in zip(workload.sizes[1:], workload.acts)]
    net = pkg.Network(workload.sizes[0], layers, seed=0, dtype="float32",
                      engine="torch" if mode == "torch" else "numpy")
    opt = pkg.SGD(workload.lr, momentum=workload.momentum)

    def run(epochs):
        pkg.fit(net, X, y, loss=workload.loss, optimizer=opt, epochs=epochs,
                batch_size=workload.batch, shuffle=False, progress=False,
                compiled=mode == "compiled")
    return run


def measure(runs, epochs, steps, reps):
    """{side: [seconds a step, one per rep]}, the sides alternated (order flipped each rep)."""
    times = {k: [] for k in runs}
    for i in range(reps):
        for k in (list(runs) if i % 2 == 0 else list(runs)[::-1]):
            t0 = time.thread_time()
            runs[k](epochs)
            times[k].append((time.thread_time() - t0) / (epochs * steps))
    return times


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("workload", help="W1, W2, W3 or W4")
    p.add_argument("mode", choices=MODES)
    p.add_argument("--base", default=BASE, help=f"the older commit (default {BASE})")
    p.add_argument("--reps", type=int, default=15, help="alternations (default 15)")
    p.add_argument("--epochs", type=int, default=None, help="epochs a rep")
    args = p.parse_args(argv)
    sys.path.insert(0, str(ROOT / "src"))
    import inertia
    from inertia.bench.workloads import WORKLOADS, make_data

    if args.workload not in WORKLOADS:
        p.error(f"unknown workload {args.workload!r}: choose from {', '.join(WORKLOADS)}")
    if args.reps < 1 or (args.epochs is not None and args.epochs < 1):
        p.error("--reps and --epochs must be at least 1")
    w = WORKLOADS[args.workload]
    X, y = make_data(w, w.n)
    X, y = X[:2048], y[:2048]
    steps = -(-X.shape[0] // (w.batch or X.shape[0]))
    with tempfile.TemporaryDirectory() as folder:
        try:
            base = base_package(args.base, folder)
        except subprocess.CalledProcessError as ex:
            p.error(f"--base {args.base}: git could not give its src/inertia "
                    f"({ex.stderr.decode().strip()[:200]})")
        runs = {"base": trainer(base, w, X, y, args.mode),
                "today": trainer(inertia, w, X, y, args.mode)}
        for run in runs.values():
            run(1)                                   # compile and warm up
        epochs = args.epochs or max(1, int(0.1 / (steps * (2e-6 if args.mode == "compiled"
                                                           else 1e-4))))
        times = measure(runs, epochs, steps, args.reps)
    for k, v in times.items():
        print(f"{k:>5}: median {statistics.median(v) * 1e6:9.2f} us a step "
              f"(min {min(v) * 1e6:.2f})")
    ratios = [a / b for a, b in zip(times["today"], times["base"])]
    print(f"{args.workload} {args.mode}: today / {args.base} = {statistics.median(ratios):.3f} "
          f"(median of {args.reps} pairs; {epochs} epochs of {steps} steps a rep)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
