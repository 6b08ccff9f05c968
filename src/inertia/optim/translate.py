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

import copy
import math
import warnings
from typing import Callable, NamedTuple

from .. import schedules as _schedules
from . import conventions as _conv
from . import rule as _rule
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


def _decay_mismatch(S, T, momentum):
    """Why the weight decays of conventions S and T differ (with momentum ``momentum``), or
    None when every weight_decay of S is the same weight_decay of T."""
    s, t = S.name, T.name
    if S.decay_biases != T.decay_biases:
        w, a = (S, T) if not S.decay_biases else (T, S)
        return (f"{w.name} decays only the weights"
                + (", by wd/n (n the batch size)," if w.decay_per_n else ",")
                + f" and never the biases; {a.name} decays every parameter, biases included"
                + (", by wd/n" if a.decay_per_n else "")
                + f": no weight decay of {t} gives {s}'s trajectory (they agree only with "
                  "weight_decay=0)")
    if S.decay_per_n != T.decay_per_n:
        x, y = (s, t) if S.decay_per_n else (t, s)
        return (f"{x} scales weight decay by 1/n (n the batch size) and {y} does not: no weight "
                f"decay of {t} gives {s}'s trajectory (they agree only with weight_decay=0)")
    coupled_s = momentum == 0 or S.weight_decay == "coupled"  # without momentum decoupled
    coupled_t = momentum == 0 or T.weight_decay == "coupled"  # == coupled
    if coupled_s != coupled_t:
        c, d = (s, t) if coupled_s else (t, s)
        return (f"with momentum > 0, {c}'s weight decay is coupled (wd*w is added to the "
                f"gradient and goes through the momentum buffer) and {d}'s is decoupled "
                f"(w *= 1 - lr*wd outside the buffer): no weight decay of {t} gives {s}'s "
                "trajectory (they agree only with momentum 0 or weight_decay=0)")
    return None


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
def carried_state(opt, target, state=None):
    """The state under which ``target`` (``opt`` translated) continues ``opt``'s trajectory
    from ``state`` (``opt.state`` when None), or None when there is none to carry or it cannot
    be carried.

    Both rules take w' = D w + E v' + F g~ + H v with v' = A v + B g~ (``rule.sgd``), and a
    translation makes every coefficient but the buffer's equal, so the buffers differ by the
    ratio of their terms E A + H at the last step's learning rate: the source's buffers are
    scaled by it, and the counters (steps, started, last learning rate times the target's
    factor) carried; between two conventions of one rule the state is copied as it is. Not
    carried: the two-tap rule (``previous_delta``) with momentum into another rule, its buffer
    being the last step and not a sum of them; look-ahead shifts that the scaled buffers would
    not reproduce (the weights would move too). A QHM's buffer is carried as the ema
    convention's, a one-damping AggMo's as tf1's (``_as_sgd``)."""
    from .family import QHM, AggMo
    from .sgd import SGDState

    state = opt.state if state is None else state
    if state is None or not state.step or not isinstance(opt, (SGD, QHM, AggMo)):
        return None
    if not isinstance(opt, SGD):    # the buffer of the SGD that ``_as_sgd`` makes of it
        buffers = state.buffer if isinstance(opt, QHM) else state.velocity
        sgd = _as_sgd(opt)[0]
        state = SGDState(step=state.step, started=sgd.momentum != 0,
                         velocity=list(buffers), last_lr=opt.lr)
        opt = sgd
    S, T = opt.convention, target.convention
    factor = _translation(opt, T).lr_factor
    if S.flags() == T.flags() and factor == 1.0:       # the same rule: the state as it is
        return copy.deepcopy(state)
    if (S.previous_delta or T.previous_delta) and (opt.momentum or target.momentum):
        return None
    lr = opt.lr if state.last_lr is None else state.last_lr
    velocity = []
    for v in state.velocity:
        is_bias = len(v.shape) == 1
        a = _rule.sgd(S, lr, opt.momentum, opt.dampening, opt.nesterov, 0.0, is_bias, None,
                      False)
        b = _rule.sgd(T, lr * factor, target.momentum, target.dampening, target.nesterov,
                      0.0, is_bias, None, False)
        va, vb = a.E * a.A + a.H, b.E * b.A + b.H
        if va == 0 and vb == 0:                        # neither has momentum here
            velocity.append(v * 0.0)
            continue
        if va == 0 or vb == 0 or not math.isclose(b.look * va / vb, a.look, rel_tol=1e-12,
                                                 abs_tol=1e-15):
            return None
        velocity.append(v * (va / vb))
    return type(state)(step=state.step, started=state.started, velocity=velocity,
                       last_lr=None if state.last_lr is None else state.last_lr * factor)


