"""Runs in the vector lanes: the multi-run kernel for groups of at least ``LANES`` float32
runs (``train_lanes``), eight runs' numbers side by side in every array of a step.

``runs.train_runs`` takes each run through ``tiles.py``'s stages one after another, with the
rows innermost: its runs end bit for bit where their fits do, and a sweep gains over the
fits only the shared shuffles, gathers and calls. Here the run axis is innermost instead:
the parameters of lane group g (runs 8 g to 8 g + 7) are laid out [parameter][lane], a
tile's activations [feature][row][lane], and every operation acts on the eight lanes at
once, each lane doing its run's arithmetic. Each run's numbers do not depend on the other
runs of its group, on the groups or on the thread count; they equal its fit's to rounding
(the rows' gradient sums are added in another order): what the sweep issue asks of float32.
Measured on W6's 4-8-8-1 network at batch 64, one thread: 32 ns a run-row against 41 for
``train_runs`` (``benchmarks/lanes.py``).

The lanes are written out as 8-tuples (``_ld``, ``_st``, ``_fma``, ...): straight-line
scalar code that LLVM's SLP vectorizer turns into vector instructions. numba runs LLVM
without it unless ``numba.config.SLP_VECTORIZE`` is set, so ``train_lanes`` compiles this
module's kernel with it set (and numba's compiler lock held); nothing else is compiled with
it, and the row-inner kernels keep their bits. Activations and softmax are ``tiles.py``'s
(element-wise over a lane tile); the losses' sums are kept per lane.

The contract is ``runs.train_runs``'s, the scratch tuple going on with the lane scratch
(Pl (NG, 8 p), Gl (NG, 8 p), ltot (NG, 8) float64, Zl (ns, 8 LT rows),
Dl (ns, 8 LT rows), xl (ns, 8 LT n_in), yl (ns, 8 LT n_out)), NG = ceil(R / 8) lane groups,
ns slots each of whole groups (``lane_scratch``). A group's lanes past R copy its first run
and are not read back.
"""

from __future__ import annotations

import threading

import numpy as np
from numba import njit, prange

from .fpenv import flush, restore
from .runs import _after_gradient, _before_gradient, _chunk_bounds, _sum_chunks
from .tiles import _JIT, TILE, _activate, _derivative, _layout, _softmax, tile_rows

LANES = 8
LT = 64           # rows of a lane tile: 8 features x 64 rows x 8 lanes of float32 is 16 KB
_INLINE = dict(inline="always", **_JIT)


@njit(**_INLINE)
def _ld(a, i):
    v = a[i:i + 8]
    return (v[0], v[1], v[2], v[3], v[4], v[5], v[6], v[7])


@njit(**_INLINE)
def _st(a, i, x):
    v = a[i:i + 8]
    v[0], v[1], v[2], v[3] = x[0], x[1], x[2], x[3]
    v[4], v[5], v[6], v[7] = x[4], x[5], x[6], x[7]


@njit(**_INLINE)
def _fma(c, w, x):
    return (c[0] + w[0] * x[0], c[1] + w[1] * x[1], c[2] + w[2] * x[2], c[3] + w[3] * x[3],
            c[4] + w[4] * x[4], c[5] + w[5] * x[5], c[6] + w[6] * x[6], c[7] + w[7] * x[7])


@njit(**_INLINE)
def _add(c, x):
    return (c[0] + x[0], c[1] + x[1], c[2] + x[2], c[3] + x[3],
            c[4] + x[4], c[5] + x[5], c[6] + x[6], c[7] + x[7])


@njit(**_INLINE)
def _zero(a):
    z = a.dtype.type(0)
    return (z, z, z, z, z, z, z, z)


