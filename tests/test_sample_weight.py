"""Sample weights: the loss sum_i w_i l_i / sum_i w_i (scikit-learn's MLP rule), its gradient,
the engine loop on both engines, the estimators against scikit-learn, and the errors."""

import warnings

import numpy as np
import pytest

import inertia
from inertia.ops import losses

OUT = {"mse": "linear", "quadratic": "tanh", "bce": "sigmoid", "cross_entropy": "softmax"}
ENGINES = ["numpy", "torch"]


def _net(loss, engine="numpy", k=3, seed=0):
    return inertia.Network(4, [inertia.Dense(6, "tanh"), inertia.Dense(k, OUT[loss])],
                           seed=seed, dtype="float64", engine=engine)


def _data(loss, n=13, k=3, seed=1):
    rng = np.random.default_rng(seed)
    X = rng.normal(size=(n, 4))
    if loss == "cross_entropy":
        y = rng.integers(0, k, size=n)
    elif loss == "bce":
        y = rng.uniform(size=(n, k))
    else:
        y = rng.normal(size=(n, k))
    w = rng.integers(0, 4, size=n).astype(np.float64)
    w[0] = 2.0                              # at least one positive weight
    return X, y, w


@pytest.mark.parametrize("loss", list(OUT))
def test_weighted_gradient_equals_central_differences(loss):
    """Every parameter's derivative of the weighted loss, by central differences in float64
    (step 1e-6: truncation ~1e-12, round-off ~1e-10 on a loss of order 1)."""
    net = _net(loss)
    X, y, w = _data(loss)
    w = w + np.random.default_rng(2).uniform(size=w.shape)       # non-integer weights
    _, grads = net.gradients(X, y, loss, sample_weight=w)
    params = net.parameters()
    h = 1e-6
    for li, (W, b) in enumerate(params):
        for which, arr in ((0, W), (1, b)):
            flat = arr.reshape(-1)
            for idx in range(0, flat.size, 3):
                saved = flat[idx]
                flat[idx] = saved + h
                up = net.set_parameters(params).loss(X, y, loss, sample_weight=w)
                flat[idx] = saved - h
                down = net.set_parameters(params).loss(X, y, loss, sample_weight=w)
                flat[idx] = saved
                numeric = (up - down) / (2 * h)
                analytic = grads[li][which].reshape(-1)[idx]
                assert abs(numeric - analytic) <= 1e-7 + 1e-6 * abs(analytic), (li, which, idx)


def _fit(net, X, y, loss, w=None, **kw):
    opt = inertia.SGD(0.05, momentum=0.9)
    hist = inertia.fit(net, X, y, loss, opt, epochs=6, progress=False, compiled=False,
                       sample_weight=w, **kw)
    return hist, net.parameters()


@pytest.mark.parametrize("engine", ENGINES)
@pytest.mark.parametrize("loss", list(OUT))
def test_full_batch_weight_two_equals_the_row_twice(loss, engine):
    """Integer weights w in full batch train exactly as each row repeated w times (a weight
    of 0 drops the row): same History and weights to float64 round-off."""
    if engine == "torch":
        pytest.importorskip("torch")
    X, y, w = _data(loss)
    reps = w.astype(int)
    h1, p1 = _fit(_net(loss, engine), X, y, loss, w)
    h2, p2 = _fit(_net(loss, engine), np.repeat(X, reps, axis=0), np.repeat(y, reps, axis=0),
                  loss)
    np.testing.assert_allclose(h1.loss, h2.loss, rtol=1e-12, atol=1e-14)
    for (a, b), (c, d) in zip(p1, p2):
        np.testing.assert_allclose(a, c, rtol=1e-11, atol=1e-13)
        np.testing.assert_allclose(b, d, rtol=1e-11, atol=1e-13)


