"""``inertia predict``: a saved model's predictions for a data file, as CSV."""

from __future__ import annotations

import csv
import io
import os
import sys

import numpy as np

from .. import data as datasets
from ..files import atomic_write, check_distinct, check_output
from ..serialize import load
from . import classes as classify
from .common import CLIError, check_extra, describe


def add_parser(subparsers):
    p = subparsers.add_parser("predict", help="write a saved model's predictions to CSV")
    p.add_argument("model", help="a model file written by `inertia train --save`")
    p.add_argument("--data", required=True,
                   help="CSV (or .npy, or .npz with X) of inputs: the model's input columns "
                        "are selected by name (or position) as recorded; a target column "
                        "may be present or not")
    p.add_argument("--target", default=None,
                   help="for models saved before columns were recorded: the target column "
                        "to drop (default last)")
    p.add_argument("--out", required=True, help="CSV file to write; - for standard output")
    p.add_argument("--proba", action="store_true",
                   help="a classifier: after each row's class, one column per class (headed "
                        "by its name) with its probability")
    p.set_defaults(func=cmd_predict)
    return p


def predict_columns(args, net, extra):
    """The model's input columns of ``--data`` (selected by name or position as recorded)."""
    cols = extra.get("columns")
    if extra.get("classes") is not None and cols is not None:   # a target of text is dropped
        recorded = cols["target_name"] if cols.get("target_name") is not None \
            else cols.get("target")
        table = datasets.load_table(args.data, target=recorded, need_target=False,
                                    target_kind="auto")
    else:
        table = datasets.load_table(args.data, need_target=False)
    named = bool(table.features) and isinstance(table.features[0], str)
    header = table.features if named else None
    cols = extra.get("columns")
    width = table.X.shape[1]
    if cols is None:                           # an older model: inputs first, maybe a target
        target = None
        if width == net.n_inputs + 1:
            target = datasets._target_column(args.target, header or list(range(width)),
                                             named, args.data)
        cols = {"names": None, "features": None, "target": target, "target_name": None,
                "n_columns": net.n_inputs + 1}
    elif args.target is not None:
        recorded = cols["target_name"] if cols.get("target_name") is not None \
            else cols.get("target")
        if str(args.target) != str(recorded):
            raise CLIError(f"--target {args.target}: the model was trained to predict column "
                           f"{recorded!r}; its columns are recorded: leave --target out")
    X, _ = datasets.select_columns(table.X, header, cols, net.n_inputs, args.data)
    return X


def cmd_predict(args):
    check_output(args.out, "--out", stdout_ok=True)
    if os.path.splitext(args.out)[1].lower() in (".npz", ".npy"):
        raise CLIError(f"--out {args.out}: predictions are written as CSV text: give a "
                       "name ending in .csv, or - for standard output")
    check_distinct([("--out", args.out)], [("the model", args.model), ("--data", args.data)])
    net, _ = load(args.model)
    extra = check_extra(dict(net.extra), net, args.model)
    if args.proba and extra.get("classes") is None:
        raise CLIError(f"--proba: {args.model} is not a classifier (it records no classes): "
                       "leave --proba out")
    X = predict_columns(args, net, extra)
    datasets.check_range(X, [f"input {i}" for i in range(X.shape[1])], net.dtype, args.data)
    out = net.predict(X)                       # applies the stored scaling (net.scaling)
    if extra.get("classes") is not None:
        write = class_writer(out, extra, args.proba)
    else:
        write = value_writer(out, extra, net)
    if args.out == "-":
        sys.stdout.flush()
        stream = getattr(sys.stdout, "buffer", sys.stdout)     # text streams take str too
        write(stream)
        stream.flush()
        print(f"wrote {len(out)} predictions of {describe(net)} to standard output",
              file=sys.stderr)
        return 0
    atomic_write(args.out, write, "--out")
    print(f"wrote {len(out)} predictions of {describe(net)} to {args.out}")
    return 0


def value_writer(out, extra, net):
    """write(f) of a model without classes: its outputs (``net.predict`` gives them in the
    target's units), a softmax output as probabilities p0.. and the most probable index."""
    if net.output_activation == "softmax":
        header = [f"p{k}" for k in range(out.shape[1])] + ["class"]
        table = np.column_stack([out, out.argmax(axis=1)])
        fmt = ["%.8g"] * out.shape[1] + ["%d"]
    else:
        header = ["prediction"] if out.shape[1] == 1 else [f"y{k}" for k in range(out.shape[1])]
        table, fmt = out, "%.8g"

    def write(f):
        np.savetxt(f, table, delimiter=",", header=",".join(header), comments="", fmt=fmt)

    return write


def class_writer(out, extra, proba):
    """write(f) of a classifier: each row's class by its name (the column headed by the
    target's name, or "class"), and with ``proba`` one probability column per class."""
    classes = extra["classes"]
    probs = classify.probabilities(out, len(classes))
    cols = extra.get("columns") or {}
    heading = cols.get("target_name") or "class"
    labels = [classes[k] for k in probs.argmax(axis=1)]

    def write(f):
        binary = not isinstance(f, io.TextIOBase)
        text = io.TextIOWrapper(f, encoding="utf-8", newline="") if binary else f
        rows = csv.writer(text, lineterminator="\n")
        rows.writerow([heading] + (classes if proba else []))
        for label, p in zip(labels, probs):
            rows.writerow([label] + ([f"{v:.8g}" for v in p] if proba else []))
        text.flush()
        if binary:
            text.detach()                      # leave f open for its owner

    return write
