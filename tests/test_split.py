"""datasets.train_test_split (scikit-learn's order and stratification) and datasets.split."""

import numpy as np
import pytest

from inertia import datasets

sk_model_selection = pytest.importorskip("sklearn.model_selection")


def _data(counts, seed=0):
    rng = np.random.default_rng(seed)
    y = np.concatenate([np.full(c, k) for k, c in enumerate(counts)])
    y = y[rng.permutation(len(y))]
    X = np.column_stack([np.arange(len(y)), rng.normal(size=len(y))])
    return X, y


@pytest.mark.parametrize("counts, test_size", [((30, 15, 5), 0.3), ((50, 50), 0.25),
                                               ((7, 11, 13, 2), 0.4), ((40, 3), 10),
                                               ((9, 9, 9), 0.5), ((100, 1, 1, 1), 0.5)])
def test_stratified_class_counts_are_sklearns(counts, test_size):
    """Sizes equal scikit-learn's; each class's count in each part equals scikit-learn's
    (exactly where no two classes tie for a leftover row, else within one row)."""
    if min(counts) < 2:
        counts = tuple(max(c, 2) for c in counts)
    X, y = _data(counts)
    Xtr, Xte, ytr, yte = datasets.train_test_split(X, y, test_size=test_size, random_state=3,
                                                   stratify=y)
    sXtr, sXte, sytr, syte = sk_model_selection.train_test_split(
        X, y, test_size=test_size, random_state=3, stratify=y)
    assert (Xtr.shape, Xte.shape, ytr.shape, yte.shape) == \
        (sXtr.shape, sXte.shape, sytr.shape, syte.shape)
    k = len(counts)
    mine, theirs = np.bincount(yte, minlength=k), np.bincount(syte, minlength=k)
    assert np.abs(mine - theirs).max() <= 1
    share = np.array(counts) * len(yte) / len(y)
    if len(set(np.round(share - np.floor(share), 12))) == len(counts):   # no ties
        np.testing.assert_array_equal(mine, theirs)
    # every row once, X and y kept together
    rows = np.concatenate([Xtr[:, 0], Xte[:, 0]]).astype(int)
    assert sorted(rows) == list(range(len(y)))
    np.testing.assert_array_equal(y[Xtr[:, 0].astype(int)], ytr)
    np.testing.assert_array_equal(y[Xte[:, 0].astype(int)], yte)


def test_hand_worked_allocation():
    # 10 rows, classes of 6 and 4, test_size 0.2: 2 test rows, 8 training rows; training
    # gets 6 * 0.8 = 4.8 -> 4 and 4 * 0.8 = 3.2 -> 3, the leftover row to the larger
    # remainder (class 0): 5 + 3; the test part takes 1 + 1 of what is left (1, 1)
    X, y = _data((6, 4))
    _, _, ytr, yte = datasets.train_test_split(X, y, test_size=0.2, random_state=0, stratify=y)
    assert list(np.bincount(ytr)) == [5, 3]
    assert list(np.bincount(yte)) == [1, 1]


def test_unstratified_sizes_and_order_are_sklearns():
    X, y = _data((20, 13))
    for test_size in (0.25, 0.1, 5):
        out = datasets.train_test_split(X, y, test_size=test_size, random_state=1)
        theirs = sk_model_selection.train_test_split(X, y, test_size=test_size,
                                                     random_state=1)
        assert [a.shape for a in out] == [a.shape for a in theirs]
        assert out[0].ndim == 2 and out[2].ndim == 1        # X_train, X_test, y_train, y_test
    a = datasets.train_test_split(X, y, random_state=7)
    b = datasets.train_test_split(X, y, random_state=7)
    for u, v in zip(a, b):
        np.testing.assert_array_equal(u, v)


def test_no_shuffle_keeps_order():
    X, y = _data((10, 10))
    Xtr, Xte, ytr, yte = datasets.train_test_split(X, y, test_size=0.25, shuffle=False)
    sXtr, sXte, _, _ = sk_model_selection.train_test_split(X, y, test_size=0.25,
                                                           shuffle=False)
    np.testing.assert_array_equal(Xtr, sXtr)
    np.testing.assert_array_equal(Xte, sXte)


@pytest.mark.parametrize("kw, words", [
    (dict(test_size=1.5), "test_size"), (dict(test_size=0), "test rows"),
    (dict(test_size=True), "test_size"), (dict(stratify="y1"), "only 1 row"),
    (dict(stratify="y", shuffle=False), "shuffle"), (dict(test_size=2, stratify="y"), "classes"),
    (dict(stratify="short"), "labels for"),
])
def test_bad_arguments_one_line(kw, words):
    X, y = _data((10, 10, 10))
    y1 = y.copy()
    y1[0] = 9
    if "stratify" in kw:
        kw["stratify"] = {"y": y, "y1": y1, "short": y[:5]}[kw["stratify"]]
    with pytest.raises(ValueError) as ei:
        datasets.train_test_split(X, y, **kw)
    assert words in str(ei.value) and "\n" not in str(ei.value)


def test_split_keeps_its_order_and_unstratified_rows():
    """The old call: (X_train, y_train, X_test, y_test), the same rows for a seed as before
    (a permutation of default_rng(seed), the first round(n * f) rows for testing)."""
    X, y = _data((30, 10))
    Xtr, ytr, Xte, yte = datasets.split(X, y, 0.25, seed=4)
    idx = np.random.default_rng(4).permutation(len(y))
    np.testing.assert_array_equal(Xte, X[idx[:10]])
    np.testing.assert_array_equal(ytr, y[idx[10:]])


def test_split_stratified():
    X, y = _data((30, 10))
    Xtr, ytr, Xte, yte = datasets.split(X, y, 0.25, seed=4, stratify=y)
    assert len(yte) == 10 and len(ytr) == 30
    assert list(np.bincount(yte)) == [8, 2] or list(np.bincount(yte)) == [7, 3]
    # 40 rows, train 30: 22.5 -> 22 and 7.5 -> 7, one leftover to a tie (0.5 each)
    rows = np.concatenate([Xtr[:, 0], Xte[:, 0]]).astype(int)
    assert sorted(rows) == list(range(40))
    np.testing.assert_array_equal(y[Xte[:, 0].astype(int)], yte)


def test_split_stratifies_one_hot_labels():
    X, y = _data((12, 8))
    onehot = np.eye(2)[y]
    _, _, _, yte = datasets.split(X, onehot, 0.25, seed=0, stratify=onehot)
    assert list(yte.sum(axis=0)) == [3, 2]
