"""Running the systems: one fresh process per system and workload, alternation, results.

Each system of each workload lives in its own process, forked from a server that has already
imported the libraries (so no process pays for another's thread pools or allocator caches, and
the peak memory of one system is not mixed with another's). The parent sends commands over a
pipe ("run" E epochs, "memory", "check", "quit") and the process answers with what it measured.
``run_workload`` drives one workload: start every system, warm up, calibrate, alternate the
timed repetitions, read memory and the agreement check, and build the workload's record.
"""

from __future__ import annotations

import gc
import os
import sys
import time
import traceback
import warnings
from dataclasses import replace

import numpy as np

from .machine import installed, peak_rss_bytes, reset_peak_rss, rss_status
from .runners import (RUNNERS, initial_params, max_rel_param_diff, plan,
                      reference_params)
from .workloads import DATA_NAMES, batches, gemm_flops, make_data, transcendentals


def say(msg):
    """A progress line on stderr (the table goes to stdout)."""
    print(msg, file=sys.stderr, flush=True)


# ------------------------------------------------------------------------------- worker
def _copy_params(init):
    """New arrays of the (W, b) pairs ``init``: every runner gets its own copy."""
    return [(np.array(W), np.array(b)) for W, b in init]


def _first_use(system, w, X, y, init):
    """Run the system's code paths once (thread pools, lazy initialisation, code pages) on a
    64-row copy of the problem, then reset the resident-set peak, so that the memory measured
    afterwards is the training's. Returns the baseline: {"method", "rss_base", "gpu_base"
    (torch's allocated bytes on CUDA, else None)}."""
    pre = min(64, X.shape[0])
    RUNNERS[system.kind](system, w, X[:pre], y[:pre], _copy_params(init)).train(1)
    gc.collect()
    gpu_base = None
    if system.device == "cuda" and system.kind in ("inertia", "torch"):
        import torch
        torch.cuda.synchronize()
        torch.cuda.reset_peak_memory_stats()
        gpu_base = torch.cuda.memory_allocated()
    method = reset_peak_rss()
    rss_base = rss_status().get("VmRSS") if method == "clear_refs" else peak_rss_bytes(method)
    return {"method": method, "rss_base": rss_base, "gpu_base": gpu_base}


def _memory_reading(baseline):
    """The memory record: the resident-set peak now minus the baseline (see ``_first_use``),
    and on CUDA torch's ``max_memory_allocated`` growth."""
    method, rss_base = baseline["method"], baseline["rss_base"]
    peak = peak_rss_bytes(method)
    mem = {"method": method, "rss_base_bytes": rss_base, "rss_peak_bytes": peak,
           "rss_growth_bytes": None if peak is None or rss_base is None
           else max(0, peak - rss_base)}
    if baseline["gpu_base"] is not None:
        import torch
        mem["gpu_growth_bytes"] = torch.cuda.max_memory_allocated() - baseline["gpu_base"]
    return mem


def _serve(conn, runner, baseline, X, y, init, check_rows):
    """Answer the parent's commands until "quit": ("run", E) -> (wall s, CPU s) of E epochs;
    ("memory", None) -> the memory record; ("check", E) -> float64 (W, b) pairs after a fresh
    runner trains E epochs on the first ``check_rows`` rows."""
    system, w = runner.s, runner.w
    while True:
        cmd, arg = conn.recv()
        if cmd == "run":
            conn.send(("ok", runner.timed(arg)))
        elif cmd == "memory":
            conn.send(("ok", _memory_reading(baseline)))
        elif cmd == "check":
            rows = min(check_rows, X.shape[0])
            r = RUNNERS[system.kind](system, w, X[:rows], y[:rows], _copy_params(init))
            r.train(arg)
            r.sync()
            conn.send(("ok", r.params()))
        elif cmd == "quit":
            conn.send(("ok", None))
            return


