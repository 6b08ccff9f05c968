"""Checkpoints: an interrupted run resumes exactly (parameters, optimizer, History), from a
checkpoint taken at an epoch's end or in the middle of one; other data or settings are
refused; without a checkpoint an interruption leaves the network at a completed step."""

import json
import os
import signal

import numpy as np
import pytest

import inertia
from inertia import Dense, Network, SGD
from inertia.training import Interrupted, checkpoint as ckpt_mod, loop


def _data(n=48, seed=0):
    rng = np.random.default_rng(seed)
    X = rng.uniform(-1, 1, (n, 3))
    return X, np.sin(2 * X[:, :1]) + X[:, 1:2] * X[:, 2:3]


def _net():
    return Network(3, [Dense(8, "tanh"), Dense(1)], seed=2, dtype="float64")


CASES = {
    "compiled-minibatch": (lambda: SGD(lr=0.05, momentum=0.9, nesterov=True),
                           dict(epochs=12, batch_size=10)),
    "engine-minibatch": (lambda: SGD(lr=0.05, momentum=0.9, convention="keras"),
                         dict(epochs=12, batch_size=10, compiled=False)),
    "engine-adam-schedule": (lambda: inertia.Adam(lr=0.01),
                             dict(schedule=[(5, {}), (7, {"lr": 0.003})], batch_size=16,
                                  lr_schedule=None)),
    "compiled-step-schedules": (lambda: SGD(lr=0.05, momentum=0.9),
                                dict(epochs=12, batch_size=7,
                                     lr_schedule=inertia.schedules.cosine(0.05, 84),
                                     validation_data=_data(20, 1))),
}


def _run(case, **extra):
    make, kw = CASES[case]
    kw = {k: v for k, v in kw.items() if v is not None}
    X, y = _data()
    net, opt = _net(), make()
    h = inertia.fit(net, X, y, "mse", opt, seed=5, progress=False, **kw, **extra)
    return net, opt, h


def _interrupt_at(monkeypatch, epoch, step):
    """Send this process SIGINT when the loop reaches (epoch, step) of the run."""
    real_begin = loop.State.begin_epoch
    real_record = loop.State.end_epoch

    def begin(self, e):
        real_begin(self, e)
        if (e, 0) == (epoch, step) and step == 0:
            os.kill(os.getpid(), signal.SIGINT)

    def end(self, e, *a, **k):
        real_record(self, e, *a, **k)
        if e + 1 == epoch and step > 0:
            os.kill(os.getpid(), signal.SIGINT)

    monkeypatch.setattr(loop.State, "begin_epoch", begin)
    monkeypatch.setattr(loop.State, "end_epoch", end)


@pytest.mark.parametrize("case", sorted(CASES))
def test_interrupted_run_resumes_exactly(case, tmp_path, monkeypatch):
    ref, ref_opt, ref_h = _run(case)
    path = str(tmp_path / "run.ckpt")
    with monkeypatch.context() as m:
        _interrupt_at(m, 5, 0)
        with pytest.raises(Interrupted) as info:
            _run(case, checkpoint=path, checkpoint_every=1)
    assert info.value.checkpoint == path and os.path.exists(path)
    ep, st = info.value.position
    assert 0 < ep * 100 + st and ep < 12
    net, opt, h = _run(case, checkpoint=path, checkpoint_every=1)
    assert h.resumed_from == (ep, st)
    assert np.array_equal(net.flat, ref.flat)
    for name, bufs in opt.state_arrays().items():
        for a, b in zip(bufs, ref_opt.state_arrays()[name]):
            assert np.array_equal(a, b)
    assert opt.state_meta() == ref_opt.state_meta()
    assert h.loss == ref_h.loss and h.val_loss == ref_h.val_loss
    assert h.segment_loss == ref_h.segment_loss
    assert not os.path.exists(path)


def test_mid_epoch_checkpoint_by_time_resumes_exactly(tmp_path, monkeypatch):
    """A checkpoint every step (a tiny time) on the engine loop lands mid-epoch."""
    ref, ref_opt, ref_h = _run("engine-minibatch")
    path = str(tmp_path / "run.ckpt")
    real = loop.EngineSteps._batch
    calls = []

    def batch(self, state, j):
        calls.append(j)
        if len(calls) == 23:                    # epoch 4, step 3 of 5
            os.kill(os.getpid(), signal.SIGINT)
        return real(self, state, j)

    with monkeypatch.context() as m:
        m.setattr(loop.EngineSteps, "_batch", batch)
        with pytest.raises(Interrupted) as info:
            _run("engine-minibatch", checkpoint=path, checkpoint_every="0.000001s")
    assert info.value.position == (4, 3)
    assert ckpt_mod.position(path) == (4, 3)
    net, opt, h = _run("engine-minibatch", checkpoint=path, checkpoint_every="0.000001s")
    assert np.array_equal(net.flat, ref.flat) and h.loss == ref_h.loss


