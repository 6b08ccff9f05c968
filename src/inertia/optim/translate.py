"""Translate a momentum optimizer from one framework's convention into another's.

``translate(opt, to="keras")`` returns a new ``inertia.SGD`` under the convention ``to`` that
takes the same steps as ``opt`` (the same weight trajectory, to float64 round-off), or raises
``NotRepresentable`` with a one-line reason. ``translation(...)`` returns the same optimizer
with the learning-rate factor, the target's schedule and notes on what is exact.
``framework_call(opt)`` writes the framework's own constructor call for an optimizer.

The table of which pairs translate, and why the others do not, is in docs/CONVENTIONS.md
("Translating between frameworks").

Translations hold for a constant momentum. With ``lr_schedule=None`` they assume a constant
learning rate; give the schedule (a callable from step to learning rate) to get the form
that stays exact when the rate changes: between an lr-inside convention (keras, sklearn)
and an lr-outside one (pytorch, tf1, optax, ema) that is the target with its momentum
correction switched (``momentum_correction=True`` when the source has none).
"""

from __future__ import annotations

from typing import Callable, NamedTuple

from .. import schedules as _schedules
from . import conventions as _conv
from .sgd import SGD


class NotRepresentable(ValueError):
    """The optimizer's trajectory cannot be produced by the target convention."""


class Translation(NamedTuple):
    """What ``translation`` returns.

    target       the SGD under the target convention
    lr_factor    the target's learning rate is lr_factor times the source's, at every step
    lr_schedule  the target's learning-rate schedule (the source's times lr_factor), or None
    notes        what is exact, and under which conditions
    """

    target: SGD
    lr_factor: float
    lr_schedule: Callable | None
    notes: list


class FrameworkCall(NamedTuple):
    """What ``framework_call`` returns: the constructor call and notes on using it."""

    call: str
    notes: list


class scaled(_schedules.Schedule):
    """factor * schedule(t): the source's learning-rate schedule, in the target's units."""

    name = "scaled"

    def __init__(self, schedule, factor):
        super().__init__(schedule=schedule, factor=float(factor))

    def value(self, t):
        return self.args["factor"] * self.args["schedule"](t)


# ----------------------------------------------------------------------------- helpers
def _num(x) -> str:
    x = float(x)
    return str(int(x)) if x.is_integer() and abs(x) < 1e15 else repr(x)


def _varies(lr_schedule) -> bool:
    if lr_schedule is None or isinstance(lr_schedule, _schedules.constant):
        return False
    if not callable(lr_schedule):
        raise ValueError("lr_schedule must be a callable from step to learning rate, such as "
                         "inertia.schedules.cosine(0.1, 1000), or None for a constant rate")
    return True


def _preset(name):
    conv = _conv.get(name)
    if conv.name not in _conv.CONVENTIONS or _conv.CONVENTIONS[conv.name] != conv:
        raise ValueError(f"translate knows the preset conventions only "
                         f"({', '.join(_conv.CONVENTIONS)}), not a custom {conv.name!r}")
    return conv


def _decay_kind(conv, momentum):
    """How weight decay enters, for comparing two conventions' decays."""
    if not conv.decay_biases:
        return "weights"                 # sklearn, neanderthal: weights only, by wd / n
    if momentum == 0 or conv.weight_decay == "coupled":
        return "all"                     # without momentum decoupled == coupled
    return "decoupled"                   # keras with momentum


def _decay_reason(s, t, ks, kt):
    if "weights" in (ks, kt):
        w, a = (s, t) if ks == "weights" else (t, s)
        return (f"{w} decays only the weights, by wd/n (n the batch size), and never the "
                f"biases; {a} decays every parameter, biases included: no weight decay of "
                f"{t} gives {s}'s trajectory (they agree only with weight_decay=0)")
    c, d = (s, t) if ks == "all" else (t, s)
    return (f"with momentum > 0, {c}'s weight decay is coupled (wd*w is added to the gradient "
            f"and goes through the momentum buffer) and {d}'s is decoupled (w *= 1 - lr*wd "
            f"outside the buffer): no weight decay of {t} gives {s}'s trajectory (they agree "
            "only with momentum 0 or weight_decay=0)")


