"""fit's loop: the position in the run, the epoch bookkeeping both ways of stepping share,
and the two ways of stepping (engine calls, the compiled loop) behind one ``run`` interface:

    run(state, t_end, due) -> None or a Divergence

runs the steps state.t .. t_end - 1 (fewer when ``due()`` says to stop at a step boundary:
a pending signal or checkpoint), records each finished epoch, and leaves the network and the
optimizer at a completed step. On divergence (NaN or infinite loss or parameters, checked
unless the policy is "continue") it leaves them at the last state whose loss was finite.
"""

from __future__ import annotations

import math
import signal
import sys
import threading
import time

import numpy as np

from .divergence import Divergence, Snapshot, finite_sum
from .early_stopping import CLASSIFIER_LOSSES, accuracy
from .history import History
from .plan import check_batch_weights, first_order, set_planned


# seconds before a progress bar shows: short runs show none
BAR_DELAY = 2.0


def progress_bar(total, initial=0, unit="epoch"):
    """The progress bar of a long run (fit's, sweep's; tqdm on stderr): shown only when
    stderr is a terminal, after BAR_DELAY seconds, removed when closed; None when there is
    nothing to count."""
    if total <= 0:
        return None
    from tqdm.auto import tqdm

    return tqdm(total=total, initial=initial, unit=unit,
                disable=None if sys.stderr.isatty() else True, delay=BAR_DELAY, leave=False,
                dynamic_ncols=True)


class State:
    """Where the run is: ``t`` the next step of the run (epoch t // per, step t % per),
    the shuffling generator, the current epoch's row order, the current epoch's step losses,
    the History so far, the clock, and whether early stopping ended the run (``stopped``)."""

    def __init__(self, net, opt, plan, val_metrics):
        self.net, self.opt, self.plan = net, opt, plan
        self.t = 0
        self.rng, self.order = first_order(plan)
        self.ep_losses = np.zeros(plan.per)
        self.hist = History()
        self.clock_offset = 0.0
        self.t0 = time.perf_counter()
        self.val_metrics = val_metrics
        self.bar = None
        self.fingerprint = None
        self.tuned = None              # the optimizer's TuneSummary (its "auto" values' choice)
        self.stopped = False

    def elapsed(self):
        return self.clock_offset + time.perf_counter() - self.t0

    def _weights(self):
        return np.array(self.net.e.to_host(self.net.flat), copy=True)

    def begin_epoch(self, e):
        """Before the first step of epoch e: the hyperparameters of the segments starting
        there, in order, and the epoch's row order."""
        plan = self.plan
        for (count, hyper), end in zip(plan.segs, plan.seg_ends):
            if end - count == e and hyper:
                self.opt.set(**hyper)
        if plan.shuffle:
            self.rng.shuffle(self.order)
        check_batch_weights(plan, self.order, e)

    def end_epoch(self, e, epoch_loss, when=None):
        """After the last step of epoch e: the History, early stopping, the progress bar."""
        h = self.hist
        h.loss.append(epoch_loss)
        logs = {"loss": epoch_loss}
        if self.plan.Xv is not None:
            logs.update(self.val_metrics())
            h.val_loss.append(logs["val_loss"])
            if "val_accuracy" in logs:
                h.val_accuracy.append(logs["val_accuracy"])
        h.time.append(self.elapsed() if when is None else when)
        stopper = self.plan.early_stopping
        if stopper is not None:
            if stopper.update(e, logs.get(stopper.monitor), self._weights):
                self.stopped = True
        if self.plan.schedule_given and (e + 1) in self.plan.seg_ends:
            h.segment_loss.append(epoch_loss)
        if self.bar is not None:
            self.bar.update(1)
            if self.bar.n % 50 == 0:
                self.bar.set_postfix(loss=f"{epoch_loss:.4g}", refresh=False)


