"""fit's plan: every argument checked before the first step, and what the loop needs to know
(the batches of an epoch, the segments, every scheduled value)."""

from __future__ import annotations

import copy
import math
import threading
from dataclasses import dataclass

import numpy as np

from ..ops import losses
from ..data import check_memory, check_seed as check_integer_seed
from ..network import all_finite, check_network
from ..optim.base import Optimizer


def _check_data(net, X, y, loss, name="X"):
    X = net.check_inputs(X, name)
    yname = "y" if name == "X" else name.replace("X", "y")
    y = np.asarray(y)
    if y.shape[:1] != X.shape[:1]:
        raise ValueError(f"{name} has {X.shape[0]} rows but {yname} has "
                         f"{y.shape[0] if y.ndim else 0}: pass one target per sample")
    if y.dtype == np.bool_:                    # bce targets as booleans: 0 and 1
        y = y.astype(net.dtype)
    if not np.issubdtype(y.dtype, np.number) or not all_finite(y):
        raise ValueError(f"{yname} contains NaN, inf or non-numbers: clean or drop those rows "
                         "first")
    real_in_dtype(y, net.dtype, yname)
    y = losses.prepare_targets(loss, y, net.n_outputs, net.dtype)
    return real_in_dtype(X, net.dtype, name), y


def real_in_dtype(a, dtype, name):
    """``a`` (finite numbers) as a C-contiguous array of ``dtype``, or a one-line ValueError
    when it holds complex numbers (their imaginary parts would be dropped) or a value beyond
    the dtype's range (it would train as inf, and read as a divergence)."""
    if np.iscomplexobj(a):
        raise ValueError(f"{name} holds complex numbers: pass real values")
    with np.errstate(over="ignore"):
        out = np.ascontiguousarray(a, dtype=dtype)
    if out.dtype != a.dtype and not all_finite(out):
        flat = out.reshape(out.shape[0], -1) if out.ndim else out.reshape(1, 1)
        i, j = np.argwhere(~np.isfinite(flat))[0]
        value = np.asarray(a).reshape(flat.shape)[i, j]
        raise ValueError(f"{name} holds {value:g} (row {i}, column {j}), beyond "
                         f"{np.dtype(dtype).name}'s range: rescale the data or use "
                         "dtype='float64'")
    return out


def segment_sets(schedule):
    """The hyperparameters each segment of a list ``schedule`` sets, in order ([] for None;
    malformed segments, which ``_check_schedule`` refuses, are skipped)."""
    if not isinstance(schedule, (list, tuple)):
        return []
    return [seg[1] for seg in schedule
            if isinstance(seg, (list, tuple)) and len(seg) == 2 and isinstance(seg[1], dict)]


def _check_schedule(opt, schedule):
    segs = []
    try:
        items = list(schedule)
    except TypeError:
        raise ValueError("schedule must be a list of (epochs, {'lr': ..., 'momentum': ..., "
                         "'weight_decay': ...}) segments") from None
    if not items:
        raise ValueError("schedule is empty: give at least one (epochs, {...}) segment")
    for k, seg in enumerate(items):
        if not (isinstance(seg, (tuple, list)) and len(seg) == 2 and isinstance(seg[1], dict)):
            raise ValueError(f"schedule segment {k} is {seg!r}: write (epochs, {{'lr': 0.1, "
                             "'momentum': 0.9}})")
        ep, hyper = seg
        if not isinstance(ep, (int, np.integer)) or isinstance(ep, bool) or ep < 1:
            raise ValueError(f"schedule segment {k}: epochs must be a positive integer, got "
                             f"{ep!r}")
        opt.check(**hyper)
        segs.append((int(ep), dict(hyper)))
    return segs