def _as_sgd(opt):
    """(an SGD that takes the same steps as opt, notes)."""
    from .adam import Adam
    from .family import QHM, AggMo

    if isinstance(opt, SGD):
        return opt, []
    if isinstance(opt, QHM):
        lr, beta, nu, wd = opt.lr, opt.momentum, opt.nu, opt.weight_decay
        if beta == 0 or nu == 0:
            return SGD(lr, weight_decay=wd), [
                "QHM with nu = 0 or momentum = 0 is plain SGD with coupled weight decay"]
        if nu == 1:
            return SGD(lr, beta, weight_decay=wd, convention="ema"), [
                "QHM with nu = 1 is the ema convention"]
        if nu == beta:
            return SGD(lr, beta, nesterov=True, weight_decay=wd, convention="ema"), [
                "QHM with nu = momentum is the ema convention's Nesterov form"]
        raise NotRepresentable(
            f"QHM with nu={_num(nu)} and momentum={_num(beta)} mixes (1 - nu)*g into every "
            "step: SGD conventions have it only for nu = 0 (plain SGD), nu = 1 (ema) or "
            "nu = momentum (Nesterov)")
    if isinstance(opt, AggMo):
        if len(opt.betas) == 1:
            return SGD(opt.lr, opt.betas[0], weight_decay=opt.weight_decay,
                       convention="tf1"), ["AggMo with one damping factor is tf1's heavy ball"]
        raise NotRepresentable(
            f"AggMo averages {len(opt.betas)} velocities with different damping factors "
            f"{list(opt.betas)}: no single momentum buffer gives that trajectory")
    if isinstance(opt, Adam):
        raise NotRepresentable(
            f"{type(opt).__name__} divides each coordinate's step by a running root mean "
            "square of its gradients: no SGD convention has that")
    raise ValueError(f"translate takes an inertia optimizer (SGD, QHM, AggMo), got "
                     f"{type(opt).__name__}")


