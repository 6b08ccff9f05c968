"""Whole training steps compiled by numba, for the NumPy engine's small networks.

A small network (W1's 4-32-16-1, an online 4-7-3) spends its step in some twenty Python-level
engine calls of a few microseconds each, and its gemms are memory-bound passes over skinny
arrays. ``train_steps`` runs a whole sequence of steps (an epoch or more) as one call: each
batch is cut into tiles of ``TILE`` rows that stay in the L1 cache through the forward pass,
the loss, the backward pass and the gradient sums, so the inputs are read once per step and no
activation ever goes to memory. The update is the optimizer's closed form
(``SGD.coefficients``) applied element-wise.

Layout inside a tile: feature-major, ``a[k * t + r]`` is feature k of the tile's row r, so that
every inner loop runs over the tile's rows (a vector loop whatever the layer widths), and the
gather of the batch rows (shuffled or not) is the transposition into that layout.

Activation codes: 0 linear, 1 sigmoid, 2 tanh, 3 relu, 4 softmax. Loss codes: 0 mse,
1 quadratic, 2 bce, 3 cross_entropy. float32 uses the SIMD sigmoid and tanh of ``kernels``
(as the engine does); float64 uses exp and tanh.
"""

from __future__ import annotations

import numpy as np
from numba import njit

from .kernels import (E0, E1, E2, E3, E4, E5, EXP_HI, EXP_LO, LN2_HI, LN2_LO, LOG2E,
                      TANH_CLAMP, T1, T3, T5, T7, T9, T11, T13, U0, U2, U4, U6)

TILE = 64
ACT_CODES = {"linear": 0, "sigmoid": 1, "tanh": 2, "relu": 3, "softmax": 4}
LOSS_CODES = {"mse": 0, "quadratic": 1, "bce": 2, "cross_entropy": 3}
N_COEF = 8     # A B C D E F H look: v' = A v + B g + C w; w' = D w + E v' + F g + H v

# every fast-math licence but "no NaN / no inf": a diverging run must show its NaN loss
_JIT = dict(fastmath={"nsz", "arcp", "contract", "afn", "reassoc"}, error_model="numpy",
            cache=True, nogil=True)


@njit(**_JIT)
def _activate(code, z, a, n, fast, kbits, kscale):
    """a[:n] = f(z[:n]) element-wise (a may be z). Softmax is done by the caller."""
    if code == 0:
        for i in range(n):
            a[i] = z[i]
    elif code == 1:
        if fast:                       # Cephes expf, 2^k from exponent bits (kernels.py)
            for i in range(n):
                v = -z[i]
                v = EXP_HI if v > EXP_HI else v
                v = EXP_LO if v < EXP_LO else v
                k = np.floor(v * LOG2E + np.float32(0.5))
                r = v - k * LN2_HI - k * LN2_LO
                p = E0 * r + E1
                p = p * r + E2
                p = p * r + E3
                p = p * r + E4
                p = p * r + E5
                a[i] = p * r * r + r + np.float32(1.0)
                kbits[i] = (np.int32(k) + np.int32(127)) << np.int32(23)
            for i in range(n):
                a[i] = np.float32(1.0) / (np.float32(1.0) + a[i] * kscale[i])
        else:
            for i in range(n):
                a[i] = 1.0 / (1.0 + np.exp(-z[i]))
    elif code == 2:
        if fast:                       # Eigen's rational tanh (kernels.py)
            for i in range(n):
                x = z[i]
                x = TANH_CLAMP if x > TANH_CLAMP else x
                x = -TANH_CLAMP if x < -TANH_CLAMP else x
                x2 = x * x
                p = x2 * T13 + T11
                p = x2 * p + T9
                p = x2 * p + T7
                p = x2 * p + T5
                p = x2 * p + T3
                p = x2 * p + T1
                q = x2 * U6 + U4
                q = x2 * q + U2
                q = x2 * q + U0
                a[i] = x * p / q
        else:
            for i in range(n):
                a[i] = np.tanh(z[i])
    elif code == 3:
        for i in range(n):
            v = z[i]
            a[i] = v if v > 0 else v * 0


