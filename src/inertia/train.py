"""Fit loops: full batch, mini-batch and online training, schedules of segments, History."""

from __future__ import annotations

import contextlib
import sys
import time
from dataclasses import dataclass, field

import numpy as np

from . import losses
from .network import all_finite
from .optim.base import Optimizer


@dataclass
class History:
    """What a ``fit`` measured.

    loss          training loss per epoch: the mean of the epoch's batch losses, each taken
                  in the forward pass before that batch's update
    val_loss      validation loss after each epoch (empty without validation_data)
    time          wall time in seconds since the start of ``fit``, after each epoch
    segment_loss  with a schedule: the last-epoch loss of each segment
    """

    loss: list = field(default_factory=list)
    val_loss: list = field(default_factory=list)
    time: list = field(default_factory=list)
    segment_loss: list = field(default_factory=list)

    @property
    def epochs(self):
        return len(self.loss)


def _check_data(net, X, y, loss, name="X"):
    X = net.check_inputs(X, name)
    yname = "y" if name == "X" else name.replace("X", "y")
    y = np.asarray(y)
    if y.shape[:1] != X.shape[:1]:
        raise ValueError(f"{name} has {X.shape[0]} rows but {yname} has "
                         f"{y.shape[0] if y.ndim else 0}: pass one target per sample")
    if not np.issubdtype(y.dtype, np.number) or not all_finite(y):
        raise ValueError(f"{yname} contains NaN, inf or non-numbers: clean or drop those rows "
                         "first")
    y = losses.prepare_targets(loss, y, net.n_outputs, net.dtype)
    return np.ascontiguousarray(X, dtype=net.dtype), y


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

    opt.check(**changes(t0))

    def apply(opt):
        opt.set(**changes(opt.state.step))

    return apply


