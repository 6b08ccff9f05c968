"""The data path: a model records its columns, target and scaling; predict selects columns by
name or position; resume uses the recorded data or refuses; --standardize scales a regression
target; values beyond the dtype, odd encodings, damaged model files: one line each."""

import json
import os

import numpy as np
import pytest

import inertia
from inertia import datasets
from inertia.cli import main


def run(capsys, *argv):
    try:
        code = main([str(a) for a in argv])
    except SystemExit as ex:
        code = ex.code
    out, err = capsys.readouterr()
    return code, out, err


def one_line_error(code, err):
    assert code == 2, err
    assert err.startswith("inertia: error:") and len(err.strip().splitlines()) == 1, err
    assert "Traceback" not in err


def house_prices(n=120, seed=0):
    """Columns a, price, b, c: price (around 1000) in the middle, linear in a, b, c."""
    rng = np.random.default_rng(seed)
    X = rng.normal(size=(n, 3))
    price = 1000 + 30 * X[:, 0] + 20 * X[:, 1] - 10 * X[:, 2]
    return X, price


def write_table(path, columns, header=True):
    names = list(columns)
    np.savetxt(path, np.column_stack([columns[c] for c in names]), delimiter=",",
               header=",".join(names) if header else "", comments="")


@pytest.fixture
def price_model(tmp_path, capsys):
    X, price = house_prices()
    write_table(tmp_path / "houses.csv", {"a": X[:, 0], "price": price, "b": X[:, 1],
                                          "c": X[:, 2]})
    model = tmp_path / "m.npz"
    code, out, err = run(capsys, "train", "--data", tmp_path / "houses.csv", "--target", "price",
                         "--layers", "1:linear", "--standardize", "--lr", "0.1", "--epochs",
                         "200", "--save", model, "--quiet")
    assert code == 0, err
    return model, X, price


def predictions(path):
    return np.loadtxt(path, delimiter=",", skiprows=1, ndmin=1)


def test_model_records_columns_target_and_scaling(price_model):
    model, X, price = price_model
    extra = inertia.load(model)[0].extra
    assert extra["columns"]["names"] == ["a", "b", "c"]
    assert extra["columns"]["target_name"] == "price"
    np.testing.assert_allclose(extra["mean"], X.mean(axis=0), rtol=1e-12)
    np.testing.assert_allclose(extra["y_mean"], [price.mean()], rtol=1e-12)
    np.testing.assert_allclose(extra["y_std"], [price.std()], rtol=1e-12)


def test_standardized_target_trains_and_predicts_in_its_units(price_model, tmp_path, capsys):
    """The README's recipe: the target (around 1000) is scaled, so the losses stay finite, and
    predictions come back in the target's units (checked against the model's own formula)."""
    model, X, price = price_model
    net = inertia.load(model)[0]
    extra = net.extra
    write_table(tmp_path / "new.csv", {"c": X[:5, 2], "a": X[:5, 0], "b": X[:5, 1]})
    code, out, err = run(capsys, "predict", model, "--data", tmp_path / "new.csv", "--out",
                         tmp_path / "p.csv")
    assert code == 0, err
    got = predictions(tmp_path / "p.csv")
    Z = (X[:5] - np.array(extra["mean"])) / np.array(extra["std"])
    want = net.predict(Z, raw=True).ravel() * extra["y_std"][0] + extra["y_mean"][0]
    np.testing.assert_allclose(got, want, rtol=1e-6)
    # a linear model of a linear target: within a few units of the true prices
    assert np.max(np.abs(got - price[:5])) < 0.05 * price.std()


@pytest.mark.parametrize("layout", ["with target", "reordered", "npy", "npz X only"])
def test_predict_selects_the_recorded_columns(price_model, tmp_path, capsys, layout):
    model, X, price = price_model
    new = tmp_path / "new"
    if layout == "with target":
        new = new.with_suffix(".csv")
        write_table(new, {"a": X[:4, 0], "price": price[:4], "b": X[:4, 1], "c": X[:4, 2]})
    elif layout == "reordered":
        new = new.with_suffix(".csv")
        write_table(new, {"b": X[:4, 1], "c": X[:4, 2], "extra": X[:4, 0] * 0, "a": X[:4, 0]})
    elif layout == "npy":
        new = new.with_suffix(".npy")
        np.save(new, X[:4])
    else:
        new = new.with_suffix(".npz")
        np.savez(new, X=X[:4])
    code, out, err = run(capsys, "predict", model, "--data", new, "--out", tmp_path / "p.csv")
    assert code == 0, err
    ref = tmp_path / "ref.csv"
    write_table(ref, {"a": X[:4, 0], "b": X[:4, 1], "c": X[:4, 2]})
    assert run(capsys, "predict", model, "--data", ref, "--out", tmp_path / "r.csv")[0] == 0
    np.testing.assert_array_equal(predictions(tmp_path / "p.csv"),
                                  predictions(tmp_path / "r.csv"))


