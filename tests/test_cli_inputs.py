"""Command-line values: empty strings and zeros are errors naming the flag, the help's
defaults work for every optimizer, flags that a resumed model fixes are applied or refused,
oversized requests are refused before allocating; and hypothesis fuzzing of the CSV loader and
of the train/predict flags: exit 0 or 2, one line, no traceback, no file written that was not
asked for, existing files never damaged."""

import contextlib
import io
import os
import signal
import tempfile
import traceback

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import inertia
from inertia import datasets
from inertia.cli import int_arg, main

TINY = ["--samples", "20", "--epochs", "1", "--layers", "1:linear", "--quiet"]


def call(*argv):
    """(exit code, stdout, stderr) of the CLI run in this process; an exception that escapes
    ``main`` is reported as a traceback in stderr, as the console script would print it."""
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        try:
            code = main([str(a) for a in argv])
        except SystemExit as ex:                  # argparse
            code = ex.code
        except BaseException:                     # noqa: BLE001  (what the user would see)
            code = 1
            err.write(traceback.format_exc())
    return code, out.getvalue(), err.getvalue()


def assert_one_line(code, err):
    assert "Traceback" not in err, err
    if code != 0:
        assert code == 2, (code, err)
        lines = err.strip().splitlines()
        assert len(lines) == 1 and lines[0].startswith("inertia: error:"), err


