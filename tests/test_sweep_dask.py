"""inertia.sweep on a Dask cluster: two worker processes give exactly the local numbers."""

import os

import numpy as np
import pytest

import inertia
from inertia import SGD, Dense, Network

distributed = pytest.importorskip(
    "distributed", reason="dask.distributed is not installed (pip install 'inertia[dask]')")


@pytest.fixture(scope="module")
def cluster():
    # the worker processes import the same inertia as this process
    old = os.environ.get("PYTHONPATH")
    os.environ["PYTHONPATH"] = os.pathsep.join(
        [os.path.dirname(os.path.dirname(inertia.__file__))] + ([old] if old else []))
    try:
        with distributed.LocalCluster(n_workers=2, processes=True, threads_per_worker=1,
                                      dashboard_address=None) as lc:
            yield lc
    finally:
        if old is None:
            os.environ.pop("PYTHONPATH", None)
        else:
            os.environ["PYTHONPATH"] = old


def _sweep(**kw):
    rng = np.random.default_rng(0)
    X = rng.uniform(-1, 1, (40, 3))
    y = np.sin(X[:, :1]) + X[:, 1:2] * X[:, 2:3]
    net = Network(3, [Dense(6, "tanh"), Dense(1, "linear")], seed=5, dtype="float64")
    with pytest.warns(inertia.DivergenceWarning):
        return inertia.sweep(net, X, y, "mse", SGD(0.1, convention="keras"),
                             {"lr": [0.05, 0.3, 1e12], "momentum": [0.0, 0.9]},
                             epochs=5, batch_size=12, validation_data=(X[:10], y[:10]), **kw)


def assert_same(a, b):
    assert a.configs == b.configs
    assert np.array_equal(a.loss, b.loss, equal_nan=True)
    assert np.array_equal(a.val_loss, b.val_loss, equal_nan=True)
    assert a.diverged == b.diverged and a.best == b.best
    for k in range(len(a)):
        for (w1, b1), (w2, b2) in zip(a.network(k).parameters(), b.network(k).parameters()):
            assert np.array_equal(w1, w2) and np.array_equal(b1, b2)


@pytest.mark.parametrize("seeds", [[0, 1, 2], None], ids=["seeds", "from-net"])
def test_cluster_sweep_equals_the_local_sweep(cluster, seeds):
    local = _sweep(seeds=seeds)
    assert any(d is not None for d in local.diverged)
    with distributed.Client(cluster) as client:
        assert_same(_sweep(seeds=seeds, cluster=client), local)
    assert_same(_sweep(seeds=seeds, cluster=cluster.scheduler_address), local)


def test_cluster_progress_moves_as_shards_finish(cluster, monkeypatch):
    """On a cluster the bar counts each shard's run-epochs when its records arrive, up to
    the total, and the numbers are the local sweep's."""
    from inertia.sweeps import api

    seen = []

    class Counter:
        def __init__(self, total, **kw):
            self.total, self.n = total, 0

        def update(self, k):
            self.n += k
            seen.append(k)

        def close(self):
            seen.append("closed")

    monkeypatch.setattr(api, "progress_bar", Counter)
    local = _sweep(seeds=[0, 1], progress=False)
    assert seen == []
    with distributed.Client(cluster) as client:
        assert_same(_sweep(seeds=[0, 1], cluster=client), local)
    assert seen[-1] == "closed" and sum(seen[:-1]) == 12 * 5 and len(seen) >= 3


def test_an_unreachable_scheduler_is_one_line():
    with pytest.raises((ValueError, OSError)) as info:
        _sweep_no_warn(cluster="tcp://127.0.0.1:9")
    assert "\n" not in str(info.value)
    with pytest.raises(ValueError, match="not a scheduler address .*'tcp://host:8786'") as info:
        _sweep_no_warn(cluster="nonsense")                 # no port: distributed's words
    assert "\n" not in str(info.value)


def _sweep_no_warn(**kw):
    X = np.zeros((4, 3))
    net = Network(3, [Dense(1, "linear")])
    return inertia.sweep(net, X, np.zeros(4), "mse", SGD(0.1), {"lr": [0.1]}, epochs=1, **kw)