def test_predict_target_flag(price_model, tmp_path, capsys):
    model, X, price = price_model
    write_table(tmp_path / "n.csv", {"a": X[:3, 0], "price": price[:3], "b": X[:3, 1],
                                     "c": X[:3, 2]})
    code, out, err = run(capsys, "predict", model, "--data", tmp_path / "n.csv", "--target",
                         "price", "--out", tmp_path / "p.csv")
    assert code == 0, err
    code, out, err = run(capsys, "predict", model, "--data", tmp_path / "n.csv", "--target",
                         "a", "--out", tmp_path / "q.csv")
    one_line_error(code, err)
    assert "'price'" in err and not (tmp_path / "q.csv").exists()


@pytest.mark.parametrize("columns, words", [
    ({"a": [1.0], "b": [2.0]}, "lacks the model's input column(s) 'c'"),
    ({"x": [1.0], "y": [2.0], "z": [3.0], "w": [4.0], "v": [5.0]}, "lacks the model's input"),
])
def test_predict_mismatch_one_line(price_model, tmp_path, capsys, columns, words):
    model = price_model[0]
    write_table(tmp_path / "bad.csv", {k: np.array(v) for k, v in columns.items()})
    code, out, err = run(capsys, "predict", model, "--data", tmp_path / "bad.csv", "--out",
                         tmp_path / "p.csv")
    one_line_error(code, err)
    assert words in err and not (tmp_path / "p.csv").exists()


def test_predict_uses_the_trained_target_not_the_last_column(tmp_path, capsys):
    """Header-less training file with --target 0: predict drops column 0 of a file as wide as
    the training file, and takes a file of inputs only as it is."""
    rng = np.random.default_rng(1)
    X = rng.normal(size=(50, 2))
    y = X[:, 0] - X[:, 1]
    np.savetxt(tmp_path / "t.csv", np.column_stack([y, X]), delimiter=",")
    model = tmp_path / "m.npz"
    assert run(capsys, "train", "--data", tmp_path / "t.csv", "--target", "0", "--layers",
               "1:linear", "--epochs", "5", "--save", model, "--quiet")[0] == 0
    net = inertia.load(model)[0]
    for name, table in [("full.csv", np.column_stack([y, X])[:6]), ("inputs.csv", X[:6])]:
        np.savetxt(tmp_path / name, table, delimiter=",")
        code, out, err = run(capsys, "predict", model, "--data", tmp_path / name, "--out",
                             tmp_path / "p.csv")
        assert code == 0, err
        np.testing.assert_allclose(predictions(tmp_path / "p.csv"), net.predict(X[:6]).ravel(),
                                   rtol=1e-6)


def test_resume_uses_the_recorded_data_or_refuses(price_model, tmp_path, capsys):
    model = price_model[0]
    code, out, err = run(capsys, "train", "--resume", model, "--epochs", "2", "--quiet",
                         "--save", model)
    assert code == 0, err
    assert "recorded data" in out and "houses.csv" in out and "smooth-regression" not in out
    assert inertia.load(model)[1].state.step == 202
    code, out, err = run(capsys, "train", "--resume", model, "--target", "a", "--quiet")
    one_line_error(code, err)
    assert "--target" in err
    os.remove(tmp_path / "houses.csv")
    before = model.read_bytes()
    code, out, err = run(capsys, "train", "--resume", model, "--epochs", "2", "--quiet",
                         "--save", model)
    one_line_error(code, err)
    assert "no longer exists" in err and "--data" in err
    assert model.read_bytes() == before


def test_resume_of_builtin_data_regenerates_it(tmp_path, capsys):
    model = tmp_path / "m.npz"
    assert run(capsys, "train", "--samples", "60", "--data-seed", "3", "--layers", "1:linear",
               "--epochs", "2", "--save", model, "--quiet")[0] == 0
    code, out, err = run(capsys, "train", "--resume", model, "--epochs", "1", "--quiet")
    assert code == 0, err
    assert "smooth-regression" in out and "60 training samples" in out


