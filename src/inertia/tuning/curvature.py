"""Curvature of the training loss from Hessian-vector products, and the step it implies.

The Hessian-vector product is a central finite difference of the network's explicit gradient
(``Network.gradients``) in float64, along a unit direction v:

    H v ~ (g(w + eps v) - g(w - eps v)) / (2 eps),   eps = 1e-4 (1 + ||w||) / sqrt(dim)

Its error is O(eps^2 * third derivative) against float64 round-off O(1e-16 ||g|| / eps), so
about 1e-8 relative on the networks here. Each product costs two gradient evaluations on the
rows it uses (at most ``max_rows`` of the data, drawn once).

Both ends of the spectrum come from one Lanczos run on H (``lanczos``): the largest and
smallest Ritz values of the Krylov space of ``iters`` products. Lanczos finds the largest
*algebraic* eigenvalue. (Power iteration converges to the largest in magnitude, at the rate
of the ratio of the two largest magnitudes; a network's Hessian at its start often has a
negative end nearly as large as its positive one, and there ten power steps can return a
fifth of lambda_max.) The smallest Ritz value converges more slowly; it is *reliable* only
when (a) its Ritz pair's residual is under ``tol`` (RELIABLE_RESIDUAL) times it, so that an
eigenvalue lies that close, and (b) it is positive (a neural network's loss often has
lambda_min <= 0, where Polyak's pair does not apply). ``polyak_pair`` gives the heavy-ball optimum

    lr = 4 / (sqrt(L) + sqrt(m))^2,   momentum = ((sqrt(L) - sqrt(m)) / (sqrt(L) + sqrt(m)))^2

for a quadratic with Hessian eigenvalues in [m, L] (Polyak 1964), in the convention
w -= lr b, b = momentum b + g (PyTorch's and Keras's lr and momentum).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import scipy.linalg

from ..network import Network


@dataclass
class Curvature:
    """What ``estimate`` measured.

    lambda_max        the largest Hessian eigenvalue (the largest Ritz value)
    lambda_min        the smallest-eigenvalue estimate, or None when not asked for
    reliable          whether lambda_min passed the reliability checks (module docstring)
    hvps              Hessian-vector products spent
    gradient_evals    gradient evaluations spent, in samples (2 rows per row per product)
    """

    lambda_max: float
    lambda_min: float | None
    reliable: bool
    hvps: int
    gradient_evals: int


# lambda_min is trusted when its Ritz pair's residual is under this fraction of it: some
# eigenvalue then lies within that fraction of it
RELIABLE_RESIDUAL = 0.1
MAX_ROWS = 1024      # the rows the estimate uses at most (drawn once by the seed)


class HessianOperator:
    """v -> H v for the loss of ``net`` on (X, y), by central differences of float64
    gradients. ``net`` is not changed (a float64 copy of it is used). v and the result are
    flat float64 vectors of length ``dim`` (W then b, layer by layer)."""

    def __init__(self, net, X, y, loss):
        self.net = Network(net.n_inputs, net.layers, seed=net.seed, dtype="float64",
                           engine="numpy")
        self.params = net.parameters()
        self.net.set_parameters(self.params)
        self.w = flatten(self.params)
        self.dim = self.w.shape[0]
        self.X = np.asarray(X, dtype=np.float64)
        self.y = np.asarray(y)
        self.loss = loss
        self.eps = 1e-4 * (1.0 + float(np.linalg.norm(self.w))) / math.sqrt(self.dim)
        self.count = 0

    def gradient(self, w):
        """The flat gradient at flat weights w (float64)."""
        self.net.set_parameters(unflatten(w, self.params))
        _, grads = self.net.gradients(self.X, self.y, self.loss)
        return flatten(grads)

    def __call__(self, v):
        self.count += 1
        step = self.eps * v / max(float(np.linalg.norm(v)), 1e-300)
        scale = float(np.linalg.norm(v))
        return (self.gradient(self.w + step) - self.gradient(self.w - step)) \
            * (scale / (2.0 * self.eps))

def flatten(pairs):
    """[(W, b), ...] -> one float64 vector (W row-major, then b, layer by layer)."""
    return np.concatenate([np.asarray(a, dtype=np.float64).ravel() for wb in pairs for a in wb])


def unflatten(w, like):
    """The inverse of ``flatten``, shaped as the (W, b) pairs in ``like``."""
    out, k = [], 0
    for W, b in like:
        W2 = w[k:k + W.size].reshape(W.shape)
        k += W.size
        out.append((W2, w[k:k + b.size]))
        k += b.size
    return out


def lanczos(op, dim, steps, rng):
    """The Ritz values of ``op`` on the Krylov space of ``steps`` products from a random
    start (Lanczos with full reorthogonalization; it stops early on an invariant subspace).

    Returns (theta, residual): the Ritz values in ascending order and, for each, the norm of
    its Ritz pair's residual ||H y - theta y|| (some eigenvalue of H lies within it)."""
    V = np.zeros((min(steps, dim), dim))
    alpha, beta = [], []
    v = rng.standard_normal(dim)
    v /= np.linalg.norm(v)
    for k in range(V.shape[0]):
        V[k] = v
        w = op(v)
        alpha.append(float(v @ w))
        for _ in range(2):                   # twice: one pass leaves round-off drift
            w -= V[:k + 1].T @ (V[:k + 1] @ w)
        beta.append(float(np.linalg.norm(w)))
        if not math.isfinite(alpha[-1] + beta[-1]):    # the loss overflowed at these weights
            return np.array([math.nan]), np.array([math.inf])
        if not beta[-1] > 1e-12 * max(abs(a) for a in alpha):
            break
        v = w / beta[-1]
    theta, S = scipy.linalg.eigh_tridiagonal(np.array(alpha), np.array(beta[:-1]))
    return theta, np.abs(beta[-1] * S[-1, :])


