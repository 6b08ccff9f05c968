"""Losses: one record each (``RECORDS``), read by every engine and by the fused loop.

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
per-row values, each a sum of terms >= 0, so that large logits cannot cancel it away.

A record holds: the fused loop's code (``fused/tiles.py`` dispatches on it), the output
activations that fit, the loss's terms written once in the engines' element-wise verbs
(``op_``, ``map_``, ``row_sum``, ``row_max``: the NumPy and torch engines run the same
statement) -- one per element where the loss is a sum of element-wise terms (mse,
quadratic, bce: no row sums needed), one per row otherwise (cross-entropy) --, the divisor
of the summed terms, the delta's factor and whether it is chained
through the output activation's derivative (mse, quadratic: dL/da f'; bce, cross-entropy:
dL/dz straight from the logits), and the target check of ``prepare_targets``.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

import numpy as np


def _difference(e, z, a, y, out=None):
    """Per element: a_ij - y_ij, into ``out`` (default the scratch ``e.tmp(a.shape, 0)``);
    the loss sums its squares (``Loss.squared``)."""
    return e.op_("sub", a, y, e.tmp(a.shape, 0) if out is None else out)


def _bce_terms(e, z, a, y):
    """Per element, from the logits z: -(y log s(z) + (1-y) log(1 - s(z))) as
    max(z, 0)(1 - y) + max(-z, 0) y + log(1 + e^-|z|), three terms >= 0 for y in [0, 1] (no
    z - z y cancellation), into u. t, u: the scratch ``e.tmp(z.shape, 0 and 1)``."""
    t, u = e.tmp(z.shape, 0), e.tmp(z.shape, 1)
    e.op_("sub", 1.0, y, u)
    e.op_("mul", u, e.op_("maximum", z, 0.0, t), u)     # max(z, 0) (1 - y)
    e.op_("minimum", z, 0.0, t)
    e.op_("mul", t, y, t)
    e.op_("sub", u, t, u)                                 # + max(-z, 0) y
    e.map_("abs", z, t)
    e.map_("neg", t, t)
    e.map_("exp", t, t)
    e.map_("log1p", t, t)
    return e.op_("add", u, t, u)                          # + log(1 + exp(-|z|))


def _cross_entropy_terms(e, z, a, y):
    """Per row: -sum_j y_j log softmax(z)_j as sum(y) log(sum_j exp(z_j - m)) + sum_j y_j (m -
    z_j), m the row's max: two terms >= 0 for y >= 0, so a row's value never cancels. t, u:
    the scratch ``e.tmp(z.shape, 0 and 1)``; rows: ``e.tmp((3, n, 1), 2)``, three columns."""
    t, u, rows = e.tmp(z.shape, 0), e.tmp(z.shape, 1), e.tmp((3, z.shape[0], 1), 2)
    m = e.row_max(z, rows[0])
    e.op_("sub", z, m, t)                                 # z - m <= 0
    y_shift = e.row_sum(e.op_("mul", y, t, u), rows[1])   # sum_j y_j (z_j - m) <= 0
    e.map_("exp", t, t)
    lse = e.row_sum(t, rows[0])                           # >= 1: the row max gives exp(0)
    e.map_("log", lse, lse)
    e.op_("mul", lse, e.row_sum(y, rows[2]), lse)
    return e.op_("sub", lse, y_shift, lse)


def _unit_interval(y):
    if y.min(initial=0) < 0 or y.max(initial=0) > 1:
        raise ValueError("bce targets must lie in [0, 1]")


def _distribution_rows(y):
    if y.min(initial=0) < 0 or not np.allclose(y.sum(axis=1), 1, atol=1e-5):
        raise ValueError("cross_entropy targets must be one-hot (or probability) rows summing "
                         "to 1, or integer class labels")


@dataclass(frozen=True)
class Loss:
    """One loss: see the module docstring."""
    name: str
    code: int                  # the fused loop's loss code
    fits: tuple                # the output activations it accepts
    terms: Callable            # (engine, z, a, y) -> the terms, (n, k) one per
                               # element or (n, 1) one per row, whose total (of squares
                               # where ``squared``) is the loss sum
    divisor: Callable          # (n, k) -> the summed terms' divisor
    delta_scale: Callable      # (n, k) -> c in delta = c (a - y) [f'(output)]
    chained: bool              # delta multiplied by the output activation's derivative
    check_targets: Callable | None = None     # (prepared y) -> None or a one-line ValueError
    labels: bool = False       # integer class labels are one-hot encoded
    squared: bool = False      # the loss sums the terms' squares: one dot of them; the
                               # terms are then a - y, written by terms(e, z, a, y, out)


_ELEMENTWISE_OUT = ("linear", "sigmoid", "tanh", "relu")

RECORDS = {r.name: r for r in (
    Loss("mse", 0, _ELEMENTWISE_OUT, _difference, lambda n, k: n * k,
         lambda n, k: 2.0 / (n * k), True, squared=True),
    Loss("quadratic", 1, _ELEMENTWISE_OUT, _difference, lambda n, k: 2 * n,
         lambda n, k: 1.0 / n, True, squared=True),
    Loss("bce", 2, ("sigmoid",), _bce_terms, lambda n, k: n * k,
         lambda n, k: 1.0 / (n * k), False, _unit_interval),
    Loss("cross_entropy", 3, ("softmax",), _cross_entropy_terms, lambda n, k: n,
         lambda n, k: 1.0 / n, False, _distribution_rows, labels=True),
)}

NAMES = tuple(RECORDS)

# which output activations each loss accepts
FITS = {name: rec.fits for name, rec in RECORDS.items()}


def get(name: str) -> Loss:
    """The record of loss ``name``, or a one-line ValueError naming the choices."""
    rec = RECORDS.get(name) if isinstance(name, str) else None
    if rec is None:
        raise ValueError(f"unknown loss {name!r}: choose one of {', '.join(NAMES)}")
    return rec


def check(name: str, output_activation: str | None = None) -> str:
    """Validate a loss name and, when given, that it fits the output activation."""
    rec = get(name)
    if output_activation is not None and output_activation not in rec.fits:
        want = " or ".join(rec.fits)
        raise ValueError(f"loss {name!r} does not fit a {output_activation!r} output layer: "
                         f"make the last layer {want}, or pick a loss that fits "
                         f"{output_activation!r}")
    return name


def value(e, name, z, a, y, w=None, w_sum=None) -> float:
    """The loss of pre-activation z, output a and target y (engine arrays, (n, k)) on engine
    ``e``: the record's terms in the engine's verbs, summed (their squares, as one dot, for
    mse and quadratic), then divided. Each summand is >= 0 (for targets in the loss's
    range) and nothing is subtracted across the batch, so no cancellation loses the value
    on large logits. The
    scratch is the engine's (``e.tmp``: slots 0 and 1 shaped like a, slot 2 three (n, 1)
    columns); z, a, y are not changed.

    Sample weights: w an (n, 1) engine column of weights >= 0 and w_sum their sum (a float,
    > 0): each row's terms are multiplied by its weight and the batch size n in the divisor
    becomes w_sum (scikit-learn's ``np.average(..., weights=sample_weight)``), so a weight of
    2 counts a row twice and weights of 1 give the unweighted value bit for bit."""
    rec = get(name)
    n, k = a.shape
    terms = rec.terms(e, z, a, y)
    if rec.squared:                                       # sum of (w_i) t_ij^2: one dot
        if w is None:
            return e.dot(terms, terms) / rec.divisor(n, k)
        weighted = e.op_("mul", terms, w, e.tmp(a.shape, 1))     # t w exactly t for w = 1
        return e.dot(terms, weighted) / rec.divisor(w_sum, k)
    if w is None:
        return e.total(terms) / rec.divisor(n, k)
    e.op_("mul", terms, w, terms)                         # (n, k) or (n, 1) times (n, 1)
    return e.total(terms) / rec.divisor(w_sum, k)


def delta_(e, name, activation, z, a, y, delta, w=None, w_sum=None):
    """delta := dL/dz for the output layer on engine ``e``: c (a - y), times the output
    activation's derivative (``e.activate_backward_``) where the record chains it. delta
    must not alias z, a or y. With sample weights (w (n, 1), w_sum as in ``value``) row i is
    also multiplied by w_i and c takes w_sum for n. Returns delta. z, a, delta may carry a
    leading run axis, (R, n, k), with y (n, k) shared (torch's sweep group): n and k are
    the last two dimensions (a chained output activation is element-wise, so its derivative
    takes any shape)."""
    rec = get(name)
    n, k = a.shape[-2:]
    e.op_("sub", a, y, delta)
    if w is None:
        e.scal(rec.delta_scale(n, k), delta)
    else:
        e.op_("mul", delta, w, delta)
        e.scal(rec.delta_scale(w_sum, k), delta)
    if rec.chained:
        e.activate_backward_(activation, a, delta)
    return delta


def value_delta_(e, name, activation, z, a, y, delta, w=None, w_sum=None) -> float:
    """``value`` and ``delta_`` in one pass, the same numbers: returns the loss and leaves
    dL/dz in delta. For a squared loss without sample weights the terms are the difference
    a - y that the delta scales, so they are written once, into delta (``Loss.terms`` with
    ``out``), their dot taken, then scaled: one element-wise call fewer than the two apart.
    Every other case is the engine's ``loss`` then ``loss_delta_``. The difference warns on
    overflow as ``delta_``'s did (the dot does not). delta must not alias z, a or y."""
    rec = get(name)
    if not rec.squared or w is not None:
        loss = e.loss(name, z, a, y, w, w_sum)         # the engine's (NumPy: its errstate)
        e.loss_delta_(name, activation, z, a, y, delta, w, w_sum)
        return loss
    n, k = a.shape
    terms = rec.terms(e, z, a, y, delta)
    loss = e.dot(terms, terms) / rec.divisor(n, k)
    e.scal(rec.delta_scale(n, k), delta)
    if rec.chained:
        e.activate_backward_(activation, a, delta)
    return loss


def check_sample_weight(sample_weight, n: int, dtype):
    """None, or ``sample_weight`` as an (n, 1) contiguous column of ``dtype``: it must be n
    finite numbers >= 0, not all zero (else a one-line ValueError)."""
    if sample_weight is None:
        return None
    w = np.asarray(sample_weight)
    if w.shape != (n,):
        raise ValueError(f"sample_weight has shape {w.shape} but the data have {n} rows: pass "
                         f"one weight per sample, shape ({n},)")
    if not np.issubdtype(w.dtype, np.number) or np.issubdtype(w.dtype, np.complexfloating) \
            or not np.all(np.isfinite(w)):
        raise ValueError("sample_weight contains NaN, inf or non-numbers: pass finite weights")
    if np.any(w < 0):
        raise ValueError("sample_weight has negative entries: weights must be >= 0")
    with np.errstate(over="ignore", under="ignore"):
        out = np.ascontiguousarray(w.reshape(n, 1), dtype=dtype)
    with np.errstate(over="ignore"):
        total = out.sum(dtype=out.dtype)      # as a batch's weights are summed, or less
    if not np.all(np.isfinite(out)) or not np.isfinite(total):
        raise ValueError(f"sample_weight holds values beyond {np.dtype(dtype).name}'s range: "
                         "rescale the weights (only their ratios count)")
    if not np.any(out > 0):
        where = f" in {np.dtype(dtype).name} (too small to hold)" if np.any(w > 0) else ""
        raise ValueError(f"sample_weight is all zero{where}: give at least one sample a "
                         "positive weight")
    return out


def prepare_targets(name: str, y, n_outputs: int, dtype) -> np.ndarray:
    """Turn user targets into an (n, k) float array: class labels become one-hot for
    cross-entropy, a 1-D target becomes one column. Raises a one-line ValueError."""
    y = np.asarray(y)
    rec = RECORDS.get(name)
    if rec is not None and rec.labels and (y.ndim == 1 or (y.ndim == 2 and y.shape[1] == 1
                                                           and n_outputs > 1)):
        labels = y.reshape(-1)
        if not np.all(np.isfinite(labels.astype(np.float64))):
            raise ValueError("class labels contain NaN or inf: remove or fill those rows")
        if np.any(labels != np.round(labels)) or labels.min(initial=0) < 0 \
                or labels.max(initial=0) >= n_outputs:
            raise ValueError(f"{name} needs integer class labels in [0, {n_outputs - 1}] "
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
    rec = RECORDS.get(name)
    if rec is not None and rec.check_targets is not None:
        rec.check_targets(y)
    return y