def test_resume_refuses_dtype_change_and_records_nothing_silently(tmp_path, capsys):
    model = tmp_path / "m.npz"
    assert run(capsys, "train", "--samples", "30", "--layers", "1:linear", "--epochs", "1",
               "--save", model, "--quiet")[0] == 0
    code, out, err = run(capsys, "train", "--resume", model, "--dtype", "float64", "--quiet")
    one_line_error(code, err)
    assert "--dtype float64" in err
    code, out, err = run(capsys, "train", "--resume", model, "--standardize", "--quiet")
    one_line_error(code, err)
    assert "--standardize" in err


def test_overflowing_values_name_column_and_row(tmp_path, capsys):
    (tmp_path / "big.csv").write_text("a,b,y\n1,2,3\n4,1e39,5\n")
    code, out, err = run(capsys, "train", "--data", tmp_path / "big.csv", "--layers", "1:linear",
                         "--epochs", "1", "--quiet")
    one_line_error(code, err)
    assert "row 2" in err and "'b'" in err and "float32" in err
    code, out, err = run(capsys, "train", "--data", tmp_path / "big.csv", "--layers", "1:linear",
                         "--epochs", "1", "--quiet", "--dtype", "float64")
    assert code == 0, err
    (tmp_path / "huge.csv").write_text("a,y\n1,2\n1e400,3\n")
    with pytest.raises(ValueError, match="row 3, column 'a'"):
        datasets.load(tmp_path / "huge.csv")


def test_bom_and_encodings(tmp_path):
    (tmp_path / "bom.csv").write_bytes("\ufeff1,2,3\n4,5,6\n".encode("utf-8"))
    X, y = datasets.load(tmp_path / "bom.csv")
    assert X.shape == (2, 2) and y[:, 0].tolist() == [3, 6]
    (tmp_path / "bomh.csv").write_bytes("\ufeffa,b\n1,2\n".encode("utf-8"))
    assert datasets.read_csv(tmp_path / "bomh.csv")[2] == ["a"]
    for name, raw, words in [("latin.csv", "a,é\n1,2\n".encode("latin-1"), "not UTF-8"),
                             ("utf16.csv", "a,b\n1,2\n".encode("utf-16"), "not"),
                             ("binary.csv", bytes(range(256)), "binary")]:
        (tmp_path / name).write_bytes(raw)
        with pytest.raises(ValueError) as ei:
            datasets.load(tmp_path / name)
        assert words in str(ei.value) and "\n" not in str(ei.value)


def _model_file(tmp_path):
    net = inertia.Network(2, [inertia.Dense(3, "tanh"), inertia.Dense(1)], dtype="float64")
    opt = inertia.SGD(lr=0.1, momentum=0.9)
    inertia.fit(net, np.ones((4, 2)), np.ones((4, 1)), "mse", opt, epochs=1, progress=False)
    path = tmp_path / "m.npz"
    inertia.save(path, net, opt, extra={"loss": "mse"})
    return path


def _edit(path, out, meta_edit=None, **arrays):
    with np.load(path) as f:
        data = {k: f[k] for k in f.files}
    meta = json.loads(str(data["meta"]))
    if meta_edit:
        meta_edit(meta)
    data.update(arrays)
    data["meta"] = np.array(json.dumps(meta))
    np.savez(out, **data)
    return out


def _set(path, value):
    def edit(meta):
        d = meta
        for k in path[:-1]:
            d = d[k]
        d[path[-1]] = value
    return edit


@pytest.mark.parametrize("edit, words", [
    (_set(["layers"], None), "layers"),
    (_set(["layers"], {"a": 1}), "layers"),
    (_set(["extra"], [1, 2]), "extra"),
    (_set(["extra"], None), "extra"),
    (_set(["n_inputs"], "2"), "n_inputs"),
    (_set(["layers", 0, 0], 10 ** 10), "metadata says"),
    (_set(["layers", 0], [3, 7]), "layer"),
    (_set(["dtype"], "float16"), "dtype"),
    (_set(["optimizer", "config", "colour"], "red"), "colour"),
    (_set(["optimizer", "state"], [1]), "state"),
    (_set(["optimizer", "state", "step"], "x"), "step"),
    (_set(["optimizer", "type"], "lion"), "lion"),
    (_set(["format"], "other"), "not an inertia model"),
])
def test_edited_metadata_one_line(tmp_path, edit, words):
    path = _edit(_model_file(tmp_path), tmp_path / "edited.npz", edit)
    with pytest.raises(ValueError) as ei:
        inertia.load(path)
    assert words in str(ei.value) and "\n" not in str(ei.value)


