"""Training runs for tests/test_kill_resume.py: ``python kill_worker.py CONFIG CHECKPOINT OUT``
trains configuration CONFIG with a checkpoint (resuming from it when it exists) and writes
the final flat parameters to OUT (.npy). ``train(name)`` runs the same in-process."""

from __future__ import annotations

import os
import sys

import numpy as np

import inertia
from inertia import schedules


def _data(n=40, seed=3):
    rng = np.random.default_rng(seed)
    X = rng.uniform(-1, 1, (n, 3))
    y = np.sin(X[:, :1] * 2) + X[:, 1:2] * X[:, 2:3]
    return X, y


# name -> (optimizer factory, fit keyword arguments); epochs long enough that kills land
# mid-run, checkpoints often enough that every run makes progress
CONFIGS = {
    "full-pytorch-compiled": (lambda: inertia.SGD(lr=0.05, momentum=0.9, convention="pytorch"),
                              dict(epochs=600, checkpoint_every=1)),
    "minibatch-keras-nesterov": (lambda: inertia.SGD(lr=0.05, momentum=0.9, nesterov=True,
                                                     convention="keras"),
                                 dict(epochs=300, batch_size=8, checkpoint_every=1)),
    "online-neanderthal": (lambda: inertia.SGD(lr=0.02, momentum=0.5, weight_decay=0.01,
                                               convention="neanderthal"),
                           dict(epochs=150, batch_size=1, checkpoint_every="0.002s")),
    "schedules-engine": (lambda: inertia.SGD(lr=0.05, momentum=0.9, convention="pytorch",
                                             nesterov=True),
                         dict(schedule=[(60, {}), (60, {"weight_decay": 0.001}),
                                        (60, {"lr": 0.02})],
                              batch_size=16, compiled=False, checkpoint_every="0.002s")),
    "step-schedules-compiled": (lambda: inertia.SGD(lr=0.05, momentum=0.9),
                                dict(epochs=300, batch_size=16, checkpoint_every=1,
                                     lr_schedule=schedules.cosine(0.05, 900),
                                     momentum_schedule=schedules.sutskever(0.95))),
    "qhm": (lambda: inertia.QHM(lr=0.05, momentum=0.9, nu=0.7),
            dict(epochs=300, batch_size=8, checkpoint_every=1)),
    "aggmo": (lambda: inertia.AggMo(lr=0.02, betas=(0.0, 0.9, 0.99)),
              dict(epochs=150, batch_size=8, checkpoint_every="0.002s")),
    "adam": (lambda: inertia.Adam(lr=0.01),
                 dict(epochs=150, batch_size=8, checkpoint_every="0.002s")),
    "adamw-schedule": (lambda: inertia.AdamW(lr=0.01, weight_decay=0.01),
                       dict(epochs=200, checkpoint_every=2,
                            lr_schedule=schedules.cosine(0.01, 200))),
    "sgd-ema-engine": (lambda: inertia.SGD(lr=0.05, momentum=0.9, dampening=0.5,
                                           convention="ema"),
                       dict(epochs=150, batch_size=8, compiled=False,
                            checkpoint_every="0.002s")),
}


def train(name, checkpoint=None, dtype="float64"):
    """The run CONFIGS[name] from its fixed initialisation: (network, History)."""
    make_opt, kw = CONFIGS[name]
    kw = dict(kw)
    if checkpoint is None:
        kw.pop("checkpoint_every", None)
    X, y = _data()
    net = inertia.Network(3, [inertia.Dense(6, "tanh"), inertia.Dense(1)], seed=1, dtype=dtype)
    hist = inertia.fit(net, X, y, "mse", make_opt(), seed=7, progress=False,
                       checkpoint=checkpoint, **kw)
    return net, hist


def main(name, checkpoint, out):
    if os.path.exists(checkpoint):
        print("resuming", flush=True)
    print("ready", flush=True)
    net, _ = train(name, checkpoint)
    np.save(out + ".tmp.npy", np.asarray(net.flat))
    os.replace(out + ".tmp.npy", out)


if __name__ == "__main__":
    main(*sys.argv[1:4])
