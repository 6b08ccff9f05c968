"""``inertia info``: what a model file holds."""

from __future__ import annotations


def add_parser(subparsers):
    p = subparsers.add_parser("info", help="print what a saved model file holds")
    p.add_argument("model", help="a model file written by `inertia train --save`")
    p.set_defaults(func=cmd_info)
    return p


def cmd_info(args):
    raise NotImplementedError
