"""Datasets and loading: the synthetic sets, CSV with header detection and target choice,
.npy pairs, .npz, standardisation, split."""

import os

import numpy as np
import pytest

import inertia
from inertia import datasets


def test_smooth_regression_formula():
    X, y = datasets.smooth_regression(1000, seed=3)
    assert X.shape == (1000, 4) and y.shape == (1000, 1) and X.dtype == np.float32
    assert X.min() >= 0 and X.max() < 1
    x = X.astype(np.float64)
    ref = np.sin(x[:, 0]) + np.cos(x[:, 1]) + np.tanh(x[:, 2]) + x[:, 3] ** 2
    np.testing.assert_allclose(y[:, 0], ref, rtol=1e-6)
    X2, _ = datasets.smooth_regression(1000, seed=3)
    np.testing.assert_array_equal(X, X2)


def test_random_binary_labels():
    X, y = datasets.random_binary(10, 7, seed=0)
    assert X.shape == (10, 7)
    assert y[:5].sum() == 0 and y[5:].sum() == 5


def test_csv_header_and_target(tmp_path):
    p = tmp_path / "d.csv"
    p.write_text("a,label,b\n1,0,2\n3,1,4\n5,0,6\n")
    X, y = datasets.load(p)                    # default: last column
    np.testing.assert_array_equal(y[:, 0], [2, 4, 6])
    X, y = datasets.load(p, target="label")
    np.testing.assert_array_equal(X, [[1, 2], [3, 4], [5, 6]])
    np.testing.assert_array_equal(y[:, 0], [0, 1, 0])
    X, y = datasets.load(p, target="1")
    np.testing.assert_array_equal(y[:, 0], [0, 1, 0])
    with pytest.raises(ValueError, match="no column named 'c'"):
        datasets.load(p, target="c")
    q = tmp_path / "n.csv"
    q.write_text("1,2,3\n4,5,6\n")            # no header: the first row is data
    X, y = datasets.load(q, target=0)
    np.testing.assert_array_equal(y[:, 0], [1, 4])
    assert X.shape == (2, 2)


def test_npy_pair_and_npz(tmp_path):
    X = np.arange(12.0).reshape(4, 3)
    y = np.arange(4.0)
    np.save(tmp_path / "train.npy", X)
    np.save(tmp_path / "train_y.npy", y)
    X2, y2 = datasets.load(tmp_path / "train.npy")
    np.testing.assert_array_equal(X2, X)
    np.testing.assert_array_equal(y2, y)
    np.savez(tmp_path / "d.npz", X=X, y=y)
    X3, y3 = datasets.load(tmp_path / "d.npz")
    np.testing.assert_array_equal(y3, y)
    np.save(tmp_path / "X.npy", X)
    np.save(tmp_path / "y.npy", y)
    np.testing.assert_array_equal(datasets.load(tmp_path / "X.npy")[1], y)
    # a target column to pick where the targets are apart is refused, not ignored
    for f in ("d.npz", "train.npy"):
        with pytest.raises(ValueError, match="holds its targets apart.*leave the target"):
            datasets.load_table(tmp_path / f, target=0)
    np.save(tmp_path / "alone.npy", X)                  # one array: its last column, or 0
    assert datasets.load_table(tmp_path / "alone.npy", target=0).y[:, 0].tolist() == [0, 3, 6,
                                                                                       9]


def test_standardize_and_split():
    rng = np.random.default_rng(0)
    X = rng.normal(3, 2, size=(100, 3))
    X[:, 2] = 5.0
    Z, mean, std = datasets.standardize(X)
    np.testing.assert_allclose(Z[:, :2].mean(axis=0), 0, atol=1e-12)
    np.testing.assert_allclose(Z[:, :2].std(axis=0), 1, rtol=1e-12)
    assert np.all(Z[:, 2] == 0)
    y = np.arange(100)
    a = datasets.split(X, y, 0.25, seed=1)
    b = datasets.split(X, y, 0.25, seed=1)
    assert len(a[0]) == 75 and len(a[2]) == 25
    np.testing.assert_array_equal(a[1], b[1])
    assert sorted(np.concatenate([a[1], a[3]]).tolist()) == list(range(100))


def test_loaded_csv_trains(tmp_path):
    X, y = datasets.smooth_regression(200, seed=0)
    np.savetxt(tmp_path / "s.csv", np.column_stack([X, y]), delimiter=",",
               header="a,b,c,d,y", comments="")
    X2, y2 = datasets.load(tmp_path / "s.csv", target="y")
    net = inertia.Network(4, [inertia.Dense(4, "tanh"), inertia.Dense(1)], seed=0)
    h = inertia.fit(net, X2, y2, "mse", inertia.SGD(lr=0.1, momentum=0.9), epochs=50,
                    progress=False)
    assert h.loss[-1] < h.loss[0]


def test_a_device_or_a_csv_too_large_to_hold_is_refused_as_it_is_read(tmp_path, monkeypatch):
    if os.path.exists("/dev/zero"):                 # endless binary: refused at its first chunk
        with pytest.raises(ValueError, match="holds binary data"):
            datasets.read_table("/dev/zero")
    path = tmp_path / "d.csv"
    path.write_text("a,b\n" + "1.5,2.5\n" * 20000)     # 160 KB of text
    monkeypatch.setattr(datasets, "CHUNK", 4096)
    monkeypatch.setattr(datasets, "total_memory", lambda: 2_000_000)
    with pytest.raises(ValueError, match=r"holds more than .* save it as \.npy") as info:
        datasets.read_table(path)
    assert "\n" not in str(info.value)
    monkeypatch.setattr(datasets, "total_memory", lambda: 10_000_000)
    assert datasets.read_table(path)[0].shape == (20000, 2)


def test_a_comma_at_the_end_of_every_line_is_named(tmp_path):
    path = tmp_path / "t.csv"
    path.write_text("a,b,y,\n1,2,3,\n4,5,6,\n")
    with pytest.raises(ValueError, match="every row ends in an empty column"):
        datasets.read_table(path)
    path.write_text("a,b,y\n1,2,\n4,5,6\n")          # one empty cell: a missing value
    with pytest.raises(ValueError, match="non-numeric value '' in row 2"):
        datasets.read_table(path)


def test_a_file_of_other_separators_is_named(tmp_path):
    """Semicolons or tabs read as one column of text; the message names the separator
    rather than the column count ("has only the target column")."""
    path = tmp_path / "t.csv"
    for sep, name in ((";", "semicolons"), ("\t", "tabs")):
        path.write_text(sep.join("aby") + "\n" + sep.join("123") + "\n")
        with pytest.raises(ValueError, match=f"separates its columns with {name}"):
            datasets.read_table(path)
    path.write_text("x\n1\n2\n")          # one column, no separator: read as it is
    assert datasets.read_table(path)[0].shape == (2, 1)
