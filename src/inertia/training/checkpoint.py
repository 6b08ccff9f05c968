"""Checkpoints: everything a run needs to go on exactly where it stopped, in one .npz with
JSON metadata (no pickle), written atomically.

A checkpoint is taken between two steps. It holds the flat parameters, the optimizer's buffers,
counters and hyperparameters, the position (the next step of the run), the shuffling
generator's state and the current epoch's row order, the History so far, the early-stopping
state (best value, wait, the best epoch's weights), and a fingerprint of
the run's settings and data. ``fit`` resumes from it when given its path and the same
settings, refuses other settings or data in one line, and removes it when the run ends.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import os
import re
import zipfile

import numpy as np

from ..files import npz_problem
from ..serialize import atomic_write
from .history import History

FORMAT = "inertia-checkpoint-1"


def check_args(path, every):
    """Validate ``checkpoint`` and ``checkpoint_every``: returns (epochs, seconds), one of
    them None (both None without a checkpoint)."""
    if path is None:
        return None, None
    if not isinstance(path, (str, os.PathLike)):
        raise ValueError(f"checkpoint must be a file path, got {type(path).__name__}")
    from ..files import check_output

    check_output(os.fspath(path), "checkpoint")
    return parse_every(every)


def parse_every(every):
    """``checkpoint_every`` as (epochs, seconds), one of them None, or a ValueError."""
    if isinstance(every, (int, np.integer)) and not isinstance(every, bool) and every >= 1:
        return int(every), None
    if isinstance(every, str):
        m = re.fullmatch(r"\s*([0-9]*\.?[0-9]+)\s*s\s*", every)
        if m and float(m.group(1)) > 0:
            return None, float(m.group(1))
    raise ValueError(f"checkpoint_every must be a positive number of epochs (an integer) or "
                     f"of seconds (a string such as '30s'), got {every!r}")


def _digest(*arrays):
    h = hashlib.blake2b(digest_size=16)
    for a in arrays:
        if a is None:
            h.update(b"none")
            continue
        a = np.ascontiguousarray(a)
        h.update(repr((a.shape, a.dtype.str)).encode())
        h.update(a.view(np.uint8).reshape(-1) if a.size else b"")
    return h.hexdigest()


def fingerprint(net, opt, plan):
    """What must be the same to resume: the data (shape and hash; the sample weights join
    the hash when given, so an unweighted run's fingerprint is unchanged), the network's shape,
    the optimizer and its hyperparameters at the start, and the run's settings (whether it
    records its steps is read from its History: ``restore``)."""
    return {
        "data": {"X": list(plan.X.shape), "y": list(plan.y.shape),
                 "hash": _digest(plan.X, plan.y, plan.Xv, plan.yv,
                                 *(() if plan.w is None else (plan.w,)))},
        "network": {"sizes": list(net.sizes), "activations": list(net.acts),
                    "dtype": net.dtype.name, "engine": net.engine},
        "optimizer": {"type": opt.kind, "config": json.loads(json.dumps(opt.config())),
                      "step": plan.step0},
        "settings": {"loss": plan.loss, "batch_size": plan.bs, "shuffle": plan.shuffle,
                     "seed": plan.seed if isinstance(plan.seed, (int, type(None))) else
                     repr(plan.seed), "segments": json.loads(json.dumps(plan.segs)),
                     "schedules": None if plan.planned is None else _digest(*plan.planned),
                     "compiled": plan.compiled,
                     "early_stopping": None if plan.early_stopping is None else
                     plan.early_stopping.config()},
    }


def _difference(saved, now):
    """The first part of two fingerprints that differs, in words (None: they agree). The
    network's dtype and engine come first: the data is hashed in the network's dtype."""
    parts = [("network", "dtype", "a network of another dtype"),
             ("network", "engine", "another engine"), ("data", None, "other data"),
             ("network", None, "a network of another shape"),
             ("optimizer", None, "another optimizer or other hyperparameters"),
             ("settings", None, "other training settings")]
    for key, sub, what in parts:
        a, b = saved.get(key), now.get(key)
        if sub is not None and isinstance(a, dict) and isinstance(b, dict):
            a, b = a.get(sub), b.get(sub)
        if a != b:
            return what + (f" (its {a}, this run's {b})" if sub is not None else "")
    return None


def save(path, net, opt, plan, state):
    """Write the checkpoint of the run at ``state`` (a loop.State) atomically."""
    e = net.e
    arrays = {"params": np.asarray(e.to_host(net.flat)), "order": state.order,
              "ep_losses": state.ep_losses}
    for name, bufs in opt.state_arrays().items():
        for i, b in enumerate(bufs):
            arrays[f"opt_{name}_{i}"] = np.asarray(e.to_host(b))
    meta = {"format": FORMAT, "fingerprint": state.fingerprint, "t": state.t,
            "position": list(divmod(state.t, plan.per)),
            "total_steps": plan.total_steps,
            "hyper": {k: v for k, v in opt.config().items() if k in opt.HYPER},
            "opt_meta": opt.state_meta(), "rng": state.rng.bit_generator.state,
            "history": state.hist.to_json(), "elapsed": state.elapsed()}
    if state.tuned is not None:                # fit's "auto" choice: a resume keeps it
        meta["tuned"] = dataclasses.asdict(state.tuned)
    stopper = plan.early_stopping
    if stopper is not None:
        meta["early_stopping"] = dict(stopper.state_json(), stopped=state.stopped)
        if stopper.best_weights is not None:
            arrays["best_weights"] = stopper.best_weights
    arrays["meta"] = np.array(json.dumps(meta))
    atomic_write(path, lambda f: np.savez(f, **arrays))


def load(path):
    """(meta, arrays) of a checkpoint file, or a one-line ValueError."""
    try:
        problem = npz_problem(path)
        if problem:
            raise ValueError(problem)
        with np.load(path, allow_pickle=False) as f:
            data = {k: f[k] for k in f.files}
        meta = json.loads(str(data.pop("meta")))
        if meta.get("format") != FORMAT:
            raise KeyError("format")
    except (OSError, ValueError, KeyError, EOFError, zipfile.BadZipFile) as ex:
        raise ValueError(f"{path} is not an inertia checkpoint ({ex}): remove it or give "
                         "another checkpoint path") from None
    return meta, data


def recorded_choice(path):
    """(the TuneSummary fields a checkpoint of a fit with "auto" recorded, or None when its
    values were given; the optimizer's hyperparameters at the run's start). A one-line
    ValueError when ``path`` is not a readable checkpoint."""
    meta, _ = load(path)
    try:
        config = meta["fingerprint"]["optimizer"]["config"]
        if not isinstance(config, dict):
            raise TypeError("not a dict")
    except (KeyError, TypeError) as ex:
        raise ValueError(f"{path} is a damaged inertia checkpoint (its optimizer record: "
                         f"{_why(ex)}): remove it to start the run afresh") from None
    tuned = meta.get("tuned")
    return (tuned if isinstance(tuned, dict) else None), config


def position(path):
    """The (epoch, step) a checkpoint resumes at, from 0 (None: not a checkpoint)."""
    try:
        meta, _ = load(path)
        return tuple(meta["position"])
    except (ValueError, KeyError):
        return None


def restore(path, net, opt, plan, state):
    """Resume ``state`` from the checkpoint at ``path``: check that it belongs to this run
    and that every part of it fits the run (``_checked``), then set the parameters, the
    optimizer and the loop position in place. Nothing changes when it does not."""
    meta, data = load(path)
    fp = meta.get("fingerprint")
    why = _difference(fp, state.fingerprint) if isinstance(fp, dict) else None
    if not isinstance(fp, dict):
        raise ValueError(f"{path} is a damaged inertia checkpoint (its fingerprint is "
                         "missing): remove it to start the run afresh")
    if why is not None:
        raise ValueError(f"the checkpoint {path} belongs to a run on {why}: rerun that run's "
                         "command to resume it, or remove the checkpoint to start afresh")
    try:
        c = _checked(meta, data, net, opt, plan, state)
    except (KeyError, TypeError, ValueError, AttributeError, OverflowError) as ex:
        raise ValueError(f"{path} is a damaged inertia checkpoint ({_why(ex)}): remove it to "
                         "start the run afresh") from None
    recorded = len(c["hist"].step_loss) > 0
    if c["t"] > 0 and recorded != plan.record_steps:
        raise ValueError(f"the checkpoint {path} belongs to a run with record_steps="
                         f"{recorded} (its step records would cover part of this run): resume "
                         f"with record_steps={recorded}, or remove the checkpoint to start "
                         "afresh")
    e = net.e
    e.copy(e.from_host(c["params"]), net.flat)
    for (name, i), a in c["buffers"].items():
        e.copy(e.from_host(a), opt.state_arrays()[name][i])
    for k, v in c["opt_meta"].items():
        setattr(opt.state, k, v)
    opt.set(**c["hyper"])
    state.t = c["t"]
    state.order[:] = c["order"]
    state.ep_losses[:] = c["ep_losses"]
    state.rng.bit_generator.state = c["rng"]
    state.hist = c["hist"]
    state.clock_offset = c["elapsed"]
    state.hist.resumed_from = (state.t // plan.per, state.t % plan.per)
    if plan.early_stopping is not None:
        plan.early_stopping.load_state(c["early_stopping"], c["best_weights"])
        state.stopped = c["stopped"]


def _why(ex):
    return str(ex) if not isinstance(ex, KeyError) else f"{ex.args[0]!r} is missing"


def _array(data, name, shape, dtype, finite=True):
    """data[name] as ``dtype`` of ``shape`` (ValueError: other shape, kind or not finite)."""
    a = data[name]
    if a.shape != tuple(shape) or a.dtype.kind not in "fiu":
        raise ValueError(f"{name} holds {a.dtype} {a.shape}, not {tuple(shape)} numbers")
    with np.errstate(over="ignore", invalid="ignore"):
        a = a.astype(dtype)
    if finite and not np.isfinite(a).all():
        raise ValueError(f"{name} holds values that are not finite (in {np.dtype(dtype)})")
    return a


def _checked(meta, data, net, opt, plan, state):
    """Every part of a checkpoint, checked against this run (shapes, ranges, types) and
    converted, with nothing set yet: a dict for ``restore``."""
    host = lambda b: np.asarray(net.e.to_host(b))          # noqa: E731
    c = {"params": _array(data, "params", host(net.flat).shape, net.dtype)}
    c["buffers"] = {(name, i): _array(data, f"opt_{name}_{i}", host(b).shape, net.dtype)
                    for name, bufs in opt.state_arrays().items() for i, b in enumerate(bufs)}
    t = meta["t"]
    if isinstance(t, bool) or not isinstance(t, int) or not 0 <= t <= plan.total_steps:
        raise ValueError(f"its step {t!r} is not one of this run's 0 .. {plan.total_steps}")
    c["t"] = t
    order = _array(data, "order", state.order.shape, np.int64)
    if not np.array_equal(np.sort(order), np.arange(plan.n)):
        raise ValueError(f"its row order is not an order of the {plan.n} rows")
    c["order"] = order
    c["ep_losses"] = _array(data, "ep_losses", state.ep_losses.shape, np.float64, False)
    om, hyper = meta["opt_meta"], meta["hyper"]
    now = opt.state_meta()
    if not isinstance(om, dict) or set(om) != set(now) or any(
            not isinstance(om[k], type(now[k])) and now[k] is not None for k in om):
        raise ValueError(f"its optimizer counters {om!r} are not those of {opt.kind}")
    c["opt_meta"] = om
    if not isinstance(hyper, dict):
        raise ValueError(f"its hyperparameters {hyper!r} are not a dict")
    opt.check(**hyper)
    c["hyper"] = hyper
    type(state.rng.bit_generator)().state = meta["rng"]   # raises unless it is such a state
    c["rng"] = meta["rng"]
    hist = History.from_json(meta["history"])
    if len(hist.loss) != t // plan.per:
        raise ValueError(f"its history has {len(hist.loss)} epochs, not the {t // plan.per} "
                         "its step has run")
    c["hist"] = hist
    c["elapsed"] = float(meta["elapsed"])
    if plan.early_stopping is not None:
        es = meta["early_stopping"]
        plan.early_stopping.check_state(es)
        c["early_stopping"], c["stopped"] = es, bool(es["stopped"])
        c["best_weights"] = (_array(data, "best_weights", host(net.flat).shape, net.dtype)
                             if "best_weights" in data else None)
    return c


def remove(path):
    try:
        os.unlink(path)
    except FileNotFoundError:
        pass
