"""Optimizer hyperparameters set as attributes, and the functional step's arguments: each
impossible value is a one-line error, as the constructor's and ``set``'s are (a value set
straight on its attribute used to reach training unchecked)."""

import numpy as np
import pytest

import inertia


@pytest.mark.parametrize("make, name, value, words", [
    (lambda: inertia.SGD(0.1, momentum=0.5), "momentum", 1.2, "momentum must be in"),
    (lambda: inertia.SGD(0.1), "lr", -0.05, "learning rate must be > 0"),
    (lambda: inertia.SGD(0.1), "weight_decay", -1, "weight_decay must be >= 0"),
    (lambda: inertia.SGD(0.1, momentum=0.5), "nesterov", "yes", "nesterov must be True"),
    (lambda: inertia.SGD(0.1), "convention", "keras", "convention is fixed when the"),
    (lambda: inertia.SGD(0.1), "momentun", 0.9, "no attribute 'momentun': did you mean "
                                                "momentum"),
    (lambda: inertia.Adam(0.01), "betas", (1.5, 0.999), "beta1 must be < 1"),
    (lambda: inertia.Adam(0.01), "eps", -1, "eps must be >= 0"),
    (lambda: inertia.Adam(0.01), "amsgrad", True, "fixed when the optimizer is made"),
    (lambda: inertia.QHM(0.1), "nu", 3, "nu must be <= 1"),
])
def test_an_impossible_attribute_is_refused_and_changes_nothing(make, name, value, words):
    opt = make()
    before = opt.config()
    with pytest.raises((ValueError, AttributeError), match=words) as err:
        setattr(opt, name, value)
    assert "\n" not in str(err.value)
    assert opt.config() == before


def test_an_attribute_set_is_set_and_reaches_training():
    opt = inertia.SGD(0.1, momentum=0.5)
    opt.lr, opt.momentum = np.float64(0.05), 0.9
    assert opt.config()["lr"] == 0.05 and type(opt.lr) is float and opt.momentum == 0.9
    rng = np.random.default_rng(0)
    X, y = rng.normal(size=(32, 3)), rng.normal(size=32)
    a = inertia.Network(3, [inertia.Dense(4, "tanh"), inertia.Dense(1)], seed=0)
    b = inertia.Network(3, [inertia.Dense(4, "tanh"), inertia.Dense(1)], seed=0)
    inertia.fit(a, X, y, "mse", opt, epochs=2, batch_size=8, seed=0)
    inertia.fit(b, X, y, "mse", inertia.SGD(0.05, momentum=0.9), epochs=2, batch_size=8,
                seed=0)
    np.testing.assert_array_equal(a.flat, b.flat)
    with pytest.raises(ValueError, match="amsgrad must be True or False"):
        inertia.Adam(0.01, amsgrad="no")


@pytest.mark.parametrize("n", [0, -1, 2.5, "4", True])
def test_the_functional_step_refuses_a_batch_size_that_is_no_count(n):
    opt = inertia.SGD(0.1, momentum=0.9, weight_decay=0.1, convention="sklearn")
    params, grads = [np.ones((2, 2))], [np.ones((2, 2))]
    state = opt.init(params)
    with pytest.raises(ValueError, match="n \\(the batch size\\) must be a positive integer"):
        opt.step(params, grads, state, n=n)
    np.testing.assert_array_equal(params[0], 1.0)
    with pytest.raises(ValueError, match="state must be the SGDState that opt.init"):
        opt.step(params, grads, None, n=4)
    opt.step(params, grads, state, n=np.int64(4))
    assert params[0][0, 0] < 1.0


def test_a_subclass_keeps_its_own_attributes():
    """Only a near-miss of a hyperparameter's name is refused: a subclass's own attribute,
    set after construction, is set."""
    class Clipped(inertia.SGD):
        def __init__(self, lr, clip=1.0, **kw):
            super().__init__(lr, **kw)
            self.clip = clip

    opt = Clipped(0.1, clip=2.0, momentum=0.9)
    opt.clip = 3.0
    opt.note = "mine"
    assert (opt.clip, opt.note, opt.momentum) == (3.0, "mine", 0.9)
