"""The closed form of a momentum step: the ONE statement of SGD (every convention) and QHM.

One parameter w (a weight matrix or a bias vector), its buffer v and the loss gradient g:

    g~ = g + k w                        coupled weight decay (k = 0 without)
    v' = A v + B g~
    w' = D w + E v' + F g~ + H v
    look                                the look-ahead shift: w += look v before the gradient
                                        is taken, w -= look v after (look-ahead Nesterov)

``sgd`` and ``qhm`` give those numbers (a ``Step``) for one step, from the hyperparameters
and the convention's flags; nothing else in inertia states the rule. Two drivers read them:

- ``drive_`` makes the engine calls of one parameter's update (``QHM.apply_``, and
  ``SGD.apply_`` through ``driver``, which takes the heavy-ball form's branches once for a
  run of steps; through them the engine-call training loop and the functional ``step``).
  The gradient arrives only through ``acc(alpha, beta, out)``, ``out := alpha g + beta out``
  (one gemm for W, one gemv for b): where g enters through the buffer alone (F = 0: heavy ball
  in every convention, PyTorch's first step, QHM with nu = 1) it is one ``acc`` into v with
  beta = A, so momentum costs no engine call; the other forms take g into a scratch buffer.
- ``Step.table`` writes the eight numbers (A, B, C, D, E, F, H, look) of the compiled loop
  (``fused/tiles.py``): v' = A v + B g + C w;  w' = D w + E v' + F g + H v, with
  C = B k and D + F k folded in. Hyperparameters may be arrays (one entry a step): the same
  code then gives one row a step.

The look-ahead point is u = w + mu v for every parameter that has momentum (``shift``): the
same shift moves look-ahead coordinates to the reparameterised ones (``nesterov.py``) and,
for look-ahead Nesterov, is taken before every gradient (the network's training step, the
compiled loop, ``SGD.lookahead_point``). Parameters without momentum (Neanderthal's biases)
are never shifted, as in Deep Diamond's ``FullyConnectedSGD``, which shifts only ``w``.
"""

from __future__ import annotations

from typing import Any, Callable, NamedTuple

import numpy as np


class Step(NamedTuple):
    """One step's closed form (floats, or arrays of one entry a step): see the module."""

    k: Any
    A: Any
    B: Any
    D: Any
    E: Any
    F: Any
    H: Any
    look: Any
    two_tap: bool = False      # w' reads v before the step (previous_delta): the H v call is
                               # made even when H = 0, so momentum 0 makes the same calls

    def table(self, scale=1.0) -> np.ndarray:
        """The compiled loop's eight numbers (A, B, C, D, E, F, H, look), shape (..., 8),
        with the momentum correction's factor ``scale`` on the old buffer (A and H)."""
        rows = (self.A * scale, self.B, self.B * self.k, self.D + self.F * self.k, self.E,
                self.F, self.H * scale, self.look)
        # a list: a generator unpacked here leaves garbage for the cycle collector on
        # every call (tests/test_compiled.py counts the memory a steady call keeps)
        rows = [np.asarray(r, dtype=np.float64) for r in rows]
        return np.stack(np.broadcast_arrays(*rows), axis=-1)


class ClosedForm(NamedTuple):
    """What the compiled loop needs of an optimizer (``Optimizer.closed_form``).

    buffer        the state list whose buffers are v, one per parameter in parameter order
    coefficients  (lr, mu, n), arrays of one entry a step, from the current state ->
                  (weights rows, biases rows), each (steps, 8) of ``Step.table``
    """

    buffer: str
    coefficients: Callable


def _where(cond, a, b):
    """``a if cond else b`` for a bool, element-wise for an array of bools."""
    if isinstance(cond, np.ndarray):
        return np.where(cond, a, b)
    return a if cond else b


