"""Whole training steps compiled by numba, for the NumPy engine's small networks.

A small network (W1's 4-32-16-1, an online 4-7-3) spends its step in some twenty Python-level
engine calls of a few microseconds each, and its gemms are memory-bound passes over skinny
arrays. ``train_steps`` runs a whole sequence of steps (an epoch or more) as one call: each
batch is cut into tiles of ``TILE`` rows that stay in the L1 cache through the forward pass,
the loss, the backward pass and the gradient sums, so the inputs are read once per step and no
activation ever goes to memory. The update is the optimizer's closed form
(``Optimizer.closed_form``) applied element-wise. The arguments come in groups; the
contract (shapes, aliasing, what is returned) is ``inertia.fused``'s docstring.

Layout inside a tile: feature-major, ``a[k * t + r]`` is feature k of the tile's row r, so that
every inner loop runs over the tile's rows (a vector loop whatever the layer widths), and the
gather of the batch rows (shuffled or not) is the transposition into that layout.

Activations: each layer's row of the ``acts`` table (``act_table``) holds its record's code
(``inertia.ops.activations``), whether the layer keeps its pre-activation z for the derivative
(then its tile has a second, z copy in the scratch), and up to two parameters. ``_activate`` and
``_derivative`` dispatch on the code to one function per activation, each working on the tile
in place. Losses: ``_loss`` dispatches on the loss record's code (``inertia.ops.losses``:
0 mse, 1 quadratic, 2 bce, 3 cross_entropy) to one function per loss. float32 uses the SIMD
sigmoid and tanh of ``engines.simd`` (as the engine does); float64 uses exp and tanh.
"""

from __future__ import annotations

import math

import numpy as np
from numba import njit, prange

from ..engines.simd import sigmoid_, tanh_
from ..ops import activations, losses
from .fpenv import flush, restore

TILE = 256
ACT_CODES = {name: rec.code for name, rec in activations.RECORDS.items()}
# the codes _activate and _derivative dispatch on, spelled out (numba caches the compiled
# dispatch with its constants): the records must agree
_DISPATCHED = {"linear": 0, "sigmoid": 1, "tanh": 2, "relu": 3, "softmax": 4,
               "leaky_relu": 5, "elu": 6, "gelu": 7, "silu": 8, "softplus": 9}
if ACT_CODES != _DISPATCHED:      # pragma: no cover
    raise ImportError(f"activation records {ACT_CODES} disagree with the compiled loop's "
                      f"dispatch {_DISPATCHED}")
ACT_COLUMNS = 4    # code, keeps z (1.0 / 0.0), parameter 0, parameter 1
SQRT1_2 = activations.SQRT1_2
INV_SQRT_2PI = activations.INV_SQRT_2PI
GELU_BETA = activations.GELU_BETA
GELU_KAPPA = activations.GELU_KAPPA
LOSS_CODES = {name: rec.code for name, rec in losses.RECORDS.items()}
# the loss codes _tiles dispatches on, spelled out as the activations' are
if LOSS_CODES != {"mse": 0, "quadratic": 1, "bce": 2, "cross_entropy": 3}:  # pragma: no cover
    raise ImportError(f"loss records {LOSS_CODES} disagree with the compiled loop's dispatch")
N_COEF = 8     # A B C D E F H look: v' = A v + B g + C w; w' = D w + E v' + F g + H v

# every fast-math licence but "no NaN / no inf": a diverging run must show its NaN loss
_JIT = dict(fastmath={"nsz", "arcp", "contract", "afn", "reassoc"}, error_model="numpy",
            cache=True, nogil=True)
# the stages of a step (_gather, _forward, _loss, _backward, _batch_gradient, _shift_all,
# _update_all) are separate functions for reading and inlined into their callers by numba
# (inline="always"), so that the step stays one function as when it was written in one.
# Measured against the one-function, 26-argument kernel in one process, alternating calls
# (float32, one thread, best calls): W1 0.99 of its time, W2 (batch 32) 1.01 to 1.02;
# without inlining W2 took 1.02 to 1.05 (docs/ARCHITECTURE.md, "The contract").


def act_table(specs):
    """The (L, ACT_COLUMNS) float64 table of the layers' activations (see the docstring)."""
    table = np.zeros((len(specs), ACT_COLUMNS))
    for l, spec in enumerate(specs):
        act = activations.get(spec)
        p = act.compiled_params()
        table[l, 0] = act.rec.code
        table[l, 1] = float(act.keeps_input and l < len(specs) - 1)
        table[l, 2:2 + len(p)] = p
    return table


def tile_rows(sizes, acts):
    """Rows (per tile row) of the Z scratch: every layer's tile, then the z copies."""
    return int(sum(sizes[1:]) + sum(s for s, keep in zip(sizes[1:], acts[:, 1]) if keep))


