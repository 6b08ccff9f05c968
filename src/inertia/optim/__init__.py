"""The momentum family: one update rule per family, conventions as data."""

from .base import Optimizer
from .conventions import CONVENTIONS, Convention
from .sgd import SGD, SGDState

# kind -> class, for save/load and the command line
OPTIMIZERS = {"sgd": SGD}

__all__ = ["Optimizer", "SGD", "SGDState", "Convention", "CONVENTIONS", "OPTIMIZERS"]
