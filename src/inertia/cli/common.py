"""What the commands share: errors, layer and integer flags, data loading, the model file's
training record, the optimizer flags, and formatting."""

from __future__ import annotations

import argparse
import contextlib
import os

import numpy as np

from .. import data as datasets
from ..ops import losses
from ..network import Dense, parameter_count

DEFAULT_OUT = "inertia-out"


class CLIError(ValueError):
    """Bad input on the command line: printed as one line, exit status 2."""



def parse_layers(text):
    """'32:sigmoid,16:tanh,1:linear' -> [Dense(32, 'sigmoid'), ...]."""
    layers = []
    for part in text.split(","):
        part = part.strip()
        if not part:
            continue
        units, _, act = part.partition(":")
        try:
            layers.append(Dense(int(units), act.strip() or "linear"))
        except ValueError as ex:
            why = str(ex) if _is_int(units) else "write UNITS:ACTIVATION, e.g. 32:sigmoid"
            raise CLIError(f"--layers {part!r}: {why}") from None
    if not layers:
        raise CLIError("--layers is empty: write e.g. 32:sigmoid,16:tanh,1:linear")
    return layers


def _is_int(text):
    try:
        int(text)
    except ValueError:
        return False
    return True


def int_arg(text):
    """An integer flag's value: '1000', '1_000' or '1e6' (a whole number)."""
    try:
        return int(text)
    except ValueError:
        pass
    try:
        value = float(text)
    except ValueError:
        value = float("nan")
    if not np.isfinite(value) or value != int(value):
        raise argparse.ArgumentTypeError(f"not a whole number: {text!r}")
    return int(value)


def at_least(args, flag, minimum):
    """Check an integer flag (None = not given) against its minimum, naming the flag."""
    value = getattr(args, flag.lstrip("-").replace("-", "_"), None)
    if value is not None and value < minimum:
        raise CLIError(f"{flag} must be at least {minimum}, got {value}")


def describe(net):
    sizes = "-".join(str(s) for s in net.sizes)
    return f"{sizes} ({', '.join(net.acts)})"


def load_data(args, target_kind="values"):
    """(Table, label, data record) from a built-in set name or a file path; the record says
    how to load the same data again (kept in a saved model for ``--resume``). A file's target
    column is read as ``target_kind`` says (``inertia.data.load_table``)."""
    name = args.data
    for flag in ("--samples", "--dim"):
        at_least(args, flag, 1)
    at_least(args, "--data-seed", 0)
    seed = args.data_seed or 0
    if name in datasets.BUILTIN:
        if getattr(args, "target", None) is not None:
            raise CLIError(f"--target picks a column of a data file; the built-in set {name} "
                           "has its own target: leave --target out")
        if name == "smooth-regression":
            if args.dim is not None:
                raise CLIError("--dim sizes random-binary, not smooth-regression (4 inputs): "
                               "leave it out")
            n = args.samples or 10_000
            X, y = datasets.smooth_regression(n, seed=seed)
            rec = {"source": name, "samples": n, "data_seed": seed}
        else:
            n, dim = args.samples or 1000, args.dim or 1000
            X, y = datasets.random_binary(n, dim, seed=seed)
            rec = {"source": name, "samples": n, "dim": dim, "data_seed": seed}
        k = X.shape[1]
        table = datasets.Table(X, y, list(range(k)), k, k + 1)
        return table, f"{name} ({n} samples)" if args.samples else name, rec
    if not name or not os.path.exists(name):
        raise CLIError(f"--data {name!r} is neither a built-in set "
                       f"({', '.join(datasets.BUILTIN)}) nor an existing file")
    if args.samples is not None or args.dim is not None:
        raise CLIError("--samples and --dim size a built-in set, not the file --data "
                       f"{name}: leave them out")
    table = datasets.load_table(name, target=args.target, target_kind=target_kind)
    return table, name, {"source": os.path.abspath(name), "target": args.target}


def default_loss(layers):
    return {"softmax": "cross_entropy", "sigmoid": "bce"}.get(layers[-1].activation, "mse")


def fmt(x):
    return f"{x:.6g}"


def print_curve(hist, every_hint=10):
    n = len(hist.loss)
    if n == 0:
        return
    marks = sorted(set(np.linspace(1, n, num=min(n, every_hint), dtype=int).tolist()))
    for ep in marks:
        line = f"  epoch {ep:>{len(str(n))}}  loss {fmt(hist.loss[ep - 1])}"
        if hist.val_loss:
            line += f"  test {fmt(hist.val_loss[ep - 1])}"
        print(line)


RECORD_BYTES = 64     # an epoch's History entries: two Python floats in lists, 32 bytes each
RUN_BYTES = 4096      # a run's own objects in a sweep beyond its arrays (network, optimizer)