def test_interrupt_without_checkpoint_leaves_a_completed_step(monkeypatch, tmp_path):
    """The signal lands in the first step of epoch 3; that step completes and training
    stops: the network holds what a checkpoint at that point holds."""
    X, y = _data()
    kept = {}
    for path in (None, str(tmp_path / "run.ckpt")):
        with monkeypatch.context() as m:
            _interrupt_at(m, 3, 0)
            net, opt = _net(), SGD(lr=0.05, momentum=0.9)
            with pytest.raises(KeyboardInterrupt) as info:
                inertia.fit(net, X, y, "mse", opt, epochs=10, batch_size=10, seed=5,
                            progress=False, compiled=False, checkpoint=path)
        assert info.value.checkpoint == path and info.value.position == (3, 1)
        assert opt.state.step == 3 * 5 + 1 and len(info.value.history.loss) == 3
        kept[path] = net.flat.copy()
        assert signal.getsignal(signal.SIGINT) is signal.default_int_handler   # restored
    with np.load(path) as f:
        assert np.array_equal(f["params"], kept[path])
    assert np.array_equal(kept[None], kept[path])


def _saved_run(tmp_path, monkeypatch):
    path = str(tmp_path / "run.ckpt")
    with monkeypatch.context() as m:
        _interrupt_at(m, 4, 0)
        with pytest.raises(Interrupted):
            _run("compiled-minibatch", checkpoint=path)
    return path


def test_other_data_or_settings_are_refused(tmp_path, monkeypatch):
    path = _saved_run(tmp_path, monkeypatch)
    before = open(path, "rb").read()
    X, y = _data()
    make, kw = CASES["compiled-minibatch"]
    tries = {"other data": (X + 1e-9, y, _net(), make(), kw),
             "another optimizer or other hyperparameters":
                 (X, y, _net(), SGD(lr=0.04, momentum=0.9, nesterov=True), kw),
             "a network of another shape":
                 (X, y, Network(3, [Dense(9, "tanh"), Dense(1)], seed=2, dtype="float64"),
                  make(), kw),
             "other training settings": (X, y, _net(), make(), dict(kw, batch_size=12))}
    for why, (Xa, ya, net, opt, kwa) in tries.items():
        with pytest.raises(ValueError, match=f"belongs to a run on {why}"):
            inertia.fit(net, Xa, ya, "mse", opt, seed=5, progress=False, checkpoint=path,
                        **kwa)
    assert open(path, "rb").read() == before


@pytest.mark.parametrize("every,match", [(0, "checkpoint_every"), ("30", "checkpoint_every"),
                                          ("-1s", "checkpoint_every"), (1.5, "checkpoint_every")])
def test_bad_checkpoint_arguments(tmp_path, every, match):
    X, y = _data()
    with pytest.raises(ValueError, match=match):
        inertia.fit(_net(), X, y, "mse", SGD(lr=0.1), epochs=2, checkpoint=str(tmp_path / "c"),
                    checkpoint_every=every)
    with pytest.raises(ValueError, match="does not exist"):
        inertia.fit(_net(), X, y, "mse", SGD(lr=0.1), epochs=2,
                    checkpoint=str(tmp_path / "no" / "c"))


def test_a_file_that_is_not_a_checkpoint_is_refused(tmp_path):
    path = tmp_path / "run.ckpt"
    path.write_bytes(b"not a checkpoint")
    X, y = _data()
    with pytest.raises(ValueError, match=r"is not an inertia checkpoint \(it is not a "
                       r"\.npz archive\)"):     # not numpy's words about pickled data
        inertia.fit(_net(), X, y, "mse", SGD(lr=0.1), epochs=2, checkpoint=str(path))
    assert path.read_bytes() == b"not a checkpoint"
    np.save(tmp_path / "a.npy", np.zeros(3))
    with pytest.raises(ValueError, match="it is a NumPy .npy array"):
        inertia.fit(_net(), X, y, "mse", SGD(lr=0.1), epochs=2,
                    checkpoint=str(tmp_path / "a.npy"))


