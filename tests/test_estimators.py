"""inertia.MLPClassifier / MLPRegressor against scikit-learn's MLP (solver="sgd") step by step.

Tolerances: float64 training of at most a few hundred steps on standardised data, weights of
order 1; the runs below agree to about 1e-14, and round-off of that size grows at most
linearly with the steps, so rtol 1e-9 with atol 1e-11 leaves room and still fails on any real
difference in the rule (a wrong L2 scale, a learning rate off by one epoch, ...).
"""

import os
import pickle
import subprocess
import sys
import warnings
from functools import partial

import numpy as np
import pytest

pytest.importorskip("sklearn")

from sklearn import neural_network as sk  # noqa: E402
from sklearn.datasets import load_digits, load_iris, make_multilabel_classification  # noqa: E402
from sklearn.exceptions import ConvergenceWarning  # noqa: E402
from sklearn.model_selection import GridSearchCV, KFold, cross_val_score  # noqa: E402
from sklearn.pipeline import make_pipeline  # noqa: E402
from sklearn.preprocessing import StandardScaler  # noqa: E402

import inertia  # noqa: E402
from inertia.estimators import MLPClassifier, MLPRegressor  # noqa: E402

RTOL, ATOL = 1e-9, 1e-11


@pytest.fixture(autouse=True)
def _quiet():
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        yield


def _iris():
    X, y = load_iris(return_X_y=True)
    return (X - X.mean(0)) / X.std(0), y


def _regression(n=103, k=2, seed=0):
    rng = np.random.default_rng(seed)
    X = rng.normal(size=(n, 5))
    Y = np.stack([np.sin(X[:, 0]) + X[:, 1] * X[:, 2], np.tanh(X[:, 3]) - X[:, 4]], 1)[:, :k]
    return X, (Y[:, 0] if k == 1 else Y)


def _same(a, b, fields=("loss_curve_", "n_iter_", "t_", "validation_scores_")):
    """Weights, the loss curve and the counters of two fitted MLPs agree."""
    for p, q in zip(a.coefs_ + a.intercepts_, b.coefs_ + b.intercepts_):
        assert p.shape == q.shape
        np.testing.assert_allclose(p, q, rtol=RTOL, atol=ATOL)
    for f in fields:
        x, y = getattr(a, f), getattr(b, f)
        if x is None or y is None:
            assert x is None and y is None, f
        else:
            np.testing.assert_allclose(x, y, rtol=RTOL, atol=ATOL, err_msg=f)
    for f in ("best_loss_", "best_validation_score_"):
        x, y = getattr(a, f), getattr(b, f)
        assert (x is None) == (y is None), f
        if x is not None:
            np.testing.assert_allclose(x, y, rtol=RTOL, atol=ATOL, err_msg=f)


def _pair(cls, **kw):
    """(scikit-learn's estimator, inertia's) with the same settings."""
    ref = {"classifier": sk.MLPClassifier, "regressor": sk.MLPRegressor}[cls]
    mine = {"classifier": MLPClassifier, "regressor": MLPRegressor}[cls]
    return ref(solver="sgd", **kw), mine(**kw)


# --- the public inertia API the estimators are built on --------------------------------------
def test_second_fit_continues_the_first():
    """Two one-epoch fits with one optimizer equal one two-epoch fit (weights and losses)."""
    X, y = _regression(64, 1)
    nets, losses = [], []
    for calls in ([1, 1], [2]):
        net = inertia.Network(5, [inertia.Dense(7, "tanh"), inertia.Dense(1, "linear")],
                              seed=3, dtype="float64")
        opt = inertia.SGD(0.05, momentum=0.9, nesterov=True, weight_decay=0.01,
                          convention="sklearn")
        out = []
        for ep in calls:
            out += inertia.fit(net, X, y, "quadratic", opt, epochs=ep, batch_size=16,
                               shuffle=False, progress=False).loss
        nets.append(net.parameters())
        losses.append(out)
    np.testing.assert_allclose(losses[0], losses[1], rtol=1e-14, atol=0)
    for (w0, b0), (w1, b1) in zip(*nets):
        np.testing.assert_allclose(w0, w1, rtol=1e-14, atol=1e-16)
        np.testing.assert_allclose(b0, b1, rtol=1e-14, atol=1e-16)


