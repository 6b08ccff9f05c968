"""The momentum family: one update rule (``sgd.update_``), conventions as data."""

from .conventions import CONVENTIONS, Convention
from .sgd import SGD, SGDState

__all__ = ["SGD", "SGDState", "Convention", "CONVENTIONS"]
