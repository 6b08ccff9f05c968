"""A sweep's shards on a Dask cluster: ``client.submit`` of the pure ``runs.run_shard`` (the
architecture and settings JSON-able, the data and weights as arrays; the workers rebuild the
networks and optimizers), ``client.gather`` of the records. dask is imported only here and
only when a cluster is given."""

from __future__ import annotations

from .runs import run_shard


def check(cluster):
    """A one-line error for a cluster argument that is neither None, an address nor a
    Client (nothing is imported or connected here)."""
    if cluster is None or _is_client(cluster):
        return
    if not isinstance(cluster, str) or not cluster.strip():
        raise ValueError(f"cluster must be a Dask scheduler address such as "
                         f"'tcp://host:8786' or a dask.distributed.Client, got {cluster!r}")


def _is_client(obj):
    return all(callable(getattr(obj, m, None)) for m in ("submit", "gather", "nthreads"))


def connect(address):
    """A Client of the scheduler at ``address``: one-line errors when dask is missing or
    the scheduler cannot be reached."""
    try:
        from dask.distributed import Client
    except ImportError:
        raise ImportError("a sweep on a cluster needs dask.distributed: pip install "
                          "'inertia[dask]' (or 'dask[distributed]')") from None
    try:
        return Client(address, timeout="10s")
    except ValueError as ex:                   # an address distributed cannot parse
        raise ValueError(f"cluster={address!r} is not a scheduler address ({ex}): give one "
                         "such as 'tcp://host:8786', or a dask.distributed Client") from None
    except (OSError, TimeoutError) as ex:
        raise ValueError(f"cannot reach the Dask scheduler at {address}: {ex}; start one "
                         "with `dask scheduler` and workers with `dask worker ADDRESS`") \
            from None


def run(cluster, jobs, arch, X, y, loss, opt_spec, shard_done=None):
    """Run ``jobs(slots)`` (the shards for ``slots`` worker threads) on the cluster;
    returns {run index: record}. ``shard_done``: None or called with a shard's runs as
    each shard's records arrive. A Client made here from an address is closed again."""
    from dask.distributed import as_completed

    client = cluster if _is_client(cluster) else connect(cluster)
    try:
        slots = max(1, sum(client.nthreads().values()))
        data = client.scatter([X, y], broadcast=True)
        shards = jobs(slots)
        futures = {client.submit(run_shard, arch, init, runs, data[0], data[1], loss,
                                 opt_spec, plan, pure=False): runs
                   for init, runs, plan in shards}
        records = {}
        for future in as_completed(list(futures)):
            records.update(future.result())
            if shard_done is not None:
                shard_done(futures[future])
        return records
    finally:
        if client is not cluster:
            client.close()
