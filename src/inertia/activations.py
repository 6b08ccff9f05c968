"""Activations: a name-keyed table of in-place pairs, the derivative taken from the output.

``forward(z)`` overwrites z with f(z); ``backward(a, delta, tmp)`` overwrites delta with
delta * f'(z), written in terms of the output a = f(z) (so z need not be kept), using ``tmp``
(an array shaped like a) as scratch so that nothing is allocated. These are the NumPy kernels;
other engines provide the same table for their arrays.
"""

from __future__ import annotations

import numpy as np

NAMES = ("linear", "sigmoid", "tanh", "relu", "softmax")


def _linear(z):
    return z


def _linear_d(a, delta, tmp=None):
    return delta


def _sigmoid(z):
    # 1 / (1 + exp(-z)) in place: exp overflows to inf for z < -88 and 1 / inf = 0
    np.negative(z, out=z)
    np.exp(z, out=z)
    z += 1
    return np.reciprocal(z, out=z)


def _sigmoid_d(a, delta, tmp=None):
    # f' = a (1 - a)
    tmp = np.subtract(1, a, out=tmp)
    tmp *= a
    delta *= tmp
    return delta


def _tanh(z):
    return np.tanh(z, out=z)


def _tanh_d(a, delta, tmp=None):
    # f' = 1 - a^2
    tmp = np.multiply(a, a, out=tmp)
    np.subtract(1, tmp, out=tmp)
    delta *= tmp
    return delta


def _relu(z):
    return np.maximum(z, 0, out=z)


def _relu_d(a, delta, tmp=None):
    # f' = 1 where a > 0 else 0
    tmp = np.greater(a, 0, out=tmp, casting="unsafe") if tmp is not None else (a > 0)
    delta *= tmp
    return delta


def softmax_rows(z, row=None):
    """Row-wise softmax in place, max subtracted first (``row``: an (n, 1) scratch)."""
    row = np.max(z, axis=1, keepdims=True, out=row)
    z -= row
    np.exp(z, out=z)
    row = np.sum(z, axis=1, keepdims=True, out=row)
    z /= row
    return z


def _softmax_d(a, delta, tmp=None):
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