def estimate(net, X, y, loss, iters=20, with_min=False, max_rows=MAX_ROWS, seed=0,
             tol=RELIABLE_RESIDUAL):
    """Estimate lambda_max (and lambda_min) of the loss Hessian of ``net`` at its weights.

    X, y      the training data (at most ``max_rows`` rows are used, drawn once by ``seed``)
    iters     Lanczos steps (each one Hessian-vector product); both ends come from them
    tol       lambda_min is reliable when its Ritz pair's residual is under tol x lambda_min
    Returns a ``Curvature``."""
    rng = np.random.default_rng(seed)
    X = np.asarray(X)
    y = np.asarray(y)
    if X.shape[0] > max_rows:
        rows = np.sort(rng.choice(X.shape[0], max_rows, replace=False))
        X, y = X[rows], y[rows]
    op = HessianOperator(net, X, y, loss)
    theta, residual = lanczos(op, op.dim, iters, rng)
    lam = max(float(theta[-1]), 0.0)
    lam_min, reliable = None, False
    if with_min and lam > 0:
        lam_min = float(theta[0])
        reliable = bool(lam_min > 1e-8 * lam and residual[0] <= tol * lam_min)
    return Curvature(lam, lam_min, reliable, op.count, 2 * op.count * X.shape[0])


def polyak_pair(lambda_max, lambda_min):
    """Polyak's heavy-ball (lr, momentum) for Hessian eigenvalues in [lambda_min, lambda_max]
    (lr outside the buffer, as PyTorch and Keras write it)."""
    if not (lambda_max > 0 and 0 < lambda_min <= lambda_max):
        raise ValueError(f"Polyak's pair needs 0 < lambda_min <= lambda_max, got "
                         f"{lambda_min} and {lambda_max}")
    sl, sm = math.sqrt(lambda_max), math.sqrt(lambda_min)
    return 4.0 / (sl + sm) ** 2, ((sl - sm) / (sl + sm)) ** 2


# momentum used when no reliable lambda_min is available, and the learning rate as a
# fraction of heavy ball's stability limit 2 (1 + mu) / lambda_max at that momentum: an
# eighth on full batches (the largest eigenvalue grows as training sharpens the loss,
# and a run at a quarter of the limit at the start can cross it later), a thirty-second on
# mini-batches (each step follows one batch's Hessian, whose largest eigenvalue exceeds the
# full one's, and the step's noise grows with lr / (1 - mu); at momentum 0.9 this is an
# effective step lr / (1 - mu) of about 1.2 / lambda_max)
DEFAULT_MOMENTUM = 0.9
LIMIT_FRACTION = 0.125
MINIBATCH_LIMIT_FRACTION = 1 / 32


def choose(curv, minibatch=False):
    """(lr, momentum) from a ``Curvature``: on full batches Polyak's pair when lambda_min
    is reliable, else (and always on mini-batches, where a step at Polyak's lr ~ 4 /
    lambda_max sits at the stability limit) momentum 0.9 and the fraction LIMIT_FRACTION
    (MINIBATCH_LIMIT_FRACTION) of heavy ball's stability limit 2 (1 + 0.9) / lambda_max."""
    if curv.lambda_max <= 0 or not math.isfinite(curv.lambda_max):
        raise ValueError("the loss has no positive curvature at these weights (lambda_max "
                         f"= {curv.lambda_max}): use method='race' or 'range'")
    if curv.reliable and not minibatch:
        return polyak_pair(curv.lambda_max, curv.lambda_min)
    mu = DEFAULT_MOMENTUM
    fraction = MINIBATCH_LIMIT_FRACTION if minibatch else LIMIT_FRACTION
    return fraction * 2.0 * (1.0 + mu) / curv.lambda_max, mu
