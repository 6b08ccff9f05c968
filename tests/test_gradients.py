"""Backpropagation against central finite differences, in float64.

For every (output activation, loss) pair inertia accepts and a hidden layer of every
activation, ``net.gradients`` (the analytic gradient) must equal the central difference
(L(w + eps) - L(w - eps)) / (2 eps) of ``net.loss`` for every weight and bias. ReLU layers are
kept away from their kink: parameters and inputs are drawn until every ReLU pre-activation is
farther from 0 than any perturbation can move it.
"""

from __future__ import annotations

import numpy as np
import pytest

import inertia
from inertia import Dense, Network

EPS = 1e-6
RTOL = 1e-6
ATOL = 1e-9          # rounding of L(w +- eps) / eps is ~1e-16 / 1e-6 = 1e-10

HIDDEN = ["sigmoid", "tanh", "relu", "linear"]
PAIRS = ([("mse", a) for a in ("linear", "sigmoid", "tanh", "relu")]
         + [("quadratic", a) for a in ("linear", "sigmoid", "tanh", "relu")]
         + [("bce", "sigmoid"), ("cross_entropy", "softmax"),
            ("cross_entropy_labels", "softmax")])

N, N_IN, N_HID, N_OUT = 6, 3, 4, 3
MARGIN = 1e-3        # |z| of every ReLU pre-activation (a perturbation moves z by < 1e-5)


def host_forward(params, acts, X):
    """Pre-activations of every layer, in float64 on the host."""
    zs = []
    a = X
    for (w, b), act in zip(params, acts):
        z = a @ w.T + b
        zs.append(z)
        if act == "sigmoid":
            a = 1 / (1 + np.exp(-z))
        elif act == "tanh":
            a = np.tanh(z)
        elif act == "relu":
            a = np.maximum(z, 0)
        elif act == "softmax":
            s = np.exp(z - z.max(axis=1, keepdims=True))
            a = s / s.sum(axis=1, keepdims=True)
        else:
            a = z
    return zs


def make_case(hidden, out_act, loss, seed):
    """A float64 network with random nonzero biases, inputs and targets, no ReLU kinks."""
    rng = np.random.default_rng(seed)
    acts = [hidden, out_act]
    net = Network(N_IN, [Dense(N_HID, hidden), Dense(N_OUT, out_act)], seed=seed,
                  dtype="float64")
    for _ in range(1000):
        params = [(w, rng.uniform(-0.5, 0.5, b.shape)) for w, b in net.parameters()]
        if out_act == "relu":                          # most outputs active
            w, b = params[-1]
            params[-1] = (w, b + 1.0)
        X = rng.standard_normal((N, N_IN))
        zs = host_forward(params, acts, X)
        if all(np.abs(z).min() > MARGIN for z, act in zip(zs, acts) if act == "relu"):
            break
        net = Network(N_IN, [Dense(N_HID, hidden), Dense(N_OUT, out_act)],
                      seed=int(rng.integers(1 << 30)), dtype="float64")
    else:
        raise AssertionError("no kink-free ReLU case found")
    net.set_parameters(params)
    if loss == "bce":
        y = rng.uniform(0, 1, (N, N_OUT))
        y[:2] = np.round(y[:2])
    elif loss == "cross_entropy_labels":
        y = rng.integers(0, N_OUT, N)
    elif loss == "cross_entropy":
        y = np.eye(N_OUT)[rng.integers(0, N_OUT, N)]
    else:
        y = rng.standard_normal((N, N_OUT))
    return net, X, y


def numerical_gradient(net, X, y, loss):
    params = net.parameters()
    out = []
    for i, (w, b) in enumerate(params):
        grads = []
        for j, arr in enumerate((w, b)):
            g = np.zeros_like(arr)
            for idx in np.ndindex(arr.shape):
                vals = []
                for sign in (1.0, -1.0):
                    p = [(ww.copy(), bb.copy()) for ww, bb in params]
                    p[i][j][idx] += sign * EPS
                    net.set_parameters(p)
                    vals.append(net.loss(X, y, loss))
                g[idx] = (vals[0] - vals[1]) / (2 * EPS)
            grads.append(g)
        out.append(tuple(grads))
    net.set_parameters(params)
    return out


