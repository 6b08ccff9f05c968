"""Nesterov momentum in its two coordinates, and the conversion between them.

Look-ahead form (Sutskever et al. 2013; the Neanderthal/Deep Diamond layer): the iterate w
is stored and the gradient is taken at the look-ahead point u = w + mu v:

    v = mu v - lr g(w + mu v);   w = w + v

Reparameterised form (Keras, scikit-learn; PyTorch, TF1 and optax with v = -lr b): the
look-ahead point itself is stored, u = w + mu v, and the gradient is taken where the
parameters are:

    v = mu v - lr g(u);          u = u + mu v - lr g(u)

Both produce the same sequence of look-ahead points u_k; the velocities are the same. The
conversion is u = w + mu v and back w = u - mu v. In the lr-outside form the stored buffer
is b with v = -lr b, so u = w - lr mu b.
"""

from __future__ import annotations

import numpy as np

from . import rule as _rule


def _shifted(opt, params, state, sign):
    """New arrays: each parameter plus ``sign`` times its ``rule.shift`` multiple of its
    buffer (``state.velocity``, parallel to ``params``)."""
    out = []
    for p, v in zip(params, state.velocity):
        look = _rule.shift(opt.convention, opt.lr, opt.momentum, np.ndim(p) == 1)
        q = np.array(p, copy=True)
        if look:
            q += (sign * look) * np.asarray(v)
        out.append(q)
    return out


def to_reparameterised(opt, params, state):
    """Look-ahead iterates w (with ``state``'s velocities) -> reparameterised u = w + mu v
    (``rule.shift``). Returns new arrays; biases without momentum (Neanderthal) are
    unchanged."""
    return _shifted(opt, params, state, 1.0)


def to_lookahead(opt, params, state):
    """Reparameterised parameters u -> look-ahead iterates w = u - mu v. Returns new arrays."""
    return _shifted(opt, params, state, -1.0)
