"""Array engines, imported lazily by name: a missing optional engine is never an import error."""

from __future__ import annotations

import importlib

# name -> (module, class)
ENGINES = {"numpy": ("inertia.engines.numpy", "NumpyEngine"),
           "torch": ("inertia.engines.torch", "TorchEngine")}


def available() -> list[str]:
    """Names of the engines whose dependencies are installed."""
    out = []
    for name, (mod, _) in ENGINES.items():
        try:
            importlib.import_module(mod)
        except ImportError:
            continue
        out.append(name)
    return out


def get(name="numpy", dtype="float32", device=None):
    """An engine instance by name (on ``device`` where the engine has devices), or the
    instance itself when one is passed."""
    if not isinstance(name, str):
        return name
    if name not in ENGINES:
        raise ValueError(f"unknown engine {name!r}: choose one of {', '.join(ENGINES)}")
    mod, cls = ENGINES[name]
    try:
        module = importlib.import_module(mod)
    except ImportError as e:
        raise ValueError(f"engine {name!r} is not installed ({e.name} is missing): "
                         f"pip install {e.name}") from None
    if device is None:
        return getattr(module, cls)(dtype=dtype)
    return getattr(module, cls)(dtype=dtype, device=device)
