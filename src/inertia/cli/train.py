"""``inertia train``: train a network on a built-in set or a data file, report its cost,
save it; resume a saved model or a checkpoint; stop a diverged run (exit status 3)."""

from __future__ import annotations

import argparse
import contextlib
import io
import os
import signal
import sys
import warnings
from dataclasses import dataclass

import numpy as np

from .. import data as datasets
from ..ops import losses
from .. import schedules, training
from ..files import check_distinct, check_output
from ..network import Network
from ..optim import CONVENTIONS
from ..serialize import load, save
from ..training import fit
from . import classes as classify
from .common import (CLIError, add_data_args, at_least, build_optimizer, check_extra,
                     check_fit_memory, default_loss, describe, describe_optimizer, fmt,
                     int_arg, json_ready, load_data, naming_flags, optimizer_flags,
                     parse_layers, print_curve)


def add_parser(subparsers):
    p = subparsers.add_parser("train", help="train a network and report its cost",
                              description="Train a network on a built-in set or a data file.")
    add_data_args(p, default=None, resumable=True)
    _model_args(p)
    _task_args(p)
    _optimizer_args(p)
    _run_args(p)
    p.set_defaults(func=cmd_train)
    return p


# the hidden layers of a new network without --layers (``inertia sweep`` has its own)
DEFAULT_HIDDEN = "32:sigmoid,16:tanh"


def _model_args(p):
    p.add_argument("--layers", default=None,
                   help="UNITS:ACTIVATION[:PARAMETER...],... e.g. 64:gelu,32:leaky_relu:0.2 "
                        "(default 32:sigmoid,16:tanh,1:linear)")
    p.add_argument("--loss", choices=losses.NAMES, default=None,
                   help="default: cross_entropy for softmax, bce for sigmoid, else mse")


def _task_args(p):
    p.add_argument("--task", choices=["classification", "regression"], default=None,
                   help="default: classification when a data file's target holds text, or "
                        "(without --layers) 2 to 20 distinct whole numbers with 5 rows or "
                        "more each; else regression. Classification ends the network in "
                        "K:softmax (1:sigmoid for 2 classes) and reports accuracy")


def _optimizer_args(p):
    conv = ", ".join(CONVENTIONS)
    p.add_argument("--convention", choices=list(CONVENTIONS), default=None,
                   help=f"momentum convention: {conv} (default pytorch)")
    p.add_argument("--optimizer", choices=["sgd", "qhm", "aggmo", "adam", "adamw"],
                   default=None, help="default sgd (with --convention)")
    p.add_argument("--lr", type=auto_or_number, default=None,
                   help="learning rate (default 0.01; adam and adamw 0.001), or auto: "
                        "chosen by the race (inertia tune) before training")
    p.add_argument("--momentum", type=auto_or_number, default=None,
                   help="momentum in [0, 1), or auto (with --lr auto or a number)")
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


def auto_or_number(text):
    """--lr / --momentum: a number or "auto"."""
    if text.strip().lower() == "auto":
        return "auto"
    try:
        return float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a number or auto") from None


def _run_args(p):
    p.add_argument("--epochs", type=int_arg, default=None, help="epochs (default 100)")
    p.add_argument("--batch-size", type=int_arg, default=None,
                   help="mini-batch size (default: full batch; 1: online)")
    p.add_argument("--seed", type=int_arg, default=None,
                   help="seed of weights, shuffling and split (default 0; a resumed model: "
                        "the recorded one, so that its row orders go on)")
    p.add_argument("--engine", default=None, help="array engine: numpy (default) or torch")
    p.add_argument("--device", default=None, help="device of the torch engine: cpu or cuda")
    p.add_argument("--dtype", choices=["float32", "float64"], default=None,
                   help="float32 (default, or the resumed model's) or float64")
    p.add_argument("--test-fraction", type=float, default=None,
                   help="fraction held out as a test set (default 0)")
    p.add_argument("--standardize", action="store_true",
                   help="standardise the inputs and a regression target (kept in the saved "
                        "model; predictions come back in the target's units)")
    p.add_argument("--save", default=None, help="write the model and optimizer state (.npz)")
    p.add_argument("--resume", default=None, help="continue training a saved model")
    p.add_argument("--on-divergence", choices=["stop", "raise", "continue"], default="stop",
                   help="on a NaN or infinite loss: stop at the last finite state (stop, the "
                        "default, or raise: the same as an error) or train on (continue); "
                        "in every case the command exits 3 and does not write --save")
    p.add_argument("--checkpoint", default=None,
                   help="keep the run in this file (.npz) and resume from it when it exists; "
                        "removed when the run ends")
    p.add_argument("--checkpoint-every", default=None,
                   help="with --checkpoint: checkpoint every N epochs or every S seconds such "
                        "as 30s (default 30s)")
    p.add_argument("--plot", default=None,
                   help="write the loss curve (.png, .pdf, .svg or .jpg)")
    p.add_argument("--quiet", action="store_true", help="no progress bar")


