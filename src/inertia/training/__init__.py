"""Training: ``fit`` = plan -> loop -> record.

    plan.py        every argument checked before the first step; the Plan the loop follows
    loop.py        the run's position and epoch bookkeeping; the engine-call and the compiled
                   ways of stepping behind one interface; deferred signals
    divergence.py  DivergenceWarning, Diverged, the one-step-back copy of the engine loop
    checkpoint.py  checkpoints: exact resume, fingerprints, atomic writes
    history.py     History
    early_stopping.py  EarlyStopping (Keras 3's rule) and the validation accuracy
"""

from __future__ import annotations

import contextlib
import os
import time

from . import checkpoint as ckpt
from .auto import tune_auto
from .divergence import Divergence, Diverged, DivergenceWarning, report
from .early_stopping import EarlyStopping
from .history import History
from .loop import CompiledLoop, EngineSteps, Signals, State, progress_bar
from .plan import Plan, SeedAfter, make_plan

__all__ = ["fit", "History", "Divergence", "Diverged", "DivergenceWarning", "Interrupted",
           "Plan", "EarlyStopping", "SeedAfter"]


class Interrupted(KeyboardInterrupt):
    """A KeyboardInterrupt that stopped ``fit`` between two steps. ``checkpoint``: the path
    the run was saved to (None without one); ``position``: the (epoch, step) it stopped
    before; ``history``: the History so far."""

    def __init__(self, checkpoint, position, history):
        super().__init__()
        self.checkpoint, self.position, self.history = checkpoint, position, history


def fit(net, X, y, loss, optimizer, epochs=None, batch_size=None, shuffle=True, seed=None,
        schedule=None, validation_data=None, progress=True, lr_schedule=None,
        momentum_schedule=None, compiled=None, on_divergence="stop", checkpoint=None,
        checkpoint_every=None, early_stopping=None, sample_weight=None, record_steps=False):
    """Train ``net`` on (X, y) and return a History.

    loss        "mse", "quadratic", "bce" or "cross_entropy" (see ``inertia.ops.losses``)
    optimizer   an ``inertia.SGD``; it keeps its state, so a second fit continues the first
    epochs      number of passes over the data (leave out when a schedule is given)
    batch_size  None: full batch; 1: online (one item per update); k: mini-batches of k, the
                last one smaller when k does not divide n
    shuffle     reshuffle the rows every epoch (mini-batch and online only), seeded by ``seed``
                (``SeedAfter(seed, k)``: the orders a fit with ``seed`` draws after k epochs,
                so that a fit continued by another is one run, bit for bit)
    schedule    [(epochs, {"lr": ..., "momentum": ..., "weight_decay": ...}), ...] run in order;
                the velocity carries across segments
    validation_data  (X_val, y_val): its loss is recorded after every epoch (History.val_loss),
                and with a "bce" or "cross_entropy" loss its accuracy (History.val_accuracy)
    progress    show a progress bar on long runs in a terminal (never when piped)
    lr_schedule, momentum_schedule
                callables from the optimizer's step counter to a value (``inertia.schedules``),
                applied before every update; they share the optimizer's step count
    compiled    None: run whole epochs as one compiled call (``inertia.fused``) where the
                engine, optimizer and network allow it; False: always the engine-call loop;
                True: the compiled loop or a ValueError saying why it cannot run
    on_divergence  what a NaN or infinite loss or parameter does. "stop" (default): the
                network and optimizer go back to the last state whose loss was finite,
                training stops, ``History.diverged`` says where and a DivergenceWarning says
                so. "raise": the same, then ``inertia.Diverged``. "continue": train on.
    checkpoint  a file path: the run is saved there (atomically) every ``checkpoint_every``
                epochs (an integer, default 1) or seconds (a string such as "30s", taken at
                the next step; without a checkpoint it is refused) and when interrupted
                (Ctrl-C, SIGTERM); when the file exists, ``fit`` resumes from it and runs
                only what remains, exactly as the uninterrupted run would have; it is
                removed when the run ends. Other data or settings than the checkpoint's
                (record_steps too) are refused. The early-stopping state (best value,
                wait, kept weights) is part of the checkpoint.
    early_stopping  None, or an ``inertia.EarlyStopping(monitor="val_loss", patience=...,
                min_delta=..., restore_best=True)``: after every epoch the monitored value
                ("loss", "val_loss" or "val_accuracy") is checked by Keras 3's rule; training
                stops when it has not improved for ``patience`` epochs, and when the run
                ends the best epoch's weights are put back (``restore_best``).
                ``History.stopped_epoch`` and ``History.best_epoch`` say what happened.
    sample_weight  None, or one weight per row of X (shape (n,), finite, >= 0, not all zero):
                each batch's loss is sum_i w_i l_i / sum_i w_i over its rows (the weights'
                sum also replaces the batch size in a per-n weight decay), scikit-learn's
                MLP rule; in full batch a weight of 2 is the row twice. A mini-batch whose
                weights are all zero has a 0/0 loss (NaN). Runs on the engine loop (not the
                compiled one); validation data stay unweighted.
    record_steps  True: ``History.step_loss`` and ``History.step_weights_sq`` hold every
                step's batch loss and the sum of the squared weights its update started from
                (for scikit-learn's loss curve, whose batch losses carry an L2 term of the
                weights before each batch; the compiled loop sums them in its update pass).

    An optimizer with ``lr="auto"`` and/or ``momentum="auto"`` (``SGD(lr="auto")``): after
    the checks, ``inertia.tune(method="race")`` chooses them on the same data, epochs, batch
    size, validation data and seed (a number given for the other stays fixed), they are set
    on the optimizer, and ``History.tuned`` says what was chosen and at what cost.

    Everything is checked before the first step; a bad argument raises a one-line ValueError.
    A KeyboardInterrupt or SIGTERM takes effect at the end of the step it lands in (as
    ``Interrupted``, a KeyboardInterrupt), so the network and optimizer are never left
    half-updated.
    """
    if checkpoint is None and checkpoint_every is not None:
        raise ValueError("checkpoint_every applies to a run kept with checkpoint=PATH: give "
                         "checkpoint or drop checkpoint_every")
    checkpoint_every = 1 if checkpoint_every is None else checkpoint_every
    tuned, auto = None, list(getattr(optimizer, "auto", None) or ())
    if auto:                                    # SGD(lr="auto", ...): the race chooses first
        if sample_weight is not None:
            raise ValueError(f'{" and ".join(auto)}="auto" with sample_weight: the race trains '
                             "without weights; choose with inertia.tune on data that "
                             "reflects the weights, then fit with the chosen numbers")
        tuned = tune_auto(net, X, y, loss, optimizer, dict(
            epochs=epochs, batch_size=batch_size, shuffle=shuffle, seed=seed,
            schedule=schedule, validation_data=validation_data, progress=progress,
            lr_schedule=lr_schedule, momentum_schedule=momentum_schedule, compiled=compiled,
            on_divergence=on_divergence, checkpoint=checkpoint,
            checkpoint_every=checkpoint_every, early_stopping=early_stopping))
    plan = make_plan(net, X, y, loss, optimizer, epochs, batch_size, shuffle, seed, schedule,
                     validation_data, progress, lr_schedule, momentum_schedule, compiled,
                     on_divergence, checkpoint, checkpoint_every, early_stopping,
                     sample_weight=sample_weight, record_steps=record_steps)
    fingerprint = ckpt.fingerprint(net, optimizer, plan) if checkpoint is not None else None
    net.bind(optimizer)
    check = on_divergence != "continue"
    stepper = (CompiledLoop if plan.compiled else EngineSteps)(net, optimizer, plan, check)
    state = State(net, optimizer, plan, stepper.val_metrics)
    state.fingerprint, state.tuned = fingerprint, getattr(optimizer, "tuned", None)
    if early_stopping is not None:
        early_stopping.begin()
    if checkpoint is not None and os.path.exists(checkpoint):
        try:
            ckpt.restore(checkpoint, net, optimizer, plan, state)
        except ValueError:
            if auto:                            # refused: the optimizer as it was given
                optimizer.set(**{k: "auto" for k in auto})
            raise
    stepper.start()
    diverged = _loop(net, plan, state, stepper)
    if checkpoint is not None:
        ckpt.remove(checkpoint)
    if early_stopping is not None:
        _end_early_stopping(net, early_stopping, state)
    if diverged is not None:
        report(on_divergence, diverged, state.hist)
    net.e.synchronize()
    state.hist.tuned = tuned
    return state.hist