@pytest.mark.parametrize("engine", ENGINES)
@pytest.mark.parametrize("loss", list(OUT))
def test_weights_of_one_equal_no_weights_bit_for_bit(loss, engine):
    """Mini-batches (a smaller last one), shuffled, with weight decay: ones change nothing."""
    if engine == "torch":
        pytest.importorskip("torch")
    X, y, _ = _data(loss, n=17)
    runs = []
    for w in (None, np.ones(17)):
        net = _net(loss, engine)
        opt = inertia.SGD(0.05, momentum=0.9, weight_decay=1e-3)
        hist = inertia.fit(net, X, y, loss, opt, epochs=4, batch_size=5, seed=3,
                           progress=False, compiled=False, sample_weight=w)
        runs.append((hist.loss, net.parameters()))
    assert runs[0][0] == runs[1][0]
    for (a, b), (c, d) in zip(runs[0][1], runs[1][1]):
        np.testing.assert_array_equal(a, c)
        np.testing.assert_array_equal(b, d)


@pytest.mark.parametrize("loss", list(OUT))
def test_gradient_equals_torch_autograd(loss):
    """torch's own per-row losses (reduction="none"), weighted and divided by the weights'
    sum, differentiated by autograd, against inertia's value and gradient."""
    torch = pytest.importorskip("torch")
    F = torch.nn.functional
    net = _net(loss)
    X, y, w = _data(loss)
    value, grads = net.gradients(X, y, loss, sample_weight=w)
    ps = [torch.tensor(a, requires_grad=True) for pair in net.parameters() for a in pair]
    x = torch.tensor(X)
    z = torch.tanh(x @ ps[0].T + ps[1]) @ ps[2].T + ps[3]
    wt = torch.tensor(w)
    if loss == "cross_entropy":
        rows = F.cross_entropy(z, torch.tensor(y), reduction="none")
    else:
        yt = torch.tensor(y)
        if loss == "bce":
            rows = F.binary_cross_entropy(torch.sigmoid(z), yt, reduction="none").mean(1)
        elif loss == "mse":
            rows = F.mse_loss(z, yt, reduction="none").mean(1)
        else:
            rows = F.mse_loss(torch.tanh(z), yt, reduction="none").sum(1) / 2
    ref = (wt * rows).sum() / wt.sum()
    ref.backward()
    assert value == pytest.approx(ref.item(), rel=1e-12)
    mine = [g for pair in grads for g in pair]
    for g, p in zip(mine, ps):
        np.testing.assert_allclose(g, p.grad.numpy(), rtol=1e-10, atol=1e-13)


def test_checkpoint_fingerprint_includes_the_weights():
    from inertia.training import checkpoint as ckpt
    from inertia.training.plan import make_plan

    X, y, w = _data("mse")

    def fp(weights):
        net, opt = _net("mse"), inertia.SGD(0.1)
        plan = make_plan(net, X, y, "mse", opt, 2, None, True, 0, None, None, False, None, None,
                         False, "stop", "c.ckpt", 1, sample_weight=weights)
        return ckpt.fingerprint(net, opt, plan)

    assert fp(None) != fp(w)
    assert fp(w) != fp(w + 1)
    assert fp(w) == fp(w.copy())


@pytest.mark.parametrize("bad, words", [
    (np.ones(5), "shape"),
    (np.r_[np.ones(12), np.nan], "NaN"),
    (np.r_[np.ones(12), -1.0], "negative"),
    (np.zeros(13), "all zero"),
    (np.array(["a"] * 13), "non-numbers"),
])
def test_bad_weights_are_one_line_errors(bad, words):
    X, y, _ = _data("mse")
    net = _net("mse")
    before = net.parameters()
    with pytest.raises(ValueError, match=words) as err:
        inertia.fit(net, X, y, "mse", inertia.SGD(0.1), epochs=1, progress=False,
                    sample_weight=bad)
    assert "\n" not in str(err.value)
    for (a, _), (b, _) in zip(before, net.parameters()):
        np.testing.assert_array_equal(a, b)


