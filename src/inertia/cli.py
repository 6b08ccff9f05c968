"""The ``inertia`` command: train, compare, predict.

Every error is one line on stderr (``inertia: error: ...``) and a non-zero exit, never a
traceback; everything is checked before training starts.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import sys
import time
import warnings

import numpy as np

from . import data as datasets
from . import schedules
from .ops import losses
from .network import Dense, Network
from .optim import CONVENTIONS, SGD
from . import training
from .files import atomic_write, check_folder, check_output
from .serialize import load, save
from .training import fit

DEFAULT_OUT = "inertia-out"


class CLIError(ValueError):
    pass


# --------------------------------------------------------------------------- parsing helpers
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


def _at_least(args, flag, minimum):
    """Check an integer flag (None = not given) against its minimum, naming the flag."""
    value = getattr(args, flag.lstrip("-").replace("-", "_"), None)
    if value is not None and value < minimum:
        raise CLIError(f"{flag} must be at least {minimum}, got {value}")


def describe(net):
    sizes = "-".join(str(s) for s in net.sizes)
    return f"{sizes} ({', '.join(net.acts)})"


def load_data(args):
    """(Table, label, data record) from a built-in set name or a file path; the record says
    how to load the same data again (kept in a saved model for ``--resume``)."""
    name = args.data
    for flag in ("--samples", "--dim"):
        _at_least(args, flag, 1)
    _at_least(args, "--data-seed", 0)
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
    table = datasets.load_table(name, target=args.target)
    return table, name, {"source": os.path.abspath(name), "target": args.target}


def default_loss(layers):
    return {"softmax": "cross_entropy", "sigmoid": "bce"}.get(layers[-1].activation, "mse")


def _fmt(x):
    return f"{x:.6g}"


def _print_curve(hist, every_hint=10):
    n = len(hist.loss)
    if n == 0:
        return
    marks = sorted(set(np.linspace(1, n, num=min(n, every_hint), dtype=int).tolist()))
    for ep in marks:
        line = f"  epoch {ep:>{len(str(n))}}  loss {_fmt(hist.loss[ep - 1])}"
        if hist.val_loss:
            line += f"  test {_fmt(hist.val_loss[ep - 1])}"
        print(line)


# ------------------------------------------------------------------------------ commands
REGRESSION_LOSSES = ("mse", "quadratic")


def check_train_outputs(args):
    """Every output path of ``train``, checked before any work (a directory, a missing or
    read-only folder, a picture format matplotlib cannot write: one line, nothing trained)."""
    if args.save is not None:
        check_output(args.save, "--save")
    if args.plot is not None:
        check_output(args.plot, "--plot", picture=True)
    if args.checkpoint is not None:
        check_output(args.checkpoint, "--checkpoint")


def resume_model(args):
    """The resumed (network, optimizer, extra), with every flag that the model fixes checked
    against it; fills ``args.data`` (and the built-in set's size) from the model's record
    when ``--data`` is not given."""
    if not args.resume.strip():
        raise CLIError("--resume is empty: give a model file written by --save")
    net, opt = load(args.resume, engine=args.engine, device=args.device)
    extra = check_extra(dict(net.extra), net, args.resume)
    if args.layers is not None:
        want = [(layer.units, layer.activation) for layer in parse_layers(args.layers)]
        have = [(layer.units, layer.activation) for layer in net.layers]
        if want != have:
            raise CLIError(f"--layers {args.layers} differs from the resumed model "
                           f"{describe(net)}: leave --layers out when resuming")
    if args.dtype is not None and args.dtype != net.dtype.name:
        raise CLIError(f"--dtype {args.dtype} differs from the resumed model's "
                       f"{net.dtype.name}: leave --dtype out when resuming")
    if args.standardize and extra.get("mean") is None:
        raise CLIError("--standardize: the resumed model was trained on unscaled inputs; "
                       "leave --standardize out (a resumed model keeps its scaling)")
    rec = extra.get("data")
    if args.data is None:
        if not isinstance(rec, dict) or not isinstance(rec.get("source"), str):
            raise CLIError(f"--resume {args.resume}: the model does not record the data it "
                           "was trained on: give --data")
        src = rec["source"]
        if src not in datasets.BUILTIN and not os.path.isfile(src):
            raise CLIError(f"--resume {args.resume}: the model was trained on {src}, which no "
                           "longer exists: give --data")
        args.data = src
        if src in datasets.BUILTIN:
            for key in ("samples", "dim", "data_seed"):
                if getattr(args, key) is None and isinstance(rec.get(key), int):
                    setattr(args, key, rec[key])
        print(f"inertia train: resuming on the recorded data {src}")
    return net, opt, extra


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
    return extra


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


def train_data(args, net, extra):
    """(Table, label, data record) for ``train``; a resumed model's target and input columns
    are the recorded ones (a different --target is refused, the inputs are matched by name)."""
    cols = extra.get("columns") if net is not None else None
    from_file = cols is not None and args.data not in datasets.BUILTIN
    if from_file:
        recorded = cols["target_name"] if cols.get("target_name") is not None \
            else cols.get("target")
        if args.target is not None and recorded is not None and \
                str(args.target) != str(recorded):
            raise CLIError(f"--target {args.target}: the resumed model was trained to predict "
                           f"column {recorded!r}: leave --target out")
        if recorded is not None:
            args.target = str(recorded)
    table, label, rec = load_data(args)
    if from_file and cols.get("names"):
        names, have = cols["names"], table.features
        missing = [c for c in names if c not in have]
        if missing:
            raise CLIError(f"--data {args.data} lacks the resumed model's input column(s) "
                           f"{', '.join(map(repr, missing))}")
        X = table.X[:, [have.index(c) for c in names]]
        table = datasets.Table(X, table.y, list(names), table.target, table.n_columns)
    return table, label, rec


def scale_data(args, table, net, loss, extra):
    """Standardise the inputs (and a regression target) as ``--standardize`` asks or as the
    resumed model recorded; stores the scaling in ``extra``. Returns (X, y) in float64."""
    X, y = table.X, table.y
    if args.standardize and extra.get("mean") is None:
        _, extra["mean"], extra["std"] = datasets.standardize(X)
        y2 = np.asarray(y).reshape(len(y), -1)
        if loss in REGRESSION_LOSSES and net.output_activation == "linear" and \
                y2.shape[1] == net.n_outputs:
            _, extra["y_mean"], extra["y_std"] = datasets.standardize(y2)
    if extra.get("mean") is not None:
        X, _, _ = datasets.standardize(X, extra["mean"], extra["std"])
    if extra.get("y_mean") is not None:
        y, _, _ = datasets.standardize(y, extra["y_mean"], extra["y_std"])
    names = [str(c) if isinstance(c, str) else f"column {c}" for c in table.features]
    datasets.check_range(np.asarray(X, dtype=np.float64), names, net.dtype, args.data)
    tname = table.target if table.target is not None else "y"
    datasets.check_range(np.asarray(y, dtype=np.float64).reshape(len(y), -1),
                         [str(tname)] * (y.size // max(1, len(y))), net.dtype, args.data)
    return X, y


def check_fit_memory(net, n_rows, batch_size, n_val):
    """Refuse a run whose training buffers cannot fit (before any is allocated)."""
    rows = min(batch_size or n_rows, n_rows) + n_val
    nbytes = 3 * rows * sum(net.sizes) * net.dtype.itemsize + n_rows * net.n_inputs * 8
    datasets.check_memory(nbytes, f"training on {n_rows:,} rows through {describe(net)}")


def cmd_train(args):
    _at_least(args, "--seed", 0)
    for flag in ("--epochs", "--batch-size"):
        _at_least(args, flag, 1)
    if args.test_fraction is not None and not 0 <= args.test_fraction < 1:
        raise CLIError(f"--test-fraction must be in [0, 1), got {args.test_fraction}")
    check_train_outputs(args)
    net, resumed_opt, extra = resume_model(args) if args.resume is not None \
        else (None, None, {})
    if args.data is None:
        args.data = "smooth-regression"
    table, label, data_rec = train_data(args, net, extra)
    if net is None:
        layers = parse_layers(args.layers if args.layers is not None
                              else "32:sigmoid,16:tanh,1:linear")
        net = Network(table.X.shape[1], layers, seed=args.seed, dtype=args.dtype or "float32",
                      engine=args.engine if args.engine is not None else "numpy",
                      device=args.device)
    loss = args.loss or extra.get("loss") or default_loss(net.layers)
    losses.check(loss, net.output_activation)
    if table.X.shape[1] != net.n_inputs:
        raise CLIError(f"the data has {table.X.shape[1]} input column(s) but the network takes "
                       f"{net.n_inputs}: check --data, --target and --layers")
    X, y = scale_data(args, table, net, loss, extra)
    test_fraction = args.test_fraction
    if test_fraction is None:                  # a resumed run keeps its train/test split
        test_fraction = extra.get("test_fraction", 0.0)
    split_seed = extra.get("split_seed", args.seed)
    Xtr, ytr, Xte, yte = datasets.split(X, y, test_fraction, seed=split_seed)
    opt = resumed_optimizer(args, resumed_opt) if resumed_opt is not None \
        else build_optimizer(args)
    epochs = args.epochs if args.epochs is not None else 100
    check_fit_memory(net, len(Xtr), args.batch_size, len(Xte))
    val = (Xte, yte) if len(Xte) else None
    steps = epochs * (1 if args.batch_size is None else -(-len(Xtr) // args.batch_size))
    lr_sched, mom_sched = train_schedules(args, opt, steps)
    batch = "full batch" if args.batch_size is None else f"batch {args.batch_size}"
    print(f"inertia train: {describe(net)} on {label}, {len(Xtr)} training"
          + (f" / {len(Xte)} test" if len(Xte) else "") + f" samples, {loss} loss")
    print(f"  {describe_optimizer(opt)}, {batch}, {epochs} epochs, {net.engine}/{net.dtype.name}"
          + (f", lr schedule {lr_sched!r}" if lr_sched else "")
          + (f", momentum schedule {mom_sched!r}" if mom_sched else "")
          + (f", resumed at step {opt.state.step}" if resumed_opt and opt.state else ""))
    hist = _fit_guarded(args, net, Xtr, ytr, loss=loss, optimizer=opt, epochs=epochs,
                        batch_size=args.batch_size, seed=args.seed, validation_data=val,
                        progress=not args.quiet, lr_schedule=lr_sched,
                        momentum_schedule=mom_sched)
    if hist is None:
        return 130
    if hist.diverged is not None:
        _print_curve(hist)
        if args.plot is not None:
            plot_training(hist, net, opt, loss, args.plot)
        print(f"inertia: diverged: {training.divergence.message(hist.diverged)}"
              + (f"; {args.save} was not written" if args.save else ""), file=sys.stderr)
        return 3
    report_training(hist, net, loss, epochs, (Xtr, ytr), val)
    if args.save is not None:
        extra.update(loss=loss, test_fraction=test_fraction, split_seed=split_seed,
                     data=data_rec, columns=datasets.columns_record(table))
        save(args.save, net, optimizer=opt, extra=json_ready(extra))
        print(f"saved the model and optimizer state to {args.save}")
    if args.plot is not None:
        plot_training(hist, net, opt, loss, args.plot)
    return 0


def json_ready(extra):
    """``extra`` with arrays as lists (the model file's metadata is JSON)."""
    return {k: v.tolist() if isinstance(v, np.ndarray) else v for k, v in extra.items()}


def resumed_optimizer(args, opt):
    """The resumed optimizer with the flags' changes (a different kind is refused)."""
    if args.optimizer and args.optimizer != opt.kind:
        raise CLIError(f"--optimizer {args.optimizer} differs from the resumed optimizer's "
                       f"{opt.kind}: leave it out when resuming")
    if args.convention and args.convention != opt.config().get("convention"):
        raise CLIError(f"--convention {args.convention} differs from the resumed "
                       f"optimizer's {opt.config().get('convention')}: leave it out when "
                       "resuming")
    changes = {k: v for k, v in optimizer_flags(args).items() if k in opt.HYPER}
    with naming_flags(changes):
        opt.set(**changes)
    return opt


def train_schedules(args, opt, steps):
    lr_sched = mom_sched = None
    if args.lr_schedule is not None:
        lr_sched = schedules.parse(args.lr_schedule, opt.lr, steps, "lr")
    if args.momentum_schedule is not None:
        if "momentum" not in opt.HYPER:
            raise CLIError(f"--momentum-schedule needs an optimizer with momentum (sgd, qhm), "
                           f"not {opt.kind}")
        mom_sched = schedules.parse(args.momentum_schedule, opt.momentum, steps, "momentum")
    return lr_sched, mom_sched


def report_training(hist, net, loss, epochs, train, val):
    _print_curve(hist)
    secs = hist.time[-1]
    print(f"trained {epochs} epochs in {secs:.2f} s ({1e3 * secs / epochs:.3f} ms/epoch)")
    line = f"training cost {_fmt(net.loss(*train, loss))}"
    if val is not None:
        line += f"   test cost {_fmt(net.loss(*val, loss))}"
    print(line)


def plot_training(hist, net, opt, loss, path):
    from . import plots

    d = hist.diverged
    plots.loss_curves({"training set": (np.arange(1, len(hist.loss) + 1), hist.loss)},
                      path, f"Training loss: {describe(net)}\n{describe_optimizer(opt)}",
                      ylabel=f"{loss} loss",
                      val_curves={"training set": (np.arange(1, len(hist.val_loss) + 1),
                                                   hist.val_loss)} if hist.val_loss else None,
                      val_label="test set",
                      diverged={"training set": d.epoch + 1} if d is not None else None)
    print(f"wrote the loss curve to {path}")


def _fit_guarded(args, net, X, y, **kw):
    """fit with the command's divergence and checkpoint flags: says where a checkpoint
    resumes, and what an interruption kept. None when interrupted."""
    ck = args.checkpoint
    if ck and os.path.exists(ck):
        where = training.checkpoint.position(ck)
        if where is not None:
            print(f"  resuming from {ck} at epoch {where[0] + 1}, step {where[1] + 1}")
    policy = args.on_divergence
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", training.DivergenceWarning)
            return fit(net, X, y, on_divergence="stop" if policy == "raise" else policy,
                       checkpoint=ck, checkpoint_every=_every(args.checkpoint_every), **kw)
    except KeyboardInterrupt as ex:             # Interrupted, or before training began
        if ck and os.path.exists(ck):
            ep, st = getattr(ex, "position", None) or training.checkpoint.position(ck)
            print(f"inertia: interrupted before epoch {ep + 1}, step {st + 1}: the run is "
                  f"kept in {ck}; run the same command to resume it", file=sys.stderr)
        else:
            print("inertia: interrupted: nothing was kept; pass --checkpoint PATH to keep a "
                  "run's progress and resume it", file=sys.stderr)
        return None


def _every(text):
    """--checkpoint-every: N epochs or a number of seconds such as 30s."""
    text = text.strip()
    value = int(text) if text.isdigit() else text
    try:
        training.checkpoint.parse_every(value)
        return value
    except ValueError:
        raise CLIError(f"--checkpoint-every must be a positive number of epochs or of "
                       f"seconds such as 30s, got {text!r}") from None


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
    from .optim import OPTIMIZERS

    kind = args.optimizer or "sgd"
    flags = optimizer_flags(args)
    extra = set(flags) - OPTIMIZER_FLAGS[kind]
    if extra:
        names = ", ".join("--" + k.replace("_", "-") for k in sorted(extra))
        verb = "does" if len(extra) == 1 else "do"
        raise CLIError(f"{names} {verb} not apply to --optimizer {kind}: it takes "
                       + ", ".join("--" + k.replace("_", "-")
                                   for k in sorted(OPTIMIZER_FLAGS[kind])))
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


DEFAULT_SETTINGS = "0.2,0,0;0.2,0.02,0;0.2,0.02,0.01;0.2,0.02,0.7"


def parse_settings(text):
    out = []
    for part in text.split(";"):
        part = part.strip()
        if not part:
            continue
        try:
            vals = [float(x) for x in part.split(",")]
        except ValueError:
            raise CLIError(f"--settings: {part!r} is not LR,WEIGHT_DECAY,MOMENTUM numbers") \
                from None
        if len(vals) != 3:
            raise CLIError(f"--settings: {part!r} needs three numbers: lr,weight_decay,momentum")
        out.append(tuple(vals))
    if not out:
        raise CLIError("--settings is empty: write e.g. '0.2,0,0;0.2,0.02,0.7'")
    return out


def run_compare(X, y, layers, loss, convention, settings, segments, every, seeds,
                batch_size=None, dtype="float32", engine="numpy", progress=True):
    """Train copies of one network (shared initial weights per seed) under each setting
    (lr, weight_decay, momentum) for ``segments`` x ``every`` epochs. Returns an array
    (seeds, settings, segments * every) of per-epoch losses, NaN from the epoch where a run
    diverged on (that run stops there; the others finish)."""
    opts = [SGD(lr=lr, momentum=mu, weight_decay=wd, convention=convention)
            for lr, wd, mu in settings]                              # checks every setting
    curves = np.empty((len(seeds), len(settings), segments * every))
    bar = None
    if progress:
        from tqdm.auto import tqdm
        bar = tqdm(total=len(seeds) * len(settings), unit="run", leave=False,
                   disable=None if sys.stderr.isatty() else True, delay=1.0)
    try:
        for si, seed in enumerate(seeds):
            base = Network(X.shape[1], layers, seed=seed, dtype=dtype, engine=engine)
            for ki, opt in enumerate(opts):
                net = base.copy()
                opt.reset()
                with warnings.catch_warnings():
                    warnings.simplefilter("ignore", training.DivergenceWarning)
                    hist = fit(net, X, y, loss=loss, optimizer=opt,
                               schedule=[(every, {})] * segments, batch_size=batch_size,
                               seed=seed, progress=False)
                curves[si, ki] = np.nan
                curves[si, ki, :len(hist.loss)] = hist.loss
                if bar is not None:
                    bar.update(1)
    finally:
        if bar is not None:
            bar.close()
    return curves


def compare_checks(args):
    """Check ``compare``'s counts and output path before any work; returns the plot path."""
    for flag in ("--seeds", "--segments", "--every", "--batch-size"):
        _at_least(args, flag, 1)
    _at_least(args, "--seed", 0)
    if args.plot is not None:
        return check_output(args.plot, "--plot", picture=True)
    return os.path.join(check_folder(args.out, "--out"), "compare.png")


def cmd_compare(args):
    plot = compare_checks(args)
    table, label, _ = load_data(args)
    X, y = table.X, table.y
    layers = parse_layers(args.layers)
    loss = args.loss or default_loss(layers)
    losses.check(loss, layers[-1].activation)
    settings = parse_settings(args.settings)
    seeds = list(range(args.seed, args.seed + args.seeds))
    names = [f"[{lr:g} {wd:g} {mu:g}]" for lr, wd, mu in settings]
    tmp = Network(X.shape[1], layers, seed=0, dtype=args.dtype, engine=args.engine)
    datasets.check_range(X, [str(c) for c in table.features], tmp.dtype, args.data)
    check_fit_memory(tmp, len(X), args.batch_size, 0)
    if tmp.n_outputs != (y.shape[1] if y.ndim == 2 else 1) and loss != "cross_entropy":
        raise CLIError(f"the data has {y.shape[1]} target column(s) but the network has "
                       f"{tmp.n_outputs} output(s): change the last layer in --layers")
    batch = "full batch" if args.batch_size is None else f"batch {args.batch_size}"
    print(f"inertia compare: {describe(tmp)} on {label} ({len(X)} samples), {loss} loss, "
          f"{args.convention} convention, {batch}")
    print(f"  {args.segments} x {args.every} epochs per setting [lr weight_decay momentum], "
          f"every column from the same initial weights"
          + (f"; mean ± std over {len(seeds)} seeds" if len(seeds) > 1 else f"; seed {seeds[0]}"))
    t0 = time.perf_counter()
    curves = run_compare(X, y, layers, loss, args.convention, settings, args.segments,
                         args.every, seeds, args.batch_size, args.dtype, args.engine,
                         progress=not args.quiet)
    secs = time.perf_counter() - t0
    marks = [args.every * (k + 1) for k in range(args.segments)]
    mean = curves.mean(axis=0)          # NaN where a seed diverged
    std = curves.std(axis=0)
    width = max(12, *(len(nm) + 1 for nm in names))
    if len(seeds) > 1:
        width = max(width, 19)
    print()
    print("epoch".rjust(6) + "".join(nm.rjust(width + 1) for nm in names))
    for ep in marks:
        cells = []
        for ki in range(len(settings)):
            m = mean[ki, ep - 1]
            cell = f"{m:.4f}" if len(seeds) == 1 else f"{m:.4f} ± {std[ki, ep - 1]:.4f}"
            if np.isnan(m):
                cell = "diverged"
            cells.append(cell.rjust(width + 1))
        print(f"{ep:6d}" + "".join(cells))
    print()
    diverged = _report_diverged(names, seeds, curves)
    final = np.where(np.isnan(mean[:, -1]), np.inf, mean[:, -1])
    best = int(np.argmin(final))
    print((f"lowest final {loss} cost: {names[best]} at {mean[best, -1]:.4f}; "
           if np.isfinite(final[best]) else "every setting diverged; ")
          + f"{len(seeds) * len(settings)} runs in {secs:.1f} s")
    from . import plots

    x = np.arange(1, curves.shape[2] + 1)
    labels = [f"lr {lr:g}, weight decay {wd:g}, momentum {mu:g}" for lr, wd, mu in settings]
    cur = {nm: (x, mean[k]) for k, nm in enumerate(labels)}
    bands = None
    if len(seeds) > 1:
        bands = {nm: (curves[:, k].min(axis=0), curves[:, k].max(axis=0))
                 for k, nm in enumerate(labels)}
    title = (f"Momentum comparison: {describe(tmp)}\n{args.convention} convention, {batch}, "
             + ("one shared initialisation" if len(seeds) == 1
                else f"mean of {len(seeds)} seeds (band: min to max)"))
    plots.loss_curves(cur, plot, title, ylabel=f"{loss} cost", bands=bands,
                      diverged={labels[k]: ep for k, ep in diverged.items()} or None)
    print(f"wrote the plot to {plot}")
    return 0


def _report_diverged(names, seeds, curves):
    """Print which settings diverged (their curves end in NaN) and in which epoch for each
    seed; returns {setting index: the first epoch (from 1) a seed diverged in}."""
    stopped = np.isnan(curves).any(axis=2)          # (seeds, settings)
    first = np.isnan(curves).argmax(axis=2) + 1      # the epoch each run diverged in
    out = {}
    for ki in np.flatnonzero(stopped.any(axis=0)):
        runs = [f"seed {seeds[si]} in epoch {first[si, ki]}"
                for si in np.flatnonzero(stopped[:, ki])]
        print(f"{names[ki]} diverged ({', '.join(runs)}): its runs stopped at their last "
              "finite state; try a smaller lr")
        out[int(ki)] = float(first[stopped[:, ki], ki].min())
    return out


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


def cmd_demo(args):
    from . import demos

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


def cmd_translate(args):
    from .optim.translate import framework_call, inertia_call, translation

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


def cmd_bench(args):
    """``inertia bench ARGS``: the benchmark's own main (inertia.bench.run), imported here."""
    from .bench import main as bench_main

    return bench_main(args.bench_args)


# ------------------------------------------------------------------------------- parser
def _data_args(p, default="smooth-regression"):
    p.add_argument("--data", default=default,
                   help="built-in set (smooth-regression, random-binary) or a CSV/.npy/.npz "
                        "file (default " + (default or "smooth-regression, or the resumed "
                                            "model's recorded data") + ")")
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


class Parser(argparse.ArgumentParser):
    """argparse with its errors as one line: ``inertia: error: ...`` and exit status 2."""

    def error(self, message):
        self.exit(2, f"inertia: error: {message} (see {self.prog} --help)\n")


def build_parser():
    conv = ", ".join(CONVENTIONS)
    ap = Parser(
        prog="inertia",
        description="Train fully-connected networks by gradient descent with momentum.")
    ap.add_argument("--version", action="version", version="inertia 0.1.0")
    sub = ap.add_subparsers(dest="command", metavar="COMMAND")

    p = sub.add_parser("train", help="train a network and report its cost",
                       description="Train a network on a built-in set or a data file.")
    _data_args(p, default=None)
    p.add_argument("--layers", default=None,
                   help="UNITS:ACTIVATION[:PARAMETER...],... e.g. 64:gelu,32:leaky_relu:0.2 "
                        "(default 32:sigmoid,16:tanh,1:linear)")
    p.add_argument("--loss", choices=losses.NAMES, default=None,
                   help="default: cross_entropy for softmax, bce for sigmoid, else mse")
    p.add_argument("--convention", choices=list(CONVENTIONS), default=None,
                   help=f"momentum convention: {conv} (default pytorch)")
    p.add_argument("--optimizer", choices=["sgd", "qhm", "aggmo", "adam", "adamw"],
                   default=None, help="default sgd (with --convention)")
    p.add_argument("--lr", type=float, default=None, help="learning rate (default 0.01; adam and adamw 0.001)")
    p.add_argument("--momentum", type=float, default=None, help="momentum in [0, 1)")
    p.add_argument("--nu", type=float, default=None, help="QHM's immediate discount nu")
    p.add_argument("--betas", default=None,
                   help="AggMo's dampings (0,0.9,0.99) or Adam's beta1,beta2 (0.9,0.999)")
    p.add_argument("--eps", type=float, default=None, help="Adam's epsilon")
    p.add_argument("--amsgrad", action="store_true", help="Adam's AMSGrad variant")
    p.add_argument("--momentum-correction", action="store_true",
                   help="rescale the velocity when the learning rate changes")
    p.add_argument("--lr-schedule", default=None,
                   help="constant | step:STEPS[,GAMMA] | inverse_scaling[:POWER] | "
                        "cosine[:FINAL] | warmup:STEPS | one_cycle")
    p.add_argument("--momentum-schedule", default=None,
                   help="constant | step:STEPS[,GAMMA] | cosine[:FINAL] | sutskever[:MU_MAX] "
                        "| demon | one_cycle[:BASE,MAX]")
    p.add_argument("--dampening", type=float, default=None, help="dampening (pytorch only)")
    p.add_argument("--nesterov", action="store_true", help="Nesterov momentum")
    p.add_argument("--weight-decay", type=float, default=None, help="weight decay")
    p.add_argument("--epochs", type=int_arg, default=None, help="epochs (default 100)")
    p.add_argument("--batch-size", type=int_arg, default=None,
                   help="mini-batch size (default: full batch; 1: online)")
    p.add_argument("--seed", type=int_arg, default=0,
                   help="seed of weights, shuffling and split (default 0)")
    p.add_argument("--engine", default=None, help="array engine: numpy (default) or torch")
    p.add_argument("--device", default=None, help="device of the torch engine: cpu or cuda")
    p.add_argument("--dtype", choices=["float32", "float64"], default=None)
    p.add_argument("--test-fraction", type=float, default=None,
                   help="fraction held out as a test set (default 0)")
    p.add_argument("--standardize", action="store_true",
                   help="standardise the inputs and a regression target (kept in the saved "
                        "model; predictions come back in the target's units)")
    p.add_argument("--save", default=None, help="write the model and optimizer state (.npz)")
    p.add_argument("--resume", default=None, help="continue training a saved model")
    p.add_argument("--on-divergence", choices=["stop", "raise", "continue"], default="stop",
                   help="a NaN or infinite loss: stop at the last finite state and exit 3 "
                        "without --save (stop, raise), or train on (continue)")
    p.add_argument("--checkpoint", default=None,
                   help="keep the run in this file (.npz) and resume from it when it exists; "
                        "removed when the run ends")
    p.add_argument("--checkpoint-every", default="30s",
                   help="checkpoint every N epochs or every S seconds such as 30s (default)")
    p.add_argument("--plot", default=None,
                   help="write the loss curve (.png, .pdf, .svg or .jpg)")
    p.add_argument("--quiet", action="store_true", help="no progress bar")
    p.set_defaults(func=cmd_train)

    p = sub.add_parser("compare", help="compare momentum settings from one initialisation",
                       description="Train copies of one network, all from the same initial "
                                   "weights, under several [lr weight_decay momentum] "
                                   "settings; print the cost every K epochs and plot it.")
    _data_args(p)
    p.add_argument("--layers", default="8:sigmoid,8:tanh,1:linear")
    p.add_argument("--loss", choices=losses.NAMES, default="quadratic")
    p.add_argument("--convention", choices=list(CONVENTIONS), default="neanderthal")
    p.add_argument("--settings", default=DEFAULT_SETTINGS,
                   help=f"'lr,weight_decay,momentum;...' (default {DEFAULT_SETTINGS})")
    p.add_argument("--segments", type=int_arg, default=8, help="rows of the table (default 8)")
    p.add_argument("--every", type=int_arg, default=50, help="epochs per row (default 50)")
    p.add_argument("--seeds", type=int_arg, default=1,
                   help="repeat over K initialisations, showing mean ± std (default 1)")
    p.add_argument("--seed", type=int_arg, default=0, help="first initialisation seed")
    p.add_argument("--batch-size", type=int_arg, default=None)
    p.add_argument("--engine", default="numpy")
    p.add_argument("--dtype", choices=["float32", "float64"], default="float32")
    p.add_argument("--out", default=DEFAULT_OUT, help=f"folder for the plot ({DEFAULT_OUT})")
    p.add_argument("--plot", default=None,
                   help="plot path: .png, .pdf, .svg or .jpg (default OUT/compare.png)")
    p.add_argument("--quiet", action="store_true", help="no progress bar")
    p.set_defaults(func=cmd_compare)

    from . import demos

    p = sub.add_parser("demo", help="draw what momentum does (inertia demo --list)",
                       description="Demonstrations of momentum: each prints its finding and "
                                   "writes pictures.")
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

    # inertia.bench parses its own options (inertia bench --help): everything after "bench"
    # goes to it untouched (no prefix character can occur in an argument, so nothing there
    # is taken for an option of this parser), and the benchmark is imported only when run.
    p = sub.add_parser("bench", help="time inertia against PyTorch, JAX, scikit-learn and NumPy",
                       add_help=False, prefix_chars="\0")
    p.add_argument("bench_args", nargs=argparse.REMAINDER)
    p.set_defaults(func=cmd_bench)

    p = sub.add_parser("predict", help="write a saved model's predictions to CSV")
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

    p = sub.add_parser("translate", help="the same optimizer in another framework's convention",
                       description="Translate SGD with momentum from one convention into "
                                   "another: print both frameworks' calls and what is exact, "
                                   "or why no translation exists.")
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
    return ap


def main(argv=None):
    ap = build_parser()
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
