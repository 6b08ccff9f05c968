"""save / load: the network, the optimizer's hyperparameters, convention and state in one .npz
that loads without pickle, written atomically (a failed save leaves the old file intact).

``load`` checks everything it reads (the metadata's JSON types and sizes, the arrays' shapes
and finiteness) and refuses a file that is not a model, or an edited or corrupted one, with a
one-line ValueError, never a traceback.
"""

from __future__ import annotations

import json
import re
import os

import numpy as np

from . import engines
from .files import atomic_write, check_output, npz_problem  # noqa: F401 (re-exported)
from .network import Dense, Network, Scaling, UnsupportedNetwork

FORMAT = "inertia-model-2"


def save(path, net, optimizer=None, extra=None):
    """Write ``net`` (and ``optimizer`` with its state, when given) to ``path`` (.npz).
    ``extra``: a JSON-able dict kept as the loaded network's ``extra``; a network's
    ``scaling`` is written into it (``mean``, ``std``, ``y_mean``, ``y_std``) unless it
    already gives them, so that a saved and loaded network predicts the same."""
    from .optim.base import Optimizer

    if not isinstance(net, Network):
        raise ValueError(f"save writes an inertia.Network, got {type(net).__name__}")
    if optimizer is not None and not isinstance(optimizer, Optimizer):
        raise ValueError(f"optimizer must be an inertia optimizer (SGD, QHM, AggMo, Adam, "
                         f"AdamW) or None, got {type(optimizer).__name__}")
    if extra is not None and not isinstance(extra, dict):
        raise ValueError(f"extra must be a dict (JSON-able), got {type(extra).__name__}")
    extra = dict(extra or {})
    sc = getattr(net, "scaling", None)
    if sc is not None:
        for key in ("mean", "std", "y_mean", "y_std"):
            if extra.get(key) is None and getattr(sc, key) is not None:
                extra[key] = np.asarray(getattr(sc, key), dtype=np.float64).tolist()
    meta = {
        "format": FORMAT,
        "n_inputs": net.n_inputs,
        "layers": [[layer.units, layer.activation] for layer in net.layers],
        "dtype": net.dtype.name, "engine": net.engine, "seed": net.seed,
        "optimizer": None, "extra": extra,
    }
    arrays = {}
    for i, (w, b) in enumerate(net.parameters()):
        arrays[f"W{i}"], arrays[f"b{i}"] = w, b
    if optimizer is not None:
        st = optimizer.state
        meta["optimizer"] = {"type": optimizer.kind, "config": optimizer.config(),
                             "state": optimizer.state_meta() if st is not None else None}
        if st is not None:
            for name, bufs in optimizer.state_arrays().items():
                for i, v in enumerate(bufs):
                    arrays[f"opt_{name}_{i}"] = np.asarray(net.e.to_host(v))
    text = _json(meta)
    try:                  # what load would refuse is not written (an existing file stays)
        _build(json.loads(text), arrays, engine="numpy")
    except _FAULTS as ex:
        raise ValueError(f"cannot save {os.fspath(path)}: the model would not load back "
                         f"({_why(ex)}); nothing was written") from None
    arrays["meta"] = np.array(text)
    atomic_write(path, lambda f: np.savez(f, **arrays))


def _json(meta):
    """The model's metadata as JSON text (NumPy scalars and arrays as numbers and lists),
    or a one-line ValueError naming what ``extra`` holds that JSON cannot."""
    def plain(o):
        if isinstance(o, (np.generic, np.ndarray)):
            return o.tolist()
        raise TypeError(f"{type(o).__name__} {o!r}")

    try:
        return json.dumps(meta, default=plain)
    except (TypeError, ValueError) as ex:
        raise ValueError(f"extra must hold only JSON values (numbers, strings, lists, "
                         f"dicts): {ex}") from None


