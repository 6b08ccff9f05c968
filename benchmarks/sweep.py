#!/usr/bin/env python
"""A sweep against sequential fits, in one process: ``python benchmarks/sweep.py``
(the protocol: ``inertia.bench.sweeps``; the same as ``inertia bench --sweep``). Prints
run-epochs a second each way and the ratios. Timings mean something only on an idle
machine."""

from __future__ import annotations

import argparse

from inertia.bench.sweeps import measure


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--epochs", type=int, default=50)
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--rows", type=int, default=10_000)
    args = ap.parse_args(argv)
    measure(args.rows, args.epochs, args.rounds)


if __name__ == "__main__":
    main()
