"""The ``inertia`` command: one module per command, assembled here.

Each command module defines ``add_parser(subparsers)``, which adds its subcommand and sets
``func`` (the function the command runs, returning the exit status). ``COMMANDS`` lists them
in the order ``inertia --help`` shows; adding a command is one module and one name here.

Every error is one line on stderr (``inertia: error: ...``) and a non-zero exit, never a
traceback; everything is checked before work starts. Exit status: 0 done, 2 bad input
(argparse's own errors too), 3 a diverged training run, 130 interrupted, 141 a closed pipe,
143 terminated (SIGTERM, ``train`` keeping its checkpoint).
"""

from __future__ import annotations

import argparse
import importlib
import os
import sys

from .common import CLIError, int_arg, parse_layers  # noqa: F401  (re-exported)
from .compare import run_compare  # noqa: F401  (re-exported)

# the command modules (inertia.cli.<name>), in the order of ``inertia --help``
COMMANDS = ("train", "tune", "compare", "sweep", "demo", "bench", "predict", "translate", "info")


class Parser(argparse.ArgumentParser):
    """argparse with its errors as one line: ``inertia: error: ...`` and exit status 2."""

    def error(self, message):
        self.exit(2, f"inertia: error: {message} (see {self.prog} --help)\n")


def build_parser():
    ap = Parser(
        prog="inertia",
        description="Train fully-connected networks by gradient descent with momentum.")
    ap.add_argument("--version", action="version", version="inertia 0.1.0")
    sub = ap.add_subparsers(dest="command", metavar="COMMAND")
    for name in COMMANDS:
        importlib.import_module(f"{__name__}.{name}").add_parser(sub)
    return ap


def main(argv=None):
    try:
        ap = build_parser()
    except KeyboardInterrupt:
        print("inertia: interrupted", file=sys.stderr)
        return 130
    args = ap.parse_args(argv)
    args.argv = list(sys.argv[1:] if argv is None else argv)     # recorded by inertia bench
    if not getattr(args, "func", None):
        ap.print_help()
        return 2
    try:
        return args.func(args)
    except ValueError as ex:
        print("inertia: error: " + " ".join(str(ex).split()), file=sys.stderr)
        return 2
    except BrokenPipeError:                    # output piped into head and the like
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        return 141
    except MemoryError:
        print("inertia: error: out of memory: ask for less (fewer --samples, smaller "
              "--layers or --batch-size)", file=sys.stderr)
        return 2
    except OSError as ex:
        where = f" ({ex.filename})" if ex.filename else ""
        print(f"inertia: error: {ex.strerror or ex}{where}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("inertia: interrupted", file=sys.stderr)
        return 130