# one function per activation, forward f and derivative d, in place on a tile of n elements.
# Forward: a := f(a). Derivative: d := d f'(z), from the output a ("_d(a, ...)") or from the
# kept pre-activation z ("_d(z, ...)"), as the record says.

@njit(**_JIT)
def _sigmoid_f(a, n, fast):
    if fast:
        sigmoid_(a[:n])
    else:
        for i in range(n):
            a[i] = 1.0 / (1.0 + np.exp(-a[i]))


@njit(**_JIT)
def _sigmoid_d(a, d, n):
    one = a.dtype.type(1)
    for i in range(n):
        d[i] *= a[i] * (one - a[i])


@njit(**_JIT)
def _tanh_f(a, n, fast):
    if fast:
        tanh_(a[:n])
    else:
        for i in range(n):
            a[i] = np.tanh(a[i])


@njit(**_JIT)
def _tanh_d(a, d, n):
    one = a.dtype.type(1)
    for i in range(n):
        d[i] *= one - a[i] * a[i]


@njit(**_JIT)
def _relu_f(a, n):
    zero = a.dtype.type(0)
    for i in range(n):
        v = a[i]
        a[i] = v if v > zero else zero


@njit(**_JIT)
def _relu_d(a, d, n):
    zero = a.dtype.type(0)
    for i in range(n):
        d[i] = d[i] if a[i] > zero else zero


@njit(**_JIT)
def _leaky_relu_f(a, n, slope):
    zero = a.dtype.type(0)
    s = a.dtype.type(slope)
    for i in range(n):
        v = a[i]
        a[i] = v if v > zero else v * s


@njit(**_JIT)
def _leaky_relu_d(a, d, n, slope):
    zero = a.dtype.type(0)
    s = a.dtype.type(slope)
    for i in range(n):
        d[i] = d[i] if a[i] > zero else d[i] * s


@njit(**_JIT)
def _elu_f(a, n, alpha):
    zero = a.dtype.type(0)
    al = a.dtype.type(alpha)
    for i in range(n):
        v = a[i]
        a[i] = v if v > zero else al * np.expm1(v)


@njit(**_JIT)
def _elu_d(a, d, n, alpha):
    zero = a.dtype.type(0)
    al = a.dtype.type(alpha)
    for i in range(n):
        d[i] = d[i] if a[i] > zero else d[i] * (a[i] + al)


@njit(**_JIT)
def _gelu_f(a, n, tanh_form):
    T = a.dtype.type
    half = T(0.5)
    one = T(1)
    if tanh_form:
        beta = T(GELU_BETA)
        kappa = T(GELU_KAPPA)
        for i in range(n):
            v = a[i]
            a[i] = half * v * (one + np.tanh(beta * (v + kappa * v * v * v)))
    else:
        r = T(SQRT1_2)
        for i in range(n):
            v = a[i]
            a[i] = half * v * (one + T(math.erf(v * r)))


@njit(**_JIT)
def _gelu_d(z, d, n, tanh_form):
    T = z.dtype.type
    half = T(0.5)
    one = T(1)
    if tanh_form:
        beta = T(GELU_BETA)
        kappa = T(GELU_KAPPA)
        for i in range(n):
            v = z[i]
            h = np.tanh(beta * (v + kappa * v * v * v))
            q = v * beta * (one + T(3) * kappa * v * v)
            d[i] *= half * (one + h) + half * q * (one - h * h)
    else:
        r = T(SQRT1_2)
        c = T(INV_SQRT_2PI)
        for i in range(n):
            v = z[i]
            d[i] *= half * (one + T(math.erf(v * r))) + v * c * np.exp(-half * v * v)


@njit(**_JIT)
def _silu_f(a, n):
    one = a.dtype.type(1)
    for i in range(n):
        v = a[i]
        a[i] = v / (one + np.exp(-v))


@njit(**_JIT)
def _silu_d(z, d, n):
    one = z.dtype.type(1)
    for i in range(n):
        v = z[i]
        s = one / (one + np.exp(-v))
        d[i] *= s * (one + v * (one - s))


@njit(**_JIT)
def _softplus_f(a, n, beta, threshold):
    b = a.dtype.type(beta)
    th = a.dtype.type(threshold)
    for i in range(n):
        v = a[i]
        bv = v * b
        a[i] = v if bv > th else np.log1p(np.exp(bv)) / b


@njit(**_JIT)
def _softplus_d(z, d, n, beta, threshold):
    b = z.dtype.type(beta)
    th = z.dtype.type(threshold)
    for i in range(n):
        bv = z[i] * b
        if not bv > th:
            e = np.exp(bv)
            d[i] = d[i] * e / (e + z.dtype.type(1))


