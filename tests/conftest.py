import os

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
