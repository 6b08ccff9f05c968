"""Output files: one atomic writer (temporaries removed on failure and after a kill, permission
bits kept, symlinks followed, special files refused), every output path checked before
training, picture formats by extension, `predict --out -`."""

import os
import signal
import stat
import subprocess
import sys

import numpy as np
import pytest

import inertia
from inertia import files
from inertia.cli import main


def run(capsys, *argv):
    try:
        code = main(list(argv))
    except SystemExit as ex:           # argparse
        code = ex.code
    out, err = capsys.readouterr()
    return code, out, err


def one_line_error(code, err):
    assert code == 2, err
    assert err.startswith("inertia: error:") and len(err.strip().splitlines()) == 1, err
    assert "Traceback" not in err


TRAIN = ["train", "--samples", "40", "--epochs", "2", "--layers", "1:linear", "--quiet"]


def write_bytes(data):
    return lambda f: f.write(data)


def test_new_file_mode_follows_umask(tmp_path):
    p = tmp_path / "new.bin"
    old = os.umask(0o027)
    try:
        files.atomic_write(p, write_bytes(b"abc"))
    finally:
        os.umask(old)
    assert p.read_bytes() == b"abc"
    assert stat.S_IMODE(p.stat().st_mode) == 0o640
    assert sorted(os.listdir(tmp_path)) == ["new.bin"]


def test_existing_file_keeps_its_mode(tmp_path):
    p = tmp_path / "private.npz"
    p.write_bytes(b"old")
    p.chmod(0o600)
    files.atomic_write(p, write_bytes(b"new"))
    assert p.read_bytes() == b"new" and stat.S_IMODE(p.stat().st_mode) == 0o600


def test_symlink_is_followed_and_kept(tmp_path):
    (tmp_path / "real").mkdir()
    target = tmp_path / "real" / "m.npz"
    target.write_bytes(b"old")
    link = tmp_path / "link.npz"
    link.symlink_to(target)
    files.atomic_write(link, write_bytes(b"new"))
    assert link.is_symlink() and os.readlink(link) == str(target)
    assert target.read_bytes() == b"new"
    dangling = tmp_path / "dangling.npz"
    dangling.symlink_to(tmp_path / "real" / "later.npz")
    files.atomic_write(dangling, write_bytes(b"x"))
    assert dangling.is_symlink() and (tmp_path / "real" / "later.npz").read_bytes() == b"x"


def test_failure_removes_temporary_and_keeps_old(tmp_path):
    p = tmp_path / "m.npz"
    p.write_bytes(b"old")

    def fail(f):
        f.write(b"half")
        raise OSError(28, "No space left on device")

    with pytest.raises(ValueError, match="No space left on device"):
        files.atomic_write(p, fail)
    assert p.read_bytes() == b"old" and os.listdir(tmp_path) == ["m.npz"]

    def interrupted(f):
        raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        files.atomic_write(p, interrupted)
    assert p.read_bytes() == b"old" and os.listdir(tmp_path) == ["m.npz"]


@pytest.mark.parametrize("make, words", [
    (lambda d: (d / "sub").mkdir() or d / "sub", "is a directory"),
    (lambda d: "/dev/null", "not a regular file"),
    (lambda d: d / "missing" / "m.npz", "does not exist"),
    (lambda d: "", "is empty"),
])
def test_special_outputs_refused(tmp_path, make, words):
    path = make(tmp_path)
    with pytest.raises(ValueError) as ei:
        files.check_output(path, "--save")
    msg = str(ei.value)
    assert words in msg and "--save" in msg and "\n" not in msg
    if path:
        with pytest.raises(ValueError, match=words):
            files.atomic_write(path, write_bytes(b"x"))
    assert not os.path.isfile("/dev/null")          # still the device


def test_check_output_probes_the_folder(tmp_path):
    assert files.check_output(tmp_path / "ok.npz", "--save") == str(tmp_path / "ok.npz")
    assert os.listdir(tmp_path) == []               # the probe leaves nothing
    assert files.check_output("-", "--out", stdout_ok=True) == "-"
    if os.path.isdir("/proc/self"):                  # a folder nobody can create files in
        with pytest.raises(ValueError, match="cannot write --save /proc/x"):
            files.check_output("/proc/x", "--save")
    with pytest.raises(ValueError, match="not a folder"):
        (tmp_path / "f").write_text("")
        files.check_folder(tmp_path / "f", "--out")
    assert files.check_folder(tmp_path / "new" / "dir", "--out")
    assert os.listdir(tmp_path / "new" / "dir") == []


@pytest.mark.parametrize("name, ok", [("a.png", True), ("a.PDF", True), ("a.svg", True),
                                      ("a.jpg", True), ("a.jpeg", True), ("a.gif", False),
                                      ("a", False), ("a.npz", False)])
def test_picture_formats(tmp_path, name, ok):
    if ok:
        assert files.check_output(tmp_path / name, "--plot", picture=True)
    else:
        with pytest.raises(ValueError, match="--plot .*end the name in .png"):
            files.check_output(tmp_path / name, "--plot", picture=True)


def test_pictures_have_their_extensions_format(tmp_path):
    pytest.importorskip("matplotlib")
    from inertia import plots

    magic = {"png": b"\x89PNG", "pdf": b"%PDF", "svg": b"<?xml", "jpg": b"\xff\xd8\xff"}
    for ext, head in magic.items():
        path = tmp_path / f"curve.{ext}"
        plots.loss_curves({"a": ([1, 2, 3], [3.0, 2.0, 1.0])}, path, "t")
        assert path.read_bytes()[:len(head)] == head, ext
    assert sorted(p.name for p in tmp_path.iterdir()) == \
        ["curve.jpg", "curve.pdf", "curve.png", "curve.svg"]