def gradient_coefficient(conv, mu, dampening):
    """c in the buffer b = mu b + c g (lr outside) or v = mu v - lr c g (lr inside):
    1 - dampening, 1 - mu (ema) or 1 (every lr-inside preset)."""
    if conv.grad_coef == "dampening":
        return 1.0 - dampening
    if conv.grad_coef == "ema":
        return 1.0 - mu
    return 1.0


def has_momentum(conv, is_bias) -> bool:
    """Whether a parameter keeps a momentum buffer (Neanderthal's biases do not)."""
    return not is_bias or conv.momentum_biases


def shift(conv, lr, mu, is_bias):
    """The multiple of the stored buffer that moves a parameter to its look-ahead point
    u = w + mu v: mu in the lr-inside forms, -lr mu in the lr-outside ones (v = -lr b), 0 for
    a parameter without momentum and for ``previous_delta`` (no velocity)."""
    if conv.previous_delta or not has_momentum(conv, is_bias):
        return 0.0 * mu
    return mu if conv.lr_inside else -(lr * mu)


def lookahead(conv, nesterov, lr, mu, is_bias):
    """The look-ahead shift taken before every gradient: ``shift`` under look-ahead
    Nesterov, 0 otherwise."""
    if nesterov and conv.nesterov == "lookahead":
        return shift(conv, lr, mu, is_bias)
    return 0.0 * mu


def needs_gradient(conv, nesterov) -> bool:
    """Whether SGD's step needs the raw gradient in a scratch buffer (F != 0 with a buffer:
    the reparameterised Nesterov form)."""
    return bool(nesterov) and conv.nesterov == "reparam"


def sgd(conv, lr, mu, dampening, nesterov, wd, is_bias, n, first) -> Step:
    """SGD's step for one parameter under the Convention ``conv``.

    lr, mu, n (batch size, for per-n weight decay; may be None without decay) and first
    (PyTorch's first-buffer step) are floats/bools, or arrays of one entry a step."""
    zero = 0.0 * lr
    if not has_momentum(conv, is_bias):                # plain SGD, no buffer: w -= lr g
        return Step(zero, 1.0 + zero, zero, 1.0 + zero, zero, -lr, zero, zero)
    if conv.previous_delta:                            # v' = lr g;  w' = w - v' - mu v
        return Step(zero, zero, lr, 1.0 + zero, -1.0 + zero, zero, -mu, zero, two_tap=True)
    if is_bias and not conv.decay_biases:
        wd = 0.0
    if conv.decay_per_n and wd != 0:                   # scikit-learn's alpha / n
        wd = wd / n
    k = wd if conv.weight_decay == "coupled" else 0.0  # g~ = g + wd w
    wdec = wd if conv.weight_decay == "decoupled" else 0.0
    D = 1.0 - lr * wdec                                # decoupled: w = (1 - lr wd) w first
    look = lookahead(conv, nesterov, lr, mu, is_bias) + zero
    reparam = needs_gradient(conv, nesterov)
    c = gradient_coefficient(conv, mu, dampening) + zero
    copy = first & conv.first_step_copy if isinstance(first, np.ndarray) \
        else bool(first) and conv.first_step_copy
    A = _where(copy, zero, mu + zero)                  # PyTorch's first buffer is g~ itself
    gain = _where(copy, 1.0 + zero, c)                 # g~'s coefficient in the buffer
    if conv.lr_inside:                                 # v' = A v - lr gain g~
        if not reparam:                                # w' = D w + v'
            return Step(k + zero, A, -lr * gain, D, 1.0 + zero, zero, zero, look)
        return Step(k + zero, A, -lr * gain, D, mu + zero, -lr * c, zero,
                    look)                              # w' = D w + mu v' - lr c g~
    if not reparam:                                    # b' = A b + gain g~;  w' = D w - lr b'
        return Step(k + zero, A, gain, D, -lr, zero, zero, look)
    return Step(k + zero, A, gain, D, -lr * mu, -lr * c, zero, look)  # w' = D w - lr (c g~ + mu b')


