"""W6, the sweep workload of ``inertia bench --sweep`` (and benchmarks/sweep.py): 64
configurations (8 learning rates log-spaced 1e-3 .. 0.3 x 8 momenta 0 .. 0.95, PyTorch's
convention; ``--configs 256``: 16 x 16, ``grid``) of the comparison network (4-8-8-1,
sigmoid/tanh/linear, mse, float32) on ``smooth_regression(10000)``, 50 epochs, at batch 64 and at full batch, as run-epochs a
second (runs x epochs / seconds):

sweep   ``inertia.sweep`` (one group: the runs share their starting weights and row order, so
        they train together in the multi-run compiled loop, ``inertia.fused.runs``);
fits    64 sequential ``inertia.fit`` calls, alternating with the sweep in this process
        (sweep, fits, sweep, ...) so that both see the same machine; each round checks that
        the sweep's losses equal the fits' bit for bit, or to float32 rounding where the
        runs train in the vector lanes (batch 64: ``inertia.fused.lanes``; RuntimeError
        otherwise);
torch engine  the same sweep on the torch engine (``--device``, else the CPU; when torch
        is installed or a device is given): the runs trained together by batched matmuls
        (``inertia.sweeps.batched``), against its sequential torch-engine fits (fewer epochs
        at a mini-batch, as PyTorch's), and against PyTorch's runs on the same device;
torch   64 sequential PyTorch runs, the standard loop on one thread (``sweep_peers.py``;
        on ``--device``), in a process of its own after the rounds; at a mini-batch it
        trains ``TORCH_EPOCHS`` epochs a run
        (its rate does not depend on the count: 64 x 50 epochs would take minutes);
jax     the grid vmapped (``optax.inject_hyperparams``, ``jax.vmap``, jitted, ``lax.scan``
        over the steps; ``sweep_peers.py``), in a process of its own under ``jax_python``
        (any interpreter with NumPy, jax and optax; default this one), compiling excluded.

A peer that is not installed is skipped with a note. Both peers train on the rows in the
order inertia's fits take them, from the same starting weights; each peer's check is the
largest relative difference of its first-epoch losses from the sweep's, over the runs of the
four smallest learning rates (``agreement``: float32 rounding, far below 1e-3 when the peer
computes the same thing).
Timings mean something only on an otherwise idle machine.
"""

from __future__ import annotations

import importlib.util
import math
import os
import subprocess
import sys
import tempfile
import time
import warnings

import numpy as np

import inertia
from inertia import SGD, Dense, Network
from inertia.data import smooth_regression

LRS = np.logspace(-3, np.log10(0.3), 8).tolist()
MOMENTA = [0.0, 0.3, 0.5, 0.7, 0.8, 0.9, 0.93, 0.95]
PEERS = {"torch": ("torch",), "jax": ("jax", "optax")}
TORCH_EPOCHS = 3          # PyTorch's epochs a run at a mini-batch (see the docstring)
AGREE = 1e-3              # a peer's first-epoch losses within this of the sweep's: it agrees
ROUNDING = 1e-5           # the fits' first-epoch losses within this of a sweep in the lanes'


def grid(configs):
    """(learning rates, momenta) of a grid of ``configs`` = k x k configurations: k learning
    rates log-spaced 1e-3 .. 0.3 and k momenta from 0 to 0.95 (W6's 8 x 8: LRS, MOMENTA);
    a one-line ValueError unless ``configs`` is a square of at least 4."""
    k = math.isqrt(configs) if isinstance(configs, int) and configs > 0 else 0
    if k * k != configs or k < 2:
        raise ValueError(f"--configs must be a square number of at least 4 (64 = 8 x 8, "
                         f"256 = 16 x 16), got {configs!r}")
    if k == len(MOMENTA):
        return LRS, MOMENTA
    return np.logspace(-3, np.log10(0.3), k).tolist(), np.linspace(0.0, 0.95, k).tolist()


