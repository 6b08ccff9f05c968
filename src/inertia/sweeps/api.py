"""``inertia.sweep``: a grid of hyperparameters times seeds, every argument checked before
the first step, the runs grouped into shards that share their starting weights and
shuffling order, trained here or on a Dask cluster."""

from __future__ import annotations

import itertools
import math
import warnings

import numpy as np

from ..data import check_memory
from ..network import check_network
from ..optim.base import Optimizer
from ..training import DivergenceWarning
from ..training.loop import progress_bar
from ..training.plan import make_plan, segment_sets
from . import cluster as cluster_mod
from .result import SweepResult
from .runs import architecture, plan_epochs, run_shard

POLICIES = ("stop", "continue")


def sweep(net, X, y, loss, optimizer, grid, seeds=None, epochs=None, batch_size=None,
          shuffle=True, validation_data=None, on_divergence="stop", schedule=None,
          lr_schedule=None, momentum_schedule=None, cluster=None, progress=True):
    """Train every configuration of ``grid`` for every seed; return a ``SweepResult``.

    grid        {hyperparameter: [values]} (their product) or a list of {hyperparameter:
                value} points; every name must be one of ``optimizer.HYPER``
    optimizer   the settings every run starts from (a fresh copy a run, the grid point's
                values on top; ``optimizer`` itself and its state are neither used nor
                changed)
    seeds       None: every run starts from ``net``'s current weights and shuffles with seed
                0. A list of integers: each seed s draws the initial weights as
                ``Network(..., seed=s)`` does for ``net``'s architecture and shuffles with
                seed s; runs with the same seed share both, so their comparison is fair.
    on_divergence  "stop" (default): a run whose loss or parameters become NaN or infinite
                stops at its last finite state and is masked (NaN after it); the others go
                on; one DivergenceWarning names how many stopped. "continue": train on.
    cluster     None: run here (dask is not imported). A Dask scheduler address
                ("tcp://host:8786") or a ``dask.distributed.Client``: the runs go out as
                shards (runs sharing a seed), one or more per worker thread.

    progress    show a progress bar of the run-epochs done, all runs together, on long
                sweeps in a terminal (never when piped), as ``fit`` does; on a cluster it
                moves as shards finish

    epochs, batch_size, shuffle, validation_data, schedule, lr_schedule, momentum_schedule
    are ``fit``'s. Run k equals ``fit(net_k, X, y, loss, optimizer_k, seed=s_k, ...)`` of its
    configuration and seed. A bad argument raises a one-line ValueError before any training.
    """
    if not isinstance(optimizer, Optimizer):
        raise ValueError(f"optimizer must be an inertia optimizer (inertia.SGD, ...), got "
                         f"{type(optimizer).__name__}")
    check_network(net, "sweep")
    seed_list = check_seeds(seeds)
    if cluster is None:                 # on a cluster the runs live in the workers' memory
        check_size(net, grid, len(seed_list), epochs)
    points = check_grid(optimizer, grid)
    check_overridden(points, schedule, lr_schedule, momentum_schedule)
    if on_divergence not in POLICIES:
        raise ValueError(f"on_divergence must be 'stop' or 'continue' in a sweep, got "
                         f"{on_divergence!r} (a diverged run is masked; the others go on)")
    cluster_mod.check(cluster)
    plan = {"epochs": epochs, "batch_size": batch_size, "shuffle": shuffle,
            "validation_data": validation_data, "schedule": schedule,
            "lr_schedule": lr_schedule, "momentum_schedule": momentum_schedule,
            "on_divergence": on_divergence}
    opt_spec = {"kind": optimizer.kind, "config": optimizer.config()}
    check_runs(net, X, y, loss, opt_spec, points, plan)
    configs = [{**p, "seed": s} for p in points for s in seed_list]
    shards = seed_shards(configs, seeds is not None)
    arch = architecture(net)
    start = None if seeds is not None else net.parameters()

    def jobs(slots):
        return [shard_args(s, ks, configs, start, plan) for s, ks in split_shards(shards, slots)]

    epochs_each = plan_epochs(plan)
    bar = progress_bar(len(configs) * epochs_each, unit="run-epoch") if progress else None
    try:
        if cluster is not None:
            shard_done = None if bar is None else \
                (lambda runs: bar.update(len(runs) * epochs_each))
            records = cluster_mod.run(cluster, jobs, arch, X, y, loss, opt_spec, shard_done)
        else:
            records = local_run(jobs(1), arch, X, y, loss, opt_spec,
                                None if bar is None else bar.update)
    finally:
        if bar is not None:
            bar.close()
    result = SweepResult(configs, records, arch, loss, list(points[0]) if points else [],
                         validation_data is not None, seeds is not None)
    stopped = int(sum(d is not None for d in result.diverged))
    if stopped:
        warnings.warn(f"{stopped} of {len(configs)} runs diverged and stopped at their last "
                      "finite state (SweepResult.diverged says where)", DivergenceWarning,
                      stacklevel=2)
    return result


