"""Schedules for the learning rate and the momentum: callables from step to value.

``t`` is the optimizer's step counter (0 for the first update), shared by the learning-rate
and momentum schedules. Every schedule is a small object with ``__call__(t) -> float`` and a
readable ``repr``; ``parse`` turns the command line's ``NAME[:ARG,...]`` into one.

    >>> inertia.schedules.sutskever(mu_max=0.99)(1000)
    0.9
"""

from __future__ import annotations

import math
from numbers import Integral


class Schedule:
    """Base class: subclasses set ``name`` and ``args`` and implement ``value(t)``."""

    name = "schedule"

    def __init__(self, **args):
        self.args = args

    def __call__(self, t) -> float:
        t = int(t)
        if t < 0:
            raise ValueError(f"schedule step must be >= 0, got {t}")
        return float(self.value(t))

    def value(self, t):  # pragma: no cover - abstract
        raise NotImplementedError

    def __repr__(self):
        args = ", ".join(f"{k}={v!r}" for k, v in self.args.items())
        return f"{self.name}({args})"

    def __eq__(self, other):
        return type(self) is type(other) and self.args == other.args


def _positive(name, x, allow_zero=False):
    if not isinstance(x, (int, float)) or isinstance(x, bool) or not math.isfinite(x) \
            or x < 0 or (x == 0 and not allow_zero):
        raise ValueError(f"{name} must be a {'non-negative' if allow_zero else 'positive'} "
                         f"number, got {x!r}")
    return x


class constant(Schedule):
    """value at every step."""

    name = "constant"

    def __init__(self, value):
        super().__init__(value=_positive("value", value, allow_zero=True))

    def value(self, t):
        return self.args["value"]