def _check_schedules_agree(segs, lr_schedule, momentum_schedule):
    """A one-line ValueError when a segment sets lr (momentum) that ``lr_schedule``
    (``momentum_schedule``) sets at every step: the segment's value would never be used."""
    for key, given in (("lr", lr_schedule), ("momentum", momentum_schedule)):
        if given is not None and any(key in hyper for _, hyper in segs):
            raise ValueError(f"a schedule segment sets {key} and {key}_schedule sets it at "
                             f"every step: drop {key} from the segments or drop "
                             f"{key}_schedule")


def _check_step_schedules(opt, lr_schedule, momentum_schedule):
    """Validate per-step schedules before training; return a function applying them."""
    if lr_schedule is None and momentum_schedule is None:
        return None
    for name, s in (("lr_schedule", lr_schedule), ("momentum_schedule", momentum_schedule)):
        if s is not None and not callable(s):
            raise ValueError(f"{name} must be a callable from step to value, such as "
                             "inertia.schedules.cosine(0.1, 1000)")
    if momentum_schedule is not None and "momentum" not in opt.HYPER:
        raise ValueError(f"{type(opt).__name__} has no momentum to schedule: use "
                         "momentum_schedule with SGD or QHM")
    t0 = opt.state.step if opt.state is not None else 0

    def changes(t):
        ch = {}
        if lr_schedule is not None:
            ch["lr"] = lr_schedule(t)
        if momentum_schedule is not None:
            ch["momentum"] = momentum_schedule(t)
        return ch

    try:
        opt.check(**changes(t0))
    except (ValueError, OverflowError) as ex:
        raise ValueError(f"the schedules give an impossible value at step {t0}: {ex}") from None

    def apply(opt):
        opt.set(**changes(opt.state.step))

    return apply


def _values(schedule, t, count, cache):
    """schedule(t), ..., schedule(t + count - 1) as a float64 array; ``cache`` None or a
    dict shared by plans made with the same schedule objects (a sweep's runs), so that each
    value is computed once (the arrays are read, never written)."""
    key = (id(schedule), t, count)
    if cache is not None and key in cache:
        return cache[key][1]
    values = np.empty(count, dtype=np.float64)
    for k in range(count):
        try:
            values[k] = schedule(int(t) + k)
        except OverflowError:              # Python's float ** past the range
            raise ValueError(f"the schedule {schedule!r} leaves the floating-point range at "
                             f"step {int(t) + k}: give it arguments that keep its values "
                             "finite") from None
    if cache is not None:
        cache[key] = (schedule, values)       # the schedule kept: its id stays its own
    return values


def _scheduled_values(opt, segs, per_epoch, lr_schedule, momentum_schedule, cache=None):
    """Every value the per-step schedules will give in this fit, checked before the first
    step (with each segment's hyperparameters): [(lr, momentum) arrays of each segment]."""
    t = opt.state.step if opt.state is not None else 0
    cur = {k: v for k, v in opt.config().items() if k in opt.HYPER}
    out = []
    for ep, hyper in segs:
        cur.update(hyper)
        h = opt.check(**cur)
        steps = t + np.arange(ep * per_epoch)
        count = steps.shape[0]
        lr = _values(lr_schedule, t, count, cache) if lr_schedule is not None \
            else np.full(steps.shape, float(h["lr"]))
        mu = _values(momentum_schedule, t, count, cache) if momentum_schedule is not None \
            else np.full(steps.shape, float(h.get("momentum", 0.0)))
        _check_values(opt, lr, mu, h, t)
        out.append((lr, mu))
        t += steps.shape[0]
    return out


def _check_values(opt, lr, mu, h, t0):
    """Raise the optimizer's own one-line error for the first impossible scheduled value."""
    ok = np.isfinite(lr) & (lr > 0) & np.isfinite(mu) & (mu >= 0) & (mu < 1)
    if h.get("nesterov", False):
        ok &= mu > 0
    if not ok.all():
        i = int(np.argmin(ok))
        changes = {k: v for k, v in h.items() if k in opt.HYPER}
        changes["lr"] = float(lr[i])
        if "momentum" in opt.HYPER:
            changes["momentum"] = float(mu[i])
        why = f"lr {lr[i]}, momentum {mu[i]}"
        try:
            opt.check(**changes)
        except ValueError as ex:
            why = str(ex)
        raise ValueError(f"the schedules give an impossible value at step {t0 + i}: {why}")


