"""The fused loop's driver: whole training steps in one numba call (``fused/tiles.py``).

Used by ``fit`` for the NumPy engine when the optimizer has a closed-form update
(``opt.closed_form()``: SGD in every convention, QHM) and the network is small enough that a
step is dominated by call overhead and skinny memory-bound gemms rather than by large gemms
(which BLAS does better). ``fit(..., compiled=False)`` keeps the engine-call loop.
"""

from __future__ import annotations

import os
import sys
import threading
import time

import numpy as np

# a large batch is cut into this many chunks of whole tiles, summed in order: the same
# numbers whatever the number of threads
CHUNKS = 8

# a network is "small" when its widest layer has at most this many units: above it the
# engine's BLAS gemms win (W4's 1000-500-1 runs faster on sgemm)
MAX_WIDTH = 256


_FORKED = []      # set in a child made by fork(): numba's OpenMP threads do not survive it


def _after_fork():
    if _POOL:     # the parent has started numba's threads
        _FORKED.append(True)


os.register_at_fork(after_in_child=_after_fork)


def threads():
    """Threads a large batch may be shared among: INERTIA_THREADS (at most numba's thread
    count, the machine's cores), else numba's current count; 1 in a process made by fork()
    (GNU OpenMP, numba's threading layer here, terminates a forked child of a process that
    used it as soon as the child starts threads)."""
    want = os.environ.get("INERTIA_THREADS")
    if want:
        try:
            n = int(want)
        except ValueError:
            raise ValueError(f"INERTIA_THREADS must be a positive integer, got {want!r}") \
                from None
        if n < 1:
            raise ValueError(f"INERTIA_THREADS must be a positive integer, got {want!r}")
    if _FORKED:       # GNU OpenMP stops a forked child that starts threads its parent had
        return 1
    import numba

    # get_num_threads also starts numba's threading layer: a kernel loaded from numba's cache
    # (not compiled in this process) can need it started before its first call, else the
    # process dies with a segmentation fault
    current = int(numba.get_num_threads())
    return min(n, int(numba.config.NUMBA_NUM_THREADS)) if want else current


def unsupported(net, opt, weighted=False):
    """Why the compiled path cannot run this network and optimizer (None: it can);
    ``weighted``: the run has sample weights."""
    if weighted:
        return "the compiled loop takes no sample_weight yet"
    if net.e.name != "numpy":
        return f"the {net.e.name} engine has its own path"
    if opt.closed_form() is None:
        return f"{type(opt).__name__} has no closed-form update"
    if max(net.sizes) > MAX_WIDTH:
        return f"layers wider than {MAX_WIDTH} units run faster on BLAS"
    try:
        from . import tiles  # noqa: F401
    except ImportError:
        return "numba is not installed"
    return None


def _flat(arrays):
    """The 1-D array that ``arrays`` are consecutive views of, in order, or None."""
    base = arrays[0].base if arrays else None
    if not isinstance(base, np.ndarray) or base.ndim != 1 or not base.flags.c_contiguous:
        return None
    ptr = base.__array_interface__["data"][0]
    for a in arrays:
        if a.base is not base or not a.flags.c_contiguous \
                or a.__array_interface__["data"][0] != ptr:
            return None
        ptr += a.nbytes
    return base if ptr == base.__array_interface__["data"][0] + base.nbytes else None


_RAN = set()      # dtypes whose kernel has run in this process
_SPEED = {}       # (sizes, dtype, rows, threads) -> the measured speed of each way
_POOL = []        # whether numba's thread pool has started in this process
_ROWS = {}        # the coefficient rows of constant hyperparameters (see CompiledSteps.run)


def _rule_identity(opt):
    """What decides the coefficient rows beyond ``opt.config()``: the convention's flags
    (config() names the convention only, and a custom record may reuse a name) and the
    closed form's maker."""
    conv = getattr(opt, "convention", None)
    flags = conv.flags() if conv is not None and hasattr(conv, "flags") else None
    return repr(flags), getattr(opt.closed_form().coefficients, "__qualname__", "")


