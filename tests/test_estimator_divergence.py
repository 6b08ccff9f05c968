"""MLPClassifier / MLPRegressor ``on_divergence``: "continue" is scikit-learn's own path,
"stop" (default) stops at the divergence with scikit-learn's error, "raise" raises Diverged."""

import warnings

import numpy as np
import pytest

import inertia

sk_nn = pytest.importorskip("sklearn.neural_network")


def _data():
    rng = np.random.default_rng(0)
    return rng.normal(size=(50, 3)) * 100, rng.normal(size=50) * 1e3


KW = dict(hidden_layer_sizes=(5,), learning_rate_init=1.0, max_iter=20, random_state=0)


def _fit(model, X, y):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        with pytest.raises(ValueError) as ei:
            model.fit(X, y)
    return str(ei.value)


def test_stop_raises_sklearns_error_with_the_finite_epochs():
    X, y = _data()
    theirs = sk_nn.MLPRegressor(solver="sgd", **KW)
    want = _fit(theirs, X, y)
    mine = inertia.MLPRegressor(**KW)
    assert mine.on_divergence == "stop"
    assert _fit(mine, X, y) == want
    finite = [v for v in theirs.loss_curve_ if np.isfinite(v)]
    assert 0 < len(mine.loss_curve_) == len(finite) < len(theirs.loss_curve_)
    np.testing.assert_allclose(mine.loss_curve_, finite, rtol=1e-9)
    assert all(np.isfinite(c).all() for c in mine.coefs_ + mine.intercepts_)


def test_continue_is_sklearns_path():
    X, y = _data()
    theirs = sk_nn.MLPRegressor(solver="sgd", **KW)
    want = _fit(theirs, X, y)
    mine = inertia.MLPRegressor(on_divergence="continue", **KW)
    assert _fit(mine, X, y) == want
    assert len(mine.loss_curve_) == len(theirs.loss_curve_) == mine.n_iter_


def test_raise_gives_diverged_at_the_estimators_epoch():
    X, y = _data()
    mine = inertia.MLPRegressor(on_divergence="raise", **KW)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        with pytest.raises(inertia.Diverged) as ei:
            mine.fit(X, y)
    assert ei.value.diverged.epoch == len(mine.loss_curve_)


@pytest.mark.filterwarnings("ignore:overflow encountered")
def test_stop_with_early_stopping_keeps_the_best_weights_as_sklearn():
    X, y = _data()
    kw = dict(KW, early_stopping=True, n_iter_no_change=50)
    theirs = sk_nn.MLPRegressor(solver="sgd", **kw)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        theirs.fit(X, y)                      # no error: the best finite weights come back
    mine = inertia.MLPRegressor(**kw)
    with pytest.warns(inertia.DivergenceWarning):
        mine.fit(X, y)
    for a, b in zip(mine.coefs_ + mine.intercepts_, theirs.coefs_ + theirs.intercepts_):
        np.testing.assert_allclose(a, b, rtol=1e-9)


def test_bad_policy_is_refused():
    X, y = _data()
    with pytest.raises(ValueError, match="on_divergence"):
        inertia.MLPRegressor(on_divergence="ignore", **KW).fit(X, y)
