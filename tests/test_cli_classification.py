"""Classification from the command line: the task rule, the output layer, accuracy and the
confusion matrix (checked against scikit-learn on the model's own predictions), class names
through predict (--proba) and info, and one-line errors for what does not fit."""

import csv

import numpy as np
import pytest

import inertia
from inertia import data as datasets
from inertia.cli import main
from inertia.cli import classes as classify

NAMES = ["setosa", "versicolor", "virginica"]
CENTERS = np.array([[0.0, 0.0], [4.0, 0.0], [0.0, 4.0]])


def run(capsys, *argv):
    code = main([str(a) for a in argv])
    out, err = capsys.readouterr()
    return code, out, err


def one_line_error(code, err, *words):
    assert code == 2 and err.startswith("inertia: error: ") and err.count("\n") == 1, err
    for w in words:
        assert w in err, err


def blobs(n=150, seed=0, k=3):
    """Well separated clusters: (X (n, 2), class codes (n,))."""
    rng = np.random.default_rng(seed)
    codes = rng.integers(0, k, n)
    return CENTERS[codes] + 0.5 * rng.standard_normal((n, 2)), codes


def write_labelled(path, X, labels, header=("x1", "x2", "species")):
    with open(path, "w", newline="") as f:
        w = csv.writer(f)
        if header:
            w.writerow(header)
        for x, lab in zip(X, labels):
            w.writerow([f"{x[0]:.6f}", f"{x[1]:.6f}", lab])


def inputs_of(path):
    """The input columns as written (rounded to 6 decimals): what the model saw."""
    return np.loadtxt(path, delimiter=",", skiprows=1, usecols=(0, 1))


def read_rows(path):
    with open(path, newline="") as f:
        return list(csv.reader(f))


FAST = ["--lr", "0.5", "--momentum", "0.9", "--epochs", "60", "--standardize", "--quiet"]


def printed_matrix(out, k):
    lines = out.splitlines()
    at = next(i for i, line in enumerate(lines) if line.startswith("confusion matrix"))
    return np.array([[int(v) for v in line.split()[1:]] for line in lines[at + 2:at + 2 + k]])


def test_text_labels_train_to_high_accuracy_and_report_the_matrix(tmp_path, capsys):
    from sklearn.metrics import confusion_matrix

    X, codes = blobs()
    write_labelled(tmp_path / "iris.csv", X, [NAMES[c] for c in codes])
    model = tmp_path / "m.npz"
    code, out, err = run(capsys, "train", "--data", tmp_path / "iris.csv", *FAST,
                         "--save", model)
    assert code == 0, err
    assert "2-32-16-3 (sigmoid, tanh, softmax)" in out and "cross_entropy loss" in out
    assert "3 classes setosa, versicolor, virginica" in out
    # no test split: the matrix is of the training rows; recompute it from the saved model
    net, _ = inertia.load(model)
    X = inputs_of(tmp_path / "iris.csv")
    Xs = (X - np.array(net.extra["mean"])) / np.array(net.extra["std"])
    pred = np.asarray(net.predict(Xs, raw=True)).argmax(axis=1)
    want = confusion_matrix(codes, pred, labels=[0, 1, 2])
    np.testing.assert_array_equal(printed_matrix(out, 3), want)
    acc = float(out.split("training accuracy ")[1].split()[0])
    assert acc == pytest.approx(np.trace(want) / len(codes), abs=1e-4) and acc >= 0.95
    assert net.extra["classes"] == NAMES and net.extra["task"] == "classification"
    assert net.extra["trained"]["epochs"] == 60 and net.extra["trained"]["steps"] == 60


def test_test_split_accuracy_and_matrix_of_the_test_rows(tmp_path, capsys):
    X, codes = blobs(200, seed=1)
    write_labelled(tmp_path / "d.csv", X, [NAMES[c] for c in codes])
    code, out, err = run(capsys, "train", "--data", tmp_path / "d.csv", *FAST,
                         "--test-fraction", "0.25")
    assert code == 0, err
    assert "confusion matrix on the 50 test rows" in out
    m = printed_matrix(out, 3)
    test_acc = float(out.split("test accuracy ")[1].split()[0])
    assert m.sum() == 50 and test_acc == pytest.approx(np.trace(m) / 50, abs=1e-4)
    assert test_acc >= 0.9


