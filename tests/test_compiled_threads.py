"""The compiled loop on batches of many tiles: chunked sums that match the engine loop, the
same bits on one thread or several, and the thread setting's errors."""

import numpy as np
import pytest

import inertia
from inertia import Dense, Network, SGD
from inertia.fused import runner as compiled
from inertia.fused import tiles as steps

ROWS = 5 * steps.TILE + 37            # six tiles, the last one short: six chunks


def _data(dtype="float64"):
    rng = np.random.default_rng(7)
    X = rng.standard_normal((ROWS, 5)).astype(dtype)
    y = rng.standard_normal((ROWS, 2)).astype(dtype)
    return X, y


def _net(dtype="float64"):
    return Network(5, [Dense(9, "tanh"), Dense(7, "sigmoid"), Dense(2, "linear")], seed=3,
                   dtype=dtype)


def _fit(net, X, y, opt, monkeypatch=None, parallel=None, **kw):
    if monkeypatch is not None:
        monkeypatch.setattr(compiled.CompiledSteps, "_plan",
                            lambda self, counts: [(0, counts.shape[0], parallel)])
    return inertia.fit(net, X, y, "mse", opt, progress=False, **kw)


@pytest.mark.parametrize("batch_size", [None, 3 * steps.TILE])
@pytest.mark.parametrize("parallel", [False, True])
def test_chunked_batches_match_engine_loop(monkeypatch, parallel, batch_size):
    X, y = _data()
    a, b = _net(), _net()
    ha = _fit(a, X, y, SGD(0.1, momentum=0.9, nesterov=True), monkeypatch, parallel,
              epochs=6, batch_size=batch_size, seed=0, compiled=True)
    hb = _fit(b, X, y, SGD(0.1, momentum=0.9, nesterov=True), epochs=6,
              batch_size=batch_size, seed=0, compiled=False)
    np.testing.assert_allclose(a.flat, b.flat, rtol=1e-11, atol=1e-13)
    np.testing.assert_allclose(ha.loss, hb.loss, rtol=1e-11)


@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_one_thread_and_several_give_the_same_bits(monkeypatch, dtype):
    X, y = _data(dtype)
    out = []
    for parallel in (False, True, None):
        net = _net(dtype)
        h = _fit(net, X, y, SGD(0.05, momentum=0.9), monkeypatch, parallel, epochs=4,
                 batch_size=2 * steps.TILE + 1, shuffle=True, seed=1)
        out.append((net.flat.copy(), list(h.loss)))
    for flat, loss in out[1:]:
        assert np.array_equal(flat, out[0][0])
        assert loss == out[0][1]


def test_the_measured_choice_tries_both_ways(monkeypatch):
    monkeypatch.setenv("INERTIA_THREADS", "2")
    X, y = _data("float32")
    net = _net("float32")
    opt = SGD(0.05, momentum=0.9)
    net.bind(opt)
    X, y = inertia.training.plan._check_data(net, X, y, "mse")
    run = compiled.CompiledSteps(net, opt, "mse", X, y)
    order = np.arange(ROWS)
    starts = np.zeros(1, dtype=np.int64)
    counts = np.full(1, ROWS, dtype=np.int64)
    for _ in range(6):
        run.run(order, starts, counts, 0.05, 0.9)
    assert len(run._seconds[True]) >= 2 and len(run._seconds[False]) >= 2
    # a batch of one tile never asks
    assert run._plan(np.full(1, steps.TILE, dtype=np.int64)) == [(0, 1, None)]
    # every fourth call runs its first step the other way
    plans = [run._plan(np.full(5, ROWS, dtype=np.int64)) for _ in range(8)]
    split = [p for p in plans if len(p) == 2]
    assert len(split) == 2 and all(p[0][:2] == (0, 1) and p[1][:2] == (1, 5) and
                                   p[0][2] != p[1][2] for p in split)