def _worker(conn, system, w, n, init, check_rows):
    """One system of one workload, in its own process: builds, answers ("ready", info) or
    ("skip", why) or ("error", message), then serves commands (``_serve``)."""
    import signal

    signal.signal(signal.SIGINT, signal.SIG_IGN)     # Ctrl-C is the parent's to handle
    warnings.simplefilter("ignore")
    try:
        X, y = make_data(w, n)
        baseline = _first_use(system, w, X, y, init)
        runner = RUNNERS[system.kind](system, w, X, y, _copy_params(init))
        info = runner.info()
        if w.gpu and system.device == "cuda" and info.get("device") != "cuda":
            conn.send(("skip", f"no GPU backend (ran on {info.get('device')})"))
            return
        conn.send(("ready", info))
        _serve(conn, runner, baseline, X, y, init, check_rows)
    except Exception as ex:  # reported to the parent, which carries on without this system
        tb = traceback.extract_tb(ex.__traceback__)
        where = f" ({os.path.basename(tb[-1].filename)}:{tb[-1].lineno})" if tb else ""
        try:
            conn.send(("error", f"{type(ex).__name__}: {ex}{where}"))
        except OSError:
            pass
    finally:
        conn.close()


class WorkerProcess:
    """The parent's handle on one worker: its System, pipe, process, the ``info`` it reported
    and the ``error`` that ended it (None while it works)."""

    def __init__(self, ctx, system, w, n, init, check_rows):
        self.system = system
        self.conn, child = ctx.Pipe()
        self.p = ctx.Process(target=_worker, args=(child, system, w, n, init, check_rows),
                             daemon=True, name=f"bench {w.key} {system.name}")
        self.p.start()
        child.close()
        self.error = None
        self.info = {}

    def recv(self, timeout):
        """The worker's next (kind, value) message; TimeoutError or RuntimeError if none."""
        if not self.conn.poll(timeout):
            raise TimeoutError(f"no answer in {timeout:.0f} s")
        try:
            return self.conn.recv()
        except EOFError:
            self.p.join(5)
            raise RuntimeError(f"the process ended (exit code {self.p.exitcode})") from None

    def ask(self, cmd, arg=None, timeout=900.0):
        """Send a command and return its answer; RuntimeError if the worker failed."""
        self.conn.send((cmd, arg))
        kind, val = self.recv(timeout)
        if kind != "ok":
            raise RuntimeError(val)
        return val

    def stop(self):
        """Ask the worker to quit, then end it if it does not."""
        try:
            if self.p.is_alive():
                self.conn.send(("quit", None))
                self.recv(10)
        except Exception:
            pass
        self.p.join(10)
        if self.p.is_alive():
            self.p.terminate()
            self.p.join(5)
        self.conn.close()


def preload_modules(cfg):
    """The modules the fork server imports once, before it forks the workers."""
    from .. import engines as engines_mod

    mods = ["numpy", "scipy.linalg.blas", "inertia", "inertia.bench.processes"]
    mods += [engines_mod.ENGINES[e][0] for e in cfg.engines]
    for p in cfg.peers:
        mods += {"torch": ["torch"], "jax": ["jax", "jax.numpy", "optax"],
                 "sklearn": ["sklearn.neural_network", "sklearn.datasets"]}.get(p, [])
    if "W3" in cfg.workloads and installed("sklearn"):      # iris
        mods.append("sklearn.datasets")
    return list(dict.fromkeys(mods))


def process_context(cfg):
    """A multiprocessing context: a fork server with the libraries preloaded, else spawn."""
    import multiprocessing as mp

    methods = mp.get_all_start_methods()
    if "forkserver" in methods:
        ctx = mp.get_context("forkserver")
        ctx.set_forkserver_preload(preload_modules(cfg))
        return ctx
    return mp.get_context("spawn")


# ----------------------------------------------------------------------------- a workload
def timed_rows(cfg, w):
    """(rows of the full epoch, rows timed): --tiny shrinks the epoch, --quick times a
    prefix of it where the workload has one (``quick_n``)."""
    n_full = w.tiny_n if cfg.tiny else w.n
    n = w.quick_n if (cfg.quick and w.quick_n and not cfg.tiny) else n_full
    return n_full, n


