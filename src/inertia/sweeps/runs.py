"""A shard of a sweep as a pure function: the network's architecture and starting weights as
arrays and JSON-able settings in, each run's measurements and trained weights out. Nothing
here holds a live engine object between calls, so a shard runs the same in this process and
on a Dask worker (``cluster.py``), and a sweep gives the same numbers either way."""

from __future__ import annotations

import os
import warnings

from ..network import Dense, Network
from ..optim import OPTIMIZERS
from ..training import Divergence, DivergenceWarning, History, fit


def architecture(net):
    """What rebuilds ``net`` anywhere, JSON-able: {"n_inputs", "layers": [[units,
    activation spec], ...], "dtype", "engine", "device" (None or the engine's device)}."""
    device = getattr(net.e, "device", None)
    return {"n_inputs": int(net.n_inputs),
            "layers": [[int(layer.units), layer.activation] for layer in net.layers],
            "dtype": net.dtype.name, "engine": net.engine,
            "device": None if device is None else str(device)}


def build_network(arch, seed=0, params=None):
    """A new Network of architecture ``arch``: its weights drawn from ``seed`` as
    ``Network(..., seed=seed)`` draws them, or set from ``params`` [(W, b), ...] when given
    (copied; the arrays are not kept)."""
    layers = [Dense(units, act) for units, act in arch["layers"]]
    net = Network(arch["n_inputs"], layers, seed=seed, dtype=arch["dtype"],
                  engine=arch["engine"], device=arch["device"])
    return net if params is None else net.set_parameters(params)


def build_optimizer(optimizer, hyper):
    """A fresh optimizer: ``optimizer`` = {"kind": registry name, "config": its
    ``config()``}, with the hyperparameters ``hyper`` (a dict) on top."""
    return OPTIMIZERS[optimizer["kind"]](**{**optimizer["config"], **hyper})


def _train_group(nets, opts, X, y, loss, plan, tick=None):
    """Train a group of runs that share their data, batches and shuffling order.

    nets   list of R Networks of one architecture (each its own weights), trained in place
    opts   list of R fresh optimizers of one kind (each its own hyperparameters and state),
           updated in place
    X, y   the training data as ``fit`` takes it (host arrays; not modified)
    loss   the loss name
    plan   ``fit``'s keyword arguments shared by the group: epochs or schedule, batch_size,
           shuffle, seed (the shuffling order, the same for every run of the group),
           validation_data, lr_schedule, momentum_schedule, on_divergence ("stop" or
           "continue")

    tick   None, or called with the run-epochs done as they finish (every epoch of the
           group on the compiled loop, every fit's epochs when it ends otherwise; a run
           that stops counts its remaining epochs): R times the epochs in all

    Returns R Histories, one a run, with ``diverged`` set where a run stopped.

    The contract: run r ends exactly where ``fit(nets[r], X, y, loss, opts[r],
    progress=False, **plan)`` ends (weights, optimizer state and History; bit for bit or
    to 1e-12 relative in float64, to rounding in float32), a diverged run leaves its network
    at its last finite state and does not stop the others. Per-run DivergenceWarnings are
    silenced: the sweep reports divergence once.

    Groups of two or more runs that ``fit`` would train on the compiled loop, with epochs or
    a schedule, per-step lr or momentum schedules, any batch size, shuffling, validation
    data and on_divergence "stop" or "continue", are trained together by
    ``inertia.fused.group.train_group`` (one compiled call a block of epochs, each tile
    of X gathered once for every run; bit for bit each run's fit, or to float32 rounding
    for the float32 groups that train in the vector lanes, ``fused.lanes.applies``).
    Groups of torch-engine
    runs are trained together by ``inertia.sweeps.batched.train_group`` (batched matmuls on
    the networks' device, one step for every run; each run its fit to round-off) under the
    same conditions but per-step schedules, with no limit on the width and no numba needed.
    The fits run one after another for the rest: optimizers without a closed form, layers
    wider than ``fused.MAX_WIDTH`` (NumPy engine), numba missing, single-run groups, and
    INERTIA_SWEEP_FUSED=0.
    """
    hists = _train_fused(nets, opts, X, y, loss, plan, tick)
    if hists is None:
        hists = _train_batched(nets, opts, X, y, loss, plan)
        if hists is not None and tick is not None:
            tick(len(nets) * plan_epochs(plan))
    if hists is not None:
        return hists
    hists = []
    for net, opt in zip(nets, opts):
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", DivergenceWarning)
            hists.append(fit(net, X, y, loss, opt, progress=False, **plan))
        if tick is not None:
            tick(plan_epochs(plan))
    return hists


def plan_epochs(plan):
    """The epochs of every run of ``_train_group``'s (checked) plan: ``epochs``, or the sum
    of the schedule's segments."""
    if plan.get("schedule") is not None:
        return sum(int(ep) for ep, _ in plan["schedule"])
    return int(plan["epochs"])


def _train_fused(nets, opts, X, y, loss, plan, tick=None):
    """The group trained by the multi-run compiled loop, or None where it does not apply
    (see ``_train_group``)."""
    if os.environ.get("INERTIA_SWEEP_FUSED", "1") == "0":
        return None
    try:
        from ..fused.group import train_group
    except ImportError:                 # numba is not installed
        return None
    return train_group(nets, opts, X, y, loss, plan, tick)


def _train_batched(nets, opts, X, y, loss, plan):
    """The group of torch-engine runs trained by batched matmuls
    (``sweeps.batched.train_group``), or None where it does not apply (see
    ``_train_group``); torch is imported only for a torch-engine group."""
    if os.environ.get("INERTIA_SWEEP_FUSED", "1") == "0" or not nets \
            or nets[0].e.name != "torch":
        return None
    from .batched import train_group

    return train_group(nets, opts, X, y, loss, plan)


def run_shard(arch, init, runs, X, y, loss, optimizer, plan, tick=None):
    """Train one shard: runs that share their starting weights and shuffling order.

    arch       ``architecture(net)``
    init       {"seed": s} (weights drawn as ``Network(..., seed=s)``) or {"params": [(W, b),
               ...]} (host arrays, copied into every run's network)
    runs       [(run index, {hyperparameter: value}), ...]
    optimizer  {"kind": ..., "config": ...}: the settings every run starts from
    plan       ``_train_group``'s plan (its seed is the shard's shuffling seed)
    tick       None, or ``_train_group``'s progress callback (in this process only)

    Returns [(run index, record), ...], a record being ``History.to_json()`` plus
    "diverged" (None or [epoch, step, loss]) and "params" [(W, b), ...] of the trained
    network (host arrays)."""
    nets = [build_network(arch, **init) for _ in runs]
    opts = [build_optimizer(optimizer, hyper) for _, hyper in runs]
    hists = _train_group(nets, opts, X, y, loss, plan, tick)
    out = []
    for (k, _), net, hist in zip(runs, nets, hists):
        rec = hist.to_json()
        rec["diverged"] = None if hist.diverged is None else list(hist.diverged)
        rec["params"] = net.parameters()
        out.append((k, rec))
    return out


def history_from(rec):
    """The History of a shard's record."""
    hist = History.from_json(rec)
    if rec["diverged"] is not None:
        epoch, step, value = rec["diverged"]
        hist.diverged = Divergence(int(epoch), int(step), float(value))
    return hist
