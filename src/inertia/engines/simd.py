"""SIMD float32 kernels for the NumPy engine, compiled by numba.

NumPy's float32 exp and tanh cost 2 to 4 ns an element here, and a sigmoid written with
ufuncs takes four passes; the activations dominate small networks. These loops compile to
vector code (``fastmath`` without its no-NaN licence, and ``error_model="numpy"``: the
default error model's division checks keep a loop scalar) and run at well under 1 ns an
element. The compiled training loop (``inertia.fused.tiles``) calls the same kernels:

    exp      Cephes' expf: 2^k e^r with |r| <= ln 2 / 2, a degree-7 polynomial; 2^k is built from
             its exponent bits, so that the whole loop stays branch-free. Relative error about
             2e-7.
    tanh     Eigen's rational float32 approximation (degree 13 / 6, clamped at +-7.9053),
             absolute error about 3e-7.

float64 keeps NumPy's functions (the exactness tests run in float64). Every kernel takes flat,
C-contiguous views and works in place.
"""

from __future__ import annotations

import numpy as np
from numba import njit

f32 = np.float32
# every fast-math licence but "no NaN / no inf": NaN in must give NaN out, so that a
# diverging run shows its NaN loss
_JIT = dict(fastmath={"nsz", "arcp", "contract", "afn", "reassoc"}, error_model="numpy",
            cache=True)

LOG2E = f32(1.44269504088896341)
LN2_HI, LN2_LO = f32(0.693359375), f32(-2.12194440e-4)
E0, E1, E2, E3, E4, E5 = (f32(1.9875691500e-4), f32(1.3981999507e-3), f32(8.3334519073e-3),
                          f32(4.1665795894e-2), f32(1.6666665459e-1), f32(5.0000001201e-1))
EXP_LO, EXP_HI = f32(-87.0), f32(88.0)

T1, T3, T5, T7, T9, T11, T13 = (f32(4.89352455891786e-03), f32(6.37261928875436e-04),
                                f32(1.48572235717979e-05), f32(5.12229709037114e-08),
                                f32(-8.60467152213735e-11), f32(2.00018790482477e-13),
                                f32(-2.76076847742355e-16))
U0, U2, U4, U6 = (f32(4.89352518554385e-03), f32(2.26843463243900e-03),
                  f32(1.18534705686654e-04), f32(1.19825839466702e-06))
TANH_CLAMP = f32(7.90531110763549805)
ONE = f32(1.0)


@njit(**_JIT)
def sigmoid_(z):
    """z := 1 / (1 + exp(-z)) in place, one pass: e^-z = 2^k e^r with 2^k made from its
    exponent bits (a scalar bit view, which numba vectorises)."""
    for i in range(z.shape[0]):
        v = -z[i]
        v = EXP_HI if v > EXP_HI else v
        v = EXP_LO if v < EXP_LO else v
        k = np.floor(v * LOG2E + f32(0.5))
        r = v - k * LN2_HI - k * LN2_LO
        p = E0 * r + E1
        p = p * r + E2
        p = p * r + E3
        p = p * r + E4
        p = p * r + E5
        e = p * r * r + r + ONE
        two_k = np.int32((np.int32(k) + np.int32(127)) << np.int32(23)).view(np.float32)
        z[i] = ONE / (ONE + e * two_k)
    return z


@njit(**_JIT)
def tanh_(z):
    for i in range(z.shape[0]):
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
        z[i] = x * p / q
    return z


@njit(**_JIT)
def sigmoid_backward_(a, delta):
    """delta := delta * a (1 - a)."""
    for i in range(a.shape[0]):
        delta[i] *= a[i] * (ONE - a[i])
    return delta


@njit(**_JIT)
def tanh_backward_(a, delta):
    """delta := delta * (1 - a^2)."""
    for i in range(a.shape[0]):
        delta[i] *= ONE - a[i] * a[i]
    return delta


@njit(cache=True)
def add_row_(b, z):
    """z := z + b on every row (exact: one addition per element, as NumPy's)."""
    n, k = z.shape
    for i in range(n):
        for j in range(k):
            z[i, j] += b[j]
    return z
