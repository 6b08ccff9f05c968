"""Sweeps: many configurations (a grid of hyperparameters times seeds) trained as one job.

    api.py      ``sweep``: every argument checked before the first step; the runs; the shards
    runs.py     the pure shard function (arrays and JSON-able settings in, arrays out) and
                ``_train_group``, the one place a group of runs is trained
    cluster.py  shards on a Dask cluster (dask is imported only there, only when asked)
    result.py   ``SweepResult``: the loss table, the best run, networks, histories, frames
    draw.py     the heatmap over two grid axes and the loss curves (matplotlib, lazily)

The package is named ``sweeps`` so that ``inertia.sweep`` stays the function.
"""

from .api import sweep
from .result import SweepResult
from .runs import _train_group

__all__ = ["sweep", "SweepResult"]
