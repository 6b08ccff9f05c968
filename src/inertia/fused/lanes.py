"""Runs in the vector lanes: the multi-run kernel (``train_lanes``) for sweep groups of
float32 runs (``applies``), eight runs' numbers side by side in every array.

``runs.train_runs`` takes each run through ``tiles.py``'s stages one after another, with the
rows innermost: its runs end bit for bit where their fits do, and a sweep gains over the
fits only the shared shuffles, gathers and calls. Here the run axis is innermost: lane group
g holds runs 8 g to 8 g + 7, its parameters, velocities, one-step-back copies, gradient and
coefficient rows laid out [parameter][lane] for a whole call, a tile's activations
[feature][row][lane], and every operation acts on the eight lanes at once, each lane doing
its run's arithmetic: the forward and backward passes over tiles of ``LT`` rows, the losses'
sums per lane, and the update, look-ahead shift and divergence checks lane by lane
(``tiles._update``'s arithmetic). A run's numbers depend neither on the thread count nor on
the other runs of its group, but for whether it is one of the runs the full lane groups
leave over (below); they equal its fit's to float32 rounding (the rows' gradient sums are
added in another order), as the sweep issue allows for float32.
W6's 4-8-8-1 network, 64 runs at batch 64, ns a run-row of a whole sweep: one thread 16.7
against 33.2 for ``train_runs``, two threads 9.9 against 14.6 (docs/ARCHITECTURE.md).

The lanes are written out as 8-tuples (``_ld``, ``_st``, ``_fma``, ...): straight-line
scalar code that LLVM's SLP vectorizer turns into vector instructions. numba runs LLVM
without it unless ``numba.config.SLP_VECTORIZE`` is set, so ``train_lanes`` compiles this
module's kernel with it set and with the loop vectorizer off (numba's compiler lock held),
after compiling the functions it shares with the row-inner kernels the default way. The
loop vectorizer would vectorize the loops over a tile's rows instead of the lanes, with
gathers and shuffles across the 8-float rows: the gradient sums, whose eight running sums
(two rows of d by four of x) stay in registers across the tile, took 13 ns a run-row with
it and 2.4 without. The loads and stores index with unsigned integers: through a slice,
numba's bound clipping and negative-index wrapping cost more than the arithmetic.

The contract is ``runs.train_runs``'s, the scratch tuple going on with the lane scratch
(``lane_scratch``): Pl, Vl, Pbl, Vbl, Gl (NG, 8 p), Cl (NG, 2 L x 8 x 8) the coefficient
rows, ltot (NG, 8) float64 the loss sums, then per slot Zl, Dl (ns, 8 LT rows), xl
(ns, 8 LT n_in), yl (ns, 8 LT n_out); NG = R // 8 full lane groups, ns slots each of whole
groups. The R mod 8 runs they leave over train the row-inner way (``runs.train_range``) in
a slot of their own, handed out first: a lane group of one run costs what one of eight does
(the race's first rung of 33 configurations: 4 groups and 1 run, 3.7 -> 3.2 plain fits of
wall time for the race). A run that stops is written back at once, the others at the
call's end.
"""

from __future__ import annotations

import threading

import numpy as np
from numba import njit, prange

from .fpenv import flush, restore
from .runs import train_range
from .tiles import (_JIT, _activate, _derivative, _layout, _softmax, batch_loss,
                    cross_entropy_term, tile_rows)

LANES = 8
LT = 64           # rows of a lane tile: 8 features x 64 rows x 8 lanes of float32 is 16 KB
_INLINE = dict(inline="always", **_JIT)


# unsigned indices: numba neither wraps them (negative) nor clips them (as it does a slice's
# bounds), so that each 8-lane load or store is one vector instruction
_U = tuple(np.uint64(k) for k in range(8))


@njit(**_INLINE)
def _ld(a, i):
    u = np.uint64(i)
    return (a[u], a[u + _U[1]], a[u + _U[2]], a[u + _U[3]],
            a[u + _U[4]], a[u + _U[5]], a[u + _U[6]], a[u + _U[7]])


@njit(**_INLINE)
def _st(a, i, x):
    u = np.uint64(i)
    a[u], a[u + _U[1]], a[u + _U[2]], a[u + _U[3]] = x[0], x[1], x[2], x[3]
    a[u + _U[4]], a[u + _U[5]], a[u + _U[6]], a[u + _U[7]] = x[4], x[5], x[6], x[7]