def load(path, engine=None, device=None):
    """Read a file written by ``save``: returns (network, optimizer or None). ``engine`` and
    ``device`` override the ones the model was saved with. The saved ``extra`` dict is
    ``network.extra``; when it records a standardization (``mean``/``std``, and
    ``y_mean``/``y_std`` for a regression target, as the CLI's ``--standardize`` saves),
    ``network.scaling`` applies it in ``network.predict`` (``predict(X, raw=True)`` skips
    it)."""
    path = os.fspath(path)
    data = _read_arrays(path)
    try:
        meta = json.loads(str(data["meta"])) if "meta" in data else None
    except ValueError:
        meta = None
    if not isinstance(meta, dict) or meta.get("format") != FORMAT:
        raise ValueError(f"{path} is not an inertia model file: {_describe_npz(data)}; "
                         "save one with inertia.save or `inertia train --save`")
    name = engine if engine is not None else meta.get("engine")
    if engine is not None or (device is not None and name in engines.ENGINES):
        try:                             # the arguments' fault, not the file's
            engines.get(name, device=device)
        except ValueError as ex:
            raise ValueError(f"cannot load {path} with engine={engine!r}, device={device!r}: "
                             f"{ex}") from None
    try:
        net, opt = _build(meta, data, engine, device)
    except UnsupportedNetwork as ex:     # written before inertia refused such layers
        raise ValueError(f"{path} holds layers that inertia does not build: {ex}") from None
    except _FAULTS as ex:
        raise ValueError(f"{path} is a damaged inertia model file ({_why(ex)}): save it again "
                         "with `inertia train --save`") from None
    return net, opt


# what a record that does not make a model raises while it is built
_FAULTS = (KeyError, TypeError, ValueError, AttributeError, IndexError, OverflowError)


def _why(ex):
    return str(ex).splitlines()[0] if str(ex) else type(ex).__name__


def _build(meta, data, engine=None, device=None):
    """(network, optimizer or None) from a model's metadata and arrays, every field checked
    (what ``load`` reads and ``save`` checks before it writes)."""
    _check_meta(meta, data)
    net = Network(meta["n_inputs"], [Dense(u, a) for u, a in meta["layers"]],
                  seed=meta["seed"], dtype=meta["dtype"], engine=engine or meta["engine"],
                  device=device)
    net.set_parameters([(data[f"W{i}"], data[f"b{i}"]) for i in range(len(meta["layers"]))])
    opt = _load_optimizer(meta["optimizer"], data, net)
    net.scaling = Scaling.from_extra(meta["extra"], net.n_inputs, net.n_outputs)
    net.extra = meta["extra"]
    return net, opt


def _read_arrays(path):
    if os.path.isdir(path):
        raise ValueError(f"{path} is a directory, not a model file")
    try:
        problem = npz_problem(path)
    except FileNotFoundError:
        raise ValueError(f"no such model file: {path}") from None
    except OSError as ex:
        raise ValueError(f"cannot read model file {path}: {ex.strerror}") from None
    if problem:
        raise ValueError(f"cannot read model file {path}: {problem} (an inertia model is "
                         "written by `inertia train --save`)")
    data = {}
    try:
        with np.load(path, allow_pickle=False) as f:
            for k in f.files:
                try:
                    data[k] = f[k]
                except ValueError:           # object arrays: pickled Python objects
                    data[k] = None
    except Exception as ex:   # a truncated or damaged zip: zipfile, OSError, EOFError, ...
        raise ValueError(f"{path} is a damaged .npz archive ({type(ex).__name__}), not a "
                         "readable inertia model file") from None
    return data


def _describe_npz(data):
    if not data:
        return "an empty .npz archive"
    names = sorted(data)
    shown = ", ".join(names[:8]) + (", ..." if len(names) > 8 else "")
    what = "pickled objects" if any(v is None for v in data.values()) else "arrays"
    return f"a .npz archive of {what} ({shown}) without inertia metadata"