def _compiling_notice(dtype):
    if sys.stderr.isatty():
        print(f"inertia: compiling the {dtype} training loop (once: numba caches it on disk, "
              "about 20 s)...", file=sys.stderr, flush=True)


def measured_ways(rec, S, recheck, every=4):
    """[(first step, end, on threads?)] for a call of S steps, from ``rec`` = {True: [...],
    False: [...], "calls": n}, the last times a unit of work on threads and on one: the
    first calls try both ways, each its first ``recheck`` steps on one thread and the rest
    on threads (a call of no more than ``recheck`` steps one way, the ways taking turns; not
    whole calls on one thread: docs/ARCHITECTURE.md); then the way with the best time runs
    the call (other work only ever slows a call down), and every ``every``-th call its first
    ``recheck`` steps (0: none) run the other way, so that a busy machine falls back to one
    thread within a few calls and comes back when it is free. Counts the call in ``rec``."""
    rec["calls"] += 1
    par, ser = rec[True], rec[False]
    if len(par) < 2 or len(ser) < 2:
        if 0 < recheck < S:
            return [(0, recheck, False), (recheck, S, True)]
        return [(0, S, len(par) <= len(ser))]
    best = min(par) <= min(ser)
    if rec["calls"] % every == 0 and recheck > 0:
        return [(0, recheck, not best)] + ([(recheck, S, best)] if recheck < S else [])
    return [(0, S, best)]


def _coef(w, b, L, dtype, out=None):
    """The (rows, 2 L, 8) table of the kernel: weights' and biases' rows per layer (written
    into ``out`` when given, a C-contiguous array of that shape and dtype)."""
    coef = np.empty((w.shape[0], 2 * L, w.shape[-1]), dtype=dtype) if out is None else out
    coef[:, 0::2] = w[:, None, :]
    coef[:, 1::2] = b[:, None, :]
    return coef


def constant_kinds(counts):
    """Each step's row (kinds (S,)) in the table of constant hyperparameters that
    ``coefficient_rows`` makes for steps of sizes ``counts``: 0 the first step, 1 a full
    batch, 2 a smaller (last) one."""
    kinds = np.where(counts == counts.max(), 1, 2).astype(np.int64)
    kinds[0] = 0
    return kinds


def coefficient_rows(opt, rule_id, dtype, L, counts, lr, mu, out=None):
    """(coef, kinds): the coefficient table (K, 2 L, 8) of ``opt``'s closed form
    (``rule.Step.table``, weights' and biases' rows of each of the L layers) for steps of
    sizes ``counts`` from the optimizer's state now, and each step's row in it (kinds (S,)).
    ``rule_id``: ``_rule_identity(opt)``, part of the cache's key; ``dtype`` the network's.
    Read by the compiled loop (``CompiledSteps``) and the torch engine's sweep group."""
    form = opt.closed_form()
    S = counts.shape[0]
    if np.ndim(lr) == 0 and np.ndim(mu) == 0:
        # constant hyperparameters: row 0 the first step, 1 the later full batches,
        # 2 a later smaller (last) batch; the rows depend on the optimizer's settings and
        # its state's scalars only, so they are made once for a run of equal calls
        full = int(counts.max())
        last = int(counts.min())
        meta = {k: v for k, v in opt.state_meta().items() if k != "step"}
        key = (lr, mu, int(counts[0]), full, last, repr(opt.config()), repr(meta))
        key += (type(opt).__name__, rule_id, np.dtype(dtype).name, L)
        hit = _ROWS.get(key)
        if hit is None:
            w, b = form.coefficients(np.full(2, lr), np.full(2, mu),
                                     np.array([counts[0], full]))
            w3, b3 = form.coefficients(np.full(2, lr), np.full(2, mu), np.array([last, last]))
            coef = _coef(np.concatenate([w, w3[1:]]), np.concatenate([b, b3[1:]]), L, dtype)
            if len(_ROWS) > 64:
                _ROWS.clear()
            hit = _ROWS[key] = coef
        coef = hit
        kinds = constant_kinds(counts)
    else:
        lr = np.broadcast_to(np.asarray(lr, dtype=np.float64), (S,))
        mu = np.broadcast_to(np.asarray(mu, dtype=np.float64), (S,))
        coef = _coef(*form.coefficients(lr, mu, counts), L, dtype, out)
        kinds = np.arange(S, dtype=np.int64)
    return coef, kinds