@dataclass
class Plan:
    """Everything ``fit`` decided before its first step.

    X, y        the training data as the network's dtype (host arrays, checked)
    w           None, or the sample weights: an (n, 1) host column of the network's dtype
    Xv, yv      the validation data or None
    per         steps per epoch; ``starts``/``counts`` (int64, per) each step's rows of the
                epoch's order
    segs        [(epochs, hyperparameters)]; ``seg_ends`` their cumulative epoch counts
    shuffle     whether each epoch draws a new order (mini-batch and online with shuffle)
    planned     None, or the per-step schedules' (lr, momentum) arrays, one entry a step of
                the whole run
    step0       the optimizer's step counter at the start (schedules count from it)
    compiled    whether the compiled loop runs the steps
    every       checkpoint every this many epochs (int) or None; ``every_s`` the same in
                seconds (float) or None
    early_stopping  None or the ``EarlyStopping`` consulted after every epoch
    record_steps  History records each step's loss and sum of squared weights
    """

    X: object
    y: object
    Xv: object
    yv: object
    loss: str
    n: int
    bs: int
    per: int
    starts: np.ndarray
    counts: np.ndarray
    segs: list
    seg_ends: list
    shuffle: bool
    seed: object
    step_schedules: object
    planned: object
    momentum_scheduled: bool
    step0: int
    compiled: bool
    schedule_given: bool
    on_divergence: str
    checkpoint: object
    every: object
    every_s: object
    progress: bool
    early_stopping: object = None
    w: object = None
    record_steps: bool = False

    @property
    def epochs(self):
        return self.seg_ends[-1] if self.seg_ends else 0

    @property
    def total_steps(self):
        return self.epochs * self.per


@dataclass(frozen=True)
class SeedAfter:
    """A ``fit`` seed that goes on with another fit's shuffling: the row orders a fit with
    ``seed`` draws after its first ``epochs`` epochs. ``fit(..., seed=3, epochs=10)`` then
    ``fit(..., seed=SeedAfter(3, 10), epochs=10)`` on the same network and optimizer is one
    ``fit(..., seed=3, epochs=20)``, bit for bit."""

    seed: int | None
    epochs: int

    def __post_init__(self):
        if not isinstance(self.epochs, (int, np.integer)) or self.epochs < 0:
            raise ValueError(f"SeedAfter: epochs must be a whole number >= 0, got "
                             f"{self.epochs!r}")


# (seed, rows, epochs) -> (generator state, row order) after that many shuffled epochs,
# kept by ``remember_order`` for the next fit that goes on from there (``SeedAfter``): the
# tuner's race continues its configurations chunk by chunk, and replaying the shuffles of
# 500,000 rows from the start took 5% of its time. The few latest are kept.
_AFTER = {}
AFTER_KEPT = 4
_AFTER_LOCK = threading.Lock()      # groups may train on several threads (Dask workers)


def _after_key(plan, epochs):
    seed = plan.seed
    base = seed.seed if isinstance(seed, SeedAfter) else seed
    if not plan.shuffle or isinstance(base, bool) or not isinstance(base, (int, np.integer)):
        return None                              # no shuffling, or an unseeded one
    return int(base), plan.n, (seed.epochs if isinstance(seed, SeedAfter) else 0) + epochs


