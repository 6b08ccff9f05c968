"""Losses: the value and the output delta dL/dz of each loss, as NumPy kernels.

All targets are (n, k) arrays of the network's dtype (class labels are one-hot encoded by
``prepare_targets``). n is the number of samples in the batch, k the number of outputs.

=============== ===================================== =========================== ============
name            value                                 output activation           dL/dz
=============== ===================================== =========================== ============
mse             mean over all n*k of (a - y)^2        linear, sigmoid, tanh, relu 2(a-y)/(nk) f'
quadratic       sum of (a - y)^2 / (2n)               linear, sigmoid, tanh, relu (a-y)/n f'
bce             mean of -(y log a + (1-y) log(1-a))   sigmoid                     (a-y)/(nk)
cross_entropy   mean over rows of -sum y log softmax  softmax                     (a-y)/n
=============== ===================================== =========================== ============

``mse`` is ``torch.nn.MSELoss()``; ``quadratic`` is the cost ``||y - a||^2 / (2n)`` of the
Neanderthal deep-learning series; ``bce`` is ``torch.nn.BCELoss()`` evaluated from the logits so
that it stays finite when the sigmoid saturates; ``cross_entropy`` is
``torch.nn.CrossEntropyLoss()`` applied to the softmax layer's logits. Every value is a mean of
per-row values, each a sum of terms >= 0 (``value``), so that large logits cannot cancel it
away; the engines' and the compiled loop's own loss code use the same forms.
"""

from __future__ import annotations

import numpy as np

from . import activations

NAMES = ("mse", "quadratic", "bce", "cross_entropy")

# which output activations each loss accepts
FITS = {
    "mse": ("linear", "sigmoid", "tanh", "relu"),
    "quadratic": ("linear", "sigmoid", "tanh", "relu"),
    "bce": ("sigmoid",),
    "cross_entropy": ("softmax",),
}


def check(name: str, output_activation: str | None = None) -> str:
    """Validate a loss name and, when given, that it fits the output activation."""
    if name not in FITS:
        raise ValueError(f"unknown loss {name!r}: choose one of {', '.join(NAMES)}")
    if output_activation is not None and output_activation not in FITS[name]:
        want = " or ".join(FITS[name])
        raise ValueError(f"loss {name!r} does not fit a {output_activation!r} output layer: "
                         f"make the last layer {want}, or pick a loss that fits "
                         f"{output_activation!r}")
    return name


def value(name, z, a, y, tmp=None, tmp2=None, rows=None) -> float:
    """The loss of pre-activation z, output a and target y, all (n, k) arrays of one dtype.

    Computed row by row: each row's loss is a sum of terms that are all >= 0 (for targets
    in the loss's range), and the mean is taken of the row values; nothing is subtracted
    across the batch, so no cancellation loses the value on large logits. ``tmp`` and
    ``tmp2`` (shaped like a, distinct) and ``rows`` ((3, n)) are scratch, so that nothing
    array-sized is allocated; any left as None is allocated here. z, a, y are not changed.
    """
    n, k = a.shape
    if tmp is None:
        tmp = np.empty_like(a)
    if rows is None:
        rows = np.empty((3, n), dtype=a.dtype)
    if name in ("mse", "quadratic"):
        d = np.subtract(a, y, out=tmp)
        per_row = np.einsum("ij,ij->i", d, d, out=rows[0])
        s = float(per_row.sum())
        return s / (n * k) if name == "mse" else s / (2 * n)
    if name == "bce":
        if tmp2 is None:
            tmp2 = np.empty_like(a)
        return _bce_rows(z, y, tmp, tmp2, rows[0]) / (n * k)
    if name == "cross_entropy":
        return _cross_entropy_rows(z, y, tmp, rows) / n
    raise ValueError(f"unknown loss {name!r}")


