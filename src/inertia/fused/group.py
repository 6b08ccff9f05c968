"""A group of runs (one sweep shard: the same data, batches, row order and starting
architecture, each run its own optimizer settings) trained together by ``runs.train_runs``,
one compiled call a block of epochs, each run ending exactly where its own ``fit`` would.

``train_group`` covers what every run's ``fit`` would run on the compiled loop
(``runner.unsupported`` is None), with ``epochs`` or a ``schedule`` (segments' settings set
at their first epoch, as ``fit`` does), per-step ``lr_schedule`` / ``momentum_schedule``
(each run's planned values as its own coefficient rows, one a step, made for several
epochs at a time as ``fit``'s calls make them for the steps they span), full,
mini-batch or online batches, shuffling, validation data and on_divergence "stop" or
"continue". It returns None (the caller runs the fits one by one) for anything else:
checkpoints, early stopping, on_divergence "raise", a group of one run, runs whose ``fit``
would not be compiled, runs of which some have per-step schedules and others not, or
per-step schedules whose rows would take more than ``MAX_ROW_BYTES``.
"""

from __future__ import annotations

import threading
import time

import numpy as np

from . import runner

# per-step schedules: each run's coefficient rows are made for about this many steps at a
# time (whole epochs, at least one, within a segment), so that short epochs (full batch)
# do not pay the rows' Python cost every epoch and long ones keep a table of one epoch
ROW_STEPS = 256

# per-step schedules: a group whose rows (at least one epoch's steps for every run) would
# take more than this trains as fits one by one (online batches of many rows and many runs:
# 64 runs of an online epoch of 100,000 rows would keep 1.2 GB of float32 rows)
MAX_ROW_BYTES = 256 * 2 ** 20

# a call of the kernel trains about this many seconds of epochs (whole epochs of a segment,
# without validation data or per-step schedules; at most MAX_BLOCK): the Python work of a
# call (counting steps in 64 optimizers, recording their epochs, forking the threads) took
# a quarter of a batch-64 sweep's time when every epoch was a call
CALL_SECONDS = 0.05
MAX_BLOCK = 64

# the runs are shared among SLOTS_PER_THREAD slots a thread (at most SLOTS), handed out one at
# a time to numba's threads (``runs.train_runs``): more slots than threads, so that a thread
# the system pauses holds up a share of the call, and few, so that each tile gathered serves
# many runs. W6's batch-64 sweep on two threads, ns a run-row: 4 slots 20.7, 8 21.5, 16
# 22.2, 32 23.1, 64 25.5 (one process, three rounds). A group of fewer than SLOT_RUNS runs a
# slot takes one slot a thread: its tiles then serve more runs each, and its slots stay
# even (6 runs on two threads: two slots of 3, not 1, 2, 1, 2): the race's later rungs of 6
# and 3 configurations on smooth-500k-b64 took the race from 3.25 to 3.08 plain fits of wall
# time (alternating runs), where one slot a thread for W6's 64 runs would cost it 4% at
# batch 64 and 10% at full batch. The numbers are the same on any count.
SLOTS_PER_THREAD = 2
SLOT_RUNS = 4
SLOTS = 64

_FIT_DEFAULTS = dict(epochs=None, batch_size=None, shuffle=True, seed=None, schedule=None,
                     validation_data=None, lr_schedule=None, momentum_schedule=None,
                     on_divergence="stop")


_RAN = set()                  # dtypes whose group kernel has run in this process
_TIMED = set()                # (dtype, on threads?) that have run once in this process
# seconds per run-row of recent calls each way (see _Group._ways), kept for the process by
# (dtype, layer sizes, batch size, lanes or not): the groups of one sweep's shards, and the
# tuner's many short groups, go on from what the earlier ones measured instead of timing
# both ways again (half of a group's first four calls on one thread)
_MEASURED = {}