@pytest.mark.parametrize("compiled", [True, False])
def test_record_steps_gives_each_steps_loss_and_squared_weights(compiled):
    """fit(record_steps=True): History.step_loss and step_weights_sq, checked against the same
    steps run one batch at a time (an optimizer shared across one-step fits, the squares
    summed by NumPy from the weights before each step); the compiled loop sums the squares
    in its update pass. 50 rows in batches of 16: a smaller last batch; 3 epochs."""
    X, y = _regression(50, 1, seed=5)

    def make():
        net = inertia.Network(5, [inertia.Dense(6, "tanh"), inertia.Dense(3, "relu"),
                                  inertia.Dense(1, "linear")], seed=2, dtype="float64")
        opt = inertia.SGD(0.05, momentum=0.9, nesterov=True, weight_decay=0.01,
                          convention="sklearn")
        return net, opt

    net, opt = make()
    hist = inertia.fit(net, X, y, "quadratic", opt, epochs=3, batch_size=16, shuffle=False,
                       progress=False, compiled=compiled, record_steps=True)
    assert len(hist.step_loss) == len(hist.step_weights_sq) == 12
    net_ref, opt_ref = make()
    losses, squares = [], []
    for _ in range(3):
        for lo in range(0, 50, 16):
            squares.append(sum(float(np.sum(w * w)) for w, _ in net_ref.parameters()))
            losses += inertia.fit(net_ref, X[lo:lo + 16], y[lo:lo + 16], "quadratic", opt_ref,
                                  epochs=1, progress=False, compiled=False).loss
    # weights of order 1, 12 steps: round-off of a few ulps of the sums (about 10)
    np.testing.assert_allclose(hist.step_weights_sq, squares, rtol=1e-13)
    np.testing.assert_allclose(hist.step_loss, losses, rtol=1e-12)
    np.testing.assert_allclose(hist.loss, np.mean(np.reshape(hist.step_loss, (3, 4)), 1),
                               rtol=1e-15)
    net_plain, opt_plain = make()
    plain = inertia.fit(net_plain, X, y, "quadratic", opt_plain, epochs=3, batch_size=16,
                        shuffle=False, progress=False, compiled=compiled)
    assert plain.step_loss == [] and plain.step_weights_sq == []
    assert plain.loss == hist.loss                  # recording changes no number
    for (w0, b0), (w1, b1) in zip(net.parameters(), net_plain.parameters()):
        np.testing.assert_array_equal(w0, w1)
        np.testing.assert_array_equal(b0, b1)


def test_import_inertia_does_not_import_sklearn():
    root = os.path.dirname(os.path.dirname(inertia.__file__))
    code = ("import sys, inertia; assert 'sklearn' not in sys.modules, 'sklearn imported'; "
            "m = inertia.MLPRegressor; assert 'sklearn' in sys.modules; print(m.__name__)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         env={**os.environ, "PYTHONPATH": root})
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "MLPRegressor"


def test_missing_sklearn_is_a_clear_import_error():
    root = os.path.dirname(os.path.dirname(inertia.__file__))
    code = ("import sys; sys.modules['sklearn'] = None\n"
            "import inertia\n"
            "try:\n    inertia.MLPClassifier\nexcept ImportError as e:\n    print(e)\n")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         env={**os.environ, "PYTHONPATH": root})
    assert out.returncode == 0, out.stderr
    assert "need scikit-learn: pip install scikit-learn" in out.stdout


# --- exact to scikit-learn ------------------------------------------------------------------
@pytest.mark.parametrize("learning_rate", ["constant", "invscaling", "adaptive"])
@pytest.mark.parametrize("nesterov", [True, False])
@pytest.mark.parametrize("early_stopping", [False, True])
def test_classifier_equals_sklearn(learning_rate, nesterov, early_stopping):
    """Same random_state: the same initial weights, shuffles and split, so the same fit;
    small tol and n_iter_no_change make the stopping and adaptive rules fire."""
    X, y = _iris()
    kw = dict(hidden_layer_sizes=(8, 5), learning_rate=learning_rate, learning_rate_init=0.05,
              momentum=0.9, nesterovs_momentum=nesterov, early_stopping=early_stopping,
              max_iter=60, random_state=0, batch_size=32, alpha=1e-3, n_iter_no_change=3,
              tol=1e-3)
    a, b = _pair("classifier", **kw)
    a.fit(X, y)
    b.fit(X, y)
    _same(a, b)
    assert b.out_activation_ == "softmax" and b.n_layers_ == 4 and b.n_outputs_ == 3
    np.testing.assert_array_equal(a.predict(X), b.predict(X))
    np.testing.assert_allclose(a.predict_proba(X), b.predict_proba(X), rtol=RTOL, atol=ATOL)