def qhm(lr, beta, nu, wd) -> Step:
    """Quasi-hyperbolic momentum: buf' = beta buf + (1 - beta) g~;
    w' = w - lr nu buf' - lr (1 - nu) g~, with g~ = g + wd w."""
    zero = 0.0 * lr * beta
    return Step(wd + zero, beta + zero, 1.0 - beta + zero, 1.0 + zero, -lr * nu + zero,
                -lr * (1.0 - nu) + zero, zero, zero)


def drive_(e, s: Step, p, acc, v, g, scale=1.0):
    """Apply the scalar Step ``s`` to parameter ``p`` in place with engine calls.

    acc(alpha, beta, out): out := alpha * gradient + beta * out.  v: the parameter's buffer
    (rescaled by ``scale``, the momentum correction, inside the same calls).  g: a scratch
    buffer shaped like p, used only when the gradient enters the weights directly (F != 0
    with a buffer); may be None otherwise. Returns p."""
    k, A, B, D, E, F, H, _, two_tap = s                # one unpacking: called every step
    if A == 1 and B == 0 and E == 0 and H == 0:        # no buffer: w' = (D + F k) w + F g
        acc(F, D + F * k, p)
        if scale != 1:                                 # the unused buffer follows Step.table
            e.scal(scale, v)
        return p
    if scale != 1:
        A, H = A * scale, H * scale
    if F == 0:                                         # g only through v: one acc into v
        if two_tap:                                    # + H v, with v before the step
            if D != 1 or k != 0:
                raise ValueError("a step with H != 0 needs D = 1 and k = 0")
            e.axpy(H, v, p)
        acc(B, A, v)
        if k != 0:
            e.axpy(B * k, p, v)
        if D != 1:                                     # w = D w + E v': one axpby
            e.axpby(E, v, D, p)
        else:
            e.axpy(E, v, p)
        return p
    if H != 0:
        raise ValueError("a step with F != 0 and H != 0 has no engine form")
    acc(1.0, 0.0, g)                                   # g~ = g + k w in the scratch buffer
    if k != 0:
        e.axpy(k, p, g)
    if A == 0 and B == 1:
        e.copy(g, v)
    else:
        e.axpby(B, g, A, v)
    if D != 1:
        e.scal(D, p)
    if E != 0:
        e.axpy(E, v, p)
    e.axpy(F, g, p)
    return p


def driver(s: Step):
    """``drive_`` for the Step ``s``, made once for a run of steps: f(e, p, acc, v, g,
    scale=1.0) -> p, the same engine calls. The form every convention's plain heavy-ball
    step takes (F = 0, k = 0, D = 1, one tap, a buffer: ``acc(B, A, v); axpy(E, v, p)``,
    PyTorch's first step included) has its branches taken here, once, rather than on every
    call; every other form, and any ``scale`` != 1, goes through ``drive_``."""
    k, A, B, D, E, F, H, _, two_tap = s
    plain = A == 1 and B == 0 and E == 0 and H == 0
    if F == 0 and k == 0 and D == 1 and H == 0 and not two_tap and not plain:
        def heavy_ball(e, p, acc, v, g, scale=1.0):
            if scale != 1:
                return drive_(e, s, p, acc, v, g, scale)
            acc(B, A, v)
            e.axpy(E, v, p)
            return p
        return heavy_ball

    def general(e, p, acc, v, g, scale=1.0):
        return drive_(e, s, p, acc, v, g, scale)
    return general


def correction(conv, old_lr, new_lr):
    """The momentum correction's factor on the buffer when the learning rate changes from
    old_lr to new_lr (Goyal et al. 2017): new/old in the lr-inside form (v holds lr g),
    old/new in the lr-outside one, so that either form follows the other exactly."""
    return new_lr / old_lr if conv.lr_inside else old_lr / new_lr
