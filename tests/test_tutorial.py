"""docs/tutorial.md, run small: the digits CSV, the commands it shows, and its Python code
(docs/tutorial/*.py), with fewer epochs, folds and grid points, so that the tutorial cannot
drift from what inertia does."""

import csv
import importlib.util
import os
import warnings

import numpy as np
import pytest

pytest.importorskip("sklearn")
pytest.importorskip("matplotlib")

from inertia.cli import main  # noqa: E402

TUTORIAL = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "docs",
                        "tutorial")
DIGIT_NAMES = {"zero", "one", "two", "three", "four", "five", "six", "seven", "eight", "nine"}


def tutorial_module(name):
    spec = importlib.util.spec_from_file_location(name, os.path.join(TUTORIAL, name + ".py"))
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def run(capsys, *argv):
    code = main([str(a) for a in argv])
    out, err = capsys.readouterr()
    return code, out, err


def read_rows(path):
    with open(path, newline="", encoding="utf-8") as fh:
        return list(csv.reader(fh))


def test_command_line_part(tmp_path, capsys, monkeypatch):
    monkeypatch.chdir(tmp_path)
    tutorial_module("make_digits_csv").main(["--out", str(tmp_path)])
    capsys.readouterr()
    rows, new = read_rows("digits.csv"), read_rows("new.csv")
    assert rows[0] == [f"p{j}" for j in range(64)] + ["digit"] and len(rows) == 1698
    assert {r[-1] for r in rows[1:]} == DIGIT_NAMES
    assert new[0] == rows[0][:-1] and len(new) == 101

    # the tutorial's command with 8 epochs instead of 30
    code, out, err = run(capsys, "train", "--data", "digits.csv", "--target", "digit",
                         "--standardize", "--test-fraction", "0.2",
                         "--layers", "64:relu,10:softmax", "--momentum", "0.9", "--lr", "0.01",
                         "--batch-size", "32", "--epochs", "8",
                         "--save", "digits.npz", "--plot", "curve.png")
    assert code == 0, err
    assert "10 classes" in out and "confusion matrix on the 339 test rows" in out
    test_accuracy = float(out.split("test accuracy")[1].split()[0])
    assert test_accuracy > 0.9, out
    assert os.path.getsize("digits.npz") > 0 and os.path.getsize("curve.png") > 0

    code, out, err = run(capsys, "info", "digits.npz")
    assert code == 0, err
    assert "64-64-10 (relu, softmax)" in out and "classification, 10 classes" in out
    assert "target digit" in out and "inputs standardised" in out

    code, out, err = run(capsys, "predict", "digits.npz", "--data", "new.csv", "--out", "-",
                         "--proba")
    assert code == 0, err
    table = list(csv.reader(out.splitlines()))
    assert table[0][0] == "digit" and set(table[0][1:]) == DIGIT_NAMES and len(table) == 101
    proba = np.array([[float(v) for v in row[1:]] for row in table[1:]])
    np.testing.assert_allclose(proba.sum(axis=1), 1.0, atol=1e-5)   # float32 softmax
    predicted = [row[0] for row in table[1:]]
    assert predicted == [table[0][1 + k] for k in proba.argmax(axis=1)]
    # new.csv holds the last 100 images of load_digits: most must come out right
    from sklearn.datasets import load_digits
    truth = tutorial_module("make_digits_csv").NAMES
    y_true = [truth[k] for k in load_digits().target[-100:]]
    assert np.mean(np.array(predicted) == np.array(y_true)) > 0.85


def test_python_part(tmp_path):
    tut = tutorial_module("digits_python")
    X, y = tut.digits(600)
    grid = {"mlp__momentum": [0.0, 0.9], "mlp__learning_rate_init": [0.01]}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")      # ConvergenceWarning: max_iter is small on purpose
        scores, search, test_score = tut.pipeline_part(X, y, max_iter=15, cv=2, grid=grid)
    assert scores.shape == (2,) and scores.min() > 0.8
    assert len(search.cv_results_["params"]) == 2
    assert search.best_params_["mlp__momentum"] in (0.0, 0.9) and test_score > 0.8
    assert set(search.best_estimator_.classes_) == DIGIT_NAMES

    net, hist, classes = tut.core_part(X, y, epochs=40, patience=3)
    assert list(classes) == sorted(DIGIT_NAMES)
    assert len(hist.loss) == len(hist.val_loss) == len(hist.val_accuracy) <= 40
    assert hist.best_epoch is not None and max(hist.val_accuracy) > 0.9
    best = hist.best_epoch
    # Keras's rule with min_delta 1e-3: the best epoch's loss is the lowest up to it, and no
    # later epoch beat it by more than min_delta; a stopped run ran `patience` epochs past it
    assert hist.val_loss[best] == min(hist.val_loss[:best + 1])
    assert min(hist.val_loss[best:]) > hist.val_loss[best] - 1e-3
    if hist.stopped_epoch is not None:
        assert hist.stopped_epoch == best + 3 == len(hist.loss) - 1
    path = tut.learning_curve(hist, str(tmp_path / "tutorial-learning-curve.png"))
    assert 0 < os.path.getsize(path) < 150_000