def _bce_rows(z, y, t, u, per_row) -> float:
    """Sum over the batch of the rows' binary cross-entropies from the logits z:
    -(y log s(z) + (1-y) log(1 - s(z))) = max(z, 0)(1 - y) + max(-z, 0) y + log(1 + e^-|z|),
    three terms >= 0 for y in [0, 1] (no z - z y cancellation). t, u: scratch like z."""
    np.subtract(1.0, y, out=u)
    u *= np.maximum(z, 0.0, out=t)             # max(z, 0) (1 - y)
    np.minimum(z, 0.0, out=t)
    t *= y
    u -= t                                      # + max(-z, 0) y
    np.abs(z, out=t)
    np.negative(t, out=t)
    np.exp(t, out=t)
    np.log1p(t, out=t)
    u += t                                      # + log(1 + exp(-|z|))
    return float(np.sum(u, axis=1, out=per_row).sum())


def _cross_entropy_rows(z, y, t, rows) -> float:
    """Sum over the batch of the rows' cross-entropies -sum_j y_j log softmax(z)_j, each as
    sum(y) log(sum_j exp(z_j - m)) + sum_j y_j (m - z_j) with m the row's max: two terms
    >= 0 for y >= 0, so a row's value never cancels. t: scratch like z; rows: (3, n)."""
    m = np.max(z, axis=1, out=rows[0])
    np.subtract(z, m[:, None], out=t)           # z - m <= 0
    y_shift = np.einsum("ij,ij->i", y, t, out=rows[1])           # sum_j y_j (z_j - m) <= 0
    np.exp(t, out=t)
    lse = np.sum(t, axis=1, out=rows[0])        # >= 1: the row max contributes exp(0)
    np.log(lse, out=lse)
    lse *= np.sum(y, axis=1, out=rows[2])
    lse -= y_shift
    return float(lse.sum())


def delta_(name, activation, z, a, y, delta, tmp=None):
    """delta := dL/dz for the output layer (``tmp``: scratch shaped like a). Returns delta."""
    n, k = a.shape
    np.subtract(a, y, out=delta)
    if name == "mse":
        delta *= 2.0 / (n * k)
    elif name == "quadratic":
        delta *= 1.0 / n
    elif name == "bce":
        delta *= 1.0 / (n * k)
        return delta
    elif name == "cross_entropy":
        delta *= 1.0 / n
        return delta
    return activations.BACKWARD[activation](a, delta, tmp)


def prepare_targets(name: str, y, n_outputs: int, dtype) -> np.ndarray:
    """Turn user targets into an (n, k) float array: class labels become one-hot for
    cross-entropy, a 1-D target becomes one column. Raises a one-line ValueError."""
    y = np.asarray(y)
    if name == "cross_entropy" and (y.ndim == 1 or (y.ndim == 2 and y.shape[1] == 1
                                                    and n_outputs > 1)):
        labels = y.reshape(-1)
        if not np.all(np.isfinite(labels.astype(np.float64))):
            raise ValueError("class labels contain NaN or inf: remove or fill those rows")
        if np.any(labels != np.round(labels)) or labels.min(initial=0) < 0 \
                or labels.max(initial=0) >= n_outputs:
            raise ValueError(f"cross_entropy needs integer class labels in [0, {n_outputs - 1}] "
                             f"or one-hot targets with {n_outputs} columns")
        out = np.zeros((labels.shape[0], n_outputs), dtype=dtype)
        out[np.arange(labels.shape[0]), labels.astype(np.int64)] = 1
        return out
    if y.ndim == 1:
        y = y.reshape(-1, 1)
    if y.ndim != 2:
        raise ValueError(f"targets must be 1-D or 2-D, got shape {y.shape}")
    if y.shape[1] != n_outputs:
        raise ValueError(f"targets have {y.shape[1]} column(s) but the network has {n_outputs} "
                         f"output(s): change the last layer to Dense({y.shape[1]}, ...) "
                         f"or pass matching targets")
    y = np.ascontiguousarray(y, dtype=dtype)
    if name == "bce" and (y.min(initial=0) < 0 or y.max(initial=0) > 1):
        raise ValueError("bce targets must lie in [0, 1]")
    if name == "cross_entropy" and (y.min(initial=0) < 0
                                    or not np.allclose(y.sum(axis=1), 1, atol=1e-5)):
        raise ValueError("cross_entropy targets must be one-hot (or probability) rows summing "
                         "to 1, or integer class labels")
    return y