# ----------------------------------------------------------------------------- translate
def translation(opt, to="keras", lr_schedule=None) -> Translation:
    """Translate ``opt`` into the convention ``to``: the target optimizer, its learning-rate
    factor and schedule, and notes. Raises NotRepresentable (a ValueError) with the reason
    when no hyperparameters of ``to`` reproduce ``opt``'s trajectory.

    ``lr_schedule``: the source's learning-rate schedule (step -> lr), or None for a
    constant learning rate.
    """
    T = _preset(to)
    varying = _varies(lr_schedule)
    src, notes = _as_sgd(opt)
    S = _preset(src.convention)
    lr, mu, d = src.lr, src.momentum, src.dampening
    nest, wd, corr = src.nesterov, src.weight_decay, src.momentum_correction
    s, t = S.name, T.name

    def done(target, factor, more):
        sched = None
        if lr_schedule is not None:
            sched = lr_schedule if factor == 1.0 else scaled(lr_schedule, factor)
        return Translation(target, factor, sched, notes + more)

    if s == t:
        return done(SGD(lr, mu, d, nest, wd, convention=T, momentum_correction=corr), 1.0,
                    ["exact: the same convention"])

    if mu == 0:                                          # plain SGD in every convention
        more = ["exact: with momentum 0 every convention is plain SGD, w -= lr*(g + decay)"]
        if d:
            more.append("dampening has no effect without momentum (there is no buffer)")
        if wd:
            if T.weight_decay is None:
                raise NotRepresentable(f"{t} has no weight decay: {s} with weight_decay="
                                       f"{_num(wd)} has no {t} form")
            ks, kt = _decay_kind(S, 0.0), _decay_kind(T, 0.0)
            if ks != kt:
                raise NotRepresentable(_decay_reason(s, t, ks, kt))
            if "decoupled" in (S.weight_decay, T.weight_decay) and ks == "all":
                more.append("without momentum decoupled decay equals coupled: "
                            "(1 - lr*wd)*w - lr*g == w - lr*(g + wd*w)")
            if ks == "weights":
                more.append("both decay the weights only, by lr*wd/n: give both the same "
                            "batch size n")
        return done(SGD(lr, weight_decay=wd, convention=T), 1.0, more)

    # momentum > 0
    if S.previous_delta:
        raise NotRepresentable(
            "previous_delta with momentum > 0 is a two-tap filter w -= lr*g + mu*lr*g_prev, "
            f"not heavy-ball momentum: {t} has no such form (only momentum=0 translates)")
    if T.previous_delta:
        raise NotRepresentable(
            f"previous_delta remembers only the previous lr*g (w -= lr*g + mu*lr*g_prev), not "
            f"a momentum buffer: {s} with momentum > 0 has no previous_delta form")
    if s == "neanderthal" and nest:
        raise NotRepresentable(
            "neanderthal's Nesterov is in look-ahead coordinates (the gradient is taken at "
            f"W + mu*V), {t}'s is re-parameterised (it stores W + mu*V): the iterates differ "
            "by mu*V at every step (convert them with "
            "inertia.optim.nesterov.to_reparameterised), and neanderthal's biases take plain "
            "SGD steps without momentum")
    if t == "neanderthal" and nest:
        raise NotRepresentable(
            f"{s}'s Nesterov is re-parameterised (it stores W + mu*V), neanderthal's is in "
            "look-ahead coordinates (the gradient at W + mu*V): the iterates differ by mu*V "
            "at every step (convert them with inertia.optim.nesterov.to_lookahead, back with "
            "inertia.optim.nesterov.to_reparameterised), and neanderthal's biases take plain "
            "SGD steps without momentum")
    if s == "neanderthal":
        raise NotRepresentable(
            "neanderthal's biases take plain SGD steps (b -= lr*g_b, no momentum, no decay): "
            f"with momentum > 0 {t} gives biases momentum (only momentum=0 translates)")
    if t == "neanderthal":
        raise NotRepresentable(
            f"neanderthal's biases take plain SGD steps without momentum; {s}'s biases have "
            "momentum: only momentum=0 translates to neanderthal")
    if s == "pytorch" and d:
        first = {"ema": "lr*(1 - mu)*g"}.get(t, "lr*g")
        raise NotRepresentable(
            f"pytorch with dampening {_num(d)} copies the first gradient undamped (b = g) and "
            f"damps the later ones by (1 - d); {t}'s buffer starts at 0 and treats every "
            f"gradient alike (first step {first}), so no {t} hyperparameters give the same "
            "trajectory (dampening = momentum is not ema either)")
    if wd:
        ks, kt = _decay_kind(S, mu), _decay_kind(T, mu)
        if ks != kt:
            raise NotRepresentable(_decay_reason(s, t, ks, kt))

    # exact: heavy ball b = mu b + g (lr outside) or v = mu v - lr g (lr inside), v = -lr b
    c_s = 1.0 - mu if s == "ema" else 1.0
    c_t = 1.0 - mu if t == "ema" else 1.0
    factor = c_s / c_t
    cross = S.lr_inside != T.lr_inside
    more = []
    if cross:
        target_corr = (corr != cross) if varying else False
    else:
        target_corr = corr
    if factor != 1.0:
        more.append(f"ema's buffer is (1 - mu) times the heavy ball's: {t}'s learning rate is "
                    f"{'(1 - mu)' if factor < 1 else '1/(1 - mu)'} times {s}'s"
                    + (", at every step of the schedule" if varying else ""))
    if t == "pytorch":
        more.append("pytorch's first buffer b = g is the zero-started mu*0 + g (dampening 0)")
    if wd and ks == "weights":
        more.append("both decay the weights only, by wd/n: give both the same batch size n")
    if not cross:
        more.insert(0, "exact, under any learning-rate schedule (the learning rate sits "
                       f"{'inside' if S.lr_inside else 'outside'} the buffer in both)")
    elif not varying:
        more.insert(0, "exact at a constant learning rate (v = -lr*b); after an lr change the "
                       f"{'lr-inside' if S.lr_inside else 'lr-outside'} {s} and "
                       f"{'lr-inside' if T.lr_inside else 'lr-outside'} {t} differ: pass "
                       "lr_schedule= (--lr-schedule) to get the schedule-exact form")
    else:
        ratio = "new/old" if T.lr_inside else "old/new"
        what = ("rescaling its velocity by " + ratio + " when the rate changes"
                if target_corr else "without momentum correction")
        more.insert(0, f"exact under the learning-rate schedule with the target "
                       f"{what} (momentum_correction={target_corr})")
        if target_corr and not nest:
            mk = "mu*lr_k/lr_(k-1)" if T.lr_inside else "mu*lr_(k-1)/lr_k"
            more.append(f"equivalently, {t} without correction and a per-step momentum "
                        f"mu_k = {mk} (k the step)")
        elif target_corr:
            more.append("with Nesterov the correction is not a per-step momentum: the "
                        "look-ahead term keeps mu")
    target = SGD(lr * factor, mu, 0.0, nest, wd, convention=T, momentum_correction=target_corr)
    return done(target, factor, more)