@pytest.mark.parametrize("key, value", [("mean", "abc"), ("std", [0.0, 1.0]), ("loss", 3),
                                        ("columns", {"names": 5}), ("y_mean", [1.0]),
                                        ("test_fraction", "half")])
def test_edited_training_record_one_line_in_cli(tmp_path, capsys, key, value):
    path = _edit(_model_file(tmp_path), tmp_path / "edited.npz", _set(["extra", key], value))
    np.savetxt(tmp_path / "in.csv", np.ones((2, 2)), delimiter=",")
    for argv in (["predict", path, "--data", tmp_path / "in.csv", "--out", tmp_path / "p.csv"],
                 ["train", "--resume", path, "--epochs", "1", "--quiet"]):
        code, out, err = run(capsys, *argv)
        one_line_error(code, err)
        assert "damaged" in err
    assert not (tmp_path / "p.csv").exists()


def test_non_model_files_say_what_they_are(tmp_path):
    np.savez(tmp_path / "objects.npz", a=np.array([{"x": 1}], dtype=object))
    np.savez(tmp_path / "arrays.npz", X=np.zeros((2, 2)))
    np.save(tmp_path / "a.npy", np.zeros(3))
    (tmp_path / "text.npz").write_text("hello")
    for name, words in [("objects.npz", "pickled objects"), ("arrays.npz", "arrays (X)"),
                        ("a.npy", ".npy array"), ("text.npz", "not a .npz archive")]:
        with pytest.raises(ValueError) as ei:
            inertia.load(tmp_path / name)
        msg = str(ei.value)
        assert words in msg and "allow_pickle" not in msg and "\n" not in msg, msg


def test_non_finite_weights_refused(tmp_path):
    path = _model_file(tmp_path)
    bad = _edit(path, tmp_path / "nan.npz", W0=np.full((3, 2), np.nan))
    with pytest.raises(ValueError, match="W0 holds NaN or inf"):
        inertia.load(bad)
    bad = _edit(path, tmp_path / "v.npz", opt_velocity_0=np.full((3, 2), np.inf))
    with pytest.raises(ValueError, match="velocity"):
        inertia.load(bad)


def test_requests_beyond_memory_refused_before_allocating():
    total = datasets.total_memory()
    if total is None:
        pytest.skip("the OS does not report its memory")
    with pytest.raises(ValueError) as ei:
        inertia.Network(4, [inertia.Dense(10 ** 10)])
    assert "need" in str(ei.value) and "GB" in str(ei.value)
    with pytest.raises(ValueError, match="need"):
        datasets.smooth_regression(10 ** 12)
    with pytest.raises(ValueError, match="need"):
        datasets.random_binary(10 ** 6, 10 ** 7)


def test_standardize_takes_its_statistics_from_the_training_rows_only(tmp_path, capsys):
    """The test rows stay unseen: the stored mean and spread are those of the training part
    of the recorded split."""
    from inertia.cli import main

    model = tmp_path / "m.npz"
    code = main(["train", "--samples", "200", "--layers", "4:tanh,1:linear", "--epochs", "2",
                 "--standardize", "--test-fraction", "0.25", "--seed", "3", "--quiet",
                 "--save", str(model)])
    capsys.readouterr()
    assert code == 0
    X, y = inertia.datasets.smooth_regression(200, seed=0)
    Xtr, ytr, _, _ = inertia.datasets.split(X, y, 0.25, seed=3)
    net, _ = inertia.load(model)
    # float32 data summed in float64 by the CLI: a float32 mean is 1e-7 off
    np.testing.assert_allclose(net.extra["mean"], Xtr.astype(np.float64).mean(axis=0),
                               rtol=1e-12)
    np.testing.assert_allclose(net.extra["y_mean"], [ytr.astype(np.float64).mean()],
                               rtol=1e-12)
    assert not np.allclose(net.extra["mean"], X.astype(np.float64).mean(axis=0), rtol=1e-4)