@njit(**_JIT)
def _matmul(y, yo, ny, x, xo, nx, t, P, po, rs, cs, bo):
    """y[yo:] (ny, t, 8) = M x + c for x[xo:] (nx, t, 8), M[i, j] the 8 lanes at
    P[8 (po + i rs + j cs):], c those at P[8 (bo + i):] (bo < 0: c = 0): two rows of y and
    four of x a pass (loads first, sums in memory), the first pass writing y."""
    t8 = 8 * t
    i = 0
    while i < ny:
        i1 = i + 1 if i + 1 < ny else i       # one row left: the pass does it twice
        c0 = _ld(P, 8 * (bo + i)) if bo >= 0 else _zero(P)
        c1 = _ld(P, 8 * (bo + i1)) if bo >= 0 else _zero(P)
        y0 = yo + i * t8
        y1 = yo + i1 * t8
        j = 0
        while j < nx:
            a = 8 * (po + i * rs + j * cs)
            b = 8 * (po + i1 * rs + j * cs)
            q = xo + j * t8
            if j + 4 <= nx:
                w0, w1 = _ld(P, a), _ld(P, a + 8 * cs)
                w2, w3 = _ld(P, a + 16 * cs), _ld(P, a + 24 * cs)
                v0, v1 = _ld(P, b), _ld(P, b + 8 * cs)
                v2, v3 = _ld(P, b + 16 * cs), _ld(P, b + 24 * cs)
                for r in range(t):
                    e = 8 * r
                    a0, a1 = _ld(x, q + e), _ld(x, q + t8 + e)
                    a2, a3 = _ld(x, q + 2 * t8 + e), _ld(x, q + 3 * t8 + e)
                    s0 = c0 if j == 0 else _ld(y, y0 + e)
                    s1 = c1 if j == 0 else _ld(y, y1 + e)
                    s0 = _fma(_fma(_fma(_fma(s0, w0, a0), w1, a1), w2, a2), w3, a3)
                    s1 = _fma(_fma(_fma(_fma(s1, v0, a0), v1, a1), v2, a2), v3, a3)
                    _st(y, y0 + e, s0)
                    _st(y, y1 + e, s1)
                j += 4
            else:
                w0, v0 = _ld(P, a), _ld(P, b)
                for r in range(t):
                    e = 8 * r
                    a0 = _ld(x, q + e)
                    s0 = c0 if j == 0 else _ld(y, y0 + e)
                    s1 = c1 if j == 0 else _ld(y, y1 + e)
                    _st(y, y0 + e, _fma(s0, w0, a0))
                    _st(y, y1 + e, _fma(s1, v0, a0))
                j += 1
        i += 2


@njit(**_JIT)
def _grad(G, wo, bo, d, do, x, xo, nin, nout, t):
    """G[8 wo:] (nout, nin, 8) += sum over the t rows of d[j] x[k], G[8 bo:] (nout, 8) +=
    the rows' sums of d[j], for the tiles d[do:] (nout, t, 8), x[xo:] (nin, t, 8): row by
    row, two rows of d and four of x a block, the sums in G (loads first)."""
    t8 = 8 * t
    for r in range(t):
        e = 8 * r
        j = 0
        while j < nout:
            two = j + 1 < nout
            j1 = j + 1 if two else j
            a, b = _ld(d, do + j * t8 + e), _ld(d, do + j1 * t8 + e)
            _st(G, 8 * (bo + j), _add(_ld(G, 8 * (bo + j)), a))
            if two:
                _st(G, 8 * (bo + j1), _add(_ld(G, 8 * (bo + j1)), b))
            k = 0
            while k < nin:
                g0 = 8 * (wo + j * nin + k)
                g1 = 8 * (wo + j1 * nin + k)
                q = xo + k * t8 + e
                if k + 4 <= nin:
                    e0, e1 = _ld(x, q), _ld(x, q + t8)
                    e2, e3 = _ld(x, q + 2 * t8), _ld(x, q + 3 * t8)
                    h0, h1 = _ld(G, g0), _ld(G, g0 + 8)
                    h2, h3 = _ld(G, g0 + 16), _ld(G, g0 + 24)
                    _st(G, g0, _fma(h0, a, e0))
                    _st(G, g0 + 8, _fma(h1, a, e1))
                    _st(G, g0 + 16, _fma(h2, a, e2))
                    _st(G, g0 + 24, _fma(h3, a, e3))
                    if two:
                        h0, h1 = _ld(G, g1), _ld(G, g1 + 8)
                        h2, h3 = _ld(G, g1 + 16), _ld(G, g1 + 24)
                        _st(G, g1, _fma(h0, b, e0))
                        _st(G, g1 + 8, _fma(h1, b, e1))
                        _st(G, g1 + 16, _fma(h2, b, e2))
                        _st(G, g1 + 24, _fma(h3, b, e3))
                    k += 4
                else:
                    e0 = _ld(x, q)
                    h0 = _ld(G, g0)
                    _st(G, g0, _fma(h0, a, e0))
                    if two:
                        h1 = _ld(G, g1)
                        _st(G, g1, _fma(h1, b, e0))
                    k += 1
            j += 2


