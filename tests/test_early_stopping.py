"""EarlyStopping: Keras 3's rule (its own tests ported, and the real callback driven with the
same values), in fit on both loops, with val_accuracy, and through a checkpoint resume."""

import os

import numpy as np
import pytest

import inertia
from inertia import Dense, EarlyStopping, Network, SGD
from inertia.training import Interrupted, loop
from inertia.training.early_stopping import accuracy


class Dummy:
    """Weights are the epoch number, as in Keras's own test."""

    def __init__(self):
        self.weights = -1


def _drive(stopper, values, model=None, stop_at=None):
    """Keras's on_train_begin / on_epoch_end / on_train_end sequence; returns (epochs run,
    final weights)."""
    model = model or Dummy()
    stopper.begin()
    run = 0
    for epoch, v in enumerate(values):
        run += 1
        model.weights = epoch
        stop = stopper.update(epoch, v, lambda: model.weights)
        if stop or epoch == stop_at:
            break
    stopper.end(lambda w: setattr(model, "weights", w))
    return run, model.weights


# --- Keras's tests (keras/src/callbacks/early_stopping_test.py), ported -------------------

@pytest.mark.parametrize("patience", [0, 1, 2, 3])
def test_keras_patience(patience):
    losses = [10.0, 9.0, 8.0, 9.0, 8.9, 8.8, 8.7, 8.6, 8.5]
    stopper = EarlyStopping(monitor="loss", patience=patience)
    _drive(stopper, losses)
    assert stopper.stopped_epoch == max(patience, 1) + 2


def test_keras_state_reset_across_fits():
    stopper = EarlyStopping(monitor="loss", patience=3)
    stopper.best, stopper.wait, stopper.stopped_epoch, stopper.best_epoch = 0.1, 3, 5, 5
    stopper.best_weights = object()
    stopper.begin()
    assert stopper.best is None and stopper.wait == 0 and stopper.stopped_epoch == 0
    assert stopper.best_epoch == 0 and stopper.best_weights is None


def test_keras_final_weights_when_restoring():
    stopper = EarlyStopping(monitor="val_loss", patience=2, restore_best=True)
    _, weights = _drive(stopper, [0.2, 0.15, 0.1, 0.11, 0.12])
    assert weights == 2
    # no epoch beats the baseline: patience epochs run, the best of them restored
    stopper = EarlyStopping(monitor="val_loss", patience=5, baseline=0.5, restore_best=True)
    run, weights = _drive(stopper, [0.9, 0.8, 0.7, 0.71, 0.72, 0.73])
    assert (run, weights) == (5, 2)
    # stopped by something else (epoch 3): the best weights still come back (Keras 3)
    stopper = EarlyStopping(monitor="val_loss", patience=5, baseline=0.5, restore_best=True)
    run, weights = _drive(stopper, [0.9, 0.8, 0.7, 0.71, 0.72, 0.73], stop_at=3)
    assert (run, weights) == (4, 2)


def test_keras_start_from_epoch():
    values = [1.0, 2.0, 3.0, 4.0, 5.0, 6.0, 7.0, 8.0]      # never improves after the first
    for start, patience in ((2, 3), (2, 0)):
        stopper = EarlyStopping(monitor="loss", patience=patience, start_from_epoch=start)
        run, _ = _drive(stopper, values)
        assert run >= patience + start
        assert stopper.stopped_epoch == start + max(patience, 1)


def test_min_delta_and_mode():
    # min mode: 0.95 is not below 1.0 - 0.1, so it does not count as an improvement
    stopper = EarlyStopping(monitor="loss", patience=1, min_delta=-0.1)    # |min_delta|
    _drive(stopper, [1.0, 0.95, 0.92, 0.5])
    assert stopper.stopped_epoch == 1 and stopper.best == 1.0
    # accuracy is maximized in "auto"
    stopper = EarlyStopping(monitor="val_accuracy", patience=1)
    _, w = _drive(stopper, [0.5, 0.7, 0.6, 0.65, 0.9])
    assert stopper.stopped_epoch == 2 and stopper.best == 0.7 and w == 1


# --- the real Keras callback, driven with the same values --------------------------------

def _keras_drive(kw, values, mode):
    keras = pytest.importorskip("keras")

    class Model:
        stop_training = False
        w = -1

        def get_weights(self):
            return self.w

        def set_weights(self, w):
            self.w = w

    m = Model()
    cb = keras.callbacks.EarlyStopping(mode=mode, **kw)
    cb.set_model(m)
    cb.on_train_begin()
    run = 0
    for epoch, v in enumerate(values):
        run += 1
        m.w = epoch
        cb.on_epoch_end(epoch, {kw.get("monitor", "val_loss"): v})
        if m.stop_training:
            break
    cb.on_train_end()
    return run, m.w, cb.stopped_epoch, cb.best_epoch, cb.wait


