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

import hashlib
import json
import os
import re

import numpy as np

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
    the optimizer and its hyperparameters at the start, and the run's settings."""
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
    """The first part of two fingerprints that differs, in words (None: they agree)."""
    words = {"data": "other data", "network": "a network of another shape",
             "optimizer": "another optimizer or other hyperparameters",
             "settings": "other training settings"}
    for key, what in words.items():
        if saved.get(key) != now.get(key):
            return what
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
        with np.load(path, allow_pickle=False) as f:
            data = {k: f[k] for k in f.files}
        meta = json.loads(str(data.pop("meta")))
        if meta.get("format") != FORMAT:
            raise KeyError("format")
    except (OSError, ValueError, KeyError) as ex:
        raise ValueError(f"{path} is not an inertia checkpoint ({ex}): remove it or give "
                         "another checkpoint path") from None
    return meta, data


def position(path):
    """The (epoch, step) a checkpoint resumes at, from 0 (None: not a checkpoint)."""
    try:
        meta, _ = load(path)
        return tuple(meta["position"])
    except (ValueError, KeyError):
        return None


def restore(path, net, opt, plan, state):
    """Resume ``state`` from the checkpoint at ``path``: check that it belongs to this run,
    then set the parameters, the optimizer and the loop position in place."""
    meta, data = load(path)
    why = _difference(meta["fingerprint"], state.fingerprint)
    if why is not None:
        raise ValueError(f"the checkpoint {path} belongs to a run on {why}: rerun that run's "
                         "command to resume it, or remove the checkpoint to start afresh")
    e = net.e
    e.copy(e.from_host(data["params"].astype(net.dtype, copy=False)), net.flat)
    for name, bufs in opt.state_arrays().items():
        for i, b in enumerate(bufs):
            e.copy(e.from_host(data[f"opt_{name}_{i}"].astype(net.dtype, copy=False)), b)
    for k, v in meta["opt_meta"].items():
        setattr(opt.state, k, v)
    opt.set(**meta["hyper"])
    state.t = int(meta["t"])
    state.order[:] = data["order"]
    state.ep_losses[:] = data["ep_losses"]
    state.rng.bit_generator.state = meta["rng"]
    state.hist = History.from_json(meta["history"])
    state.clock_offset = float(meta["elapsed"])
    state.hist.resumed_from = (state.t // plan.per, state.t % plan.per)
    if plan.early_stopping is not None:
        plan.early_stopping.load_state(meta["early_stopping"], data.get("best_weights"))
        state.stopped = bool(meta["early_stopping"]["stopped"])


def remove(path):
    try:
        os.unlink(path)
    except FileNotFoundError:
        pass