@njit(**_INLINE)
def _fma(c, w, x):
    return (c[0] + w[0] * x[0], c[1] + w[1] * x[1], c[2] + w[2] * x[2], c[3] + w[3] * x[3],
            c[4] + w[4] * x[4], c[5] + w[5] * x[5], c[6] + w[6] * x[6], c[7] + w[7] * x[7])


@njit(**_INLINE)
def _mul(w, x):
    return (w[0] * x[0], w[1] * x[1], w[2] * x[2], w[3] * x[3],
            w[4] * x[4], w[5] * x[5], w[6] * x[6], w[7] * x[7])


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
    the rows' sums of d[j], for the tiles d[do:] (nout, t, 8), x[xo:] (nin, t, 8): two rows
    of d and four of x a pass over the rows, their eight sums (and the two bias sums) held
    in registers across the tile and added in row order; with one row of d left the pass
    does it twice, as ``_matmul`` does."""
    t8 = 8 * t
    j = 0
    while j < nout:
        j1 = j + 1 if j + 1 < nout else j
        p0 = do + j * t8
        p1 = do + j1 * t8
        c0, c1 = _ld(G, 8 * (bo + j)), _ld(G, 8 * (bo + j1))
        k = 0
        while k < nin:
            h = 8 * (wo + j * nin + k)
            u = 8 * (wo + j1 * nin + k)
            q = xo + k * t8
            if k + 4 <= nin:
                h0, h1, h2, h3 = _ld(G, h), _ld(G, h + 8), _ld(G, h + 16), _ld(G, h + 24)
                u0, u1, u2, u3 = _ld(G, u), _ld(G, u + 8), _ld(G, u + 16), _ld(G, u + 24)
                for r in range(t):
                    e = 8 * r
                    a, b = _ld(d, p0 + e), _ld(d, p1 + e)
                    e0, e1 = _ld(x, q + e), _ld(x, q + t8 + e)
                    e2, e3 = _ld(x, q + 2 * t8 + e), _ld(x, q + 3 * t8 + e)
                    h0, h1 = _fma(h0, a, e0), _fma(h1, a, e1)
                    h2, h3 = _fma(h2, a, e2), _fma(h3, a, e3)
                    u0, u1 = _fma(u0, b, e0), _fma(u1, b, e1)
                    u2, u3 = _fma(u2, b, e2), _fma(u3, b, e3)
                    if k == 0:
                        c0, c1 = _add(c0, a), _add(c1, b)
                _st(G, h, h0)
                _st(G, h + 8, h1)
                _st(G, h + 16, h2)
                _st(G, h + 24, h3)
                _st(G, u, u0)
                _st(G, u + 8, u1)
                _st(G, u + 16, u2)
                _st(G, u + 24, u3)
                k += 4
            else:
                h0, u0 = _ld(G, h), _ld(G, u)
                for r in range(t):
                    e = 8 * r
                    a, b = _ld(d, p0 + e), _ld(d, p1 + e)
                    e0 = _ld(x, q + e)
                    h0, u0 = _fma(h0, a, e0), _fma(u0, b, e0)
                    if k == 0:
                        c0, c1 = _add(c0, a), _add(c1, b)
                _st(G, h, h0)
                _st(G, u, u0)
                k += 1
        _st(G, 8 * (bo + j), c0)
        _st(G, 8 * (bo + j1), c1)
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
        tot[r & 7] += cross_entropy_term(z, yt, k_out, c, r)


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
def _transpose_in(P, r0, Pl):
    """Pl (p, 8) := rows r0 .. r0 + 7 of P (R, p)."""
    p = P.shape[1]
    for q in range(8):
        src = P[r0 + q]
        u = np.uint64(q)
        for i in range(p):
            Pl[np.uint64(8 * i) + u] = src[np.uint64(i)]


@njit(**_JIT)
def _lane_out(Pl, q, dst):
    """dst (p,) := lane q of Pl (p, 8)."""
    u = np.uint64(q)
    for i in range(dst.shape[0]):
        dst[np.uint64(i)] = Pl[np.uint64(8 * i) + u]


@njit(**_JIT)
def _lane_back(Pl, Vl, Pbl, Vbl, q):
    """Lane q of Pl, Vl := that of the one-step-back copy Pbl, Vbl."""
    for i in range(q, Pl.shape[0], 8):
        Pl[i] = Pbl[i]
        Vl[i] = Vbl[i]


@njit(**_JIT)
def _coef_lanes(coef, kind, r0, Cl):
    """Cl (2 L, 8 coefficients, 8 lanes) := coef[r, kind] (2 L, 8) of runs r0 .. r0 + 7."""
    for q in range(8):
        c = coef[r0 + q, kind]
        for row in range(c.shape[0]):
            for k in range(8):
                Cl[(row * 8 + k) * 8 + q] = c[row, k]


@njit(**_JIT)
def _shift_range(Pl, Vl, Cl, row, lo, hi, sign):
    """Parameters lo:hi (coefficient row ``row``) to their look-ahead point w + look v
    (sign 1) or back (sign -1) in every lane, unless no lane looks ahead
    (``tiles._shift_all``)."""
    mu = _ld(Cl, (row * 8 + 7) * 8)
    if mu == _zero(Cl):
        return
    if sign < 0:
        mu = (-mu[0], -mu[1], -mu[2], -mu[3], -mu[4], -mu[5], -mu[6], -mu[7])
    for i in range(lo, hi):
        _st(Pl, 8 * i, _fma(_ld(Pl, 8 * i), mu, _ld(Vl, 8 * i)))


@njit(**_JIT)
def _update_range(state, Cl, row, lo, hi):
    """``tiles._update`` in lanes over parameters lo:hi with the coefficient row ``row``:
    w, v read from Pbl, Vbl, w', v' written to Pl, Vl. Returns each lane's sum of 0 w'."""
    Pl, Vl, Pbl, Vbl, Gl = state
    c = (row * 8) * 8
    A, B, C, D = _ld(Cl, c), _ld(Cl, c + 8), _ld(Cl, c + 16), _ld(Cl, c + 24)
    E, F, H = _ld(Cl, c + 32), _ld(Cl, c + 40), _ld(Cl, c + 48)
    zero = _zero(Cl)
    chk = zero
    for i in range(lo, hi):
        e = 8 * i
        vo, w, g = _ld(Vbl, e), _ld(Pbl, e), _ld(Gl, e)
        vn = _fma(_fma(_mul(A, vo), B, g), C, w)
        wn = _fma(_fma(_fma(_mul(D, w), E, vn), F, g), H, vo)
        _st(Pl, e, wn)
        _st(Vl, e, vn)
        chk = _fma(chk, wn, zero)
    return chk


@njit(**_JIT)
def _steps_state(state, Cl, sizes, wofs, bofs, mode):
    """Every layer's weights and biases: mode 1 / -1 the look-ahead shift there and back,
    mode 0 the one-step-back copy and the update (returns each lane's check)."""
    Pl, Vl, Pbl, Vbl = state[0], state[1], state[2], state[3]
    if mode == 0:
        Pbl[:] = Pl
        Vbl[:] = Vl
    chk = _zero(Cl)
    for l in range(sizes.shape[0] - 1):
        for half in range(2):
            lo = wofs[l] if half == 0 else bofs[l]
            hi = bofs[l] if half == 0 else bofs[l] + sizes[l + 1]
            if mode == 0:
                chk = _add(chk, _update_range(state, Cl, 2 * l + half, lo, hi))
            else:
                _shift_range(Pl, Vl, Cl, 2 * l + half, lo, hi, mode)
    return chk


@njit(**_JIT)
def _group_tiles(data, net, layout, base, m, g0, g1, lane, tile, live):
    """The batch order[base:base + m], lane tile by lane tile, gathered once for the lane
    groups g0:g1 with a live run (live[g]): forward, loss, backward of each, its gradient
    in Gl[g] and its lanes' loss terms in ltot[g] (both zeroed here)."""
    X, Y, order = data
    sizes, acts, loss_code, fast = net
    wofs, bofs, zrow = layout
    Pl, Gl, ltot = lane[0], lane[4], lane[6]
    Z, D, xt, yt = tile
    L = sizes.shape[0] - 1
    k_out = Y.shape[1]
    for g in range(g0, g1):
        Gl[g][:] = 0
        ltot[g][:] = 0
    for t0 in range(0, m, LT):
        t = min(LT, m - t0)
        _gather(X, Y, order, base, t0, t, xt, yt)
        zo = zrow[L - 1] * 8 * t
        n = 8 * k_out * t
        for g in range(g0, g1):
            if live[g]:
                _forward(sizes, acts, fast, Pl[g], wofs, bofs, zrow, xt, Z, t)
                _loss(net, m, Z[zo:zo + n], D[zo:zo + n], yt, k_out, t, ltot[g])
                _backward(sizes, acts, Pl[g], Gl[g], wofs, bofs, zrow, xt, Z, D, t)


@njit(**_JIT)
def _run_out(params, state, g, q, r, full):
    """Run r's P, V (and with ``full`` Pb, Vb) := lane q of group g's."""
    _lane_out(state[0][g], q, params[0][r])
    _lane_out(state[1][g], q, params[1][r])
    if full:
        _lane_out(state[2][g], q, params[3][r])
        _lane_out(state[3][g], q, params[4][r])


@njit(**_JIT)
def _finish(g, s, data, plan, net, layout, params, lane, out, check, alive, stops):
    """Step s's end for group g (``runs._after_gradient`` lane by lane): each live run's
    batch loss into out[r, s] and its check (not finite: the lane back to the one-step-back
    copy, the run written out and stopped), the shift back, the copy and the update of
    every lane, the update's check (not finite: the lane back to the state before it)."""
    counts, kinds, coef = plan[1], plan[2], plan[3]
    sizes, loss_code = net[0], net[2]
    wofs, bofs = layout[0], layout[1]
    state = (lane[0][g], lane[1][g], lane[2][g], lane[3][g], lane[4][g])
    Cl, ltot = lane[5][g], lane[6][g]
    k_out = data[1].shape[1]
    m = counts[s]
    r0, r1 = 8 * g, 8 * g + 8
    for r in range(r0, r1):
        if alive[r]:
            out[r, s] = batch_loss(loss_code, ltot[r - r0], m, k_out)
            if check and not np.isfinite(out[r, s]):
                _lane_back(state[0], state[1], state[2], state[3], r - r0)
                _run_out(params, lane, g, r - r0, r, False)
                alive[r] = 0
                stops[r] = s
    _steps_state(state, Cl, sizes, wofs, bofs, -1)
    chk = _steps_state(state, Cl, sizes, wofs, bofs, 0)
    for r in range(r0, r1):
        if alive[r] and check and not np.isfinite(chk[r - r0]):
            _lane_back(state[0], state[1], state[2], state[3], r - r0)
            _run_out(params, lane, g, r - r0, r, False)
            alive[r] = 0
            stops[r] = s


@njit(**_JIT)
def _train_slot(j, ns, data, plan, net, layout, params, scratch, out, check, alive, stops):
    """Every step of slot j's lane groups, j NG // ns to (j + 1) NG // ns: their runs' state
    moved into the lanes, the steps, the state of the runs still live moved back."""
    starts, counts, kinds, coef = plan
    lane = scratch[7:]
    tile = (lane[7][j], lane[8][j], lane[9][j], lane[10][j])
    NG = lane[0].shape[0]
    g0 = j * NG // ns
    g1 = (j + 1) * NG // ns
    live = np.zeros(g1, dtype=np.uint8)
    for g in range(g0, g1):
        _transpose_in(params[0], 8 * g, lane[0][g])         # P, V, Pb, Vb
        _transpose_in(params[1], 8 * g, lane[1][g])
        _transpose_in(params[3], 8 * g, lane[2][g])
        _transpose_in(params[4], 8 * g, lane[3][g])
    last = -1                           # the coefficient row in Cl (a step's kind)
    for s in range(starts.shape[0]):
        n_live = 0
        for g in range(g0, g1):
            live[g] = 0
            for r in range(8 * g, 8 * g + 8):
                live[g] |= alive[r]
            if live[g]:
                n_live += 1
                if kinds[s] != last:
                    _coef_lanes(coef, kinds[s], 8 * g, lane[5][g])
                state = (lane[0][g], lane[1][g], lane[2][g], lane[3][g], lane[4][g])
                _steps_state(state, lane[5][g], net[0], layout[0], layout[1], 1)
        if n_live == 0:
            break
        last = kinds[s]
        _group_tiles(data, net, layout, starts[s], counts[s], g0, g1, lane, tile, live)
        for g in range(g0, g1):
            if live[g]:
                _finish(g, s, data, plan, net, layout, params, lane, out, check, alive,
                        stops)
    for g in range(g0, g1):
        for r in range(8 * g, 8 * g + 8):
            if alive[r]:
                _run_out(params, lane, g, r - 8 * g, r, True)


@njit(**_JIT)
def _slot(j, ns, data, plan, net, layout, params, scratch, out, check, alive, stops):
    """Slot j of ns lane slots, or with j = ns the runs the full lane groups leave over (on
    the row-inner way, ``runs.train_range``)."""
    if j < ns:
        _train_slot(j, ns, data, plan, net, layout, params, scratch, out, check, alive, stops)
    else:
        train_range(8 * scratch[7].shape[0], params[0].shape[0], 0, data, plan, net, layout,
                    params, scratch, out, check, alive, stops)


@njit(parallel=True, **_JIT)
def _slots_parallel(ns, rest, data, plan, net, layout, params, scratch, out, check, alive,
                    stops):
    """The slots on numba's threads (``runs._slots_parallel``), the left-over runs' first."""
    for i in prange(ns + rest):
        k = np.int64(i)
        j = (k + ns) % (ns + 1) if rest else k          # ns (the left-over runs), 0, 1, ...
        old = flush()
        _slot(j, ns, data, plan, net, layout, params, scratch, out, check, alive, stops)
        restore(old)


@njit(**_JIT)
def _train_lanes(data, plan, net, params, scratch, out, parallel, check, alive, stops):
    """``runs.train_runs`` with the lane groups' slots (the module's docstring)."""
    layout = _layout(net[0], net[1])
    R = params[0].shape[0]
    S = plan[0].shape[0]
    for r in range(R):
        stops[r] = S
    rest = int(8 * scratch[7].shape[0] < R)           # runs left over by the full groups
    old = flush()
    if parallel:
        _slots_parallel(scratch[14].shape[0], rest, data, plan, net, layout, params, scratch,
                        out, check, alive, stops)
    else:
        for j in range(1 + rest):
            _slot(j, 1, data, plan, net, layout, params, scratch, out, check, alive, stops)
    restore(old)


_COMPILE = threading.Lock()
compiled = _train_lanes     # the kernel itself, once ``train_lanes`` has compiled it for the types


def train_lanes(*args):
    """``_train_lanes(*args)``, compiled (or loaded from numba's cache) for these argument
    types with LLVM's SLP vectorizer on and its loop vectorizer off (the module's
    docstring)."""
    from numba import typeof, types
    from numba.core import config
    from numba.core.compiler_lock import global_compiler_lock

    sig = tuple(typeof(a) for a in args)
    if sig not in _train_lanes.overloads:
        # the functions it shares with the row-inner kernels (tiles.py's activations,
        # softmax, layout) compiled first, the default way (loops vectorized, SLP off), by
        # compiling runs.train_runs for the same arrays: compiled inside it, they would be
        # compiled (and cached) this module's way for every kernel of this process and
        # later ones
        from .runs import train_runs

        train_runs.compile(sig[:4] + (types.Tuple(sig[4].types[:7]),) + sig[5:])
        with _COMPILE, global_compiler_lock:
            old = (getattr(config, "SLP_VECTORIZE", 0), getattr(config, "LOOP_VECTORIZE", 1))
            config.SLP_VECTORIZE, config.LOOP_VECTORIZE = 1, 0
            try:
                _train_lanes.compile(sig)
            finally:
                config.SLP_VECTORIZE, config.LOOP_VECTORIZE = old
    _train_lanes(*args)


def applies(dtype, R):
    """Whether a group of R runs of ``dtype`` trains in the lanes: float32 (float64 groups
    keep the row-inner kernel and their fits' bits) and at least two lane groups (with fewer,
    the row-inner kernel shares its runs among more threads). Any batch size: a batch of
    more than ``LT`` rows is taken a lane tile at a time (W6's sweep, alternating with the
    row-inner kernel in one process, 30 epochs: batch 128 1.23 times its speed, 512 1.09,
    full batch 1.05)."""
    return np.dtype(dtype) == np.float32 and R >= 2 * LANES


def lane_scratch(R, p, sizes, acts, ns, dtype):
    """The lane scratch (the module's docstring) for R runs of p parameters, the layer sizes
    and activation table of ``tiles``, ns slots."""
    NG = R // LANES
    rows = tile_rows(sizes, acts)
    per = LANES * LT
    L = len(sizes) - 1
    state = tuple(np.zeros((NG, LANES * p), dtype=dtype) for _ in range(5))
    return state + (np.zeros((NG, 2 * L * 8 * LANES), dtype=dtype), np.zeros((NG, LANES)),
                    np.zeros((ns, per * rows), dtype=dtype),
                    np.zeros((ns, per * rows), dtype=dtype),
                    np.zeros((ns, per * sizes[0]), dtype=dtype),
                    np.zeros((ns, per * sizes[-1]), dtype=dtype))