def translate(opt, to="keras", lr_schedule=None) -> SGD:
    """A new SGD under the convention ``to`` that produces ``opt``'s weight trajectory.

    opt          an inertia SGD (any convention), or a QHM / AggMo that an SGD reproduces
    to           a convention name: pytorch, tf1, optax, ema, keras, sklearn, neanderthal,
                 previous_delta
    lr_schedule  the learning-rate schedule the source runs under (step -> lr), or None for
                 a constant rate; the target must then run under ``lr_factor(opt, to)`` times
                 it (see ``translation``)

    Raises NotRepresentable (a ValueError) with the reason when no hyperparameters of ``to``
    give the same trajectory. The returned optimizer has no state: translate before training.
    """
    return translation(opt, to, lr_schedule).target


def lr_factor(opt, to) -> float:
    """The target's learning rate over the source's (1 except to or from ``ema``)."""
    return translation(opt, to).lr_factor


# ----------------------------------------------------------------------------- framework calls
def inertia_call(opt) -> str:
    """``inertia.SGD(...)`` that rebuilds an SGD."""
    args = [f"lr={_num(opt.lr)}", f"momentum={_num(opt.momentum)}"]
    if opt.dampening:
        args.append(f"dampening={_num(opt.dampening)}")
    if opt.nesterov:
        args.append("nesterov=True")
    if opt.weight_decay:
        args.append(f"weight_decay={_num(opt.weight_decay)}")
    args.append(f'convention="{opt.convention.name}"')
    if opt.momentum_correction:
        args.append("momentum_correction=True")
    return f"inertia.SGD({', '.join(args)})"


def _no_correction(what, buffers, ratio):
    return (f"{what} has no momentum correction: when the learning rate changes from old to "
            f"new, multiply {buffers} by {ratio} before the next step")