class EngineSteps:
    """One engine call per primitive, as ``Network.train_step_`` makes them."""

    def __init__(self, net, opt, plan, check):
        e = self.e = net.e
        self.net, self.opt, self.plan = net, opt, plan
        X, y = plan.X, plan.y
        self.X, self.y = (X, y) if e.is_array(X) and e.is_array(y) else \
            (e.from_host(X), e.from_host(y))
        self.w = None if plan.w is None else (plan.w if e.is_array(plan.w) else
                                              e.from_host(plan.w))
        self.bufs = {m: net.buffers(m) for m in {plan.bs, plan.n - int(plan.starts[-1])}}
        self.full = plan.bs == plan.n
        # each step's rows as Python ints (a NumPy scalar costs more to index and convert)
        self.rows = [(lo, lo + m) for lo, m in zip(plan.starts.tolist(), plan.counts.tolist())]
        if self.full:
            self._load_full()
        self.Xv = self.yv = None
        if plan.Xv is not None:
            self.Xv, self.yv = e.from_host(plan.Xv), e.from_host(plan.yv)
        self.check = check
        self.snapshot = None
        # a step's arguments, looked up once (``_step`` runs every step)
        self._train, self._loss = net.train_step_, plan.loss
        self._schedules, self._weighted = plan.step_schedules, self.w is not None

    def _load_full(self):
        b = self.bufs[self.plan.n]
        self.e.copy(self.X, b.x)
        self.e.copy(self.y, b.y)
        if self.w is not None:
            self.e.copy(self.w, b.w)

    def start(self):
        """After any restore: the way back (``Snapshot``) starts from the state now."""
        if self.check:
            plan = self.plan
            same_steps = (self.full or not plan.shuffle) and len(plan.segs) == 1
            self.snapshot = Snapshot(self.net, self.opt, np.arange(plan.n),
                                     epoch_copies=not same_steps)

    def val_metrics(self):
        """{"val_loss": ..., and "val_accuracy" for a classification loss}."""
        e, net, plan = self.e, self.net, self.plan
        vb = net.buffers(self.Xv.shape[0])
        e.copy(self.Xv, vb.x)
        e.copy(self.yv, vb.y)
        net.forward_(vb)
        out = {"val_loss": float(e.loss(plan.loss, vb.z[-1], vb.a_out, vb.y))}
        if plan.loss in CLASSIFIER_LOSSES:
            out["val_accuracy"] = accuracy(plan.loss, e.to_host(vb.a_out), plan.yv)
        if self.full and vb is self.bufs[plan.n]:   # the training batch shares them
            self._load_full()
        return out

    def _batch(self, order, j):
        if self.full:
            return self.bufs[self.plan.n]
        lo, hi = self.rows[j]
        idx = order[lo:hi]
        b = self.bufs[hi - lo]
        self.e.take_rows(self.X, idx, b.x)
        self.e.take_rows(self.y, idx, b.y)
        if self.w is not None:
            self.e.take_rows(self.w, idx, b.w)
        return b

    def _weights_sq(self):
        """The sum of the squared weights (biases not counted), float64."""
        total = 0.0
        for W in self.net.W:
            w = np.asarray(self.e.to_host(W), dtype=np.float64).ravel()
            total += float(np.dot(w, w))
        return total

    def _step(self, b):
        if self._schedules:
            self._schedules(self.opt)
        return self._train(b, self._loss, self.opt, self._weighted)

    def _replay(self, t, order):
        """Step t again on the rows of ``order`` (the divergence snapshot's way back)."""
        self._step(self._batch(order, t % self.plan.per))

    def run(self, state, t_end, due):
        """The steps; with the divergence check, every loss is checked, and the parameters
        (a sum over all of them) before each copy, after each epoch and at the end: a
        non-finite one sends ``_search`` back to find the step a check after every step
        would have found."""
        plan, snap = self.plan, self.snapshot
        per, losses, batch, step = plan.per, state.ep_losses, self._batch, self._step
        record, isfinite = plan.record_steps, math.isfinite
        for t in range(state.t, t_end):
            ep, j = divmod(t, per)
            if j == 0:
                state.begin_epoch(ep)
            if snap is not None and snap.due(t, j):
                if not self._finite(t):
                    return self._search(state, t - 1, None)
                snap.save(t, state.order)
            b = batch(state.order, j)
            sq = self._weights_sq() if record else None
            try:
                value = step(b)
            except BaseException:
                if snap is not None:            # never leave a half-updated network
                    snap.back_to(t, self._replay)
                raise
            if snap is not None and not isfinite(value):
                return self._search(state, t, value)
            losses[j] = value
            if sq is not None:
                state.hist.step_loss.append(float(value))
                state.hist.step_weights_sq.append(sq)
            state.t = t + 1
            if j == per - 1:
                if snap is not None and not self._finite(t + 1):
                    return self._search(state, t, None)
                state.end_epoch(ep, float(losses.mean()))
                if state.stopped:
                    break
            if due():
                break
        if snap is not None and not self._finite(state.t):
            return self._search(state, state.t - 1, None)
        return None

    def _finite(self, t):
        """Whether the parameters after the steps before t are finite (checked once)."""
        snap = self.snapshot
        if snap.t[snap.cur] is None or snap.checked >= t:    # no copy yet: the start state
            return True
        if not finite_sum(self.e, self.net.flat):
            return False
        snap.checked = t
        return True

    def _search(self, state, last, value):
        """A step from the newest copy's to ``last`` diverged (the loss of ``last`` is
        ``value``, or the parameters after it are not finite): run them again from the
        copy, checking after each, and go back from the first that fails as that check goes
        back. Leaves state.t at it and returns its Divergence."""
        snap, per = self.snapshot, self.plan.per
        now = snap.hyperparameters()
        u, order = snap.restore(snap.cur)
        back = last                     # a step that does not fail again: back before it
        for u in range(u, last + 1):
            value = self._step(self._batch(order, u % per))
            if not math.isfinite(value):
                back = u - 1            # back to the last state with a finite loss
                break
            if not finite_sum(self.e, self.net.flat):
                back = u
                break
        snap.back_to(back, self._replay)
        self.opt.set(**now)
        set_planned(self.opt, self.plan, back)      # the last kept step's, as compiled
        state.t = u
        return Divergence(*divmod(u, per), float(value))


