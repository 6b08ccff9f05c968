"""The momentum family as data: one record per convention, read by the single update rule.

See docs/CONVENTIONS.md for each convention's equations and the source file it was read from.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Convention:
    """How one framework writes momentum SGD.

    lr_inside        True:  v = mu v - lr g;  w += v           (Keras, scikit-learn, Neanderthal)
                     False: b = mu b + c g;   w -= lr b        (PyTorch, TF1, optax, EMA)
    grad_coef        c above: "dampening" (1 - dampening), "ema" (1 - mu) or "one"
    first_step_copy  the first buffer is g itself, undamped (PyTorch); else it starts at zero
    dampening        whether a nonzero dampening is part of the rule
    nesterov         "reparam" (w -= lr (c g + mu b) / w += mu v - lr g), "lookahead" (the
                     gradient is taken at w + mu v) or None (no Nesterov form)
    weight_decay     "coupled" (g += wd w), "decoupled" (w = (1 - lr wd) w, then the step) or None
    decay_per_n      the decay coefficient is wd / n, n the batch size (scikit-learn's alpha,
                     Neanderthal's lambda)
    decay_biases     weight decay applies to biases (1-D parameters) too
    momentum_biases  biases get momentum (False: biases take plain SGD steps)
    previous_delta   the online-training rule: w -= lr g + mu (lr g_prev)
    source           where the rule was read
    """

    name: str
    lr_inside: bool = False
    grad_coef: str = "one"
    first_step_copy: bool = False
    dampening: bool = False
    nesterov: str | None = "reparam"
    weight_decay: str | None = "coupled"
    decay_per_n: bool = False
    decay_biases: bool = True
    momentum_biases: bool = True
    previous_delta: bool = False
    source: str = ""


CONVENTIONS: dict[str, Convention] = {c.name: c for c in (
    Convention("pytorch", grad_coef="dampening", first_step_copy=True, dampening=True,
               source="torch/optim/sgd.py (_single_tensor_sgd)"),
    Convention("tf1", source="tensorflow/core/kernels/training_ops.cc (ApplyMomentum); "
                             "weight decay as an L2 term in the loss"),
    Convention("optax", source="optax/_src/alias.py (sgd = chain(trace, scale_by_learning_rate)),"
                               " optax/_src/transform.py (trace); weight decay as "
                               "add_decayed_weights before sgd"),
    Convention("ema", grad_coef="ema",
               source="the exponential-moving-average velocity v = mu v + (1 - mu) g"),
    Convention("keras", lr_inside=True, weight_decay="decoupled",
               source="keras/src/optimizers/sgd.py (update_step), "
                      "keras/src/optimizers/base_optimizer.py (_apply_weight_decay)"),
    Convention("sklearn", lr_inside=True, decay_per_n=True, decay_biases=False,
               source="sklearn/neural_network/_stochastic_optimizers.py (SGDOptimizer), "
                      "sklearn/neural_network/_multilayer_perceptron.py (_backprop: alpha W / n)"),
    Convention("neanderthal", lr_inside=True, nesterov="lookahead", weight_decay="decoupled",
               decay_per_n=True, decay_biases=False, momentum_biases=False,
               source="Neanderthal 'Deep Learning from Scratch to GPU' series, "
                      "FullyConnectedTraining backward: V = -eta/n delta a' + mu V (one mm!), "
                      "W = (1 - eta lambda / n) W + V (one axpby!), b += -eta/n sum delta; "
                      "look-ahead Nesterov from uncomplicate/deep-diamond "
                      "internal/neanderthal/fully_connected.clj (FullyConnectedSGD)"),
    Convention("previous_delta", nesterov=None, weight_decay=None, previous_delta=True,
               source="from-scratch online training: w += lr g_desc + mu prev_delta"),
)}


def get(name) -> Convention:
    if isinstance(name, Convention):
        return name
    if name not in CONVENTIONS:
        raise ValueError(f"unknown convention {name!r}: choose one of {', '.join(CONVENTIONS)}")
    return CONVENTIONS[name]
