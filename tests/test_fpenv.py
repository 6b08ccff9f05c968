"""Subnormals flushed to zero inside the compiled loops (``inertia.fused.fpenv``), and the
floating-point state put back on every thread when a kernel returns."""

import numpy as np
import pytest
from numba import njit

import inertia
from inertia.fused import fpenv

pytestmark = pytest.mark.skipif(not fpenv.X86, reason="the MXCSR is x86's")


FLAGS = 0x3F        # the MXCSR's sticky exception flags, which NumPy's ufuncs clear too


@njit
def _mxcsr():
    return fpenv._get_mxcsr()


def _state():
    """The MXCSR's control bits (rounding, masks, flush-to-zero, denormals-are-zero)."""
    return int(_mxcsr()) & ~FLAGS


@njit
def _multiply(x, out, flushed):
    """out[0] = x[0] * x[1], with subnormals flushed while it runs when ``flushed`` (read and
    written through memory, as a kernel's data are, so ordered after the flush)."""
    old = fpenv.flush() if flushed else fpenv._get_mxcsr()
    out[0] = x[0] * x[1]
    fpenv.restore(old)


def _product(a, b, flushed):
    out = np.zeros(1, dtype=np.float32)
    _multiply(np.array([a, b], dtype=np.float32), out, flushed)
    return out[0]


def test_flush_makes_subnormal_results_zero_and_restore_puts_state_back():
    before = _state()
    if not before & fpenv.FTZ_DAZ:              # (a library may have set them process-wide)
        tiny = _product(1e-20, 1e-20, False)    # 1e-40: a float32 subnormal
        assert 0 < tiny < np.finfo(np.float32).tiny
    assert _product(1e-20, 1e-20, True) == 0
    assert _product(1e-18, 1e-18, True) == np.float32(1e-18) * np.float32(1e-18)  # normal
    assert _state() == before


@pytest.mark.parametrize("batch_size", [None, 16])
def test_compiled_fit_and_sweep_leave_the_callers_state(batch_size):
    """The calling thread's MXCSR is the same after a compiled fit and a sweep (threads or
    one) as before: nothing outside the kernels sees the flush."""
    before = _state()
    rng = np.random.default_rng(0)
    X = rng.uniform(-1, 1, (400, 3)).astype(np.float32)
    y = np.sin(X[:, :1])
    net = inertia.Network(3, [inertia.Dense(5, "sigmoid"), inertia.Dense(1, "linear")],
                          seed=0, dtype="float32")
    inertia.fit(net, X, y, "mse", inertia.SGD(lr=0.1, momentum=0.9), epochs=3,
                batch_size=batch_size, progress=False)
    assert _state() == before
    inertia.sweep(net, X, y, loss="mse", optimizer=inertia.SGD(lr=0.1, momentum=0.9),
                  grid={"lr": [0.01, 0.1], "momentum": [0.0, 0.9]}, epochs=3,
                  batch_size=batch_size, progress=False)
    assert _state() == before
    if not before & fpenv.FTZ_DAZ:                      # NumPy still sees subnormals
        assert np.float32(1e-20) * np.float32(1e-20) > 0