@njit(**_JIT)
def _activate(act, a, n, fast):
    """a[:n] = f(a[:n]) in place for the layer's row ``act`` of the table (one array: a
    second one that might overlap would keep LLVM from vectorising). float32 takes the SIMD
    kernels of ``engines.simd``. Softmax is done by the caller."""
    code = int(act[0])
    if code == 1:
        _sigmoid_f(a, n, fast)
    elif code == 2:
        _tanh_f(a, n, fast)
    elif code == 3:
        _relu_f(a, n)
    elif code == 5:
        _leaky_relu_f(a, n, act[2])
    elif code == 6:
        _elu_f(a, n, act[2])
    elif code == 7:
        _gelu_f(a, n, act[2] != 0)
    elif code == 8:
        _silu_f(a, n)
    elif code == 9:
        _softplus_f(a, n, act[2], act[3])


@njit(**_JIT)
def _derivative(act, a, z, d, n):
    """d[:n] *= f'(z), from the output a or the kept pre-activation z (the record's which)."""
    code = int(act[0])
    if code == 1:
        _sigmoid_d(a, d, n)
    elif code == 2:
        _tanh_d(a, d, n)
    elif code == 3:
        _relu_d(a, d, n)
    elif code == 5:
        _leaky_relu_d(a, d, n, act[2])
    elif code == 6:
        _elu_d(a, d, n, act[2])
    elif code == 7:
        _gelu_d(z, d, n, act[2] != 0)
    elif code == 8:
        _silu_d(z, d, n)
    elif code == 9:
        _softplus_d(z, d, n, act[2], act[3])


@njit(**_JIT)
def _softmax(z, a, k, t):
    """Column r of the (k, t) tile: a = softmax(z) over the k outputs, max subtracted."""
    for r in range(t):
        m = z[r]
        for o in range(1, k):
            m = max(m, z[o * t + r])
        s = z.dtype.type(0)
        for o in range(k):
            e = np.exp(z[o * t + r] - m)
            a[o * t + r] = e
            s += e
        for o in range(k):
            a[o * t + r] /= s


# The innermost row loops (_axpy4, _axpy4x2, _dot4x2) are inlined by numba
# (inline="always") into _matmul and _grad: called, each cost some 35 to 60 ns a call beyond
# its arithmetic (its array arguments spilled to the stack, NRT reference counts taken and
# dropped, the vector loop's set-up). Against the code before the restructuring, in one
# process (benchmarks/ab.py): the compiled W3 step 1.15x -> 1.00x, W2 0.80x. Inlining
# _matmul, _dense, _back and _grad as well measured the same W3 (1.05x) but multiplied the
# code numba compiles: a first fit compiled in 217 s instead of 41 s. The loops' code is
# unchanged: the losses and weights are the same bit for bit.
# Inner loops index slices from 0 (``zz[r]``, not ``z[zo + r]``): numba wraps negative
# indices, and only an index that provably starts at 0 lets LLVM drop that check and
# vectorise the loop.

@njit(inline="always", **_JIT)
def _axpy4(y, x, xo, t, set_, c, w0, w1, w2, w3):
    """y[:t] (= c or +=) w0 x_0 + w1 x_1 + w2 x_2 + w3 x_3, x_j = x[xo + j t:][:t]."""
    x0 = x[xo:xo + t]
    x1 = x[xo + t:xo + 2 * t]
    x2 = x[xo + 2 * t:xo + 3 * t]
    x3 = x[xo + 3 * t:xo + 4 * t]
    if set_:
        for r in range(t):
            y[r] = c + w0 * x0[r] + w1 * x1[r] + w2 * x2[r] + w3 * x3[r]
    else:
        for r in range(t):
            y[r] += w0 * x0[r] + w1 * x1[r] + w2 * x2[r] + w3 * x3[r]


@njit(inline="always", **_JIT)
def _axpy4x2(y0, y1, x, xo, t, set_, c0, c1, w0, w1, w2, w3, v0, v1, v2, v3):
    """y0 (= c0 or +=) sum_j w_j x_j and y1 (= c1 or +=) sum_j v_j x_j over four rows x_j
    of x: one load of each x_j for eight multiply-adds."""
    x0 = x[xo:xo + t]
    x1 = x[xo + t:xo + 2 * t]
    x2 = x[xo + 2 * t:xo + 3 * t]
    x3 = x[xo + 3 * t:xo + 4 * t]
    if set_:
        for r in range(t):
            a0 = x0[r]
            a1 = x1[r]
            a2 = x2[r]
            a3 = x3[r]
            y0[r] = c0 + w0 * a0 + w1 * a1 + w2 * a2 + w3 * a3
            y1[r] = c1 + v0 * a0 + v1 * a1 + v2 * a2 + v3 * a3
    else:
        for r in range(t):
            a0 = x0[r]
            a1 = x1[r]
            a2 = x2[r]
            a3 = x3[r]
            y0[r] += w0 * a0 + w1 * a1 + w2 * a2 + w3 * a3
            y1[r] += v0 * a0 + v1 * a1 + v2 * a2 + v3 * a3


