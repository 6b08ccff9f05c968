"""save / load: the network, the optimizer's hyperparameters, convention and state in one .npz
that loads without pickle, written atomically (a failed save leaves the old file intact)."""

from __future__ import annotations

import json
import os
import tempfile

import numpy as np

from .network import Dense, Network
from .optim.sgd import SGD, SGDState

FORMAT = "inertia-model-1"


def atomic_write(path, write):
    """Call ``write(fileobj)`` on a temporary file beside ``path``, then rename it over
    ``path``. On any error the temporary file is removed and ``path`` is untouched."""
    path = os.fspath(path)
    d = os.path.dirname(os.path.abspath(path))
    if not os.path.isdir(d):
        raise ValueError(f"cannot write {path}: the folder {d} does not exist")
    try:
        fd, tmp = tempfile.mkstemp(dir=d, prefix="." + os.path.basename(path) + ".",
                                   suffix=".tmp")
    except OSError as ex:
        raise ValueError(f"cannot write {path}: {ex.strerror}") from None
    try:
        with os.fdopen(fd, "wb") as f:
            write(f)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        try:
            os.unlink(tmp)
        except OSError:
            pass
        raise


def save(path, net, optimizer=None, extra=None):
    """Write ``net`` (and ``optimizer`` with its state, when given) to ``path`` (.npz)."""
    meta = {
        "format": FORMAT,
        "n_inputs": net.n_inputs,
        "layers": [[layer.units, layer.activation] for layer in net.layers],
        "dtype": net.dtype.name, "engine": net.engine, "seed": net.seed,
        "optimizer": None, "extra": extra or {},
    }
    arrays = {}
    for i, (w, b) in enumerate(net.parameters()):
        arrays[f"W{i}"], arrays[f"b{i}"] = w, b
    if optimizer is not None:
        st = optimizer.state
        meta["optimizer"] = {"config": optimizer.config(),
                             "step": st.step if st else 0,
                             "started": st.started if st else False,
                             "has_state": st is not None}
        if st is not None:
            for i, v in enumerate(st.velocity):
                arrays[f"v{i}"] = net.e.to_host(v) if not isinstance(v, np.ndarray) \
                    else np.array(v)
    arrays["meta"] = np.array(json.dumps(meta))
    atomic_write(path, lambda f: np.savez(f, **arrays))


def load(path, engine=None):
    """Read a file written by ``save``: returns (network, optimizer or None)."""
    path = os.fspath(path)
    try:
        with np.load(path, allow_pickle=False) as f:
            data = {k: f[k] for k in f.files}
    except FileNotFoundError:
        raise ValueError(f"no such model file: {path}") from None
    except Exception as ex:
        raise ValueError(f"cannot read model file {path}: {ex}") from None
    try:
        meta = json.loads(str(data["meta"]))
        if meta.get("format") != FORMAT:
            raise KeyError("format")
        net = Network(meta["n_inputs"], [Dense(u, a) for u, a in meta["layers"]],
                      seed=meta["seed"], dtype=meta["dtype"], engine=engine or meta["engine"])
        net.set_parameters([(data[f"W{i}"], data[f"b{i}"]) for i in range(len(meta["layers"]))])
        opt = None
        om = meta["optimizer"]
        if om is not None:
            opt = SGD(**om["config"])
            if om["has_state"]:
                vel = [data[f"v{i}"] for i in range(2 * len(meta["layers"]))]
                opt.state = SGDState(step=om["step"], started=om["started"],
                                     velocity=[net.e.from_host(v) for v in vel])
    except (KeyError, TypeError, ValueError) as ex:
        raise ValueError(f"{path} is not an inertia model file ({ex}): save one with "
                         "inertia.save or `inertia train --save`") from None
    net.extra = meta.get("extra", {})
    return net, opt
