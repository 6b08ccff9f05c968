#!/usr/bin/env python
"""Run inertia's benchmark: ``python benchmarks/run.py [--quick] [options]``.

The same as ``inertia bench``; the results go to benchmarks/results/ beside this script
unless ``--out`` says otherwise. See benchmarks/README.md.
"""

import os
import sys

from inertia.bench import main

if __name__ == "__main__":          # the guard matters: worker processes import this file
    argv = sys.argv[1:]
    if not any(a == "--out" or a.startswith("--out=") for a in argv):
        argv += ["--out", os.path.join(os.path.dirname(os.path.abspath(__file__)), "results")]
    raise SystemExit(main(argv))
