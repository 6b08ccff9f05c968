"""``inertia predict``: a saved model's predictions for a data file, as CSV."""

from __future__ import annotations

import sys

import numpy as np

from .. import data as datasets
from ..files import atomic_write, check_output
from ..serialize import load
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
    p.set_defaults(func=cmd_predict)
    return p


def predict_columns(args, net, extra):
    """The model's input columns of ``--data`` (selected by name or position as recorded)."""
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
    net, _ = load(args.model)
    extra = check_extra(dict(net.extra), net, args.model)
    X = predict_columns(args, net, extra)
    if extra.get("mean") is not None:
        X, _, _ = datasets.standardize(X, extra["mean"], extra["std"])
    datasets.check_range(X, [f"input {i}" for i in range(X.shape[1])], net.dtype, args.data)
    out = net.predict(X)
    if extra.get("y_mean") is not None:        # back to the target's own units
        out = np.asarray(out, dtype=np.float64) * extra["y_std"] + extra["y_mean"]
    if net.output_activation == "softmax":
        header = [f"p{k}" for k in range(out.shape[1])] + ["class"]
        table = np.column_stack([out, out.argmax(axis=1)])
        fmt = ["%.8g"] * out.shape[1] + ["%d"]
    else:
        header = ["prediction"] if out.shape[1] == 1 else [f"y{k}" for k in range(out.shape[1])]
        table, fmt = out, "%.8g"

    def write(f):
        np.savetxt(f, table, delimiter=",", header=",".join(header), comments="", fmt=fmt)

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