def _check_meta(meta, data):
    """Type- and size-check the metadata against the arrays (TypeError/ValueError)."""
    _want(meta, "n_inputs", int)
    _want(meta, "layers", list)
    _want(meta, "dtype", str)
    _want(meta, "engine", str)
    _want(meta, "extra", dict)
    if meta["optimizer"] is not None:
        _want(meta, "optimizer", dict)
    if meta.get("seed") is not None:
        _want(meta, "seed", int)
    if meta["dtype"] not in ("float32", "float64"):
        raise ValueError(f"dtype {meta['dtype']!r}")
    sizes = [meta["n_inputs"]]
    for layer in meta["layers"]:
        if not (isinstance(layer, list) and len(layer) == 2 and _is_int(layer[0])
                and isinstance(layer[1], str)):
            raise TypeError(f"layer {layer!r} is not [units, activation]")
        sizes.append(layer[0])
    for i, (n_in, n_out) in enumerate(zip(sizes, sizes[1:])):
        for name, shape in ((f"W{i}", (n_out, n_in)), (f"b{i}", (n_out,))):
            arr = data.get(name)
            if arr is None or arr.shape != shape or arr.dtype.kind != "f":
                raise ValueError(f"{name} is {_shape(arr)}, the metadata says {shape}")
            if not np.all(np.isfinite(arr)):
                raise ValueError(f"{name} holds NaN or inf weights")


def _want(meta, key, kind):
    v = meta[key]
    ok = _is_int(v) if kind is int else isinstance(v, kind)
    if not ok:
        raise TypeError(f"{key} is {type(v).__name__}, not {kind.__name__}")


def _is_int(v):
    return isinstance(v, int) and not isinstance(v, bool)


def _shape(arr):
    return "missing" if arr is None else f"{arr.dtype} {arr.shape}"


def _load_optimizer(om, data, net):
    if om is None:
        return None
    from .optim import OPTIMIZERS

    if om.get("type") not in OPTIMIZERS or not isinstance(om.get("config"), dict):
        raise ValueError(f"optimizer {om.get('type')!r} with config {om.get('config')!r}")
    opt = OPTIMIZERS[om["type"]](**om["config"])
    state = om.get("state")
    if state is not None:
        if not isinstance(state, dict):
            raise TypeError(f"optimizer state is {type(state).__name__}, not dict")
        arrs = {}
        for name in opt.STATE_LISTS:
            idx = sorted(int(m.group(1)) for k in data
                         if (m := re.fullmatch(rf"opt_{name}_(\d+)", k)))
            arrs[name] = [data[f"opt_{name}_{i}"] for i in idx]
        _check_state(opt, state, arrs, net)
        opt.restore_state(state, arrs, net.e)
    return opt


def _check_state(opt, state, arrs, net):
    """The optimizer state's scalars have their dataclass defaults' types; its buffers are
    finite and shaped like the parameters (K buffers a parameter for AggMo: index k P + j)."""
    import dataclasses

    defaults = {f.name: f.default for f in dataclasses.fields(opt.STATE)
                if f.name not in opt.STATE_LISTS}
    for key, v in state.items():
        if key not in defaults:
            raise ValueError(f"unknown optimizer state {key!r}")
        want = defaults[key]
        ok = (isinstance(v, bool) if isinstance(want, bool)
              else _is_int(v) and v >= 0 if isinstance(want, int)
              else v is None or isinstance(v, (int, float)) and not isinstance(v, bool))
        if not ok:
            raise TypeError(f"optimizer state {key} is {v!r}")
    shapes = [a.shape for pair in net.parameters() for a in pair]
    for name, bufs in arrs.items():
        if len(bufs) % len(shapes):
            raise ValueError(f"optimizer buffer {name} has {len(bufs)} arrays for "
                             f"{len(shapes)} parameters")
        for i, a in enumerate(bufs):
            if a is None or a.dtype.kind != "f" or a.shape != shapes[i % len(shapes)] \
                    or not np.all(np.isfinite(a)):
                raise ValueError(f"optimizer buffer {name} {i} is not finite numbers shaped "
                                 "like its parameter")