@njit(**_INLINE)
def _gather(X, Y, order, base, t0, t, xt, yt):
    """The tile's rows order[base + t0:][:t], each value copied into the 8 lanes of its
    (feature, row): xt (n_in, t, 8), yt (n_out, t, 8)."""
    for r in range(t):
        row = order[base + t0 + r]
        for k in range(X.shape[1]):
            v = X[row, k]
            _st(xt, 8 * (k * t + r), (v, v, v, v, v, v, v, v))
        for k in range(Y.shape[1]):
            v = Y[row, k]
            _st(yt, 8 * (k * t + r), (v, v, v, v, v, v, v, v))


@njit(**_INLINE)
def _forward(sizes, acts, fast, P, wofs, bofs, zrow, xt, Z, t):
    """``tiles._forward`` in lanes: layer l's tile is Z[8 zrow[l] t:]."""
    L = sizes.shape[0] - 1
    t8 = 8 * t
    for l in range(L):
        nin = sizes[l]
        nout = sizes[l + 1]
        zo = zrow[l] * t8
        if l == 0:
            _matmul(Z, zo, nout, xt, 0, nin, t, P, wofs[l], nin, 1, bofs[l])
        else:
            _matmul(Z, zo, nout, Z, zrow[l - 1] * t8, nin, t, P, wofs[l], nin, 1, bofs[l])
        if l < L - 1:
            if zrow[L + l] >= 0:
                Z[zrow[L + l] * t8:zrow[L + l] * t8 + nout * t8] = Z[zo:zo + nout * t8]
            _activate(acts[l], Z[zo:zo + nout * t8], nout * t8, fast)


@njit(**_JIT)
def _loss(net, m, z, d, yt, k_out, t, tot):
    """The output layer of the lane tile (``tiles._loss``'s arithmetic, element by element):
    d := dL/dz of the batch of m rows' mean loss from the logits z, and each lane's loss
    terms' sum added into tot (8,)."""
    acts, loss_code, fast = net[1], net[2], net[3]
    L = acts.shape[0]
    n = k_out * t * 8
    code = int(acts[L - 1, 0])
    T = z.dtype.type
    zero, one = T(0), T(1)
    if code == 4:
        _softmax(z, d, k_out, 8 * t)
    else:
        d[:n] = z[:n]
        _activate(acts[L - 1], d[:n], n, fast)
    if loss_code == 3:
        _cross_entropy_sums(z, yt, k_out, 8 * t, tot)
    elif loss_code == 2:
        for i in range(n):
            zi, yi = z[i], yt[i]
            tot[i & 7] += (max(zi, zero) * (one - yi) + max(-zi, zero) * yi
                           + np.log1p(np.exp(-abs(zi))))
    else:
        for i in range(n):
            e = d[i] - yt[i]
            tot[i & 7] += e * e
    sc = T(2.0 / (m * k_out) if loss_code == 0 else
           (1.0 / m if loss_code in (1, 3) else 1.0 / (m * k_out)))
    for i in range(n):
        ai = d[i]
        e = (ai - yt[i]) * sc
        if loss_code >= 2 or code == 0:
            d[i] = e
        elif code == 1:
            d[i] = e * (ai * (one - ai))
        elif code == 2:
            d[i] = e * (one - ai * ai)
        else:
            d[i] = e if ai > zero else zero