# seconds per compiled call: enough work to hide the call, little enough to show progress
# and to take signals and checkpoints promptly
CHUNK_SECONDS = 0.05


class CompiledLoop:
    """Runs of steps as single calls of the compiled loop (``inertia.fused``)."""

    def __init__(self, net, opt, plan, check):
        from ..fused import runner as compiled

        self.net, self.opt, self.plan, self.check = net, opt, plan, check
        self.steps = compiled.CompiledSteps(net, opt, plan.loss, plan.X, plan.y)
        self.chunk = plan.per           # steps in the next call, sized by measurement

    def start(self):
        self.steps.reset_backup()

    def val_metrics(self):
        """{"val_loss": ..., and "val_accuracy" for a classification loss}."""
        plan = self.plan
        out = {"val_loss": float(self.net.loss(plan.Xv, plan.yv, plan.loss))}
        if plan.loss in CLASSIFIER_LOSSES:
            out["val_accuracy"] = accuracy(plan.loss, self.net.predict(plan.Xv, raw=True),
                                           plan.yv)
        return out

    def _orders(self, state, t, t_end):
        """The rows of the epochs that steps t..t_end-1 touch, one epoch's order after
        another (new epochs shuffled here, in order), and each step's start in them."""
        plan = self.plan
        e0, j0 = divmod(t, plan.per)
        e1 = (t_end - 1) // plan.per
        parts = []
        for ep in range(e0, e1 + 1):
            if ep > e0 or j0 == 0:
                state.begin_epoch(ep)
            if plan.shuffle:
                parts.append(state.order.copy() if e1 > e0 else state.order)
        steps = np.arange(t, t_end)
        ep, j = np.divmod(steps, plan.per)
        starts = plan.starts[j] + (plan.n * (ep - e0) if plan.shuffle else 0)
        order = (np.concatenate(parts) if len(parts) > 1 else parts[0]) if plan.shuffle \
            else state.order
        return order, starts.astype(np.int64), plan.counts[j]

    def _record(self, state, t, out, c0, c1, weights_sq=None):
        """Step losses out (steps t.. of this call) into the epochs they belong to, the
        means of whole epochs in one call (the same numbers as one epoch's mean); with
        ``weights_sq`` (record_steps) the steps into History.step_loss / step_weights_sq."""
        per, S, pos = self.plan.per, out.shape[0], 0
        if weights_sq is not None:
            state.hist.step_loss.extend(out.tolist())
            state.hist.step_weights_sq.extend(weights_sq[:S].tolist())
        while pos < S:
            ep, j = divmod(t + pos, per)
            if j == 0 and S - pos >= per:
                k = (S - pos) // per
                block = out[pos:pos + k * per].reshape(k, per)
                means = block.mean(axis=1).tolist()
                state.ep_losses[:] = block[-1]
                for i in range(k):
                    when = state.clock_offset + c0 - state.t0 + \
                        (c1 - c0) * (pos + (i + 1) * per) / S
                    state.end_epoch(ep + i, means[i], when)
                pos += k * per
                continue
            m = min(per - j, S - pos)
            state.ep_losses[j:j + m] = out[pos:pos + m]
            pos += m
            if j + m == per:
                when = state.clock_offset + c0 - state.t0 + (c1 - c0) * pos / S
                state.end_epoch(ep, float(state.ep_losses.mean()), when)
        state.t = t + S

    def _end(self, state):
        """Where the next call ends: about CHUNK_SECONDS of steps, at most 8192 steps or
        epochs of a million rows in all, whole epochs where they fit, one epoch with
        validation data or early stopping."""
        plan = self.plan
        t = state.t
        steps = max(1, min(self.chunk, 8192, max(1, 1_000_000 // plan.n) * plan.per))
        epoch_end = (t // plan.per + 1) * plan.per
        if plan.Xv is not None or plan.early_stopping is not None:
            return epoch_end
        if t + steps <= epoch_end:
            return t + steps
        return t + steps - (t + steps) % plan.per

    def run(self, state, t_end, due):
        plan, opt = self.plan, self.opt
        t = state.t
        t_end = min(t_end, self._end(state))
        order, starts, counts = self._orders(state, t, t_end)
        lr, mu = opt.lr, getattr(opt, "momentum", 0.0)
        if plan.planned is not None:
            lr, mu = (a[t:t_end] for a in plan.planned)
        sq = np.empty(starts.shape[0]) if plan.record_steps else None
        c0 = time.perf_counter()
        out, stop, kept = self.steps.run(order, starts, counts, lr, mu, self.check, sq)
        c1 = time.perf_counter()
        set_planned(opt, plan, t + kept)
        if stop < out.shape[0]:
            self._record(state, t, out[:stop], c0, c1, sq)  # every finite loss, as the engine loop
            return Divergence(*divmod(t + stop, plan.per), float(out[stop]))
        self._record(state, t, out, c0, c1, sq)
        per_step = (c1 - c0) / out.shape[0]
        self.chunk = max(1, int(CHUNK_SECONDS / max(per_step, 1e-8)))
        return None


class Signals:
    """SIGINT and SIGTERM deferred to the end of the step they land in, for the duration of
    ``fit`` and only in the main thread (signal handlers can be set nowhere else); the old
    handlers come back afterwards. ``pending`` is the signal received, or None."""

    NAMES = ("SIGINT", "SIGTERM")

    def __init__(self):
        self.pending = None
        self.old = {}

    def __enter__(self):
        if threading.current_thread() is not threading.main_thread():
            return self
        for name in self.NAMES:
            num = getattr(signal, name, None)
            if num is None:
                continue
            old = signal.getsignal(num)
            if old in (signal.SIG_IGN, None):
                continue
            self.old[num] = old
            signal.signal(num, self._handler)
        return self

    def _handler(self, num, frame):
        self.pending = num

    def __exit__(self, *exc):
        for num, old in self.old.items():
            signal.signal(num, old)
        self.old = {}
        return False

    def deliver(self):
        """Send a pending SIGTERM again, to the old handler (by default the process ends)."""
        if self.pending is not None and self.pending != signal.SIGINT:
            signal.raise_signal(self.pending)
