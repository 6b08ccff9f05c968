"""``fit`` with ``SGD(lr="auto")`` and/or ``momentum="auto"``: the race chooses them first.

``tune_auto`` is called at the start of ``fit`` when the optimizer still holds the
placeholder. The arguments are checked first (``make_plan`` on a stand-in optimizer with
numbers in place of "auto"), then ``inertia.tune(method="race")`` runs on the same data,
epochs, batch size, validation data and shuffling seed, a value given as a number staying
fixed; the chosen values are set on the optimizer (so a later ``fit`` does not tune again)
and ``History.tuned`` says what was chosen and at what cost. A checkpoint of the run
records the choice (``checkpoint.recorded_choice``): resuming takes it from there instead of
racing again (``recorded``), and a checkpoint that cannot be resumed so is refused before
any race (``restore`` then checks the rest of the run).
"""

from __future__ import annotations

import os

from . import checkpoint as checkpoint_mod

# fit's defaults for the arguments ``plan_args`` leaves out
FIT_DEFAULTS = {"epochs": None, "batch_size": None, "shuffle": True, "seed": None,
                "schedule": None, "validation_data": None, "progress": False,
                "lr_schedule": None, "momentum_schedule": None, "compiled": None,
                "on_divergence": "stop", "checkpoint": None, "checkpoint_every": 1,
                "early_stopping": None}
# stand-ins for "auto" while fit's arguments are checked (momentum > 0 for Nesterov)
STAND_IN = {"lr": 0.01, "momentum": 0.5}


def tune_auto(net, X, y, loss, optimizer, plan_args):
    """Choose the optimizer's "auto" hyperparameters by the race and set them on it.

    plan_args  ``fit``'s arguments after (net, X, y, loss, optimizer), as a dict (those
               left out take fit's defaults); an existing ``checkpoint`` among them gives
               its recorded choice instead of a race, or is refused first (``recorded``)
    Returns the ``TuneSummary`` for ``History.tuned`` (also left in ``optimizer.tuned``,
    which the run's checkpoints record). ``net`` is not changed."""
    from ..tuning import tune
    from .plan import make_plan, segment_sets

    auto = optimizer.auto
    plan_args = {**FIT_DEFAULTS, **plan_args}
    if "lr" in auto and plan_args.get("lr_schedule") is not None:
        raise ValueError('lr="auto" with an lr_schedule: give a number for lr (the schedule '
                         "sets it) or drop the schedule")
    if "momentum" in auto and plan_args.get("momentum_schedule") is not None:
        raise ValueError('momentum="auto" with a momentum_schedule: give a number for '
                         "momentum or drop the schedule")
    for k in auto:
        if any(k in sets for sets in segment_sets(plan_args.get("schedule"))):
            raise ValueError(f'{k}="auto" with a schedule whose segments set {k}: give a '
                             f"number for {k} or drop {k} from the segments")
    stand_in = type(optimizer)(**{**optimizer.config(), **{k: STAND_IN[k] for k in auto}})
    plan = make_plan(net, X, y, loss, stand_in, **plan_args)
    checkpoint = plan_args["checkpoint"]
    if checkpoint is not None and os.path.exists(checkpoint):
        return recorded(checkpoint, optimizer)
    seed = plan.seed if isinstance(plan.seed, int) else None
    fixed = {k: getattr(optimizer, k) for k in ("lr", "momentum") if k not in auto}
    result = tune(net, X, y, loss, epochs=int(plan.epochs),
                  batch_size=plan_args.get("batch_size"),
                  validation_data=plan_args.get("validation_data"), method="race",
                  optimizer=optimizer, seed=seed, **fixed)
    chosen = result.optimizer.config()
    optimizer.set(**{k: chosen[k] for k in auto})
    optimizer.tuned = result.summary()
    return optimizer.tuned


def recorded(path, optimizer):
    """Set the choice the checkpoint at ``path`` recorded on ``optimizer`` (its "auto"
    values, and ``tuned``) and return its TuneSummary. Before any race: a one-line
    ValueError when the checkpoint cannot be read, holds a run whose values were given
    rather than chosen, or one of an optimizer that differs in more than the "auto" values
    (``restore`` checks the rest of the run: data, network, settings)."""
    from ..tuning import TuneSummary

    tuned, config = checkpoint_mod.recorded_choice(path)
    auto = optimizer.auto
    other = [(k, config.get(k), v) for k, v in optimizer.config().items()
             if k not in auto and config.get(k) != v]
    if other:
        k, a, b = other[0]
        raise ValueError(f"the checkpoint {path} belongs to a run on another optimizer (its "
                         f"{k} {a!r}, this run's {b!r}): rerun that run's command to resume "
                         "it, or remove the checkpoint to start afresh")
    if tuned is None:
        given = ", ".join(f"{k}={config.get(k)!r}" for k in auto)
        raise ValueError(f"the checkpoint {path} holds a run whose {' and '.join(auto)} "
                         f"{'were' if len(auto) > 1 else 'was'} given, not chosen: give "
                         f"{given} to resume it, or remove the checkpoint to start afresh")
    try:
        chosen = {k: float(config[k]) for k in auto}
        type(optimizer)(**{**optimizer.config(), **chosen})      # valid values
        summary = TuneSummary(**tuned)
    except (KeyError, TypeError, ValueError) as ex:
        raise ValueError(f"{path} is a damaged inertia checkpoint (its recorded choice: "
                         f"{ex}): remove it to start the run afresh") from None
    optimizer.set(**chosen)
    optimizer.tuned = summary
    return summary