@njit(**_JIT)
def _matmul(y, yo, ny, x, xo, nx, t, P, po, rs, cs, bo):
    """y[yo:] (ny, t) = M x + c for x[xo:] (nx, t), M[i, j] = P[po + i rs + j cs], c = P[bo:]
    (bo < 0: c = 0): two rows of y and four of x a pass, the first pass writing y (the
    forward pass takes M = W, the backward pass M = W^T)."""
    zero = P.dtype.type(0)
    i = 0
    while i < ny:
        two = i + 1 < ny
        y0 = y[yo + i * t:yo + (i + 1) * t]
        y1 = y[yo + (i + 1) * t:yo + (i + 2) * t] if two else y0
        c0 = P[bo + i] if bo >= 0 else zero
        c1 = P[bo + i + 1] if bo >= 0 and two else zero
        m0 = po + i * rs
        m1 = m0 + rs
        if nx < 4:
            for r in range(t):
                y0[r] = c0
            if two:
                for r in range(t):
                    y1[r] = c1
        j = 0
        while j + 4 <= nx:
            a = m0 + j * cs
            if two:
                b = m1 + j * cs
                _axpy4x2(y0, y1, x, xo + j * t, t, j == 0, c0, c1,
                         P[a], P[a + cs], P[a + 2 * cs], P[a + 3 * cs],
                         P[b], P[b + cs], P[b + 2 * cs], P[b + 3 * cs])
            else:
                _axpy4(y0, x, xo + j * t, t, j == 0, c0,
                       P[a], P[a + cs], P[a + 2 * cs], P[a + 3 * cs])
            j += 4
        while j < nx:
            xj = x[xo + j * t:xo + (j + 1) * t]
            w0 = P[m0 + j * cs]
            for r in range(t):
                y0[r] += w0 * xj[r]
            if two:
                w1 = P[m1 + j * cs]
                for r in range(t):
                    y1[r] += w1 * xj[r]
            j += 1
        i += 2


@njit(**_JIT)
def _dense(P, wo, bo, x, z, zo, nin, nout, t):
    """z (nout, t) = W x + b for the tile x (nin, t); W = P[wo:] (nout, nin), b = P[bo:]."""
    _matmul(z, zo, nout, x, 0, nin, t, P, wo, nin, 1, bo)


@njit(**_JIT)
def _back(P, wo, d, do, dp, po, nin, nout, t):
    """dp (nin, t) = W^T d for the tile d (nout, t)."""
    _matmul(dp, po, nin, d, do, nout, t, P, wo, 1, nin, -1)


@njit(inline="always", **_JIT)
def _dot4x2(d0, d1, x, xo, t):
    """The eight dot products of d0, d1 with four rows of x."""
    x0 = x[xo:xo + t]
    x1 = x[xo + t:xo + 2 * t]
    x2 = x[xo + 2 * t:xo + 3 * t]
    x3 = x[xo + 3 * t:xo + 4 * t]
    s00 = s01 = s02 = s03 = s10 = s11 = s12 = s13 = d0.dtype.type(0)
    for r in range(t):
        a = d0[r]
        b = d1[r]
        s00 += a * x0[r]
        s01 += a * x1[r]
        s02 += a * x2[r]
        s03 += a * x3[r]
        s10 += b * x0[r]
        s11 += b * x1[r]
        s12 += b * x2[r]
        s13 += b * x3[r]
    return s00, s01, s02, s03, s10, s11, s12, s13


@njit(**_JIT)
def _grad(G, wo, bo, d, do, x, xo, nin, nout, t):
    """G[wo:] (nout, nin) += d x^T and G[bo:] += the row sums of d, over the tile's t rows:
    two rows of d and four of x a pass."""
    for o in range(nout):
        dd = d[do + o * t:do + (o + 1) * t]
        s = d.dtype.type(0)
        for r in range(t):
            s += dd[r]
        G[bo + o] += s
    o = 0
    while o < nout:
        two = o + 1 < nout
        d0 = d[do + o * t:do + (o + 1) * t]
        d1 = d[do + (o + 1) * t:do + (o + 2) * t] if two else d0
        g0 = wo + o * nin
        g1 = g0 + nin
        k = 0
        while k + 4 <= nin:
            s00, s01, s02, s03, s10, s11, s12, s13 = _dot4x2(d0, d1, x, xo + k * t, t)
            G[g0 + k] += s00
            G[g0 + k + 1] += s01
            G[g0 + k + 2] += s02
            G[g0 + k + 3] += s03
            if two:
                G[g1 + k] += s10
                G[g1 + k + 1] += s11
                G[g1 + k + 2] += s12
                G[g1 + k + 3] += s13
            k += 4
        while k < nin:
            xk = x[xo + k * t:xo + (k + 1) * t]
            s0 = d.dtype.type(0)
            s1 = s0
            for r in range(t):
                s0 += d0[r] * xk[r]
                s1 += d1[r] * xk[r]
            G[g0 + k] += s0
            if two:
                G[g1 + k] += s1
            k += 1
        o += 2


