"""The public API's bad input: one clear one-line error naming the argument,
the problem and the fix, raised before any work; never a raw internal error."""

import copy
import csv
import pickle

import numpy as np
import pytest

import inertia
from inertia import Dense, Network, SGD, datasets, schedules
from inertia.training import History


def net3():
    return Network(3, [Dense(4, "tanh"), Dense(1)], seed=0)


def data(n=40):
    X = np.random.default_rng(0).normal(size=(n, 3))
    return X, X.sum(1, keepdims=True)


def one_line(excinfo):
    msg = str(excinfo.value)
    assert msg and "\n" not in msg
    return msg


# net.W / net.b entries are live views of net.flat ------------------------------

@pytest.mark.parametrize("name", ["W", "b"])
def test_replacing_a_layer_view_is_refused(name):
    net = net3()
    views = getattr(net, name)
    before = views[0].copy()
    with pytest.raises(TypeError) as ex:
        views[0] = np.zeros_like(before)
    msg = one_line(ex)
    assert "set_parameters" in msg and f"net.{name}[i][...] = value" in msg
    np.testing.assert_array_equal(views[0], before)
    for mutate in (lambda v: v.append(before), lambda v: v.pop(), lambda v: v.__delitem__(0)):
        with pytest.raises(TypeError):
            mutate(views)
    assert len(views) == 2


def test_in_place_writes_still_reach_training():
    net = net3()
    net.W[0][...] = 0.0
    net.b[1][:] = 0.5
    assert np.all(net.flat[:12] == 0) and net.flat[-1] == 0.5
    X, y = data()
    inertia.fit(net, X, y, loss="mse", optimizer=SGD(0.1), epochs=3, progress=False)
    assert np.shares_memory(net.W[0], net.flat) and np.any(net.W[0] != 0)
    np.testing.assert_array_equal(net.predict(X[:3]),
                                  Network(3, net.layers).set_parameters(
                                      net.parameters()).predict(X[:3]))


def test_layer_views_copy_and_pickle():
    net = net3()
    for twin in (copy.copy(net.W), copy.deepcopy(net.W), pickle.loads(pickle.dumps(net.W))):
        assert len(twin) == 2 and all(np.array_equal(a, b) for a, b in zip(twin, net.W))


# seeds -------------------------------------------------------------------------

BAD_SEEDS = [-1, 1.5, True, "a", np.float64(2.0)]


@pytest.mark.parametrize("seed", BAD_SEEDS)
@pytest.mark.parametrize("call, name", [
    (lambda s: Network(3, [Dense(1)], seed=s), "seed"),
    (lambda s: datasets.smooth_regression(10, seed=s), "seed"),
    (lambda s: datasets.random_binary(10, 4, seed=s), "seed"),
    (lambda s: datasets.split(*data(10), seed=s), "seed"),
    (lambda s: datasets.train_test_split(*data(10), random_state=s), "random_state"),
], ids=["Network", "smooth_regression", "random_binary", "split", "train_test_split"])
def test_bad_seeds_are_named(call, name, seed):
    with pytest.raises(ValueError) as ex:
        call(seed)
    assert one_line(ex).startswith(f"{name} must be a non-negative integer")
    assert f"got {seed!r}" in str(ex.value)


def test_numpy_integer_seeds_still_work():
    a = Network(3, [Dense(2)], seed=np.int64(3)).parameters()
    b = Network(3, [Dense(2)], seed=3).parameters()
    np.testing.assert_array_equal(a[0][0], b[0][0])
    X, y = datasets.smooth_regression(10, seed=np.uint8(1))
    np.testing.assert_array_equal(X, datasets.smooth_regression(10, seed=1)[0])
    datasets.split(X, y, seed=np.int32(2))
    datasets.train_test_split(X, y, random_state=np.random.default_rng(0))
    Network(3, [Dense(2)], seed=None)


# a one-unit softmax --------------------------------------------------------------

def test_one_unit_softmax_is_refused():
    with pytest.raises(ValueError) as ex:
        Network(3, [Dense(4, "tanh"), Dense(1, "softmax")])
    assert "Dense(1, 'sigmoid')" in one_line(ex) and "'bce'" in str(ex.value)
    Network(3, [Dense(2, "softmax")])