REGRESSION_LOSSES = ("mse", "quadratic")


def check_train_outputs(args):
    """Every output path of ``train``, checked before any work (a directory, a missing or
    read-only folder, a picture format matplotlib cannot write: one line, nothing trained)."""
    if args.save is not None:
        check_output(args.save, "--save", archive=True)
    if args.plot is not None:
        check_output(args.plot, "--plot", picture=True)
    if args.checkpoint is not None:
        check_output(args.checkpoint, "--checkpoint")
        _every(args.checkpoint_every or "30s")
    elif args.checkpoint_every is not None:
        raise CLIError("--checkpoint-every applies to a run kept with --checkpoint PATH: add "
                       "--checkpoint or drop --checkpoint-every")
    check_distinct([("--save", args.save), ("--plot", args.plot),
                    ("--checkpoint", args.checkpoint)], [("--data", args.data)])
    # --save may replace the resumed model (training it on); the checkpoint may not
    check_distinct([("--checkpoint", args.checkpoint)], [("--resume", args.resume)])


def resume_model(args):
    """The resumed (network, optimizer, extra), with every flag that the model fixes checked
    against it; fills ``args.data`` (and the built-in set's size) from the model's record
    when ``--data`` is not given."""
    if not args.resume.strip():
        raise CLIError("--resume is empty: give a model file written by --save")
    net, opt = load(args.resume, engine=args.engine, device=args.device)
    extra = check_extra(dict(net.extra), net, args.resume)
    task = extra.get("task", "regression")
    if args.task is not None and args.task != task:
        raise CLIError(f"--task {args.task}: the resumed model does {task}: leave --task "
                       "out when resuming")
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
    kind = "auto" if args.task != "regression" and (net is None or extra.get("classes")) \
        else "values"
    table, label, rec = load_data(args, target_kind=kind)
    if from_file and cols.get("names"):
        names, have = cols["names"], table.features
        missing = [c for c in names if c not in have]
        if missing:
            raise CLIError(f"--data {args.data} lacks the resumed model's input column(s) "
                           f"{', '.join(map(repr, missing))}")
        X = table.X[:, [have.index(c) for c in names]]
        table = datasets.Table(X, table.y, list(names), table.target, table.n_columns)
    return table, label, rec


def scale_data(args, table, net, loss, extra, train, test):
    """Standardise the inputs (and a regression target) of the ``train`` and ``test`` parts
    ((X, y) pairs) as ``--standardize`` asks, with the mean and spread of the training rows
    only (the test rows stay unseen), or as the resumed model recorded; stores the scaling in
    ``extra``. Returns the two (X, y) pairs in float64."""
    names = [str(c) if isinstance(c, str) else f"column {c}" for c in table.features]
    tname = str(table.target if table.target is not None else "y")
    if args.standardize and extra.get("mean") is None:
        _, extra["mean"], extra["std"] = datasets.standardize(train[0], names=names)
        y2 = np.asarray(train[1]).reshape(len(train[1]), -1)
        if loss in REGRESSION_LOSSES and net.output_activation == "linear" and \
                y2.shape[1] == net.n_outputs:
            _, extra["y_mean"], extra["y_std"] = datasets.standardize(
                y2, names=[tname] * y2.shape[1])
    parts = tuple(_scaled(extra, X, y) for X, y in (train, test))
    try:
        for X, y in parts:
            _check_range(args, net, names, tname, X, y)
    except ValueError:              # named by its row in the data, not in the shuffled split
        _check_range(args, net, names, tname, *_scaled(extra, table.X, table.y))
        raise
    return parts