# a run's Python objects (network, optimizer, History, record), about 127 KB measured for a
# 21-parameter network over one epoch; its arrays are counted apart
RUN_BYTES = 128 * 1024


def check_size(net, grid, n_seeds, epochs):
    """Refuse, before the grid's points are checked one by one, a sweep whose runs the
    machine's memory cannot hold (a grid of a million points took minutes of checks on
    its way to needing about 120 GB). A grid of another shape is left to ``check_grid``."""
    try:
        points = math.prod(len(v) for v in grid.values()) if isinstance(grid, dict) \
            else len(grid)
    except TypeError:
        return
    runs = points * n_seeds
    epochs = epochs if isinstance(epochs, (int, np.integer)) and epochs > 0 else 0
    per_run = (RUN_BYTES + 6 * int(net.flat.shape[0]) * net.dtype.itemsize
               + 112 * int(epochs))         # P, V, G, kept copies, result; 3 records an epoch
    check_memory(runs * per_run, f"the sweep's {runs:,} runs")


def check_grid(optimizer, grid):
    """The grid's points as a list of {name: value} dicts, each checked by the optimizer."""
    name = type(optimizer).__name__
    if isinstance(grid, dict):
        if not grid:
            raise ValueError("grid is empty: give e.g. {'lr': [0.01, 0.1], 'momentum': [0, 0.9]}")
        axes = {}
        for key, values in grid.items():
            if isinstance(values, (str, bytes, dict)) or not hasattr(values, "__len__") \
                    or getattr(values, "ndim", 1) == 0 or len(values) == 0:
                raise ValueError(f"grid[{key!r}] must be a non-empty list of values, e.g. "
                                 f"[0.01, 0.1], got {values!r}")
            axes[key] = [_plain(v) for v in list(values)]
        points = [dict(zip(axes, combo)) for combo in itertools.product(*axes.values())]
    elif isinstance(grid, (list, tuple)) and grid and all(isinstance(p, dict) for p in grid):
        points = [{k: _plain(v) for k, v in p.items()} for p in grid]
        if any(set(p) != set(points[0]) for p in points):
            raise ValueError("every point of a grid list must name the same hyperparameters")
    else:
        got = type(grid).__name__
        if isinstance(grid, (list, tuple)):
            other = [type(p).__name__ for p in grid if not isinstance(p, dict)]
            got = f"a list holding {other[0]}" if other else "an empty list"
        raise ValueError("grid must be a dict {hyperparameter: [values]} or a list of "
                         f"{{hyperparameter: value}} points, got {got}")
    unknown = [k for k in points[0] if k not in optimizer.HYPER]
    if unknown:
        raise ValueError(f"grid names {', '.join(map(repr, unknown))}, not a hyperparameter "
                         f"of {name}: use {', '.join(optimizer.HYPER)}")
    seen = set()
    for p in points:
        key = repr(sorted((k, _same_value(v)) for k, v in p.items()))
        if key in seen:
            raise ValueError(f"grid point {p} is given twice: give each point once (a run "
                             "is trained once a point and seed)")
        seen.add(key)
        try:
            h = optimizer.check(**p)
        except ValueError as ex:
            raise ValueError(f"grid point {p}: {ex}") from None
        auto = [k for k in optimizer.HYPER if isinstance(h[k], str) and h[k] == "auto"]
        if auto:
            raise ValueError(f"a sweep trains numbers, not {auto[0]}=\"auto\" (grid point "
                             f"{p}): give {auto[0]} values in the grid or the optimizer, or "
                             "let inertia.tune choose lr and momentum")
    return points


def check_overridden(points, schedule, lr_schedule, momentum_schedule):
    """A ValueError when a schedule sets a hyperparameter the grid varies: every run would
    train the schedule's values, and the grid's axis would compare identical runs."""
    by = {"lr": lr_schedule, "momentum": momentum_schedule}
    for key in points[0]:
        if by.get(key) is not None:
            raise ValueError(f"the grid varies {key} and {key}_schedule sets it at every step: "
                             "drop one of them")
        if key in (segment_sets(schedule) or [{}])[0]:
            raise ValueError(f"the grid varies {key} and schedule's first segment sets it, "
                             f"so no run would train the grid's value: drop {key} from the "
                             "grid or from that segment")


