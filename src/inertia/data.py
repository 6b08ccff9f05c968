"""Datasets: the sources' synthetic sets, CSV / .npy / .npz loading, standardisation, splits."""

from __future__ import annotations

import csv
import os

import numpy as np


def smooth_regression(n=10_000, seed=0, dtype="float32"):
    """x uniform in [0, 1)^4, y = sin x0 + cos x1 + tanh x2 + x3^2 (the Neanderthal series'
    regression task). Returns X (n, 4) and y (n, 1)."""
    n = _count(n)
    rng = np.random.default_rng(seed)
    X = rng.random((n, 4))
    y = np.sin(X[:, 0]) + np.cos(X[:, 1]) + np.tanh(X[:, 2]) + X[:, 3] ** 2
    return X.astype(dtype), y.reshape(-1, 1).astype(dtype)


def random_binary(n=1000, dim=1000, seed=0, dtype="float32"):
    """N(0, 1) inputs of dimension ``dim``; the first half labelled 0, the second half 1
    (the mini-batch momentum experiment). Returns X (n, dim) and y (n, 1)."""
    n, dim = _count(n), _count(dim, "dim")
    rng = np.random.default_rng(seed)
    X = rng.standard_normal((n, dim))
    y = np.zeros((n, 1))
    y[n // 2:] = 1
    return X.astype(dtype), y.astype(dtype)


BUILTIN = {"smooth-regression": smooth_regression, "random-binary": random_binary}


def _count(n, name="n"):
    if not isinstance(n, (int, np.integer)) or isinstance(n, bool) or n < 1:
        raise ValueError(f"{name} must be a positive integer, got {n!r}")
    return int(n)


def _is_number(s):
    try:
        float(s)
    except ValueError:
        return False
    return True


def read_csv(path, target=None):
    """Read a numeric CSV file. Returns (X, y, names) with y the target column: ``target`` is
    a column name (when the file has a header) or a 0-based index (negative counts from the
    end); default the last column. ``target=False`` returns all columns as X and y = None.
    A header is detected when the first row is not all numbers."""
    try:
        with open(path, newline="") as f:
            rows = [r for r in csv.reader(f) if r and any(c.strip() for c in r)]
    except (OSError, UnicodeDecodeError) as ex:
        raise ValueError(f"cannot read {path}: {ex.strerror or ex}") from None
    if not rows:
        raise ValueError(f"{path} is empty: it needs a header (optional) and numeric rows")
    header = None
    if not all(_is_number(c) for c in rows[0]):
        header, rows = [c.strip() for c in rows[0]], rows[1:]
    if not rows:
        raise ValueError(f"{path} has a header but no data rows")
    width = len(rows[0])
    for i, r in enumerate(rows):
        if len(r) != width:
            raise ValueError(f"{path}: row {i + 1 + (header is not None)} has {len(r)} "
                             f"columns, expected {width}")
    try:
        data = np.array([[float(c) for c in r] for r in rows], dtype=np.float64)
    except ValueError as ex:
        raise ValueError(f"{path} has a non-numeric value ({ex}): the data must be numbers"
                         ) from None
    names = header or [f"x{i}" for i in range(width)]
    if target is False:
        return data, None, names
    col = _target_column(target, names, header is not None, path)
    y = data[:, col:col + 1]
    X = np.delete(data, col, axis=1)
    if X.shape[1] == 0:
        raise ValueError(f"{path} has only the target column: it needs input columns too")
    return X, y, [c for i, c in enumerate(names) if i != col]


def _target_column(target, names, has_header, path):
    width = len(names)
    if target is None:
        return width - 1
    if isinstance(target, str) and not _is_int(target):
        if not has_header or target not in names:
            raise ValueError(f"{path} has no column named {target!r}: columns are "
                             f"{', '.join(names)}")
        return names.index(target)
    idx = int(target)
    if not -width <= idx < width:
        raise ValueError(f"target column {idx} is out of range for {path} with {width} columns")
    return idx % width


def _is_int(s):
    try:
        int(s)
    except ValueError:
        return False
    return True


def load(path, target=None):
    """Load (X, y) from a CSV file, an ``.npz`` with arrays ``X`` and ``y``, or an ``.npy``
    file of X beside ``NAME_y.npy`` (or ``y.npy`` for ``X.npy``). For .npy and .npz without y,
    the last column is the target, as for CSV."""
    path = os.fspath(path)
    if not os.path.exists(path):
        raise ValueError(f"no such file: {path}")
    ext = os.path.splitext(path)[1].lower()
    if ext not in (".npz", ".npy"):
        X, y, _ = read_csv(path, target)
        return _finite(X, y, path)
    try:
        if ext == ".npz":
            with np.load(path, allow_pickle=False) as f:
                if "X" not in f:
                    raise ValueError(f"{path} has no array 'X' (it has {', '.join(f.files)}): "
                                     "save it with np.savez(path, X=..., y=...)")
                X = f["X"]
                y = f["y"] if "y" in f else None
        elif ext == ".npy":
            X = np.load(path, allow_pickle=False)
            y = None
            ypath = _y_path(path)
            if ypath is not None:
                y = np.load(ypath, allow_pickle=False)
    except Exception as ex:   # not an array file, pickled objects, truncated files
        if "has no array 'X'" in str(ex):
            raise
        raise ValueError(f"cannot read {path}: it is not a NumPy .npy/.npz array file "
                         f"without pickled objects ({type(ex).__name__})") from None
    if y is None:
        X = np.asarray(X)
        if X.ndim != 2 or X.shape[1] < 2:
            raise ValueError(f"{path} holds no targets: give y in the file or a _y.npy beside it")
        col = _target_column(target, [f"x{i}" for i in range(X.shape[1])], False, path)
        y = X[:, col:col + 1]
        X = np.delete(X, col, axis=1)
    return _finite(X, y, path)


def _y_path(path):
    base, ext = os.path.splitext(path)
    cands = [base + "_y" + ext]
    if os.path.basename(base) == "X":
        cands.append(os.path.join(os.path.dirname(path), "y" + ext))
    for c in cands:
        if os.path.exists(c):
            return c
    return None


def _finite(X, y, path):
    X = np.asarray(X, dtype=np.float64) if np.asarray(X).dtype.kind in "iub" else np.asarray(X)
    if X.ndim == 1:
        X = X.reshape(-1, 1)
    if X.ndim != 2 or X.shape[0] == 0:
        raise ValueError(f"{path}: X must be a non-empty 2-D array, got shape {X.shape}")
    if X.dtype.kind not in "fiu" or not np.all(np.isfinite(X)):
        raise ValueError(f"{path}: the inputs contain NaN, inf or non-numbers: clean or drop "
                         "those rows first")
    if y is not None:
        y = np.asarray(y)
        if y.dtype.kind not in "fiub" or not np.all(np.isfinite(y.astype(np.float64))):
            raise ValueError(f"{path}: the targets contain NaN, inf or non-numbers")
        if y.shape[0] != X.shape[0]:
            raise ValueError(f"{path}: X has {X.shape[0]} rows but y has {y.shape[0]}")
    return X, y


def standardize(X, mean=None, std=None):
    """(X - mean) / std per column (std 1 where a column is constant). Returns
    (X_standardised, mean, std); pass a training set's mean and std to apply them to a test set."""
    X = np.asarray(X, dtype=np.float64)
    if mean is None:
        mean = X.mean(axis=0)
        std = X.std(axis=0)
        std = np.where(std > 0, std, 1.0)
    return (X - mean) / std, mean, std


def split(X, y, test_fraction=0.2, seed=0):
    """A seeded random train/test split: (X_train, y_train, X_test, y_test)."""
    if not 0 <= test_fraction < 1:
        raise ValueError(f"test fraction must be in [0, 1), got {test_fraction}")
    n = len(X)
    idx = np.random.default_rng(seed).permutation(n)
    k = int(round(n * test_fraction))
    if k and n - k < 1:
        raise ValueError(f"a test fraction of {test_fraction} leaves no training rows")
    test, train = idx[:k], idx[k:]
    return X[train], y[train], X[test], y[test]
