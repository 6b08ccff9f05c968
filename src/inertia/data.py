"""Datasets: the sources' synthetic sets, CSV / .npy / .npz loading, standardisation, splits."""

from __future__ import annotations

import csv
import os
from dataclasses import dataclass

import numpy as np


def smooth_regression(n=10_000, seed=0, dtype="float32"):
    """x uniform in [0, 1)^4, y = sin x0 + cos x1 + tanh x2 + x3^2 (the Neanderthal series'
    regression task). Returns X (n, 4) and y (n, 1)."""
    n = _count(n)
    check_seed(seed, generator=True)
    check_memory(n * 5 * 8 * 2, f"{n:,} samples of smooth-regression")
    rng = np.random.default_rng(seed)
    X = rng.random((n, 4))
    y = np.sin(X[:, 0]) + np.cos(X[:, 1]) + np.tanh(X[:, 2]) + X[:, 3] ** 2
    return X.astype(dtype), y.reshape(-1, 1).astype(dtype)


def random_binary(n=1000, dim=1000, seed=0, dtype="float32"):
    """N(0, 1) inputs of dimension ``dim``; the first half labelled 0, the second half 1
    (the mini-batch momentum experiment). Returns X (n, dim) and y (n, 1)."""
    n, dim = _count(n), _count(dim, "dim")
    check_seed(seed, generator=True)
    check_memory(n * (dim + 1) * 8 * 2, f"{n:,} samples of random-binary with dim {dim:,}")
    rng = np.random.default_rng(seed)
    X = rng.standard_normal((n, dim))
    y = np.zeros((n, 1))
    y[n // 2:] = 1
    return X.astype(dtype), y.astype(dtype)


BUILTIN = {"smooth-regression": smooth_regression, "random-binary": random_binary}


def total_memory():
    """Bytes of physical memory, or None where the OS does not say."""
    try:
        return os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
    except (ValueError, OSError, AttributeError):
        return None


def check_memory(nbytes, what):
    """Refuse, before allocating, a request of ``nbytes`` that exceeds the machine's memory:
    a one-line ValueError giving the size needed."""
    total = total_memory()
    if total is not None and nbytes > total:
        raise ValueError(f"{what}: {_size(nbytes)} needed but this machine has "
                         f"{_size(total)} of memory: ask for less")


def _size(nbytes):
    if nbytes >= 1e30:
        return f"about 1e{len(str(int(nbytes))) - 1} bytes"
    for unit, scale in (("TB", 1e12), ("GB", 1e9), ("MB", 1e6)):
        if nbytes >= scale:
            return f"{nbytes / scale:.3g} {unit}"
    return f"{nbytes:.0f} bytes"


def check_seed(seed, name="seed", generator=False):
    """A one-line ValueError unless ``seed`` is None or an integer >= 0 (NumPy's integers
    too; not a bool), or with ``generator`` a NumPy Generator."""
    if seed is None or generator and isinstance(seed, np.random.Generator):
        return
    if isinstance(seed, bool) or not isinstance(seed, (int, np.integer)) or seed < 0:
        kinds = "a non-negative integer, a NumPy Generator or None" if generator \
            else "a non-negative integer or None"
        raise ValueError(f"{name} must be {kinds}, got {_describe(seed)}")


def _count(n, name="n"):
    if not isinstance(n, (int, np.integer)) or isinstance(n, bool) or n < 1:
        raise ValueError(f"{name} must be a positive integer, got {n!r}")
    return int(n)


def _describe(value):
    """A value for a one-line message: its repr when short, else its type (and shape)."""
    text = repr(value)
    if len(text) <= 40 and "\n" not in text:
        return text
    shape = getattr(value, "shape", None)
    return f"a {type(value).__name__}" + (f" of shape {shape}" if shape is not None else "")


def _is_number(s):
    try:
        float(s)
    except ValueError:
        return False
    return True


@dataclass
class Table:
    """A loaded data set: X (n, k) float64, y (n, t) or None, and where its columns came from:
    ``features`` the k input columns' names (a CSV with a header) or 0-based positions,
    ``target`` the target column's name or position (None: y came as a separate array or
    there is none), ``n_columns`` the number of columns of the file's table."""

    X: np.ndarray
    y: np.ndarray | None
    features: list
    target: object
    n_columns: int


def read_table(path):
    """A CSV file as (values (n, columns) float64, header names or None). Handles a UTF-8
    byte-order mark; refuses other encodings, binary files, ragged rows, non-numbers and
    NaN/inf (naming the row and column), each in one line."""
    rows = _csv_rows(path)
    if not rows:
        raise ValueError(f"{path} is empty: it needs a header (optional) and numeric rows")
    header = None
    if not all(_is_number(c) for c in rows[0]):
        header, rows = [c.strip() for c in rows[0]], rows[1:]
    return _numbers(rows, header, path), header


def _numbers(rows, header, path, skip=None):
    """The data ``rows`` (lists of text, after the ``header`` line if any) as float64
    (n, columns), column ``skip`` (if any) left 0; ragged rows, non-numbers and NaN/inf are
    one-line ValueErrors naming the file's row and column."""
    if not rows:
        raise ValueError(f"{path} has a header but no data rows")
    twice = sorted({c for c in header or () if header.count(c) > 1})
    if twice:        # a column named twice: --target and predict's columns would be ambiguous
        raise ValueError(f"{path} names the column {twice[0]!r} more than once in its header: "
                         "give every column its own name")
    width = len(header) if header else len(rows[0])
    first = 1 + (header is not None)            # the file line of the first data row
    for i, r in enumerate(rows):
        if len(r) != width:
            raise ValueError(f"{path}: row {i + first} has {len(r)} columns, expected {width}")
    check_memory(len(rows) * width * 8, f"the {len(rows)} x {width} values of {path}")
    values = np.zeros((len(rows), width))
    for i, r in enumerate(rows):
        for j, c in enumerate(r):
            if j == skip:
                continue
            try:
                values[i, j] = float(c)
            except ValueError:
                raise ValueError(f"{path} has a non-numeric value {c.strip()[:20]!r} in row "
                                 f"{i + first}, column {_col(header, j)}: the data must be "
                                 "numbers") from None
    _check_finite(values, header, path, first)
    return values


# reading a CSV as a table takes about this many times its text in memory (the rows' str
# cells; 670 MB for 45 MB of text measured)
TEXT_FACTOR = 15
CHUNK = 1 << 24


def _csv_bytes(path):
    """The bytes of a CSV file, read in chunks: binary data (a NUL byte) or more text than
    the machine's memory could hold as a table is refused as soon as it is read, so that a
    device such as /dev/zero or an endless pipe fails at once instead of filling memory."""
    total = total_memory()
    chunks, size = [], 0
    try:
        with open(path, "rb") as f:
            while chunk := f.read(CHUNK):
                if b"\0" in chunk:
                    raise ValueError(f"{path} is not a CSV text file (it holds binary data): "
                                     "give a CSV, .npy or .npz file")
                size += len(chunk)
                if total is not None and size * TEXT_FACTOR > total:
                    raise ValueError(f"{path} holds more than {_size(size)} of text: read as "
                                     f"a table it needs about {TEXT_FACTOR} times that, more "
                                     f"than this machine's {_size(total)} of memory: save it "
                                     "as .npy (np.save), which loads at its own size")
                chunks.append(chunk)
    except OSError as ex:
        raise ValueError(f"cannot read {path}: {ex.strerror or ex}") from None
    return b"".join(chunks)


# other column separators, named when a file's lines hold one of them and no comma
SEPARATORS = {";": "semicolons", "\t": "tabs", "|": "bars (|)"}


def _csv_rows(path):
    raw = _csv_bytes(path)
    try:
        text = raw.decode("utf-8-sig")
    except UnicodeDecodeError as ex:
        raise ValueError(f"{path} is not UTF-8 text (byte 0x{raw[ex.start]:02x} at offset "
                         f"{ex.start}): save it as UTF-8") from None
    try:
        rows = [r for r in csv.reader(text.splitlines()) if r and any(c.strip() for c in r)]
    except csv.Error as ex:
        raise ValueError(f"{path} is not a readable CSV file ({ex})") from None
    sep = next((d for d in SEPARATORS if rows and d in rows[0][0]), None)
    if sep and all(len(r) == 1 for r in rows):
        raise ValueError(f"{path} separates its columns with {SEPARATORS[sep]}: inertia "
                         "reads comma-separated values; save it with commas")
    if rows and all(len(r) > 1 and not r[-1].strip() for r in rows):
        raise ValueError(f"{path}: every row ends in an empty column (a comma at the end of "
                         "each line): remove those commas")
    return rows


def _col(header, j):
    return f"{header[j]!r}" if header else f"{j}"


def _check_finite(values, header, path, first=1, what="value"):
    bad = ~np.isfinite(values)
    if bad.any():
        i, j = np.argwhere(bad)[0]
        raise ValueError(f"{path} has a {what} {values[i, j]} (NaN, inf or beyond float64) "
                         f"in row {i + first}, column {_col(header, j)}: clean or drop those "
                         "rows first")


def read_csv(path, target=None):
    """Read a numeric CSV file. Returns (X, y, names) with y the target column: ``target`` is
    a column name (when the file has a header) or a 0-based index (negative counts from the
    end); default the last column. ``target=False`` returns all columns as X and y = None.
    A header is detected when the first row is not all numbers."""
    values, header = read_table(path)
    names = header or [f"x{i}" for i in range(values.shape[1])]
    if target is False:
        return values, None, names
    t = _split_target(values, header, target, path)
    return t.X, t.y, [names[f] if isinstance(f, int) else f for f in t.features]


def _split_target(values, header, target, path):
    names = header or [f"x{i}" for i in range(values.shape[1])]
    col = _target_column(target, names, header is not None, path)
    keep = [i for i in range(values.shape[1]) if i != col]
    if not keep:
        raise ValueError(f"{path} has only the target column: it needs input columns too")
    features = [header[i] for i in keep] if header else keep
    return Table(values[:, keep], values[:, col:col + 1], features,
                 header[col] if header else col, values.shape[1])


def _target_column(target, names, has_header, path):
    width = len(names)
    if target is None:
        return width - 1
    if isinstance(target, str) and not _is_int(target):
        if not has_header or target not in names:
            raise ValueError(f"{path} has no column named {target!r}: columns are "
                             f"{', '.join(names) if has_header else f'{width} unnamed'}")
        return names.index(target)
    idx = int(target)
    if not -width <= idx < width:
        raise ValueError(f"target column {idx} is out of range for {path} with {width} columns")
    return idx % width


def _is_int(s):
    try:
        int(s)
    except (ValueError, TypeError):
        return False
    return True


def load(path, target=None):
    """Load (X, y) from a CSV file, an ``.npz`` with arrays ``X`` and ``y``, or an ``.npy``
    file of X beside ``NAME_y.npy`` (or ``y.npy`` for ``X.npy``). For .npy and .npz without y,
    the last column is the target, as for CSV."""
    t = load_table(path, target)
    return t.X, t.y


def load_table(path, target=None, need_target=True, target_kind="values"):
    """Like ``load`` but returns a ``Table`` that records the columns. With
    ``need_target=False`` a file may come without targets (y None): a CSV or array whose
    columns are all inputs.

    ``target_kind`` says what the target column may hold: "values" numbers (the default);
    "labels" class labels kept as text (y an (n,) array of str, each stripped; the input
    columns are checked as numbers as ever); "auto" numbers when every target value is a
    number (exactly as "values"), else labels. With "labels" or "auto" a CSV's first line
    is a header when one of its input cells is not a number (or the target's cell is text
    above numbers, or ``target`` is a name in it); with ``need_target=False`` the target
    column is optional: it is dropped as labels only when it holds text, so a file of
    input columns alone loads as before. An .npz's y may be an array of str (labels)."""
    if target_kind not in ("values", "labels", "auto"):
        raise ValueError(f"target_kind must be 'values', 'labels' or 'auto', "
                         f"got {target_kind!r}")
    if target is not None and not isinstance(target, (str, int, np.integer)) \
            or isinstance(target, bool):
        raise ValueError(f"target must be one column's name or 0-based index, got "
                         f"{_describe(target)}: pick a single target column")
    path = os.fspath(path)
    if not os.path.exists(path):
        raise ValueError(f"no such file: {path}")
    if os.path.isdir(path):
        raise ValueError(f"{path} is a directory: give a CSV, .npy or .npz file")
    ext = os.path.splitext(path)[1].lower()
    if ext not in (".npz", ".npy"):
        if target_kind != "values":
            return _labelled_table(path, target, need_target, target_kind)
        values, header = read_table(path)
        if not need_target:
            return Table(values, None, list(header or range(values.shape[1])), None,
                         values.shape[1])
        return _split_target(values, header, target, path)
    X, y = _read_arrays(path, ext)
    if y is not None and target is not None:
        raise ValueError(f"{path} holds its targets apart from its inputs (y), so there is "
                         f"no target column to pick: leave the target ({target!r}) out")
    if target_kind != "values" and y is not None and np.asarray(y).dtype.kind == "U":
        X, _ = _finite(X, None, path)
        return Table(X, _label_array(y, X.shape[0], path), list(range(X.shape[1])), None,
                     X.shape[1])
    X, y = _finite(X, y, path)
    if y is not None or not need_target:
        return Table(X, y, list(range(X.shape[1])), None, X.shape[1])
    if X.shape[1] < 2:
        raise ValueError(f"{path} holds no targets: give y in the file or a _y.npy beside it")
    return _split_target(X, None, target, path)


def _labelled_table(path, target, need_target, kind):
    """``load_table`` of a CSV whose target column may hold text (see there)."""
    rows = _csv_rows(path)
    if not rows:
        raise ValueError(f"{path} is empty: it needs a header (optional) and numeric rows")
    col, header = _label_column(rows, target, need_target, path)
    data = rows[1:] if header else rows
    if col is None or (kind == "auto" or not need_target) and all(
            _is_number(r[col]) for r in data if len(r) > col):
        if header is None and not all(_is_number(c) for c in rows[0]):
            header, data = [c.strip() for c in rows[0]], rows[1:]
        values = _numbers(data, header, path)
        if not need_target:
            return Table(values, None, list(header or range(values.shape[1])), None,
                         values.shape[1])
        return _split_target(values, header, target, path)
    values = _numbers(data, header, path, skip=col)
    first = 1 + (header is not None)
    labels = [r[col].strip() for r in data]
    for i, lab in enumerate(labels):
        if not lab:
            raise ValueError(f"{path} has an empty class label in row {i + first}, column "
                             f"{_col(header, col)}: fill or drop those rows")
    keep = [j for j in range(values.shape[1]) if j != col]
    if not keep:
        raise ValueError(f"{path} has only the target column: it needs input columns too")
    return Table(values[:, keep], np.array(labels), [header[j] for j in keep] if header
                 else keep, header[col] if header else col, values.shape[1])


def _label_column(rows, target, need_target, path):
    """(the target column's index or None when optional and absent, the header or None)."""
    first = [c.strip() for c in rows[0]]
    width = len(first)
    if isinstance(target, str) and not _is_int(target):
        if target in first:
            return first.index(target), first
        if need_target:
            _target_column(target, first, not all(_is_number(c) for c in first), path)
        return None, None
    if target is not None and not -width <= int(target) < width and not need_target:
        return None, None
    col = _target_column(target, first, False, path)
    below = [r[col] for r in rows[1:] if len(r) > col]
    text_above_numbers = not _is_number(first[col]) and below and all(map(_is_number, below))
    others = [c for j, c in enumerate(first) if j != col]
    is_header = not all(map(_is_number, others)) or text_above_numbers
    return col, first if is_header else None


def _label_array(y, n, path):
    y = np.asarray(y)
    if y.ndim == 2 and y.shape[1] == 1:
        y = y[:, 0]
    if y.ndim != 1 or y.shape[0] != n:
        raise ValueError(f"{path}: the class labels y must be one per row of X ({n}), "
                         f"got shape {y.shape}")
    return np.char.strip(y)


def _read_arrays(path, ext):
    try:
        if ext == ".npz":
            with np.load(path, allow_pickle=False) as f:
                if "X" not in f:
                    raise KeyError(", ".join(f.files))
                X = f["X"]
                y = f["y"] if "y" in f else None
        else:
            X = np.load(path, allow_pickle=False)
            y = None
            ypath = _y_path(path)
            if ypath is not None:
                y = np.load(ypath, allow_pickle=False)
    except KeyError as ex:
        raise ValueError(f"{path} has no array 'X' (it has {ex.args[0] or 'none'}): save it "
                         "with np.savez(path, X=..., y=...)") from None
    except Exception as ex:   # not an array file, pickled objects, truncated files
        raise ValueError(f"cannot read {path}: it is not a NumPy .npy/.npz array file "
                         f"without pickled objects ({type(ex).__name__})") from None
    return X, y


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
    X = np.asarray(X)
    if X.dtype.kind not in "fiub":
        raise ValueError(f"{path}: the inputs are {X.dtype} non-numbers: save numbers")
    X = X.astype(np.float64) if X.dtype.kind in "iub" else X
    if X.ndim == 1:
        X = X.reshape(-1, 1)
    if X.ndim != 2 or X.shape[0] == 0:
        raise ValueError(f"{path}: X must be a non-empty 2-D array, got shape {X.shape}")
    _check_finite(X, None, path, what="input")
    if y is not None:
        y = np.asarray(y)
        if y.dtype.kind not in "fiub" or not np.all(np.isfinite(y.astype(np.float64))):
            raise ValueError(f"{path}: the targets contain NaN, inf or non-numbers")
        if y.shape[0] != X.shape[0]:
            raise ValueError(f"{path}: X has {X.shape[0]} rows but y has {y.shape[0]}")
    return X, y


def check_range(values, names, dtype, what):
    """Refuse values that overflow ``dtype`` (they would become inf): a one-line ValueError
    naming the first such value's column (``names[j]``) and row (1-based)."""
    limit = np.finfo(dtype).max
    with np.errstate(invalid="ignore"):
        big = np.abs(values) > limit
    if big.any():
        i, j = np.argwhere(big)[0]
        raise ValueError(f"{what}: the value {values[i, j]:g} in data row {i + 1}, column "
                         f"{names[j]!r} overflows {np.dtype(dtype).name} (largest "
                         f"{limit:.3g}): rescale it, use --standardize or --dtype float64")


def standardize(X, mean=None, std=None, names=None):
    """(X - mean) / std per column (std 1 where a column is constant). Returns
    (X_standardised, mean, std); pass a training set's mean and std to apply them to a test set.
    A column whose mean or spread overflows float64 is a one-line ValueError (``names``: the
    columns' names for it)."""
    X = np.asarray(X, dtype=np.float64)
    if mean is None and (X.ndim == 0 or X.shape[0] == 0):
        raise ValueError(f"standardize measures X's columns over its rows, but X has shape "
                         f"{X.shape}: pass at least one row")
    if mean is None:
        with np.errstate(over="ignore", invalid="ignore"):
            mean = X.mean(axis=0)
            std = X.std(axis=0)
        bad = ~(np.isfinite(mean) & np.isfinite(std))
        if bad.any():
            j = int(np.argmax(bad))
            name = repr(names[j]) if names is not None else str(j)
            raise ValueError(f"cannot standardize column {name}: its mean or spread overflows "
                             f"float64 (its largest value is {np.abs(X[:, j]).max():g}): "
                             "rescale that column first")
        std = np.where(std > 0, std, 1.0)
    return (X - mean) / std, mean, std


def split(X, y, test_fraction=0.2, seed=0, stratify=None):
    """A seeded random train/test split in inertia's order: (X_train, y_train, X_test,
    y_test), round(n * test_fraction) test rows. ``stratify`` (labels, one per row, such as
    y): each class keeps its share in both parts (scikit-learn's allocation, see
    ``train_test_split``). Without ``stratify`` the split is the one this function has
    always made for a seed (saved models record it). For scikit-learn's argument names and
    order use ``train_test_split``."""
    if not 0 <= test_fraction < 1:
        raise ValueError(f"test fraction must be in [0, 1), got {test_fraction}")
    check_seed(seed, generator=True)
    n = len(X)
    rng = np.random.default_rng(seed)
    k = int(round(n * test_fraction))
    if k and n - k < 1:
        raise ValueError(f"a test fraction of {test_fraction} leaves no training rows")
    if stratify is not None and k:
        train, test = _stratified(stratify, n, n - k, k, rng)
    else:
        idx = rng.permutation(n)
        test, train = idx[:k], idx[k:]
    return X[train], y[train], X[test], y[test]


def train_test_split(X, y, test_size=0.25, random_state=None, stratify=None, shuffle=True):
    """scikit-learn's ``train_test_split`` for one X and one y: (X_train, X_test, y_train,
    y_test).

    test_size     a fraction in (0, 1): ceil(n * test_size) test rows (scikit-learn's
                  rounding), or a number of rows
    random_state  None, an integer seed or a NumPy Generator (NumPy's generator, so the
                  rows chosen differ from scikit-learn's for the same integer)
    stratify      None or labels (one per row, such as y): each class's share is kept in
                  both parts, by scikit-learn's allocation (each class gets the floor of its
                  share; the rows left go to the classes with the largest remainders, ties
                  drawn at random); every class needs at least 2 rows, and both parts at
                  least one row per class
    shuffle       False: the first rows train, the last ones test (no stratify then)
    Returns new arrays (rows taken with fancy indexing; X and y are not changed).
    """
    check_seed(random_state, "random_state", generator=True)
    X, y = np.asarray(X), np.asarray(y)
    n = len(X)
    if len(y) != n:
        raise ValueError(f"X has {n} rows but y has {len(y)}: pass one target per sample")
    n_test = _test_rows(test_size, n)
    n_train = n - n_test
    if not shuffle:
        if stratify is not None:
            raise ValueError("stratify needs shuffle=True: a stratified split draws rows")
        train, test = np.arange(n_train), np.arange(n_train, n)
    else:
        rng = np.random.default_rng(random_state)
        if stratify is not None:
            train, test = _stratified(stratify, n, n_train, n_test, rng)
        else:
            idx = rng.permutation(n)
            test, train = idx[:n_test], idx[n_test:]
    return X[train], X[test], y[train], y[test]


def _test_rows(test_size, n):
    """The number of test rows scikit-learn takes for ``test_size`` of n rows."""
    if isinstance(test_size, (int, np.integer)) and not isinstance(test_size, bool):
        k = int(test_size)
    elif isinstance(test_size, (float, np.floating)) and 0 < test_size < 1:
        k = int(np.ceil(test_size * n))
    else:
        raise ValueError(f"test_size must be a fraction in (0, 1) or a number of rows, "
                         f"got {_describe(test_size)}")
    if not 1 <= k <= n - 1:
        raise ValueError(f"test_size={test_size!r} gives {k} test rows of {n}: both parts "
                         "need at least one row")
    return k


def _stratified(labels, n, n_train, n_test, rng):
    """(train, test) row indices with each class's share kept (scikit-learn's
    StratifiedShuffleSplit allocation), both shuffled."""
    labels = np.asarray(labels)
    if labels.ndim == 2 and labels.shape[1] == 1:
        labels = labels[:, 0]
    if labels.ndim == 2:                  # one-hot or multi-output rows: a class per row
        _, labels = np.unique(labels, axis=0, return_inverse=True)
    if labels.shape[:1] != (n,):
        raise ValueError(f"stratify has {labels.shape[0] if labels.ndim else 0} labels for "
                         f"{n} rows: pass one label per row (such as y)")
    classes, codes = np.unique(labels.reshape(-1), return_inverse=True)
    counts = np.bincount(codes)
    if counts.min() < 2:
        raise ValueError(f"class {classes[counts.argmin()]!r} has only 1 row: a stratified "
                         "split needs at least 2 rows of every class")
    for part, k in (("test", n_test), ("training", n_train)):
        if k < len(classes):
            raise ValueError(f"the {part} part has {k} rows for {len(classes)} classes: "
                             "make it larger or leave out stratify")
    n_i = _allocate(counts, n_train, rng)
    t_i = _allocate(counts - n_i, n_test, rng)
    train, test = [], []
    for c in range(len(classes)):
        rows = rng.permutation(np.flatnonzero(codes == c))
        train.append(rows[:n_i[c]])
        test.append(rows[n_i[c]:n_i[c] + t_i[c]])
    return rng.permutation(np.concatenate(train)), rng.permutation(np.concatenate(test))


def _allocate(counts, k, rng):
    """k draws spread over classes in proportion to counts: the floor of each share, the
    rest to the largest remainders, ties at random (scikit-learn's _approximate_mode)."""
    share = counts * (k / counts.sum())
    got = np.floor(share).astype(np.int64)
    rest = k - int(got.sum())
    if rest:
        remainder = share - got
        order = np.lexsort((rng.random(len(counts)), -remainder))
        got[order[:rest]] += 1
    return got


def columns_record(table):
    """The JSON-able record of a Table's columns, kept in a saved model so that predictions
    and resumed runs select the same columns: {"names": input names or None, "features":
    input positions, "target": target position or None, "target_name": its name or None,
    "n_columns": the file's width}."""
    named = bool(table.features) and isinstance(table.features[0], str)
    return {"names": list(table.features) if named else None,
            "features": None if named else [int(f) for f in table.features],
            "target": table.target if isinstance(table.target, int) else None,
            "target_name": table.target if isinstance(table.target, str) else None,
            "n_columns": int(table.n_columns)}


def select_columns(values, header, record, n_inputs, path, need_target=False):
    """Pick a model's input (and, when present, target) columns out of a file's ``values``
    (n, columns) with ``header`` (names or None), as ``record`` (``columns_record``; None for
    an older model: the inputs are the first ``n_inputs`` columns) says. Returns (X, y or
    None); a file that does not fit is a one-line ValueError."""
    width = values.shape[1]
    rec = record or {"names": None, "features": list(range(n_inputs)), "target": None,
                     "target_name": None, "n_columns": n_inputs + 1}
    names, target_name = rec.get("names"), rec.get("target_name")
    if header is not None and names:
        missing = [c for c in names if c not in header]
        if missing:
            raise ValueError(f"{path} lacks the model's input column(s) "
                             f"{', '.join(map(repr, missing))} (it has {', '.join(header)})")
        X = values[:, [header.index(c) for c in names]]
        y = values[:, [header.index(target_name)]] if target_name in header else None
    elif width == n_inputs:
        X, y = values, None
    elif width == rec["n_columns"] and rec.get("target") is not None:
        feats = rec["features"] or [i for i in range(width) if i != rec["target"]]
        X, y = values[:, feats], values[:, [rec["target"]]]
    elif width == rec["n_columns"] and target_name is not None and names:
        # the model was trained on a file with a header; this one has the same columns
        # without it: positions follow from a file laid out as the training file
        raise ValueError(f"{path} has no header line but the model's columns are named: "
                         f"add one naming them ({', '.join(names + [target_name])})")
    else:
        with_t = f" (or {rec['n_columns']} with the target column)" \
            if rec["n_columns"] != n_inputs else ""
        raise ValueError(f"{path} has {width} column(s) but the model takes {n_inputs} "
                         f"input(s){with_t}")
    if need_target and y is None:
        what = repr(target_name) if target_name else "its target column"
        raise ValueError(f"{path} lacks the model's target column {what}: training needs it")
    return X, y