@njit(**_JIT)
def _cross_entropy_sums(z, yt, k_out, c, tot):
    """Each column's (row, lane) sum(y) log(sum exp(z - mx)) + sum y (mx - z) added into its
    lane's tot (``tiles._cross_entropy_loss``'s terms), for z, yt (k_out, c)."""
    for r in range(c):
        mx = z[r]
        for o in range(1, k_out):
            mx = max(mx, z[o * c + r])
        se = z.dtype.type(0)
        sy = se
        ygap = se
        for o in range(k_out):
            gap = mx - z[o * c + r]
            se += np.exp(-gap)
            sy += yt[o * c + r]
            ygap += yt[o * c + r] * gap
        tot[r & 7] += np.log(se) * sy + ygap


@njit(**_INLINE)
def _backward(sizes, acts, P, G, wofs, bofs, zrow, xt, Z, D, t):
    """``tiles._backward`` in lanes."""
    L = sizes.shape[0] - 1
    t8 = 8 * t
    for l in range(L - 1, -1, -1):
        nin = sizes[l]
        nout = sizes[l + 1]
        do = zrow[l] * t8
        if l == 0:
            _grad(G, wofs[l], bofs[l], D, do, xt, 0, nin, nout, t)
        else:
            po = zrow[l - 1] * t8
            _grad(G, wofs[l], bofs[l], D, do, Z, po, nin, nout, t)
            _matmul(D, po, nin, D, do, nout, t, P, wofs[l], 1, nin, -1)
            pz = zrow[L + l - 1] * t8 if zrow[L + l - 1] >= 0 else po
            _derivative(acts[l - 1], Z[po:po + nin * t8], Z[pz:pz + nin * t8],
                        D[po:po + nin * t8], nin * t8)


@njit(**_JIT)
def _transpose_in(P, r0, R, Pl):
    """Pl (p, 8) := the parameters of runs r0 .. r0 + 7 (lanes past R: run r0's)."""
    p = P.shape[1]
    for q in range(8):
        r = r0 + q if r0 + q < R else r0
        src = P[r]
        for i in range(p):
            Pl[8 * i + q] = src[i]


@njit(**_JIT)
def _group_tiles(data, net, layout, base, lo, hi, m, g0, g1, lane, tile, live):
    """Rows lo:hi of the batch order[base:base + m], lane tile by lane tile, gathered once
    for the lane groups g0:g1 with a live run (live[g]): forward, loss, backward of each,
    its gradient added into Gl[g] and its lanes' loss terms into ltot[g]."""
    X, Y, order = data
    sizes, acts, loss_code, fast = net
    wofs, bofs, zrow = layout
    Pl, Gl, ltot = lane[0], lane[1], lane[2]
    Z, D, xt, yt = tile
    L = sizes.shape[0] - 1
    k_out = Y.shape[1]
    for t0 in range(lo, hi, LT):
        t = min(LT, hi - t0)
        _gather(X, Y, order, base, t0, t, xt, yt)
        zo = zrow[L - 1] * 8 * t
        n = 8 * k_out * t
        for g in range(g0, g1):
            if live[g]:
                _forward(sizes, acts, fast, Pl[g], wofs, bofs, zrow, xt, Z, t)
                _loss(net, m, Z[zo:zo + n], D[zo:zo + n], yt, k_out, t, ltot[g])
                _backward(sizes, acts, Pl[g], Gl[g], wofs, bofs, zrow, xt, Z, D, t)


@njit(**_JIT)
def _slot_gradients(g0, g1, data, net, layout, base, m, P, G, alive, Gs, totals, lane,
                    tile):
    """``runs._slot_gradients`` for the lane groups g0:g1 (runs 8 g0 to 8 g1 - 1, those
    below R): G[r] the gradient of the batch at P[r] and totals[0, r] its loss terms' sum
    for every live run, chunk by chunk (``runs._chunk_bounds``), chunk sums in order."""
    R, p = P.shape
    Pl, Gl, ltot = lane[0], lane[1], lane[2]
    live = np.zeros(g1, dtype=np.uint8)
    for g in range(g0, g1):
        for r in range(8 * g, min(8 * g + 8, R)):
            live[g] |= alive[r]
        if live[g]:
            _transpose_in(P, 8 * g, R, Pl[g])
    nc = _chunk_bounds(m, Gs.shape[0], 0)[0]
    for c in range(nc):
        lo, hi = _chunk_bounds(m, Gs.shape[0], c)[1:]
        for g in range(g0, g1):
            Gl[g][:] = 0
            ltot[g][:] = 0
        _group_tiles(data, net, layout, base, lo, hi, m, g0, g1, lane, tile, live)
        out = G if nc == 1 else Gs[c]
        for g in range(g0, g1):
            for q in range(8):
                r = 8 * g + q
                if r < R and alive[r]:
                    gr = out[r]
                    for i in range(p):
                        gr[i] = Gl[g, 8 * i + q]
                    totals[c, r] = ltot[g, q]
    _sum_chunks(8 * g0, min(8 * g1, R), nc, G, Gs, totals, alive)


