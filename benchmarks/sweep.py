#!/usr/bin/env python
"""A sweep against sequential fits, in one process, and against PyTorch's sequential runs and
JAX's vmapped grid: ``python benchmarks/sweep.py [--jax-python PATH]`` (the protocol:
``inertia.bench.sweeps``; the same as ``inertia bench --sweep``). Prints run-epochs a second
each way and the ratios. Timings mean something only on an idle machine."""

from __future__ import annotations

import argparse

from inertia.bench.sweeps import measure, peers_option


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--epochs", type=int, default=50)
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--rows", type=int, default=10_000)
    ap.add_argument("--peers", default=None, help="comma list from torch,jax, or none")
    ap.add_argument("--jax-python", default=None, metavar="PATH",
                    help="the interpreter (with NumPy, jax and optax) of the JAX peer")
    ap.add_argument("--configs", type=int, default=64,
                    help="the grid's size, a square (64 = 8 x 8, 256 = 16 x 16)")
    ap.add_argument("--device", default=None,
                    help="the torch engine's and PyTorch's device (cpu, cuda; default cpu)")
    args = ap.parse_args(argv)
    measure(args.rows, args.epochs, args.rounds, peers=peers_option(args.peers),
            jax_python=args.jax_python, configs=args.configs, device=args.device)


if __name__ == "__main__":
    main()