def _with_state(opt, target, stacklevel):
    """``target`` with ``opt``'s state carried (``carried_state``), or a UserWarning at the
    caller ``stacklevel`` frames up when ``opt`` has taken steps that cannot be carried."""
    steps = getattr(getattr(opt, "state", None), "step", 0)
    if not steps:
        return target
    carried = carried_state(opt, target)
    if carried is None:
        warnings.warn(f"the optimizer has taken {steps} steps, and its velocity does not carry "
                      f"into {target.convention.name}'s rule, so its translation starts with "
                      "none and continuing with it is not the same trajectory: translate "
                      "before training", UserWarning, stacklevel=stacklevel)
    else:
        target.state = carried
    return target


def translation(opt, to="keras", lr_schedule=None) -> Translation:
    """Translate ``opt`` into the convention ``to``: the target optimizer, its learning-rate
    factor and schedule, and notes. Raises NotRepresentable (a ValueError) with the reason
    when no hyperparameters of ``to`` reproduce ``opt``'s trajectory.

    ``to``: a convention name or a ``Convention`` record; every decision reads the records'
    flags, never their names. ``lr_schedule``: the source's learning-rate schedule
    (step -> lr), or None for a constant learning rate. The target carries ``opt``'s state
    as ``translate``'s does.
    """
    result = _translation(opt, to, lr_schedule)
    _with_state(opt, result.target, stacklevel=3)
    return result


def _translation(opt, to, lr_schedule=None) -> Translation:
    """``translation`` without the state (``_with_state`` carries it)."""
    T = _conv.get(to)
    varying = _varies(lr_schedule)
    if hasattr(opt, "check_numbers"):
        opt.check_numbers("translate")
    src, notes = _as_sgd(opt)
    S = src.convention
    lr, mu, d = src.lr, src.momentum, src.dampening
    nest, wd, corr = src.nesterov, src.weight_decay, src.momentum_correction

    def done(target, factor, more):
        sched = None
        if lr_schedule is not None:
            sched = lr_schedule if factor == 1.0 else scaled(lr_schedule, factor)
        return Translation(target, factor, sched, notes + more)

    if S.flags() == T.flags():
        same = ("exact: the same convention" if S.name == T.name else
                f"exact: the same rule ({S.name} and {T.name} have the same flags)")
        return done(SGD(lr, mu, d, nest, wd, convention=T, momentum_correction=corr), 1.0,
                    [same])
    if mu == 0:                                          # plain SGD in every convention
        more = _plain_notes(S, T, d, wd)                 # raises before SGD(...) would
        return done(SGD(lr, weight_decay=wd, convention=T), 1.0, more)
    _refuse_momentum(S, T, mu, d, nest, wd)
    factor, more = _heavy_ball_notes(S, T, mu, d, wd, varying)
    cross = S.lr_inside != T.lr_inside
    target_corr = ((corr != cross) if varying else False) if cross else corr
    s, t = S.name, T.name
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


def _plain_notes(S, T, d, wd):
    """Notes on translating momentum 0 (plain SGD in every convention); raises
    NotRepresentable where the weight decays differ."""
    s, t = S.name, T.name
    more = ["exact: with momentum 0 every convention is plain SGD, w -= lr*(g + decay)"]
    if d:
        more.append("dampening has no effect without momentum (there is no buffer)")
    if wd:
        if T.weight_decay is None:
            raise NotRepresentable(f"{t} has no weight decay: {s} with weight_decay="
                                   f"{_num(wd)} has no {t} form")
        reason = _decay_mismatch(S, T, 0.0)
        if reason:
            raise NotRepresentable(reason)
        if "decoupled" in (S.weight_decay, T.weight_decay) and S.decay_biases:
            more.append("without momentum decoupled decay equals coupled: "
                        "(1 - lr*wd)*w - lr*g == w - lr*(g + wd*w)")
        if not S.decay_biases:
            more.append("both decay the weights only"
                        + (", by lr*wd/n: give both the same batch size n"
                           if S.decay_per_n else ""))
    return more


