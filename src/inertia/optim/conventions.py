"""The momentum family as data: one record per convention, read by the single update rule.

See docs/CONVENTIONS.md for each convention's equations and the source file it was read from.
"""

from __future__ import annotations

from dataclasses import dataclass, fields


@dataclass(frozen=True)
class Spelling:
    """How the framework itself writes an optimizer of a convention, for
    ``translate.framework_call``. Templates are ``str.format`` strings over {lr} {mu} {d}
    (dampening) {nest} (True/False) {wd} and, in ``call_decay``, {call} (the plain call).

    call        the constructor call; None: no framework ships it (``inertia.SGD(...)``)
    call_decay  the call when weight_decay != 0 (None: ``call``)
    notes       (condition, template) pairs; a condition is "" (always) or comma-separated
                words that must all hold: decay / no-decay (weight_decay != 0 or not),
                nesterov / plain, damped (dampening and momentum != 0)
    state       (the optimizer's name, its momentum buffers) for the note that the framework
                has no momentum correction; None: no such note
    """

    call: str | None = None
    call_decay: str | None = None
    notes: tuple = ()
    state: tuple | None = None


@dataclass(frozen=True)
class Convention:
    """How one framework writes momentum SGD: flags read by the update rule (``rule.py``)
    and by ``translate``, the framework's own spelling, and where the rule was read.

    lr_inside        True:  v = mu v - lr c g;  w += v         (Keras, scikit-learn, Neanderthal)
                     False: b = mu b + c g;     w -= lr b      (PyTorch, TF1, optax, EMA)
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
    spelling         the framework's own call (``Spelling``); not part of the rule
    source           where the rule was read; not part of the rule
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
    spelling: Spelling = Spelling()
    source: str = ""

    def flags(self) -> tuple:
        """The rule's flags: two conventions with equal flags take the same steps."""
        return tuple(getattr(self, f.name) for f in fields(self)
                     if f.name not in ("name", "spelling", "source"))


_NO_FRAMEWORK = Spelling(notes=(("", "no framework ships it as an optimizer"),))

_TORCH = Spelling(
    call="torch.optim.SGD(params, lr={lr}, momentum={mu}, dampening={d}, nesterov={nest}, "
         "weight_decay={wd})",
    notes=(("decay", "weight decay is coupled (g + wd*w) and applies to every parameter in "
                     "the group, biases included"),
           ("damped", "the first step copies g into the buffer undamped; dampening acts from "
                      "the second step")),
    state=("torch.optim.SGD", "every state['momentum_buffer']"))

_TF1 = Spelling(
    call="tf.compat.v1.train.MomentumOptimizer(learning_rate={lr}, momentum={mu}, "
         "use_nesterov={nest})",
    notes=(("decay", "MomentumOptimizer has no weight decay: add {wd} * tf.nn.l2_loss(v) for "
                     "every trainable variable, biases included, to the loss"),),
    state=("MomentumOptimizer", "each 'momentum' slot"))

_OPTAX = Spelling(
    call="optax.sgd(learning_rate={lr}, momentum={mu}, nesterov={nest})",
    call_decay="optax.chain(optax.add_decayed_weights({wd}), {call})",
    notes=(("decay", "add_decayed_weights without a mask decays every leaf, biases included"),),
    state=("optax.sgd", "the trace (TraceState.trace)"))

_KERAS = Spelling(
    call="keras.optimizers.SGD(learning_rate={lr}, momentum={mu}, nesterov={nest})",
    call_decay="keras.optimizers.SGD(learning_rate={lr}, momentum={mu}, nesterov={nest}, "
               "weight_decay={wd})",
    notes=(("decay", "Keras decays biases too (w *= 1 - lr*wd before the step, decoupled); "
                     "exclude_from_weight_decay changes that and breaks the match"),
           ("", 'Keras keeps learning_rate in a floatx variable: '
                'keras.config.set_floatx("float64") for float64 agreement')),
    state=("keras.optimizers.SGD", "each variable in optimizer.momentums"))