def test_stale_temporaries_are_removed_by_the_next_write(tmp_path):
    p = tmp_path / "m.npz"
    gone = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"],
                          capture_output=True, text=True).stdout.strip()
    stale = tmp_path / f".m.npz{files.TMP_TAG}{gone}-deadbeef.npz"
    stale.write_bytes(b"left by a kill")
    alive = tmp_path / f".m.npz{files.TMP_TAG}{os.getppid()}-cafecafe.npz"   # still running
    alive.write_bytes(b"another writer's")
    other = tmp_path / f".n.npz{files.TMP_TAG}{gone}-deadbeef.npz"          # another target
    other.write_bytes(b"")
    files.atomic_write(p, write_bytes(b"new"))
    assert not stale.exists() and alive.exists() and other.exists()
    assert p.read_bytes() == b"new"


def test_sigkill_during_save_leaves_a_recognisable_temporary(tmp_path):
    """A process killed while writing leaves its temporary (named after the target); the next
    save of that target removes it, and the old file is intact throughout."""
    p = tmp_path / "m.npz"
    p.write_bytes(b"old")
    code = ("import os, signal, sys; from inertia.files import atomic_write\n"
            "def w(f):\n    f.write(b'partial'); f.flush(); os.kill(os.getpid(), signal.SIGKILL)\n"
            "atomic_write(sys.argv[1], w)\n")
    env = dict(os.environ, PYTHONPATH=os.path.dirname(os.path.dirname(inertia.__file__)))
    r = subprocess.run([sys.executable, "-c", code, str(p)], env=env)
    assert r.returncode == -signal.SIGKILL
    left = [n for n in os.listdir(tmp_path) if n != "m.npz"]
    assert len(left) == 1 and left[0].startswith(".m.npz" + files.TMP_TAG)
    assert p.read_bytes() == b"old"
    files.atomic_write(p, write_bytes(b"new"))
    assert os.listdir(tmp_path) == ["m.npz"] and p.read_bytes() == b"new"


def test_train_checks_outputs_before_training(tmp_path, capsys):
    (tmp_path / "dir.npz").mkdir()
    for flag, value, words in [("--save", tmp_path / "dir.npz", "is a directory"),
                               ("--save", tmp_path / "m.csv", "end the name in .npz"),
                               ("--plot", tmp_path / "dir.png", None),
                               ("--plot", tmp_path / "curve.gif", "end the name in"),
                               ("--save", tmp_path / "no" / "m.npz", "does not exist"),
                               ("--save", "", "--save is empty"),
                               ("--plot", "", "--plot is empty")]:
        if words is None:
            (tmp_path / "dir.png").mkdir()
            words = "is a directory"
        code, out, err = run(capsys, *TRAIN, flag, str(value))
        one_line_error(code, err)
        assert words in err and flag in err and "epoch" not in out, err
    assert sorted(os.listdir(tmp_path)) == ["dir.npz", "dir.png"]


def test_train_save_keeps_link_and_mode(tmp_path, capsys):
    (tmp_path / "models").mkdir()
    target = tmp_path / "models" / "m.npz"
    target.write_bytes(b"placeholder")
    target.chmod(0o600)
    link = tmp_path / "m.npz"
    link.symlink_to(target)
    code, out, err = run(capsys, *TRAIN, "--save", str(link))
    assert code == 0, err
    assert link.is_symlink() and stat.S_IMODE(target.stat().st_mode) == 0o600
    assert inertia.load(link)[0].sizes == [4, 1]


def test_predict_out_dash_is_stdout(tmp_path, capsys, monkeypatch):
    monkeypatch.chdir(tmp_path)
    assert run(capsys, *TRAIN, "--save", "m.npz")[0] == 0
    X, _ = inertia.datasets.smooth_regression(3, seed=1)
    np.savetxt("in.csv", X, delimiter=",")
    r = subprocess.run([sys.executable, "-m", "inertia", "predict", "m.npz", "--data", "in.csv",
                        "--out", "-"], capture_output=True, text=True,
                       env=dict(os.environ, PYTHONPATH=os.path.dirname(
                           os.path.dirname(inertia.__file__))))
    assert r.returncode == 0, r.stderr
    lines = r.stdout.splitlines()
    assert lines[0] == "prediction" and len(lines) == 4
    net = inertia.load("m.npz")[0]
    np.testing.assert_allclose([float(v) for v in lines[1:]], net.predict(X).ravel(),
                               rtol=1e-6)
    assert sorted(os.listdir(".")) == ["in.csv", "m.npz"]       # no file named '-'


@pytest.mark.parametrize("argv", [
    ["compare", "--out", "/proc/x", "--quiet"],
    ["compare", "--plot", "/proc/x.png", "--quiet"],
    ["bench", "--out", "/proc/x", "--tiny"],
    ["predict", "m.npz", "--data", "in.csv", "--out", "/proc/x"],
    ["demo", "decay", "--out", "/proc/x"],
])
def test_unwritable_outputs_one_line(argv, tmp_path, capsys, monkeypatch):
    if not os.path.isdir("/proc/self"):
        pytest.skip("needs /proc")
    monkeypatch.chdir(tmp_path)
    code, out, err = run(capsys, *argv)
    one_line_error(code, err)
    assert "/proc/x" in err
