"""Activations: one record each, read by every path (NumPy and torch engines, compiled loop,
benchmark).

A record says:

    name, params    the activation and its parameters (name, default, check), e.g.
                    leaky_relu's negative_slope = 0.01
    which           what the derivative is computed from: "output" (a = f(z), so the layer
                    overwrites z with a) or "input" (the pre-activation z, which the layer then
                    keeps in its own buffer)
    init            the weight initialisation a layer with it gets ("he_normal" or
                    "glorot_uniform")
    code            the compiled loop's code (``fused/tiles.py`` dispatches on it)
    np_forward      forward(z, p, s): z := f(z) in place, NumPy ufuncs with ``out=``
    np_derivative   derivative(src, delta, p, s): delta := delta * f'(z), src = a or z (which)
    scratch         the scratch arrays shaped like z that both take in ``s``: "f" of the
                    array's dtype, "b" boolean (engines keep them, so nothing is allocated)
    simd32          the float32 SIMD kernels of ``engines/simd.py`` (forward, derivative)
                    where they exist
    identity        f(z) = z (linear): an engine may skip the forward and derivative calls
    torch           the torch ops: the forward, a Tensor in-place method (a name ending in
                    "_", called as ``z.name_(**kw)``) or an aten op (``op.out(z, **kw,
                    out=z)``), the aten backward op (``op.grad_input(delta, **kw,
                    grad_input=delta)``), the name of
                    the backward argument that receives ``src``, fixed keyword arguments of
                    both, and those of the backward only

p is the tuple of parameter values in the record's order; s the tuple of scratch arrays.

Spelling of an activation with parameters (``Dense(units, activation)`` and the CLI's
``--layers``): ``"name"`` (defaults), ``"name:value:..."`` (values in the record's order) or
``"name:key=value:..."``; ``Dense(64, "leaky_relu", negative_slope=0.2)`` is the same as
``Dense(64, "leaky_relu:0.2")``. The canonical spelling (``spec``) names only the parameters
that differ from their defaults, as key=value: ``"leaky_relu:negative_slope=0.2"``.

All functions here are the NumPy forms; they work for float32 and float64.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np

# --------------------------------------------------------------------------- NumPy forms
_ERF = []


def _erf():
    """scipy.special.erf (a ufunc with ``out=``; NumPy has none), imported on first use."""
    if not _ERF:
        from scipy.special import erf

        _ERF.append(erf)
    return _ERF[0]


SQRT1_2 = math.sqrt(0.5)
INV_SQRT_2PI = 1.0 / math.sqrt(2.0 * math.pi)     # torch's kBeta of the exact GELU backward
GELU_BETA = math.sqrt(2.0 / math.pi)              # torch's kBeta of the tanh GELU
GELU_KAPPA = 0.044715


def _linear(z, p=(), s=()):
    return z


def _linear_d(a, delta, p=(), s=()):
    return delta


def _sigmoid(z, p=(), s=()):
    # 1 / (1 + exp(-z)) in place: exp overflows to inf for z < -88 and 1 / inf = 0
    np.negative(z, out=z)
    np.exp(z, out=z)
    z += 1
    return np.reciprocal(z, out=z)


def _sigmoid_d(a, delta, p=(), s=(None,)):
    # f' = a (1 - a)
    tmp = np.subtract(1, a, out=s[0])
    tmp *= a
    delta *= tmp
    return delta


def _tanh(z, p=(), s=()):
    return np.tanh(z, out=z)


def _tanh_d(a, delta, p=(), s=(None,)):
    # f' = 1 - a^2
    tmp = np.multiply(a, a, out=s[0])
    np.subtract(1, tmp, out=tmp)
    delta *= tmp
    return delta


def _relu(z, p=(), s=()):
    return np.maximum(z, 0, out=z)


def _relu_d(a, delta, p=(), s=(None,)):
    # f' = 1 where a > 0 else 0
    tmp = s[0]
    tmp = np.greater(a, 0, out=tmp, casting="unsafe") if tmp is not None else (a > 0)
    delta *= tmp
    return delta


def softmax_rows(z, row=None):
    """Row-wise softmax in place, max subtracted first (``row``: an (n, 1) scratch). The
    ufuncs' own reduce: np.max / np.sum with out= cost more than a small batch's rows."""
    row = np.maximum.reduce(z, axis=1, keepdims=True, out=row)
    z -= row
    np.exp(z, out=z)
    row = np.add.reduce(z, axis=1, keepdims=True, out=row)
    z /= row
    return z


def _softmax(z, p=(), s=()):
    return softmax_rows(z)


def _softmax_d(a, delta, p=(), s=()):
    raise ValueError("softmax has no elementwise derivative; use it only as the output layer "
                     "with loss='cross_entropy'")


def _leaky_relu(z, p, s):
    # torch: z > 0 ? z : z * negative_slope
    m = np.less(z, 0, out=s[0])
    np.multiply(z, p[0], out=z, where=m)
    return z


def _leaky_relu_d(a, delta, p, s):
    # f' = 1 where a > 0, else negative_slope (a > 0 exactly where z > 0, as slope >= 0)
    m = np.less_equal(a, 0, out=s[0])
    np.multiply(delta, p[0], out=delta, where=m)
    return delta


def _elu(z, p, s):
    # torch: z > 0 ? z : alpha (exp(z) - 1)
    m = np.less_equal(z, 0, out=s[0])
    np.expm1(z, out=z, where=m)
    np.multiply(z, p[0], out=z, where=m)
    return z


def _elu_d(a, delta, p, s):
    # f' = 1 where a > 0, else alpha exp(z) = a + alpha (a > 0 exactly where z > 0, alpha > 0)
    m = np.less_equal(a, 0, out=s[0])
    t = np.add(a, p[0], out=s[1])
    np.multiply(delta, t, out=delta, where=m)
    return delta


def _gelu(z, p, s):
    t = s[0]
    if p[0] == "tanh":       # z/2 (1 + tanh(sqrt(2/pi) (z + 0.044715 z^3)))
        np.multiply(z, z, out=t)
        t *= GELU_KAPPA
        t += 1
        t *= z
        t *= GELU_BETA
        np.tanh(t, out=t)
    else:                    # z/2 (1 + erf(z / sqrt 2))
        np.multiply(z, SQRT1_2, out=t)
        _erf()(t, out=t)
    t += 1
    z *= 0.5
    z *= t
    return z


def _gelu_d(z, delta, p, s):
    t, u = s[0], s[1]
    if p[0] == "tanh":
        # f' = (1 + h)/2 (1 + q (1 - h)), h = tanh(inner), q = z sqrt(2/pi) (1 + 3 k z^2)
        np.multiply(z, z, out=t)
        t *= GELU_KAPPA
        t += 1
        t *= z
        t *= GELU_BETA
        np.tanh(t, out=t)                 # h
        np.multiply(z, z, out=u)
        u *= 3 * GELU_KAPPA
        u += 1
        u *= GELU_BETA
        u *= z                            # q
        np.subtract(1, t, out=t)          # 1 - h
        u *= t
        u += 1
        np.subtract(2, t, out=t)          # 1 + h
        t *= 0.5
        t *= u
    else:
        # f' = Phi(z) + z phi(z)
        np.multiply(z, SQRT1_2, out=t)
        _erf()(t, out=t)
        t += 1
        t *= 0.5
        np.multiply(z, z, out=u)
        u *= -0.5
        np.exp(u, out=u)
        u *= INV_SQRT_2PI
        u *= z
        t += u
    delta *= t
    return delta


def _sigmoid_into(z, out):
    np.negative(z, out=out)
    np.exp(out, out=out)
    out += 1
    return np.reciprocal(out, out=out)


def _silu(z, p, s):
    # z sigmoid(z)
    with np.errstate(over="ignore"):
        z *= _sigmoid_into(z, s[0])
    return z


def _silu_d(z, delta, p, s):
    # f' = sig (1 + z (1 - sig))
    with np.errstate(over="ignore"):
        t = _sigmoid_into(z, s[0])
    u = np.subtract(1, t, out=s[1])
    u *= z
    u += 1
    t *= u
    delta *= t
    return delta


def _softplus(z, p, s):
    # torch: beta z > threshold ? z : log1p(exp(beta z)) / beta
    t = np.multiply(z, p[0], out=s[0])
    m = np.less_equal(t, p[1], out=s[2])
    np.exp(t, out=t, where=m)
    np.log1p(t, out=t, where=m)
    np.divide(t, p[0], out=z, where=m)
    return z


def _softplus_d(z, delta, p, s):
    # f' = e / (e + 1), e = exp(beta z); 1 above the threshold
    t = np.multiply(z, p[0], out=s[0])
    m = np.less_equal(t, p[1], out=s[2])
    np.exp(t, out=t, where=m)
    u = np.add(t, 1, out=s[1])
    np.divide(t, u, out=t)
    np.multiply(delta, t, out=delta, where=m)
    return delta


# --------------------------------------------------------------------------- records
def _nonnegative(v):
    return v >= 0


def _positive(v):
    return v > 0


def _anything(v):
    return True


@dataclass(frozen=True)
class Param:
    """A parameter: name, default, and a check on its value (floats are finite first).
    ``choices``: a string parameter's allowed values (the compiled loop gets the index)."""

    name: str
    default: object
    check: object = _anything
    rule: str = ""            # the check in words, for the error message
    choices: tuple = ()