def _end_early_stopping(net, stopper, state):
    """The run has ended: the best weights back (``restore_best``), the History told."""
    e = net.e
    stopper.end(lambda w: e.copy(e.from_host(w.astype(net.dtype, copy=False)), net.flat))
    state.hist.stopped_epoch = stopper.stopped_epoch if state.stopped else None
    state.hist.best_epoch = stopper.best_epoch if stopper.best is not None else None


def _threads(net, plan):
    """One BLAS thread for small gemms on the engine loop (see ``engine.threads``)."""
    if plan.compiled or not hasattr(net.e, "threads"):
        return contextlib.nullcontext()
    flops = max(2.0 * plan.bs * a * b for a, b in zip(net.sizes[:-1], net.sizes[1:]))
    return net.e.threads(flops)


def _next_stop(plan, t):
    """The step a run of steps from t must stop at: the end of the segment, of the epoch
    on the engine loop, of the epochs between checkpoints."""
    ep = t // plan.per
    end = min(s for s in plan.seg_ends if s > ep)
    if plan.every is not None:
        end = min(end, (ep // plan.every + 1) * plan.every)
    if not plan.compiled:
        end = min(end, ep + 1)
    return end * plan.per


def _loop(net, plan, state, stepper):
    """The steps from state.t to the end; checkpoints; signals. Returns a Divergence or
    None; raises Interrupted (SIGINT) or re-sends SIGTERM after saving the run."""
    signals = Signals()
    last = [time.perf_counter()]

    def due():
        return signals.pending is not None or (
            plan.every_s is not None and time.perf_counter() - last[0] >= plan.every_s)

    state.bar = _bar(plan, state)
    try:
        with signals, _threads(net, plan):
            while state.t < plan.total_steps and signals.pending is None \
                    and not state.stopped:
                diverged = stepper.run(state, _next_stop(plan, state.t), due)
                if diverged is not None:
                    return diverged
                if _save_now(plan, state, signals, due):
                    ckpt.save(plan.checkpoint, net, state.opt, plan, state)
                    last[0] = time.perf_counter()
    finally:
        if state.bar is not None:
            state.bar.close()
    if signals.pending is not None:
        position = divmod(state.t, plan.per)
        signals.deliver()            # SIGTERM: the old handler (by default the process ends)
        raise Interrupted(plan.checkpoint, position, state.hist)
    return None


def _save_now(plan, state, signals, due):
    """Whether to checkpoint after this run of steps: on a signal, and (before the end)
    when the time has come or an epoch multiple of ``checkpoint_every`` is done."""
    if plan.checkpoint is None:
        return False
    if signals.pending is not None:
        return True
    if state.t >= plan.total_steps or state.stopped:
        return False
    return due() or plan.every is not None and state.t % (plan.every * plan.per) == 0


def _bar(plan, state):
    if not plan.progress:
        return None
    return progress_bar(plan.epochs, len(state.hist.loss))