@pytest.mark.parametrize("hidden", HIDDEN)
@pytest.mark.parametrize("loss_name,out_act", PAIRS)
def test_gradients_match_finite_differences(hidden, loss_name, out_act):
    seed = 7 + HIDDEN.index(hidden) + 10 * PAIRS.index((loss_name, out_act))
    loss = "cross_entropy" if loss_name == "cross_entropy_labels" else loss_name
    net, X, y = make_case(hidden, out_act, loss_name, seed)
    before = net.parameters()
    value, grads = net.gradients(X, y, loss)
    # gradients() leaves the weights alone and reports the loss that net.loss measures
    for (w0, b0), (w1, b1) in zip(before, net.parameters()):
        np.testing.assert_array_equal(w0, w1)
        np.testing.assert_array_equal(b0, b1)
    assert value == pytest.approx(net.loss(X, y, loss), rel=1e-14)
    assert len(grads) == 2
    num = numerical_gradient(net, X, y, loss)
    for i, ((dw, db), (nw, nb)) in enumerate(zip(grads, num)):
        assert dw.shape == before[i][0].shape and db.shape == before[i][1].shape
        assert np.abs(dw).max() > 1e-6, f"layer {i}: the weight gradient is all ~zero"
        np.testing.assert_allclose(dw, nw, rtol=RTOL, atol=ATOL,
                                   err_msg=f"dW layer {i} ({hidden} -> {out_act}, {loss_name})")
        np.testing.assert_allclose(db, nb, rtol=RTOL, atol=ATOL,
                                   err_msg=f"db layer {i} ({hidden} -> {out_act}, {loss_name})")


def test_gradients_deeper_network():
    """Three layers: the delta passes through two activation derivatives."""
    rng = np.random.default_rng(3)
    net = Network(2, [Dense(3, "tanh"), Dense(3, "sigmoid"), Dense(2, "linear")], seed=3,
                  dtype="float64")
    net.set_parameters([(w, rng.uniform(-0.5, 0.5, b.shape)) for w, b in net.parameters()])
    X = rng.standard_normal((5, 2))
    y = rng.standard_normal((5, 2))
    _, grads = net.gradients(X, y, "mse")
    num = numerical_gradient(net, X, y, "mse")
    for (dw, db), (nw, nb) in zip(grads, num):
        np.testing.assert_allclose(dw, nw, rtol=RTOL, atol=ATOL)
        np.testing.assert_allclose(db, nb, rtol=RTOL, atol=ATOL)


def test_cross_entropy_labels_equal_one_hot():
    net, X, labels = make_case("tanh", "softmax", "cross_entropy_labels", 11)
    v1, g1 = net.gradients(X, labels, "cross_entropy")
    v2, g2 = net.gradients(X, np.eye(N_OUT)[labels], "cross_entropy")
    assert v1 == v2
    for (a, b), (c, d) in zip(g1, g2):
        np.testing.assert_array_equal(a, c)
        np.testing.assert_array_equal(b, d)


# --------------------------------------------------------------------------- invalid pairs
def one_line_value_error(excinfo):
    msg = str(excinfo.value)
    assert msg and "\n" not in msg, f"not a one-line message: {msg!r}"


@pytest.mark.parametrize("loss,out_act", [
    ("mse", "softmax"), ("quadratic", "softmax"), ("bce", "softmax"),
    ("bce", "linear"), ("bce", "tanh"), ("bce", "relu"),
    ("cross_entropy", "linear"), ("cross_entropy", "sigmoid"),
])
def test_invalid_pairs_raise(loss, out_act):
    net = Network(3, [Dense(4, "tanh"), Dense(2, out_act)], dtype="float64")
    X = np.zeros((4, 3))
    y = np.array([[0.0, 1.0]] * 4)
    with pytest.raises(ValueError) as ei:
        net.gradients(X, y, loss)
    one_line_value_error(ei)
    with pytest.raises(ValueError) as ei:
        net.loss(X, y, loss)
    one_line_value_error(ei)
    with pytest.raises(ValueError) as ei:
        inertia.fit(net, X, y, loss, inertia.SGD(0.1), epochs=1, progress=False)
    one_line_value_error(ei)


def test_softmax_hidden_layer_raises():
    with pytest.raises(ValueError) as ei:
        Network(3, [Dense(4, "softmax"), Dense(2, "softmax")])
    one_line_value_error(ei)
    with pytest.raises(ValueError) as ei:
        Network(3, [Dense(4, "softmax"), Dense(1, "linear")])
    one_line_value_error(ei)