_SKLEARN = Spelling(
    call='MLPRegressor(solver="sgd", learning_rate_init={lr}, momentum={mu}, '
         'nesterovs_momentum={nest}, alpha={wd}, learning_rate="constant")',
    notes=(("", "MLPClassifier takes the same arguments"),
           ("decay", "sklearn's alpha is divided by the batch size n of each step: "
                     "batch_size must equal n for the decay to match; intercepts are not "
                     "decayed")),
    state=("SGDOptimizer", "each of its velocities"))

_EMA = Spelling(notes=(
    ("plain, no-decay", "no framework ships it as an optimizer; in optax it is "
                        "optax.chain(optax.ema(decay={mu}, debias=False), optax.scale(-{lr})) "
                        "at a constant learning rate"),
    ("plain, decay", "no framework ships it as an optimizer; in optax it is "
                     "optax.chain(optax.add_decayed_weights({wd}), optax.ema(decay={mu}, "
                     "debias=False), optax.scale(-{lr})) at a constant learning rate"),
    ("nesterov", "no framework ships it as an optimizer")))

_NEANDERTHAL = Spelling(notes=(
    ("plain", "the series' FullyConnectedTraining backward with [eta lambda mu] = "
              "[{lr} {wd} {mu}]"),
    ("nesterov", "the series' FullyConnectedTraining backward with [eta lambda mu] = "
                 "[{lr} {wd} {mu}]; Nesterov: Deep Diamond's FullyConnectedSGD (look-ahead)")))


CONVENTIONS: dict[str, Convention] = {c.name: c for c in (
    Convention("pytorch", grad_coef="dampening", first_step_copy=True, dampening=True,
               spelling=_TORCH, source="torch/optim/sgd.py (_single_tensor_sgd)"),
    Convention("tf1", spelling=_TF1,
               source="tensorflow/core/kernels/training_ops.cc (ApplyMomentum); "
                      "weight decay as an L2 term in the loss"),
    Convention("optax", spelling=_OPTAX,
               source="optax/_src/alias.py (sgd = chain(trace, scale_by_learning_rate)),"
                      " optax/_src/transform.py (trace); weight decay as "
                      "add_decayed_weights before sgd"),
    Convention("ema", grad_coef="ema", spelling=_EMA,
               source="the exponential-moving-average velocity v = mu v + (1 - mu) g"),
    Convention("keras", lr_inside=True, weight_decay="decoupled", spelling=_KERAS,
               source="keras/src/optimizers/sgd.py (update_step), "
                      "keras/src/optimizers/base_optimizer.py (_apply_weight_decay)"),
    Convention("sklearn", lr_inside=True, decay_per_n=True, decay_biases=False,
               spelling=_SKLEARN,
               source="sklearn/neural_network/_stochastic_optimizers.py (SGDOptimizer), "
                      "sklearn/neural_network/_multilayer_perceptron.py (_backprop: alpha W / n)"),
    Convention("neanderthal", lr_inside=True, nesterov="lookahead", weight_decay="decoupled",
               decay_per_n=True, decay_biases=False, momentum_biases=False,
               spelling=_NEANDERTHAL,
               source="Neanderthal 'Deep Learning from Scratch to GPU' series, "
                      "FullyConnectedTraining backward: V = -eta/n delta a' + mu V (one mm!), "
                      "W = (1 - eta lambda / n) W + V (one axpby!), b += -eta/n sum delta; "
                      "look-ahead Nesterov from uncomplicate/deep-diamond "
                      "internal/neanderthal/fully_connected.clj (FullyConnectedSGD)"),
    Convention("previous_delta", nesterov=None, weight_decay=None, previous_delta=True,
               spelling=_NO_FRAMEWORK,
               source="from-scratch online training: w += lr g_desc + mu prev_delta"),
)}


def get(name) -> Convention:
    if isinstance(name, Convention):
        return name
    if name not in CONVENTIONS:
        raise ValueError(f"unknown convention {name!r}: choose one of {', '.join(CONVENTIONS)}")
    return CONVENTIONS[name]