@pytest.mark.parametrize("argv, words", [
    (["--layers", ""], "--layers is empty"),
    (["--layers", ","], "--layers is empty"),
    (["--layers=-3:tanh,1:linear"], "--layers '-3:tanh'"),
    (["--samples", "0"], "--samples must be at least 1"),
    (["--samples", "-5"], "--samples must be at least 1"),
    (["--samples", "abc"], "argument --samples"),
    (["--save", ""], "--save is empty"),
    (["--plot", ""], "--plot is empty"),
    (["--seed", "-1"], "--seed must be at least 0"),
    (["--data-seed", "-1"], "--data-seed must be at least 0"),
    (["--epochs", "0"], "--epochs must be at least 1"),
    (["--batch-size", "0"], "--batch-size must be at least 1"),
    (["--test-fraction", "1"], "--test-fraction must be in [0, 1)"),
    (["--test-fraction", "nan"], "--test-fraction"),
    (["--dim", "5"], "--dim sizes random-binary"),
    (["--data", ""], "--data ''"),
    (["--engine", ""], "unknown engine ''"),
    (["--lr-schedule", ""], "schedule"),
    (["--betas", ""], "--betas"),
    (["--samples", "1e12"], "need"),
    (["--epochs", "1e16"], "loss records of 10,000,000,000,000,000 epochs"),
    (["--layers", "10000000000:tanh,1:linear"], "need"),
    (["--dtype", "float16"], "argument --dtype"),
    (["--target", "y"], "--target picks a column"),
    (["--resume", ""], "--resume is empty"),
])
def test_bad_values_name_the_flag(argv, words, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    code, out, err = call("train", *TINY, *argv)
    assert_one_line(code, err)
    assert code == 2 and words in err, err
    assert "epoch" not in out and os.listdir(tmp_path) == []


@pytest.mark.parametrize("optimizer", ["sgd", "qhm", "aggmo", "adam", "adamw"])
def test_every_optimizer_runs_with_the_help_defaults(optimizer, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    code, out, err = call("train", *TINY, "--optimizer", optimizer)
    assert code == 0, err
    assert ("lr 0.001" if optimizer.startswith("adam") else "lr 0.01") in out


def test_file_data_refuses_builtin_size_flags(tmp_path):
    np.savetxt(tmp_path / "d.csv", np.ones((4, 3)), delimiter=",")
    code, out, err = call("train", "--data", tmp_path / "d.csv", "--samples", "3", "--quiet")
    assert_one_line(code, err)
    assert code == 2 and "--samples" in err


def test_resume_engine_applies(tmp_path):
    model = tmp_path / "m.npz"
    assert call("train", *TINY, "--save", model)[0] == 0
    code, out, err = call("train", "--resume", model, "--engine", "numpy", "--epochs", "1",
                          "--quiet")
    assert code == 0 and "numpy/float32" in out, err
    code, out, err = call("train", "--resume", model, "--engine", "nope", "--quiet")
    assert_one_line(code, err)
    assert code == 2 and "nope" in err


def test_argparse_errors_are_one_line():
    for argv in (["train", "--epochs"], ["train", "--nosuch"], ["predict"], ["nosuch"]):
        code, out, err = call(*argv)
        assert_one_line(code, err)
        assert code == 2


# ------------------------------------------------------------------------- the CSV loader
TOKENS = ["1", "-2.5", "0", "1e39", "1e308", "1e400", "-1e400", "nan", "inf", "abc", "",
          " ", '"3"', "é", "1,5", "0x10", "1_000", "\t", "∞"]

rows = st.lists(st.lists(st.sampled_from(TOKENS), min_size=1, max_size=4), min_size=0,
                max_size=5)
encodings = st.sampled_from(["utf-8", "utf-8-sig", "latin-1", "utf-16", "cp1252"])


def check_loaded(path):
    try:
        X, y = datasets.load(path)
    except ValueError as ex:
        assert str(ex) and "\n" not in str(ex)
        return
    assert X.ndim == 2 and X.shape[0] == y.shape[0] >= 1
    assert np.all(np.isfinite(X)) and np.all(np.isfinite(y))


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(table=rows, encoding=encodings, newline=st.sampled_from(["\n", "\r\n", "\r"]))
def test_fuzz_csv_text(table, encoding, newline):
    text = newline.join(",".join(r) for r in table)
    try:
        raw = text.encode(encoding)
    except UnicodeEncodeError:
        raw = text.encode("utf-8")
    with tempfile.TemporaryDirectory() as d:
        path = os.path.join(d, "d.csv")
        with open(path, "wb") as f:
            f.write(raw)
        check_loaded(path)


@settings(max_examples=60, deadline=None)
@given(raw=st.binary(max_size=200), ext=st.sampled_from([".csv", ".npy", ".npz", ".txt"]))
def test_fuzz_random_bytes(raw, ext):
    with tempfile.TemporaryDirectory() as d:
        path = os.path.join(d, "d" + ext)
        with open(path, "wb") as f:
            f.write(raw)
        check_loaded(path)
        try:
            inertia.load(path)
        except ValueError as ex:
            assert "\n" not in str(ex) and "allow_pickle" not in str(ex)


# ------------------------------------------------------------------- the flags, fuzzed
values = st.one_of(
    st.text(alphabet="abz019-.:,e/ \x00é", max_size=6),
    st.integers(-10, 5000).map(str),
    st.floats(allow_nan=True, allow_infinity=True).map(repr),
    st.sampled_from(["", "-", ".", "..", "/", "/proc/x", "/dev/null", "keep.csv", "keep.npz",
                     "0", "-1", "1e12", "1e400", "nan", "dir", "x.png", "x.gif", "m.npz"]),
)

TRAIN_FLAGS = ["--data", "--target", "--samples", "--dim", "--data-seed", "--layers", "--save",
               "--plot", "--seed", "--epochs", "--batch-size", "--test-fraction", "--dtype",
               "--engine", "--resume", "--loss", "--optimizer"]
PREDICT_FLAGS = ["model", "--data", "--target", "--out"]
SENTINELS = ("keep.csv", "keep.npz")


@contextlib.contextmanager
def sandbox():
    """A fresh folder with a data file, a model and a sub-folder, as the current directory;
    yields the sentinel files' bytes."""
    old = os.getcwd()
    with tempfile.TemporaryDirectory() as d:
        os.chdir(d)
        try:
            X, y = datasets.smooth_regression(12, seed=0)
            np.savetxt("keep.csv", np.column_stack([X, y]), delimiter=",",
                       header="a,b,c,d,y", comments="")
            os.mkdir("dir")
            with contextlib.redirect_stdout(io.StringIO()):
                assert main(["train", *TINY, "--save", "keep.npz"]) == 0
            yield {name: open(name, "rb").read() for name in SENTINELS}
        finally:
            os.chdir(old)


def check_run(argv, asked, sentinels, write_flag_given=True):
    before = set(os.listdir("."))
    code, out, err = call(*argv)
    assert_one_line(code, err)
    new = set(os.listdir(".")) - before
    allowed = {os.path.normpath(a).split(os.sep)[0] for a in asked if a} if code == 0 else set()
    assert new <= allowed, (argv, new, err)
    for name, data in sentinels.items():
        if name not in asked:
            with open(name, "rb") as f:
                assert f.read() == data, (argv, name)


@settings(max_examples=50, deadline=None,
          suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much])
@given(flag=st.sampled_from(TRAIN_FLAGS), value=values)
def test_fuzz_train_flags(flag, value):
    if flag == "--epochs":
        try:
            if int_arg(value) > 2000:
                value = "2000"                   # long, not wrong
        except Exception:  # noqa: BLE001  (not a number: the CLI refuses it)
            pass
    base = ["--epochs", "1", "--layers", "1:linear", "--quiet"]
    if flag not in ("--data", "--resume"):
        base += ["--samples", "20"]
    argv = ["train", *[a for a in base if a != flag], flag, value]
    if flag in ("--epochs", "--layers", "--samples"):
        i = base.index(flag)
        argv = ["train", *base[:i], *base[i + 2:], flag, value]
    asked = [value] if flag in ("--save", "--plot") else []
    with sandbox() as sentinels:
        check_run(argv, asked, sentinels)


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(flag=st.sampled_from(PREDICT_FLAGS), value=values)
def test_fuzz_predict_flags(flag, value):
    args = {"model": "keep.npz", "--data": "keep.csv", "--out": "p.csv"}
    args[flag] = value
    argv = ["predict", args.pop("model")]
    for k, v in args.items():
        argv += [k, v]
    asked = [args["--out"]] if args["--out"] != "-" else []
    with sandbox() as sentinels:
        check_run(argv, asked, sentinels)


@settings(max_examples=30, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(table=rows, encoding=encodings, target=st.sampled_from([None, "0", "-1", "b", "9"]))
def test_fuzz_csv_through_train_and_predict(table, encoding, target):
    """A random CSV as training data and as prediction input: 0 or one line, nothing
    written unless asked for, the model file untouched by a refused run."""
    text = "\n".join(",".join(r) for r in table)
    try:
        raw = text.encode(encoding)
    except UnicodeEncodeError:
        raw = text.encode("utf-8")
    with sandbox() as sentinels:
        with open("fuzz.csv", "wb") as f:
            f.write(raw)
        argv = ["train", "--data", "fuzz.csv", "--layers", "1:linear", "--epochs", "1",
                "--quiet", "--save", "new.npz"] + (["--target", target] if target else [])
        check_run(argv, ["new.npz"], sentinels)
        check_run(["predict", "keep.npz", "--data", "fuzz.csv", "--out", "p.csv"], ["p.csv"],
                  sentinels)


@pytest.mark.parametrize("command, argv", [
    ("sweep", ["--epochs", "1e12", "--lr", "0.1,0.2", "--seeds", "3"]),
    ("tune", ["--epochs", "1e16"]),
    ("compare", ["--every", "1e15"]),
])
def test_epochs_beyond_memory_are_refused_before_work(command, argv, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    code, out, err = call(command, *argv)
    assert_one_line(code, err)
    assert code == 2 and "loss records of" in err and "ask for less" in err, err
    written = [os.path.join(d, f) for d, _, files in os.walk(tmp_path) for f in files]
    assert written == []          # the output folder may have been checked (made), nothing in it


def test_runs_that_diverge_or_outputs_that_replace_inputs(tmp_path, monkeypatch):
    """A run whose last step leaves a cost that is not finite exits 3 and writes no model;
    compare exits 3 when every setting diverged; an output path that is an input's file,
    or another output's, is refused before any work; demo values whose rates round to 1 or
    whose run diverges give one line."""
    monkeypatch.chdir(tmp_path)
    for lr, policy in (("1e12", "stop"), ("1e38", "continue")):
        code, _, err = call("train", "--samples", "100", "--epochs", "2", "--lr", lr,
                            "--quiet", "--on-divergence", policy, "--save", "m.npz")
        assert code == 3 and "diverged" in err and not os.path.exists("m.npz"), (lr, err)
    code, out, err = call("compare", "--samples", "100", "--every", "1", "--segments", "3",
                          "--quiet", "--out", "cmp", "--settings", "1e30,0,0")
    assert code == 3 and "every setting diverged" in out and "Traceback" not in err
    table = np.random.default_rng(0).normal(size=(30, 3))
    np.savetxt("d.csv", table, delimiter=",")
    np.savez("d.npz", X=table[:, :2], y=table[:, 2:])
    assert call("train", *TINY, "--save", "m.npz")[0] == 0
    for argv, words in [(("train", *TINY, "--data", "d.npz", "--save", "d.npz"), "--data"),
                        (("train", *TINY, "--plot", "a.png", "--save", "a.png"), "--save"),
                        (("train", *TINY, "--save", "m.csv"), "end the name in .npz"),
                        (("predict", "m.npz", "--data", "d.csv", "--out", "d.csv"), "--data"),
                        (("predict", "m.npz", "--data", "d.csv", "--out", "p.npz"), "CSV text"),
                        (("demo", "landscape", "--kappa", "1e16", "--quiet", "--out", "o"),
                         "--kappa"),
                        (("demo", "pingpong", "--lr", "1e300", "--epochs", "2", "--quiet",
                          "--out", "o"), "is beyond float32's range")]:
        before = {f: open(f, "rb").read() for f in ("d.csv", "d.npz", "m.npz")}
        code, _, err = call(*argv)
        assert code == 2 and words in err, (argv, err)
        assert_one_line(code, err)
        assert before == {f: open(f, "rb").read() for f in ("d.csv", "d.npz", "m.npz")}
        assert not os.path.exists("m.csv") and not os.path.exists("p.npz")


def test_a_closed_pipe_loses_no_model(tmp_path):
    """`inertia train ... --save m.npz | head -2`: the reader goes away after the two header
    lines, while the run trains; the model is still written (files first, then the
    report)."""
    import subprocess
    import sys

    proc = subprocess.Popen([sys.executable, "-m", "inertia", "train", "--samples", "100000",
                             "--epochs", "10", "--quiet", "--save", "m.npz"], cwd=tmp_path,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    proc.stdout.readline()
    proc.stdout.readline()
    proc.stdout.close()                        # as head -2 does
    proc.wait(timeout=300)
    assert proc.returncode in (0, 141), proc.stderr.read()
    inertia.load(str(tmp_path / "m.npz"))


def test_duplicate_columns_stray_checkpoint_every_and_the_checkpoint_difference(
        tmp_path, monkeypatch):
    """A header naming a column twice is refused (predict would pick columns by name);
    --checkpoint-every without --checkpoint is refused, not ignored; a checkpoint from a
    run of another dtype or engine says so."""
    monkeypatch.chdir(tmp_path)
    (tmp_path / "dup.csv").write_text("a,a,y\n1,2,3\n4,5,6\n")
    code, _, err = call("train", "--data", "dup.csv", "--epochs", "1", "--quiet")
    assert code == 2 and "'a' more than once" in err
    code, _, err = call("train", *TINY, "--checkpoint-every", "2")
    assert code == 2 and "add --checkpoint" in err
    X, y = np.random.default_rng(0).normal(size=(20, 3)), np.zeros((20, 1))
    ck = str(tmp_path / "c.npz")
    real = inertia.training.loop.State.begin_epoch

    def stop(self, e):
        real(self, e)
        if e == 2:
            os.kill(os.getpid(), signal.SIGINT)
    with monkeypatch.context() as m, pytest.raises(inertia.training.Interrupted):
        m.setattr(inertia.training.loop.State, "begin_epoch", stop)
        inertia.fit(inertia.Network(3, [inertia.Dense(1)], seed=0), X, y, "mse",
                    inertia.SGD(0.1), epochs=5, checkpoint=ck, progress=False)
    net64 = inertia.Network(3, [inertia.Dense(1)], seed=0, dtype="float64")
    with pytest.raises(ValueError, match=r"another dtype \(its float32, this run's float64\)"):
        inertia.fit(net64, X, y, "mse", inertia.SGD(0.1), epochs=5, checkpoint=ck)


@pytest.mark.parametrize("argv", [
    ("sweep", "--samples", "50", "--epochs", "2", "--quiet", "--seeds", "1000000000",
     "--lr", "0.1"),
    ("sweep", "--samples", "50", "--epochs", "2", "--quiet", "--lr",
     "0.01:1:100000000000log"),
    ("compare", "--samples", "50", "--seeds", "1000000000000", "--quiet")])
def test_sweeps_too_large_for_memory_are_refused_before_allocating(argv, tmp_path,
                                                                   monkeypatch):
    monkeypatch.chdir(tmp_path)
    code, _, err = call(*argv, "--out", "o")
    assert_one_line(code, err)
    assert code == 2 and "needed but this machine has" in err, err


@pytest.mark.parametrize("grid", ["0.1,0.2,0.1", "0.01:0.0100001:3log"])
def test_a_sweep_value_given_twice_is_refused_before_the_header(grid, tmp_path, monkeypatch):
    """--lr 0.1,0.1 (or a range whose printed values repeat) would train each run twice:
    refused as the flag is read, before the sweep's header announces its runs."""
    monkeypatch.chdir(tmp_path)
    code, out, err = call("sweep", "--samples", "50", "--epochs", "2", "--quiet", "--lr", grid,
                          "--out", "o")
    assert_one_line(code, err)
    assert code == 2 and "--lr" in err and "twice" in err and "give each value once" in err, err
    assert "runs" not in out and not os.path.exists("o")


def test_schedules_scaling_and_ranges_found_by_fuzzing(tmp_path, monkeypatch):
    """A schedule whose values overflow, a column too large to standardize or for float32
    (named by its row in the file, whatever the split), an lr beyond float32, the checkpoint
    naming the resumed model: one line each, exit 2, nothing written; a sweep whose every
    run diverged exits 3 with its pictures."""
    monkeypatch.chdir(tmp_path)
    rows = np.random.default_rng(0).normal(size=(50, 3))
    rows = np.vstack([rows, [1e300, 0.5, 0.5]])
    np.savetxt("huge.csv", rows, delimiter=",", header="a,b,y", comments="")
    assert call("train", *TINY, "--save", "m.npz")[0] == 0
    for argv, words in [
            (("--lr-schedule", "inverse_scaling:400", "--batch-size", "1"),
             "leaves the floating-point range at step"),
            (("--momentum", "0.9", "--momentum-schedule", "step:1,1e200", "--batch-size", "1"),
             "leaves the floating-point range"),
            (("--momentum-schedule", "step:10,0.5"), "from momentum 0: value must be"),
            (("--data", "huge.csv", "--standardize"), "cannot standardize column 'a'"),
            (("--data", "huge.csv", "--seed", "3"), "data row 51, column 'a' overflows"),
            (("--lr", "1e39"), "lr=1e+39 is beyond float32's range"),
            (("--test-fraction", "0.001"), "0.001 of 20 rows holds out no row"),
            (("--resume", "m.npz", "--checkpoint", "m.npz"),
             "--checkpoint m.npz is the same file as --resume")]:
        before = open("m.npz", "rb").read()
        tiny = TINY[2:] if "--data" in argv else TINY           # a file: no --samples
        code, _, err = call("train", *tiny, *argv, "--save", "out.npz")
        assert code == 2 and words in err, (argv, err)
        assert_one_line(code, err)
        assert not os.path.exists("out.npz") and open("m.npz", "rb").read() == before
    for argv, words in [(("--nesterov", "--momentum", "0"), "--nesterov needs a momentum"),
                        (("--budget", "inf"), "--budget must be a positive number")]:
        code, out, err = call("tune", "--samples", "40", "--epochs", "8", *argv)
        assert code == 2 and words in err and out == "", (argv, err)
    code, out, err = call("tune", "--samples", "40", "--epochs", "8", "--batch-size", "10",
                          "--convention", "neanderthal", "--momentum", "0", "--out", "t")
    assert code == 0 and "momentum 0 (neanderthal convention)" in out, err
    code, out, err = call("sweep", "--samples", "40", "--epochs", "2", "--quiet", "--lr",
                          "1e300,1e301", "--momentum", "0.5,0.9", "--dtype", "float64",
                          "--out", "sw")
    assert code == 3 and "every run diverged" in out and err == "", err
    assert os.path.getsize("sw/sweep-heatmap.png") > 10000
