"""End-to-end tests of the `inertia` command: train, compare, predict, and its errors."""

import os
import subprocess
import sys

import numpy as np
import pytest

import inertia
from inertia.cli import main


def run(capsys, *argv):
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


def write_csv(path, X, y, header=True):
    cols = ",".join([f"x{i}" for i in range(X.shape[1])] + ["target"])
    np.savetxt(path, np.column_stack([X, y]), delimiter=",", header=cols if header else "",
               comments="")


def test_train_save_plot_predict_resume(tmp_path, capsys):
    model, plot = tmp_path / "model.npz", tmp_path / "loss.png"
    code, out, err = run(capsys, "train", "--data", "smooth-regression", "--samples", "500",
                         "--layers", "8:sigmoid,4:tanh,1:linear", "--loss", "quadratic",
                         "--convention", "neanderthal", "--lr", "0.2", "--weight-decay", "0.1",
                         "--momentum", "0.4", "--epochs", "30", "--test-fraction", "0.2",
                         "--save", str(model), "--plot", str(plot), "--quiet")
    assert code == 0, err
    assert "training cost" in out and "test cost" in out and "ms/epoch" in out
    assert "400 training / 100 test" in out
    assert plot.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    net, opt = inertia.load(model)
    assert opt.convention.name == "neanderthal" and opt.state.step == 30
    assert net.sizes == [4, 8, 4, 1]

    X, y = inertia.datasets.smooth_regression(7, seed=3)
    write_csv(tmp_path / "new.csv", X, y)
    preds = tmp_path / "predictions.csv"
    code, out, err = run(capsys, "predict", str(model), "--data", str(tmp_path / "new.csv"),
                         "--out", str(preds))
    assert code == 0, err
    got = np.loadtxt(preds, delimiter=",", skiprows=1)
    np.testing.assert_allclose(got, net.predict(X).ravel(), rtol=1e-6)

    code, out, err = run(capsys, "train", "--resume", str(model), "--data", "smooth-regression",
                         "--samples", "500", "--epochs", "5", "--quiet", "--save", str(model))
    assert code == 0, err
    assert "resumed at step 30" in out and "400 training / 100 test" in out
    assert inertia.load(model)[1].state.step == 35


def test_resume_equals_uninterrupted(tmp_path, capsys):
    """6 epochs in one run equal 3 epochs, save, resume and 3 more, to the bit."""
    common = ["--data", "smooth-regression", "--samples", "300", "--layers",
              "6:tanh,1:linear", "--momentum", "0.9", "--lr", "0.05", "--quiet",
              "--dtype", "float64", "--convention", "keras", "--weight-decay", "0.01"]
    a, b = tmp_path / "a.npz", tmp_path / "b.npz"
    assert run(capsys, "train", *common, "--epochs", "6", "--save", str(a))[0] == 0
    assert run(capsys, "train", *common, "--epochs", "3", "--save", str(b))[0] == 0
    assert run(capsys, "train", "--resume", str(b), *common, "--epochs", "3",
               "--save", str(b))[0] == 0
    (na, oa), (nb, ob) = inertia.load(a), inertia.load(b)
    assert oa.state.step == ob.state.step == 6
    for (wa, ba), (wb, bb) in zip(na.parameters(), nb.parameters()):
        np.testing.assert_array_equal(wa, wb)
        np.testing.assert_array_equal(ba, bb)
    for va, vb in zip(oa.state.velocity, ob.state.velocity):
        np.testing.assert_array_equal(va, vb)