def test_the_first_calls_time_one_thread_on_their_first_steps_only():
    rec = {True: [], False: [], "calls": 0}
    # while measuring: the first steps on one thread, the rest on threads
    assert compiled.measured_ways(rec, 64, 4) == [(0, 4, False), (4, 64, True)]
    # a call too short to split: one way, the ways taking turns
    assert compiled.measured_ways(rec, 4, 4) == [(0, 4, True)]
    rec[True] += [1.0, 2.0]
    assert compiled.measured_ways(rec, 1, 1) == [(0, 1, False)]
    rec[False] += [3.0, 4.0]
    # measured: the faster way runs the call, every fourth call checked the other way
    plans = [compiled.measured_ways(rec, 64, 4) for _ in range(4)]
    assert plans.count([(0, 64, True)]) == 3 and [(0, 4, False), (4, 64, True)] in plans


@pytest.mark.parametrize("value", ["0", "-2", "two"])
def test_bad_thread_setting_is_one_line(monkeypatch, value):
    monkeypatch.setenv("INERTIA_THREADS", value)
    X, y = _data()
    with pytest.raises(ValueError) as ei:
        _fit(_net(), X, y, SGD(0.1), epochs=1)
    assert "INERTIA_THREADS" in str(ei.value) and "\n" not in str(ei.value)


def test_thread_setting_is_read(monkeypatch):
    monkeypatch.setenv("INERTIA_THREADS", "1")
    assert compiled.threads() == 1
    monkeypatch.delenv("INERTIA_THREADS")
    assert compiled.threads() >= 1


def test_the_thread_setting_starts_numbas_threading_layer():
    """With INERTIA_THREADS set, the count comes from the variable, yet numba's threading
    layer must still start before the first kernel call: a parallel kernel loaded from
    numba's cache (not compiled in the process) can need it, and a process that skipped it
    died with a segmentation fault in the estimators' first epoch. In a fresh interpreter,
    where nothing has started it yet."""
    import os
    import subprocess
    import sys

    script = ("from numba.np.ufunc import parallel\n"
              "from inertia.fused import runner\n"
              "if not hasattr(parallel, '_is_initialized'):\n"
              "    print('unknown')\n"
              "    raise SystemExit\n"
              "assert not parallel._is_initialized\n"
              "assert runner.threads() == 1\n"
              "print(parallel._is_initialized)\n")
    out = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True,
                         timeout=120, env={**os.environ, "INERTIA_THREADS": "1"})
    if out.stdout.strip() == "unknown":
        pytest.skip("this numba keeps its threading layer's state elsewhere")
    assert out.returncode == 0 and out.stdout.strip() == "True", out.stdout + out.stderr


FORK_SCRIPT = """
import os, sys
import numpy as np
import inertia
from inertia import Dense, Network, SGD

rng = np.random.default_rng(7)
X = rng.standard_normal((5000, 5)).astype("float32")
y = rng.standard_normal((5000, 2)).astype("float32")

def train():
    net = Network(5, [Dense(9, "tanh"), Dense(7, "sigmoid"), Dense(2)], seed=3)
    inertia.fit(net, X, y, "mse", SGD(0.05, momentum=0.9), epochs=3, progress=False)
    return net.flat.copy()

parent = train()
pid = os.fork()
if pid == 0:
    os._exit(0 if np.array_equal(train(), parent) else 3)
_, status = os.waitpid(pid, 0)
print("signalled" if os.WIFSIGNALED(status) else os.WEXITSTATUS(status))
"""


@pytest.mark.skipif(not hasattr(__import__("os"), "fork"), reason="needs fork()")
def test_a_forked_child_trains_after_the_parent_used_threads():
    # GNU OpenMP terminates a forked child that starts threads its parent had started; the
    # child must train on one thread, to the same numbers. In a fresh interpreter: this test
    # process has other libraries' threads running, which fork() does not carry either.
    import subprocess
    import sys

    out = subprocess.run([sys.executable, "-c", FORK_SCRIPT], capture_output=True, text=True,
                         timeout=300, env={**__import__("os").environ, "INERTIA_THREADS": "2"})
    assert out.returncode == 0, out.stderr[-2000:]
    assert out.stdout.strip().splitlines()[-1] == "0", out.stdout + out.stderr[-2000:]
