"""``inertia demo``: the demonstrations of momentum, each with its own options."""

from __future__ import annotations

from .. import demos
from ..files import check_folder
from .common import DEFAULT_OUT


def add_parser(subparsers):
    p = subparsers.add_parser(
        "demo", help="draw what momentum does (inertia demo --list)",
        description="Demonstrations of momentum: each prints its finding and writes pictures.",
        epilog="each demo takes --out DIR (default inertia-out), --gif (an animation where the "
               "demo has one) and --quiet; inertia demo NAME --help lists its own options")
    p.add_argument("--list", action="store_true", help="list the demos")
    dsub = p.add_subparsers(dest="demo", metavar="NAME")
    for name in demos.DEMOS:
        try:
            mod = demos.module(name)
        except ImportError:
            continue
        dp = dsub.add_parser(name, help=mod.SUMMARY, description=mod.SUMMARY)
        dp.add_argument("--out", default=DEFAULT_OUT,
                        help=f"folder for the pictures (default {DEFAULT_OUT})")
        dp.add_argument("--gif", action="store_true", help="also write an animated GIF")
        dp.add_argument("--quiet", action="store_true", help="no progress bar")
        mod.add_arguments(dp)
        dp.set_defaults(func=cmd_demo, list=False)
    p.set_defaults(func=cmd_demo)
    return p


def cmd_demo(args):
    if args.list or not getattr(args, "demo", None):
        print("inertia demo NAME [--out DIR] [--gif] [options]: what momentum does, drawn")
        for name, summary in demos.available():
            print(f"  {name:<10} {summary}")
        return 0
    mod = demos.module(args.demo)
    check_folder(args.out, "--out")
    result = mod.run(args)
    for line in result.lines:
        print(line)
    if result.files:
        print("pictures: " + ", ".join(str(f) for f in result.files))
    return 0


