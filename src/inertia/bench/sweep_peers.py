"""The peers of W6 (``inertia.bench.sweeps``), each run as a script in its own process:
``python sweep_peers.py SYSTEM IN.npz OUT.npz``. It imports only NumPy and the peer's library
(not inertia), so that it runs under any interpreter that has them (``--jax-python``).

SYSTEM
    ``torch``  the runs one after another, each the standard PyTorch loop
               (``nn.Sequential``, ``torch.optim.SGD(lr, momentum)``, zero_grad / backward /
               step), float32 on the CPU, on one thread (for a network this small
               PyTorch's intra-op threads only add synchronisation, and on a busy machine
               they stall: one thread is the faster way, so the comparison is not flattered),
               or on the GPU that IN.npz's device names;
    ``jax``    the whole grid at once: ``optax.inject_hyperparams(optax.sgd)`` with the
               learning rate and momentum vmapped over the runs (``jax.vmap``), an epoch one
               jitted call, ``lax.scan`` over its full batches (then one step for a last,
               shorter batch).
IN.npz
    X (n, 4), y (n, 1) float32; W0, b0, W1, b1, W2, b2 the starting weights (W (out, in), as
    torch's and inertia's); lrs, momenta (R,) the runs' settings; epochs, batch (0: the full
    batch), seed (the shuffling: the same orders as inertia's ``fit`` draws), warm (1: run one
    epoch first, untimed, to compile); device ("cpu" when absent, "cuda": PyTorch's runs on
    the GPU).
OUT.npz
    seconds (the timed epochs, compile excluded), loss (R, epochs) the epochs' mean batch
    losses (NaN once a run is not finite).

Both peers train the comparison network (4-8-8-1, sigmoid, tanh, linear, mse, PyTorch's
momentum) on the rows in the order ``fit(..., seed=seed)`` takes them, so that their losses
can be checked against inertia's.
"""

from __future__ import annotations

import sys
import time

import numpy as np


def orders(n, epochs, seed):
    """(epochs, n) int64: each epoch's row order, drawn as inertia's ``fit`` draws them."""
    rng = np.random.default_rng(seed)
    order = np.arange(n)
    out = np.empty((epochs, n), dtype=np.int64)
    for e in range(epochs):
        rng.shuffle(order)
        out[e] = order
    return out


def batch_bounds(n, batch):
    """[(start, stop), ...] of an epoch's batches (``batch`` 0: one batch of all n rows)."""
    b = n if batch <= 0 else batch
    return [(s, min(s + b, n)) for s in range(0, n, b)]


# ------------------------------------------------------------------------------ PyTorch
def run_torch(d, epochs, warm):
    """The runs one after another on ``d["device"]`` (default the CPU): (seconds, loss (R,
    epochs))."""
    import torch

    torch.set_num_threads(1)
    device = str(d["device"]) if "device" in d else "cpu"
    X, y = torch.from_numpy(d["X"]).to(device), torch.from_numpy(d["y"]).to(device)
    lrs, momenta = d["lrs"], d["momenta"]
    R = lrs.shape[0]
    ords = orders(X.shape[0], epochs, int(d["seed"]))
    bounds = batch_bounds(X.shape[0], int(d["batch"]))
    if warm:
        _torch_fit(d, X, y, float(lrs[0]), float(momenta[0]), ords[:1], bounds)
    loss = np.full((R, epochs), np.nan)
    t0 = time.perf_counter()
    for r in range(R):
        loss[r] = _torch_fit(d, X, y, float(lrs[r]), float(momenta[r]), ords, bounds)
    return time.perf_counter() - t0, loss


def _torch_fit(d, X, y, lr, mu, ords, bounds):
    """One run, the standard loop: each epoch's mean batch loss."""
    import torch
    from torch import nn

    model = nn.Sequential(nn.Linear(4, 8), nn.Sigmoid(), nn.Linear(8, 8), nn.Tanh(),
                          nn.Linear(8, 1)).to(X.device)
    with torch.no_grad():
        for k, layer in enumerate(model[::2]):
            layer.weight.copy_(torch.from_numpy(d[f"W{k}"]).to(X.device))
            layer.bias.copy_(torch.from_numpy(d[f"b{k}"]).to(X.device))
    opt = torch.optim.SGD(model.parameters(), lr=lr, momentum=mu)
    lossf = nn.MSELoss()
    out = np.full(len(ords), np.nan)
    for e, order in enumerate(ords):
        idx = torch.from_numpy(order).to(X.device)
        total = 0.0
        for s, t in bounds:
            rows = idx[s:t]
            opt.zero_grad()
            loss = lossf(model(X[rows]), y[rows])
            loss.backward()
            opt.step()
            total += loss.item()
        out[e] = total / len(bounds)
        if not np.isfinite(out[e]):
            break
    return out


