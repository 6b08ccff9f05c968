"""The estimators under scikit-learn's Dask backend: GridSearchCV and cross_val_score with
``joblib.parallel_backend("dask")`` on a two-process LocalCluster give the numbers of a run in
this process."""

import os

import numpy as np
import pytest

import inertia

distributed = pytest.importorskip(
    "distributed", reason="dask.distributed is not installed (pip install 'inertia[dask]')")
joblib = pytest.importorskip("joblib")
sklearn_ms = pytest.importorskip("sklearn.model_selection")


@pytest.fixture(scope="module")
def client():
    # the worker processes import the same inertia as this process
    old = os.environ.get("PYTHONPATH")
    os.environ["PYTHONPATH"] = os.pathsep.join(
        [os.path.dirname(os.path.dirname(inertia.__file__))] + ([old] if old else []))
    try:
        with distributed.LocalCluster(n_workers=2, processes=True, threads_per_worker=1,
                                      dashboard_address=None) as lc, \
                distributed.Client(lc) as c:
            yield c
    finally:
        if old is None:
            os.environ.pop("PYTHONPATH", None)
        else:
            os.environ["PYTHONPATH"] = old


def _search():
    from sklearn.datasets import load_digits
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    X, y = load_digits(return_X_y=True)
    X, y = X[:240], y[:240]
    pipe = make_pipeline(StandardScaler(),
                         inertia.MLPClassifier(hidden_layer_sizes=(16,), max_iter=10,
                                               learning_rate_init=0.05, batch_size=32,
                                               random_state=0))
    grid = {"mlpclassifier__momentum": [0.0, 0.9],
            "mlpclassifier__learning_rate_init": [0.01, 0.05]}
    return pipe, grid, X, y


def test_grid_search_on_the_dask_backend_equals_one_process(client):
    pipe, grid, X, y = _search()
    local = sklearn_ms.GridSearchCV(pipe, grid, cv=3, n_jobs=1).fit(X, y)
    with joblib.parallel_backend("dask"), distributed.get_task_stream(client) as stream:
        remote = sklearn_ms.GridSearchCV(pipe, grid, cv=3, n_jobs=-1).fit(X, y)
        scores = sklearn_ms.cross_val_score(pipe, X, y, cv=3, n_jobs=-1)
    np.testing.assert_array_equal(remote.cv_results_["mean_test_score"],
                                  local.cv_results_["mean_test_score"])
    assert remote.best_params_ == local.best_params_ and remote.best_score_ > 0.7
    np.testing.assert_array_equal(scores, sklearn_ms.cross_val_score(pipe, X, y, cv=3))
    assert len(stream.data) >= 12          # the fits ran as tasks on the cluster's workers
