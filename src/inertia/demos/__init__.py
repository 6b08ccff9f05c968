"""The demonstrations: each module draws one finding about momentum.

A demo module defines ``NAME``, ``SUMMARY`` (one line), ``add_arguments(parser)`` and
``run(args) -> DemoResult``. ``run`` computes its finding with the library itself (optimizers,
``fit``, engines), writes PNG files (and a GIF when ``args.gif``) into ``args.out``, and returns
the text it prints and the files it wrote. Registered in ``DEMOS`` by name; modules are imported
only when listed or run, so ``import inertia`` stays light.
"""

from __future__ import annotations

import importlib
from dataclasses import dataclass, field

# name -> module (relative to inertia.demos)
DEMOS = {
    "ball": "ball",
    "smoothing": "smoothing",
    "decay": "decay",
    "pingpong": "pingpong",
    "landscape": "landscape",
    "rate": "rate",
}


@dataclass
class DemoResult:
    """What a demo found: ``lines`` to print, ``files`` written, and ``findings``, a dict of
    the numbers behind the lines (what the tests assert on)."""

    lines: list = field(default_factory=list)
    files: list = field(default_factory=list)
    findings: dict = field(default_factory=dict)


def module(name):
    if name not in DEMOS:
        raise ValueError(f"unknown demo {name!r}: choose one of {', '.join(DEMOS)} "
                         "(inertia demo --list)")
    return importlib.import_module(f"inertia.demos.{DEMOS[name]}")


def available():
    """[(name, summary)] for the demos whose modules exist."""
    out = []
    for name in DEMOS:
        try:
            out.append((name, module(name).SUMMARY))
        except ImportError:
            continue
    return out
