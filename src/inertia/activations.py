"""Activations: a name-keyed table of in-place pairs, the derivative taken from the output.

``forward(z)`` overwrites z with f(z); ``backward(a, delta)`` overwrites delta with
delta * f'(z), written in terms of the output a = f(z) (so z need not be kept). These are the
NumPy kernels; other engines provide the same table for their arrays.
"""

from __future__ import annotations

import numpy as np
from scipy.special import expit

NAMES = ("linear", "sigmoid", "tanh", "relu", "softmax")


def _linear(z):
    return z


def _linear_d(a, delta):
    return delta


def _sigmoid(z):
    return expit(z, out=z)


def _sigmoid_d(a, delta):
    # f' = a (1 - a)
    delta *= a
    delta -= delta * a
    return delta


def _tanh(z):
    return np.tanh(z, out=z)


def _tanh_d(a, delta):
    # f' = 1 - a^2
    delta -= delta * a * a
    return delta


def _relu(z):
    return np.maximum(z, 0, out=z)


def _relu_d(a, delta):
    # f' = 1 where a > 0 else 0
    delta[a <= 0] = 0
    return delta


def softmax_rows(z):
    """Row-wise softmax in place, max subtracted first."""
    z -= z.max(axis=1, keepdims=True)
    np.exp(z, out=z)
    z /= z.sum(axis=1, keepdims=True)
    return z


def _softmax_d(a, delta):
    raise ValueError("softmax has no elementwise derivative; use it only as the output layer "
                     "with loss='cross_entropy'")


FORWARD = {"linear": _linear, "sigmoid": _sigmoid, "tanh": _tanh, "relu": _relu,
           "softmax": softmax_rows}
BACKWARD = {"linear": _linear_d, "sigmoid": _sigmoid_d, "tanh": _tanh_d, "relu": _relu_d,
            "softmax": _softmax_d}


def check(name: str) -> str:
    """Return ``name`` if it is a known activation, else raise a one-line ValueError."""
    if name not in FORWARD:
        raise ValueError(f"unknown activation {name!r}: choose one of {', '.join(NAMES)}")
    return name