def fit(net, X, y, loss, optimizer, epochs=None, batch_size=None, shuffle=True, seed=None,
        schedule=None, validation_data=None, progress=True, lr_schedule=None,
        momentum_schedule=None, compiled=None):
    """Train ``net`` on (X, y) and return a History.

    loss        "mse", "quadratic", "bce" or "cross_entropy" (see ``inertia.losses``)
    optimizer   an ``inertia.SGD``; it keeps its state, so a second fit continues the first
    epochs      number of passes over the data (leave out when a schedule is given)
    batch_size  None: full batch; 1: online (one item per update); k: mini-batches of k, the
                last one smaller when k does not divide n
    shuffle     reshuffle the rows every epoch (mini-batch and online only), seeded by ``seed``
    schedule    [(epochs, {"lr": ..., "momentum": ..., "weight_decay": ...}), ...] run in order;
                the velocity carries across segments
    validation_data  (X_val, y_val): its loss is recorded after every epoch
    progress    show a progress bar on long runs in a terminal (never when piped)
    lr_schedule, momentum_schedule
                callables from the optimizer's step counter to a value (``inertia.schedules``),
                applied before every update; they share the optimizer's step count
    compiled    None: run whole epochs as one compiled call (``inertia.compiled``) where the
                engine, optimizer and network allow it; False: always the engine-call loop;
                True: the compiled loop or a ValueError saying why it cannot run

    Everything is checked before the first step; a bad argument raises a one-line ValueError.
    """
    if not isinstance(optimizer, Optimizer):
        raise ValueError(f"optimizer must be an inertia optimizer (inertia.SGD, ...), got "
                         f"{type(optimizer).__name__}")
    losses.check(loss, net.output_activation)
    X, y = _check_data(net, X, y, loss)
    n = X.shape[0]
    if schedule is not None:
        if epochs is not None:
            raise ValueError("give either epochs or a schedule, not both (a schedule's "
                             "segments say how many epochs each runs)")
        segs = _check_schedule(optimizer, schedule)
    else:
        if epochs is None:
            raise ValueError("epochs is missing: pass epochs=N or a schedule")
        if not isinstance(epochs, (int, np.integer)) or isinstance(epochs, bool) or epochs < 0:
            raise ValueError(f"epochs must be a non-negative integer, got {epochs!r}")
        segs = [(int(epochs), {})]
    if batch_size is None:
        bs = n
    elif not isinstance(batch_size, (int, np.integer)) or isinstance(batch_size, bool) \
            or batch_size < 1:
        raise ValueError(f"batch_size must be a positive integer or None, got {batch_size!r}")
    else:
        bs = min(int(batch_size), n)
    Xv = yv = None
    if validation_data is not None:
        if not (isinstance(validation_data, (tuple, list)) and len(validation_data) == 2):
            raise ValueError("validation_data must be a pair (X_val, y_val)")
        Xv, yv = _check_data(net, validation_data[0], validation_data[1], loss, name="X_val")
    step_schedules = _check_step_schedules(optimizer, lr_schedule, momentum_schedule)
    if compiled is not None and not isinstance(compiled, bool):
        raise ValueError(f"compiled must be None, True or False, got {compiled!r}")
    planned = None
    if step_schedules is not None:
        planned = _scheduled_values(optimizer, segs, -(-n // bs), lr_schedule,
                                    momentum_schedule)
    why = None
    if compiled is not False:
        from . import compiled as compiled_mod

        why = compiled_mod.unsupported(net, optimizer)
        if why is not None and compiled:
            raise ValueError(f"compiled=True cannot run here: {why}; leave compiled unset")
    net.bind(optimizer)
    runner = None
    if compiled is not False and why is None:
        runner = compiled_mod.CompiledSteps(net, optimizer, loss, X, y)

    e = net.e
    if runner is not None or e.is_array(X) and e.is_array(y):
        Xe, ye = X, y          # host arrays of the engine's kind already: no copy
    else:
        Xe, ye = e.from_host(X), e.from_host(y)
    full = bs == n
    rng = np.random.default_rng(seed)
    order = np.arange(n)
    starts = list(range(0, n, bs))
    bufs = {}
    for m in {bs, n - starts[-1]} if runner is None else ():
        bufs[m] = net.buffers(m)
    if full and runner is None:
        e.copy(Xe, bufs[n].x)
        e.copy(ye, bufs[n].y)
    if Xv is not None:
        Xve, yve = e.from_host(Xv), e.from_host(yv)

    total = sum(ep for ep, _ in segs)
    bar = None
    if progress and total > 0:
        from tqdm.auto import tqdm
        bar = tqdm(total=total, unit="epoch", disable=None if sys.stderr.isatty() else True,
                   delay=2.0, leave=False, dynamic_ncols=True)
    hist = History()
    flops = max(2.0 * bs * a * b for a, b in zip(net.sizes[:-1], net.sizes[1:]))
    threads = net.e.threads(flops) if hasattr(net.e, "threads") and runner is None \
        else contextlib.nullcontext()
    t0 = time.perf_counter()
    try:
        threads.__enter__()
        for k_seg, (ep_count, hyper) in enumerate(segs):
            if hyper:
                optimizer.set(**hyper)
            if runner is not None:
                _compiled_segment(runner, optimizer, ep_count, n, bs, shuffle, rng, order,
                                  planned[k_seg] if planned else None,
                                  momentum_schedule is not None, hist, t0, bar, Xv, yv, net,
                                  loss)
                if schedule is not None and ep_count:
                    hist.segment_loss.append(hist.loss[-1])
                continue
            for _ in range(ep_count):
                if full:
                    if step_schedules:
                        step_schedules(optimizer)
                    batch_loss = net.train_step_(bufs[n], loss, optimizer)
                    epoch_loss = batch_loss
                else:
                    if shuffle:
                        rng.shuffle(order)
                    acc = 0.0
                    for s in starts:
                        idx = order[s:s + bs]
                        b = bufs[idx.shape[0]]
                        e.take_rows(Xe, idx, b.x)
                        e.take_rows(ye, idx, b.y)
                        if step_schedules:
                            step_schedules(optimizer)
                        acc += net.train_step_(b, loss, optimizer)
                    epoch_loss = acc / len(starts)
                hist.loss.append(float(epoch_loss))
                if Xv is not None:
                    vb = net.buffers(Xv.shape[0])
                    e.copy(Xve, vb.x)
                    e.copy(yve, vb.y)
                    net.forward_(vb)
                    hist.val_loss.append(e.loss(loss, vb.z[-1], vb.a_out, vb.y))
                    if full and vb is bufs[n]:     # the training batch shares these buffers
                        e.copy(Xe, vb.x)
                        e.copy(ye, vb.y)
                hist.time.append(time.perf_counter() - t0)
                if bar is not None:
                    bar.update(1)
                    if bar.n % 50 == 0:
                        bar.set_postfix(loss=f"{epoch_loss:.4g}", refresh=False)
            if schedule is not None and ep_count:
                hist.segment_loss.append(hist.loss[-1])
    finally:
        threads.__exit__(None, None, None)
        if bar is not None:
            bar.close()
    e.synchronize()
    return hist


# epochs per compiled call: enough work to hide the call, few enough to show progress
_CHUNK_SECONDS = 0.05


def _compiled_segment(runner, opt, epochs, n, bs, shuffle, rng, order, planned,
                      momentum_scheduled, hist, t0, bar, Xv, yv, net, loss):
    """``epochs`` epochs on the compiled path (see ``inertia.compiled``), recording the History
    as the engine loop does: the same shuffles, the same per-step schedule values (``planned``:
    the segment's (lr, momentum) arrays, one entry a step, or None)."""
    starts1 = np.arange(0, n, bs, dtype=np.int64)
    counts1 = np.minimum(bs, n - starts1)
    per = starts1.shape[0]
    done = 0
    chunk = 1
    while done < epochs:
        k = min(chunk, epochs - done) if Xv is None else 1
        if shuffle and bs < n:
            orders = []
            for _ in range(k):
                rng.shuffle(order)
                orders.append(order.copy())
            run_order = np.concatenate(orders) if k > 1 else orders[0]
            starts = (starts1[None, :] + n * np.arange(k)[:, None]).reshape(-1)
        else:
            run_order = order
            starts = np.tile(starts1, k)
        counts = np.tile(counts1, k)
        lr, mu = opt.lr, getattr(opt, "momentum", 0.0)
        if planned is not None:
            lr, mu = (a[done * per:(done + k) * per] for a in planned)
        c0 = time.perf_counter()
        losses_ = runner.run(run_order, starts, counts, lr, mu)
        c1 = time.perf_counter()
        if np.ndim(lr):
            opt.set(lr=float(lr[-1]), **({"momentum": float(mu[-1])}
                                         if momentum_scheduled else {}))
        ep_loss = losses_.reshape(k, per).mean(axis=1)
        for j in range(k):
            hist.loss.append(float(ep_loss[j]))
            hist.time.append(c0 - t0 + (c1 - c0) * (j + 1) / k)
        if Xv is not None:
            hist.val_loss.append(float(net.loss(Xv, yv, loss)))
            hist.time[-1] = time.perf_counter() - t0
        done += k
        if bar is not None:
            bar.update(k)
            bar.set_postfix(loss=f"{hist.loss[-1]:.4g}", refresh=False)
        per_epoch = (c1 - c0) / k
        chunk = max(1, min(1000, int(_CHUNK_SECONDS / max(per_epoch, 1e-7)),
                           1_000_000 // n, 8192 // per))


def _scheduled_values(opt, segs, per_epoch, lr_schedule, momentum_schedule):
    """Every value the per-step schedules will give in this fit, checked before the first
    step (with each segment's hyperparameters): [(lr, momentum) arrays of each segment]."""
    t = opt.state.step if opt.state is not None else 0
    cur = {k: v for k, v in opt.config().items() if k in opt.HYPER}
    out = []
    for ep, hyper in segs:
        cur.update(hyper)
        h = opt.check(**cur)
        steps = t + np.arange(ep * per_epoch)
        lr = np.array([lr_schedule(int(i)) for i in steps], dtype=np.float64) \
            if lr_schedule is not None else np.full(steps.shape, float(h["lr"]))
        mu = np.array([momentum_schedule(int(i)) for i in steps], dtype=np.float64) \
            if momentum_schedule is not None else np.full(steps.shape,
                                                          float(h.get("momentum", 0.0)))
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
        opt.check(**changes)
        raise ValueError(f"the schedules give impossible values at step {t0 + i}: lr "
                         f"{lr[i]}, momentum {mu[i]}")