@pytest.mark.parametrize("seed", range(12))
def test_same_decisions_as_keras(seed):
    rng = np.random.default_rng(seed)
    values = list(np.round(1.0 + np.cumsum(rng.normal(-0.02, 0.05, 30)), 2))
    kw = dict(patience=int(rng.integers(0, 5)), min_delta=float(rng.choice([0, 0.01, 0.05])),
              start_from_epoch=int(rng.integers(0, 4)),
              baseline=None if seed % 3 else float(values[0] - 0.05))
    mode = ["min", "max", "auto"][seed % 3]
    ours = EarlyStopping(monitor="val_loss", mode=mode, restore_best=True, **kw)
    run, w = _drive(ours, values)
    want = _keras_drive(dict(monitor="val_loss", restore_best_weights=True, **kw), values,
                        mode)
    assert (run, w, ours.stopped_epoch, ours.best_epoch, ours.wait) == want


@pytest.mark.parametrize("kw, words", [(dict(monitor="accuracy"), "cannot monitor"),
                                       (dict(mode="up"), "mode"), (dict(patience=-1), "patience"),
                                       (dict(min_delta=float("nan")), "min_delta"),
                                       (dict(start_from_epoch=1.5), "start_from_epoch")])
def test_bad_settings_one_line(kw, words):
    with pytest.raises(ValueError) as ei:
        EarlyStopping(**kw)
    assert words in str(ei.value) and "\n" not in str(ei.value)


# --- in fit -------------------------------------------------------------------------------

def _classes(n=120, seed=0):
    rng = np.random.default_rng(seed)
    X = rng.normal(size=(n, 4))
    y = (X[:, 0] + 0.5 * X[:, 1] ** 2 - 0.5 > 0).astype(int)
    return X, y


def _net(out=2, act="softmax"):
    return Network(4, [Dense(12, "tanh"), Dense(out, act)], seed=3, dtype="float64")


def _fit(net, compiled, epochs=60, stopper=None, loss="cross_entropy", y=None, **kw):
    X, yy = _classes()
    y = yy if y is None else y
    return inertia.fit(net, X[:80], y[:80], loss, SGD(lr=0.4, momentum=0.9), epochs=epochs,
                       batch_size=8, seed=1, progress=False, compiled=compiled,
                       validation_data=(X[80:], y[80:]), early_stopping=stopper, **kw)


@pytest.mark.parametrize("monitor", ["val_loss", "val_accuracy", "loss"])
def test_fit_stops_and_restores_best_on_both_loops(monitor):
    """Both loops stop at the same epoch with the same weights, those of the best epoch:
    the same as a run of best_epoch + 1 epochs without early stopping."""
    results = []
    for compiled in (False, None):
        net = _net()
        stopper = EarlyStopping(monitor=monitor, patience=2, min_delta=1e-3)
        h = _fit(net, compiled, stopper=stopper)
        results.append((net.flat.copy(), h))
    (w0, h0), (w1, h1) = results
    assert h0.stopped_epoch is not None and h0.stopped_epoch < 59
    assert (h0.stopped_epoch, h0.best_epoch) == (h1.stopped_epoch, h1.best_epoch)
    assert len(h0.loss) == h0.stopped_epoch + 1
    np.testing.assert_allclose(w0, w1, rtol=1e-10, atol=1e-12)
    ref = _net()
    hr = _fit(ref, False, epochs=h0.best_epoch + 1)
    np.testing.assert_array_equal(w0, ref.flat)
    values = {"val_loss": h0.val_loss, "val_accuracy": h0.val_accuracy, "loss": h0.loss}[monitor]
    best = (max if monitor == "val_accuracy" else min)(values)
    assert values[h0.best_epoch] == best
    assert hr.loss == h0.loss[:h0.best_epoch + 1]


def test_restore_best_false_keeps_last_weights():
    net = _net()
    h = _fit(net, False, stopper=EarlyStopping(patience=1, restore_best=False))
    ref = _net()
    _fit(ref, False, epochs=h.stopped_epoch + 1)
    np.testing.assert_array_equal(net.flat, ref.flat)


def test_no_stop_history_says_none():
    h = _fit(_net(), False, epochs=3, stopper=EarlyStopping(patience=10))
    assert h.stopped_epoch is None and h.best_epoch is not None and len(h.loss) == 3


@pytest.mark.parametrize("loss, out, act", [("cross_entropy", 2, "softmax"),
                                            ("bce", 1, "sigmoid"), ("bce", 2, "sigmoid")])
def test_val_accuracy_is_the_predictions(loss, out, act):
    X, y = _classes()
    y2 = y if out != 2 or loss == "cross_entropy" else np.column_stack([y, 1 - y])
    for compiled in (False, None):
        net = _net(out, act)
        h = _fit(net, compiled, epochs=4, loss=loss, y=y2)
        p = net.predict(X[80:])
        if loss == "cross_entropy":
            want = np.mean(p.argmax(axis=1) == y[80:])
        else:
            want = np.mean((p > 0.5) == (y2[80:].reshape(len(p), -1) > 0.5))
        assert len(h.val_accuracy) == 4 and h.val_accuracy[-1] == want