@pytest.mark.parametrize("learning_rate", ["constant", "invscaling", "adaptive"])
@pytest.mark.parametrize("alpha", [0.0, 1e-2])
def test_multioutput_regressor_equals_sklearn(learning_rate, alpha):
    """103 rows in batches of 20: a smaller last batch; alpha = 0 and alpha > 0 take the two
    ways of running an epoch (two fit calls, one call a batch)."""
    X, Y = _regression(103, 2)
    a, b = _pair("regressor", hidden_layer_sizes=(6,), activation="tanh", alpha=alpha,
                 learning_rate=learning_rate, learning_rate_init=0.02, batch_size=20,
                 max_iter=40, random_state=1, n_iter_no_change=2, tol=1e-3)
    _same(a.fit(X, Y), b.fit(X, Y))
    np.testing.assert_allclose(a.predict(X), b.predict(X), rtol=RTOL, atol=ATOL)
    assert b.out_activation_ == "identity" and b.predict(X).shape == (103, 2)
    np.testing.assert_allclose(a.score(X, Y), b.score(X, Y), rtol=RTOL)


@pytest.mark.parametrize("batch_size", ["auto", 30, 40])
@pytest.mark.parametrize("alpha", [0.0, 1e-3])
def test_every_way_of_running_an_epoch_equals_sklearn(batch_size, alpha):
    """150 rows: one batch ("auto" = 150), batches that divide n (30) and a smaller last batch
    (40); with alpha = 0 one or two fit calls an epoch, with alpha > 0 one a batch (see
    ``_BaseMLP._epoch``). n_iter_no_change = inf never stops the adaptive rule."""
    X, y = _iris()
    a, b = _pair("classifier", hidden_layer_sizes=(7,), activation="logistic",
                 learning_rate="adaptive", learning_rate_init=0.2, batch_size=batch_size,
                 alpha=alpha, max_iter=25, random_state=11, n_iter_no_change=np.inf)
    _same(a.fit(X, y), b.fit(X, y))
    assert b.n_iter_ == 25


@pytest.mark.parametrize("early_stopping", [False, True])
def test_regressor_early_stopping_equals_sklearn(early_stopping):
    X, y = _regression(120, 1, seed=4)
    a, b = _pair("regressor", hidden_layer_sizes=(10,), activation="logistic",
                 learning_rate_init=0.1, batch_size=16, max_iter=50, random_state=2,
                 early_stopping=early_stopping, validation_fraction=0.2, n_iter_no_change=4)
    _same(a.fit(X, y), b.fit(X, y))
    assert b.predict(X).shape == (120,)


def test_multilabel_equals_sklearn():
    """Multilabel: logistic outputs with the log loss summed over labels, as scikit-learn."""
    X, Y = make_multilabel_classification(n_samples=90, n_features=6, n_classes=4,
                                          random_state=0)
    X = (X - X.mean(0)) / X.std(0)
    a, b = _pair("classifier", hidden_layer_sizes=(9,), learning_rate_init=0.1,
                 batch_size=25, max_iter=30, random_state=3, alpha=1e-3)
    _same(a.fit(X, Y), b.fit(X, Y))
    assert b.out_activation_ == "logistic" and b.n_outputs_ == 4
    np.testing.assert_array_equal(a.predict(X), b.predict(X))
    np.testing.assert_allclose(a.predict_proba(X), b.predict_proba(X), rtol=RTOL, atol=ATOL)