def _lookahead_refusal(S, T, nest):
    """Why a Nesterov optimizer of S has no T form because one stores look-ahead
    coordinates and the other reparameterised ones (or T has no Nesterov), or None."""
    s, t = S.name, T.name
    if not nest:
        return None
    if T.nesterov is None:
        return f"{t} has no Nesterov form: {s} with nesterov=True has no {t} form"
    look_s, look_t = S.nesterov == "lookahead", T.nesterov == "lookahead"
    plain = [c.name for c in (S, T) if not c.momentum_biases]
    biases = (f", and {plain[0]}'s biases take plain SGD steps without momentum"
              if plain else "")
    if look_s and not look_t:
        return (f"{s}'s Nesterov is in look-ahead coordinates (the gradient is taken at "
                f"W + mu*V), {t}'s is re-parameterised (it stores W + mu*V): the iterates "
                "differ by mu*V at every step (convert them with "
                "inertia.optim.nesterov.to_reparameterised)" + biases)
    if look_t and not look_s:
        return (f"{s}'s Nesterov is re-parameterised (it stores W + mu*V), {t}'s is in "
                "look-ahead coordinates (the gradient at W + mu*V): the iterates differ by "
                "mu*V at every step (convert them with inertia.optim.nesterov.to_lookahead, "
                "back with inertia.optim.nesterov.to_reparameterised)" + biases)
    return None


def _refuse_momentum(S, T, mu, d, nest, wd):
    """Raise NotRepresentable when no T hyperparameters give the trajectory of an S
    optimizer with momentum ``mu`` > 0 (the flags decide)."""
    s, t = S.name, T.name
    if S.previous_delta:
        raise NotRepresentable(
            f"{s} with momentum > 0 is a two-tap filter w -= lr*g + mu*lr*g_prev, "
            f"not heavy-ball momentum: {t} has no such form (only momentum=0 translates)")
    if T.previous_delta:
        raise NotRepresentable(
            f"{t} remembers only the previous lr*g (w -= lr*g + mu*lr*g_prev), not "
            f"a momentum buffer: {s} with momentum > 0 has no {t} form")
    reason = _lookahead_refusal(S, T, nest)
    if reason:
        raise NotRepresentable(reason)
    if not S.momentum_biases and T.momentum_biases:
        raise NotRepresentable(
            f"{s}'s biases take plain SGD steps (b -= lr*g_b, no momentum"
            + ("" if S.decay_biases else ", no decay")
            + f"): with momentum > 0 {t} gives biases momentum (only momentum=0 translates)")
    if not T.momentum_biases and S.momentum_biases:
        raise NotRepresentable(
            f"{t}'s biases take plain SGD steps without momentum; {s}'s biases have "
            f"momentum: only momentum=0 translates to {t}")
    c_s, c_t = _rule.gradient_coefficient(S, mu, d), _rule.gradient_coefficient(T, mu, 0.0)
    if S.first_step_copy and c_s != 1:
        first = "lr*(1 - mu)*g" if c_t != 1 else "lr*g"
        raise NotRepresentable(
            f"{s} with dampening {_num(d)} copies the first gradient undamped (b = g) and "
            f"damps the later ones by (1 - d); {t}'s buffer starts at 0 and treats every "
            f"gradient alike (first step {first}), so no {t} hyperparameters give the same "
            "trajectory (dampening = momentum is not ema either)")
    if T.first_step_copy and c_t != 1:
        raise NotRepresentable(
            f"{t} copies the first gradient undamped (b = g) and scales the later ones; "
            f"{s} treats every gradient alike: no {t} hyperparameters give the same trajectory")
    if not S.momentum_biases and c_s != c_t:
        raise NotRepresentable(
            f"{s} and {t} scale the momentum buffer differently, and their biases take plain "
            "SGD steps at the learning rate itself: no one learning rate fits both")
    if wd:
        reason = _decay_mismatch(S, T, mu)
        if reason:
            raise NotRepresentable(reason)