def remember_order(plan, rng, order, epochs):
    """Keep the shuffling generator and the row order as they are after ``epochs`` epochs
    of ``plan`` (for ``first_order`` of a fit with the SeedAfter seed that goes on)."""
    key = _after_key(plan, epochs)
    if key is None:
        return
    kept = (copy.deepcopy(rng.bit_generator.state), order.copy())
    with _AFTER_LOCK:
        while len(_AFTER) >= AFTER_KEPT:
            _AFTER.pop(next(iter(_AFTER)))
        _AFTER[key] = kept


def check_batch_weights(plan, order, epoch):
    """A one-line ValueError when a batch of the epoch's row ``order`` holds only rows of
    sample weight 0: its loss, sum w l / sum w, would be 0 / 0. Called as each epoch's order
    is drawn (``State.begin_epoch``): before any step for the first epoch, and for every
    epoch of an unshuffled run. Free unless the zero weights could fill a batch."""
    w = plan.w
    if w is None or np.count_nonzero(w == 0) < plan.counts.min():
        return
    empty = np.flatnonzero(np.add.reduceat(w[order, 0], plan.starts) == 0)
    if empty.size:
        j = empty[0]
        raise ValueError(f"batch {j + 1} of epoch {epoch + 1} ({plan.counts[j]} rows) holds "
                         "only rows of sample weight 0, so its loss (a weighted mean) is "
                         "undefined: drop the rows of weight 0, or give a batch_size that "
                         f"leaves every batch, the last one too, more than the "
                         f"{np.count_nonzero(w == 0)} rows of weight 0")


def check_run_batch_weights(plan):
    """``check_batch_weights`` for every epoch of the run before any work, where the orders
    are known (no shuffling, or a seed given: they are replayed from it) and a batch of
    weight 0 is not vanishingly unlikely (an expected count over the run under 1e-9, where
    the per-epoch check stays the only one)."""
    w = plan.w
    if w is None:
        return
    zeros = int(np.count_nonzero(w == 0))
    if zeros < plan.counts.min():
        return
    if not plan.shuffle:
        return check_batch_weights(plan, np.arange(plan.n), 0)
    sizes, times = np.unique(plan.counts, return_counts=True)
    expected = plan.epochs * sum(int(k) * math.exp(_log_comb(zeros, int(c))
                                                   - _log_comb(plan.n, int(c)))
                                 for c, k in zip(sizes, times) if c <= zeros)
    if plan.seed is None or expected < 1e-9:
        return
    rng, order = first_order(plan)
    for e in range(plan.epochs):
        rng.shuffle(order)
        check_batch_weights(plan, order, e)


def _log_comb(n, k):
    return math.lgamma(n + 1) - math.lgamma(k + 1) - math.lgamma(n - k + 1)


def first_order(plan):
    """(the shuffling generator, the row order (n,)) before the plan's first epoch: the
    seed's generator and 0..n-1, shuffled once for each epoch a SeedAfter seed has run
    (an epoch's order is the previous one shuffled in place), or as ``remember_order``
    kept them."""
    seed = plan.seed
    rng = np.random.default_rng(seed.seed if isinstance(seed, SeedAfter) else seed)
    order = np.arange(plan.n)
    if isinstance(seed, SeedAfter) and plan.shuffle:
        with _AFTER_LOCK:
            kept = _AFTER.get(_after_key(plan, 0))
        if kept is not None:
            rng.bit_generator.state = copy.deepcopy(kept[0])
            return rng, kept[1].copy()
        for _ in range(seed.epochs):
            rng.shuffle(order)
    return rng, order

def set_planned(opt, plan, done):
    """After a compiled call with per-step schedules (``plan.planned``): the optimizer's lr,
    and its momentum where ``momentum_schedule`` is given, set to the values of the last of
    the run's first ``done`` kept steps (left as they are when none is kept)."""
    if plan.planned is None or done <= 0:
        return
    lr, mu = plan.planned
    opt.set(lr=float(lr[done - 1]), **({"momentum": float(mu[done - 1])}
                                       if plan.momentum_scheduled else {}))


