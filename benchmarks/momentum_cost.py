#!/usr/bin/env python
"""Momentum's cost measured inside one process: ``python benchmarks/momentum_cost.py``.

``inertia bench`` runs every system in its own process, and two processes running the same
code can differ by 10% or more on a shared machine. Here the run with the workload's momentum
and the run with momentum 0 alternate in one process, rep by rep, from the same initial
weights, for W1 and W2 and for each way inertia trains them (the compiled loop, the engine-call
loop, the torch engine where installed). It prints the medians and their ratio and writes
``results/momentum-cost-YYYYMMDD-HHMMSS-HOST.json``.
"""

import argparse
import json
import os
import socket
import sys
import time

import numpy as np

import inertia
from inertia.bench.runners import initial_params
from inertia.bench.workloads import WORKLOADS, make_data
from inertia.serialize import atomic_write


def timed(net, opt, X, y, w, epochs, compiled):
    t0 = time.perf_counter()
    inertia.fit(net, X, y, w.loss, opt, epochs=epochs, batch_size=w.batch, shuffle=False,
                progress=False, compiled=compiled)
    return (time.perf_counter() - t0) / epochs


def measure(key, engine, compiled, reps, seconds):
    w = WORKLOADS[key]
    X, y = make_data(w)
    runs = {}
    for mu in (w.momentum, 0.0):
        net = inertia.Network(w.sizes[0], [inertia.Dense(u, a) for u, a in
                                           zip(w.sizes[1:], w.acts)], engine=engine)
        net.set_parameters(initial_params(w))
        runs[mu] = (net, inertia.SGD(w.lr, momentum=mu))
    per = min(timed(*runs[mu], X, y, w, 2, compiled) for mu in runs)      # warm-up
    epochs = max(1, int(seconds / per))
    times = {mu: [] for mu in runs}
    for _ in range(reps):
        for mu in runs:
            times[mu].append(timed(*runs[mu], X, y, w, epochs, compiled))
    a, b = (float(np.median(times[mu])) for mu in runs)
    return {"workload": key, "engine": engine, "compiled": compiled, "epochs_per_rep": epochs,
            "momentum": w.momentum, "epoch_s": times[w.momentum], "epoch_s_momentum_0":
            times[0.0], "median_s": a, "median_s_momentum_0": b, "ratio": a / b}


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--reps", type=int, default=9, help="alternations (default 9)")
    p.add_argument("--seconds", type=float, default=0.3, help="seconds a repetition")
    p.add_argument("--out", default=os.path.join(os.path.dirname(os.path.abspath(__file__)),
                                                  "results"))
    args = p.parse_args(argv)
    ways = [("numpy", None), ("numpy", False)]
    if "torch" in inertia.engines.available():
        ways.append(("torch", None))
    rows = []
    for key in ("W1", "W2"):
        for engine, compiled in ways:
            r = measure(key, engine, compiled, args.reps, args.seconds)
            rows.append(r)
            how = engine + ("" if compiled is None else " (engine calls)")
            print(f"{key} {how:22s} momentum {r['momentum']}: {r['median_s'] * 1e3:.4g} ms, "
                  f"momentum 0: {r['median_s_momentum_0'] * 1e3:.4g} ms, "
                  f"ratio {r['ratio']:.3f}", flush=True)
    stamp = time.strftime("%Y%m%d-%H%M%S")
    path = os.path.join(args.out, f"momentum-cost-{stamp}-{socket.gethostname()}.json")
    os.makedirs(args.out, exist_ok=True)
    record = {"date": time.strftime("%Y-%m-%dT%H:%M:%S%z"), "reps": args.reps,
              "command": " ".join(["python benchmarks/momentum_cost.py"] + sys.argv[1:]),
              "cpu_count": os.cpu_count(), "results": rows}
    data = json.dumps(record, indent=1).encode()
    atomic_write(path, lambda f: f.write(data))
    print(f"wrote {path}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