def test_binary_string_labels_equal_sklearn():
    X, y = _iris()
    labels = np.where(y == 0, "setosa", "other")
    a, b = _pair("classifier", hidden_layer_sizes=(4,), activation="tanh", max_iter=25,
                 learning_rate_init=0.05, random_state=5, batch_size=40)
    _same(a.fit(X, labels), b.fit(X, labels))
    assert list(b.classes_) == ["other", "setosa"] and b.out_activation_ == "logistic"
    np.testing.assert_array_equal(a.predict(X), b.predict(X))
    np.testing.assert_allclose(b.predict_proba(X).sum(1), 1.0, rtol=1e-15)
    np.testing.assert_allclose(a.predict_log_proba(X), b.predict_log_proba(X), rtol=RTOL,
                               atol=ATOL)


@pytest.mark.parametrize("direction", ["sklearn->inertia", "inertia->sklearn"])
def test_warm_start_from_the_other_library(direction):
    """Weights set by hand on one estimator (from a one-epoch fit of the other), then a warm
    start on both: the same fit (a warm start keeps t_ and starts fresh velocities)."""
    X, y = _iris()
    kw = dict(hidden_layer_sizes=(6,), learning_rate="invscaling", learning_rate_init=0.1,
              max_iter=1, batch_size=50, momentum=0.8, random_state=7, shuffle=False)
    a, b = _pair("classifier", **kw)
    a.fit(X, y)
    b.set_params(random_state=8).fit(X, y)
    src, dst = (a, b) if direction == "sklearn->inertia" else (b, a)
    dst.coefs_ = [c.copy() for c in src.coefs_]
    dst.intercepts_ = [c.copy() for c in src.intercepts_]
    for est in (a, b):
        est.set_params(warm_start=True, max_iter=15)
        est.fit(X, y)
    _same(a, b, fields=("n_iter_", "t_"))
    np.testing.assert_allclose(a.loss_curve_[1:], b.loss_curve_[1:], rtol=RTOL, atol=ATOL)


def test_partial_fit_keeps_velocities_and_equals_sklearn():
    X, Y = _regression(60, 2, seed=9)
    kw = dict(hidden_layer_sizes=(5,), learning_rate_init=0.05, batch_size=16,
              random_state=0, shuffle=False)
    a, b = _pair("regressor", **kw)
    for _ in range(2):
        a.partial_fit(X, Y)
        b.partial_fit(X, Y)
    _same(a, b)
    two = MLPRegressor(max_iter=2, **kw).fit(X, Y)
    for p, q in zip(two.coefs_ + two.intercepts_, b.coefs_ + b.intercepts_):
        np.testing.assert_allclose(p, q, rtol=RTOL, atol=ATOL)
    np.testing.assert_allclose(two.loss_curve_, b.loss_curve_, rtol=RTOL, atol=ATOL)
    assert b.t_ == 120 and b.n_iter_ == 1


def test_partial_fit_classifier_needs_classes():
    X, y = _iris()
    b = MLPClassifier(hidden_layer_sizes=(4,), random_state=0)
    with pytest.raises(ValueError, match="classes must be passed"):
        b.partial_fit(X, y)
    a = sk.MLPClassifier(solver="sgd", hidden_layer_sizes=(4,), random_state=0)
    for est in (a, b):
        est.partial_fit(X[:70], y[:70], classes=[0, 1, 2])
        est.partial_fit(X[70:], y[70:])
    _same(a, b)


# --- inertia's own parameters -------------------------------------------------------------------
@pytest.mark.parametrize("convention", ["keras", "pytorch"])
def test_other_conventions_follow_the_same_path_at_a_constant_rate(convention):
    """keras (lr inside) is scikit-learn's rule; pytorch's b = mu b + g, w -= lr b is the same
    trajectory at a constant learning rate (v = -lr b); alpha stays alpha W / n_batch."""
    X, Y = _regression(80, 2, seed=2)
    kw = dict(hidden_layer_sizes=(7,), learning_rate_init=0.03, batch_size=32, max_iter=20,
              random_state=0, alpha=1e-2)
    _same(MLPRegressor(**kw).fit(X, Y), MLPRegressor(convention=convention, **kw).fit(X, Y))


def test_constant_lr_schedule_equals_constant_rule():
    X, y = _iris()
    kw = dict(hidden_layer_sizes=(5,), max_iter=10, random_state=0, batch_size=50)
    a = MLPClassifier(learning_rate_init=0.07, **kw).fit(X, y)
    b = MLPClassifier(lr_schedule=inertia.schedules.constant(0.07), **kw).fit(X, y)
    _same(a, b)