def _cli(args, cwd):
    import subprocess
    import sys

    env = dict(os.environ, PYTHONPATH=os.path.dirname(os.path.dirname(inertia.__file__)),
               PYTHONUNBUFFERED="1")
    return subprocess.Popen([sys.executable, "-m", "inertia", *args], cwd=cwd, env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def _mtime(path):
    try:
        return os.stat(path).st_mtime_ns
    except FileNotFoundError:
        return None


def _signal_after_checkpoint(proc, path, sig):
    """Send ``sig`` once ``proc`` has written a checkpoint of its own."""
    import time

    before = _mtime(path)
    while proc.poll() is None and _mtime(path) in (None, before):
        time.sleep(0.005)
    if proc.poll() is None:
        proc.send_signal(sig)
    return proc.communicate(timeout=300)


def test_cli_checkpoint_survives_sigterm_and_ctrl_c(tmp_path):
    """`inertia train --checkpoint`: SIGTERM and Ctrl-C keep the run, the same command
    resumes it and says from where, and the model equals the uninterrupted run's."""
    base = ["train", "--samples", "300", "--batch-size", "8", "--epochs", "1500",
            "--dtype", "float64", "--quiet", "--lr", "0.05"]
    ref = _cli(base + ["--save", "ref.npz"], tmp_path)
    ref.communicate(timeout=300)
    assert ref.returncode == 0
    args = base + ["--checkpoint", "run.ckpt", "--checkpoint-every", "5", "--save", "m.npz"]
    ck = str(tmp_path / "run.ckpt")
    proc = _cli(args, tmp_path)
    _, err = _signal_after_checkpoint(proc, ck, signal.SIGTERM)
    assert os.path.exists(ck), err
    # SIGTERM: the same line as Ctrl-C, and the status of a process ended by SIGTERM
    assert proc.returncode == 128 + signal.SIGTERM
    assert err.startswith("inertia: terminated before epoch") and "kept in run.ckpt" in err
    proc = _cli(args, tmp_path)
    out, err = _signal_after_checkpoint(proc, ck, signal.SIGINT)
    if proc.returncode == 130:
        assert "the run is kept in run.ckpt; run the same command to resume it" in err
    else:                                      # it ended before the signal
        assert proc.returncode == 0 and "resumed from run.ckpt at epoch" in out
    kept = os.path.exists(ck)
    proc = _cli(args, tmp_path)
    out, err = proc.communicate(timeout=300)
    assert proc.returncode == 0, err
    assert ("resumed from run.ckpt at epoch" in out) == kept
    assert not os.path.exists(ck)
    # a checkpoint of another run is refused, and nothing says it was resumed
    _signal_after_checkpoint(_cli(args, tmp_path), ck, signal.SIGTERM)
    assert os.path.exists(ck)
    other = _cli([a if a != "0.05" else "0.06" for a in args], tmp_path)
    out, err = other.communicate(timeout=300)
    assert other.returncode == 2 and "belongs to a run on another optimizer" in err
    assert "resum" not in out and os.path.exists(ck)
    a, _ = inertia.load(str(tmp_path / "m.npz"))
    b, _ = inertia.load(str(tmp_path / "ref.npz"))
    assert np.array_equal(a.flat, b.flat)


def test_cli_ctrl_c_without_checkpoint_says_how_to_keep_a_run(tmp_path):
    import time

    proc = _cli(["train", "--samples", "300", "--batch-size", "1", "--epochs", "100000",
                 "--quiet"], tmp_path)
    while proc.stdout.readline().startswith("inertia train"):     # the header, then fit
        pass
    time.sleep(0.5)
    proc.send_signal(signal.SIGINT)
    _, err = proc.communicate(timeout=120)
    assert proc.returncode == 130
    assert "nothing was kept; pass --checkpoint PATH" in err


def _damaged(path, out, arrays=None, meta=None):
    """A copy of the checkpoint at ``path`` with some arrays and metadata changed."""
    with np.load(path) as f:
        data = {k: f[k] for k in f.files}
    m = json.loads(str(data.pop("meta")))
    data.update(arrays or {})
    m.update(meta or {})
    np.savez(out, meta=np.array(json.dumps(m)), **data)
    return str(out)


def test_a_damaged_checkpoint_is_refused_and_changes_nothing(tmp_path, monkeypatch):
    """Every damage gives one line naming the file, before the network or the optimizer
    changes: truncated or empty files, missing or misshapen arrays, weights that are not
    finite, a row order that is not an order of the rows (it would index outside X), steps
    outside the run, metadata of the wrong types."""
    path = _saved_run(tmp_path, monkeypatch)
    raw = open(path, "rb").read()
    with np.load(path) as f:
        p, order = f["params"], f["order"]
    meta = json.loads(str(np.load(path)["meta"]))
    bad_order = order.copy()
    bad_order[-1] = 10 ** 6
    cases = {"truncated": raw[:len(raw) // 2], "empty": b""}
    for name, (arrays, m) in {
            "no params": ({"params": None}, None),
            "short params": ({"params": p[:-1]}, None),
            "nan params": ({"params": p * np.nan}, None),
            "order out of range": ({"order": bad_order}, None),
            "order repeats": ({"order": np.zeros_like(order)}, None),
            "step past the end": (None, {"t": 10 ** 12}),
            "negative step": (None, {"t": -1}),
            "float step": (None, {"t": 1.5}),
            "history short": (None, {"history": dict(meta["history"], loss=[])}),
            "no history": (None, {"history": None}),
            "optimizer counters": (None, {"opt_meta": 3}),
            "hyperparameters": (None, {"hyper": {"lr": -1}}),
            "rng": (None, {"rng": {"state": -1}}),
            "fingerprint": (None, {"fingerprint": None})}.items():
        out = tmp_path / f"{len(cases)}.npz"
        if arrays and arrays.get("params", 0) is None:
            with np.load(path) as f:
                data = {k: f[k] for k in f.files if k != "params"}
            np.savez(out, **data)
            cases[name] = out.read_bytes()
            continue
        cases[name] = open(_damaged(path, out, arrays, m), "rb").read()
    X, y = _data()
    make, kw = CASES["compiled-minibatch"]
    for name, content in cases.items():
        target = tmp_path / "damaged.ckpt"
        target.write_bytes(content)
        net, opt = _net(), make()
        w0 = np.array(net.e.to_host(net.flat), copy=True)
        with pytest.raises(ValueError) as info:
            inertia.fit(net, X, y, "mse", opt, seed=5, progress=False, checkpoint=str(target),
                        **kw)
        msg = str(info.value)
        assert "\n" not in msg and str(target) in msg, (name, msg)
        assert ("damaged inertia checkpoint" in msg) != (name in ("truncated", "empty")), msg
        assert target.read_bytes() == content, name
        assert np.array_equal(np.asarray(net.e.to_host(net.flat)), w0), name


def test_cli_resume_of_an_auto_run_takes_the_kept_choice(tmp_path):
    """`inertia train --lr auto --momentum auto --checkpoint`: the resumed command takes the
    race's choice from the checkpoint instead of racing again, and ends where the
    uninterrupted run does."""
    base = ["train", "--samples", "300", "--batch-size", "8", "--epochs", "1500",
            "--dtype", "float64", "--quiet", "--lr", "auto", "--momentum", "auto"]
    ref = _cli(base + ["--save", "ref.npz"], tmp_path)
    out_ref, _ = ref.communicate(timeout=300)
    assert ref.returncode == 0
    args = base + ["--checkpoint", "run.ckpt", "--checkpoint-every", "5", "--save", "m.npz"]
    ck = str(tmp_path / "run.ckpt")
    _signal_after_checkpoint(_cli(args, tmp_path), ck, signal.SIGTERM)
    assert os.path.exists(ck)
    proc = _cli(args, tmp_path)
    out, err = proc.communicate(timeout=300)
    assert proc.returncode == 0, err
    chosen = out_ref.splitlines()[0].split(" (the race:")[0]
    assert out.splitlines()[0] == f"{chosen} (kept in run.ckpt)"
    assert "resumed from run.ckpt at epoch" in out and not os.path.exists(ck)
    a, _ = inertia.load(str(tmp_path / "m.npz"))
    b, _ = inertia.load(str(tmp_path / "ref.npz"))
    assert np.array_equal(a.flat, b.flat)


def test_a_run_resumes_only_as_one_that_records_its_steps_or_not(tmp_path, monkeypatch):
    """record_steps=True on a run whose checkpoint did not record its steps (or the other
    way) would leave History.step_loss covering part of the run: refused as other
    settings; the same setting resumes."""
    X, y = _data()
    path = str(tmp_path / "c.npz")
    for first, second in ((False, True), (True, False), (True, True)):
        calls = []
        real = ckpt_mod.save

        def stop_after_one(*a, **k):           # keep the checkpoint of epoch 1, then stop
            real(*a, **k)
            calls.append(1)
            raise KeyboardInterrupt

        monkeypatch.setattr(ckpt_mod, "save", stop_after_one)
        with pytest.raises(KeyboardInterrupt):
            inertia.fit(_net(), X, y, "mse", SGD(lr=0.1), epochs=3, batch_size=10,
                        checkpoint=path, record_steps=first, progress=False)
        monkeypatch.setattr(ckpt_mod, "save", real)
        assert os.path.exists(path)
        if first != second:
            with pytest.raises(ValueError, match=f"a run with record_steps={first} .*resume "
                                                 f"with record_steps={first}"):
                inertia.fit(_net(), X, y, "mse", SGD(lr=0.1), epochs=3, batch_size=10,
                            checkpoint=path, record_steps=second, progress=False)
            os.remove(path)
        else:
            h = inertia.fit(_net(), X, y, "mse", SGD(lr=0.1), epochs=3, batch_size=10,
                            checkpoint=path, record_steps=second, progress=False)
            assert len(h.step_loss) == 3 * int(np.ceil(len(X) / 10))