@njit(**_JIT)
def _update(P, V, G, Pn, Vn, lo, hi, c):
    """v' = A v + B g + C w;  w' = D w + E v' + F g + H v, element-wise over [lo:hi]: w, v
    read from P, V, and w', v' written to Pn, Vn (another pair of arrays: the state before
    the step stays, see train_steps). Returns the sum of 0 * w': NaN when some new w is NaN
    or infinite, 0 otherwise (fast-math keeps NaN and inf, see _JIT)."""
    A, B, C, D, E, F, H = c[0], c[1], c[2], c[3], c[4], c[5], c[6]
    p = P[lo:hi]
    v = V[lo:hi]
    g = G[lo:hi]
    pn = Pn[lo:hi]
    vn_ = Vn[lo:hi]
    zero = P.dtype.type(0)
    chk = zero
    for i in range(hi - lo):
        vo = v[i]
        w = p[i]
        gi = g[i]
        vn = A * vo + B * gi + C * w
        wn = D * w + E * vn + F * gi + H * vo
        pn[i] = wn
        vn_[i] = vn
        chk += wn * zero
    return chk


@njit(**_JIT)
def _update_sq(P, V, G, Pn, Vn, lo, hi, c):
    """``_update`` that also sums the old w squared, in float64: returns (check, sum w^2).
    A copy of its loop rather than a flag in it, so that the update nobody asked a sum of
    runs the code it always ran."""
    A, B, C, D, E, F, H = c[0], c[1], c[2], c[3], c[4], c[5], c[6]
    p = P[lo:hi]
    v = V[lo:hi]
    g = G[lo:hi]
    pn = Pn[lo:hi]
    vn_ = Vn[lo:hi]
    zero = P.dtype.type(0)
    chk = zero
    sq = 0.0
    for i in range(hi - lo):
        vo = v[i]
        w = p[i]
        gi = g[i]
        sq += np.float64(w) * np.float64(w)
        vn = A * vo + B * gi + C * w
        wn = D * w + E * vn + F * gi + H * vo
        pn[i] = wn
        vn_[i] = vn
        chk += wn * zero
    return chk, sq


@njit(**_JIT)
def _restore(P, V, Pb, Vb, p):
    """P, V := Pb, Vb (the first p entries)."""
    for i in range(p):
        P[i] = Pb[i]
        V[i] = Vb[i]


@njit(**_JIT)
def _swap(a, b, p):
    """Exchange the first p entries of a and b."""
    for i in range(p):
        t = a[i]
        a[i] = b[i]
        b[i] = t


@njit(**_JIT)
def _shift(P, V, lo, hi, mu):
    """P[lo:hi] += mu V[lo:hi] (the look-ahead point and back)."""
    p = P[lo:hi]
    v = V[lo:hi]
    for i in range(hi - lo):
        p[i] += mu * v[i]


@njit(inline="always", **_JIT)
def _gather(X, Y, order, base, t0, t, xt, yt):
    """The tile's rows order[base + t0:][:t], transposed to feature-major xt, yt."""
    nin0 = X.shape[1]
    k_out = Y.shape[1]
    for r in range(t):
        row = order[base + t0 + r]
        for k in range(nin0):
            xt[k * t + r] = X[row, k]
        for k in range(k_out):
            yt[k * t + r] = Y[row, k]


@njit(inline="always", **_JIT)
def _forward(sizes, acts, fast, P, wofs, bofs, zrow, xt, Z, t):
    """The hidden layers and the output's logits of the tile: layer l's tile is
    Z[zrow[l] * t:], activated in place for hidden layers (the z copy first where kept)."""
    L = sizes.shape[0] - 1
    for l in range(L):
        nin = sizes[l]
        nout = sizes[l + 1]
        zo = zrow[l] * t
        if l == 0:
            _dense(P, wofs[l], bofs[l], xt, Z, zo, nin, nout, t)
        else:
            _dense(P, wofs[l], bofs[l], Z[zrow[l - 1] * t:], Z, zo, nin, nout, t)
        if l < L - 1:
            if zrow[L + l] >= 0:                # the derivative needs z: keep a copy
                Z[zrow[L + l] * t:zrow[L + l] * t + nout * t] = Z[zo:zo + nout * t]
            _activate(acts[l], Z[zo:zo + nout * t], nout * t, fast)


@njit(**_JIT)
def _squared_loss(d, yt, n_el, code, sc):
    """mse / quadratic on the output a (in d): the rows' sum of (a - y)^2, and
    d := sc (a - y) f'(a) for the output activation ``code``."""
    zero = d.dtype.type(0)
    one = d.dtype.type(1)
    acc = zero
    for i in range(n_el):
        e = d[i] - yt[i]
        acc += e * e
    if code == 0:
        for i in range(n_el):
            d[i] = (d[i] - yt[i]) * sc
    elif code == 1:
        for i in range(n_el):
            ai = d[i]
            d[i] = ((ai - yt[i]) * sc) * (ai * (one - ai))
    elif code == 2:
        for i in range(n_el):
            ai = d[i]
            d[i] = ((ai - yt[i]) * sc) * (one - ai * ai)
    else:
        for i in range(n_el):
            ai = d[i]
            e = (ai - yt[i]) * sc
            d[i] = e if ai > zero else zero
    return acc