def network(engine="numpy", device=None):
    return Network(4, [Dense(8, "sigmoid"), Dense(8, "tanh"), Dense(1, "linear")], seed=0,
                   engine=engine, device=device)


def by_sweep(X, y, batch, epochs, g=(LRS, MOMENTA), engine="numpy", device=None):
    """The grid ``g`` (learning rates, momenta) as one sweep on ``engine`` (and its
    ``device``): (seconds, loss (runs, epochs))."""
    t0 = time.perf_counter()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", inertia.DivergenceWarning)
        res = inertia.sweep(network(engine, device), X, y, "mse",
                            SGD(0.1, convention="pytorch"),
                            {"lr": list(g[0]), "momentum": list(g[1])}, epochs=epochs,
                            batch_size=batch)
    return time.perf_counter() - t0, np.asarray(res.loss)


def by_fits(X, y, batch, epochs, g=(LRS, MOMENTA), engine="numpy", device=None):
    """The grid's runs as fits one after another: (seconds, loss (runs, epochs),
    NaN-padded)."""
    loss = np.full((len(g[0]) * len(g[1]), epochs), np.nan)
    t0 = time.perf_counter()
    k = 0
    for lr in g[0]:
        for mu in g[1]:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", inertia.DivergenceWarning)
                h = inertia.fit(network(engine, device), X, y, "mse",
                                SGD(lr, momentum=mu, convention="pytorch"), epochs=epochs,
                                batch_size=batch, seed=0, progress=False)
            loss[k, :len(h.loss)] = h.loss
            k += 1
    return time.perf_counter() - t0, loss


def peer_missing(system, python):
    """Why ``system`` cannot run under the interpreter ``python`` (None: it can)."""
    mods = PEERS[system]
    probe = ("import importlib.util as u, sys; "
             f"sys.exit(0 if all(u.find_spec(m) for m in {mods!r}) else 3)")
    try:
        done = subprocess.run([python, "-c", probe], capture_output=True, timeout=120)
    except (OSError, subprocess.TimeoutExpired) as ex:
        return f"{python} does not run ({type(ex).__name__})"
    if done.returncode != 0:
        return f"{' and '.join(mods)} not installed for {python}"
    return None


def by_peer(system, python, X, y, batch, epochs, g=(LRS, MOMENTA), device="cpu"):
    """The grid's runs by a peer in its own process (``sweep_peers.py``; PyTorch on
    ``device``): (seconds of the timed epochs, loss (runs, epochs)). RuntimeError with the
    peer's last line when it fails."""
    params = network().parameters()
    with tempfile.TemporaryDirectory() as tmp:
        src, dst = os.path.join(tmp, "in.npz"), os.path.join(tmp, "out.npz")
        arrays = {f"{name}{k}": a for k, (W, b) in enumerate(params)
                  for name, a in (("W", W), ("b", b))}
        np.savez(src, X=X, y=y, lrs=np.repeat(g[0], len(g[1])).astype(X.dtype),
                 momenta=np.tile(g[1], len(g[0])).astype(X.dtype), epochs=epochs,
                 batch=0 if batch is None else batch, seed=0, warm=1, device=device,
                 **arrays)
        script = os.path.join(os.path.dirname(os.path.abspath(__file__)), "sweep_peers.py")
        done = subprocess.run([python, script, system, src, dst], capture_output=True,
                              text=True)
        if done.returncode != 0:
            lines = (done.stderr or done.stdout or "no output").strip().splitlines()
            raise RuntimeError(f"{system} failed: {lines[-1]}")
        res = np.load(dst)
        return float(res["seconds"]), np.array(res["loss"])


def agreement(peer_loss, sweep_loss):
    """The largest relative difference of the first-epoch losses over the runs of the four
    smallest learning rates (the first half of the grid): they converge, so rounding
    differences stay rounding-sized (at the largest rates the runs blow up and rounding
    differences grow without bound)."""
    half = peer_loss.shape[0] // 2
    a, b = peer_loss[:half, 0], sweep_loss[:half, 0]
    return float(np.max(np.abs(a - b) / np.abs(b)))


