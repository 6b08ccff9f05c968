"""Adam and AdamW, the adaptive descendants of momentum, as torch.optim.Adam / AdamW."""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np

from .base import Optimizer
from .family import _number


@dataclass
class AdamState:
    step: int = 0
    exp_avg: list = field(default_factory=list)
    exp_avg_sq: list = field(default_factory=list)
    max_exp_avg_sq: list = field(default_factory=list)


class Adam(Optimizer):
    """Adam (Kingma & Ba), with torch.optim.Adam's signature and arithmetic
    (torch/optim/adam.py, _single_tensor_adam):

        g   = g + wd w                          (Adam: coupled L2)
        w   = (1 - lr wd) w                     (AdamW: decoupled, before the step)
        m   = m + (1 - beta1) (g - m)           (torch's lerp)
        v   = beta2 v + (1 - beta2) g^2
        vmax = max(vmax, v)                     (amsgrad)
        w  -= lr / (1 - beta1^t) * m / (sqrt(v or vmax) / sqrt(1 - beta2^t) + eps)

    t counts steps from 1. The element-wise part is ``adam_step_``, written once in the
    engines' element-wise verbs; the gradient comes from the layer's gemm into a scratch
    buffer.
    """

    kind = "adam"
    HYPER = ("lr", "betas", "eps", "weight_decay")
    FIXED = ("amsgrad",)
    STATE = AdamState
    STATE_LISTS = ("exp_avg", "exp_avg_sq", "max_exp_avg_sq")
    decoupled = False

    def __init__(self, lr=1e-3, betas=(0.9, 0.999), eps=1e-8, weight_decay=0.0,
                 amsgrad=False):
        if not isinstance(amsgrad, (bool, np.bool_)):
            raise ValueError(f"amsgrad must be True or False, got {amsgrad!r}")
        self.amsgrad = bool(amsgrad)
        super().__init__(lr=lr, betas=betas, eps=eps, weight_decay=weight_decay)

    def validate(self, h):
        _number("lr", h["lr"], 0, lo_open=True)
        _number("eps", h["eps"], 0)
        _number("weight_decay", h["weight_decay"], 0)
        b = h["betas"]
        if not isinstance(b, (list, tuple)) or len(b) != 2:
            raise ValueError(f"betas must be a pair (beta1, beta2), got {b!r}")
        _number("beta1", b[0], 0, 1, hi_open=True)
        _number("beta2", b[1], 0, 1, hi_open=True)

    def _assign(self, h):
        self.lr, self.eps = float(h["lr"]), float(h["eps"])
        self.weight_decay = float(h["weight_decay"])
        self.betas = (float(h["betas"][0]), float(h["betas"][1]))

    def config(self):
        return {"lr": self.lr, "betas": list(self.betas), "eps": self.eps,
                "weight_decay": self.weight_decay, "amsgrad": self.amsgrad}

    def slots(self, name):
        return 0 if name == "max_exp_avg_sq" and not self.amsgrad else 1

    @property
    def needs_grad_buffer(self):
        return True

    def apply_(self, e, j, p, acc, g, is_bias, n):
        st = self.state
        acc(1.0, 0.0, g)
        vmax = st.max_exp_avg_sq[j] if self.amsgrad else None
        adam_step_(e, p, g, st.exp_avg[j], st.exp_avg_sq[j], vmax, self.lr, self.betas[0],
                     self.betas[1], self.eps, self.weight_decay, st.step + 1, self.decoupled)
        return p


def adam_step_(e, p, g, m, v, vmax, lr, beta1, beta2, eps, wd, t, decoupled):
    """One Adam step on parameter p from gradient g, in place, on engine ``e`` (the order of
    torch.optim.Adam's single-tensor step):

    decoupled: p := (1 - lr wd) p;  else g := g + wd p   (g is scratch and may change)
    m := m + (1 - beta1) (g - m);  v := beta2 v + (1 - beta2) g^2
    vmax := max(vmax, v) when vmax is given (amsgrad), and used in place of v below
    p := p - lr / (1 - beta1^t) * m / (sqrt(v) / sqrt(1 - beta2^t) + eps)

    All arrays have p's shape; t >= 1. Scratch: ``e.tmp(p.shape)`` slots 5 and 6. Returns p."""
    s, u = e.tmp(p.shape, 5), e.tmp(p.shape, 6)
    if wd:
        if decoupled:
            e.scal(1.0 - lr * wd, p)
        else:
            e.op_("add", g, e.op_("mul", p, float(wd), s), g)
    e.op_("add", m, e.op_("mul", e.op_("sub", g, m, s), 1.0 - beta1, s), m)
    e.op_("mul", v, float(beta2), v)
    e.op_("add", v, e.op_("mul", e.op_("mul", g, 1.0 - beta2, s), g, s), v)
    if vmax is not None:
        v = e.op_("maximum", vmax, v, vmax)
    step_size = lr / (1.0 - beta1 ** t)
    denom = e.op_("add", e.op_("div", e.map_("sqrt", v, s), math.sqrt(1.0 - beta2 ** t), s),
                  float(eps), s)
    e.op_("sub", p, e.op_("div", e.op_("mul", m, step_size, u), denom, u), p)
    return p


class AdamW(Adam):
    """AdamW (Loshchilov & Hutter): Adam with decoupled weight decay w = (1 - lr wd) w before
    the step, as torch.optim.AdamW (default weight_decay 0.01)."""

    kind = "adamw"
    decoupled = True

    def __init__(self, lr=1e-3, betas=(0.9, 0.999), eps=1e-8, weight_decay=1e-2,
                 amsgrad=False):
        super().__init__(lr=lr, betas=betas, eps=eps, weight_decay=weight_decay,
                         amsgrad=amsgrad)