def test_predict_names_and_probabilities_and_info(tmp_path, capsys):
    X, codes = blobs()
    write_labelled(tmp_path / "iris.csv", X, [NAMES[c] for c in codes])
    model = tmp_path / "m.npz"
    assert run(capsys, "train", "--data", tmp_path / "iris.csv", *FAST, "--save", model)[0] == 0
    # the training file itself (its text target column is dropped) and inputs alone
    write_labelled(tmp_path / "new.csv", X[:20], [], header=None)
    with open(tmp_path / "new.csv", "w") as f:
        f.write("x2,x1\n" + "".join(f"{b},{a}\n" for a, b in X[:20]))
    for data, n in ((tmp_path / "iris.csv", 150), (tmp_path / "new.csv", 20)):
        code, out, err = run(capsys, "predict", model, "--data", data, "--out",
                             tmp_path / "p.csv", "--proba")
        assert code == 0, err
        rows = read_rows(tmp_path / "p.csv")
        assert rows[0] == ["species"] + NAMES and len(rows) == n + 1
        probs = np.array([[float(v) for v in r[1:]] for r in rows[1:]])
        np.testing.assert_allclose(probs.sum(axis=1), 1, rtol=1e-5)
        assert [r[0] for r in rows[1:]] == [NAMES[k] for k in probs.argmax(axis=1)]
        assert np.mean([r[0] == NAMES[c] for r, c in zip(rows[1:], codes)]) >= 0.95
    code, out, err = run(capsys, "predict", model, "--data", tmp_path / "new.csv", "--out", "-")
    assert code == 0 and out.splitlines()[0] == "species" and len(out.splitlines()) == 21
    code, out, err = run(capsys, "info", model)
    assert code == 0, err
    assert "classification, 3 classes: setosa, versicolor, virginica" in out
    for words in ("2-32-16-3 (sigmoid, tanh, softmax)", "lr 0.5, momentum 0.9",
                  "60 epochs, 60 steps", "inputs x1, x2; target species",
                  "inputs standardised", "cross_entropy", "training accuracy"):
        assert words in out, (words, out)


def test_integer_labels_keep_their_names(tmp_path, capsys):
    X, codes = blobs(seed=2)
    write_labelled(tmp_path / "d.csv", X, [str(10 * (c + 1)) for c in codes])
    model = tmp_path / "m.npz"
    code, out, err = run(capsys, "train", "--data", tmp_path / "d.csv", *FAST, "--save", model)
    assert code == 0, err
    assert "3 distinct whole numbers" in out and "3 classes 10, 20, 30" in out
    assert run(capsys, "predict", model, "--data", tmp_path / "d.csv", "--out",
               tmp_path / "p.csv")[0] == 0
    got = [r[0] for r in read_rows(tmp_path / "p.csv")[1:]]
    assert set(got) <= {"10", "20", "30"}
    assert np.mean([g == str(10 * (c + 1)) for g, c in zip(got, codes)]) >= 0.95
    # --task regression treats them as numbers: one linear output, mse
    code, out, err = run(capsys, "train", "--data", tmp_path / "d.csv", "--epochs", "2",
                         "--task", "regression", "--quiet")
    assert code == 0, err
    assert "(sigmoid, tanh, linear)" in out and "mse loss" in out and "accuracy" not in out


def test_two_classes_sigmoid_and_bce(tmp_path, capsys):
    X, codes = blobs(seed=3, k=2)
    write_labelled(tmp_path / "d.csv", X, [["no", "yes"][c] for c in codes])
    model = tmp_path / "m.npz"
    code, out, err = run(capsys, "train", "--data", tmp_path / "d.csv", *FAST, "--save", model)
    assert code == 0, err
    assert "2-32-16-1 (sigmoid, tanh, sigmoid)" in out and "bce loss" in out
    assert float(out.split("training accuracy ")[1].split()[0]) >= 0.95
    assert run(capsys, "predict", model, "--data", tmp_path / "d.csv", "--out",
               tmp_path / "p.csv", "--proba")[0] == 0
    rows = read_rows(tmp_path / "p.csv")
    assert rows[0] == ["species", "no", "yes"]
    probs = np.array([[float(v) for v in r[1:]] for r in rows[1:]])
    np.testing.assert_allclose(probs.sum(axis=1), 1, rtol=1e-6)
    # the sigmoid unit is P(yes): recompute it from the model
    net, _ = inertia.load(model)
    X = inputs_of(tmp_path / "d.csv")
    Xs = (X - np.array(net.extra["mean"])) / np.array(net.extra["std"])
    # the file holds 8 significant digits of each float32 probability
    np.testing.assert_allclose(probs[:, 1], np.asarray(net.predict(Xs, raw=True))[:, 0], rtol=1e-7,
                               atol=1e-7)