def _check_fits(X, g, sweep_loss, fits_loss):
    """RuntimeError unless the sweep's losses are the fits': bit for bit, or where the grid
    trains in the vector lanes (``inertia.fused.lanes``), first-epoch losses within
    ``ROUNDING`` (``agreement``)."""
    from inertia.fused import lanes

    runs = len(g[0]) * len(g[1])
    if lanes.applies(X.dtype, runs):
        agree = agreement(fits_loss, sweep_loss)
        if agree > ROUNDING:
            raise RuntimeError(f"the sweep's first-epoch losses differ from the fits' by "
                               f"{agree:.1e} (more than float32 rounding, {ROUNDING:g})")
    elif not np.array_equal(sweep_loss, fits_loss, equal_nan=True):
        raise RuntimeError("the sweep's losses differ from the fits'")


def _inertia_rounds(X, y, batch, epochs, rounds, g=(LRS, MOMENTA)):
    """The sweep and the fits alternating, ``rounds`` times after a warm-up of one epoch
    each: (best sweep seconds, best fits seconds, the sweep's loss (runs, epochs))."""
    by_sweep(X, y, batch, 1, g)                 # compile and warm both ways first
    by_fits(X, y, batch, 1, g)
    best_s = best_f = np.inf
    for _ in range(rounds):
        ts, ls = by_sweep(X, y, batch, epochs, g)
        tf, lf = by_fits(X, y, batch, epochs, g)
        _check_fits(X, g, ls, lf)
        best_s, best_f = min(best_s, ts), min(best_f, tf)
    return best_s, best_f, ls


def _peer(system, python, X, y, batch, epochs, rounds, sweep_loss, sweep_rate,
          g=(LRS, MOMENTA), device="cpu"):
    """A peer's record {"rate", "epochs", "speedup" (the sweep's rate over the peer's),
    "agreement"} and its line."""
    runs = len(g[0]) * len(g[1])
    if system == "torch" and batch is not None:
        epochs, rounds = min(epochs, TORCH_EPOCHS), 1
    best = np.inf
    for _ in range(rounds):
        seconds, loss = by_peer(system, python, X, y, batch, epochs, g, device)
        best = min(best, seconds)
    rate = runs * epochs / best
    agree = agreement(loss, sweep_loss)
    rec = {"rate": rate, "epochs": epochs, "speedup": sweep_rate / rate, "agreement": agree}
    verdict = "agree" if agree <= AGREE else "DISAGREE"
    where = f", {device}" if system == "torch" else ""
    line = (f"    {system:>5} ({epochs} epochs a run{where}): {rate:10.1f} run-epochs/s, sweep "
            f"{sweep_rate / rate:7.2f}x; first-epoch losses {verdict} with the sweep's "
            f"(largest relative difference {agree:.1e})")
    return rec, line


def _torch_engine(X, y, batch, epochs, rounds, g, device, sweep_loss):
    """The grid as one sweep on the torch engine on ``device`` (float32: the runs trained
    together by batched matmuls, ``inertia.sweeps.batched``), best of ``rounds`` after a
    one-epoch warm-up, and as sequential torch-engine fits (``TORCH_EPOCHS`` epochs a run at
    a mini-batch, one round): the record {"device", "sweep", "fits", "fits_epochs",
    "ratio", "agreement" (its first-epoch losses against the NumPy sweep's)} and its line."""
    runs = len(g[0]) * len(g[1])
    by_sweep(X, y, batch, 1, g, "torch", device)
    best, loss = np.inf, None
    for _ in range(rounds):
        seconds, loss = by_sweep(X, y, batch, epochs, g, "torch", device)
        best = min(best, seconds)
    fe = min(epochs, TORCH_EPOCHS) if batch is not None else epochs
    by_fits(X, y, batch, 1, ([g[0][0]], [g[1][0]]), "torch", device)     # warm
    fits_s, _ = by_fits(X, y, batch, fe, g, "torch", device)
    rate, rate_f = runs * epochs / best, runs * fe / fits_s
    agree = agreement(loss, sweep_loss)
    rec = {"device": device, "sweep": rate, "fits": rate_f, "fits_epochs": fe,
           "ratio": rate / rate_f, "agreement": agree}
    verdict = "agree" if agree <= AGREE else "DISAGREE"
    line = (f"    torch engine ({device}): sweep {rate:10.1f} run-epochs/s, {runs} fits "
            f"({fe} epochs a run) {rate_f:10.1f} run-epochs/s, ratio {rate / rate_f:.2f}x; "
            f"first-epoch losses {verdict} with the NumPy sweep's ({agree:.1e})")
    return rec, line