# ---------------------------------------------------------------------------------- JAX
def run_jax(d, epochs, warm):
    """The grid vmapped: (seconds, loss (R, epochs))."""
    import jax
    import jax.numpy as jnp

    X, y = jnp.asarray(d["X"]), jnp.asarray(d["y"])
    R = d["lrs"].shape[0]
    params = tuple((jnp.asarray(np.broadcast_to(d[f"W{k}"].T, (R,) + d[f"W{k}"].T.shape)),
                    jnp.asarray(np.broadcast_to(d[f"b{k}"], (R,) + d[f"b{k}"].shape)))
                   for k in range(3))
    epoch_fn, init = _jax_epoch(X, y, int(d["batch"]))
    state = init(params, jnp.asarray(d["lrs"]), jnp.asarray(d["momenta"]))
    ords = orders(X.shape[0], epochs, int(d["seed"]))
    if warm:
        jax.block_until_ready(epoch_fn(params, state, jnp.asarray(ords[0])))
    loss = np.full((R, epochs), np.nan)
    t0 = time.perf_counter()
    for e in range(epochs):
        params, state, per_run = epoch_fn(params, state, jnp.asarray(ords[e]))
        loss[:, e] = np.asarray(per_run)      # waits for the epoch, as the others do
    return time.perf_counter() - t0, loss


def _jax_epoch(X, y, batch):
    """(epoch(params, state, order) -> (params, state, mean batch loss (R,)), init(params,
    lrs, momenta) -> state), jitted and vmapped over the runs."""
    import jax
    import jax.numpy as jnp
    import optax

    n = X.shape[0]
    b = n if batch <= 0 else batch
    full, rest = n // b, n % b
    tx = optax.inject_hyperparams(optax.sgd)(learning_rate=0.1, momentum=0.9)

    def loss_fn(p, xb, yb):
        (W0, b0), (W1, b1), (W2, b2) = p
        h = jax.nn.sigmoid(xb @ W0 + b0)
        h = jnp.tanh(h @ W1 + b1)
        return jnp.mean((h @ W2 + b2 - yb) ** 2)

    def step(p, s, xb, yb):
        loss, g = jax.value_and_grad(loss_fn)(p, xb, yb)
        upd, s = tx.update(g, s, p)
        return optax.apply_updates(p, upd), s, loss

    def init_one(p, lr, mu):
        s = tx.init(p)
        s.hyperparams["learning_rate"] = lr
        s.hyperparams["momentum"] = mu
        return s

    def epoch_one(p, s, order):
        Xo, yo = X[order], y[order]
        xs = Xo[:full * b].reshape(full, b, -1)
        ys = yo[:full * b].reshape(full, b, -1)

        def body(carry, xy):
            p, s = carry
            p, s, loss = step(p, s, *xy)
            return (p, s), loss

        (p, s), losses = jax.lax.scan(body, (p, s), (xs, ys))
        total = losses.sum()
        if rest:
            p, s, loss = step(p, s, Xo[full * b:], yo[full * b:])
            total = total + loss
        return p, s, total / (full + (rest > 0))

    epoch = jax.jit(jax.vmap(epoch_one, in_axes=(0, 0, None)))
    return epoch, jax.jit(jax.vmap(init_one))


def main(argv):
    system, src, dst = argv
    d = dict(np.load(src))
    epochs, warm = int(d["epochs"]), bool(d["warm"])
    seconds, loss = {"torch": run_torch, "jax": run_jax}[system](d, epochs, warm)
    np.savez(dst, seconds=seconds, loss=loss)


if __name__ == "__main__":
    main(sys.argv[1:])
