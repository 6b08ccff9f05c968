"""Kill -9 at random moments, rerun, as often as it takes: the final parameters equal the
uninterrupted run's bit for bit (full batch, shuffled mini-batches, online, segments,
per-step schedules, every optimizer, the compiled loop and the engine loop)."""

import importlib.util
import os
import signal
import subprocess
import sys
import time
import zlib

import numpy as np
import pytest

import inertia

HERE = os.path.dirname(os.path.abspath(__file__))
_spec = importlib.util.spec_from_file_location("kill_worker", os.path.join(HERE, "kill_worker.py"))
worker = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(worker)

KILLS_PER_CONFIG = 2          # 10 configurations: 20 kills


def _start(name, ckpt, out):
    env = dict(os.environ, PYTHONPATH=os.path.dirname(os.path.dirname(inertia.__file__)),
               INERTIA_THREADS="1")
    return subprocess.Popen([sys.executable, os.path.join(HERE, "kill_worker.py"), name, ckpt,
                             out], stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=env,
                            text=True)


def _mtime(path):
    try:
        return os.stat(path).st_mtime_ns
    except FileNotFoundError:
        return None


def _kill_after_progress(proc, ckpt, delay):
    """SIGKILL ``proc`` ``delay`` seconds after it has written a new checkpoint (so that
    every run makes progress and the kill lands at a random moment of a run, checkpoint
    writes included). False: the run ended first."""
    before = _mtime(ckpt)
    while proc.poll() is None and _mtime(ckpt) in (before, None):
        time.sleep(0.002)
    time.sleep(delay)
    if proc.poll() is not None:
        return False
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    return True


@pytest.mark.parametrize("name", sorted(worker.CONFIGS))
def test_kill_and_resume_is_exact(name, tmp_path):
    ref, ref_hist = worker.train(name)
    assert np.isfinite(ref.flat).all() and ref_hist.diverged is None
    ckpt = str(tmp_path / "run.ckpt")
    out = str(tmp_path / "final.npy")
    rng = np.random.default_rng(zlib.crc32(name.encode()))
    kills = resumed = 0
    for attempt in range(40):
        resumed += os.path.exists(ckpt)
        proc = _start(name, ckpt, out)
        if kills < KILLS_PER_CONFIG and _kill_after_progress(proc, ckpt,
                                                             float(rng.uniform(0.0, 0.05))):
            kills += 1
            continue
        _, err = proc.communicate(timeout=120)
        assert proc.returncode == 0, err
        assert np.array_equal(np.load(out), np.asarray(ref.flat)), name
        if kills == KILLS_PER_CONFIG:
            break
        os.unlink(out)                # the run outpaced the kills (a busy machine): again
    assert kills == KILLS_PER_CONFIG
    assert resumed >= 1                      # some kill landed after a checkpoint
    final = np.load(out)
    assert np.array_equal(final, np.asarray(ref.flat)), \
        f"{name}: max difference {np.abs(final - ref.flat).max()}"
    assert not os.path.exists(ckpt)          # removed when the run completed