def advance_counters(opt, meta_back, kept, lr, mu):
    """Count ``kept`` steps in ``opt`` (lr, mu one value or one a step) and return the
    counters from before the last one (the new ``meta_back``), kept for a divergence found in
    the next step; ``kept`` = -1 puts back ``meta_back`` (the state before the previous
    call's last step) and returns it."""
    if kept < 0:
        for name, value in meta_back.items():
            setattr(opt.state, name, value)
        return meta_back

    def part(a, lo, hi):
        return a[lo:hi] if np.ndim(a) else a

    if kept >= 2:
        opt.advance_(kept - 1, part(lr, 0, kept - 1), part(mu, 0, kept - 1))
    if kept >= 1:
        meta_back = opt.state_meta()
        opt.advance_(1, part(lr, kept - 1, kept), part(mu, kept - 1, kept))
    return meta_back


class CompiledSteps:
    """The flat buffers and tile scratch of one (network, optimizer, loss, data) in ``fit``."""

    def __init__(self, net, opt, loss, X, y):
        from . import tiles as steps

        self.k = steps
        self.net, self.opt = net, opt
        dt = net.dtype
        self.X, self.y = X, y
        self.P = net.flat
        self.form = opt.closed_form()
        self.rule_id = _rule_identity(opt)      # part of the coefficient cache's key
        name = self.form.buffer
        vel = getattr(opt.state, name)
        V = _flat(vel)
        if V is None:                  # a restored or functional state: make it one buffer
            V = np.concatenate([v.reshape(-1) for v in vel]).astype(dt, copy=False)
            views, off = [], 0
            for v in vel:
                views.append(V[off:off + v.size].reshape(v.shape))
                off += v.size
            setattr(opt.state, name, views)
        self.V = V
        # the one-step-back copy the kernel keeps (see tiles.train_steps) and the
        # optimizer's counters that go with it
        self.Pb = self.P.copy()
        self.Vb = V.copy()
        self.meta_back = opt.state_meta()
        self.G = np.zeros_like(self.P)
        T = steps.TILE
        C = CHUNKS
        width = sum(net.sizes[1:])
        self.acts = steps.act_table(net.acts)
        self.Gs = np.zeros((C, self.P.shape[0]), dtype=dt)
        self.Zs = np.zeros((C, T * steps.tile_rows(net.sizes, self.acts)), dtype=dt)
        self.Ds = np.zeros((C, T * width), dtype=dt)
        self.xts = np.zeros((C, T * net.sizes[0]), dtype=dt)
        self.yts = np.zeros((C, T * net.sizes[-1]), dtype=dt)
        self.scales = np.zeros((C, 1), dtype=dt)
        self.totals = np.zeros(C)
        self.threads = min(threads(), C)
        # seconds per row of recent calls each way, shared by every fit of this shape
        self._seconds = _SPEED.setdefault((tuple(net.sizes), dt.name, len(X), self.threads),
                                          {False: [], True: [], "calls": 0})
        self.sizes = np.array(net.sizes, dtype=np.int64)
        self.loss = steps.LOSS_CODES[loss]
        self.fast = dt == np.float32
        # the kernel's argument groups (see inertia.fused): the same arrays, updated in place
        self.network = (self.sizes, self.acts, self.loss, bool(self.fast))
        self.params = (self.P, self.V, self.G, self.Pb, self.Vb)
        self.scratch = (self.Gs, self.Zs, self.Ds, self.xts, self.yts, self.scales,
                        self.totals)

    def reset_backup(self):
        """The one-step-back copy starts from the state now (after a restore)."""
        self.Pb[:] = self.P
        self.Vb[:] = self.V
        self.meta_back = self.opt.state_meta()

    def _plan(self, counts):
        """How this call's steps run: [(first step, end, shared among threads?)]. None for
        batches too small to share (or one thread). Otherwise chosen by measurement: the
        first calls try both ways; then the way with the best of its last five times a row
        (other work only ever slows a call down) runs the call, and every fourth call its
        first step runs the other way, so that a machine busy with other work (where a
        paused thread stalls the rest) falls back to one thread within a few calls, and
        comes back as soon as it is free. Both ways give the same numbers (see
        tiles.train_steps)."""
        S = counts.shape[0]
        if self.threads < 2 or int(counts.max()) < 2 * self.k.TILE:
            return [(0, S, None)]
        return measured_ways(self._seconds, S, 1)

    def _call(self, order, starts, counts, kinds, coef, parallel, out, check, weights_sq=None):
        """One kernel call, timed for the measurement when ``parallel`` is not None.
        Returns the number of steps run (fewer than asked: the next one diverged)."""
        if parallel:
            import numba

            old_threads = numba.get_num_threads()
            numba.set_num_threads(self.threads)
            old_chunk = numba.set_parallel_chunksize(1)
        t0 = time.perf_counter()
        try:
            args = ((self.X, self.y, order), (starts, counts, kinds, coef), self.network,
                    self.params, self.scratch, out, bool(parallel), bool(check))
            done = self.k.train_steps(*args) if weights_sq is None else \
                self.k.train_steps(*args, weights_sq)
        finally:
            if parallel:
                numba.set_parallel_chunksize(old_chunk)
                numba.set_num_threads(old_threads)
        if parallel and not _POOL:        # the first parallel call starts numba's threads
            _POOL.append(True)
        elif parallel is not None:
            rec = self._seconds[parallel]
            rec.append((time.perf_counter() - t0) / int(counts.sum()))
            del rec[:-5]
        return done

    def rows(self, counts, lr, mu, out=None):
        """(coef, kinds): the coefficient table (K, 2 L, 8) of steps of sizes ``counts``
        from the optimizer's state now, and each step's row in it (``coefficient_rows``;
        per-step rows written into ``out`` when given)."""
        return coefficient_rows(self.opt, self.rule_id, self.net.dtype, len(self.net.W),
                                counts, lr, mu, out)

    def run(self, order, starts, counts, lr, mu, check=False, weights_sq=None):
        """Train on the steps (starts, counts) into ``order``; lr and mu are one value for all
        steps (floats) or one a step (arrays); ``weights_sq`` None or a (len(starts),) float64
        array that receives each step's sum of squared weights before its update (see
        tiles.train_steps). Returns (out, stop, kept): the loss of every
        step run, the step that diverged (len(starts) when none did, or without ``check``),
        and how many steps' updates remain (stop - 1 when that step's loss was not finite:
        the state goes back to the previous step's; -1: to before the previous call's
        last step)."""
        coef, kinds = self.rows(counts, lr, mu)
        S = starts.shape[0]
        if np.ndim(lr) or np.ndim(mu):
            lr = np.broadcast_to(np.asarray(lr, dtype=np.float64), (S,))
            mu = np.broadcast_to(np.asarray(mu, dtype=np.float64), (S,))
        out = np.empty(S, dtype=np.float64)
        notice = None
        if self.net.dtype not in _RAN:            # numba compiles (or loads) on the first call
            notice = threading.Timer(1.0, _compiling_notice, (self.net.dtype.name,))
            notice.daemon = True
            notice.start()
        stop = S
        try:
            for lo, hi, parallel in self._plan(counts):
                done = self._call(order, starts[lo:hi], counts[lo:hi], kinds[lo:hi], coef,
                                  parallel, out[lo:hi], check,
                                  None if weights_sq is None else weights_sq[lo:hi])
                if done < hi - lo:
                    stop = lo + done
                    break
        finally:
            if notice is not None:
                notice.cancel()
        _RAN.add(self.net.dtype)
        kept = S if stop == S else stop - (not np.isfinite(out[stop]))
        self._advance(kept, lr, mu)
        return out, stop, kept

    def _advance(self, kept, lr, mu):
        """Count ``kept`` steps in the optimizer (``advance_counters``)."""
        self.meta_back = advance_counters(self.opt, self.meta_back, kept, lr, mu)
