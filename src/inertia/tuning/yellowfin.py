"""YellowFin (Zhang & Mitliagkas 2017, "YellowFin and the Art of Momentum Tuning"), reproduced
as a baseline: a controller that measures the gradients and sets an SGD's learning rate and
momentum before every step. It is not the tuner's default.

Per step t = 0, 1, ... with the whole gradient g (every parameter), following the authors'
PyTorch implementation (JianGoForIt/YellowFin_Pytorch, ``tuner_utils/yellowfin.py``) with its
default options, every average an EMA with beta = 0.999 divided by 1 - beta^(t+1):

    h_t        = ||g||^2, kept in a window of the last 20 steps
    h_min      = exp(debiased EMA of log(min(window) + 1e-6))     (log smoothing, as there)
    h_max      = debiased EMA of max(window)
    C          = max(debiased EMA of ||g||^2 - ||debiased EMA of g||^2, 1e-6)
    D          = debiased EMA of (EMA of ||g||) / (EMA of ||g||^2 + 1e-6)
    sqrt(mu)   = the real root x of x^2 D^2 + (1 - x)^4 C / h_min^2 minimal, by Vieta's
                 substitution: p = (D + eps)^2 (h_min + eps)^2 / (2 (C + eps)),
                 w^3 = (-sqrt(p^2 + 4 p^3 / 27) - p) / 2, y = w - p / (3 w), x = y + 1
    mu         = max(x^2, ((sqrt(h_max/h_min) - 1) / (sqrt(h_max/h_min) + 1))^2)
    lr         = (1 - sqrt(mu))^2 / h_min, times min(1, (t + 1) / 200) (the slow start)

Step 0 uses the initial (lr, mu) (1e-4 and 0, the implementation's defaults); the SGD under
control is PyTorch's (b = mu b + g; w -= lr b), as there. Left out: the implementation's
gradient clipping, exploding-gradient guard and checkpoint restore (all off or safety nets in
its basic use) and sparsity debiasing (dense gradients have none).
"""

from __future__ import annotations

import math

import numpy as np

from ..optim.sgd import SGD

EPS = 1e-6


def cubic_root(D, h_min, C):
    """sqrt(mu) from the cubic, by the implementation's closed form (Vieta's substitution)."""
    p = (D + EPS) ** 2 * (h_min + EPS) ** 2 / 2.0 / (C + EPS)
    w3 = (-math.sqrt(p ** 2 + 4.0 / 27.0 * p ** 3) - p) / 2.0
    w = math.copysign(1.0, w3) * abs(w3) ** (1.0 / 3.0)
    y = w - p / 3.0 / (w + EPS)
    return y + 1.0


class YellowFin:
    """The tuner's state and its per-step rule.

    ``lr, mu = yf.update(grads)`` with ``grads`` the list of gradient arrays of this step
    (not changed) gives the learning rate and momentum to step with. The measured quantities
    of the last update are attributes: h_min, h_max, grad_var (C), dist_to_opt (D)."""

    def __init__(self, lr=1e-4, momentum=0.0, beta=0.999, window=20):
        self.lr, self.mu = float(lr), float(momentum)
        self.beta, self.window = float(beta), int(window)
        self.iter = 0
        self.curv_win = np.zeros(self.window)
        self.grad_avg = None
        self.h_min_avg = self.h_max_avg = 0.0
        self.norm_sq_avg = self.norm_avg = self.dist_avg = 0.0
        self.h_min = self.h_max = self.grad_var = self.dist_to_opt = 0.0

    def _debias(self):
        return 1.0 - self.beta ** (self.iter + 1)

    def _curvature_range(self, h):
        b = self.beta
        self.curv_win[self.iter % self.window] = h
        valid = self.curv_win[:min(self.window, self.iter + 1)]
        self.h_min_avg = b * self.h_min_avg + (1 - b) * float(np.min(np.log(valid + EPS)))
        self.h_max_avg = b * self.h_max_avg + (1 - b) * float(np.max(valid))
        self.h_min = math.exp(self.h_min_avg / self._debias())
        self.h_max = self.h_max_avg / self._debias()

    def _variance(self, grads):
        b = self.beta
        if self.grad_avg is None:
            self.grad_avg = [np.zeros(np.shape(g)) for g in grads]
        sq = 0.0
        for avg, g in zip(self.grad_avg, grads):
            avg *= b
            avg += (1 - b) * np.asarray(g, dtype=np.float64)
            sq += float(np.vdot(avg, avg))
        d = self._debias()
        self.grad_var = max(self.norm_sq_avg / d - sq / d ** 2, EPS)

    def _distance(self, h):
        b = self.beta
        self.norm_avg = b * self.norm_avg + (1 - b) * math.sqrt(h)
        self.dist_avg = b * self.dist_avg + (1 - b) * self.norm_avg / (self.norm_sq_avg + EPS)
        self.dist_to_opt = self.dist_avg / self._debias()

    def update(self, grads):
        """Measure this step's gradients; return the (lr, momentum) to step with."""
        h = float(sum(np.vdot(g, g) for g in (np.asarray(g, np.float64) for g in grads)))
        self.norm_sq_avg = self.beta * self.norm_sq_avg + (1 - self.beta) * h
        self._curvature_range(h)
        self._variance(grads)
        self._distance(h)
        if self.iter > 0:
            root = cubic_root(self.dist_to_opt, self.h_min, self.grad_var)
            dr = max((self.h_max + EPS) / (self.h_min + EPS), 1.0 + EPS)
            self.mu = max(root ** 2, ((math.sqrt(dr) - 1) / (math.sqrt(dr) + 1)) ** 2)
            lr = (1.0 - math.sqrt(self.mu)) ** 2 / (self.h_min + EPS)
            self.lr = min(lr, lr * (self.iter + 1) / (10.0 * self.window))
        self.iter += 1
        return self.lr, self.mu


def train(net, X, y, loss, epochs, batch_size=None, seed=0, validation_data=None,
          controller=None):
    """Train ``net`` in place with YellowFin setting an SGD's lr and momentum every step.

    Returns (training loss per epoch, validation loss per epoch, [(lr, mu) per step]); stops
    early, with the loss inf, once the weights leave the finite numbers."""
    yf = controller or YellowFin()
    pairs = net.parameters()
    params = [a for wb in pairs for a in wb]
    opt = SGD(lr=yf.lr, momentum=yf.mu)
    state = opt.init(params)
    n = X.shape[0]
    bs = n if batch_size is None else min(int(batch_size), n)
    rng = np.random.default_rng(seed)
    train_loss, val_loss, used = [], [], []
    for _ in range(epochs):
        order = rng.permutation(n) if bs < n else np.arange(n)
        acc = []
        for s in range(0, n, bs):
            rows = order[s:s + bs]
            value, grads = net.gradients(X[rows], y[rows], loss)
            flat = [g for wb in grads for g in wb]
            lr, mu = yf.update(flat)
            used.append((lr, mu))
            opt.set(lr=max(lr, 1e-300), momentum=min(mu, 1 - 1e-12))
            opt.step(params, flat, state, n=rows.shape[0])
            acc.append(float(value))
            if not all(np.all(np.isfinite(p)) for p in params):
                return train_loss + [math.inf], val_loss + [math.inf], used
            net.set_parameters(list(zip(params[0::2], params[1::2])))
        train_loss.append(float(np.mean(acc)))
        if validation_data is not None:
            val_loss.append(float(net.loss(validation_data[0], validation_data[1], loss)))
    return train_loss, val_loss, used