def _check_epochs(opt, epochs, schedule):
    if schedule is not None:
        if epochs is not None:
            raise ValueError("give either epochs or a schedule, not both (a schedule's "
                             "segments say how many epochs each runs)")
        return _check_schedule(opt, schedule)
    if epochs is None:
        raise ValueError("epochs is missing: pass epochs=N or a schedule")
    if not isinstance(epochs, (int, np.integer)) or isinstance(epochs, bool) or epochs < 0:
        raise ValueError(f"epochs must be a non-negative integer, got {epochs!r}")
    return [(int(epochs), {})]


def _check_batch(batch_size, n):
    if batch_size is None:
        return n
    if not isinstance(batch_size, (int, np.integer)) or isinstance(batch_size, bool) \
            or batch_size < 1:
        raise ValueError(f"batch_size must be a positive integer or None, got {batch_size!r}")
    return min(int(batch_size), n)


def _checked(cache, check, net, *args):
    """``check(net, *args)`` (the data checks), kept in ``cache`` (None: not kept) for the
    plans of other networks of the same inputs, outputs and dtype on the same arrays (a
    group of runs: checking 500,000 rows once a run cost the tuner's race 3% of its time)."""
    if cache is None:
        return check(net, *args)
    key = (check.__name__, net.n_inputs, net.n_outputs, net.dtype,
           *(id(a) for a in args[:-1]), args[-1])
    if key not in cache:
        cache[key] = (check(net, *args), args)     # the arrays kept alive: their ids hold
    return cache[key][0]


def _check_validation(net, validation_data, loss):
    if validation_data is None:
        return None, None
    if not (isinstance(validation_data, (tuple, list)) and len(validation_data) == 2):
        raise ValueError("validation_data must be a pair (X_val, y_val)")
    return _check_data(net, validation_data[0], validation_data[1], loss, name="X_val")


def _check_compiled(net, opt, compiled, weighted=False):
    if compiled is not None and not isinstance(compiled, bool):
        raise ValueError(f"compiled must be None, True or False, got {compiled!r}")
    if compiled is False:
        return False
    from ..fused import runner as compiled_mod

    why = compiled_mod.unsupported(net, opt, weighted)
    if why is not None and compiled:
        raise ValueError(f"compiled=True cannot run here: {why}; leave compiled unset")
    return why is None


def _check_early_stopping(early_stopping, Xv, loss):
    from .early_stopping import EarlyStopping

    if early_stopping is None:
        return
    if not isinstance(early_stopping, EarlyStopping):
        raise ValueError(f"early_stopping must be an inertia.EarlyStopping(monitor=..., "
                         f"patience=...), got {type(early_stopping).__name__}")
    early_stopping.check(Xv is not None, loss)


def check_seed(seed):
    """A one-line ValueError unless ``seed`` is None, an integer >= 0 or a SeedAfter."""
    if not isinstance(seed, SeedAfter):
        check_integer_seed(seed)


# bytes a value of a History list takes (a Python float and its pointer), and a planned
# step's (lr, momentum) pair
_RECORD, _PLANNED = 32, 16


def _check_record_memory(segs, per, validation, step_schedules, record_steps):
    """Refuse, before any work, a run whose History (and per-step plan) the machine's memory
    cannot hold: epochs=10**9 grew the process until it was killed."""
    epochs = sum(ep for ep, _ in segs)
    per_step = _PLANNED * step_schedules + 2 * _RECORD * bool(record_steps)
    check_memory(epochs * ((2 + 2 * validation) * _RECORD + per * per_step),
                 f"the records of a run of {epochs} epochs")