@pytest.mark.parametrize("engine", ENGINES)
def test_a_batch_of_zero_weights_is_refused_when_its_epoch_is_drawn(engine):
    """sum w l / sum w is 0 / 0 on a batch whose rows all weigh 0 (scikit-learn raises
    ZeroDivisionError there): one line naming the batch and epoch, before any step of the
    epoch, so before any work for the first or an unshuffled one; a shuffled run whose
    batches all hold weight trains."""
    pytest.importorskip(engine)
    X, y, _ = _data("mse", n=40)
    w = np.ones(40)
    w[10:20] = 0.0
    for shuffle, bs, words in ((False, 10, "batch 2 of epoch 1"), (True, 1, "of epoch 1")):
        net = _net("mse", engine)
        before = net.parameters()
        with pytest.raises(ValueError, match=words + ".* holds only rows of sample weight 0"
                           ) as err:
            inertia.fit(net, X, y, "mse", inertia.SGD(0.1), epochs=2, batch_size=bs,
                        shuffle=shuffle, progress=False, sample_weight=w)
        assert "\n" not in str(err.value)
        for (a, _), (b, _) in zip(before, net.parameters()):
            np.testing.assert_array_equal(a, b)
    hist = inertia.fit(_net("mse", engine), X, y, "mse", inertia.SGD(0.1), epochs=3,
                       batch_size=11, progress=False, sample_weight=w, seed=0)
    assert len(hist.loss) == 3 and np.isfinite(hist.loss).all()


def test_compiled_loop_refuses_weights():
    X, y, w = _data("mse")
    with pytest.raises(ValueError, match="compiled loop takes no sample_weight"):
        inertia.fit(_net("mse"), X, y, "mse", inertia.SGD(0.1), epochs=1, progress=False,
                    compiled=True, sample_weight=w)
    hist = inertia.fit(_net("mse"), X, y, "mse", inertia.SGD(0.1), epochs=1, progress=False,
                       sample_weight=w)          # compiled unset: the engine loop runs
    assert len(hist.loss) == 1


# --- the estimators against scikit-learn 1.9's MLP with sample_weight -------------------------
sk = pytest.importorskip("sklearn.neural_network")
RTOL, ATOL = 1e-9, 1e-11


def _same(a, b):
    for p, q in zip(a.coefs_ + a.intercepts_, b.coefs_ + b.intercepts_):
        np.testing.assert_allclose(p, q, rtol=RTOL, atol=ATOL)
    np.testing.assert_allclose(a.loss_curve_, b.loss_curve_, rtol=RTOL, atol=ATOL)
    assert a.n_iter_ == b.n_iter_


def _weights(n, seed=0):
    return np.random.default_rng(seed).uniform(0.0, 3.0, size=n)


@pytest.mark.parametrize("batch_size, alpha", [("auto", 0.0), (40, 1e-3), (32, 0.0)])
def test_classifier_with_sample_weight_equals_sklearn(batch_size, alpha):
    from sklearn.datasets import load_iris
    from inertia.estimators import MLPClassifier

    X, y = load_iris(return_X_y=True)
    X = (X - X.mean(0)) / X.std(0)
    w = _weights(X.shape[0])
    kw = dict(hidden_layer_sizes=(7,), activation="tanh", learning_rate_init=0.1,
              batch_size=batch_size, alpha=alpha, max_iter=12, random_state=4)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        a = sk.MLPClassifier(solver="sgd", **kw).fit(X, y, sample_weight=w)
        b = MLPClassifier(**kw).fit(X, y, sample_weight=w)
    _same(a, b)