def workload_record(w, n_full, n, skipped):
    """The workload's record before any system runs: its definition, counts per epoch, the
    systems skipped so far; "systems" and "order" are filled in by the run."""
    steps_full, steps = len(batches(n_full, w.batch)), len(batches(n, w.batch))
    desc = w.describe(n_full)
    if n != n_full:
        desc += (f" (--quick: timed on the first {n:,} rows, {steps} of {steps_full} steps; "
                 f"ms/epoch = µs/step x {steps_full})")
    return {"key": w.key, "title": w.title, "description": desc,
            "sizes": list(w.sizes), "activations": list(w.acts), "loss": w.loss,
            "data": DATA_NAMES[w.data], "n": n_full, "batch_size": w.batch,
            "steps_per_epoch": steps_full, "timed_rows": n, "timed_steps_per_epoch": steps,
            "lr": w.lr, "momentum": w.momentum, "weight_decay": 0.0,
            "convention": "pytorch (b = mu b + g; w -= lr b); scikit-learn's v = mu v - lr g; "
                          "w += v is the same rule at a constant learning rate",
            "gemm_flops_per_epoch": gemm_flops(w.sizes, n_full, w.batch),
            "transcendentals_per_epoch": transcendentals(w.sizes, w.acts, n_full),
            "skipped": dict(skipped), "systems": {}, "order": []}


def start_processes(ctx, w, n, systems):
    """One WorkerProcess per system, each given the shared initial weights of its
    activations."""
    inits, procs = {}, []
    for s in systems:
        acts = s.acts or w.acts
        if acts not in inits:
            inits[acts] = initial_params(w, acts)
        procs.append(WorkerProcess(ctx, s, w, n, inits[acts], w.check_rows))
    return procs


def await_ready(procs, rec, cfg, w):
    """The processes whose system built; the others are stopped, with their reason in
    ``rec["skipped"]`` or their ``error``."""
    live = []
    for pr in procs:
        try:
            kind, val = pr.recv(600)
        except (TimeoutError, RuntimeError) as ex:
            kind, val = "error", str(ex)
        if kind == "ready":
            pr.info = val
            if cfg.device == "cuda" and pr.system.kind == "jax":
                pr.system = replace(pr.system, name=f"{pr.system.name} ({val.get('device')})")
            live.append(pr)
        elif kind == "skip":
            rec["skipped"][pr.system.name] = val
            say(f"  {w.key}: {pr.system.name} skipped ({val})")
            pr.stop()
        else:
            pr.error = val
            say(f"  {w.key}: {pr.system.name} failed to start: {val}")
            pr.stop()
    return live


def _ask(pr, w, *command):
    """pr.ask(*command), or None with ``pr.error`` set (and said) when the worker fails."""
    try:
        return pr.ask(*command)
    except (TimeoutError, RuntimeError, OSError) as ex:
        pr.error = str(ex)
        say(f"  {w.key}: {pr.system.name} failed: {ex}")
        return None


def warm_up(live, raw, w):
    """One epoch per system (JIT, buffers, caches), its time in ``raw[name]["warmup_s"]``.
    Returns the processes still working."""
    for pr in live:
        t = _ask(pr, w, "run", 1)
        raw[pr.system.name]["warmup_s"] = t and t[0]
    return [pr for pr in live if pr.error is None]


def calibrate(live, raw, cfg, w):
    """Set ``raw[name]["epochs_per_rep"]``: calls of growing E until one lasts a quarter of
    ``cfg.rep_seconds`` (each call in ``raw[name]["calibration"]`` as [E, seconds]), then the
    E for a repetition of about rep_seconds (1 with --tiny). Returns the processes still
    working."""
    for pr in live:
        r = raw[pr.system.name]
        if cfg.tiny:
            r["epochs_per_rep"] = 1
            continue
        e = 1
        while True:
            t = _ask(pr, w, "run", e)
            if t is None:
                break
            t = t[0]
            r["calibration"].append([e, t])
            if t >= cfg.rep_seconds / 4 or e >= cfg.max_epochs:
                break
            e = int(min(cfg.max_epochs, e * max(2, min(16, cfg.rep_seconds / 4 / max(t, 1e-9)))))
        if t is not None:
            per = max(t / e, 1e-9)
            r["epochs_per_rep"] = int(min(cfg.max_epochs, max(1, round(cfg.rep_seconds / per))))
    return [pr for pr in live if pr.error is None]


