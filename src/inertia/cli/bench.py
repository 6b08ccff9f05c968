"""``inertia bench``: delegates to the benchmark's own main, imported only when it runs
(the benchmark never imports the command line)."""

from __future__ import annotations

import argparse


def add_parser(subparsers):
    # inertia.bench parses its own options (inertia bench --help): everything after "bench"
    # goes to it untouched (no prefix character can occur in an argument, so nothing there
    # is taken for an option of this parser), and the benchmark is imported only when run.
    p = subparsers.add_parser(
        "bench", help="time inertia against PyTorch, JAX, scikit-learn and NumPy",
        add_help=False, prefix_chars="\0")
    p.add_argument("bench_args", nargs=argparse.REMAINDER)
    p.set_defaults(func=cmd_bench)
    return p


def cmd_bench(args):
    """``inertia bench ARGS``: the benchmark's own main (inertia.bench.run), imported here."""
    from ..bench import main as bench_main

    return bench_main(args.bench_args)


