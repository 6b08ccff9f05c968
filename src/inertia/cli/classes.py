"""Classification on the command line: which task a target asks for, class names and their
codes, the output layer, accuracy and the confusion matrix.

The task rule (``infer_task``): ``--task`` decides when given. Otherwise a target of text
(any value not a number) is classification; a numeric target is classification only when
the command builds the output layer itself (no ``--layers``), the target is one column of
whole numbers, and it takes between 2 and ``MAX_CLASSES`` distinct values with at least
``ROWS_PER_CLASS`` rows per value on average; anything else is regression. A model file
records its task and class names, and a resumed model keeps them.
"""

from __future__ import annotations

import numpy as np

from ..network import Dense
from .common import CLIError

MAX_CLASSES = 20
ROWS_PER_CLASS = 5
CLASSIFICATION_LOSSES = ("bce", "cross_entropy")


def is_text(y):
    return y is not None and np.asarray(y).dtype.kind in "US"


def infer_task(y, requested, layers_given):
    """("classification" | "regression", why) for targets ``y`` ((n,) text or (n, t)
    numbers)."""
    if requested is not None:
        if requested == "regression" and is_text(y):
            raise CLIError("--task regression: the target column holds text (class names): "
                           "leave --task out, or pick a numeric --target")
        if requested == "classification" and not is_text(y):
            values = np.asarray(y, dtype=np.float64)
            if values.ndim == 2 and values.shape[1] != 1 or \
                    not np.all(values == np.round(values)):
                raise CLIError("--task classification: the target is not one column of class "
                               "labels (text or whole numbers)")
        return requested, "--task"
    if is_text(y):
        return "classification", "the target holds text"
    y2 = np.asarray(y).reshape(len(y), -1)
    if layers_given or y2.shape[1] != 1:
        return "regression", ""
    distinct = np.unique(y2)
    whole = bool(np.all(distinct == np.round(distinct)))
    if whole and 2 <= len(distinct) <= MAX_CLASSES and len(y2) >= ROWS_PER_CLASS * len(distinct):
        return "classification", (f"the target holds {len(distinct)} distinct whole numbers; "
                                   "--task regression to treat them as numbers")
    return "regression", ""


def class_name(value):
    """A label's name: text as it is, a whole number without its '.0'."""
    if isinstance(value, str):
        return value
    v = float(value)
    return str(int(v)) if v == int(v) else repr(v)


def encode(y, classes=None, where="the data"):
    """(codes (n, 1) float64 in 0..K-1, class names [K]) for labels ``y``: the classes are the
    sorted distinct labels (numbers in numeric order), or the given ``classes`` (a resumed
    model's), when a label outside them is refused."""
    flat = np.asarray(y).reshape(-1)
    if classes is None:
        distinct = np.unique(flat)                 # sorted: text or numbers
        classes = [class_name(v) for v in distinct.tolist()]
        if len(classes) < 2:
            raise CLIError(f"{where}: the target holds a single class {classes[0]!r}: "
                           "classification needs at least 2")
    names = [class_name(v) for v in flat.tolist()]
    index = {c: k for k, c in enumerate(classes)}
    unknown = sorted({n for n in names if n not in index})
    if unknown:
        raise CLIError(f"{where} has class(es) {', '.join(map(repr, unknown[:5]))} that the "
                       f"model does not know (its classes: {', '.join(classes)})")
    return np.array([index[n] for n in names], dtype=np.float64).reshape(-1, 1), classes


def output_layer(classes):
    """The output layer for K classes: K softmax units, or one sigmoid unit for two."""
    return Dense(len(classes), "softmax") if len(classes) > 2 else Dense(1, "sigmoid")


def check_output(net, classes, loss):
    """The network's output layer and the loss fit K classes (one line naming the fix)."""
    k, units, act = len(classes), net.n_outputs, net.output_activation
    if not (act == "softmax" and units == k or act == "sigmoid" and units == 1 and k == 2):
        fix = f"{k}:softmax" + (" or 1:sigmoid" if k == 2 else "")
        raise CLIError(f"the target has {k} classes ({', '.join(classes[:6])}"
                       f"{', ...' if k > 6 else ''}) but the network ends in {units}:{act}: "
                       f"end --layers in {fix}")
    if loss not in CLASSIFICATION_LOSSES:
        raise CLIError(f"--loss {loss}: a classification target needs bce (1:sigmoid) or "
                       "cross_entropy (softmax): leave --loss out")


def probabilities(out, n_classes):
    """Class probabilities (n, K) from the network's outputs: softmax rows as they are, one
    sigmoid unit p as (1 - p, p)."""
    out = np.asarray(out, dtype=np.float64)
    if n_classes == 2 and out.shape[1] == 1:
        return np.column_stack([1 - out[:, 0], out[:, 0]])
    return out


def predicted(net, X, n_classes):
    """The predicted class codes (n,) of rows X, already scaled as the network was trained
    (so a loaded model's stored scaling is not applied a second time): the most probable
    class."""
    return probabilities(net.predict(X, raw=True), n_classes).argmax(axis=1)


def confusion(true, pred, n_classes):
    """(K, K) counts: row = true class, column = predicted class."""
    out = np.zeros((n_classes, n_classes), dtype=np.int64)
    np.add.at(out, (np.asarray(true, dtype=np.int64).reshape(-1),
                    np.asarray(pred, dtype=np.int64).reshape(-1)), 1)
    return out


def print_confusion(matrix, classes, what):
    print(f"confusion matrix on the {what} (rows: true class, columns: predicted):")
    width = max(6, *(len(c) for c in classes), len(str(matrix.max(initial=0))))
    print(" " * (width + 2) + " ".join(c.rjust(width) for c in classes))
    for c, row in zip(classes, matrix):
        print("  " + c.ljust(width) + " ".join(str(v).rjust(width) for v in row))


def report(net, classes, train, val):
    """Print the training (and test) accuracy and the confusion matrix of the test rows
    (the training rows without a test split). Returns {"train_accuracy", "test_accuracy"}."""
    k = len(classes)
    scores = {}
    for name, rows in (("train", train), ("test", val)):
        if rows is None or not len(rows[0]):
            continue
        pred = predicted(net, rows[0], k)
        true = np.asarray(rows[1]).reshape(-1).astype(np.int64)
        scores[f"{name}_accuracy"] = float(np.mean(pred == true))
        last = (pred, true, name)
    line = f"training accuracy {scores['train_accuracy']:.4f}"
    if "test_accuracy" in scores:
        line += f"   test accuracy {scores['test_accuracy']:.4f}"
    print(line)
    pred, true, name = last
    where = f"{len(true)} {'test' if name == 'test' else 'training'} rows"
    print_confusion(confusion(true, pred, k), classes, where)
    return scores
