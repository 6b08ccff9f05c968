"""``inertia translate``: SGD with momentum in another framework's convention."""

from __future__ import annotations

from .. import schedules
from ..optim import CONVENTIONS, SGD
from .common import CLIError, int_arg


def add_parser(subparsers):
    conv = ", ".join(CONVENTIONS)
    p = subparsers.add_parser(
        "translate", help="the same optimizer in another framework's convention",
        description="Translate SGD with momentum from one convention into another: print both "
                    "frameworks' calls and what is exact, or why no translation exists.")
    p.add_argument("--from", dest="source", required=True, choices=list(CONVENTIONS),
                   metavar="CONVENTION", help=f"source convention: {conv}")
    p.add_argument("--to", required=True, choices=list(CONVENTIONS), metavar="CONVENTION",
                   help="target convention")
    p.add_argument("--lr", type=float, default=0.01, help="learning rate (default 0.01)")
    p.add_argument("--momentum", type=float, default=0.0, help="momentum in [0, 1) (default 0)")
    p.add_argument("--dampening", type=float, default=0.0, help="dampening (pytorch only)")
    p.add_argument("--nesterov", action="store_true", help="Nesterov momentum")
    p.add_argument("--weight-decay", type=float, default=0.0, help="weight decay (default 0)")
    p.add_argument("--momentum-correction", action="store_true",
                   help="the source rescales its velocity when the learning rate changes")
    p.add_argument("--lr-schedule", default=None,
                   help="the source's schedule: constant | step:STEPS[,GAMMA] | "
                        "inverse_scaling[:POWER] | cosine[:FINAL] | warmup:STEPS | one_cycle")
    p.add_argument("--steps", type=int_arg, default=1000,
                   help="length of the run, for schedules that need one (default 1000)")
    p.set_defaults(func=cmd_translate)
    return p


def cmd_translate(args):
    from ..optim.translate import framework_call, inertia_call, translation

    src = SGD(args.lr, momentum=args.momentum, dampening=args.dampening,
              nesterov=args.nesterov, weight_decay=args.weight_decay, convention=args.source,
              momentum_correction=args.momentum_correction)
    if args.steps < 1:
        raise CLIError(f"--steps must be at least 1, got {args.steps}")
    sched = schedules.parse(args.lr_schedule, args.lr, args.steps, "lr") \
        if args.lr_schedule else None
    tr = translation(src, args.to, sched)
    source, target = framework_call(src), framework_call(tr.target)
    print(f"inertia translate: {args.source} -> {args.to}, "
          + (f"lr schedule {sched!r}" if sched else "constant learning rate"))
    print(f"  from    {source.call}")
    print(f"  to      {target.call}")
    if not target.call.startswith("inertia."):
        print(f"  inertia {inertia_call(tr.target)}")
    if tr.lr_schedule is not None and tr.lr_factor != 1.0:
        print(f"  target lr schedule {tr.lr_schedule!r}")
    print("notes:")
    for note in tr.notes + target.notes:
        print(f"  - {note}")
    return 0