@njit(**_JIT)
def _derivative(code, a, d, n):
    """d[:n] *= f'(z) written from the output a."""
    if code == 1:
        for i in range(n):
            d[i] *= a[i] * (1 - a[i])
    elif code == 2:
        for i in range(n):
            d[i] *= 1 - a[i] * a[i]
    elif code == 3:
        for i in range(n):
            d[i] = d[i] if a[i] > 0 else d[i] * 0


@njit(**_JIT)
def _softmax(z, a, k, t):
    """Column r of the (k, t) tile: a = softmax(z) over the k outputs, max subtracted."""
    for r in range(t):
        m = z[r]
        for o in range(1, k):
            m = max(m, z[o * t + r])
        s = z[r] * 0
        for o in range(k):
            e = np.exp(z[o * t + r] - m)
            a[o * t + r] = e
            s += e
        for o in range(k):
            a[o * t + r] /= s


# Inner loops index slices from 0 (``zz[r]``, not ``z[zo + r]``): numba wraps negative
# indices, and only an index that provably starts at 0 lets LLVM drop that check and
# vectorise the loop.

@njit(**_JIT)
def _dense(P, wo, bo, x, z, zo, nin, nout, t):
    """z (nout, t) = W x + b for the tile x (nin, t); W = P[wo:] (nout, nin), b = P[bo:];
    four inputs a pass."""
    for o in range(nout):
        zz = z[zo + o * t:zo + (o + 1) * t]
        wr = wo + o * nin
        bv = P[bo + o]
        for r in range(t):
            zz[r] = bv
        k = 0
        while k + 4 <= nin:
            w0, w1, w2, w3 = P[wr + k], P[wr + k + 1], P[wr + k + 2], P[wr + k + 3]
            x0 = x[k * t:(k + 1) * t]
            x1 = x[(k + 1) * t:(k + 2) * t]
            x2 = x[(k + 2) * t:(k + 3) * t]
            x3 = x[(k + 3) * t:(k + 4) * t]
            for r in range(t):
                zz[r] += w0 * x0[r] + w1 * x1[r] + w2 * x2[r] + w3 * x3[r]
            k += 4
        while k < nin:
            wk = P[wr + k]
            xk = x[k * t:(k + 1) * t]
            for r in range(t):
                zz[r] += wk * xk[r]
            k += 1


@njit(**_JIT)
def _back(P, wo, d, do, dp, po, nin, nout, t):
    """dp (nin, t) = W^T d for the tile d (nout, t); four outputs a pass."""
    for k in range(nin):
        pp = dp[po + k * t:po + (k + 1) * t]
        for r in range(t):
            pp[r] = 0
        o = 0
        while o + 4 <= nout:
            w0 = P[wo + o * nin + k]
            w1 = P[wo + (o + 1) * nin + k]
            w2 = P[wo + (o + 2) * nin + k]
            w3 = P[wo + (o + 3) * nin + k]
            d0 = d[do + o * t:do + (o + 1) * t]
            d1 = d[do + (o + 1) * t:do + (o + 2) * t]
            d2 = d[do + (o + 2) * t:do + (o + 3) * t]
            d3 = d[do + (o + 3) * t:do + (o + 4) * t]
            for r in range(t):
                pp[r] += w0 * d0[r] + w1 * d1[r] + w2 * d2[r] + w3 * d3[r]
            o += 4
        while o < nout:
            wv = P[wo + o * nin + k]
            dq = d[do + o * t:do + (o + 1) * t]
            for r in range(t):
                pp[r] += wv * dq[r]
            o += 1