@dataclass(frozen=True)
class TorchOps:
    forward: str               # a Tensor in-place method ("sigmoid_") or an aten op with ``out``
    backward: str              # aten op with a ``grad_input`` overload
    source: str                # the backward's argument that takes src (a or z)
    kwargs: dict = field(default_factory=dict)          # fixed, forward and backward
    backward_kwargs: dict = field(default_factory=dict)


@dataclass(frozen=True)
class Record:
    name: str
    code: int
    which: str                 # "output" or "input"
    init: str                  # "he_normal" or "glorot_uniform"
    np_forward: object
    np_derivative: object
    scratch: tuple = ()
    params: tuple = ()
    simd32: tuple = ()
    torch: TorchOps | None = None
    rowwise: bool = False      # softmax: a row-wise function, only for the output layer
    identity: bool = False     # linear: f(z) = z, f' = 1 (engines skip the calls)


_SLOPE = Param("negative_slope", 0.01, _nonnegative, ">= 0")
_ALPHA = Param("alpha", 1.0, _positive, "> 0")
_APPROX = Param("approximate", "none", choices=("none", "tanh"))
_BETA = Param("beta", 1.0, _positive, "> 0")
_THRESHOLD = Param("threshold", 20.0)

RECORDS = {r.name: r for r in (
    Record("linear", 0, "output", "glorot_uniform", _linear, _linear_d, identity=True),
    Record("sigmoid", 1, "output", "glorot_uniform", _sigmoid, _sigmoid_d, ("f",),
           simd32=("sigmoid_", "sigmoid_backward_"),
           torch=TorchOps("sigmoid_", "sigmoid_backward", "output")),
    Record("tanh", 2, "output", "glorot_uniform", _tanh, _tanh_d, ("f",),
           simd32=("tanh_", "tanh_backward_"),
           torch=TorchOps("tanh_", "tanh_backward", "output")),
    Record("relu", 3, "output", "he_normal", _relu, _relu_d, ("f",),
           torch=TorchOps("relu_", "threshold_backward", "self",
                          backward_kwargs={"threshold": 0.0})),
    Record("softmax", 4, "output", "glorot_uniform", _softmax, _softmax_d, rowwise=True),
    Record("leaky_relu", 5, "output", "he_normal", _leaky_relu, _leaky_relu_d, ("b",),
           params=(_SLOPE,),
           torch=TorchOps("leaky_relu", "leaky_relu_backward", "self",
                          backward_kwargs={"self_is_result": True})),
    Record("elu", 6, "output", "he_normal", _elu, _elu_d, ("b", "f"), params=(_ALPHA,),
           torch=TorchOps("elu", "elu_backward", "self_or_result",
                          kwargs={"scale": 1.0, "input_scale": 1.0},
                          backward_kwargs={"is_result": True})),
    Record("gelu", 7, "input", "he_normal", _gelu, _gelu_d, ("f", "f"), params=(_APPROX,),
           torch=TorchOps("gelu", "gelu_backward", "self")),
    Record("silu", 8, "input", "he_normal", _silu, _silu_d, ("f", "f"),
           torch=TorchOps("silu", "silu_backward", "self")),
    Record("softplus", 9, "input", "he_normal", _softplus, _softplus_d, ("f", "f", "b"),
           params=(_BETA, _THRESHOLD),
           torch=TorchOps("softplus", "softplus_backward", "self")),
)}

