"""The fused loop over several runs at once (``train_runs``): runs that share their data,
batches and row order (one group of a sweep) step together, each tile of the batch gathered
once and then taken through every live run's forward pass, loss and backward pass with the
stage functions of ``tiles.py`` (the same arithmetic, in the same order, as one run of
``tiles.train_steps``: every run ends bit for bit where its own call would).

The contract is ``inertia.fused``'s with a leading run axis (R runs):

params    (P, V, G, Pb, Vb), each (R, p)
coef      (R, K, 2 L, 8): run r's step s uses coef[r, kinds[s]]
scratch   (Gs (C, R, p), Zs (C, T * tile_rows), Ds (C, T * width), xts (C, T * n_in),
          yts (C, T * n_out), scales (C, 1), totals (C, R) float64)
out       (R, S) float64: run r's batch loss at step s (left as it was after r stopped)
alive     (R,) uint8: 1 for a run that steps; a run that diverges (with ``check``) has its
          P, V put back as ``train_steps`` does, is set to 0 and steps no more
stops     (R,) int64: where each run stopped (S for a run that did not), written

With ``parallel``, the chunks of a batch of several tiles run on numba's threads as in
``train_steps`` (each chunk takes its tiles through every run), summed in chunk order; a
batch of one tile shares the runs among the threads instead (each run's sums are its own).
Either way: the same numbers on any number of threads.
Returns nothing; ``alive`` and ``stops`` say what happened.
"""

from __future__ import annotations

import numpy as np
from numba import njit, prange

from .tiles import (_JIT, TILE, _backward, _forward, _gather, _layout, _loss, _restore,
                    _shift_all, _update_all)


@njit(**_JIT)
def _tiles_runs(data, net, layout, base, lo, hi, m, P, G, alive, tile, totals, r0, dr):
    """Rows lo:hi of the batch order[base:base + m], tile by tile: the tile gathered once,
    then forward, loss, backward of every live run r of r0, r0 + dr, ..., its gradient
    added into G[r] and its loss terms' sum into totals[r] (zeroed here)."""
    X, Y, order = data
    sizes, acts, loss_code, fast = net
    wofs, bofs, zrow = layout
    Z, D, xt, yt, scale = tile
    L = sizes.shape[0] - 1
    k_out = Y.shape[1]
    R = P.shape[0]
    for r in range(r0, R, dr):
        totals[r] = 0.0
    for t0 in range(lo, hi, TILE):
        t = min(TILE, hi - t0)
        _gather(X, Y, order, base, t0, t, xt, yt)
        zo = zrow[L - 1] * t
        n_el = k_out * t
        for r in range(r0, R, dr):
            if alive[r] == 0:
                continue
            Pr = P[r]
            _forward(sizes, acts, fast, Pr, wofs, bofs, zrow, xt, Z, t)
            totals[r] = _loss(net, m, Z[zo:zo + n_el], D[zo:zo + n_el], yt, k_out, t, scale,
                              totals[r])
            _backward(sizes, acts, Pr, G[r], wofs, bofs, zrow, xt, Z, D, t)