def alternate(live, raw, rec, cfg, w):
    """``cfg.reps`` repetitions, each running every system once, the order rotated by one
    system per repetition (each order in ``rec["order"]``); times go to ``raw[name]``'s
    rep_times_s and rep_cpu_s."""
    for k in range(cfg.reps):
        order = live[k % len(live):] + live[:k % len(live)] if live else []
        rec["order"].append([pr.system.name for pr in order])
        for pr in order:
            if pr.error is not None:
                continue
            r = raw[pr.system.name]
            t = _ask(pr, w, "run", r["epochs_per_rep"])
            if t is not None:
                r["rep_times_s"].append(t[0])
                r["rep_cpu_s"].append(t[1])


def final_readings(live, w):
    """({name: memory record}, {name: float64 (W, b) pairs of the agreement check}) of the
    processes still working."""
    mems, checks = {}, {}
    for pr in live:
        if pr.error is None:
            mems[pr.system.name] = _ask(pr, w, "memory")
        if pr.error is None:
            checks[pr.system.name] = _ask(pr, w, "check", w.check_epochs)
    return mems, checks


def run_workload(ctx, cfg, w, limits):
    """Run every system of workload ``w``, round-robin, each in its own process from
    ``ctx``; shares are against ``limits`` (see machine.machine_limits). Returns the
    workload's record (see benchmarks/README.md, "Files")."""
    n_full, n = timed_rows(cfg, w)
    systems, skipped = plan(w, cfg.engines, cfg.peers, cfg.device)
    rec = workload_record(w, n_full, n, skipped)
    for name, why in skipped.items():
        say(f"  {w.key}: {name} skipped ({why})")
    t0 = time.perf_counter()
    procs = start_processes(ctx, w, n, systems)
    live = await_ready(procs, rec, cfg, w)
    say(f"{w.key} {w.title}: {len(live)} systems ready in {time.perf_counter() - t0:.1f} s")
    raw = {pr.system.name: {"warmup_s": None, "calibration": [], "epochs_per_rep": None,
                            "rep_times_s": [], "rep_cpu_s": []} for pr in procs}
    live = warm_up(live, raw, w)
    live = calibrate(live, raw, cfg, w)
    alternate(live, raw, rec, cfg, w)
    mems, checks = final_readings(live, w)
    for pr in procs:
        pr.stop()
    collect(rec, procs, raw, mems, checks, w, n, limits)
    return rec


# ------------------------------------------------------------------------------- results
def timing_stats(xs):
    """{median, q1, q3, iqr, min, max} of the numbers ``xs``."""
    xs = np.asarray(xs, dtype=float)
    q1, med, q3 = np.percentile(xs, [25, 50, 75])
    return {"median": float(med), "q1": float(q1), "q3": float(q3), "iqr": float(q3 - q1),
            "min": float(xs.min()), "max": float(xs.max())}


def system_entry(pr, w, raw_times):
    """A system's entry without its timing statistics: settings, ``info``, ``error`` and the
    raw times (``raw_times``: warmup_s, calibration, epochs_per_rep, rep_times_s,
    rep_cpu_s)."""
    s = pr.system
    return {"kind": s.kind, "device": pr.info.get("device", s.device),
            "engine": s.engine, "variant": s.variant,
            "momentum": w.momentum if s.momentum is None else s.momentum,
            "convention": s.convention if s.kind == "inertia" else
            {"sklearn": "sklearn", "jax": "optax"}.get(s.kind, "pytorch"),
            "weight_decay": s.weight_decay, "activations": list(s.acts or w.acts),
            "note": s.note, "info": pr.info, "error": pr.error, **raw_times}