@njit(**_JIT)
def _bce_loss(z, d, yt, n_el, sc):
    """bce from the logits z: the rows' sum of max(z, 0)(1 - y) + max(-z, 0) y +
    log(1 + e^-|z|) (terms >= 0 for y in [0, 1]), and d := sc (a - y)."""
    zero = z.dtype.type(0)
    one = z.dtype.type(1)
    acc = zero
    for i in range(n_el):
        zi = z[i]
        yi = yt[i]
        acc += (max(zi, zero) * (one - yi) + max(-zi, zero) * yi
                + np.log1p(np.exp(-abs(zi))))
        d[i] = (d[i] - yi) * sc
    return acc


@njit(inline="always", **_JIT)
def cross_entropy_term(z, yt, k_out, t, r):
    """Column r's cross-entropy of the logits z (k_out, t) against yt: sum(y) log(sum
    exp(z - mx)) + sum y (mx - z), two terms >= 0 for y >= 0 (no cancellation on large
    logits)."""
    mx = z[r]
    for o in range(1, k_out):
        mx = max(mx, z[o * t + r])
    se = z.dtype.type(0)
    sy = se
    ygap = se
    for o in range(k_out):
        gap = mx - z[o * t + r]
        se += np.exp(-gap)
        sy += yt[o * t + r]
        ygap += yt[o * t + r] * gap
    return np.log(se) * sy + ygap


@njit(**_JIT)
def _cross_entropy_loss(z, d, yt, k_out, t, sc, total):
    """cross-entropy from the logits z (k_out, t): each row's term (``cross_entropy_term``)
    added row by row to ``total`` (returned); and d := sc (a - y)."""
    for r in range(t):
        total += cross_entropy_term(z, yt, k_out, t, r)
    for i in range(k_out * t):
        d[i] = (d[i] - yt[i]) * sc
    return total


@njit(inline="always", **_JIT)
def _loss(net, m, z, d, yt, k_out, t, scale, total):
    """The output layer of the tile: d := a from the logits z, ``total`` plus the loss
    terms' sum (the record's code ``net[2]``; returned), d := dL/dz (the batch of m rows'
    mean). ``scale``: a 1-element array of the dtype (the scale in the array's dtype)."""
    acts = net[1]
    loss_code = net[2]
    fast = net[3]
    L = acts.shape[0]
    n_el = k_out * t
    code = int(acts[L - 1, 0])
    if code == 4:
        _softmax(z, d, k_out, t)
    else:
        d[:] = z
        _activate(acts[L - 1], d, n_el, fast)
    if loss_code == 0 or loss_code == 1:
        scale[0] = (2.0 / (m * k_out)) if loss_code == 0 else (1.0 / m)
        return total + _squared_loss(d, yt, n_el, code, scale[0])
    if loss_code == 2:
        scale[0] = 1.0 / (m * k_out)
        return total + _bce_loss(z, d, yt, n_el, scale[0])
    scale[0] = 1.0 / m
    return _cross_entropy_loss(z, d, yt, k_out, t, scale[0], total)


@njit(inline="always", **_JIT)
def _backward(sizes, acts, P, G, wofs, bofs, zrow, xt, Z, D, t):
    """Deltas back through the layers and the gradient of every layer added into G."""
    L = sizes.shape[0] - 1
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
            pz = zrow[L + l - 1] * t if zrow[L + l - 1] >= 0 else po
            _derivative(acts[l - 1], Z[po:po + nin * t], Z[pz:pz + nin * t],
                        D[po:po + nin * t], nin * t)


# inlined as well: called once a step, a function taking four tuples of arrays cost W3's
# online step (4-7-3, one row) about a sixth of its time
@njit(inline="always", **_JIT)
def _tiles(data, net, layout, base, lo, hi, m, P, G, tile):
    """Rows lo:hi of the batch order[base:base + m], tile by tile: forward, loss, backward,
    the gradient added into G. ``tile``: this chunk's (Z, D, xt, yt, scale) scratch.
    Returns the sum of the rows' loss terms."""
    X, Y, order = data
    sizes, acts, loss_code, fast = net
    wofs, bofs, zrow = layout
    Z, D, xt, yt, scale = tile
    L = sizes.shape[0] - 1
    k_out = Y.shape[1]
    total = 0.0
    for t0 in range(lo, hi, TILE):
        t = min(TILE, hi - t0)
        _gather(X, Y, order, base, t0, t, xt, yt)
        _forward(sizes, acts, fast, P, wofs, bofs, zrow, xt, Z, t)
        zo = zrow[L - 1] * t
        n_el = k_out * t
        total = _loss(net, m, Z[zo:zo + n_el], D[zo:zo + n_el], yt, k_out, t, scale, total)
        _backward(sizes, acts, P, G, wofs, bofs, zrow, xt, Z, D, t)
    return total