_COEF_WORDS = {"ema": "(1 - mu)", "dampening": "(1 - dampening)"}


def _heavy_ball_notes(S, T, mu, d, wd, varying):
    """(the target's learning rate over the source's, notes) for two conventions that are
    the same heavy ball b = mu b + c g (lr outside) or v = mu v - lr g (lr inside),
    v = -lr b, with gradient coefficients c_s and c_t."""
    s, t = S.name, T.name
    c_s, c_t = _rule.gradient_coefficient(S, mu, d), _rule.gradient_coefficient(T, mu, 0.0)
    factor = c_s / c_t
    every = ", at every step of the schedule" if varying else ""
    more = []
    if c_s != 1 and c_t == 1:
        w = _COEF_WORDS.get(S.grad_coef, _num(c_s))
        more.append(f"{s}'s buffer is {w} times the heavy ball's: {t}'s learning rate is "
                    f"{w} times {s}'s" + every)
    elif c_t != 1 and c_s == 1:
        w = _COEF_WORDS.get(T.grad_coef, _num(c_t))
        more.append(f"{t}'s buffer is {w} times the heavy ball's: {t}'s learning rate is "
                    f"1/{w} times {s}'s" + every)
    elif factor != 1:
        more.append(f"{t}'s learning rate is {_num(factor)} times {s}'s" + every)
    if T.first_step_copy:
        more.append(f"{t}'s first buffer b = g is the zero-started mu*0 + g (dampening 0)")
    if wd and not S.decay_biases:
        more.append("both decay the weights only"
                    + (", by wd/n: give both the same batch size n" if S.decay_per_n else ""))
    return factor, more


def translate(opt, to="keras", lr_schedule=None) -> SGD:
    """A new SGD under the convention ``to`` that produces ``opt``'s weight trajectory.

    opt          an inertia SGD (any convention), or a QHM / AggMo that an SGD reproduces
    to           a convention name: pytorch, tf1, optax, ema, keras, sklearn, neanderthal,
                 previous_delta
    lr_schedule  the learning-rate schedule the source runs under (step -> lr), or None for
                 a constant rate; the target must then run under ``lr_factor(opt, to)`` times
                 it (see ``translation``)

    Raises NotRepresentable (a ValueError) with the reason when no hyperparameters of ``to``
    give the same trajectory. When ``opt`` has taken steps, the result carries its state
    (``carried_state``), so that training goes on along the same trajectory; where the state
    cannot be carried, a UserWarning says so and the result starts without it.
    """
    return _with_state(opt, _translation(opt, to, lr_schedule).target, stacklevel=3)


def lr_factor(opt, to) -> float:
    """The target's learning rate over the source's (1 except to or from ``ema``)."""
    return _translation(opt, to).lr_factor


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

    An SGD's call and notes are its Convention record's ``spelling``: pytorch, tf1, optax,
    keras and sklearn give that framework's call; ema, neanderthal and previous_delta, which
    no framework ships as an optimizer, give ``inertia.SGD(...)``. QHM, AggMo, Adam and AdamW
    give their reference implementations.
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

    conv = opt.convention
    sp = conv.spelling
    values = dict(lr=_num(opt.lr), mu=_num(opt.momentum), d=_num(opt.dampening),
                  nest=str(opt.nesterov), wd=_num(opt.weight_decay))
    facts = {"decay" if opt.weight_decay else "no-decay",
             "nesterov" if opt.nesterov else "plain"}
    if opt.dampening and opt.momentum:
        facts.add("damped")
    if sp.call is None:
        call = inertia_call(opt)
    else:
        call = sp.call.format(**values)
        if opt.weight_decay and sp.call_decay:
            call = sp.call_decay.format(call=call, **values)
    notes = [template.format(**values) for when, template in sp.notes
             if all(word.strip() in facts for word in when.split(",") if word.strip())]
    if opt.momentum_correction and opt.momentum and sp.state:
        notes.append(_no_correction(*sp.state, "new/old" if conv.lr_inside else "old/new"))
    return FrameworkCall(call, notes)
