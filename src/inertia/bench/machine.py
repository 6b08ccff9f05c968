"""The machine: its measured limits (sgemm and exp rates), what it is and has installed, and
the resident-set readings that give each system's peak memory."""

from __future__ import annotations

import importlib.util
import os
import platform
import socket
import time

import numpy as np


def installed(module):
    """Whether ``module`` can be imported (without importing it)."""
    try:
        return importlib.util.find_spec(module) is not None
    except (ImportError, ValueError):
        return False


# ------------------------------------------------------------------------ machine limits
def sgemm_times(n, reps, r):
    """Seconds of ``reps`` float32 sgemms of n x n by n x n (scipy.linalg.blas.sgemm, all BLAS
    threads, Fortran-ordered operands drawn from the generator ``r``, the output overwritten),
    after one warm-up call."""
    from scipy.linalg import blas

    A = np.asfortranarray(r.standard_normal((n, n), dtype=np.float32))
    B = np.asfortranarray(r.standard_normal((n, n), dtype=np.float32))
    C = np.zeros((n, n), dtype=np.float32, order="F")
    blas.sgemm(1.0, A, B, 0.0, C, overwrite_c=True)              # warm-up
    times = []
    for _ in range(reps):
        t0 = time.perf_counter()
        blas.sgemm(1.0, A, B, 0.0, C, overwrite_c=True)
        times.append(time.perf_counter() - t0)
    return times


def exp_times(n, reps, r):
    """Seconds of ``reps`` calls of np.exp on n float32 elements drawn uniform in [-5, 5) from
    the generator ``r``, into a preallocated output (NumPy: one thread), after one warm-up
    call."""
    x = r.uniform(-5.0, 5.0, n).astype(np.float32)
    out = np.empty_like(x)
    np.exp(x, out=out)
    times = []
    for _ in range(reps):
        t0 = time.perf_counter()
        np.exp(x, out=out)
        times.append(time.perf_counter() - t0)
    return times


def limit_rates(sgemm_n, sgemm_s, exp_n, exp_s):
    """The limits record from raw times: {"sgemm": {n, flops, times_s, flops_per_s_best,
    flops_per_s_median}, "exp": {n, times_s, elements_per_s_best, elements_per_s_median}}."""
    flops = 2.0 * sgemm_n ** 3
    return {
        "sgemm": {"n": sgemm_n, "flops": flops, "times_s": list(sgemm_s),
                  "flops_per_s_best": flops / min(sgemm_s),
                  "flops_per_s_median": flops / float(np.median(sgemm_s))},
        "exp": {"n": exp_n, "times_s": list(exp_s), "elements_per_s_best": exp_n / min(exp_s),
                "elements_per_s_median": exp_n / float(np.median(exp_s))},
    }


def machine_limits(n=2048, reps=5, exp_n=10_000_000, exp_reps=10):
    """The float32 sgemm rate (n^3, scipy.linalg.blas.sgemm, all BLAS threads) and the
    np.exp float32 element rate (one thread), with every raw time (see ``limit_rates``)."""
    r = np.random.default_rng(0)
    sgemm_s = sgemm_times(n, reps, r)
    exp_s = exp_times(exp_n, exp_reps, r)
    return limit_rates(n, sgemm_s, exp_n, exp_s)


def merge_limits(start, end):
    """The limits of a whole run from those measured at its start and its end: every raw time
    of both, the rates recomputed (the peak is the best of both measurements)."""
    sg, ex = start["sgemm"], start["exp"]
    return limit_rates(sg["n"], sg["times_s"] + end["sgemm"]["times_s"],
                       ex["n"], ex["times_s"] + end["exp"]["times_s"])


# -------------------------------------------------------------------------- machine info
def cpu_model():
    """The CPU's model name from /proc/cpuinfo (else what ``platform`` knows)."""
    cpu = platform.processor() or platform.machine()
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return cpu


def versions():
    """{distribution: version or None} of inertia and every library the benchmark uses."""
    from importlib import metadata

    out = {}
    for pkg in ("inertia", "numpy", "scipy", "torch", "jax", "jaxlib", "optax", "scikit-learn",
                "matplotlib"):
        try:
            out[pkg] = metadata.version(pkg)
        except metadata.PackageNotFoundError:
            out[pkg] = None
    return out


def numpy_blas():
    """NumPy's BLAS as ``np.show_config`` reports it (None where it cannot say)."""
    try:
        cfg = np.show_config(mode="dicts")
        return cfg.get("Build Dependencies", {}).get("blas")
    except Exception:
        return None


def threadpools():
    """The loaded thread pools (BLAS, OpenMP) as threadpoolctl lists them, or None."""
    if not installed("threadpoolctl"):
        return None
    try:
        import threadpoolctl
        return [{k: p.get(k) for k in ("internal_api", "version", "num_threads",
                                        "threading_layer", "architecture", "filepath")}
                for p in threadpoolctl.threadpool_info()]
    except Exception:
        return None


def load_average():
    """os.getloadavg() (1, 5, 15 minutes), or None where there is none."""
    try:
        return os.getloadavg()
    except OSError:
        return None


def machine_info():
    """CPU model, cores, versions and BLAS, without importing the optional libraries."""
    try:
        affinity = len(os.sched_getaffinity(0))
    except AttributeError:
        affinity = os.cpu_count()
    return {"cpu_model": cpu_model(), "cores": os.cpu_count(), "cores_usable": affinity,
            "host": socket.gethostname(), "platform": platform.platform(),
            "python": platform.python_version(), "versions": versions(),
            "numpy_blas": numpy_blas(), "threadpools": threadpools(),
            "load_average_at_start": load_average()}


# ------------------------------------------------------------------------------ memory
def rss_status():
    """{"VmRSS": bytes, "VmHWM": bytes} from /proc/self/status (empty where there is none)."""
    out = {}
    try:
        with open("/proc/self/status") as f:
            for line in f:
                if line.startswith(("VmRSS:", "VmHWM:")):
                    key, val = line.split(":", 1)
                    out[key] = int(val.split()[0]) * 1024
    except OSError:
        pass
    return out


def reset_peak_rss():
    """Reset the resident-set high-water mark to the current resident set. Returns the
    method used: "clear_refs" or "ru_maxrss" (the lifetime peak, where the reset is not
    allowed)."""
    try:
        with open("/proc/self/clear_refs", "w") as f:
            f.write("5")
        return "clear_refs"
    except OSError:
        return "ru_maxrss"


def peak_rss_bytes(method):
    """The resident-set peak in bytes by ``method`` (see ``reset_peak_rss``)."""
    if method == "clear_refs":
        return rss_status().get("VmHWM")
    import resource
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
