"""inertia: fully-connected networks trained by gradient descent with momentum.

Explicit forward and backward passes over a small engine of BLAS verbs; every momentum
convention (PyTorch, TF1, optax, Keras, scikit-learn, EMA, Neanderthal, previous-delta) as data
in one update rule. Importing inertia never imports torch, matplotlib or any optional engine.
"""

from . import data as datasets
from . import engines
from .network import Dense, Network
from . import schedules
from .optim import CONVENTIONS, QHM, SGD, Adam, AdamW, AggMo, Convention, SGDState
from .optim.translate import NotRepresentable, translate
from .serialize import load, save
from .train import History, fit

__version__ = "0.1.0"


def __getattr__(name):
    if name == "tune":                 # choosing lr and momentum: imported on first use
        import importlib

        return importlib.import_module(".tuning", __name__).tune
    raise AttributeError(f"module 'inertia' has no attribute {name!r}")


__all__ = ["Network", "Dense", "SGD", "SGDState", "QHM", "AggMo", "Adam", "AdamW", "Convention",
           "CONVENTIONS", "translate", "NotRepresentable", "fit", "History", "save", "load",
           "datasets", "engines", "schedules", "tune", "__version__"]