def test_regression_has_no_accuracy_and_refuses_to_monitor_it():
    X, y = _classes()
    net = Network(4, [Dense(6, "tanh"), Dense(1)], dtype="float64")
    h = inertia.fit(net, X, y.astype(float), "mse", SGD(lr=0.1), epochs=2, progress=False,
                    validation_data=(X, y.astype(float)))
    assert h.val_accuracy == [] and len(h.val_loss) == 2
    with pytest.raises(ValueError, match="classification loss"):
        inertia.fit(net, X, y.astype(float), "mse", SGD(lr=0.1), epochs=2, progress=False,
                    validation_data=(X, y.astype(float)),
                    early_stopping=EarlyStopping(monitor="val_accuracy"))
    with pytest.raises(ValueError, match="validation_data"):
        inertia.fit(net, X, y.astype(float), "mse", SGD(lr=0.1), epochs=2, progress=False,
                    early_stopping=EarlyStopping())
    with pytest.raises(ValueError, match="EarlyStopping"):
        inertia.fit(net, X, y.astype(float), "mse", SGD(lr=0.1), epochs=2, progress=False,
                    early_stopping="val_loss")


def test_accuracy_hand_worked():
    out = np.array([[0.2, 0.8], [0.6, 0.4], [0.1, 0.9]])
    assert accuracy("cross_entropy", out, np.eye(2)[[1, 1, 1]]) == pytest.approx(2 / 3)
    assert accuracy("bce", np.array([[0.7], [0.4], [0.5]]), np.array([[1], [0], [1]])) == \
        pytest.approx(2 / 3)                         # 0.5 is not above the threshold


# --- checkpoints --------------------------------------------------------------------------

def _interrupt_after_epoch(monkeypatch, epoch):
    real = loop.State.end_epoch

    def end(self, e, *a, **k):
        real(self, e, *a, **k)
        if e == epoch:
            os.kill(os.getpid(), __import__("signal").SIGINT)

    monkeypatch.setattr(loop.State, "end_epoch", end)


@pytest.mark.parametrize("compiled", [False, None])
def test_checkpoint_resume_stops_at_the_same_epoch_with_the_same_weights(compiled, tmp_path,
                                                                        monkeypatch):
    def stopper():
        return EarlyStopping(monitor="val_loss", patience=3, min_delta=1e-3)

    ref = _net()
    h_ref = _fit(ref, compiled, stopper=stopper())
    assert h_ref.stopped_epoch is not None and h_ref.best_epoch < h_ref.stopped_epoch
    # interrupted after the best epoch, while waiting: the kept weights travel in the file
    cut = h_ref.best_epoch + 1
    path = str(tmp_path / "run.ckpt")
    with monkeypatch.context() as m:
        _interrupt_after_epoch(m, cut)
        with pytest.raises(Interrupted):
            _fit(_net(), compiled, stopper=stopper(), checkpoint=path)
    assert os.path.exists(path)
    net = _net()
    h = _fit(net, compiled, stopper=stopper(), checkpoint=path)
    assert h.resumed_from is not None
    assert (h.stopped_epoch, h.best_epoch) == (h_ref.stopped_epoch, h_ref.best_epoch)
    assert h.loss == h_ref.loss and h.val_loss == h_ref.val_loss
    assert h.val_accuracy == h_ref.val_accuracy
    np.testing.assert_array_equal(net.flat, ref.flat)
    assert not os.path.exists(path)


@pytest.mark.parametrize("compiled", [False, None])
def test_signal_in_the_stopping_epoch_resumes_to_the_same_end(compiled, tmp_path,
                                                               monkeypatch):
    """A Ctrl-C landing in the epoch that stops the run: the checkpoint says it stopped,
    and resuming it only restores the best weights."""
    def stopper():
        return EarlyStopping(monitor="val_loss", patience=2)

    ref = _net()
    h_ref = _fit(ref, compiled, stopper=stopper())
    path = str(tmp_path / "run.ckpt")
    with monkeypatch.context() as m:
        _interrupt_after_epoch(m, h_ref.stopped_epoch)
        with pytest.raises(Interrupted):
            _fit(_net(), compiled, stopper=stopper(), checkpoint=path)
    net = _net()
    h = _fit(net, compiled, stopper=stopper(), checkpoint=path)
    assert (h.stopped_epoch, h.best_epoch) == (h_ref.stopped_epoch, h_ref.best_epoch)
    assert h.loss == h_ref.loss
    np.testing.assert_array_equal(net.flat, ref.flat)


def test_checkpoint_refuses_other_early_stopping(tmp_path, monkeypatch):
    path = str(tmp_path / "run.ckpt")
    with monkeypatch.context() as m:
        _interrupt_after_epoch(m, 1)
        with pytest.raises(Interrupted):
            _fit(_net(), False, stopper=EarlyStopping(patience=3), checkpoint=path)
    with pytest.raises(ValueError, match="other training settings"):
        _fit(_net(), False, stopper=EarlyStopping(patience=4), checkpoint=path)