NAMES = tuple(RECORDS)
# the activations a hidden layer may have (softmax only as the output layer)
HIDDEN = tuple(n for n, r in RECORDS.items() if not r.rowwise)


@dataclass(frozen=True)
class Activation:
    """A record with its parameter values: what a layer holds. ``spec`` is its canonical
    spelling, ``values`` the parameters in the record's order, ``kwargs`` by name."""

    rec: Record
    values: tuple
    spec: str

    @property
    def kwargs(self):
        return {q.name: v for q, v in zip(self.rec.params, self.values)}

    @property
    def keeps_input(self):
        """Whether the layer must keep its pre-activation z for the derivative."""
        return self.rec.which == "input"

    def source(self, a, z):
        """What the derivative is computed from: the output a, or the pre-activation z (a
        one-line ValueError when it is needed and missing)."""
        if not self.keeps_input:
            return a
        if z is None:
            raise ValueError(f"the {self.rec.name} derivative needs the pre-activation z: pass "
                             "activate_backward_(name, a, delta, z)")
        return z

    def compiled_params(self):
        """The parameters as floats for the compiled loop (a string: its choice's index)."""
        return tuple(float(q.choices.index(v)) if q.choices else float(v)
                     for q, v in zip(self.rec.params, self.values))


def _value(rec, q, text_or_value, spelled):
    v = text_or_value
    if q.choices:
        if v not in q.choices:
            raise ValueError(f"{rec.name}'s {q.name} must be one of "
                             f"{', '.join(map(repr, q.choices))}, got {v!r} in {spelled!r}")
        return v
    try:
        v = float(v)
    except (TypeError, ValueError):
        raise ValueError(f"{rec.name}'s {q.name} must be a number, got {v!r} in "
                         f"{spelled!r}") from None
    if not math.isfinite(v) or not q.check(v):
        raise ValueError(f"{rec.name}'s {q.name} must be finite{' and ' + q.rule if q.rule else ''}"
                         f", got {v!r} in {spelled!r}")
    return v