@njit(**_JIT)
def _grad(G, wo, bo, d, do, x, xo, nin, nout, t):
    """G[wo:] (nout, nin) += d x^T and G[bo:] += the row sums of d, over the tile's t rows."""
    for o in range(nout):
        dd = d[do + o * t:do + (o + 1) * t]
        s = G[bo] * 0
        for r in range(t):
            s += dd[r]
        G[bo + o] += s
        gr = wo + o * nin
        k = 0
        while k + 4 <= nin:
            x0 = x[xo + k * t:xo + (k + 1) * t]
            x1 = x[xo + (k + 1) * t:xo + (k + 2) * t]
            x2 = x[xo + (k + 2) * t:xo + (k + 3) * t]
            x3 = x[xo + (k + 3) * t:xo + (k + 4) * t]
            s0 = s * 0
            s1 = s * 0
            s2 = s * 0
            s3 = s * 0
            for r in range(t):
                dv = dd[r]
                s0 += dv * x0[r]
                s1 += dv * x1[r]
                s2 += dv * x2[r]
                s3 += dv * x3[r]
            G[gr + k] += s0
            G[gr + k + 1] += s1
            G[gr + k + 2] += s2
            G[gr + k + 3] += s3
            k += 4
        while k < nin:
            xk = x[xo + k * t:xo + (k + 1) * t]
            s0 = s * 0
            for r in range(t):
                s0 += dd[r] * xk[r]
            G[gr + k] += s0
            k += 1


@njit(**_JIT)
def _update(P, V, G, lo, hi, c):
    """v' = A v + B g + C w;  w' = D w + E v' + F g + H v, element-wise over P[lo:hi]."""
    A, B, C, D, E, F, H = c[0], c[1], c[2], c[3], c[4], c[5], c[6]
    for i in range(lo, hi):
        vo = V[i]
        w = P[i]
        gi = G[i]
        vn = A * vo + B * gi + C * w
        P[i] = D * w + E * vn + F * gi + H * vo
        V[i] = vn


