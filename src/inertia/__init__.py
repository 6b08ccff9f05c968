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
from .sweeps import SweepResult, sweep
from .training import Diverged, DivergenceWarning, History, fit

__version__ = "0.1.0"

_ESTIMATORS = ("MLPClassifier", "MLPRegressor")


def __getattr__(name):
    """MLPClassifier and MLPRegressor (``inertia.estimators``) import scikit-learn, so they
    are imported on first use: ``import inertia`` never imports scikit-learn."""
    if name in _ESTIMATORS:
        from . import estimators

        return getattr(estimators, name)
    raise AttributeError(f"module 'inertia' has no attribute {name!r}")


__all__ = ["Network", "Dense", "SGD", "SGDState", "QHM", "AggMo", "Adam", "AdamW", "Convention",
           "CONVENTIONS", "translate", "NotRepresentable", "fit", "History", "Diverged",
           "DivergenceWarning", "save", "load", "sweep", "SweepResult", "datasets", "engines", "schedules",
           "MLPClassifier", "MLPRegressor", "__version__"]