@njit(**_JIT)
def _chunk(j, nc, data, net, layout, base, m, P, scratch):
    """Chunk j of nc: a contiguous run of the batch's tiles into its own gradient Gs[j]."""
    Gs, Zs, Ds, xts, yts, scales, totals = scratch
    nt = (m + TILE - 1) // TILE
    lo = min((j * nt // nc) * TILE, m)
    hi = min(((j + 1) * nt // nc) * TILE, m)
    g = Gs[j]
    for i in range(g.shape[0]):
        g[i] = 0
    old = flush()                       # this thread's state (``fpenv``)
    totals[j] = _tiles(data, net, layout, base, lo, hi, m, P, g,
                       (Zs[j], Ds[j], xts[j], yts[j], scales[j]))
    restore(old)


@njit(parallel=True, **_JIT)
def _chunks_parallel(nc, data, net, layout, base, m, P, scratch):
    """The chunks on numba's threads (the caller sets numba's chunk size to 1, so that they
    are handed out one at a time and a thread the system pauses holds up one chunk, not a
    fixed share; set inside, it would keep numba from caching this function)."""
    for j in prange(nc):
        _chunk(j, nc, data, net, layout, base, m, P, scratch)


@njit(**_JIT)
def _layout(sizes, acts):
    """(wofs, bofs, zrow): the offsets of each layer's W and b in P, and of its tile in Z
    and D (per TILE); zrow[L + l]: of the copy of its pre-activation z after all the tiles
    (-1: not kept)."""
    L = sizes.shape[0] - 1
    wofs = np.empty(L, dtype=np.int64)
    bofs = np.empty(L, dtype=np.int64)
    zrow = np.empty(2 * L, dtype=np.int64)
    p = 0
    q = 0
    for l in range(L):
        wofs[l] = p
        p += sizes[l] * sizes[l + 1]
        bofs[l] = p
        p += sizes[l + 1]
        zrow[l] = q
        q += sizes[l + 1]
    for l in range(L):
        zrow[L + l] = -1
        if acts[l, 1] != 0:
            zrow[L + l] = q
            q += sizes[l + 1]
    return wofs, bofs, zrow


@njit(inline="always", **_JIT)
def _shift_all(P, V, c, sizes, wofs, bofs, sign):
    """Every parameter with a look-ahead column to its look-ahead point (sign 1) or back
    (sign -1): P += sign look V, weights and biases by their own rows."""
    L = sizes.shape[0] - 1
    for l in range(L):
        mu_l = c[2 * l, 7]                  # negated in c's dtype: the same rounding as +
        if mu_l != 0:
            _shift(P, V, wofs[l], bofs[l], mu_l if sign > 0 else -mu_l)
        mu_l = c[2 * l + 1, 7]
        if mu_l != 0:
            _shift(P, V, bofs[l], bofs[l] + sizes[l + 1], mu_l if sign > 0 else -mu_l)


@njit(inline="always", **_JIT)
def _batch_gradient(data, net, layout, base, m, P, G, scratch, parallel):
    """G := the gradient of the batch order[base:base + m] at P; returns its loss terms'
    sum. A batch of several tiles is cut into up to Gs.shape[0] chunks of whole tiles, each
    summed on its own and then in chunk order: the same numbers on one thread or many."""
    Gs, Zs, Ds, xts, yts, scales, totals = scratch
    p = G.shape[0]
    nc = min(Gs.shape[0], (m + TILE - 1) // TILE)
    if nc == 1:
        for i in range(p):
            G[i] = 0
        return _tiles(data, net, layout, base, 0, m, m, P, G,
                      (Zs[0], Ds[0], xts[0], yts[0], scales[0]))
    if parallel:
        _chunks_parallel(nc, data, net, layout, base, m, P, scratch)
    else:
        for j in range(nc):
            _chunk(j, nc, data, net, layout, base, m, P, scratch)
    total = 0.0
    for j in range(nc):
        total += totals[j]
    for i in range(p):
        G[i] = Gs[0, i]
    for j in range(1, nc):
        g = Gs[j]
        for i in range(p):
            G[i] += g[i]
    return total


@njit(inline="always", **_JIT)
def batch_loss(loss_code, total, m, k_out):
    """A batch of m rows' loss from its terms' sum ``total`` (the loss record's code: mse
    and bce average over the outputs too, quadratic halves)."""
    if loss_code == 0 or loss_code == 2:
        return total / (m * k_out)
    if loss_code == 1:
        return total / (2 * m)
    return total / m


@njit(inline="always", **_JIT)
def _update_all(params, c, sizes, wofs, bofs):
    """The closed-form update of every layer's weights and biases with the step's rows c:
    params (P, V, G, Pn, Vn), the state read from P, V and the new one written to Pn, Vn.
    Returns the sum of 0 * w' (NaN when some w' is not finite)."""
    P, V, G, Pn, Vn = params
    L = sizes.shape[0] - 1
    chk = P.dtype.type(0)
    for l in range(L):
        chk += _update(P, V, G, Pn, Vn, wofs[l], bofs[l], c[2 * l])
        chk += _update(P, V, G, Pn, Vn, bofs[l], bofs[l] + sizes[l + 1], c[2 * l + 1])
    return chk


@njit(inline="always", **_JIT)
def _update_all_sq(params, c, sizes, wofs, bofs):
    """``_update_all`` that also returns the sum of the squared weights (biases not counted)
    before the update: (check, sum)."""
    P, V, G, Pn, Vn = params
    L = sizes.shape[0] - 1
    chk = P.dtype.type(0)
    sq = 0.0
    for l in range(L):
        chk_w, sq_w = _update_sq(P, V, G, Pn, Vn, wofs[l], bofs[l], c[2 * l])
        chk += chk_w
        sq += sq_w
        chk += _update(P, V, G, Pn, Vn, bofs[l], bofs[l] + sizes[l + 1], c[2 * l + 1])
    return chk, sq


@njit(**_JIT)
def train_steps(data, plan, net, params, scratch, out, parallel, check, weights_sq=None):
    """Run len(starts) training steps (the contract: ``inertia.fused``'s docstring).

    data (X, Y, order); plan (starts, counts, kinds, coef): step s trains on rows
    order[starts[s]:...+counts[s]] with the rows coef[kinds[s]] ((2 L, N_COEF): weights and
    biases of each layer); net (sizes, acts, loss_code, fast); params (P, V, G, Pb, Vb);
    scratch (Gs, Zs, Ds, xts, yts, scales, totals). Writes step s's batch loss to out[s],
    and with ``weights_sq`` ((S,) float64) the sum of the squared weights (biases not
    counted) that step s's update starts from to weights_sq[s], summed in the update's pass
    (scikit-learn's L2 term; without it, numba compiles the loop without the sum).

    With ``check``, a step whose loss is not finite puts P, V back to the one-step-back copy
    Pb, Vb (the state before the previous step, the last whose loss was finite) and a step
    whose update makes a parameter non-finite puts them back to the state before it; either
    way the call returns that step's index (its loss in out). Otherwise it returns
    len(starts). On return P, V hold the state and Pb, Vb the state before the last step
    run (after a divergence, the state gone back to).

    The two pairs take turns (ping-pong): a step reads the state from one pair and writes
    the new one into the other, so the state before it stays where it was, as the one-step-
    back copy, at no cost; an odd number of steps leaves the state in Pb, Vb, and the pairs'
    contents are swapped once at the end. Storing the old values in the update's loop
    instead cost W3's online step (4-7-3, one row) about 7% of its time.

    Subnormal numbers are flushed to zero while it runs (``fpenv``)."""
    old = flush()
    n = _steps(data, plan, net, params, scratch, out, parallel, check, weights_sq)
    restore(old)
    return n


@njit(**_JIT)
def _steps(data, plan, net, params, scratch, out, parallel, check, weights_sq):
    """``train_steps``'s steps, with the floating-point state as it set it."""
    starts, counts, kinds, coef = plan
    sizes, acts, loss_code, fast = net
    P, V, G, Pb, Vb = params
    k_out = data[1].shape[1]
    layout = _layout(sizes, acts)
    wofs, bofs, zrow = layout
    p = G.shape[0]
    flip = False                        # the state is in (Pb, Vb), the one before in (P, V)
    for s in range(starts.shape[0]):
        c = coef[kinds[s]]
        m = counts[s]
        Pc, Vc, Pn, Vn = (Pb, Vb, P, V) if flip else (P, V, Pb, Vb)
        _shift_all(Pc, Vc, c, sizes, wofs, bofs, 1.0)      # the look-ahead point w + mu v
        total = _batch_gradient(data, net, layout, starts[s], m, Pc, G, scratch, parallel)
        out[s] = batch_loss(loss_code, total, m, k_out)
        if check and not np.isfinite(out[s]):
            _restore(Pc, Vc, Pn, Vn, p)        # back to the state before the previous step
            return s
        _shift_all(Pc, Vc, c, sizes, wofs, bofs, -1.0)
        if weights_sq is None:
            chk = _update_all((Pc, Vc, G, Pn, Vn), c, sizes, wofs, bofs)
        else:
            chk, sq = _update_all_sq((Pc, Vc, G, Pn, Vn), c, sizes, wofs, bofs)
            weights_sq[s] = sq
        if check and not np.isfinite(chk):
            _restore(Pn, Vn, Pc, Vc, p)        # back to the state before this step
            return s
        flip = not flip
    if flip:
        _swap(P, Pb, p)
        _swap(V, Vb, p)
    return starts.shape[0]
