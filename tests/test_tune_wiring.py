"""The tuner and compare on the sweep, "auto" learning rates and momenta (SGD, fit, the
estimators, the command line) and the ``tune`` command."""

import math
import os
import subprocess
import sys
import warnings

import numpy as np
import pytest

import inertia
from inertia import SGD, Dense, Network
from inertia.tuning import many

SRC = os.path.dirname(os.path.dirname(inertia.__file__))


def _data(n=64, seed=0):
    rng = np.random.default_rng(seed)
    X = rng.normal(size=(n, 3))
    y = np.sin(X[:, :1]) + 0.5 * X[:, 1:2] * X[:, 2:3]
    return X, y


def _net(seed=1, dtype="float64"):
    return Network(3, [Dense(6, "tanh"), Dense(1, "linear")], seed=seed, dtype=dtype)


# --- train_many through the sweep equals the sequential fits it replaced --------------------

def _train_many_by_fits(configs, X, y, loss, upto, batch_size, val, seed, initial_loss):
    """The tuner's training as it was: one fit per configuration and chunk."""
    for c in configs:
        if not c.alive:
            continue
        for end in many.boundaries(upto):
            if c.epochs >= end:
                continue
            start = c.epochs
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", RuntimeWarning)
                h = inertia.fit(c.net, X, y, loss=loss, optimizer=c.opt, epochs=end - start,
                                batch_size=batch_size, seed=[seed, start],
                                validation_data=val, progress=False)
            c.loss.extend(h.loss)
            c.val.extend(h.val_loss)
            if len(h.loss) < end - start or many.diverged(h.loss, initial_loss):
                c.diverged = c.epochs
                break


def test_train_many_through_the_sweep_equals_sequential_fits():
    X, y = _data()
    val = _data(32, seed=5)
    net = _net()
    pairs = [(0.01, 0.0), (0.05, 0.9), (0.3, 0.5), (50.0, 0.99)]     # the last one diverges
    init = net.loss(X, y, "mse")
    a, b = many.new_configs(net, pairs), many.new_configs(net, pairs)
    for upto in (3, 7):                               # continued across two calls, as a race
        many.train_many(a, X, y, "mse", upto, 16, val, 4, init)
        _train_many_by_fits(b, X, y, "mse", upto, 16, val, 4, init)
    assert a[-1].diverged is not None and a[0].diverged is None
    for ca, cb in zip(a, b):
        assert ca.loss == cb.loss and ca.val == cb.val and ca.diverged == cb.diverged
        for (Wa, ba), (Wb, bb) in zip(ca.net.parameters(), cb.net.parameters()):
            np.testing.assert_array_equal(Wa, Wb)
            np.testing.assert_array_equal(ba, bb)


def test_train_many_goes_through_train_group(monkeypatch):
    calls = []
    real = many._train_group

    def spy(nets, opts, *args, **kw):
        calls.append(len(nets))
        return real(nets, opts, *args, **kw)

    monkeypatch.setattr(many, "_train_group", spy)
    X, y = _data()
    configs = many.new_configs(_net(), [(0.01, 0.0), (0.02, 0.5), (0.03, 0.9)])
    many.train_many(configs, X, y, "mse", 4)
    assert calls == [3, 3, 3]                         # chunks 1, 2, 4: every run in one group


# --- compare on the sweep equals the fits it replaced --------------------------------------

def _compare_by_fits(X, y, layers, loss, convention, settings, segments, every, seeds,
                     batch_size, dtype):
    curves = np.empty((len(seeds), len(settings), segments * every))
    for si, seed in enumerate(seeds):
        base = Network(X.shape[1], layers, seed=seed, dtype=dtype)
        for ki, (lr, wd, mu) in enumerate(settings):
            net = base.copy()
            opt = SGD(lr=lr, momentum=mu, weight_decay=wd, convention=convention)
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", inertia.DivergenceWarning)
                hist = inertia.fit(net, X, y, loss=loss, optimizer=opt,
                                   schedule=[(every, {})] * segments, batch_size=batch_size,
                                   seed=seed, progress=False)
            curves[si, ki] = np.nan
            curves[si, ki, :len(hist.loss)] = hist.loss
    return curves


def test_compare_on_the_sweep_is_bit_identical_nan_included():
    from inertia.cli.compare import run_compare

    X, y = _data(48)
    layers = [Dense(5, "sigmoid"), Dense(1, "linear")]
    settings = [(0.2, 0.0, 0.0), (0.2, 0.02, 0.7), (400.0, 0.0, 0.9)]   # the last diverges
    args = (X.astype(np.float32), y.astype(np.float32), layers, "quadratic", "neanderthal",
            settings, 3, 4, [2, 3], 8)
    got = run_compare(*args, dtype="float32", progress=False)
    want = _compare_by_fits(*args, dtype="float32")
    assert got.shape == (2, 3, 12)
    assert np.isnan(want[:, 2, -1]).all() and np.isfinite(want[:, :2]).all()
    np.testing.assert_array_equal(got, want)
