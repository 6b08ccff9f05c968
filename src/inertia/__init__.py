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
from .training import Diverged, DivergenceWarning, EarlyStopping, History, fit

__version__ = "0.1.0"

_ESTIMATORS = ("MLPClassifier", "MLPRegressor")


def __getattr__(name):
    """What imports heavy packages is imported on first use, so that ``import inertia`` never
    imports scikit-learn: MLPClassifier and MLPRegressor (``inertia.estimators``) and
    ``tune`` (``inertia.tuning.tune``)."""
    if name in _ESTIMATORS:
        from . import estimators

        return getattr(estimators, name)
    if name == "tune":
        from .tuning import tune

        return tune
    raise AttributeError(f"module 'inertia' has no attribute {name!r}")


__all__ = ["Network", "Dense", "SGD", "SGDState", "QHM", "AggMo", "Adam", "AdamW", "Convention",
           "CONVENTIONS", "translate", "NotRepresentable", "fit", "History", "Diverged",
           "DivergenceWarning", "EarlyStopping", "save", "load", "sweep", "SweepResult",
           "datasets", "engines", "schedules", "MLPClassifier", "MLPRegressor", "tune",
           "__version__"]