@njit(**_JIT)
def _chunk_runs(j, nc, data, net, layout, base, m, P, alive, scratch):
    """Chunk j of nc: its tiles through every live run into Gs[j, r], totals[j, r]."""
    Gs, Zs, Ds, xts, yts, scales, totals = scratch
    nt = (m + TILE - 1) // TILE
    lo = min((j * nt // nc) * TILE, m)
    hi = min(((j + 1) * nt // nc) * TILE, m)
    g = Gs[j]
    for r in range(g.shape[0]):
        if alive[r]:
            for i in range(g.shape[1]):
                g[r, i] = 0
    _tiles_runs(data, net, layout, base, lo, hi, m, P, g, alive,
                (Zs[j], Ds[j], xts[j], yts[j], scales[j]), totals[j], 0, 1)


@njit(parallel=True, **_JIT)
def _runs_parallel(ns, data, net, layout, base, m, P, G, alive, scratch):
    """A batch of one tile: the runs shared among ns slots on numba's threads, slot j taking
    runs j, j + ns, ... with its own tile scratch (the tile gathered once a slot), each
    run's gradient straight into G[r] and its loss sum into totals[0, r], as
    ``tiles._batch_gradient`` does for one tile."""
    Gs, Zs, Ds, xts, yts, scales, totals = scratch
    for j in prange(ns):
        for r in range(j, P.shape[0], ns):
            if alive[r]:
                g = G[r]
                for i in range(g.shape[0]):
                    g[i] = 0
        _tiles_runs(data, net, layout, base, 0, m, m, P, G, alive,
                    (Zs[j], Ds[j], xts[j], yts[j], scales[j]), totals[0], j, ns)


@njit(parallel=True, **_JIT)
def _chunks_parallel_runs(nc, data, net, layout, base, m, P, alive, scratch):
    """The chunks on numba's threads (chunk size 1, set by the caller)."""
    for j in prange(nc):
        _chunk_runs(j, nc, data, net, layout, base, m, P, alive, scratch)


@njit(**_JIT)
def _gradients(data, net, layout, base, m, P, G, alive, scratch, parallel):
    """G[r] := the gradient of the batch at P[r] for every live run r, and totals[0, r] its
    loss terms' sum, chunk by chunk in order as ``tiles._batch_gradient`` sums them."""
    Gs, Zs, Ds, xts, yts, scales, totals = scratch
    p = G.shape[1]
    nc = min(Gs.shape[0], (m + TILE - 1) // TILE)
    if parallel and nc == 1 and P.shape[0] > 1:
        _runs_parallel(min(Gs.shape[0], P.shape[0]), data, net, layout, base, m, P, G, alive,
                       scratch)
        return
    if parallel and nc > 1:
        _chunks_parallel_runs(nc, data, net, layout, base, m, P, alive, scratch)
    else:
        for j in range(nc):
            _chunk_runs(j, nc, data, net, layout, base, m, P, alive, scratch)
    for r in range(P.shape[0]):
        if alive[r] == 0:
            continue
        total = 0.0
        for j in range(nc):
            total += totals[j, r]
        totals[0, r] = total
        g = G[r]
        for i in range(p):
            g[i] = Gs[0, r, i]
        for j in range(1, nc):
            gj = Gs[j, r]
            for i in range(p):
                g[i] += gj[i]


@njit(**_JIT)
def train_runs(data, plan, net, params, scratch, out, parallel, check, alive, stops):
    """Run len(starts) steps of every live run (the contract: this module's docstring).
    One function of some 40 lines: the step's stages are tiles.py's."""
    starts, counts, kinds, coef = plan
    sizes, acts, loss_code, fast = net
    P, V, G, Pb, Vb = params
    totals = scratch[6]
    k_out = data[1].shape[1]
    layout = _layout(sizes, acts)
    wofs, bofs, zrow = layout
    R, p = P.shape
    S = starts.shape[0]
    for r in range(R):
        stops[r] = S
    for s in range(S):
        m = counts[s]
        live = 0
        for r in range(R):
            if alive[r]:
                live += 1
                _shift_all(P[r], V[r], coef[r, kinds[s]], sizes, wofs, bofs, 1.0)
        if live == 0:
            return
        _gradients(data, net, layout, starts[s], m, P, G, alive, scratch, parallel)
        for r in range(R):
            if alive[r] == 0:
                continue
            total = totals[0, r]
            if loss_code == 0 or loss_code == 2:
                out[r, s] = total / (m * k_out)
            elif loss_code == 1:
                out[r, s] = total / (2 * m)
            else:
                out[r, s] = total / m
            if check and not np.isfinite(out[r, s]):
                _restore(P[r], V[r], Pb[r], Vb[r], p)
                alive[r] = 0
                stops[r] = s
                continue
            c = coef[r, kinds[s]]
            _shift_all(P[r], V[r], c, sizes, wofs, bofs, -1.0)
            chk = _update_all((P[r], V[r], G[r], Pb[r], Vb[r]), c, sizes, wofs, bofs)
            if check and not np.isfinite(chk):
                _restore(P[r], V[r], Pb[r], Vb[r], p)
                alive[r] = 0
                stops[r] = s