@njit(**_JIT)
def _train_slot(j, ns, data, plan, net, layout, params, scratch, out, check, alive, stops):
    """Every step of slot j's lane groups, j NG // ns to (j + 1) NG // ns."""
    P, G = params[0], params[2]
    Gs, totals, lane = scratch[0], scratch[6], scratch[7:]
    tile = (lane[3][j], lane[4][j], lane[5][j], lane[6][j])
    R = P.shape[0]
    NG = lane[0].shape[0]
    g0 = j * NG // ns
    g1 = (j + 1) * NG // ns
    r0, r1 = 8 * g0, min(8 * g1, R)
    starts, counts = plan[0], plan[1]
    for s in range(starts.shape[0]):
        if _before_gradient(r0, r1, s, plan, net, layout, params, alive) == 0:
            return
        _slot_gradients(g0, g1, data, net, layout, starts[s], counts[s], P, G, alive, Gs,
                        totals, lane, tile)
        _after_gradient(r0, r1, s, data, plan, net, layout, params, totals, out, check,
                        alive, stops)


@njit(parallel=True, **_JIT)
def _slots_parallel(ns, data, plan, net, layout, params, scratch, out, check, alive, stops):
    """The slots on numba's threads (``runs._slots_parallel``)."""
    for j in prange(ns):
        old = flush()
        _train_slot(j, ns, data, plan, net, layout, params, scratch, out, check, alive, stops)
        restore(old)


@njit(**_JIT)
def _train_lanes(data, plan, net, params, scratch, out, parallel, check, alive, stops):
    """``runs.train_runs`` with the lane groups' slots (the module's docstring)."""
    layout = _layout(net[0], net[1])
    R = params[0].shape[0]
    S = plan[0].shape[0]
    for r in range(R):
        stops[r] = S
    old = flush()
    if parallel:
        ns = scratch[10].shape[0]
        _slots_parallel(ns, data, plan, net, layout, params, scratch, out, check, alive,
                        stops)
    else:
        _train_slot(0, 1, data, plan, net, layout, params, scratch, out, check, alive, stops)
    restore(old)


_COMPILE = threading.Lock()


def train_lanes(*args):
    """``_train_lanes(*args)``, compiled (or loaded from numba's cache) for these argument
    types with LLVM's SLP vectorizer on (the module's docstring)."""
    from numba import typeof
    from numba.core import config
    from numba.core.compiler_lock import global_compiler_lock

    sig = tuple(typeof(a) for a in args)
    if sig not in _train_lanes.overloads:
        with _COMPILE, global_compiler_lock:
            old = config.SLP_VECTORIZE
            config.SLP_VECTORIZE = 1
            try:
                _train_lanes.compile(sig)
            finally:
                config.SLP_VECTORIZE = old
    _train_lanes(*args)


def lane_scratch(R, p, sizes, acts, ns, dtype):
    """The lane scratch (the module's docstring) for R runs of p parameters, the layer sizes
    and activation table of ``tiles``, ns slots."""
    NG = -(-R // LANES)
    rows = tile_rows(sizes, acts)
    per = LANES * LT
    return (np.zeros((NG, LANES * p), dtype=dtype), np.zeros((NG, LANES * p), dtype=dtype),
            np.zeros((NG, LANES)), np.zeros((ns, per * rows), dtype=dtype),
            np.zeros((ns, per * rows), dtype=dtype), np.zeros((ns, per * sizes[0]), dtype=dtype),
            np.zeros((ns, per * sizes[-1]), dtype=dtype))


assert TILE % LT == 0     # a chunk (whole tiles) is whole lane tiles