def _plans(nets, opts, X, y, loss, plan):
    """Each run's fit Plan (every argument checked as fit checks it), or None when the group
    is not one ``train_group`` covers."""
    from ..training.plan import make_plan

    kw = {**_FIT_DEFAULTS, **plan}
    if set(kw) != set(_FIT_DEFAULTS) or len(nets) < 2:
        return None
    if kw["on_divergence"] not in ("stop", "continue"):
        return None
    plans, cache = [], {}
    for net, opt in zip(nets, opts):
        p = make_plan(net, X, y, loss, opt, kw["epochs"], kw["batch_size"], kw["shuffle"],
                      kw["seed"], kw["schedule"], kw["validation_data"], False,
                      kw["lr_schedule"], kw["momentum_schedule"], None, kw["on_divergence"],
                      None, 1, None, schedule_cache=cache)
        if not p.compiled:
            return None
        plans.append(p)
    if len({(p.planned is None, p.momentum_scheduled) for p in plans}) > 1:
        return None                 # some runs scheduled per step, others not
    if plans[0].planned is not None and _row_bytes(nets, plans[0]) > MAX_ROW_BYTES:
        return None                 # the fits one by one make their rows call by call
    return plans


def _row_bytes(nets, plan):
    """The bytes of the per-step coefficient rows ``_Group.scheduled`` keeps (R runs x at
    least one epoch's steps x 2 L x 8)."""
    S = plan.starts.shape[0]
    K = S * max(1, ROW_STEPS // S)
    return len(nets) * K * 2 * len(nets[0].W) * 8 * np.dtype(nets[0].dtype).itemsize


class _Group:
    """The stacked (R, p) parameters, velocities and one-step-back copies of the runs, the
    per-run ``CompiledSteps`` (each the owner of its network's P and optimizer's V, its
    coefficient rows and step counters) and the shared tile scratch."""

    def __init__(self, nets, opts, plan0):
        from . import lanes, runs, tiles

        for net, opt in zip(nets, opts):
            net.bind(opt)
        self.steps = [runner.CompiledSteps(n, o, plan0.loss, plan0.X, plan0.y)
                      for n, o in zip(nets, opts)]
        s0 = self.steps[0]
        R, p, C = len(nets), s0.P.shape[0], runner.CHUNKS
        dt = s0.P.dtype
        self.P = np.stack([s.P for s in self.steps])
        self.V = np.stack([s.V for s in self.steps])
        self.Pb, self.Vb = self.P.copy(), self.V.copy()
        self.G = np.zeros_like(self.P)
        self.params = (self.P, self.V, self.G, self.Pb, self.Vb)
        per = SLOTS_PER_THREAD if R >= SLOT_RUNS * SLOTS_PER_THREAD * s0.threads else 1
        ns = min(R, SLOTS, per * s0.threads)
        T = tiles.TILE
        self.scratch = (np.zeros((C, R, p), dtype=dt),
                        np.zeros((ns, s0.Zs.shape[1]), dtype=dt),
                        np.zeros((ns, s0.Ds.shape[1]), dtype=dt),
                        np.zeros((ns, T * s0.sizes[0]), dtype=dt),
                        np.zeros((ns, T * s0.sizes[-1]), dtype=dt),
                        np.zeros((ns, 1), dtype=dt), np.zeros((C, R)))
        self.network = s0.network
        self.alive = np.ones(R, dtype=np.uint8)
        self.threads = s0.threads
        self.kernel = runs.train_runs
        if lanes.applies(dt, R):       # eight runs in the vector lanes
            ns = min(R // lanes.LANES, SLOTS, SLOTS_PER_THREAD * s0.threads)
            self.scratch += lanes.lane_scratch(R, p, s0.sizes, self.network[1], ns, dt)
            self.kernel = lanes.train_lanes
        self._coef_keys, self._coef = None, None
        # per-step schedules: the rows (R, K, 2 L, 8) of the epochs [e0, e1), kept between
        # calls, and (e0, e1)
        self._rows, self._block = None, (0, 0)
        key = (dt.name, tuple(int(k) for k in s0.sizes), int(plan0.bs),
               self.kernel is lanes.train_lanes)
        self._seconds = _MEASURED.setdefault(key, {False: [], True: [], "calls": 0})

    def _coefficients(self, counts):
        """(coef (R, K, 2 L, 8), kinds (S,)): every run's coefficient rows for steps of sizes
        ``counts`` (``CompiledSteps.rows``), made again only when some run's settings or
        state scalars have changed since the last call (the calls' ``counts`` are one
        epoch's repeated, so only the number of steps changes, and with it kinds, the same
        for every run)."""
        keys = []
        for s in self.steps:
            meta = {k: v for k, v in s.opt.state_meta().items() if k != "step"}
            keys.append((s.opt.lr, getattr(s.opt, "momentum", 0.0), repr(s.opt.config()),
                         repr(meta)))
        if keys != self._coef_keys:
            coefs, kinds = [], None
            for s in self.steps:
                coef, kinds = s.rows(counts, s.opt.lr, getattr(s.opt, "momentum", 0.0))
                coefs.append(coef)
            self._coef = (np.ascontiguousarray(np.stack(coefs)), kinds)
            self._coef_keys = keys
        elif self._coef[1].shape[0] != counts.shape[0]:
            self._coef = (self._coef[0], runner.constant_kinds(counts))
        return self._coef

    def scheduled(self, counts, plans, e):
        """(coef (R, K, 2 L, 8), kinds (S,)) of epoch e with per-step schedules: each live
        run's rows of its planned (lr, momentum) values, one a step, made from its state at
        the first epoch of a block of whole epochs (about ``ROW_STEPS`` steps, not past the
        segment's end, where ``fit``'s calls stop too) as one call spanning them makes them;
        kinds = the epoch's rows in the block. A stopped run's rows are left as they were."""
        S = counts.shape[0]
        e0, e1 = self._block
        if not e0 <= e < e1:
            p0 = plans[0]
            e0 = e
            e1 = min(min(end for end in p0.seg_ends if end > e), e + max(1, ROW_STEPS // S))
            if self._rows is None:
                s0 = self.steps[0]
                K = S * max(1, ROW_STEPS // S)
                self._rows = np.empty((len(self.steps), K, 2 * len(s0.net.W), s0.k.N_COEF),
                                      dtype=s0.P.dtype)
            block = np.tile(counts, e1 - e0)
            lo, hi = e0 * S, e1 * S
            for r, s in enumerate(self.steps):
                if self.alive[r]:
                    lr, mu = plans[r].planned
                    s.rows(block, lr[lo:hi], mu[lo:hi], out=self._rows[r, :hi - lo])
            self._block = (e0, e1)
        return self._rows, np.arange((e - e0) * S, (e - e0 + 1) * S, dtype=np.int64)

    def _ways(self, S, live):
        """[(first step, end, on threads?)] for this call, chosen by measurement
        (``runner.measured_ways``, the times being a run-row's), every eighth call's first
        sixteenth of the steps run the other way to check the choice (the calls are blocks
        of about 0.05 s: a check every 0.4 s or so; every fourth call's first eighth cost
        W6's batch-64 sweep 3% more, measured alternating in one process).
        Both ways give the same numbers."""
        if self.threads < 2 or live < 2:
            return [(0, S, False)]
        return runner.measured_ways(self._seconds, S, max(1, S // 16) if S > 1 else 0,
                                    every=8)

    def measured(self):
        """Whether both ways have been timed (``runner.measured_ways``'s first calls: one
        epoch each, not a block)."""
        return self.threads < 2 or min(len(self._seconds[w]) for w in (False, True)) >= 2

    def _kernel(self, data, plan, out, check, stops, parallel):
        """One kernel call on one thread or on ``self.threads``, timed for ``_ways`` (the
        first call each way in this process compiles or loads: not timed)."""
        import numba

        from . import lanes

        if parallel:
            old_threads = numba.get_num_threads()
            numba.set_num_threads(self.threads)
            old_chunk = numba.set_parallel_chunksize(1)
        live = int(self.alive.sum())
        t0 = time.perf_counter()
        try:
            self.kernel(data, plan, self.network, self.params, self.scratch, out, parallel,
                        check, self.alive, stops)
            if self.kernel is lanes.train_lanes:    # compiled for these arrays' types now
                self.kernel = lanes.compiled
        finally:
            if parallel:
                numba.set_parallel_chunksize(old_chunk)
                numba.set_num_threads(old_threads)
        seconds = time.perf_counter() - t0
        way = (data[0].dtype, parallel)
        if way in _TIMED:
            rec = self._seconds[parallel]
            rec.append(seconds / max(1, live * int(plan[1].sum())))
            del rec[:-5]
        _TIMED.add(way)
        if parallel and not runner._POOL:     # numba's threads have started (see runner)
            runner._POOL.append(True)

    def call(self, X, y, order, starts, counts, check, rows=None):
        """The steps (starts, counts) of every live run, one or more epochs: (out (R, S),
        stops (R,), live before the call).
        ``rows``: None (the rows of the optimizers' constant settings) or (coef, kinds) of
        per-step schedules (``scheduled``)."""
        R, S = len(self.steps), starts.shape[0]
        live = self.alive.copy()
        coef, kinds = self._coefficients(counts) if rows is None else rows
        out = np.full((R, S), np.nan)
        stops = np.full(R, S, dtype=np.int64)
        notice = None
        if X.dtype not in _RAN:                    # numba compiles (or loads) on the first call
            notice = threading.Timer(1.0, runner._compiling_notice, (X.dtype.name,))
            notice.daemon = True
            notice.start()
        try:
            for lo, hi, parallel in self._ways(S, int(live.sum())):
                part = out if hi - lo == S else np.full((R, hi - lo), np.nan)
                stop = np.empty(R, dtype=np.int64)
                self._kernel((X, y, order), (starts[lo:hi], counts[lo:hi], kinds[lo:hi], coef),
                             part, check, stop, parallel)
                if part is not out:
                    out[:, lo:hi] = part
                ended = stop < hi - lo
                stops[ended] = lo + stop[ended]
        finally:
            if notice is not None:
                notice.cancel()
        _RAN.add(X.dtype)
        for r, s in enumerate(self.steps):
            if live[r]:
                s.P[:] = self.P[r]
                s.V[:] = self.V[r]
        return out, stops, live


def _advance(step, out, stop, S, check, values=None):
    """Count the run's kept steps in its optimizer as ``CompiledSteps.run`` does (with the
    epoch's per-step (lr, momentum) arrays ``values`` where given, else the optimizer's
    settings); returns the kept steps (S when the run did not diverge)."""
    opt = step.opt
    lr, mu = values if values is not None else (opt.lr, getattr(opt, "momentum", 0.0))
    kept = S if not check or stop == S else stop - (not np.isfinite(out[stop]))
    step._advance(kept, lr, mu)
    return kept


def _epoch_values(plans, e, alive):
    """None without per-step schedules, else each run's (lr, momentum) arrays of epoch e
    (views of its plan's; None for a run that has stopped)."""
    if plans[0].planned is None:
        return None
    per = plans[0].per
    return [tuple(a[e * per:(e + 1) * per] for a in p.planned) if alive[r] else None
            for r, p in enumerate(plans)]


def _end_epoch(hist, net, plan, e, loss, when):
    """fit's record of epoch e: its mean loss, the validation loss (and accuracy), the time
    ``when`` it ended (seconds since the start)."""
    from ..training.early_stopping import CLASSIFIER_LOSSES, accuracy

    loss = float(loss)
    hist.loss.append(loss)
    if plan.Xv is not None:
        hist.val_loss.append(float(net.loss(plan.Xv, plan.yv, plan.loss)))
        if plan.loss in CLASSIFIER_LOSSES:
            hist.val_accuracy.append(accuracy(plan.loss, net.predict(plan.Xv, raw=True),
                                              plan.yv))
    hist.time.append(when)
    if plan.schedule_given and (e + 1) in plan.seg_ends:
        hist.segment_loss.append(loss)


def _block_end(p0, e, per_epoch):
    """The end of the block of epochs [e, end) one kernel call trains: about
    ``CALL_SECONDS`` at ``per_epoch`` seconds an epoch (None before the first call: one
    epoch), within e's segment (its settings are set at its first epoch). One epoch a call
    with validation data (its loss is taken at every epoch's end) or per-step schedules."""
    if per_epoch is None or p0.Xv is not None or p0.planned is not None:
        return e + 1
    seg_end = min(end for end in p0.seg_ends if end > e)
    k = int(CALL_SECONDS / max(per_epoch, 1e-9))
    return min(seg_end, e + max(1, min(k, MAX_BLOCK)))


def _block(p0, rng, order, e0, e1):
    """(order, starts, counts) of epochs [e0, e1), each shuffled in turn as fit shuffles
    them (its row order after the previous epoch's, in place), one after another."""
    E = e1 - e0
    starts = p0.starts.astype(np.int64)
    counts = np.tile(p0.counts.astype(np.int64), E)
    if not p0.shuffle:
        return order, np.tile(starts, E), counts
    if E == 1:
        rng.shuffle(order)
        return order, starts, counts
    block = np.empty(E * p0.n, dtype=order.dtype)
    for i in range(E):
        rng.shuffle(order)
        block[i * p0.n:(i + 1) * p0.n] = order
    return block, (starts[None, :] + p0.n * np.arange(E)[:, None]).ravel(), counts


def _record(r, group, hists, nets, plans, block, times):
    """Run r's epochs of the call: its kept steps counted in its optimizer, each whole
    epoch recorded as fit records it (the times ``times`` spread over the call), a
    divergence noted. Returns the run-epochs done (a run that stops counts its remaining
    epochs as done)."""
    from ..training import Divergence
    from ..training.plan import set_planned

    e0, e1, out, means, stop, values, check = block
    p0 = plans[0]
    S = p0.starts.shape[0]
    kept = _advance(group.steps[r], out, stop, out.shape[0], check, values)
    set_planned(group.steps[r].opt, plans[r], e0 * S + kept)
    whole = e1 - e0 if kept == out.shape[0] else stop // S
    for i in range(whole):
        _end_epoch(hists[r], nets[r], plans[r], e0 + i, means[i], times[i])
    if whole < e1 - e0:
        hists[r].diverged = Divergence(e0 + whole, stop - whole * S, float(out[stop]))
        return p0.epochs - e0
    return whole


def train_group(nets, opts, X, y, loss, plan, tick=None):
    """Train the runs (nets[r], opts[r]) together with ``fit``'s keyword arguments ``plan``
    (see ``sweeps.runs._train_group``). Returns their Histories (``diverged`` set where a
    run stopped), or None, having done nothing, for a group this path does not cover (the
    module's docstring). ``tick``: None or called after every call with the run-epochs
    done in it (a run that stops counts its remaining epochs as done). A call trains a
    block of epochs (``_block_end``)."""
    from ..training import History
    from ..training.plan import first_order, remember_order

    plans = _plans(nets, opts, X, y, loss, plan)
    if plans is None:
        return None
    p0 = plans[0]
    group = _Group(nets, opts, p0)
    check = p0.on_divergence != "continue"
    hists = [History() for _ in nets]
    rng, order = first_order(p0)
    t0 = time.perf_counter()
    e, per_epoch = 0, None
    while e < p0.epochs and group.alive.any():
        e1 = _block_end(p0, e, per_epoch if group.measured() else None)
        for (count, hyper), end in zip(p0.segs, p0.seg_ends):
            if end - count == e and hyper:
                for r, opt in enumerate(opts):
                    if group.alive[r]:
                        opt.set(**hyper)
        block_order, starts, counts = _block(p0, rng, order, e, e1)
        values = _epoch_values(plans, e, group.alive)
        rows = None if values is None else group.scheduled(counts, plans, e)
        c0 = time.perf_counter()
        out, stops, live = group.call(p0.X, p0.y, block_order, starts, counts, check, rows)
        c1 = time.perf_counter()
        per_epoch = (c1 - c0) / (e1 - e)
        times = [c0 - t0 + (c1 - c0) * (i + 1) / (e1 - e) for i in range(e1 - e)]
        done = 0
        means = out.reshape(out.shape[0], e1 - e, -1).mean(axis=2)   # each epoch's loss
        for r in np.flatnonzero(live):
            block = (e, e1, out[r], means[r], int(stops[r]),
                     None if values is None else values[r], check)
            done += _record(r, group, hists, nets, plans, block, times)
        if tick is not None:
            tick(done)
        e = e1
    if e == p0.epochs:
        remember_order(p0, rng, order, e)
    return hists