def add_timing(entry, s, w, rec, limits):
    """Add to ``entry`` (system ``s`` of workload ``w``, whose record is ``rec``) the per-step
    and per-epoch statistics of its repetitions, its GEMM FLOP/s and transcendentals per
    second, and their shares of ``limits``. A time per epoch is the time per step times the
    full epoch's steps (the same as rep time / E unless --quick timed a prefix)."""
    n, steps, steps_full = rec["timed_rows"], rec["timed_steps_per_epoch"], rec["steps_per_epoch"]
    per_step = [t / entry["epochs_per_rep"] / steps for t in entry["rep_times_s"]]
    entry["step_s"] = timing_stats(per_step)
    entry["epoch_s"] = timing_stats([t * steps_full for t in per_step])
    timed_epoch = entry["step_s"]["median"] * steps
    entry["gemm_flops_per_s"] = gemm_flops(w.sizes, n, w.batch) / timed_epoch
    entry["gemm_share_of_sgemm"] = (entry["gemm_flops_per_s"]
                                    / limits["sgemm"]["flops_per_s_best"])
    tr = transcendentals(w.sizes, s.acts or w.acts, n)
    entry["transcendentals_per_s"] = tr / timed_epoch
    entry["exp_share"] = entry["transcendentals_per_s"] / limits["exp"]["elements_per_s_best"]


def check_entry(s, w, n, params, refs):
    """The agreement check of system ``s``: its parameters ``params`` after the check's
    training against inertia's NumPy engine trained the same way (reference runs cached in
    ``refs`` by activations, momentum, convention and weight decay)."""
    mu = w.momentum if s.momentum is None else s.momentum
    key = (s.acts or w.acts, mu, s.convention if s.kind == "inertia" else "pytorch",
           s.weight_decay)
    if key not in refs:
        refs[key] = reference_params(w, n, key[0], mu, key[2], key[3], w.check_epochs,
                                     w.check_rows)
    rows = min(w.check_rows, n)
    return {"rows": rows, "epochs": w.check_epochs,
            "steps": w.check_epochs * len(batches(rows, w.batch)),
            "max_rel_param_diff": max_rel_param_diff(params, refs[key])}


def add_ratios(rec):
    """Set ``inertia_best_epoch_s`` (the fastest inertia engine's median epoch, variants
    aside) and every system's ``ratio_to_inertia`` (None without a timing)."""
    mains = [e["epoch_s"]["median"] for e in rec["systems"].values()
             if e["kind"] == "inertia" and not e["variant"] and "epoch_s" in e]
    best = min(mains) if mains else None
    rec["inertia_best_epoch_s"] = best
    for e in rec["systems"].values():
        e["ratio_to_inertia"] = (e["epoch_s"]["median"] / best
                                 if best and "epoch_s" in e else None)


def collect(rec, procs, raw, mems, checks, w, n, limits):
    """Fill ``rec["systems"]`` with one entry per system that was not skipped (timings,
    memory, check), then the ratios to inertia."""
    refs = {}
    for pr in procs:
        s = pr.system
        entry = system_entry(pr, w, raw[s.name])
        if s.name in rec["skipped"]:
            continue
        if entry["rep_times_s"] and entry["epochs_per_rep"]:
            add_timing(entry, s, w, rec, limits)
        if mems.get(s.name):
            entry["memory"] = mems[s.name]
        if checks.get(s.name) is not None:
            entry["check"] = check_entry(s, w, n, checks[s.name], refs)
        rec["systems"][s.name] = entry
    add_ratios(rec)


def rescale_shares(results, limits):
    """Recompute every system's GEMM and exp shares against ``limits`` (the run's final
    limits, measured at its start and its end)."""
    sg, ex = limits["sgemm"], limits["exp"]
    for rec in results.values():
        for e in rec["systems"].values():
            if "epoch_s" in e:
                e["gemm_share_of_sgemm"] = e["gemm_flops_per_s"] / sg["flops_per_s_best"]
                e["exp_share"] = e["transcendentals_per_s"] / ex["elements_per_s_best"]
