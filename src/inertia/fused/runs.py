"""The fused loop over several runs at once (``train_runs``): runs that share their data,
batches and row order (one group of a sweep) step together, each tile of the batch gathered
once and then taken through every run's forward pass, loss and backward pass with the
stage functions of ``tiles.py`` (the same arithmetic, in the same order, as one run of
``tiles.train_steps``: every run ends bit for bit where its own call would).

The contract is ``inertia.fused``'s with a leading run axis (R runs) and tile scratch per
slot (ns slots; slot j is the runs j R // ns to (j + 1) R // ns - 1, neighbours, so that
threads share no cache line but at the slots' edges, that one thread steps):

params    (P, V, G, Pb, Vb), each (R, p)
coef      (R, K, 2 L, 8): run r's step s uses coef[r, kinds[s]]
scratch   (Gs (C, R, p), Zs (ns, T * tile_rows), Ds (ns, T * width), xts (ns, T * n_in),
          yts (ns, T * n_out), scales (ns, 1), totals (C, R) float64): C = the number of
          chunks a batch of many tiles is cut into (``runner.CHUNKS``, as for one run)
out       (R, S) float64: run r's batch loss at step s (left as it was after r stopped)
alive     (R,) uint8: 1 for a run that steps; a run that diverges (with ``check``) has its
          P, V put back as ``train_steps`` does, is set to 0 and steps no more
stops     (R,) int64: where each run stopped (S for a run that did not), written

A slot takes its runs through every step of the call on its own: the batch's tiles, chunk
by chunk, each tile gathered once for the slot's runs, then each run's chunk sums in chunk
order and its update. The runs never meet, so with ``parallel`` the slots run on numba's
threads (one fork and join a call, not a step: a thread the system pauses holds up one
slot, handed out one at a time) and each run's numbers are those of one thread, on any
number of threads. Returns nothing; ``alive`` and ``stops`` say what happened.
"""

from __future__ import annotations

import numpy as np
from numba import njit, prange

from .fpenv import flush, restore
from .tiles import (_JIT, TILE, _backward, _forward, _gather, _layout, _loss, _restore,
                    _shift_all, _update_all, batch_loss)


@njit(**_JIT)
def _tiles_runs(data, net, layout, base, lo, hi, m, P, G, alive, tile, totals, r0, r1):
    """Rows lo:hi of the batch order[base:base + m], tile by tile: the tile gathered once,
    then forward, loss, backward of every live run r in r0:r1, its gradient added into G[r]
    and its loss terms' sum into totals[r] (zeroed here)."""
    X, Y, order = data
    sizes, acts, loss_code, fast = net
    wofs, bofs, zrow = layout
    Z, D, xt, yt, scale = tile
    L = sizes.shape[0] - 1
    k_out = Y.shape[1]
    for r in range(r0, r1):
        totals[r] = 0.0
    for t0 in range(lo, hi, TILE):
        t = min(TILE, hi - t0)
        _gather(X, Y, order, base, t0, t, xt, yt)
        zo = zrow[L - 1] * t
        n_el = k_out * t
        for r in range(r0, r1):
            if alive[r] == 0:
                continue
            Pr = P[r]
            _forward(sizes, acts, fast, Pr, wofs, bofs, zrow, xt, Z, t)
            totals[r] = _loss(net, m, Z[zo:zo + n_el], D[zo:zo + n_el], yt, k_out, t, scale,
                              totals[r])
            _backward(sizes, acts, Pr, G[r], wofs, bofs, zrow, xt, Z, D, t)