def test_a_saved_one_unit_softmax_is_named_not_called_damaged(tmp_path):
    import json

    import inertia

    path = tmp_path / "m.npz"
    inertia.save(path, Network(3, [Dense(1, "sigmoid")]))
    with np.load(path) as f:
        arrays = dict(f)
    meta = json.loads(str(arrays["meta"]))
    meta["layers"][-1][1] = "softmax"                  # as inertia wrote it before the refusal
    arrays["meta"] = np.array(json.dumps(meta))
    np.savez(path, **arrays)
    with pytest.raises(ValueError) as ex:
        inertia.load(path)
    text = one_line(ex)
    assert "holds layers that inertia does not build" in text and "damaged" not in text
    assert "Dense(1, 'sigmoid')" in text


# raw errors from internals ---------------------------------------------------------

@pytest.mark.parametrize("params, kind, words", [
    (None, TypeError, "list of (W, b) pairs"),
    ([(np.zeros((4, 3)),), (np.zeros((1, 4)),)], ValueError, "layer 0: expected a (W, b) pair"),
    ([(np.zeros((4, 3)), np.zeros(4)), 5], ValueError, "layer 1: expected a (W, b) pair"),
])
def test_set_parameters_bad_structure(params, kind, words):
    with pytest.raises(kind) as ex:
        net3().set_parameters(params)
    assert words in one_line(ex)


def test_sparse_input_to_predict():
    sparse = pytest.importorskip("scipy.sparse")
    X, _ = data()
    net = net3()
    with pytest.raises(ValueError) as ex:
        net.predict(sparse.csr_matrix(X))
    assert "sparse input is not supported: convert with .toarray()" in one_line(ex)
    net.scaling = inertia.network.Scaling(np.zeros(3), np.ones(3))
    with pytest.raises(ValueError, match="sparse input is not supported"):
        net.predict(sparse.csr_matrix(X))


def test_load_with_several_targets(tmp_path):
    path = tmp_path / "d.csv"
    with open(path, "w", newline="") as f:
        csv.writer(f).writerows([["a", "b", "c"], [1, 2, 3], [4, 5, 6]])
    for target in (["b", "c"], 1.0, True):
        with pytest.raises(ValueError) as ex:
            datasets.load(path, target=target)
        assert "target must be one column's name or 0-based index" in one_line(ex)
    X, y = datasets.load(path, target=np.int64(1))
    assert y[:, 0].tolist() == [2, 5]


def test_standardize_no_rows():
    X, _ = data()
    with pytest.raises(ValueError) as ex:
        datasets.standardize(X[:0])
    assert "shape (0, 3)" in one_line(ex)
    datasets.standardize(X[:0], np.zeros(3), np.ones(3))        # applying is fine


def test_train_test_split_message_shows_no_array():
    X, y = data(200)
    with pytest.raises(ValueError) as ex:
        datasets.train_test_split(X, y, y)
    msg = one_line(ex)
    assert "got a ndarray of shape (200, 1)" in msg and len(msg) < 200


@pytest.mark.parametrize("args, kwargs, kind, words", [
    ((None, 0.1, 100), {}, TypeError, "schedule must be a string"),
    ((5, 0.1, 100), {}, TypeError, "schedule must be a string"),
    (("cosine", 0.1, 100), {"kind": "foo"}, ValueError, "kind must be 'lr' or 'momentum'"),
    (("cosine", 0.1, 0), {}, ValueError, "total must be the run's number of steps"),
    (("cosine", 0.1, -3), {}, ValueError, "total must be the run's number of steps"),
    (("cosine", 0.1, 2.5), {}, ValueError, "total must be the run's number of steps"),
])
def test_schedules_parse_arguments(args, kwargs, kind, words):
    with pytest.raises(kind) as ex:
        schedules.parse(*args, **kwargs)
    assert words in one_line(ex)


def test_schedules_parse_still_parses():
    assert schedules.parse("cosine", 0.1, np.int64(100)).args["total"] == 100
    assert schedules.parse("one_cycle", 0.1, 1).args["total"] == 2


@pytest.mark.parametrize("d, kind", [
    ("loss", TypeError), ([1, 2], TypeError), (None, TypeError),
    ({"loss": "abc", "val_loss": [], "time": [], "segment_loss": []}, ValueError),
    ({"loss": [1.0]}, ValueError),
])
def test_history_from_json_non_dict(d, kind):
    with pytest.raises(kind) as ex:
        History.from_json(d)
    assert "History.from_json" in one_line(ex)