def _same_value(v):
    """A grid value as one key for every spelling of it: 1 and 1.0, [a, b] and (a, b)."""
    if isinstance(v, (list, tuple)):
        return tuple(_same_value(x) for x in v)
    if isinstance(v, (int, float, np.number)) and not isinstance(v, (bool, np.bool_)):
        return float(v)
    return v


def _plain(v):
    """A NumPy scalar as the Python value (configs stay JSON-able)."""
    return v.item() if isinstance(v, np.generic) else v


def check_seeds(seeds):
    """[None] for seeds=None (one start for all, shuffling seed 0), else the integers."""
    if seeds is None:
        return [None]
    if isinstance(seeds, (str, bytes)) or np.ndim(seeds) != 1 or len(seeds) == 0:
        raise ValueError(f"seeds must be None or a non-empty list of integers such as "
                         f"range(3), got {seeds!r}")
    out = []
    for s in seeds:
        if not isinstance(s, (int, np.integer)) or isinstance(s, bool) or s < 0:
            raise ValueError(f"seeds must be non-negative integers, got {s!r}")
        out.append(int(s))
    if len(set(out)) != len(out):
        raise ValueError(f"seeds has repeats ({out}): give each seed once")
    return out


def check_runs(net, X, y, loss, opt_spec, points, plan):
    """``fit``'s own checks for every grid point (data, epochs, schedules against each
    point's values), before any run starts."""
    from .runs import build_optimizer

    cache = {}                  # the data checks and the schedules' values, each done once
    for p in points:
        opt = build_optimizer(opt_spec, p)
        try:
            make_plan(net, X, y, loss, opt, plan["epochs"], plan["batch_size"],
                      plan["shuffle"], 0, plan["schedule"], plan["validation_data"], False,
                      plan["lr_schedule"], plan["momentum_schedule"], None,
                      plan["on_divergence"], None, 1, schedule_cache=cache)
        except ValueError as ex:
            if len(points) == 1 or str(ex) == _first_error(net, X, y, loss, opt_spec, plan):
                raise
            raise ValueError(f"grid point {p}: {ex}") from None


def _first_error(net, X, y, loss, opt_spec, plan):
    """The error the settings give without a grid point (None: they are fine), so that an
    error of the data or epochs is not blamed on a grid point."""
    from .runs import build_optimizer

    try:
        make_plan(net, X, y, loss, build_optimizer(opt_spec, {}), plan["epochs"],
                  plan["batch_size"], plan["shuffle"], 0, plan["schedule"],
                  plan["validation_data"], False, plan["lr_schedule"],
                  plan["momentum_schedule"], None, plan["on_divergence"], None, 1)
    except ValueError as ex:
        return str(ex)
    return None


def seed_shards(configs, seeded):
    """The runs grouped by seed: [(shuffling seed, [run indices])], in order."""
    groups = {}
    for k, c in enumerate(configs):
        groups.setdefault(c["seed"], []).append(k)
    return [((s if seeded else 0), ks) for s, ks in groups.items()]


def split_shards(shards, slots):
    """Split seed groups so that there are about ``slots`` shards (one a worker thread) where
    the runs allow; a shard never mixes seeds."""
    parts = max(1, math.ceil(slots / max(1, len(shards))))
    out = []
    for seed, ks in shards:
        m = min(parts, len(ks))
        out.extend((seed, list(chunk)) for chunk in np.array_split(np.asarray(ks), m))
    return [(s, [int(k) for k in ks]) for s, ks in out]


def shard_args(seed, ks, configs, start, plan):
    """run_shard's init, runs and plan for the runs ``ks`` that shuffle with ``seed``."""
    init = {"params": start} if start is not None else {"seed": seed}
    runs = [(k, {n: v for n, v in configs[k].items() if n != "seed"}) for k in ks]
    return init, runs, {**plan, "seed": seed}


def local_run(jobs, arch, X, y, loss, opt_spec, tick=None):
    """Every shard in this process, one after another: {run index: record}; ``tick``:
    None or called with the run-epochs done as they finish."""
    records = {}
    for init, runs, plan in jobs:
        records.update(run_shard(arch, init, runs, X, y, loss, opt_spec, plan, tick))
    return records