def _parse(spelled, extra):
    """(record, {param: raw value}) from a spelling and keyword parameters."""
    if not isinstance(spelled, str):
        raise ValueError(f"an activation is a name string, got {spelled!r}: choose one of "
                         f"{', '.join(NAMES)}")
    name, *parts = spelled.split(":")
    rec = RECORDS.get(name.strip())
    if rec is None:
        raise ValueError(f"unknown activation {name.strip()!r}: choose one of {', '.join(NAMES)}")
    names = [q.name for q in rec.params]
    given = {}
    for i, part in enumerate(parts):
        key, eq, val = part.partition("=")
        key = key.strip() if eq else (names[i] if i < len(names) else None)
        if key is None:
            raise ValueError(f"{rec.name} takes {len(names)} parameter(s) "
                             f"({', '.join(names) or 'none'}), got {spelled!r}")
        given[key] = (val if eq else part).strip()
    for key, val in extra.items():
        if key in given:
            raise ValueError(f"{rec.name}'s {key} is given twice ({spelled!r} and {key}=)")
        given[key] = val
    unknown = [k for k in given if k not in names]
    if unknown:
        raise ValueError(f"{rec.name} has no parameter {unknown[0]!r}: its parameters are "
                         f"{', '.join(names) or 'none'}")
    return rec, given


_CACHE: dict = {}


def get(spelled, **params) -> Activation:
    """The Activation for a spelling (see the module docstring) and keyword parameters, or a
    one-line ValueError naming what is wrong."""
    if not params:
        hit = _CACHE.get(spelled) if isinstance(spelled, str) else None
        if hit is not None:
            return hit
    rec, given = _parse(spelled, params)
    values = tuple(_value(rec, q, given[q.name], spelled) if q.name in given else q.default
                   for q in rec.params)
    spec = rec.name + "".join(f":{q.name}={v if q.choices else repr(float(v))}"
                              for q, v in zip(rec.params, values) if v != q.default)
    act = Activation(rec, values, spec)
    if len(_CACHE) > 256:
        _CACHE.clear()
    _CACHE[spec] = act
    if not params:
        _CACHE[spelled] = act
    return act


def check(name: str) -> str:
    """Return the canonical spelling of ``name`` if it is a known activation, else raise a
    one-line ValueError."""
    return get(name).spec


# --------------------------------------------------------------------------- host helpers
def _host_scratch(act, shape, dtype):
    return tuple(np.empty(shape, dtype=bool if k == "b" else dtype) for k in act.rec.scratch)


def forward(spelled, z):
    """f(z) as a new NumPy array (z unchanged); softmax row-wise."""
    act = get(spelled)
    out = np.array(z, copy=True)
    with np.errstate(over="ignore", under="ignore"):
        return act.rec.np_forward(out, act.values, _host_scratch(act, out.shape, out.dtype))


def derivative(spelled, a, z):
    """f'(z) as a new NumPy array, from the output a or the input z as the record says."""
    act = get(spelled)
    src = np.asarray(z if act.keeps_input else a)
    d = np.ones_like(src)
    return act.rec.np_derivative(src, d, act.values, _host_scratch(act, src.shape, src.dtype))


# the parameterless NumPy forms by name: forward(z) and backward(a, delta, tmp) from the output
FORWARD = {n: (lambda z, r=r: r.np_forward(z, (), ())) for n, r in RECORDS.items()
           if not r.params}
FORWARD["softmax"] = softmax_rows
BACKWARD = {n: (lambda a, delta, tmp=None, r=r: r.np_derivative(a, delta, (), (tmp,)))
            for n, r in RECORDS.items() if not r.params and r.which == "output"}