def test_resume_keeps_the_recorded_batch_size(tmp_path, capsys):
    """A resumed mini-batch run trains on with its recorded batch size and seed unless
    --batch-size says otherwise, its row orders going on: 2 + 2 epochs equal 4, bit for bit;
    `info` shows the batch size."""
    common = ["--data", "smooth-regression", "--samples", "200", "--layers", "5:tanh,1:linear",
              "--momentum", "0.9", "--lr", "0.05", "--quiet", "--dtype", "float64", "--seed",
              "3"]
    a, b = tmp_path / "a.npz", tmp_path / "b.npz"
    assert run(capsys, "train", *common, "--batch-size", "16", "--epochs", "4",
               "--save", str(a))[0] == 0
    assert run(capsys, "train", *common, "--batch-size", "16", "--epochs", "2",
               "--save", str(b))[0] == 0
    assert run(capsys, "train", "--resume", str(b), "--epochs", "2", "--save", str(b),
               "--quiet")[0] == 0
    assert inertia.load(a)[1].state.step == inertia.load(b)[1].state.step == 4 * 13
    (na, _), (nb, _) = inertia.load(a), inertia.load(b)
    for pa, pb in zip(na.parameters(), nb.parameters()):
        np.testing.assert_array_equal(pa[0], pb[0])
    code, out, err = run(capsys, "info", str(b))
    assert code == 0 and "batch 16" in out, err
    assert run(capsys, "train", "--resume", str(b), "--epochs", "1", "--batch-size", "200",
               "--save", str(b), "--quiet")[0] == 0
    assert inertia.load(b)[1].state.step == 4 * 13 + 1
    assert "full batch" not in run(capsys, "info", str(b))[1]


def test_compare_default_small(tmp_path, capsys):
    code, out, err = run(capsys, "compare", "--samples", "2000", "--segments", "2", "--every",
                         "25", "--out", str(tmp_path), "--quiet")
    assert code == 0, err
    lines = [ln for ln in out.splitlines() if ln.strip().startswith(("25", "50"))]
    assert len(lines) == 2
    assert "[0.2 0.02 0.7]" in out
    assert (tmp_path / "compare.png").exists()


def test_compare_seeds_shows_spread(tmp_path, capsys):
    code, out, err = run(capsys, "compare", "--samples", "1000", "--segments", "1", "--every",
                         "10", "--seeds", "2", "--plot", str(tmp_path / "c.png"), "--quiet")
    assert code == 0, err
    assert "±" in out and "mean ± std over 2 seeds" in out


def test_predict_softmax_classes(tmp_path, capsys):
    rng = np.random.default_rng(0)
    X = rng.normal(size=(60, 3))
    y = (X[:, 0] > 0).astype(int) + (X[:, 1] > 0).astype(int)
    write_csv(tmp_path / "cls.csv", X, y)
    model = tmp_path / "m.npz"
    code, out, err = run(capsys, "train", "--data", str(tmp_path / "cls.csv"), "--layers",
                         "8:tanh,3:softmax", "--lr", "0.5", "--epochs", "50", "--save",
                         str(model), "--standardize", "--quiet")
    assert code == 0, err
    assert "cross_entropy loss" in out
    np.savetxt(tmp_path / "in.csv", X, delimiter=",")
    code, out, err = run(capsys, "predict", str(model), "--data", str(tmp_path / "in.csv"),
                         "--out", str(tmp_path / "p.csv"))
    assert code == 0, err
    lines = (tmp_path / "p.csv").read_text().splitlines()
    assert lines[0] == "p0,p1,p2,class" and len(lines) == 61
    probs = np.loadtxt(tmp_path / "p.csv", delimiter=",", skiprows=1)
    np.testing.assert_allclose(probs[:, :3].sum(axis=1), 1, rtol=1e-5)
    assert (probs[:, 3] == y).mean() > 0.8