@njit(**_JIT)
def train_steps(X, Y, order, starts, counts, kinds, coef, sizes, acts, loss_code, fast,
                P, V, G, Z, D, xt, yt, kbits, kscale, scale, out):
    """Run len(starts) training steps; step s trains on rows order[starts[s]:...+counts[s]]
    with the coefficients coef[kinds[s]] (shape (2 L, N_COEF): weights and biases of each
    layer) and writes its batch loss to out[s].

    P, V, G: every parameter, its velocity and its gradient, flat: layer l's W (sizes[l+1],
    sizes[l]) row-major, then its b. Z, D: tile scratch (activations, deltas) of
    TILE * sum(sizes[1:]); xt, yt: the tile's inputs and targets; kbits/kscale: int32/float32
    views of one scratch; scale: a 1-element array of the dtype."""
    L = sizes.shape[0] - 1
    nin0 = X.shape[1]
    k_out = Y.shape[1]
    # offsets of each layer's W and b in P, and of its tile in Z and D (per TILE)
    wofs = np.empty(L, dtype=np.int64)
    bofs = np.empty(L, dtype=np.int64)
    zrow = np.empty(L, dtype=np.int64)
    p = 0
    q = 0
    for l in range(L):
        wofs[l] = p
        p += sizes[l] * sizes[l + 1]
        bofs[l] = p
        p += sizes[l + 1]
        zrow[l] = q
        q += sizes[l + 1]
    for s in range(starts.shape[0]):
        c = coef[kinds[s]]
        m = counts[s]
        base = starts[s]
        for l in range(L):                          # the look-ahead point w + mu v
            mu_l = c[2 * l, 7]
            if mu_l != 0:
                for i in range(wofs[l], bofs[l]):
                    P[i] += mu_l * V[i]
        for i in range(p):
            G[i] = 0
        total = 0.0
        for t0 in range(0, m, TILE):
            t = min(TILE, m - t0)
            for r in range(t):                      # gather and transpose the tile
                row = order[base + t0 + r]
                for k in range(nin0):
                    xt[k * t + r] = X[row, k]
                for k in range(k_out):
                    yt[k * t + r] = Y[row, k]
            # forward: layer l's tile is Z[zrow[l] * t:] (hidden: activated in place)
            for l in range(L):
                nin = sizes[l]
                nout = sizes[l + 1]
                zo = zrow[l] * t
                if l == 0:
                    _dense(P, wofs[l], bofs[l], xt, Z, zo, nin, nout, t)
                else:
                    _dense(P, wofs[l], bofs[l], Z[zrow[l - 1] * t:], Z, zo, nin, nout, t)
                if l < L - 1:
                    zl = Z[zo:zo + nout * t]
                    _activate(acts[l], zl, zl, nout * t, fast, kbits, kscale)
            # loss and output delta: z keeps the logits, d receives a, then the delta
            zo = zrow[L - 1] * t
            n_el = k_out * t
            z = Z[zo:zo + n_el]
            d = D[zo:zo + n_el]
            code = acts[L - 1]
            if code == 4:
                _softmax(z, d, k_out, t)
            else:
                _activate(code, z, d, n_el, fast, kbits, kscale)
            if loss_code == 0 or loss_code == 1:
                scale[0] = (2.0 / (m * k_out)) if loss_code == 0 else (1.0 / m)
                sc = scale[0]
                acc = sc * 0
                for i in range(n_el):
                    e = d[i] - yt[i]
                    acc += e * e
                if code == 0:
                    for i in range(n_el):
                        d[i] = (d[i] - yt[i]) * sc
                elif code == 1:
                    for i in range(n_el):
                        ai = d[i]
                        d[i] = ((ai - yt[i]) * sc) * (ai * (1 - ai))
                elif code == 2:
                    for i in range(n_el):
                        ai = d[i]
                        d[i] = ((ai - yt[i]) * sc) * (1 - ai * ai)
                else:
                    for i in range(n_el):
                        ai = d[i]
                        e = (ai - yt[i]) * sc
                        d[i] = e if ai > 0 else e * 0
                total += acc
            elif loss_code == 2:
                scale[0] = 1.0 / (m * k_out)
                sc = scale[0]
                acc = sc * 0
                for i in range(n_el):
                    zi = z[i]
                    yi = yt[i]
                    acc += max(zi, zi * 0) - zi * yi + np.log1p(np.exp(-abs(zi)))
                    d[i] = (d[i] - yi) * sc
                total += acc
            else:
                scale[0] = 1.0 / m
                sc = scale[0]
                for r in range(t):
                    mx = z[r]
                    for o in range(1, k_out):
                        mx = max(mx, z[o * t + r])
                    se = sc * 0
                    sy = se
                    yz = se
                    for o in range(k_out):
                        se += np.exp(z[o * t + r] - mx)
                        sy += yt[o * t + r]
                        yz += yt[o * t + r] * z[o * t + r]
                    total += (np.log(se) + mx) * sy - yz
                for i in range(n_el):
                    d[i] = (d[i] - yt[i]) * sc
            # backward
            for l in range(L - 1, -1, -1):
                nin = sizes[l]
                nout = sizes[l + 1]
                do = zrow[l] * t
                if l == 0:
                    _grad(G, wofs[l], bofs[l], D, do, xt, 0, nin, nout, t)
                else:
                    po = zrow[l - 1] * t
                    _grad(G, wofs[l], bofs[l], D, do, Z, po, nin, nout, t)
                    _back(P, wofs[l], D, do, D, po, nin, nout, t)
                    _derivative(acts[l - 1], Z[po:po + nin * t], D[po:po + nin * t], nin * t)
        if loss_code == 0 or loss_code == 2:
            out[s] = total / (m * k_out)
        elif loss_code == 1:
            out[s] = total / (2 * m)
        else:
            out[s] = total / m
        for l in range(L):
            mu_l = c[2 * l, 7]
            if mu_l != 0:
                for i in range(wofs[l], bofs[l]):
                    P[i] -= mu_l * V[i]
            _update(P, V, G, wofs[l], bofs[l], c[2 * l])
            _update(P, V, G, bofs[l], bofs[l] + sizes[l + 1], c[2 * l + 1])