def _check_in_dtype(opt, segs, planned, dtype):
    """Refuse a hyperparameter (given, set by a segment or scheduled) beyond the network's
    dtype: it would become inf in the compiled loop and every step NaN."""
    limit = float(np.finfo(dtype).max)
    given = [opt.config()] + [hyper for _, hyper in segs]
    values = [(k, v) for h in given for k, v in h.items()
              if isinstance(v, (float, int, np.floating)) and not isinstance(v, bool)]
    if planned is not None:
        values += [("lr", float(np.abs(planned[0]).max(initial=0.0)))]
    for k, v in values:
        if abs(v) > limit:
            raise ValueError(f"{k}={v:g} is beyond {np.dtype(dtype).name}'s range (largest "
                             f"{limit:.3g}): give a smaller {k}, or dtype float64")


def make_plan(net, X, y, loss, optimizer, epochs, batch_size, shuffle, seed, schedule,
              validation_data, progress, lr_schedule, momentum_schedule, compiled,
              on_divergence, checkpoint, checkpoint_every, early_stopping=None,
              sample_weight=None, record_steps=False, schedule_cache=None):
    """Check every argument of ``fit`` (one-line ValueErrors) and return its Plan.
    ``schedule_cache``: None, or a dict shared by the plans of many runs with the same
    data and ``lr_schedule`` / ``momentum_schedule`` objects (the data checked once for
    networks of one architecture, each step's value computed once)."""
    from . import checkpoint as ckpt
    from .divergence import check_policy

    if not isinstance(optimizer, Optimizer):
        raise ValueError(f"optimizer must be an inertia optimizer (inertia.SGD, ...), got "
                         f"{type(optimizer).__name__}")
    check_network(net, "fit")
    check_seed(seed)
    for name, flag in (("shuffle", shuffle), ("progress", progress),
                       ("record_steps", record_steps)):
        if not isinstance(flag, (bool, np.bool_)):
            raise ValueError(f"{name} must be True or False, got {flag!r}")
    losses.check(loss, net.output_activation)
    X, y = _checked(schedule_cache, _check_data, net, X, y, loss)
    n = X.shape[0]
    w = losses.check_sample_weight(sample_weight, n, net.dtype)
    segs = _check_epochs(optimizer, epochs, schedule)
    bs = _check_batch(batch_size, n)
    Xv, yv = _checked(schedule_cache, _check_validation, net, validation_data, loss)
    step_schedules = _check_step_schedules(optimizer, lr_schedule, momentum_schedule)
    _check_schedules_agree(segs, lr_schedule, momentum_schedule)
    check_policy(on_divergence)
    every, every_s = ckpt.check_args(checkpoint, checkpoint_every)
    use_compiled = _check_compiled(net, optimizer, compiled, w is not None)
    _check_early_stopping(early_stopping, Xv, loss)
    starts = np.arange(0, n, bs, dtype=np.int64)
    per = starts.shape[0]
    _check_record_memory(segs, per, Xv is not None, step_schedules is not None, record_steps)
    planned = None
    if step_schedules is not None:
        parts = _scheduled_values(optimizer, segs, per, lr_schedule, momentum_schedule,
                                  schedule_cache)
        planned = tuple(np.concatenate([p[i] for p in parts]) for i in range(2))
    _check_in_dtype(optimizer, segs, planned, net.dtype)
    plan = Plan(X=X, y=y, Xv=Xv, yv=yv, loss=loss, n=n, bs=bs, per=per, starts=starts,
                counts=np.minimum(bs, n - starts), segs=segs,
                seg_ends=list(np.cumsum([ep for ep, _ in segs]).tolist()),
                shuffle=bool(shuffle) and bs < n, seed=seed, step_schedules=step_schedules,
                planned=planned, momentum_scheduled=momentum_schedule is not None,
                step0=optimizer.state.step if optimizer.state is not None else 0,
                compiled=use_compiled, schedule_given=schedule is not None,
                on_divergence=on_divergence, checkpoint=checkpoint, every=every,
                every_s=every_s, progress=progress, early_stopping=early_stopping, w=w,
                record_steps=bool(record_steps))
    check_run_batch_weights(plan)
    return plan