@pytest.mark.parametrize("argv, words", [
    (["train", "--layers", "8:swish,1:linear"], "unknown activation 'swish'"),
    (["train", "--layers", "8:softmax,1:linear"], "softmax is only allowed on the output"),
    (["train", "--layers", "1:linear", "--loss", "bce"], "does not fit"),
    (["train", "--lr", "-0.1"], "learning rate must be > 0"),
    (["train", "--lr", "0"], "learning rate must be > 0"),
    (["train", "--momentum", "1.0"], "momentum must be in [0, 1)"),
    (["train", "--momentum", "-0.5"], "momentum must be in [0, 1)"),
    (["train", "--dampening", "1.5"], "dampening must be in [0, 1]"),
    (["train", "--momentum", "0.9", "--dampening", "0.1", "--nesterov"], "zero dampening"),
    (["train", "--nesterov"], "requires momentum > 0"),
    (["train", "--convention", "keras", "--dampening", "0.5"], "has no dampening"),
    (["train", "--engine", "cupyx"], "unknown engine 'cupyx'"),
    (["train", "--data", "no-such-file.csv"], "neither a built-in set"),
    (["train", "--epochs", "0"], "--epochs must be at least 1"),
    (["train", "--layers", "8:tanh,2:linear"], "targets have 1 column(s) but the network has 2"),
    (["predict", "no-such-model.npz", "--data", "x.csv", "--out", "p.csv"], "no such model"),
    (["compare", "--settings", "0.2,0"], "needs three numbers"),
    (["compare", "--settings", "0.2,0,1.0"], "momentum must be in [0, 1)"),
])
def test_bad_input_one_line_no_traceback(argv, words, capsys, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    code, out, err = run(capsys, *argv, *(["--quiet"] if argv[0] != "predict" else []))
    assert code != 0
    assert words in err, err
    assert len(err.strip().splitlines()) == 1 and "Traceback" not in err
    assert "training cost" not in out       # nothing was trained


def test_bad_files(tmp_path, capsys, monkeypatch):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "empty.csv").write_text("")
    (tmp_path / "nan.csv").write_text("a,b,y\n1,2,3\nnan,1,2\n")
    (tmp_path / "text.csv").write_text("a,b,y\n1,2,3\nx,1,2\n")
    (tmp_path / "ragged.csv").write_text("1,2,3\n1,2\n")
    (tmp_path / "junk.npz").write_bytes(b"not a zip file")
    for name, words in [("empty.csv", "is empty"), ("nan.csv", "NaN"),
                        ("text.csv", "non-numeric"), ("ragged.csv", "row 2 has 2 columns"),
                        ("junk.npz", "cannot read")]:
        code, out, err = run(capsys, "train", "--data", name, "--quiet")
        assert code == 2 and words in err and "Traceback" not in err, (name, err)
    code, out, err = run(capsys, "predict", "junk.npz", "--data", "nan.csv", "--out", "p.csv")
    assert code == 2 and "not" in err and "Traceback" not in err


def test_failed_save_keeps_old_file(tmp_path, capsys, monkeypatch):
    model = tmp_path / "m.npz"
    assert run(capsys, "train", "--samples", "100", "--epochs", "2", "--layers", "1:linear",
               "--save", str(model), "--quiet")[0] == 0
    before = model.read_bytes()
    import numpy

    def boom(*a, **k):
        raise OSError("disk full")

    monkeypatch.setattr(numpy, "savez", boom)
    code, out, err = run(capsys, "train", "--samples", "100", "--epochs", "2", "--layers",
                         "1:linear", "--save", str(model), "--quiet")
    assert code == 2 and "disk full" in err and len(err.strip().splitlines()) == 1
    assert model.read_bytes() == before
    assert [p.name for p in tmp_path.iterdir()] == ["m.npz"]    # no temporary left behind


def test_console_script_and_module(tmp_path):
    env = dict(os.environ)
    r = subprocess.run([sys.executable, "-m", "inertia", "train", "--lr", "-1"],
                       capture_output=True, text=True, cwd=tmp_path, env=env)
    assert r.returncode == 2 and r.stderr.startswith("inertia: error:")
    assert "Traceback" not in r.stderr
    r = subprocess.run([sys.executable, "-m", "inertia", "--help"], capture_output=True,
                       text=True, env=env)
    assert r.returncode == 0 and "compare" in r.stdout and "predict" in r.stdout