def check_fit_memory(net, n_rows, batch_size, n_val, epochs=0, runs=1):
    """Refuse a run whose training buffers, or its ``runs`` × ``epochs`` per-epoch records,
    cannot fit (before any is allocated)."""
    rows = min(batch_size or n_rows, n_rows) + n_val
    nbytes = 3 * rows * sum(net.sizes) * net.dtype.itemsize + n_rows * net.n_inputs * 8
    datasets.check_memory(nbytes, f"training on {n_rows:,} rows through {describe(net)}")
    datasets.check_memory(RECORD_BYTES * epochs * runs,
                          f"the loss records of {epochs:,} epochs"
                          + (f" × {runs:,} runs" if runs > 1 else ""))
    n_params = parameter_count(net.sizes)
    datasets.check_memory(runs * (6 * n_params * net.dtype.itemsize + RUN_BYTES),
                          f"the state of {runs:,} runs")


def check_extra(extra, net, path):
    """The saved model's training record, type-checked (an edited file: one line)."""
    def bad(key):
        return CLIError(f"{path} is a damaged inertia model file (its {key} record is "
                        f"{extra.get(key)!r}): save it again with `inertia train --save`")

    if extra.get("loss") is not None and extra["loss"] not in losses.NAMES:
        raise bad("loss")
    tf = extra.get("test_fraction")
    if tf is not None and not (isinstance(tf, (int, float)) and 0 <= tf < 1):
        raise bad("test_fraction")
    ss = extra.get("split_seed")
    if ss is not None and not (isinstance(ss, int) and ss >= 0):
        raise bad("split_seed")
    for key, n in (("mean", net.n_inputs), ("std", net.n_inputs),
                   ("y_mean", net.n_outputs), ("y_std", net.n_outputs)):
        if extra.get(key) is None:
            continue
        try:
            a = np.asarray(extra[key], dtype=np.float64)
        except (TypeError, ValueError):
            raise bad(key) from None
        if a.shape != (n,) or not np.all(np.isfinite(a)) or key.endswith("std") and \
                not np.all(a > 0):
            raise bad(key)
        extra[key] = a
    if (extra.get("mean") is None) != (extra.get("std") is None) or \
            (extra.get("y_mean") is None) != (extra.get("y_std") is None):
        raise bad("scaling")
    if extra.get("columns") is not None and not _valid_columns(extra["columns"], net):
        raise bad("columns")
    if extra.get("task", "regression") not in ("regression", "classification") or \
            (extra.get("task") == "classification") != (extra.get("classes") is not None):
        raise bad("task")
    if extra.get("classes") is not None and not _valid_classes(extra["classes"], net):
        raise bad("classes")
    if extra.get("trained") is not None and not isinstance(extra["trained"], dict):
        raise bad("trained")
    trained = extra.get("trained") or {}
    for key, least in (("batch_size", 1), ("seed", 0), ("epochs", 0)):
        value = trained.get(key)
        if value is not None and not (isinstance(value, int) and not isinstance(value, bool)
                                      and value >= least):
            raise bad("trained")
    return extra


def _valid_classes(classes, net):
    """K distinct names, and an output layer for K classes (K softmax units, or 1 sigmoid
    unit for 2)."""
    ok = isinstance(classes, list) and len(classes) >= 2 and \
        all(isinstance(c, str) for c in classes) and len(set(classes)) == len(classes)
    return ok and (net.output_activation == "softmax" and net.n_outputs == len(classes) or
                   net.output_activation == "sigmoid" and net.n_outputs == 1 == len(classes) - 1)


def _valid_columns(rec, net):
    if not isinstance(rec, dict) or not _int_in(rec.get("n_columns"), net.n_inputs, None):
        return False
    names, feats = rec.get("names"), rec.get("features")
    ok_names = names is None or (isinstance(names, list) and len(names) == net.n_inputs
                                 and all(isinstance(c, str) for c in names))
    ok_feats = feats is None or (isinstance(feats, list) and len(feats) == net.n_inputs and
                                 all(_int_in(f, 0, rec["n_columns"] - 1) for f in feats))
    t, tn = rec.get("target"), rec.get("target_name")
    return (ok_names and ok_feats and (names is None) != (feats is None)
            and (t is None or _int_in(t, 0, rec["n_columns"] - 1))
            and (tn is None or isinstance(tn, str)))


def _int_in(v, lo, hi):
    return isinstance(v, int) and not isinstance(v, bool) and v >= lo and (hi is None or v <= hi)



def json_ready(extra):
    """``extra`` with arrays as lists (the model file's metadata is JSON)."""
    return {k: v.tolist() if isinstance(v, np.ndarray) else v for k, v in extra.items()}


