"""The momentum family: SGD with every convention as data, its relatives QHM and AggMo, and
the adaptive descendants Adam and AdamW."""

from .adam import Adam, AdamState, AdamW
from .base import Optimizer
from .conventions import CONVENTIONS, Convention, Spelling
from .family import QHM, AggMo, AggMoState, QHMState
from .sgd import SGD, SGDState

# kind -> class, for save/load and the command line
OPTIMIZERS = {"sgd": SGD, "qhm": QHM, "aggmo": AggMo, "adam": Adam, "adamw": AdamW}

__all__ = ["Optimizer", "SGD", "SGDState", "QHM", "QHMState", "AggMo", "AggMoState", "Adam",
           "AdamW", "AdamState", "Convention", "Spelling", "CONVENTIONS", "OPTIMIZERS"]