def _torch_ready(device):
    """Whether the torch engine's row runs: --device given, or torch installed."""
    return device is not None or importlib.util.find_spec("torch") is not None


def measure(rows=10_000, epochs=50, rounds=3, batches=(64, None), say=print,
            peers=tuple(PEERS), jax_python=None, configs=64, device=None):
    """{"batch 64": {...}, "full batch": {...}, "notes": [...]}: each with the best round's
    run-epochs a second of the sweep ("sweep") and of the fits ("fits"), their ratio,
    the torch engine's record ("torch engine", ``_torch_engine``: when ``device`` is given
    or torch is installed; None otherwise) and each peer's record (``_peer``; None when
    skipped, the note saying why). ``configs``: the grid's size (``grid``); ``device``: the
    torch engine's and PyTorch's ("cpu" when None). Raises RuntimeError when a sweep's
    losses differ from the fits' or a peer fails."""
    g = grid(configs)
    X, y = smooth_regression(rows, seed=1)
    runs = len(g[0]) * len(g[1])
    python = {"torch": sys.executable, "jax": jax_python or sys.executable}
    notes, ready = [], []
    for system in peers:
        why = peer_missing(system, python[system])
        if why:
            notes.append(f"{system}: skipped ({why}"
                         + ("; --jax-python PATH names one that has them)" if system == "jax"
                            else ")"))
        else:
            ready.append(system)
    out = {"notes": notes, "configs": runs}
    for batch in batches:
        best_s, best_f, loss = _inertia_rounds(X, y, batch, epochs, rounds, g)
        work = runs * epochs
        name = "full batch" if batch is None else f"batch {batch}"
        rec = out[name] = {"sweep": work / best_s, "fits": work / best_f,
                           "ratio": best_f / best_s, "torch engine": None}
        say(f"W6 {name:>10}: sweep {work / best_s:10.1f} run-epochs/s, {runs} fits "
            f"{work / best_f:10.1f} run-epochs/s, ratio {best_f / best_s:.2f}x")
        if _torch_ready(device):
            rec["torch engine"], line = _torch_engine(X, y, batch, epochs, rounds, g,
                                                      device or "cpu", loss)
            say(line)
        for system in peers:
            rec[system] = None
            if system in ready:
                rec[system], line = _peer(system, python[system], X, y, batch, epochs,
                                          rounds, loss, rec["sweep"], g, device or "cpu")
                say(line)
        if rec.get("torch") and rec["torch engine"]:
            ratio = rec["torch engine"]["vs_torch"] = rec["torch engine"]["sweep"] / \
                rec["torch"]["rate"]
            say(f"    torch engine's sweep over PyTorch's sequential runs: {ratio:.2f}x")
    for note in notes:
        say(f"    {note}")
    return out


def peers_option(text):
    """The peers ``--peers`` names for --sweep: all of PEERS when None, none for "none";
    ValueError naming the choices for any other name."""
    if text is None:
        return tuple(PEERS)
    if text.strip().lower() == "none":
        return ()
    names = [p.strip() for p in text.split(",") if p.strip()]
    bad = [p for p in names if p not in PEERS]
    if bad:
        raise ValueError(f"--peers with --sweep: unknown {', '.join(bad)}: choose from "
                         f"{', '.join(PEERS)} (or none)")
    return tuple(dict.fromkeys(names))
