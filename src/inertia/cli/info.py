"""``inertia info``: what a model file holds, in words: the network, the optimizer and its
state, the training record (epochs, steps, final losses, accuracies), the data, its columns
and scaling, and a classifier's class names. A record an older file lacks is "not recorded"."""

from __future__ import annotations

import numpy as np

from ..serialize import load
from .common import check_extra, describe, describe_optimizer, fmt


def add_parser(subparsers):
    p = subparsers.add_parser("info", help="print what a saved model file holds",
                              description="Print what a model file written by `inertia train "
                                          "--save` holds.")
    p.add_argument("model", help="a model file written by `inertia train --save`")
    p.set_defaults(func=cmd_info)
    return p


def cmd_info(args):
    net, opt = load(args.model)
    extra = check_extra(dict(net.extra), net, args.model)
    print(f"{args.model}: an inertia model")
    for key, text in model_lines(net, opt) + record_lines(extra):
        print(f"  {key:<10} {text}")
    return 0


def model_lines(net, opt):
    """[(heading, text)] of the network and the optimizer."""
    n_params = sum(w.size + b.size for w, b in net.parameters())
    layers = "; ".join(f"{layer.units} {act}" for layer, act in zip(net.layers, net.acts))
    lines = [("network", f"{describe(net)}, {n_params:,} parameters, {net.dtype.name}, "
                         f"seed {net.seed}"),
             ("layers", f"{net.n_inputs} inputs; {layers}")]
    if opt is None:
        lines.append(("optimizer", "not recorded"))
    else:
        state = opt.state
        lines.append(("optimizer", f"{opt.kind}: {describe_optimizer(opt)}"))
        lines.append(("state", f"{state.step} steps taken" if state is not None
                      else "none (no step taken)"))
    return lines


def record_lines(extra):
    """[(heading, text)] of the training record that ``inertia train --save`` keeps."""
    lines = [("loss", extra.get("loss") or "not recorded")]
    classes = extra.get("classes")
    lines.append(("task", f"classification, {len(classes)} classes: {', '.join(classes)}"
                  if classes else extra.get("task") or "regression (not recorded)"))
    lines.append(("trained", _trained(extra.get("trained"))))
    lines.append(("data", _data(extra)))
    lines.append(("columns", _columns(extra.get("columns"))))
    lines.append(("scaling", _scaling(extra)))
    return lines


def _trained(rec):
    if not rec:
        return "not recorded"
    parts = [f"{rec.get('epochs')} epochs"]
    if rec.get("steps") is not None:
        parts.append(f"{rec['steps']} steps")
    if "batch_size" in rec:
        parts.append("full batch" if rec["batch_size"] is None else f"batch {rec['batch_size']}")
    for key, name in (("loss", "final training loss"), ("test_loss", "final test loss"),
                      ("train_accuracy", "training accuracy"),
                      ("test_accuracy", "test accuracy")):
        if isinstance(rec.get(key), (int, float)):
            parts.append(f"{name} {fmt(rec[key])}")
    return ", ".join(parts)


def _data(extra):
    rec = extra.get("data")
    if not isinstance(rec, dict):
        return "not recorded"
    text = str(rec.get("source"))
    if rec.get("samples") is not None:
        text += f" ({rec['samples']} samples, data seed {rec.get('data_seed', 0)})"
    tf = extra.get("test_fraction")
    if tf:
        text += f"; test fraction {tf:g}, split seed {extra.get('split_seed', 0)}"
    return text


def _columns(cols):
    if not cols:
        return "not recorded"
    inputs = cols.get("names") or [f"column {i}" for i in cols.get("features") or []]
    target = cols.get("target_name") or (f"column {cols['target']}"
                                         if cols.get("target") is not None else "y")
    return (f"inputs {', '.join(map(str, inputs))}; target {target} "
            f"(of {cols.get('n_columns')} columns)")


def _scaling(extra):
    if extra.get("mean") is None:
        return "none (raw inputs)"
    text = ("inputs standardised (mean " + _vec(extra["mean"]) + "; std "
            + _vec(extra["std"]) + ")")
    if extra.get("y_mean") is not None:
        text += f"; target standardised (mean {_vec(extra['y_mean'])}; std {_vec(extra['y_std'])})"
    return text


def _vec(a):
    a = np.asarray(a, dtype=np.float64).reshape(-1)
    shown = ", ".join(f"{v:.4g}" for v in a[:6])
    return shown + (", ..." if a.size > 6 else "")