def optimizer_flags(args):
    """The optimizer hyperparameters given on the command line (None = not given)."""
    flags = {"lr": args.lr, "momentum": args.momentum, "dampening": args.dampening,
             "weight_decay": args.weight_decay, "nu": args.nu, "eps": args.eps}
    if args.nesterov:
        flags["nesterov"] = True
    if args.momentum_correction:
        flags["momentum_correction"] = True
    if args.betas is not None:
        try:
            flags["betas"] = [float(b) for b in args.betas.split(",")]
        except ValueError:
            raise CLIError(f"--betas {args.betas!r}: write numbers separated by commas, "
                           "e.g. 0.9,0.999") from None
    return {k: v for k, v in flags.items() if v is not None}


# which flags each optimizer takes
OPTIMIZER_FLAGS = {
    "sgd": {"lr", "momentum", "dampening", "nesterov", "weight_decay", "momentum_correction"},
    "qhm": {"lr", "momentum", "nu", "weight_decay"},
    "aggmo": {"lr", "betas", "weight_decay"},
    "adam": {"lr", "betas", "eps", "weight_decay"},
    "adamw": {"lr", "betas", "eps", "weight_decay"},
}


def build_optimizer(args):
    from ..optim import OPTIMIZERS

    kind = args.optimizer or "sgd"
    flags = optimizer_flags(args)
    extra = set(flags) - OPTIMIZER_FLAGS[kind]
    if extra:
        names = ", ".join("--" + k.replace("_", "-") for k in sorted(extra))
        verb = "does" if len(extra) == 1 else "do"
        raise CLIError(f"{names} {verb} not apply to --optimizer {kind}: it takes "
                       + ", ".join("--" + k.replace("_", "-")
                                   for k in sorted(OPTIMIZER_FLAGS[kind])))
    auto = [k for k in ("lr", "momentum") if flags.get(k) == "auto"]
    if auto and kind != "sgd":
        raise CLIError(f"--{auto[0]} auto chooses SGD's learning rate and momentum, not "
                       f"{kind}'s: use --optimizer sgd, or give --{auto[0]} a number")
    if kind in ("sgd", "qhm", "aggmo"):         # adam and adamw keep their own 0.001
        flags.setdefault("lr", 0.01)
    if kind == "sgd":
        flags["convention"] = args.convention or "pytorch"
    elif args.convention:
        raise CLIError(f"--convention applies to --optimizer sgd only, not {kind}")
    if kind == "adam" and args.amsgrad or kind == "adamw" and args.amsgrad:
        flags["amsgrad"] = True
    elif args.amsgrad:
        raise CLIError("--amsgrad applies to --optimizer adam or adamw only")
    with naming_flags(optimizer_flags(args)):
        return OPTIMIZERS[kind](**flags)


@contextlib.contextmanager
def naming_flags(flags):
    """Add the optimizer flags that were given to an optimizer's ValueError, so that its
    message names them (``learning rate must be > 0 (given --lr -0.1)``)."""
    try:
        yield
    except ValueError as ex:
        given = ", ".join(f"--{k.replace('_', '-')}" + ("" if v is True else " " + (",".join(map(str, v)) if isinstance(v, list)
                                                        else str(v)))
                          for k, v in flags.items() if k != "convention" and v is not False)
        raise CLIError(f"{ex} (given {given})" if given else str(ex)) from None


def describe_optimizer(opt):
    cfg = opt.config()
    if opt.kind == "sgd":
        return (f"convention {cfg['convention']}, lr {cfg['lr']:g}, momentum {cfg['momentum']:g}"
                + (f", dampening {cfg['dampening']:g}" if cfg["dampening"] else "")
                + (", nesterov" if cfg["nesterov"] else "")
                + f", weight decay {cfg['weight_decay']:g}"
                + (", momentum correction" if cfg.get("momentum_correction") else ""))
    parts = []
    for k, v in cfg.items():
        if isinstance(v, list):
            v = ",".join(f"{x:g}" for x in v)
        elif isinstance(v, bool):
            if not v:
                continue
            v = ""
        else:
            v = f"{v:g}"
        parts.append(f"{k.replace('_', ' ')} {v}".strip())
    return f"{type(opt).__name__} " + ", ".join(parts)


def add_data_args(p, default="smooth-regression", resumable=False):
    """--data and its companions; ``default`` None: not given (the command fills it in),
    ``resumable``: a resumed model's recorded data is the default (train)."""
    p.add_argument("--data", default=default,
                   help="built-in set (smooth-regression, random-binary) or a CSV/.npy/.npz "
                        "file (default smooth-regression" + (", or the resumed model's "
                                                             "recorded data" if resumable
                                                             else "") + ")")
    p.add_argument("--target", default=None,
                   help="target column of a CSV: a header name or a 0-based index "
                        "(default: the last column)")
    p.add_argument("--samples", type=int_arg, default=None,
                   help="size of a built-in set (default 10000 for smooth-regression, 1000 "
                        "for random-binary)")
    p.add_argument("--dim", type=int_arg, default=None,
                   help="input size of random-binary (default 1000)")
    p.add_argument("--data-seed", type=int_arg, default=None,
                   help="seed of a built-in set (default 0)")