@njit(inline="always", **_JIT)
def _chunk_bounds(m, C, c):
    """(nc, lo, hi): a batch of m rows is cut into nc = min(C, tiles) chunks of whole tiles
    as ``tiles._batch_gradient`` cuts it; chunk c is its rows lo:hi."""
    nt = (m + TILE - 1) // TILE
    nc = min(C, nt)
    return nc, min((c * nt // nc) * TILE, m), min(((c + 1) * nt // nc) * TILE, m)


@njit(inline="always", **_JIT)
def _sum_chunks(r0, r1, nc, G, Gs, totals, alive):
    """With nc > 1 chunks: G[r] := the chunks' sums Gs[c, r] and totals[0, r] := their loss
    terms' totals[c, r], added up in chunk order, for the live runs r in r0:r1."""
    if nc == 1:
        return
    p = G.shape[1]
    for r in range(r0, r1):
        if alive[r] == 0:
            continue
        total = 0.0
        for c in range(nc):
            total += totals[c, r]
        totals[0, r] = total
        g = G[r]
        for i in range(p):
            g[i] = Gs[0, r, i]
        for c in range(1, nc):
            gc = Gs[c, r]
            for i in range(p):
                g[i] += gc[i]


@njit(**_JIT)
def _slot_gradients(r0, r1, data, net, layout, base, m, P, G, alive, Gs, totals, tile):
    """G[r] := the gradient of the batch order[base:base + m] at P[r] and totals[0, r] its
    loss terms' sum, for the live runs r in r0:r1: chunk c's sums (``_chunk_bounds``) in
    Gs[c, r], totals[c, r], then added up in chunk order (one chunk: straight into G)."""
    p = P.shape[1]
    nc = _chunk_bounds(m, Gs.shape[0], 0)[0]
    for c in range(nc):
        g = G if nc == 1 else Gs[c]
        for r in range(r0, r1):
            if alive[r]:
                gr = g[r]
                for i in range(p):
                    gr[i] = 0
        lo, hi = _chunk_bounds(m, Gs.shape[0], c)[1:]
        _tiles_runs(data, net, layout, base, lo, hi, m, P, g, alive, tile, totals[c], r0, r1)
    _sum_chunks(r0, r1, nc, G, Gs, totals, alive)


@njit(inline="always", **_JIT)
def _before_gradient(r0, r1, s, plan, net, layout, params, alive):
    """Step s's look-ahead shift of the live runs r in r0:r1; returns how many are live."""
    kinds, coef = plan[2], plan[3]
    P, V = params[0], params[1]
    wofs, bofs = layout[0], layout[1]
    live = 0
    for r in range(r0, r1):
        if alive[r]:
            live += 1
            _shift_all(P[r], V[r], coef[r, kinds[s]], net[0], wofs, bofs, 1.0)
    return live


@njit(inline="always", **_JIT)
def _after_gradient(r0, r1, s, data, plan, net, layout, params, totals, out, check, alive,
                    stops):
    """Step s's end for the live runs r in r0:r1, their gradients in G[r] and loss terms'
    sums in totals[0, r]: the batch loss into out[r, s], the divergence check, the shift
    back, the one-step-back copy and the update (as ``tiles._steps``)."""
    starts, counts, kinds, coef = plan
    sizes, loss_code = net[0], net[2]
    P, V, G, Pb, Vb = params
    wofs, bofs = layout[0], layout[1]
    k_out = data[1].shape[1]
    m = counts[s]
    p = P.shape[1]
    for r in range(r0, r1):
        if alive[r] == 0:
            continue
        out[r, s] = batch_loss(loss_code, totals[0, r], m, k_out)
        if check and not np.isfinite(out[r, s]):
            _restore(P[r], V[r], Pb[r], Vb[r], p)
            alive[r] = 0
            stops[r] = s
            continue
        c = coef[r, kinds[s]]
        _shift_all(P[r], V[r], c, sizes, wofs, bofs, -1.0)
        _restore(Pb[r], Vb[r], P[r], V[r], p)     # the one-step-back copy, then the update
        chk = _update_all((Pb[r], Vb[r], G[r], P[r], V[r]), c, sizes, wofs, bofs)
        if check and not np.isfinite(chk):
            _restore(P[r], V[r], Pb[r], Vb[r], p)
            alive[r] = 0
            stops[r] = s


@njit(**_JIT)
def _train_slot(j, ns, data, plan, net, layout, params, scratch, out, check, alive, stops):
    """Every step of slot j's runs, j R // ns to (j + 1) R // ns (the module's docstring),
    with its tile scratch."""
    R = params[0].shape[0]
    train_range(j * R // ns, (j + 1) * R // ns, j, data, plan, net, layout, params, scratch,
                out, check, alive, stops)


@njit(**_JIT)
def train_range(r0, r1, j, data, plan, net, layout, params, scratch, out, check, alive,
                stops):
    """Every step of the runs r0:r1 with the tile scratch of slot j: the step's stages are
    tiles.py's (also the lane kernel's way with the runs its lane groups leave over)."""
    P, G = params[0], params[2]
    Gs, Zs, Ds, xts, yts, scales, totals = scratch[:7]
    tile = (Zs[j], Ds[j], xts[j], yts[j], scales[j])
    starts, counts = plan[0], plan[1]
    for s in range(starts.shape[0]):
        if _before_gradient(r0, r1, s, plan, net, layout, params, alive) == 0:
            return
        _slot_gradients(r0, r1, data, net, layout, starts[s], counts[s], P, G, alive, Gs,
                        totals, tile)
        _after_gradient(r0, r1, s, data, plan, net, layout, params, totals, out, check,
                        alive, stops)


@njit(parallel=True, **_JIT)
def _slots_parallel(ns, data, plan, net, layout, params, scratch, out, check, alive, stops):
    """The slots on numba's threads (the caller sets numba's chunk size to 1: a slot at a
    time to whichever thread is free)."""
    for j in prange(ns):
        old = flush()                   # this thread's state (``fpenv``)
        _train_slot(j, ns, data, plan, net, layout, params, scratch, out, check, alive, stops)
        restore(old)


@njit(**_JIT)
def train_runs(data, plan, net, params, scratch, out, parallel, check, alive, stops):
    """Run len(starts) steps of every live run (the contract: this module's docstring):
    on one thread one slot of all the runs (each tile gathered once), with ``parallel``
    the Zs.shape[0] slots on numba's threads; subnormals flushed to zero (``fpenv``)."""
    layout = _layout(net[0], net[1])
    R = params[0].shape[0]
    S = plan[0].shape[0]
    for r in range(R):
        stops[r] = S
    old = flush()
    if parallel:
        ns = min(scratch[1].shape[0], R)
        _slots_parallel(ns, data, plan, net, layout, params, scratch, out, check, alive,
                        stops)
    else:
        _train_slot(0, 1, data, plan, net, layout, params, scratch, out, check, alive, stops)
    restore(old)