def test_layers_given_for_classes(tmp_path, capsys):
    X, codes = blobs(seed=4)
    write_labelled(tmp_path / "d.csv", X, [NAMES[c] for c in codes])
    code, out, err = run(capsys, "train", "--data", tmp_path / "d.csv", "--layers",
                         "8:relu,3:softmax", *FAST)
    assert code == 0, err
    assert "2-8-3 (relu, softmax)" in out and "training accuracy" in out
    code, out, err = run(capsys, "train", "--data", tmp_path / "d.csv", "--layers",
                         "8:relu,2:softmax", *FAST)
    one_line_error(code, err, "3 classes", "end --layers in 3:softmax")
    code, out, err = run(capsys, "train", "--data", tmp_path / "d.csv", "--layers",
                         "8:relu,1:linear", *FAST)
    one_line_error(code, err, "3:softmax")


def test_mismatched_columns_are_refused(tmp_path, capsys):
    X, codes = blobs()
    write_labelled(tmp_path / "d.csv", X, [NAMES[c] for c in codes])
    model = tmp_path / "m.npz"
    assert run(capsys, "train", "--data", tmp_path / "d.csv", *FAST, "--save", model)[0] == 0
    with open(tmp_path / "other.csv", "w") as f:
        f.write("x1,z,species\n1,2,setosa\n")
    code, out, err = run(capsys, "predict", model, "--data", tmp_path / "other.csv", "--out",
                         tmp_path / "p.csv")
    one_line_error(code, err, "'x2'")
    assert not (tmp_path / "p.csv").exists()
    write_labelled(tmp_path / "more.csv", X, [NAMES[c] if c else "daisy" for c in codes])
    code, out, err = run(capsys, "train", "--resume", model, "--data", tmp_path / "more.csv",
                         "--epochs", "1", "--quiet")
    one_line_error(code, err, "'daisy'", "setosa, versicolor, virginica")
    code, out, err = run(capsys, "train", "--resume", model, "--task", "regression",
                         "--epochs", "1", "--quiet")
    one_line_error(code, err, "--task regression", "classification")
    # the resumed model keeps its classes and adds up its epochs
    code, out, err = run(capsys, "train", "--resume", model, "--epochs", "5", "--quiet",
                         "--save", model)
    assert code == 0 and "training accuracy" in out, err
    net, _ = inertia.load(model)
    assert net.extra["classes"] == NAMES and net.extra["trained"]["epochs"] == 65


@pytest.mark.parametrize("content, argv, words", [
    ("a,b,y\n1,2,cat\n3,4,\n5,6,dog\n", [], ["empty class label", "row 3"]),
    ("a,b,y\n1,2,cat\n3,4,cat\n", [], ["single class 'cat'"]),
    ("a,b,y\n1,x,cat\n3,4,dog\n", [], ["non-numeric", "'x'", "column 'b'"]),
    ("a,b,y\n1,2,cat\n3,nan,dog\n", [], ["NaN", "column 'b'"]),
    ("a,b,y\n1,2,cat\n3,4,dog\n", ["--task", "regression"], ["non-numeric", "'cat'"]),
    ("a,b,y\n1,2,cat\n3,4,dog\n", ["--loss", "mse"], ["--loss mse", "bce"]),
])
def test_bad_values_are_one_line_errors(tmp_path, capsys, content, argv, words):
    (tmp_path / "d.csv").write_text(content)
    code, out, err = run(capsys, "train", "--data", tmp_path / "d.csv", "--epochs", "1",
                         "--quiet", "--save", tmp_path / "m.npz", *argv)
    one_line_error(code, err, *words)
    assert not (tmp_path / "m.npz").exists()


def test_unknown_task_is_an_argparse_error(capsys):
    with pytest.raises(SystemExit) as ex:
        main(["train", "--task", "maybe"])
    err = capsys.readouterr().err
    assert ex.value.code == 2 and err.count("\n") == 1 and "'maybe'" in err