@pytest.mark.parametrize("optimizer", ["qhm", "aggmo", "adam", "adamw"])
def test_other_optimizers_train(optimizer):
    X, y = _iris()
    m = MLPClassifier(hidden_layer_sizes=(10,), optimizer=optimizer, alpha=0.0,
                      learning_rate_init=0.02, batch_size=16, max_iter=40,
                      random_state=0).fit(X, y)
    assert m.loss_curve_[-1] < 0.5 * m.loss_curve_[0]
    assert m.score(X, y) > 0.85


def test_float32_and_pickle():
    X, y = _iris()
    m = MLPClassifier(hidden_layer_sizes=(6,), dtype="float32", max_iter=30,
                      random_state=0).fit(X, y)
    assert m.coefs_[0].dtype == np.float32
    m2 = pickle.loads(pickle.dumps(m))
    np.testing.assert_array_equal(m.predict_proba(X), m2.predict_proba(X))


def test_torch_engine_equals_numpy_engine():
    pytest.importorskip("torch")
    X, Y = _regression(50, 2)
    kw = dict(hidden_layer_sizes=(6,), batch_size=16, max_iter=10, random_state=0)
    _same(MLPRegressor(**kw).fit(X, Y), MLPRegressor(engine="torch", **kw).fit(X, Y))


def test_verbose_prints_sklearns_lines(capsys):
    X, y = _iris()
    MLPClassifier(hidden_layer_sizes=(3,), max_iter=2, verbose=True, random_state=0).fit(X, y)
    assert capsys.readouterr().out.startswith("Iteration 1, loss = ")


@pytest.mark.parametrize("kw, match", [
    (dict(momentum=1.0), "momentum must be < 1"),
    (dict(weight_decay=0.1), "give alpha .* or weight_decay"),
    (dict(optimizer="adam"), "set alpha=0 and use weight_decay"),
    (dict(lr_schedule=inertia.schedules.constant(0.1), learning_rate="adaptive"),
     "lr_schedule replaces"),
    (dict(dampening=0.5), "dampening is part of the 'pytorch' convention"),
    (dict(convention="tf2"), "convention"),
    (dict(hidden_layer_sizes=(4, 0)), "hidden_layer_sizes"),
])
def test_bad_settings_raise_before_training(kw, match):
    X, y = _iris()
    with pytest.raises(ValueError, match=match):
        MLPClassifier(**kw).fit(X, y)


# --- model selection ----------------------------------------------------------------------------
def test_grid_search_and_cross_val_in_worker_processes():
    """GridSearchCV over a StandardScaler pipeline and cross_val_score, n_jobs=2 (joblib's
    worker processes) giving the numbers of n_jobs=1."""
    X, y = load_digits(return_X_y=True)
    X, y = X[:300], y[:300]
    pipe = make_pipeline(StandardScaler(), MLPClassifier(hidden_layer_sizes=(16,), max_iter=20,
                                                         learning_rate_init=0.05,
                                                         batch_size=32, random_state=0))
    grid = {"mlpclassifier__alpha": [1e-4, 1e-2], "mlpclassifier__momentum": [0.0, 0.9]}
    gs = GridSearchCV(pipe, grid, cv=3, n_jobs=2).fit(X, y)
    assert gs.best_score_ > 0.8
    assert set(gs.best_params_) == set(grid)
    s2 = cross_val_score(pipe, X, y, cv=3, n_jobs=2)
    s1 = cross_val_score(pipe, X, y, cv=3, n_jobs=1)
    np.testing.assert_array_equal(s1, s2)
    iris_X = load_iris(return_X_y=True)[0]
    folds = KFold(3, shuffle=True, random_state=0)
    kw = dict(hidden_layer_sizes=(8,), max_iter=30, batch_size=16, random_state=0,
              learning_rate_init=0.01)
    scores = [cross_val_score(make_pipeline(StandardScaler(), est(**kw)), iris_X[:, :3],
                              iris_X[:, 3], cv=folds, n_jobs=n_jobs)
              for est, n_jobs in ((MLPRegressor, 2), (partial(sk.MLPRegressor, solver="sgd"), 1))]
    np.testing.assert_allclose(scores[0], scores[1], rtol=RTOL)
    assert scores[0].mean() > 0.8
