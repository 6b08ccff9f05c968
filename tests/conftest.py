import os
import signal

# The tests of Ctrl-C (in-process and in child processes) need SIGINT delivered. A suite
# started in the background by a shell without job control inherits SIGINT ignored, and a
# child process inherits that too; give the process Python's own handler back.
if signal.getsignal(signal.SIGINT) is signal.SIG_IGN:
    signal.signal(signal.SIGINT, signal.default_int_handler)

# Keras 3 runs on the torch backend in the test environment (no TensorFlow installed).
os.environ.setdefault("KERAS_BACKEND", "torch")

import numpy as np  # noqa: E402
import pytest  # noqa: E402

import inertia  # noqa: E402

ENGINES = inertia.engines.available()


@pytest.fixture(params=ENGINES)
def engine_name(request):
    """Every installed engine: the shared suite runs once per engine."""
    return request.param


@pytest.fixture
def rng():
    return np.random.default_rng(1234)