def _check_range(args, net, names, tname, X, y):
    """The scaled inputs and target within the network's dtype (one line naming a value)."""
    if len(X):
        datasets.check_range(X, names, net.dtype, args.data)
        datasets.check_range(y.reshape(len(y), -1), [tname] * (y.size // len(y)), net.dtype,
                             args.data)


def _scaled(extra, X, y):
    """(X, y) as float64 with the recorded scaling applied."""
    X, y = np.asarray(X, dtype=np.float64), np.asarray(y, dtype=np.float64)
    if len(X) == 0:                            # no test rows
        return X, y
    if extra.get("mean") is not None:
        X, _, _ = datasets.standardize(X, extra["mean"], extra["std"])
    if extra.get("y_mean") is not None:
        y, _, _ = datasets.standardize(y, extra["y_mean"], extra["y_std"])
    return X, y


@dataclass
class Run:
    """One ``train`` run's pieces, filled step by step before training starts."""

    net: Network
    extra: dict                 # the model file's training record (kept and updated)
    table: datasets.Table
    label: str                  # the data's name in the report
    data_rec: dict              # how to load the same data again
    loss: str = ""
    resumed_opt: object = None
    opt: object = None
    test_fraction: float = 0.0
    split_seed: int = 0
    train: tuple = ()           # (X, y) of the training rows
    val: tuple | None = None    # (X, y) of the test rows, None without any
    epochs: int = 100
    lr_sched: object = None
    mom_sched: object = None
    task: str = "regression"
    task_reason: str = ""       # why this task (the rule's reason, --task, a resumed model)
    classes: list | None = None  # class names, code k = classes[k]
    tuned: object = None        # --lr auto / --momentum auto: the race's TuneSummary


def cmd_train(args):
    check_train_args(args)
    run = prepare_run(args)
    plan_optimization(args, run)
    print_plan(args, run)
    hist = _fit_guarded(args, run.net, *run.train, loss=run.loss, optimizer=run.opt,
                        epochs=run.epochs, batch_size=args.batch_size,
                        seed=training.SeedAfter(args.seed, _epochs_before(run)),
                        validation_data=run.val, progress=not args.quiet,
                        lr_schedule=run.lr_sched, momentum_schedule=run.mom_sched)
    if hist is None:
        return 130
    return finish_run(args, run, hist)


def check_train_args(args):
    """The counts, the test fraction and every output path, before any work."""
    at_least(args, "--seed", 0)
    for flag in ("--epochs", "--batch-size"):
        at_least(args, flag, 1)
    if args.test_fraction is not None and not 0 <= args.test_fraction < 1:
        raise CLIError(f"--test-fraction must be in [0, 1), got {args.test_fraction}")
    check_train_outputs(args)


def prepare_run(args):
    """The network (new or resumed), the data, scaled and split, and the loss: a Run."""
    net, resumed_opt, extra = resume_model(args) if args.resume is not None \
        else (None, None, {})
    recorded = extra.get("trained") or {}
    if args.batch_size is None:                 # a resumed model keeps its batch size
        args.batch_size = recorded.get("batch_size")
    if args.seed is None:                       # and its shuffling seed
        args.seed = recorded.get("seed", 0)
    if args.data is None:
        args.data = "smooth-regression"
    table, label, data_rec = train_data(args, net, extra)
    task, why, classes = choose_task(args, net, extra, table)
    if task == "classification":
        codes, classes = classify.encode(table.y, classes, f"--data {args.data}")
        table = datasets.Table(table.X, codes, table.features, table.target, table.n_columns)
    if net is None:
        net = new_network(args, table, classes)
    run = Run(net, extra, table, label, data_rec, resumed_opt=resumed_opt, task=task,
              task_reason=why, classes=classes)
    run.loss = args.loss or extra.get("loss") or default_loss(net.layers)
    losses.check(run.loss, net.output_activation)
    if classes is not None:
        classify.check_output(net, classes, run.loss)
    if table.X.shape[1] != net.n_inputs:
        raise CLIError(f"the data has {table.X.shape[1]} input column(s) but the network takes "
                       f"{net.n_inputs}: check --data, --target and --layers")
    run.test_fraction = args.test_fraction
    if run.test_fraction is None:              # a resumed run keeps its train/test split
        run.test_fraction = extra.get("test_fraction", 0.0)
    run.split_seed = extra.get("split_seed", args.seed)
    n = len(table.X)
    if run.test_fraction > 0 and round(n * run.test_fraction) == 0:
        raise CLIError(f"--test-fraction {run.test_fraction:g} of {n} rows holds out no row: "
                       f"give at least {1 / n:.3g}, or 0 to hold out none")
    Xtr, ytr, Xte, yte = datasets.split(table.X, table.y, run.test_fraction,
                                        seed=run.split_seed)
    (Xtr, ytr), (Xte, yte) = scale_data(args, table, net, run.loss, extra, (Xtr, ytr),
                                        (Xte, yte))
    run.train, run.val = (Xtr, ytr), ((Xte, yte) if len(Xte) else None)
    return run


def choose_task(args, net, extra, table):
    """(task, why, class names or None, meaning: take them from the data) of a run: a
    resumed model's recorded task, else ``--task``, else the rule of ``classify``; a
    built-in set is regression unless ``--task`` says otherwise."""
    if net is not None:                         # --task is checked by resume_model
        task = extra.get("task", "regression")
        if task == "regression" and classify.is_text(table.y):
            raise CLIError(f"--data {args.data}: the target holds text but the resumed model "
                           "does regression")
        return task, "the resumed model", extra.get("classes")
    if args.data in datasets.BUILTIN and args.task is None:
        return "regression", "", None
    task, why = classify.infer_task(table.y, args.task, args.layers is not None)
    return task, why, None


def new_network(args, table, classes=None):
    """A new network: --layers, or the command's default hidden layers (``args.hidden``,
    else DEFAULT_HIDDEN) with an output layer for the task (1:linear; K:softmax or
    1:sigmoid for classes)."""
    hidden = getattr(args, "hidden", DEFAULT_HIDDEN)
    if args.layers is not None:
        layers = parse_layers(args.layers)
    elif classes is not None:
        layers = parse_layers(hidden) + [classify.output_layer(classes)]
    else:
        layers = parse_layers(hidden + ",1:linear")
    return Network(table.X.shape[1], layers, seed=args.seed, dtype=args.dtype or "float32",
                   engine=args.engine if args.engine is not None else "numpy",
                   device=args.device)


def plan_optimization(args, run):
    """The optimizer (new, or resumed with the flags' changes), the epochs and the
    schedules; refuses a run whose buffers cannot fit in memory."""
    run.opt = resumed_optimizer(args, run.resumed_opt) if run.resumed_opt is not None \
        else build_optimizer(args)
    run.epochs = args.epochs if args.epochs is not None else 100
    n_train, n_val = len(run.train[0]), len(run.val[0]) if run.val else 0
    check_fit_memory(run.net, n_train, args.batch_size, n_val, run.epochs)
    if getattr(run.opt, "auto", None):
        choose_auto(args, run)
    steps = run.epochs * (1 if args.batch_size is None else -(-n_train // args.batch_size))
    run.lr_sched, run.mom_sched = train_schedules(args, run.opt, steps)


def choose_auto(args, run):
    """--lr auto / --momentum auto: the race chooses them on the training data, epochs,
    batch size and test set of the run; prints the choice, its cost and the time taken."""
    import time

    from ..training.auto import recorded, tune_auto

    auto = " and ".join("--" + k for k in run.opt.auto)
    if run.opt.kind != "sgd":
        raise CLIError(f"{auto} auto applies to --optimizer sgd only, not {run.opt.kind}")
    if args.lr_schedule is not None and "lr" in run.opt.auto:
        raise CLIError("--lr auto and --lr-schedule: give --lr a number (the schedule "
                       "starts from it) or drop --lr-schedule")
    if args.momentum_schedule is not None and "momentum" in run.opt.auto:
        raise CLIError("--momentum auto and --momentum-schedule: give --momentum a number or "
                       "drop --momentum-schedule")
    ck = args.checkpoint
    if ck and os.path.exists(ck):               # the run kept there: its choice, no race
        try:
            run.tuned = recorded(ck, run.opt)
        except ValueError as ex:
            raise CLIError(str(ex)) from None
        print(f"  {run.tuned} (kept in {ck})")
        return
    t0 = time.perf_counter()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", training.DivergenceWarning)
        try:
            summary = tune_auto(run.net, *run.train, run.loss, run.opt, dict(
                epochs=run.epochs, batch_size=args.batch_size, seed=args.seed,
                validation_data=run.val, progress=False))
        except ValueError as ex:
            raise CLIError(str(ex)) from None
    print(f"  {summary} (the race: {time.perf_counter() - t0:.1f} s)")
    run.tuned = summary


def print_plan(args, run):
    net, opt = run.net, run.opt
    n_train, n_val = len(run.train[0]), len(run.val[0]) if run.val else 0
    batch = "full batch" if args.batch_size is None else f"batch {args.batch_size}"
    print(f"inertia train: {describe(net)} on {run.label}, {n_train} training"
          + (f" / {n_val} test" if n_val else "") + f" samples, {run.loss} loss")
    print(f"  {describe_optimizer(opt)}, {batch}, {run.epochs} epochs, "
          f"{net.engine}/{net.dtype.name}"
          + (f", lr schedule {run.lr_sched!r}" if run.lr_sched else "")
          + (f", momentum schedule {run.mom_sched!r}" if run.mom_sched else "")
          + (f", resumed at step {opt.state.step}" if run.resumed_opt and opt.state else ""))
    if run.classes is not None:
        shown = ", ".join(run.classes[:8]) + (", ..." if len(run.classes) > 8 else "")
        print(f"  classification ({run.task_reason}): {len(run.classes)} classes {shown}")


def finish_run(args, run, hist):
    """Report, save and plot a finished run; a diverged one is reported, not saved (3): one
    that stopped on divergence, or one whose last steps left a cost that is not finite
    (the last step's update is checked by no later step's loss; ``--on-divergence
    continue`` trains on through NaN)."""
    cost = run.net.loss(*run.train, run.loss)
    if hist.diverged is not None or not np.isfinite(cost):
        print_curve(hist)
        if args.plot is not None:
            plot_training(hist, run.net, run.opt, run.loss, args.plot)
        why = (training.divergence.message(hist.diverged) if hist.diverged is not None else
               f"the training cost after the last step is {cost}")
        print(f"inertia: diverged: {why}" + (f"; {args.save} was not written" if args.save
                                             else ""), file=sys.stderr)
        return 3
    out = io.StringIO()        # printed once the files are written: a closed pipe (| head)
    with contextlib.redirect_stdout(out):                  # loses no model
        report_training(hist, run.net, run.loss, run.epochs, cost, run.val)
        scores = {} if run.classes is None else \
            classify.report(run.net, run.classes, run.train, run.val)
    if args.save is not None:
        run.extra.update(loss=run.loss, test_fraction=run.test_fraction,
                         split_seed=run.split_seed, data=run.data_rec,
                         columns=datasets.columns_record(run.table), task=run.task,
                         classes=run.classes,
                         trained=trained_record(run, hist, scores, args.batch_size, args.seed))
        save(args.save, run.net, optimizer=run.opt, extra=json_ready(run.extra))
        print(f"saved the model and optimizer state to {args.save}", file=out)
    if args.plot is not None:
        with contextlib.redirect_stdout(out):
            plot_training(hist, run.net, run.opt, run.loss, args.plot)
    sys.stdout.write(out.getvalue())
    return 0


def _epochs_before(run):
    """The epochs a resumed model has trained (0 for a new one)."""
    return int((run.extra.get("trained") or {}).get("epochs") or 0)


def trained_record(run, hist, scores, batch_size, seed):
    """What the model file says of its training: epochs and steps in all (a resumed model's
    too), the last epoch's losses, the batch size (None: full batch), the shuffling seed and
    the accuracies of a classifier."""
    state = run.opt.state
    rec = {"epochs": _epochs_before(run) + len(hist.loss),
           "steps": int(state.step) if state is not None else None,
           "loss": float(hist.loss[-1]) if hist.loss else None,
           "test_loss": float(hist.val_loss[-1]) if hist.val_loss else None,
           "batch_size": batch_size, "seed": seed}
    rec.update(scores)
    return rec


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


def report_training(hist, net, loss, epochs, cost, val):
    """The curve, the time and the costs (``cost``: the training set's, computed)."""
    print_curve(hist)
    secs = hist.time[-1]
    print(f"trained {epochs} epochs in {secs:.2f} s ({1e3 * secs / epochs:.3f} ms/epoch)")
    line = f"training cost {fmt(cost)}"
    if val is not None:
        line += f"   test cost {fmt(net.loss(*val, loss))}"
    print(line)


def plot_training(hist, net, opt, loss, path):
    from .. import plots

    d = hist.diverged
    plots.loss_curves({"training set": (np.arange(1, len(hist.loss) + 1), hist.loss)},
                      path, f"Training loss: {describe(net)}\n{describe_optimizer(opt)}",
                      ylabel=f"{loss} loss",
                      val_curves={"training set": (np.arange(1, len(hist.val_loss) + 1),
                                                   hist.val_loss)} if hist.val_loss else None,
                      val_label="test set",
                      diverged={"training set": d.epoch + 1} if d is not None else None)
    print(f"wrote the loss curve to {path}")


class Terminated(KeyboardInterrupt):
    """SIGTERM while ``train`` fits: fit keeps the run as for Ctrl-C (it sends the signal
    on to this handler after saving), the command says so and exits 143."""


def _on_sigterm(num, frame):
    raise Terminated()


@contextlib.contextmanager
def _sigterm_said():
    """SIGTERM raises Terminated for the duration (main thread only; elsewhere as before)."""
    try:
        old = signal.signal(signal.SIGTERM, _on_sigterm)
    except ValueError:                      # not the main thread: signals cannot be set
        old = None
    try:
        yield
    finally:
        if old is not None:
            signal.signal(signal.SIGTERM, old)


def _fit_guarded(args, net, X, y, **kw):
    """fit with the command's divergence and checkpoint flags: says where a checkpoint
    resumed (once fit has accepted it), and what an interruption kept. None when
    interrupted (SystemExit 143 after SIGTERM)."""
    with _sigterm_said():
        return _fit_said(args, net, X, y, **kw)


def _fit_said(args, net, X, y, **kw):
    ck = args.checkpoint
    policy = args.on_divergence
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", training.DivergenceWarning)
            hist = fit(net, X, y, on_divergence="stop" if policy == "raise" else policy,
                       checkpoint=ck, checkpoint_every=None if ck is None else
                       _every(args.checkpoint_every or "30s"), **kw)
        if hist.resumed_from is not None:
            ep, st = hist.resumed_from
            print(f"  resumed from {ck} at epoch {ep + 1}, step {st + 1}")
        return hist
    except KeyboardInterrupt as ex:             # Interrupted, or before training began
        word = "terminated" if isinstance(ex, Terminated) else "interrupted"
        where = training.checkpoint.position(ck) if ck and os.path.exists(ck) else None
        if where is not None:
            ep, st = getattr(ex, "position", None) or where
            print(f"inertia: {word} before epoch {ep + 1}, step {st + 1}: the run is "
                  f"kept in {ck}; run the same command to resume it", file=sys.stderr)
        else:
            print(f"inertia: {word}: nothing was kept; pass --checkpoint PATH to keep a "
                  "run's progress and resume it", file=sys.stderr)
        if isinstance(ex, Terminated):
            raise SystemExit(128 + signal.SIGTERM) from None
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

