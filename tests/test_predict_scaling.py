"""A model saved with standardized data predicts in the original units: ``Network.scaling``
(set by ``inertia.load``) standardizes the inputs and scales a regression output back;
``predict(X, raw=True)`` skips both; the CLI's predict takes the same path."""

import json

import numpy as np
import pytest

import inertia
from inertia import Dense, Network
from inertia.cli import main
from inertia.network import Scaling


def run(capsys, *argv):
    try:
        code = main([str(a) for a in argv])
    except SystemExit as ex:
        code = ex.code
    out, err = capsys.readouterr()
    return code, out, err


def _write(path, X, y, names):
    np.savetxt(path, np.column_stack([X, y]), delimiter=",", header=",".join(names),
               comments="")


@pytest.fixture
def price_model(tmp_path, capsys):
    rng = np.random.default_rng(0)
    X = rng.normal(size=(120, 3)) * [1.0, 5.0, 0.2] + [0.0, 10.0, -3.0]
    price = 1000 + 30 * X[:, 0] + 4 * X[:, 1] - 50 * X[:, 2]
    _write(tmp_path / "houses.csv", X, price, ["a", "b", "c", "price"])
    model = tmp_path / "m.npz"
    code, out, err = run(capsys, "train", "--data", tmp_path / "houses.csv", "--target",
                         "price", "--layers", "1:linear", "--standardize", "--lr", "0.1",
                         "--epochs", "200", "--save", model, "--quiet")
    assert code == 0, err
    return model, X, price


def test_loaded_regression_predicts_in_original_units(price_model, tmp_path, capsys):
    model, X, price = price_model
    net = inertia.load(model)[0]
    extra = net.extra
    assert isinstance(net.scaling, Scaling)
    # the stored record, applied by hand: standardize, raw outputs, back to price units
    Z = (X - np.asarray(extra["mean"])) / np.asarray(extra["std"])
    want = net.predict(Z, raw=True) * np.asarray(extra["y_std"]) + np.asarray(extra["y_mean"])
    got = net.predict(X)
    np.testing.assert_allclose(got, want, rtol=1e-12)
    # a linear model of a linear target: close to the real prices, in their units
    assert np.max(np.abs(got.ravel() - price)) < 0.05 * price.std()
    # the CLI's predict writes the same numbers (to its %.8g format)
    _write(tmp_path / "new.csv", X[:7], price[:7], ["a", "b", "c", "price"])
    code, out, err = run(capsys, "predict", model, "--data", tmp_path / "new.csv", "--out",
                         tmp_path / "p.csv")
    assert code == 0, err
    cli = np.loadtxt(tmp_path / "p.csv", delimiter=",", skiprows=1, ndmin=1)
    np.testing.assert_allclose(cli, got[:7].ravel(), rtol=1e-7)


def test_classifier_scales_inputs_only(tmp_path, capsys):
    rng = np.random.default_rng(1)
    X = rng.normal(size=(90, 2)) * [100.0, 0.01] + [500.0, 0.0]
    label = ((X[:, 0] - 500) / 100 + X[:, 1] / 0.01 > 0).astype(int)
    _write(tmp_path / "c.csv", X, label, ["u", "v", "label"])
    model = tmp_path / "c.npz"
    code, out, err = run(capsys, "train", "--data", tmp_path / "c.csv", "--target", "label",
                         "--layers", "4:tanh,2:softmax", "--loss", "cross_entropy",
                         "--standardize", "--epochs", "30", "--save", model, "--quiet")
    assert code == 0, err
    net = inertia.load(model)[0]
    assert net.scaling.mean is not None and net.scaling.y_mean is None
    Z = (X - net.scaling.mean) / net.scaling.std
    np.testing.assert_array_equal(net.predict(X), net.predict(Z, raw=True))
    np.testing.assert_allclose(net.predict(X).sum(axis=1), 1.0, rtol=1e-6)


def test_no_scaling_without_standardize(tmp_path):
    net = Network(2, [Dense(3, "tanh"), Dense(1)], dtype="float64")
    assert net.scaling is None
    inertia.save(tmp_path / "plain.npz", net)
    loaded = inertia.load(tmp_path / "plain.npz")[0]
    assert loaded.scaling is None
    X = np.arange(6.0).reshape(3, 2)
    np.testing.assert_array_equal(loaded.predict(X), net.predict(X, raw=True))


def test_scaling_survives_save_load_and_copy(price_model, tmp_path):
    model, X, _ = price_model
    net = inertia.load(model)[0]
    inertia.save(tmp_path / "again.npz", net)                 # no extra given
    again = inertia.load(tmp_path / "again.npz")[0]
    np.testing.assert_array_equal(again.predict(X), net.predict(X))
    np.testing.assert_array_equal(net.copy().predict(X), net.predict(X))


@pytest.mark.parametrize("key, value", [("mean", [1.0]), ("std", [1.0, 0.0, 1.0]),
                                        ("y_std", None), ("mean", "abc")])
def test_damaged_scaling_record_refused_in_one_line(price_model, tmp_path, key, value):
    model, _, _ = price_model
    with np.load(model, allow_pickle=False) as f:
        arrays = {k: f[k] for k in f.files}
    meta = json.loads(str(arrays["meta"]))
    meta["extra"][key] = value
    arrays["meta"] = np.array(json.dumps(meta))
    np.savez(tmp_path / "bad.npz", **arrays)
    with pytest.raises(ValueError) as ei:
        inertia.load(tmp_path / "bad.npz")
    assert "damaged" in str(ei.value) and "\n" not in str(ei.value)


def test_scaling_from_extra_hand_worked():
    sc = Scaling.from_extra({"mean": [1.0, 2.0], "std": [2.0, 4.0], "y_mean": [10.0],
                             "y_std": [3.0]}, 2, 1)
    net = Network(2, [Dense(1)], dtype="float64")
    net.set_parameters([(np.array([[1.0, 1.0]]), np.array([0.5]))])
    net.scaling = sc
    # x = (3, 6): z = (1, 1), raw output 1 + 1 + 0.5 = 2.5, back: 2.5 * 3 + 10 = 17.5
    assert net.predict(np.array([[3.0, 6.0]]))[0, 0] == 17.5
    assert net.predict(np.array([[3.0, 6.0]]), raw=True)[0, 0] == 9.5
    assert Scaling.from_extra({}, 2, 1) is None