def framework_call(opt) -> FrameworkCall:
    """The framework's own constructor call for ``opt`` and notes on what it needs to match.

    SGD under pytorch, tf1, optax, keras and sklearn gives that framework's call; ema,
    neanderthal and previous_delta, which no framework ships as an optimizer, give
    ``inertia.SGD(...)``. QHM, AggMo, Adam and AdamW give their reference implementations.
    """
    from .adam import Adam, AdamW
    from .family import QHM, AggMo

    if isinstance(opt, QHM):
        return FrameworkCall(
            f"qhoptim.pyt.QHM(params, lr={_num(opt.lr)}, momentum={_num(opt.momentum)}, "
            f"nu={_num(opt.nu)}, weight_decay={_num(opt.weight_decay)})",
            ["weight decay is coupled (weight_decay_type=\"grad\", the default)"])
    if isinstance(opt, AggMo):
        notes = []
        return FrameworkCall(
            f"aggmo.AggMo(params, lr={_num(opt.lr)}, betas={[float(b) for b in opt.betas]}, "
            f"weight_decay={_num(opt.weight_decay)})", notes)
    if isinstance(opt, Adam):
        name = "AdamW" if isinstance(opt, AdamW) else "Adam"
        return FrameworkCall(
            f"torch.optim.{name}(params, lr={_num(opt.lr)}, betas=({_num(opt.betas[0])}, "
            f"{_num(opt.betas[1])}), eps={_num(opt.eps)}, weight_decay="
            f"{_num(opt.weight_decay)}, amsgrad={opt.amsgrad})", [])
    if not isinstance(opt, SGD):
        raise ValueError(f"framework_call takes an inertia optimizer, got {type(opt).__name__}")

    name = opt.convention.name
    lr, mu, d = _num(opt.lr), _num(opt.momentum), _num(opt.dampening)
    nest, wd, corr = opt.nesterov, opt.weight_decay, opt.momentum_correction and opt.momentum
    notes = []
    if name == "pytorch":
        call = (f"torch.optim.SGD(params, lr={lr}, momentum={mu}, dampening={d}, "
                f"nesterov={nest}, weight_decay={_num(wd)})")
        if wd:
            notes.append("weight decay is coupled (g + wd*w) and applies to every parameter in "
                         "the group, biases included")
        if opt.dampening and opt.momentum:
            notes.append("the first step copies g into the buffer undamped; dampening acts "
                         "from the second step")
        if corr:
            notes.append(_no_correction("torch.optim.SGD", "every state['momentum_buffer']",
                                        "old/new"))
    elif name == "tf1":
        call = (f"tf.compat.v1.train.MomentumOptimizer(learning_rate={lr}, momentum={mu}, "
                f"use_nesterov={nest})")
        if wd:
            notes.append(f"MomentumOptimizer has no weight decay: add {_num(wd)} * "
                         "tf.nn.l2_loss(v) for every trainable variable, biases included, "
                         "to the loss")
        if corr:
            notes.append(_no_correction("MomentumOptimizer", "each 'momentum' slot",
                                        "old/new"))
    elif name == "optax":
        call = f"optax.sgd(learning_rate={lr}, momentum={mu}, nesterov={nest})"
        if wd:
            call = f"optax.chain(optax.add_decayed_weights({_num(wd)}), {call})"
            notes.append("add_decayed_weights without a mask decays every leaf, biases "
                         "included")
        if corr:
            notes.append(_no_correction("optax.sgd", "the trace (TraceState.trace)",
                                        "old/new"))
    elif name == "keras":
        call = f"keras.optimizers.SGD(learning_rate={lr}, momentum={mu}, nesterov={nest}"
        call += f", weight_decay={_num(wd)})" if wd else ")"
        if wd:
            notes.append("Keras decays biases too (w *= 1 - lr*wd before the step, decoupled); "
                         "exclude_from_weight_decay changes that and breaks the match")
        notes.append("Keras keeps learning_rate in a floatx variable: "
                     "keras.config.set_floatx(\"float64\") for float64 agreement")
        if corr:
            notes.append(_no_correction("keras.optimizers.SGD",
                                        "each variable in optimizer.momentums", "new/old"))
    elif name == "sklearn":
        call = (f'MLPRegressor(solver="sgd", learning_rate_init={lr}, momentum={mu}, '
                f'nesterovs_momentum={nest}, alpha={_num(wd)}, learning_rate="constant")')
        notes.append("MLPClassifier takes the same arguments")
        if wd:
            notes.append("sklearn's alpha is divided by the batch size n of each step: "
                         "batch_size must equal n for the decay to match; intercepts are "
                         "not decayed")
        if corr:
            notes.append(_no_correction("SGDOptimizer", "each of its velocities", "new/old"))
    else:
        call = inertia_call(opt)
        if name == "ema" and not nest:
            chain = f"optax.ema(decay={mu}, debias=False), optax.scale(-{lr})"
            if wd:
                chain = f"optax.add_decayed_weights({_num(wd)}), " + chain
            notes.append(f"no framework ships it as an optimizer; in optax it is "
                         f"optax.chain({chain}) at a constant learning rate")
        elif name == "neanderthal":
            notes.append("the series' FullyConnectedTraining backward with [eta lambda mu] = "
                         f"[{lr} {_num(wd)} {mu}]"
                         + ("; Nesterov: Deep Diamond's FullyConnectedSGD (look-ahead)"
                            if nest else ""))
        else:
            notes.append("no framework ships it as an optimizer")
    return FrameworkCall(call, notes)
