"""Runs in the vector lanes: one dense layer of 8 runs at once, against the compiled loop's
row-inner form for one run, with numba's SLP vectorizer off (its default) and on.

The multi-run kernel (``inertia.fused.runs``) takes each run through ``tiles.py``'s stages,
one run after another; its arithmetic is each run's fit's, bit for bit, and a sweep gains
over sequential fits only the shared shuffles, gathers and calls, and the second core (W6 at
batch 64: about 3 times). The alternative is the run axis innermost: activations laid out
[feature][row][lane] with 8 runs in the lanes, weights [out][in][lane], every operation
8 runs wide. Written out lane by lane (loads first, then stores), such code is
straight-line scalar code that only LLVM's SLP vectorizer turns into vector instructions,
and numba runs LLVM without it unless ``NUMBA_SLP_VECTORIZE=1`` (``numba.config``): earlier
prototypes of this layout compiled to scalar code and ran 2 to 3 times slower than the
row-inner kernel for that reason.

This script times a 8-in, 8-out layer over a 64-row tile (W6's middle layer at batch 64)
three ways, each in a process of its own:

rows        the row-inner loop of one run (the compiled loop's form: a scalar weight times a
            row of the tile), ns per row;
lanes       8 runs in the lanes, SLP off (numba's default), ns per row and run;
lanes+SLP   the same code with ``NUMBA_SLP_VECTORIZE=1``.

Usage: ``python benchmarks/lanes.py`` (a few seconds). It prints the three and their ratios.
The multi-run kernel ``inertia.fused.lanes`` is built on this layout (each run equal to its
fit to float32 rounding, not bit for bit); its lane loads and stores index with unsigned
integers: through a slice (as this script's layer does), numba's bound clipping and
negative-index wrapping cost more than the arithmetic (docs/ARCHITECTURE.md, the sweep's
part, has the whole kernel's figures).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time

NIN, NOUT, T, LANES = 8, 8, 64, 8


def _kernels():
    from numba import njit

    jit = dict(fastmath={"nsz", "arcp", "contract", "afn", "reassoc"}, error_model="numpy",
               nogil=True)

    @njit(**jit)
    def rows(W, b, x, z, nin, nout, t):
        """z[j, r] = b[j] + sum_k W[j, k] x[k, r]: one run, rows innermost."""
        for j in range(nout):
            zz = z[j * t:(j + 1) * t]
            for r in range(t):
                zz[r] = b[j]
            for k in range(nin):
                w = W[j * nin + k]
                xx = x[k * t:(k + 1) * t]
                for r in range(t):
                    zz[r] += w * xx[r]

    @njit(**jit)
    def lanes(W, b, x, z, nin, nout, t):
        """z[j, r, :] = b[j, :] + sum_k W[j, k, :] x[k, r, :]: 8 runs in the lanes, each
        lane written out, all loads before the stores."""
        for j in range(nout):
            bb = b[j * 8:j * 8 + 8]
            for r in range(t):
                zz = z[(j * t + r) * 8:(j * t + r) * 8 + 8]
                b0, b1, b2, b3 = bb[0], bb[1], bb[2], bb[3]
                b4, b5, b6, b7 = bb[4], bb[5], bb[6], bb[7]
                zz[0], zz[1], zz[2], zz[3] = b0, b1, b2, b3
                zz[4], zz[5], zz[6], zz[7] = b4, b5, b6, b7
            for k in range(nin):
                ww = W[(j * nin + k) * 8:(j * nin + k) * 8 + 8]
                w0, w1, w2, w3 = ww[0], ww[1], ww[2], ww[3]
                w4, w5, w6, w7 = ww[4], ww[5], ww[6], ww[7]
                for r in range(t):
                    zz = z[(j * t + r) * 8:(j * t + r) * 8 + 8]
                    xx = x[(k * t + r) * 8:(k * t + r) * 8 + 8]
                    a0, a1, a2, a3 = xx[0], xx[1], xx[2], xx[3]
                    a4, a5, a6, a7 = xx[4], xx[5], xx[6], xx[7]
                    c0, c1, c2, c3 = zz[0], zz[1], zz[2], zz[3]
                    c4, c5, c6, c7 = zz[4], zz[5], zz[6], zz[7]
                    zz[0], zz[1], zz[2], zz[3] = (c0 + w0 * a0, c1 + w1 * a1, c2 + w2 * a2,
                                                  c3 + w3 * a3)
                    zz[4], zz[5], zz[6], zz[7] = (c4 + w4 * a4, c5 + w5 * a5, c6 + w6 * a6,
                                                  c7 + w7 * a7)

    return rows, lanes


def _best(f, args, reps=20000, rounds=5):
    f(*args)
    best = float("inf")
    for _ in range(rounds):
        t0 = time.perf_counter()
        for _ in range(reps):
            f(*args)
        best = min(best, (time.perf_counter() - t0) / reps)
    return best


def measure(which):
    """ns per row (rows) or per row and run (lanes) of the layer, checked against NumPy."""
    import numpy as np

    rows, lanes = _kernels()
    rng = np.random.default_rng(0)
    W = rng.standard_normal(NOUT * NIN * LANES).astype(np.float32)
    b = rng.standard_normal(NOUT * LANES).astype(np.float32)
    x = rng.standard_normal(NIN * T * LANES).astype(np.float32)
    if which == "rows":
        W, b, x = W[:NOUT * NIN].copy(), b[:NOUT].copy(), x[:NIN * T].copy()
        z = np.zeros(NOUT * T, np.float32)
        ref = b[:, None] + W.reshape(NOUT, NIN) @ x.reshape(NIN, T)
        seconds, per = _best(rows, (W, b, x, z, NIN, NOUT, T)), T
    else:
        z = np.zeros(NOUT * T * LANES, np.float32)
        ref = b.reshape(NOUT, 1, LANES) + np.einsum("jkl,krl->jrl", W.reshape(NOUT, NIN, LANES),
                                                    x.reshape(NIN, T, LANES))
        seconds, per = _best(lanes, (W, b, x, z, NIN, NOUT, T)), T * LANES
    error = float(np.abs(ref.ravel() - z).max())
    if error > 1e-4:
        raise RuntimeError(f"{which}: the layer is wrong (largest error {error:.3g})")
    return seconds * 1e9 / per


def main():
    if len(sys.argv) == 3 and sys.argv[1] == "--one":
        print(json.dumps(measure(sys.argv[2])))
        return
    out = {}
    for name, which, slp in (("rows", "rows", "0"), ("lanes", "lanes", "0"),
                             ("lanes+SLP", "lanes", "1")):
        env = {**os.environ, "NUMBA_SLP_VECTORIZE": slp}
        done = subprocess.run([sys.executable, __file__, "--one", which], env=env,
                              capture_output=True, text=True, check=True)
        out[name] = json.loads(done.stdout.strip().splitlines()[-1])
    print(f"a {NIN}-in, {NOUT}-out layer over {T} rows, float32, one thread")
    print(f"  rows (one run, the compiled loop's form)   {out['rows']:6.2f} ns a row")
    for name in ("lanes", "lanes+SLP"):
        print(f"  {name:<10} (8 runs, lanes written out)  {out[name]:6.2f} ns a row and run "
              f"({out['rows'] / out[name]:.2f}x rows)")


if __name__ == "__main__":
    main()
