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


# name -> (optimizer factory, rows of data, fit keyword arguments): runs of a few tenths of
# a second, with checkpoints every few tens of milliseconds
CONFIGS = {
    "full-pytorch-compiled": (lambda: inertia.SGD(lr=0.05, momentum=0.9, convention="pytorch"),
                              2000, dict(epochs=130, checkpoint_every=6)),
    "minibatch-keras-nesterov": (lambda: inertia.SGD(lr=0.02, momentum=0.9, nesterov=True,
                                                     convention="keras"),
                                 2000, dict(epochs=100, batch_size=64, checkpoint_every=3)),
    "online-neanderthal": (lambda: inertia.SGD(lr=0.01, momentum=0.5, weight_decay=0.01,
                                               convention="neanderthal"),
                           2000, dict(epochs=50, batch_size=1, checkpoint_every="0.02s")),
    "schedules-engine": (lambda: inertia.SGD(lr=0.05, momentum=0.9, convention="pytorch",
                                             nesterov=True),
                         40, dict(schedule=[(80, {}), (80, {"weight_decay": 0.001}),
                                            (80, {"lr": 0.02})],
                                  batch_size=16, compiled=False, checkpoint_every="0.02s")),
    "step-schedules-compiled": (lambda: inertia.SGD(lr=0.05, momentum=0.9),
                                2000, dict(epochs=100, batch_size=128, checkpoint_every="0.02s",
                                           lr_schedule=schedules.cosine(0.05, 1600),
                                           momentum_schedule=schedules.sutskever(0.95))),
    "qhm": (lambda: inertia.QHM(lr=0.05, momentum=0.9, nu=0.7),
            2000, dict(epochs=100, batch_size=64, checkpoint_every=3)),
    "aggmo": (lambda: inertia.AggMo(lr=0.02, betas=(0.0, 0.9, 0.99)),
              40, dict(epochs=250, batch_size=8, checkpoint_every="0.02s")),
    "adam": (lambda: inertia.Adam(lr=0.01),
             40, dict(epochs=250, batch_size=8, checkpoint_every="0.02s")),
    "adamw-schedule": (lambda: inertia.AdamW(lr=0.01, weight_decay=0.01),
                       40, dict(epochs=1000, checkpoint_every=30,
                                lr_schedule=schedules.cosine(0.01, 1000))),
    "sgd-ema-engine": (lambda: inertia.SGD(lr=0.05, momentum=0.9, convention="ema"),
                       40, dict(epochs=250, batch_size=8, compiled=False,
                                checkpoint_every="0.02s")),
}


def train(name, checkpoint=None, dtype="float64"):
    """The run CONFIGS[name] from its fixed initialisation: (network, History)."""
    make_opt, rows, kw = CONFIGS[name]
    kw = dict(kw)
    if checkpoint is None:
        kw.pop("checkpoint_every", None)
    X, y = _data(rows)
    net = inertia.Network(3, [inertia.Dense(16, "tanh"), inertia.Dense(8, "sigmoid"),
                              inertia.Dense(1)], seed=1, dtype=dtype)
    hist = inertia.fit(net, X, y, "mse", make_opt(), seed=7, progress=False,
                       checkpoint=checkpoint, **kw)
    return net, hist


def main(name, checkpoint, out):
    from inertia.fused import runner  # noqa: F401  (numba's cache loaded before the clock starts)
    from inertia.fused import tiles  # noqa: F401

    print("ready", flush=True)
    net, _ = train(name, checkpoint)
    np.save(out + ".tmp.npy", np.asarray(net.flat))
    os.replace(out + ".tmp.npy", out)


if __name__ == "__main__":
    main(*sys.argv[1:4])
