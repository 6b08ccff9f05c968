"""save / load: the network, the optimizer's hyperparameters, convention and state in one .npz
that loads without pickle, written atomically (a failed save leaves the old file intact)."""

from __future__ import annotations

import json
import re
import os
import tempfile

import numpy as np

from .network import Dense, Network

FORMAT = "inertia-model-2"


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
        umask = os.umask(0)
        os.umask(umask)
        os.chmod(tmp, 0o666 & ~umask)          # as an ordinary open() would create it
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
        meta["optimizer"] = {"type": optimizer.kind, "config": optimizer.config(),
                             "state": optimizer.state_meta() if st is not None else None}
        if st is not None:
            for name, bufs in optimizer.state_arrays().items():
                for i, v in enumerate(bufs):
                    arrays[f"opt_{name}_{i}"] = np.asarray(net.e.to_host(v))
    arrays["meta"] = np.array(json.dumps(meta))
    atomic_write(path, lambda f: np.savez(f, **arrays))


def load(path, engine=None, device=None):
    """Read a file written by ``save``: returns (network, optimizer or None). ``engine`` and
    ``device`` override the ones the model was saved with."""
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
                      seed=meta["seed"], dtype=meta["dtype"], engine=engine or meta["engine"],
                      device=device)
        net.set_parameters([(data[f"W{i}"], data[f"b{i}"]) for i in range(len(meta["layers"]))])
        opt = None
        om = meta["optimizer"]
        if om is not None:
            from .optim import OPTIMIZERS

            opt = OPTIMIZERS[om["type"]](**om["config"])
            if om["state"] is not None:
                arrs = {}
                for name in opt.STATE_LISTS:
                    idx = sorted(int(m.group(1)) for k in data
                                 if (m := re.fullmatch(rf"opt_{name}_(\d+)", k)))
                    arrs[name] = [data[f"opt_{name}_{i}"] for i in idx]
                opt.restore_state(om["state"], arrs, net.e)
    except (KeyError, TypeError, ValueError) as ex:
        raise ValueError(f"{path} is not an inertia model file ({ex}): save one with "
                         "inertia.save or `inertia train --save`") from None
    net.extra = meta.get("extra", {})
    return net, opt