@pytest.mark.parametrize("alpha", [0.0, 1e-2])
def test_regressor_with_sample_weight_equals_sklearn(alpha):
    from inertia.estimators import MLPRegressor

    rng = np.random.default_rng(5)
    X = rng.normal(size=(70, 5))
    Y = np.stack([np.sin(X[:, 0]) + X[:, 1] * X[:, 2], np.tanh(X[:, 3]) - X[:, 4]], 1)
    w = _weights(70, seed=1)
    kw = dict(hidden_layer_sizes=(8,), activation="logistic", learning_rate_init=0.05,
              batch_size=16, alpha=alpha, max_iter=10, random_state=2, momentum=0.8)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        a = sk.MLPRegressor(solver="sgd", **kw).fit(X, Y, sample_weight=w)
        b = MLPRegressor(**kw).fit(X, Y, sample_weight=w)
        _same(a, b)
        for _ in range(2):                       # partial_fit keeps the velocities
            a.partial_fit(X, Y, sample_weight=w)
            b.partial_fit(X, Y, sample_weight=w)
    _same(a, b)


def test_multilabel_with_sample_weight_equals_sklearn():
    from sklearn.datasets import make_multilabel_classification
    from inertia.estimators import MLPClassifier

    X, Y = make_multilabel_classification(n_samples=60, n_features=6, n_classes=3,
                                          random_state=0)
    X = (X - X.mean(0)) / X.std(0)
    w = _weights(60, seed=2)
    kw = dict(hidden_layer_sizes=(5,), learning_rate_init=0.1, batch_size=25, alpha=1e-3,
              max_iter=8, random_state=3)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        a = sk.MLPClassifier(solver="sgd", **kw).fit(X, Y, sample_weight=w)
        b = MLPClassifier(**kw).fit(X, Y, sample_weight=w)
    _same(a, b)


@pytest.mark.parametrize("classifier", [True, False])
def test_early_stopping_with_sample_weight_equals_sklearn(classifier):
    """The weights split with their rows, and the validation score is weighted, as in
    scikit-learn's ``_fit_stochastic``: the same stopping epoch, best score and weights."""
    from sklearn.datasets import load_iris
    from inertia import estimators

    X, y = load_iris(return_X_y=True)
    X = (X - X.mean(0)) / X.std(0)
    if not classifier:
        X, y = X[:, 1:], X[:, 0]
    w = _weights(X.shape[0], seed=3)
    name = "MLPClassifier" if classifier else "MLPRegressor"
    kw = dict(hidden_layer_sizes=(6,), learning_rate_init=0.05, batch_size=16, alpha=1e-3,
              max_iter=60, random_state=1, early_stopping=True, validation_fraction=0.3,
              n_iter_no_change=4)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        a = getattr(sk, name)(solver="sgd", **kw).fit(X, y, sample_weight=w)
        b = getattr(estimators, name)(**kw).fit(X, y, sample_weight=w)
    _same(a, b)
    np.testing.assert_allclose(a.validation_scores_, b.validation_scores_, rtol=1e-9,
                               atol=1e-12)
    assert a.best_validation_score_ == pytest.approx(b.best_validation_score_, rel=1e-9)
    unweighted = getattr(estimators, name)(**kw).fit(X, y)
    assert unweighted.validation_scores_ != b.validation_scores_


def test_estimator_errors():
    from inertia.estimators import MLPRegressor

    X = np.random.default_rng(0).normal(size=(30, 3))
    y = X[:, 0]
    with pytest.raises(ValueError, match="negative"):
        MLPRegressor(max_iter=2).fit(X, y, sample_weight=-np.ones(30))


def test_an_estimator_names_the_zero_weight_batch_without_a_wrong_epoch():
    X = np.random.default_rng(0).normal(size=(40, 3))
    w = np.ones(40)
    w[10:20] = 0.0
    est = inertia.MLPRegressor(hidden_layer_sizes=(4,), batch_size=10, shuffle=False,
                               max_iter=3)
    with pytest.raises(ValueError, match=r"batch 2 of an epoch \(10 rows\) holds only rows"):
        est.fit(X, X.sum(1), sample_weight=w)