def test_classification_of_fractions_and_info_of_a_non_model(tmp_path, capsys):
    code, out, err = run(capsys, "train", "--task", "classification", "--samples", "50",
                         "--epochs", "1", "--quiet")
    one_line_error(code, err, "--task classification", "whole numbers")
    code, out, err = run(capsys, "info", tmp_path / "none.npz")
    one_line_error(code, err, "no such model file")
    np.savez(tmp_path / "a.npz", X=np.ones(3))
    code, out, err = run(capsys, "info", tmp_path / "a.npz")
    one_line_error(code, err, "not an inertia model")


def test_proba_needs_a_classifier(tmp_path, capsys):
    model = tmp_path / "m.npz"
    assert run(capsys, "train", "--samples", "50", "--epochs", "1", "--quiet", "--save",
               model)[0] == 0
    code, out, err = run(capsys, "predict", model, "--data", "smooth-regression", "--out",
                         tmp_path / "p.csv", "--proba")
    one_line_error(code, err, "--proba", "not a classifier")


def test_the_task_rule():
    text = np.array(["a", "b", "a"])
    assert classify.infer_task(text, None, True)[0] == "classification"
    few = np.repeat([1.0, 2.0, 3.0], 5).reshape(-1, 1)
    assert classify.infer_task(few, None, False)[0] == "classification"
    assert classify.infer_task(few, None, True)[0] == "regression"      # --layers decides
    assert classify.infer_task(few[:14], None, False)[0] == "regression"  # < 5 rows a class
    assert classify.infer_task(few + 0.5, None, False)[0] == "regression"
    assert classify.infer_task(few, "regression", False)[0] == "regression"
    assert classify.infer_task(np.arange(100.0).reshape(-1, 1), None, False)[0] == "regression"


def test_confusion_by_hand():
    # true 0 0 1 2 2 2, predicted 0 1 1 2 0 2: row = true, column = predicted
    m = classify.confusion([0, 0, 1, 2, 2, 2], [0, 1, 1, 2, 0, 2], 3)
    np.testing.assert_array_equal(m, [[1, 1, 0], [0, 1, 0], [1, 0, 2]])


def test_loader_keeps_text_targets_and_checks_inputs(tmp_path):
    (tmp_path / "h.csv").write_text("1,2,cat\n3,4,dog\n")
    t = datasets.load_table(tmp_path / "h.csv", target_kind="labels")
    assert t.y.tolist() == ["cat", "dog"] and t.X.tolist() == [[1, 2], [3, 4]]
    assert t.features == [0, 1] and t.target == 2
    (tmp_path / "n.csv").write_text("a,y,b\n1,0,2\n3,1,4\n")
    t = datasets.load_table(tmp_path / "n.csv", target="y", target_kind="labels")
    assert t.y.tolist() == ["0", "1"] and t.features == ["a", "b"]
    auto = datasets.load_table(tmp_path / "n.csv", target="y", target_kind="auto")
    plain = datasets.load_table(tmp_path / "n.csv", target="y")
    np.testing.assert_array_equal(auto.y, plain.y)
    assert auto.features == plain.features and auto.target == plain.target
    with pytest.raises(ValueError, match="non-numeric"):
        datasets.load_table(tmp_path / "h.csv")                  # numbers only by default
    np.savez(tmp_path / "a.npz", X=np.ones((2, 3)), y=np.array(["u", "v"]))
    assert datasets.load_table(tmp_path / "a.npz", target_kind="labels").y.tolist() == ["u", "v"]
    with pytest.raises(ValueError, match="target_kind"):
        datasets.load_table(tmp_path / "h.csv", target_kind="text")


def test_resumed_standardized_classifier_reports_the_same_accuracy(tmp_path, capsys):
    """A resumed model's stored scaling is applied once: the accuracy it prints after one more
    epoch stays where the first run left it."""
    X, codes = blobs()
    write_labelled(tmp_path / "iris.csv", X, [NAMES[c] for c in codes])
    model = tmp_path / "m.npz"
    code, out, err = run(capsys, "train", "--data", tmp_path / "iris.csv", *FAST,
                         "--save", model)
    assert code == 0, err
    first = float(out.split("training accuracy ")[1].split()[0])
    code, out, err = run(capsys, "train", "--resume", model, "--epochs", "1", "--save", model)
    assert code == 0, err
    again = float(out.split("training accuracy ")[1].split()[0])
    assert first >= 0.95 and again >= first - 0.05