class step(Schedule):
    """value * gamma ** floor(t / step_size) (PyTorch's StepLR, counted in steps)."""

    name = "step"

    def __init__(self, value, step_size, gamma=0.1):
        if not isinstance(step_size, int) or step_size < 1:
            raise ValueError(f"step_size must be a positive integer, got {step_size!r}")
        super().__init__(value=_positive("value", value), step_size=step_size,
                         gamma=_positive("gamma", gamma))

    def value(self, t):
        a = self.args
        return a["value"] * a["gamma"] ** (t // a["step_size"])


class inverse_scaling(Schedule):
    """Inverse-scaling decay, counted in optimizer steps or, as scikit-learn does, in samples.

    per="steps" (default): value / (t + 1) ** power at every optimizer step t, so the rate
        falls within an epoch. This is scikit-learn's formula with a different clock: it is
        NOT the rate scikit-learn's ``learning_rate="invscaling"`` gives (that one counts
        samples and changes once per epoch; the two differ by a factor of order
        (batches per epoch / samples per epoch) ** power).
    per="samples" (give ``n_samples``, the rows per epoch, and ``batch_size``, None for the
        full batch): exactly scikit-learn's MLP ``learning_rate="invscaling"``: ``value``
        through the first epoch, then, after e whole epochs, value / (e * n_samples + 1) **
        power for every step of epoch e (scikit-learn sets the rate from t_ = samples seen
        at each epoch's end; an uneven last batch still counts n_samples per epoch). Step t
        is in epoch t // ceil(n_samples / batch_size).
    """

    name = "inverse_scaling"

    def __init__(self, value, power=0.5, per="steps", n_samples=None, batch_size=None):
        args = dict(value=_positive("value", value), power=_positive("power", power, True))
        if per == "samples":
            if not isinstance(n_samples, int) or isinstance(n_samples, bool) or n_samples < 1:
                raise ValueError(f"inverse_scaling(per='samples') needs n_samples, the rows "
                                 f"per epoch (a positive integer), got {n_samples!r}")
            if batch_size is not None and (not isinstance(batch_size, int) or
                                           isinstance(batch_size, bool) or batch_size < 1):
                raise ValueError(f"inverse_scaling batch_size must be a positive integer or "
                                 f"None (the full batch), got {batch_size!r}")
            args.update(per=per, n_samples=n_samples, batch_size=batch_size)
        elif per != "steps":
            raise ValueError(f"inverse_scaling per must be 'steps' or 'samples', got {per!r}")
        elif n_samples is not None or batch_size is not None:
            raise ValueError("n_samples and batch_size are for inverse_scaling(per='samples')")
        super().__init__(**args)

    def value(self, t):
        a = self.args
        if a.get("per") != "samples":
            return a["value"] / (t + 1) ** a["power"]
        n, bs = a["n_samples"], a["batch_size"]
        per_epoch = -(-n // min(bs or n, n))
        seen = (t // per_epoch) * n                 # samples seen by the end of the last epoch
        return a["value"] / (seen + 1) ** a["power"]


class cosine(Schedule):
    """final + (value - final) (1 + cos(pi t / total)) / 2 for t <= total, then final
    (PyTorch's CosineAnnealingLR closed form)."""

    name = "cosine"

    def __init__(self, value, total, final=0.0):
        if not isinstance(total, int) or total < 1:
            raise ValueError(f"total must be a positive integer, got {total!r}")
        super().__init__(value=_positive("value", value), total=total,
                         final=_positive("final", final, True))

    def value(self, t):
        a = self.args
        t = min(t, a["total"])
        return a["final"] + (a["value"] - a["final"]) * (1 + math.cos(math.pi * t / a["total"])) / 2


class linear_warmup(Schedule):
    """start + (value - start) (t + 1) / steps for t < steps (Goyal et al. 2017's gradual
    warm-up: the first step already moves, the last warm-up step reaches value), then
    ``after(t - steps)`` when a schedule is given, else value."""

    name = "linear_warmup"

    def __init__(self, value, steps, start=0.0, after=None):
        if not isinstance(steps, int) or steps < 1:
            raise ValueError(f"steps must be a positive integer, got {steps!r}")
        if after is not None and not callable(after):
            raise ValueError("after must be a schedule (a callable from step to value)")
        super().__init__(value=_positive("value", value), steps=steps,
                         start=_positive("start", start, True), after=after)

    def value(self, t):
        a = self.args
        if t < a["steps"]:
            return a["start"] + (a["value"] - a["start"]) * (t + 1) / a["steps"]
        return a["after"](t - a["steps"]) if a["after"] is not None else a["value"]


class sutskever(Schedule):
    """mu_t = min(1 - 2^(-1 - log2(floor(t / 250) + 1)), mu_max) (Sutskever et al. 2013),
    computed as 1 - 1 / (2 (floor(t / 250) + 1)), the same number without a logarithm."""

    name = "sutskever"

    def __init__(self, mu_max=0.99, every=250):
        if not 0 <= mu_max < 1:
            raise ValueError(f"mu_max must be in [0, 1), got {mu_max!r}")
        if not isinstance(every, int) or every < 1:
            raise ValueError(f"every must be a positive integer, got {every!r}")
        super().__init__(mu_max=mu_max, every=every)

    def value(self, t):
        j = t // self.args["every"] + 1
        return min(1.0 - 1.0 / (2.0 * j), self.args["mu_max"])


class demon(Schedule):
    """Decaying momentum (Chen et al.): beta_t = beta0 (1 - t/T) / ((1 - beta0) + beta0 (1 - t/T)),
    from beta0 at t = 0 to 0 at t = T (and 0 after)."""

    name = "demon"

    def __init__(self, beta0=0.9, total=1000):
        if not 0 <= beta0 < 1:
            raise ValueError(f"beta0 must be in [0, 1), got {beta0!r}")
        if not isinstance(total, int) or total < 1:
            raise ValueError(f"total must be a positive integer, got {total!r}")
        super().__init__(beta0=beta0, total=total)

    def value(self, t):
        b0, T = self.args["beta0"], self.args["total"]
        r = max(0.0, 1.0 - t / T)
        return b0 * r / ((1.0 - b0) + b0 * r)


def _one_cycle_phases(t, total, pct_start):
    """(phase, pct) as PyTorch's OneCycleLR (two phases, cosine annealing) computes them."""
    up_end = float(pct_start * total) - 1
    down_end = float(total - 1)
    if t <= up_end:
        return 0, t / up_end if up_end > 0 else 1.0
    return 1, (t - up_end) / (down_end - up_end) if down_end > up_end else 1.0


def _cos_anneal(start, end, pct):
    return end + (start - end) / 2.0 * (math.cos(math.pi * pct) + 1)


class one_cycle(Schedule):
    """The one-cycle learning rate (Smith): from max_lr / div_factor up to max_lr over the first
    pct_start of ``total`` steps, then down to max_lr / (div_factor * final_div_factor), cosine
    annealed — PyTorch's OneCycleLR with its defaults."""

    name = "one_cycle"

    def __init__(self, max_lr, total, pct_start=0.3, div_factor=25.0, final_div_factor=1e4):
        if not isinstance(total, int) or total < 2:
            raise ValueError(f"total must be an integer >= 2, got {total!r}")
        if not 0 < pct_start < 1:
            raise ValueError(f"pct_start must be in (0, 1), got {pct_start!r}")
        super().__init__(max_lr=_positive("max_lr", max_lr), total=total, pct_start=pct_start,
                         div_factor=_positive("div_factor", div_factor),
                         final_div_factor=_positive("final_div_factor", final_div_factor))

    def value(self, t):
        a = self.args
        initial = a["max_lr"] / a["div_factor"]
        final = initial / a["final_div_factor"]
        phase, pct = _one_cycle_phases(min(t, a["total"] - 1), a["total"], a["pct_start"])
        if phase == 0:
            return _cos_anneal(initial, a["max_lr"], pct)
        return _cos_anneal(a["max_lr"], final, pct)


class one_cycle_momentum(Schedule):
    """The one-cycle momentum, the inverse of the learning rate's cycle: from max_momentum
    (0.95) down to base_momentum (0.85) while the learning rate rises, then back up — PyTorch's
    OneCycleLR with cycle_momentum=True."""

    name = "one_cycle_momentum"

    def __init__(self, total, base_momentum=0.85, max_momentum=0.95, pct_start=0.3):
        if not isinstance(total, int) or total < 2:
            raise ValueError(f"total must be an integer >= 2, got {total!r}")
        if not (0 <= base_momentum <= max_momentum < 1):
            raise ValueError("need 0 <= base_momentum <= max_momentum < 1, got "
                             f"{base_momentum!r} and {max_momentum!r}")
        super().__init__(total=total, base_momentum=base_momentum, max_momentum=max_momentum,
                         pct_start=pct_start)

    def value(self, t):
        a = self.args
        phase, pct = _one_cycle_phases(min(t, a["total"] - 1), a["total"], a["pct_start"])
        if phase == 0:
            return _cos_anneal(a["max_momentum"], a["base_momentum"], pct)
        return _cos_anneal(a["base_momentum"], a["max_momentum"], pct)


LR_NAMES = ("constant", "step", "inverse_scaling", "cosine", "warmup", "one_cycle")
MOMENTUM_NAMES = ("constant", "step", "cosine", "sutskever", "demon", "one_cycle")
# the most arguments each schedule takes after ':' (the others take none)
_ARGS = {"lr": {"step": 2, "inverse_scaling": 1, "cosine": 1, "warmup": 1},
         "momentum": {"step": 2, "cosine": 1, "sutskever": 1, "one_cycle": 2}}


def parse(text, base, total, kind="lr"):
    """A schedule from the command line's ``NAME[:ARG,...]``.

    base   the value the schedule starts from (the --lr or --momentum given)
    total  the number of steps in the run
    kind   "lr" or "momentum"

    lr:        constant | step:STEP_SIZE[,GAMMA] | inverse_scaling[:POWER] | cosine[:FINAL]
               | warmup:STEPS (linear warm-up, then constant) | one_cycle (max_lr = base)
    momentum:  constant | step:STEP_SIZE[,GAMMA] | cosine[:FINAL] | sutskever[:MU_MAX]
               | demon (beta0 = base) | one_cycle[:BASE,MAX]
    """
    _check_parse(text, total, kind)
    name, _, rest = text.partition(":")
    name = name.strip().replace("-", "_")
    names = LR_NAMES if kind == "lr" else MOMENTUM_NAMES
    if name not in names:
        raise ValueError(f"unknown {kind} schedule {name!r}: choose one of {', '.join(names)}")
    try:
        args = [float(x) for x in rest.split(",") if x.strip()]
        if not all(math.isfinite(a) for a in args):
            raise ValueError
    except ValueError:
        raise ValueError(f"{kind} schedule {text!r}: arguments after ':' must be finite "
                         "numbers") from None
    most = _ARGS[kind].get(name, 0)
    if len(args) > most:
        takes = f"at most {most} argument{'s' * (most > 1)}" if most else "no arguments"
        raise ValueError(f"{kind} schedule {text!r} takes {takes} after ':', got {len(args)}")
    if name in ("step", "warmup") and args and not args[0].is_integer():
        raise ValueError(f"{kind} schedule {text!r}: its first argument is a whole number "
                         "of steps")
    try:
        return _build(name, args, base, max(int(total), 2), kind)
    except ValueError as ex:
        raise ValueError(f"{kind} schedule {text!r} from {kind} {base:g}: {ex}") from None


def _check_parse(text, total, kind):
    """``parse``'s arguments other than base, each refused in one line."""
    if kind not in ("lr", "momentum"):
        raise ValueError(f"kind must be 'lr' or 'momentum', got {kind!r}")
    if not isinstance(text, str):
        raise TypeError(f"the {kind} schedule must be a string NAME[:ARG,...] such as "
                        f"'cosine' or 'step:1000,0.5', got {type(text).__name__}")
    if not isinstance(total, Integral) or isinstance(total, bool) or total < 1:
        raise ValueError(f"total must be the run's number of steps, a positive integer, "
                         f"got {total!r}")


def _build(name, args, base, total, kind):
    """The schedule ``name`` of ``parse`` (arguments checked) from ``base``."""
    if name == "constant":
        return constant(base)
    if name == "step":
        if not args:
            raise ValueError("step schedule needs STEP_SIZE: write step:1000 or step:1000,0.5")
        return step(base, int(args[0]), *(args[1:2] or [0.1]))
    if name == "inverse_scaling":
        return inverse_scaling(base, *(args[:1] or [0.5]))
    if name == "cosine":
        return cosine(base, total, *(args[:1] or [0.0]))
    if name == "warmup":
        if not args:
            raise ValueError("warmup schedule needs STEPS: write warmup:500")
        return linear_warmup(base, int(args[0]))
    if name == "one_cycle":
        if kind == "lr":
            return one_cycle(base, total)
        return one_cycle_momentum(total, *(args[:2] or [0.85, 0.95]))
    if name == "sutskever":
        return sutskever(*(args[:1] or [0.99]))
    if name == "demon":
        return demon(base, total)
    raise AssertionError(name)