def test_history_round_trip():
    h = History(loss=[1.0, 0.5], time=[0.1, 0.2], step_loss=[1.0])
    assert History.from_json(h.to_json()) == h


# the estimators ---------------------------------------------------------------------

def test_estimator_huge_layer_is_the_memory_refusal():
    pytest.importorskip("sklearn")
    X, y = data()
    with pytest.raises(ValueError) as ex:
        inertia.MLPRegressor(hidden_layer_sizes=(10**12,)).fit(X, y[:, 0])
    msg = one_line(ex)
    assert "hidden_layer_sizes" in msg and "memory" in msg


def test_estimator_auto_full_batch_names_its_parameters():
    pytest.importorskip("sklearn")
    X, y = data()
    with pytest.raises(ValueError) as ex:
        inertia.MLPRegressor(learning_rate_init="auto", max_iter=3).fit(X, y[:, 0])
    msg = one_line(ex)
    assert "max_iter=3" in msg and "max_iter >= 6" in msg and "batch_size below 40" in msg


@pytest.mark.parametrize("kw", [dict(momentum="auto"),
                                dict(learning_rate_init="auto", momentum=0.5, max_iter=8)])
def test_estimator_auto_previous_delta(kw):
    pytest.importorskip("sklearn")
    X, y = data()
    with pytest.raises(ValueError) as ex:
        inertia.MLPRegressor(convention="previous_delta", alpha=0, **kw).fit(X, y[:, 0])
    msg = one_line(ex)
    assert "previous_delta" in msg and "momentum=0" in msg and "pytorch" not in msg


# booleans to predict ------------------------------------------------------------------

def test_predict_takes_booleans_as_0_1():
    net = net3()
    B = np.array([[True, False, True], [False, False, True]])
    np.testing.assert_array_equal(net.predict(B), net.predict(B.astype(np.float32)))


def test_estimator_auto_with_sample_weight_is_refused():
    X, y = data()
    est = inertia.MLPRegressor(hidden_layer_sizes=(4,), learning_rate_init="auto",
                               max_iter=8, batch_size=8)
    with pytest.raises(ValueError, match='learning_rate_init="auto" with sample_weight') as e:
        est.fit(X, y.ravel(), sample_weight=np.ones(40))
    one_line(e)
    assert not hasattr(est, "coefs_")


def test_augmented_assignment_of_a_layer_view_stays_in_place():
    net = net3()
    before = net.flat.copy()
    net.W[0] -= 1.0                    # in place, then the same object stored back
    net.b[1] += 2.0
    assert np.allclose(net.flat[:12], before[:12] - 1.0) and net.W[0] is net.W[0]
    with pytest.raises(TypeError, match="would detach it"):
        net.W[0] = net.W[0] - 1.0      # a new array


def test_sweep_of_no_network_and_repeated_points_in_other_spellings():
    X, y = data()
    with pytest.raises(ValueError, match="sweep trains an inertia.Network") as e:
        inertia.sweep(None, X, y, "mse", SGD(0.1), {"lr": [0.1]}, epochs=1, progress=False)
    one_line(e)
    for grid in ({"lr": [1, 1.0]}, [{"betas": [0.0, 0.9]}, {"betas": (0.0, 0.9)}]):
        opt = SGD(0.1) if "lr" in grid else inertia.AggMo(0.1)
        with pytest.raises(ValueError, match="is given twice"):
            inertia.sweep(net3(), X, y, "mse", opt, grid, epochs=1, progress=False)


def test_float32_weights_whose_sum_overflows_are_refused():
    X, y = data()
    with pytest.raises(ValueError, match="sample_weight holds values beyond float32"):
        inertia.fit(net3(), X, y, "mse", SGD(0.1), epochs=1, progress=False,
                    sample_weight=np.full(40, 3e37))


def test_data_sets_and_split_take_a_generator_seed():
    rng = np.random.default_rng(5)
    X, y = datasets.smooth_regression(20, seed=rng)
    assert X.shape == (20, 4)
    assert len(datasets.split(X, y, 0.25, seed=np.random.default_rng(1))[0]) == 15
    with pytest.raises(ValueError, match="seed must be a non-negative integer or None, got "
                                         "a SeedSequence") as e:
        Network(3, [Dense(1)], seed=np.random.SeedSequence(3))
    one_line(e)
