"""inertia.tune: the race against an exhaustive grid, the curvature against the exact Hessian,
Polyak's pair against the theory, the range test against the stability limit, YellowFin
against a transcription of the authors' implementation."""

import math

import numpy as np
import pytest

import inertia
from inertia.tuning import curvature, many, race, range_test, tune, yellowfin


# --------------------------------------------------------------------------- small tasks
def quadratic_regression(n=160, seed=0):
    """y = x0^2 - x1 + 0.5 x0 x1 with x in [-1, 1]^2; a 2-8-1 tanh network."""
    rng = np.random.default_rng(seed)
    X = rng.uniform(-1, 1, (n, 2))
    y = (X[:, 0] ** 2 - X[:, 1] + 0.5 * X[:, 0] * X[:, 1]).reshape(-1, 1)
    net = inertia.Network(2, [inertia.Dense(8, "tanh"), inertia.Dense(1, "linear")], seed=seed,
                          dtype="float64")
    return net, X, y, "mse"


def moons(n=160, seed=0, noise=0.3):
    """Two interleaved half circles with noise (enough that the classes overlap, so that the
    validation loss stays away from 0); a 2-8-1 tanh/sigmoid network."""
    rng = np.random.default_rng(seed)
    t = rng.uniform(0, math.pi, n)
    lab = np.arange(n) % 2
    X = np.where(lab[:, None] == 0, np.c_[np.cos(t), np.sin(t)],
                 np.c_[1 - np.cos(t), 0.5 - np.sin(t)]) + noise * rng.standard_normal((n, 2))
    net = inertia.Network(2, [inertia.Dense(8, "tanh"), inertia.Dense(1, "sigmoid")], seed=seed,
                          dtype="float64")
    return net, X, lab.reshape(-1, 1).astype(float), "bce"


def linear_problem(eigs, n=64, seed=0):
    """A linear model on centred inputs whose quadratic-loss Hessian has eigenvalues ``eigs``
    (inputs) and 1 (the bias): X^T X / n = diag(eigs), the columns of X centred."""
    rng = np.random.default_rng(seed)
    A = rng.standard_normal((n, len(eigs)))
    A -= A.mean(axis=0)
    Q, _ = np.linalg.qr(A)                     # orthonormal columns, still centred
    X = math.sqrt(n) * Q * np.sqrt(eigs)
    y = X @ rng.standard_normal((len(eigs), 1)) + 0.3 + 0.1 * rng.standard_normal((n, 1))
    net = inertia.Network(len(eigs), [inertia.Dense(1, "linear")], seed=seed, dtype="float64")
    return net, X, y


# --------------------------------------------------------------------------- the race
@pytest.mark.parametrize("task, batch_size, epochs", [(quadratic_regression, None, 128),
                                                     (moons, 32, 32)])
def test_race_is_near_the_best_of_an_exhaustive_grid(task, batch_size, epochs):
    """Both run 128 to 160 steps: rungs of a few steps could not tell anything."""
    net, X, y, loss = task()
    _, Xv, yv, _ = task(seed=1)             # fresh rows from the same distribution
    res = tune(net, X, y, loss=loss, epochs=epochs, batch_size=batch_size,
               validation_data=(Xv, yv), seed=3)
    assert res.cost <= race.DEFAULT_BUDGET
    # the exhaustive grid: the race's own configurations, each trained to the end
    lr_center = 1.0 / res.curvature.lambda_max
    configs = many.new_configs(net, race.grid(lr_center))
    many.train_many(configs, X, y, loss, epochs, batch_size, (Xv, yv), seed=3,
                    initial_loss=net.loss(X, y, loss))
    scores = {(c.lr, c.momentum): race.score(c.curve()) for c in configs
              if c.diverged is None}
    best = min(scores.values())
    winner = [e for e in res.trace if e["dropped_at"] is None and e["diverged"] is None]
    assert len(winner) == 1 and (winner[0]["lr"], winner[0]["momentum"]) == (res.lr,
                                                                              res.momentum)
    # the winner's full run in the exhaustive grid (mini-batches shuffle by other chunks
    # there, the race stopping at its rungs): within the worst case, 1.25 (1.0 and
    # 1.09 measured)
    chosen = scores[(res.lr, res.momentum)]
    assert chosen <= 1.25 * best
    assert chosen < np.median(list(scores.values()))     # far better than a coin toss
    assert len(res.trace) == len(configs) and len(winner[0]["loss"]) == epochs


def test_grid_covers_the_effective_steps_within_the_stability_limit():
    lam = 4.0
    pairs = race.grid(1.0 / lam)
    momenta = sorted({mu for _, mu in pairs})
    assert momenta == sorted(race.MOMENTA)
    steps = np.logspace(*race.EFFECTIVE_DECADES, race.N_STEPS) / lam
    for k, mu in enumerate(race.MOMENTA):
        lrs = sorted(lr for lr, m in pairs if m == mu)
        # every other effective step, the neighbouring momentum taking the ones between
        want = [s * (1 - mu) for j, s in enumerate(steps) if (j + k) % 2 == 0
                and s * (1 - mu) <= race.STABLE_FACTOR * 2 * (1 + mu) / lam * (1 + 1e-12)]
        np.testing.assert_allclose(lrs, want, rtol=1e-12)
        assert max(lrs) <= race.STABLE_FACTOR * 2 * (1 + mu) / lam * (1 + 1e-12)
    # together the momenta reach every effective step, from 0.1 / lambda_max to 100 / lambda_max
    effective = {round(math.log10(lr / (1 - mu) * lam), 9) for lr, mu in pairs}
    assert effective == {round(math.log10(s * lam), 9) for s in steps}
    assert min(effective) == -1.0 and max(effective) == 2.0
    # a single momentum (lr searched alone) takes every step
    assert len(race.grid(1.0 / lam, momenta=(0.9,))) == sum(
        s * 0.1 <= race.STABLE_FACTOR * 2 * 1.9 / lam for s in steps)


def test_rungs_rank_by_their_last_quarter_and_share_the_budget():
    # a curve that dips on its last epoch does not beat a steadily lower one
    steady, lucky = [1.0] * 15 + [0.5] * 5, [1.0] * 18 + [0.6, 0.1]
    assert race.rung_rank(steady) == pytest.approx(0.5)
    assert race.rung_rank(lucky) == pytest.approx((3 * 1.0 + 0.6 + 0.1) / 5)
    assert race.rung_rank(steady) < race.rung_rank(lucky)
    assert race.score(lucky) < race.score(steady)     # the last 10% would pick the dip
    assert race.rung_ends(100) == [25, 50, 100] and race.rung_ends(2) == [1, 2]
    # 28 configurations to 1/4 of 100 epochs cost 7 runs; 4 runs left, 2 a later rung:
    # 8 go on to 50 epochs (25 more each) and 4 to the end (50 more each)
    assert race.plan(28, 100, 11.0) == [(25, 28), (50, 8), (100, 4)]
    assert race.keep_counts(4.0, [25, 50, 100], 100, alive=5) == [5, 4]


def test_race_cost_stays_within_budget_and_counts_epochs():
    net, X, y, loss = quadratic_regression()
    for budget in (10, 12):
        res = tune(net, X, y, loss=loss, epochs=32, budget=budget)
        trained = sum(len(e["loss"]) for e in res.trace)
        curv_cost = res.curvature.gradient_evals / (X.shape[0] * 32)
        assert res.cost == pytest.approx(trained / 32 + curv_cost, rel=1e-12)
        assert res.cost <= budget
    with pytest.raises(ValueError, match="budget"):
        tune(net, X, y, loss=loss, epochs=32, budget=1)


def test_slower_brings_the_best_stretch_to_the_end():
    # 10 of 20 epochs run; stretches of 2 epochs (a tenth of 20); the best, epochs 5-6
    # (mean 1.0), ends at 6: a run at 6 / 20 of the learning rate gets there at the end
    past = [5.0, 4.0, 3.0, 2.0, 1.0, 1.0, 2.0, 3.0, 4.0, 5.0]
    assert race.slower(past, 20) == pytest.approx(0.3)
    assert race.slower([5.0, 4.0, 3.0, 2.0, 1.5, 1.2, 1.1, 1.0, 0.9, 0.8], 20) is None
    flat = [5.0, 4.0, 3.0, 2.0, 1.0, 1.0, 1.02, 1.04, 1.04, 1.04]
    assert race.slower(flat, 20) is None                        # 4% up: within the gap
    # the same 4% on a validation loss while the training loss still falls: overfitting
    falling = [5.0, 4.0, 3.0, 2.0, 1.5, 1.2, 1.1, 1.0, 0.9, 0.8]
    assert race.slower(flat, 20, train=falling) == pytest.approx(0.3)
    assert race.slower(flat, 20, train=flat) is None            # not learning: within it
    late = [5.0, 4.0, 3.0, 2.0, 1.5, 1.2, 1.1, 1.0, 1.0, 2.0]
    assert race.slower(late, 20) is None                        # its best ends at epoch 9
    assert race.slower(past[:3], 20) is None                    # too short to tell
    assert race.slower(past[:-1] + [math.nan], 20) is None


def test_a_leader_past_its_best_is_slowed_in_place_of_two_finalists():
    net, X, y, loss = quadratic_regression()
    past = [5.0, 4.0, 3.0, 2.0, 1.0, 1.0, 2.0, 3.0, 4.0, 5.0]
    leader = many.Config(0.5, 0.9, loss=[0.0] * 10, val=past)
    other = many.Config(0.1, 0.9, loss=[0.0] * 10, val=[5.0] * 10)
    # 3 finalists from epoch 10 to 20 cost 30 epochs; the slowed leader 20 and one finalist 10
    keep, again = race._slower_leader(net, [other, leader], 20, 3, 10, left=30.0)
    assert keep == 1 and (again.lr, again.momentum) == (pytest.approx(0.15), 0.9)
    assert again.epochs == 0
    # a validation loss past its best: the slowed leader alone when only it is paid for
    keep, again = race._slower_leader(net, [other, leader], 20, 3, 10, left=29.0)
    assert keep == 0 and again.lr == pytest.approx(0.15)
    assert race._slower_leader(net, [other, leader], 20, 3, 10, left=19.0) == (3, None)
    # a training loss (no validation data): never without a finalist beside it
    trained = many.Config(0.5, 0.9, loss=past)
    assert race._slower_leader(net, [trained], 20, 3, 10, left=29.0) == (3, None)
    assert race._slower_leader(net, [trained], 20, 3, 10, left=30.0)[0] == 1
    assert race._slower_leader(net, [other], 20, 3, 10, left=30.0) == (3, None)


def test_race_on_a_task_that_overfits_tries_the_leader_slowed():
    """Validation labels that follow another rule than the training labels: what is learned
    only hurts on them, so the validation loss passes its best by the second rung; the last
    rung trains the leader slowed from the start beside one finalist, within the budget,
    and the winner is the one that ended best."""
    def task(n, seed):
        r = np.random.default_rng(seed)
        X = r.standard_normal((n, 10))
        return X, ((X @ r.standard_normal(10) + 2.0 * r.standard_normal(n)) > 0)[:, None] * 1.0

    X, y = task(120, 0)
    val = task(200, 1)
    net = inertia.Network(10, [inertia.Dense(32, "tanh"), inertia.Dense(1, "sigmoid")],
                          seed=0, dtype="float64")
    res = tune(net, X, y, "bce", epochs=40, batch_size=16, validation_data=val, seed=0)
    ends = [e for e in res.trace if len(e["loss"]) == 40]
    slowed = [e for e in res.trace if e["entered"]]
    assert len(slowed) == 1 and slowed[0]["entered"] == len(res.rungs) - 1
    assert res.rungs[-1][1] == len(ends) and res.cost <= 12
    # it is the rung's leader (by the rung's rank) at the factor ``slower`` gives
    finalists = [e for e in res.trace if e["entered"] == 0 and e["diverged"] is None
                 and (e["dropped_at"] is None or e["dropped_at"] >= 1)]
    lead = min(finalists, key=lambda e: race.rung_rank(e["val_loss"][:20]))
    factor = race.slower(lead["val_loss"][:20], 40)
    assert slowed[0]["lr"] == pytest.approx(lead["lr"] * factor, rel=1e-12)
    assert slowed[0]["momentum"] == lead["momentum"]
    best = min(ends, key=lambda e: e["score"])
    assert (res.lr, res.momentum) == (best["lr"], best["momentum"])
    # a budget that pays for the slowed leader but for no finalist beside it
    small = tune(net, X, y, "bce", epochs=40, batch_size=16, validation_data=val, seed=0,
                 budget=11)
    assert small.rungs[-1][1] == 1 and small.cost <= 11
    assert small.lr == pytest.approx(slowed[0]["lr"], rel=1e-12)
    # a learning rate kept fixed stays fixed: no slowed leader; a fixed momentum stays too
    fixed = tune(net, X, y, "bce", epochs=40, batch_size=16, validation_data=val, seed=0,
                 lr=0.05)
    assert fixed.lr == 0.05 and not any(e["entered"] for e in fixed.trace)
    mu = tune(net, X, y, "bce", epochs=40, batch_size=16, validation_data=val, seed=0,
              momentum=0.9)
    assert mu.momentum == 0.9 and any(e["entered"] for e in mu.trace)


def test_fallbacks_of_a_rung_leave_the_later_rungs_their_share(monkeypatch):
    """When the configurations kept at a rung diverge, the next best go on while the budget
    pays for them and for the later rungs' plan: the race never spends more than its
    budget (here it runs out and says so rather than overspend)."""
    net, X, y, loss = quadratic_regression()
    pairs = [(float(lr), 0.0) for lr in range(1, 11)]      # higher lr ranks better
    doomed = set()

    def fake_train_many(configs, X, y, loss, upto, batch_size=None, validation_data=None,
                        seed=0, initial_loss=math.inf, stops=()):
        spent = 0
        for c in configs:
            if not c.alive or c.epochs >= upto:
                continue
            if c.lr in doomed and c.epochs >= 2:
                c.loss.append(math.inf)
                c.diverged = c.epochs
                spent += 1
            else:
                spent += upto - c.epochs
                c.loss.extend([1.0 / (1.0 + c.lr)] * (upto - c.epochs))
        return spent

    monkeypatch.setattr(race, "train_many", fake_train_many)
    # 8 epochs: rungs at 2, 4, 8; budget 4 runs = 32 epochs: 20 for the first rung, 3 go on
    # to 4 epochs (6), 1 to the end (4)
    assert race.plan(10, 8, 4.0) == [(2, 10), (4, 3), (8, 1)]
    for n_doomed, ok in ((5, True), (7, False)):
        doomed.clear()
        doomed.update(float(lr) for lr in range(11 - n_doomed, 11))
        run = lambda: race.race(net, X, y, loss, 8, None, None, 4.0, 0, 1.0, 1.0,
                                make_grid=lambda center: pairs, retries=0)
        if ok:       # five diverge at rung 2, the sixth goes on: 20 + 5 + 2 + 4 epochs
            winner, tried, rungs, spent = run()
            assert spent == 31 and winner.lr == 11.0 - n_doomed - 1
        else:        # seven would need 20 + 7 + 2 + 4 = 33 epochs: more than the budget
            with pytest.raises(ValueError, match="larger budget"):
                run()


def test_diverged_configurations_are_dropped_at_once():
    net, X, y, loss = quadratic_regression()
    L0 = net.loss(X, y, loss)
    configs = many.new_configs(net, [(1e3, 0.99), (1e-2, 0.5)])
    many.train_many(configs, X, y, loss, 64, None, None, seed=0, initial_loss=L0)
    bad, good = configs
    assert bad.diverged is not None and bad.epochs <= 2     # found at the first chunk ends
    assert good.diverged is None and good.epochs == 64
    # the race's grid leaves out rates above the stability limit; one given here diverges
    pairs = [(1e3, 0.99), (30.0, 0.0), (1e-2, 0.5), (3e-2, 0.9)]
    _, tried, _, _ = race.race(net, X, y, loss, 32, None, None, 12.0, 0, 1.0, L0,
                               make_grid=lambda center: pairs)
    gone = [c for c in tried if c.diverged is not None]
    assert len(gone) == 2 and {c.lr for c in gone} == {1e3, 30.0}
    for e in gone:           # a diverged run stops at the chunk where it was seen
        v = np.asarray(e.loss)
        first = int(np.argmax(~np.isfinite(v) | (v > many.DIVERGE_FACTOR * L0)))
        assert len(v) <= 2 * (first + 1)


def test_all_configurations_share_weights_and_shuffling():
    net, X, y, loss = moons()
    a, b = many.new_configs(net, [(0.1, 0.5), (0.1, 0.5)])
    many.train_many([a], X, y, loss, 8, 16, None, seed=5)
    many.train_many([b], X, y, loss, 3, 16, None, seed=5, stops=[3])
    many.train_many([b], X, y, loss, 8, 16, None, seed=5)
    # b stopped at 3 epochs and went on; with the shared chunk boundaries 1, 2, 4, 8 it saw
    # different chunks, so compare against a fresh copy trained exactly as a
    c, = many.new_configs(net, [(0.1, 0.5)])
    many.train_many([c], X, y, loss, 8, 16, None, seed=5)
    np.testing.assert_array_equal(a.loss, c.loss)
    assert b.loss[:2] == a.loss[:2]          # the same first chunks: identical epochs
    W0 = net.parameters()[0][0]
    np.testing.assert_array_equal(net.parameters()[0][0], W0)   # net itself is untouched


# --------------------------------------------------------------------------- curvature
def exact_hessian(op):
    """The Hessian column by column: central differences of float64 gradients along each
    coordinate, symmetrised."""
    H = np.column_stack([op(np.eye(op.dim)[i]) for i in range(op.dim)])
    return (H + H.T) / 2


def test_lambda_max_equals_the_largest_eigenvalue_of_the_hessian_of_a_tiny_net():
    rng = np.random.default_rng(0)
    X = rng.standard_normal((20, 2))
    y = np.tanh(X[:, :1] - X[:, 1:])
    net = inertia.Network(2, [inertia.Dense(3, "tanh"), inertia.Dense(1, "linear")], seed=1,
                          dtype="float64")
    H = exact_hessian(curvature.HessianOperator(net, X, y, "quadratic"))
    eig = np.linalg.eigvalsh(H)
    est = curvature.estimate(net, X, y, "quadratic", iters=300, tol=1e-9)
    # power iteration converges as (lambda_2 / lambda_1)^k; 300 steps leave far less than
    # the finite differences' ~1e-8 relative error
    assert est.lambda_max == pytest.approx(eig[-1], rel=1e-6)


def test_lanczos_finds_the_top_of_a_spectrum_whose_negative_end_is_as_large():
    # eigenvalues 1 and -0.97 at the ends, the rest within +-0.6: power iteration from the
    # same start returns a Rayleigh quotient near -0.8 after 10 steps; Lanczos the top
    rng = np.random.default_rng(0)
    Q, _ = np.linalg.qr(rng.standard_normal((60, 60)))
    eigs = np.r_[1.0, -0.97, rng.uniform(-0.6, 0.6, 58)]
    A = (Q * eigs) @ Q.T
    theta, residual = curvature.lanczos(lambda v: A @ v, 60, 10, np.random.default_rng(1))
    assert theta[-1] == pytest.approx(1.0, abs=1e-3)
    assert theta[0] == pytest.approx(-0.97, abs=1e-3)
    # every Ritz value lies within its residual of an eigenvalue (A is symmetric)
    for t, r in zip(theta, residual):
        assert np.min(np.abs(eigs - t)) <= r * (1 + 1e-9) + 1e-12
    # a space as large as the matrix holds all of it
    theta, residual = curvature.lanczos(lambda v: A @ v, 60, 80, np.random.default_rng(1))
    np.testing.assert_allclose(theta, np.sort(eigs), atol=1e-10)


def test_both_ends_of_an_indefinite_network_hessian():
    rng = np.random.default_rng(2)
    X = rng.standard_normal((15, 3))
    y = np.c_[np.tanh(X[:, :1]), X[:, 1:2] * X[:, 2:], np.sin(X[:, :1])]
    net = inertia.Network(3, [inertia.Dense(6, "tanh"), inertia.Dense(3, "linear")], seed=0,
                          dtype="float64")
    op = curvature.HessianOperator(net, X, y, "quadratic")
    eig = np.linalg.eigvalsh(exact_hessian(op))
    assert eig[0] < -0.3 * eig[-1]                      # indefinite, both ends large
    est = curvature.estimate(net, X, y, "quadratic", iters=op.dim, with_min=True)
    # a Krylov space of the whole dimension: exact but for the differences' ~1e-8 error
    assert est.lambda_max == pytest.approx(eig[-1], rel=1e-6)
    assert est.lambda_min == pytest.approx(eig[0], abs=1e-6 * eig[-1])
    assert not est.reliable                             # negative: no Polyak pair
    assert est.hvps == op.dim


def test_lambda_max_of_a_linear_model_is_the_analytic_one():
    eigs = np.array([7.0, 3.0, 2.0, 0.5])
    net, X, y = linear_problem(eigs)
    est = curvature.estimate(net, X, y, "quadratic", iters=200, tol=1e-10)
    # quadratic loss ||Xw + b - y||^2 / (2n): Hessian [X 1]^T [X 1] / n = diag(eigs, 1)
    assert est.lambda_max == pytest.approx(7.0, rel=1e-6)
    Xa = np.c_[X, np.ones(len(X))]
    assert np.linalg.eigvalsh(Xa.T @ Xa / len(X))[-1] == pytest.approx(7.0, rel=1e-10)


def test_polyak_pair_on_least_squares_equals_the_theory():
    eigs = np.array([10.0, 5.0, 3.0, 0.2])     # with the bias: spectrum {10, 5, 3, 1, 0.2}
    net, X, y = linear_problem(eigs)
    est = curvature.estimate(net, X, y, "quadratic", iters=400, with_min=True, tol=1e-9)
    assert est.reliable
    assert est.lambda_min == pytest.approx(0.2, rel=1e-5)
    lr, mu = curvature.choose(est)
    L, m = 10.0, 0.2
    kappa = L / m
    assert lr == pytest.approx(4 / (math.sqrt(L) + math.sqrt(m)) ** 2, rel=1e-5)
    assert mu == pytest.approx(((math.sqrt(kappa) - 1) / (math.sqrt(kappa) + 1)) ** 2,
                               rel=1e-5)
    # the theory: heavy ball with this pair contracts every eigen-direction at the rate
    # sqrt(mu) (the spectral radius of [[1 + mu - lr h, -mu], [1, 0]] for h in [m, L])
    for h in (0.2, 1.0, 3.0, 5.0, 10.0):
        rho = max(abs(np.linalg.eigvals([[1 + mu - lr * h, -mu], [1.0, 0.0]])))
        assert rho <= math.sqrt(mu) * (1 + 1e-4)
    # and the tuner uses it
    res = tune(net, X, y, loss="quadratic", epochs=50, method="curvature")
    assert res.cost > 0 and res.momentum > 0.5


def test_curvature_on_a_network_falls_back_to_momentum_09():
    net, X, y, loss = quadratic_regression()
    res = tune(net, X, y, loss=loss, epochs=100, method="curvature")
    c = res.curvature
    assert c.hvps <= 22
    # a tanh network's Hessian at its start has negative eigenvalues: no Polyak pair
    assert not c.reliable and c.lambda_min < 0
    assert res.momentum == 0.9
    # full batch: an eighth of heavy ball's stability limit 2 (1 + 0.9) / lambda_max
    assert res.lr == pytest.approx(2 * 1.9 / c.lambda_max / 8, rel=1e-12)
    mini = tune(net, X, y, loss=loss, epochs=100, batch_size=32, method="curvature")
    assert mini.momentum == 0.9      # mini-batches: a thirty-second of it
    assert mini.lr == pytest.approx(2 * 1.9 / mini.curvature.lambda_max / 32, rel=1e-12)


# --------------------------------------------------------------------------- range test
def test_range_test_finds_the_rise_past_the_stability_limit():
    eigs = np.array([4.0, 2.0, 1.5, 0.5])
    net, X, y = linear_problem(eigs, seed=2)
    limit = 2 / 4.0                                  # plain GD on the quadratic
    # from limit / 10: the sharpest component is shrunk by 1e-8 or so below the limit, far
    # above float64 round-off, so exact arithmetic (the theory below) describes the run
    rt = range_test.range_test(net, X, y, "quadratic", limit * 0.1, limit * 100, steps=100,
                               momentum=0.0)
    # the theory: the Hessian is diag(eigs, 1) in (w, b), so each coordinate's distance to
    # the least-squares solution shrinks by (1 - lr lambda) a step, and the loss is
    # L* + sum(lambda c^2) / 2
    Xa = np.c_[X, np.ones(len(X))]
    theta_star = np.linalg.lstsq(Xa, y, rcond=None)[0].ravel()
    lam = np.r_[eigs, 1.0]
    W, b = net.parameters()[0]
    c = np.r_[W.ravel(), b] - theta_star
    L_star = float(np.sum((Xa @ theta_star - y.ravel()) ** 2) / (2 * len(X)))
    theory = []
    for lr in rt.lrs:
        theory.append(L_star + 0.5 * float(np.sum(lam * c ** 2)))
        c = (1 - lr * lam) * c
    low = int(np.argmin(theory))
    # to the minimum; past it the components that round-off seeded grow into view
    np.testing.assert_allclose(rt.losses[:low + 1], theory[:low + 1], rtol=1e-6)
    # the loss cannot rise while lr < 2 / lambda_max; it rises where the theory's loss has
    # its minimum (the smoothing delays the reading by a few steps of the 7% ramp)
    rise = rt.lrs[low]
    assert limit <= rise <= rt.lr_rise <= rise * 1.072 ** 6
    assert rt.lr == pytest.approx(rt.lr_rise / 10)


# --------------------------------------------------------------------------- YellowFin
def test_yellowfin_measurements_match_the_reference_test():
    """The authors' measurement test: gradients (t + 1) * ones of dimension d + 1."""
    d, beta = 100, 0.999
    yf = yellowfin.YellowFin()
    nsq = nrm = g_avg = dist = hmax = hmin_log = 0.0
    for t in range(50):
        grads = [(t + 1) * np.ones(d), (t + 1) * np.ones(1)]
        yf.update(grads)
        h = (t + 1) ** 2 * (d + 1)
        nsq = beta * nsq + (1 - beta) * h
        nrm = beta * nrm + (1 - beta) * math.sqrt(h)
        g_avg = beta * g_avg + (1 - beta) * (t + 1)
        dist = beta * dist + (1 - beta) * nrm / (nsq + 1e-6)
        hmax = beta * hmax + (1 - beta) * h                        # the newest is the largest
        hmin_log = beta * hmin_log + (1 - beta) * math.log(max(1, t + 2 - 20) ** 2 * (d + 1)
                                                           + 1e-6)
        deb = 1 - beta ** (t + 1)
        assert yf.h_max == pytest.approx(hmax / deb, rel=1e-9)
        assert yf.h_min == pytest.approx(math.exp(hmin_log / deb), rel=1e-9)
        # a difference of two terms of size h: round-off relative to h, not to the variance
        assert yf.grad_var == pytest.approx(max(nsq / deb - (g_avg / deb) ** 2 * (d + 1),
                                                1e-6), abs=1e-12 * nsq / deb)
        assert yf.dist_to_opt == pytest.approx(dist / deb, rel=1e-9)


def tune_everything(D, C, h_min, h_max):
    """The authors' reference solution (their yellowfin_test.py): the cubic's root by
    np.roots, mu = max(root^2, ((sqrt(dr) - 1) / (sqrt(dr) + 1))^2),
    lr = (1 - sqrt mu)^2 / h_min."""
    const = D ** 2 * h_min ** 2 / 2 / C
    roots = np.roots([-1, 3, -(3 + const), 1])
    roots = roots[(np.real(roots) > 0) & (np.real(roots) < 1)]
    root = np.real(roots[np.argmin(np.abs(np.imag(roots)))])
    dr = h_max / h_min
    mu = max(((math.sqrt(dr) - 1) / (math.sqrt(dr) + 1)) ** 2, root ** 2)
    return (1 - math.sqrt(mu)) ** 2 / h_min, mu


def test_yellowfin_lr_and_momentum_match_the_reference_solution():
    yf = yellowfin.YellowFin()
    rng = np.random.default_rng(0)
    for t in range(300):
        lr, mu = yf.update([rng.standard_normal(30) * (1 + 0.01 * t), rng.standard_normal(3)])
        if t == 0:
            assert (lr, mu) == (1e-4, 0.0)
            continue
        ref_lr, ref_mu = tune_everything(yf.dist_to_opt, yf.grad_var, yf.h_min, yf.h_max)
        # the closed form carries eps = 1e-6 terms the np.roots form has not
        assert mu == pytest.approx(ref_mu, rel=1e-4)
        assert lr == pytest.approx(ref_lr * min(1, (t + 1) / 200), rel=1e-3)


def transcribed_yellowfin_on_quadratic(h, w0, steps):
    """The authors' PyTorch YFOptimizer.step with default options, transcribed to NumPy for
    the loss sum(h w^2) / 2 (gradient h w), driving torch.optim.SGD's update
    (buf = mu buf + g, buf = g at the first step with momentum; w -= lr buf)."""
    beta, win, eps = 0.999, 20, 1e-6
    w, buf = w0.copy(), None
    lr_t, mu_t = 1e-4, 0.0
    curv_win = np.zeros(win)
    s = dict(nsq_avg=0.0, hmin_avg=0.0, hmax_avg=0.0, grad_avg=np.zeros_like(w0),
             norm_avg=0.0, dist_avg=0.0)
    out = []
    for it in range(steps):
        g = h * w
        nsq = float(g @ g)
        s["nsq_avg"] = s["nsq_avg"] * beta + (1 - beta) * nsq
        curv_win[it % win] = nsq
        valid = curv_win[:min(win, it + 1)]
        s["hmin_avg"] = s["hmin_avg"] * beta + (1 - beta) * np.min(np.log(valid + eps))
        s["hmax_avg"] = s["hmax_avg"] * beta + (1 - beta) * np.max(valid)
        debias = 1.0 - beta ** (it + 1)
        h_min, h_max = np.exp(s["hmin_avg"] / debias), s["hmax_avg"] / debias
        s["grad_avg"] = s["grad_avg"] * beta + (1 - beta) * g
        var = max(-float(s["grad_avg"] @ s["grad_avg"]) / debias ** 2
                  + s["nsq_avg"] / debias, eps)
        s["norm_avg"] = s["norm_avg"] * beta + (1 - beta) * math.sqrt(nsq)
        s["dist_avg"] = s["dist_avg"] * beta + (1 - beta) * s["norm_avg"] / (s["nsq_avg"] + eps)
        dist = s["dist_avg"] / debias
        if it > 0:
            p = (dist + eps) ** 2 * (h_min + eps) ** 2 / 2 / (var + eps)
            w3 = (-math.sqrt(p ** 2 + 4.0 / 27.0 * p ** 3) - p) / 2.0
            ww = math.copysign(1.0, w3) * math.pow(math.fabs(w3), 1.0 / 3.0)
            x = ww - p / 3.0 / (ww + eps) + 1
            dr = max((h_max + eps) / (h_min + eps), 1.0 + eps)
            mu_t = max(x ** 2, ((np.sqrt(dr) - 1) / (np.sqrt(dr) + 1)) ** 2)
            lr_t = (1.0 - math.sqrt(mu_t)) ** 2 / (h_min + eps)
            lr_t = min(lr_t, lr_t * (it + 1) / float(10.0 * win))
        if mu_t != 0:
            buf = g.copy() if buf is None else mu_t * buf + g
            step = buf
        else:
            step = g
        w = w - lr_t * step
        out.append((lr_t, mu_t, w.copy()))
    return out


def test_yellowfin_training_follows_the_transcription_on_a_quadratic():
    h = np.array([4.0, 1.0, 0.25])
    w0 = np.array([1.0, -2.0, 3.0])
    ref = transcribed_yellowfin_on_quadratic(h, w0, 400)
    # the same quadratic as a network: a linear model on inputs X with X^T X / n = diag(h)
    # has gradient h (w - w*) for the weights; put w* = 0 and drop the bias by a zero target
    yf = yellowfin.YellowFin()
    w = w0.copy()
    opt = inertia.SGD(lr=1e-4)
    state = opt.init([w])
    for t, (lr_ref, mu_ref, w_ref) in enumerate(ref):
        g = h * w
        lr, mu = yf.update([g])
        assert lr == pytest.approx(lr_ref, rel=1e-12) and mu == pytest.approx(mu_ref,
                                                                             rel=1e-12)
        opt.set(lr=lr, momentum=mu)
        opt.step([w], [g], state)
        np.testing.assert_allclose(w, w_ref, rtol=1e-9, atol=1e-12 * np.abs(w0).max())


def test_yellowfin_trains_a_network():
    net, X, y, loss = quadratic_regression()
    start = net.loss(X, y, loss)
    tr, val, used = yellowfin.train(net.copy(), X, y, loss, epochs=60, batch_size=32,
                                    validation_data=(X, y))
    assert len(tr) == 60 and len(val) == 60 and len(used) == 60 * 5
    assert val[-1] < start
    assert all(0 <= mu < 1 and lr > 0 for lr, mu in used)


# --------------------------------------------------------------------------- API
def test_result_optimizer_takes_the_given_convention():
    net, X, y, loss = quadratic_regression()
    res = tune(net, X, y, loss=loss, epochs=16, method="curvature",
               optimizer=inertia.SGD(lr=0.1, convention="ema"))
    assert res.optimizer.convention.name == "ema"
    assert res.optimizer.lr == pytest.approx(res.lr / (1 - res.momentum))
    assert res.optimizer.momentum == res.momentum and res.optimizer.state is None
    inertia.fit(net.copy(), X, y, loss=loss, optimizer=res.optimizer, epochs=2, progress=False)


@pytest.mark.parametrize("kwargs, match", [
    ({"method": "grid"}, "unknown method"),
    ({"epochs": 0}, "epochs"),
    ({"budget": -1}, "budget"),
    ({"budget": 5, "method": "range"}, "budget applies"),
    ({"budget": 2}, "budget=2 runs cannot pay"),
    ({"optimizer": "sgd"}, "optimizer"),
    ({"batch_size": 0}, "batch_size"),
    ({"validation_data": (1, 2, 3)}, "validation_data"),
])
def test_bad_arguments_raise_one_line_errors(kwargs, match):
    net, X, y, loss = quadratic_regression()
    args = {"loss": loss, "epochs": 10} | kwargs
    with pytest.raises(ValueError, match=match) as info:
        tune(net, X, y, **args)
    assert "\n" not in str(info.value)


def test_plot_draws_every_method(tmp_path):
    pytest.importorskip("matplotlib")
    net, X, y, loss = quadratic_regression()
    for method in ("race", "range", "curvature"):
        res = tune(net, X, y, loss=loss, epochs=16, method=method, batch_size=32)
        path = res.plot(tmp_path / f"{method}.png")
        assert path.stat().st_size > 5000


def test_curvature_picture_says_how_the_pair_was_chosen():
    from inertia.tuning.plot import _curvature_choice

    L, m = 18.7, 0.0828
    polyak_mu = curvature.polyak_pair(L, m)[1]
    assert _curvature_choice(curvature.Curvature(L, m, True, 20, 1), polyak_mu) \
        == "lambda_min 0.0828: Polyak's pair"
    assert _curvature_choice(curvature.Curvature(L, m, True, 20, 1), 0.9) \
        == "lambda_min 0.0828 (mini-batches): momentum 0.9"
    assert _curvature_choice(curvature.Curvature(L, m, False, 20, 1), 0.9) \
        == "lambda_min 0.0828 (unreliable): momentum 0.9"
    assert _curvature_choice(curvature.Curvature(L, -1.26, False, 20, 1), 0.9) \
        == "lambda_min -1.26 (not positive): momentum 0.9"


def test_import_inertia_stays_light():
    import subprocess
    import sys
    import os

    src = os.path.dirname(os.path.dirname(inertia.__file__))
    code = ("import sys, inertia; inertia.tune; "
            "bad = [m for m in ('torch', 'matplotlib', 'jax') if m in sys.modules]; "
            "print(bad)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         env={**os.environ, "PYTHONPATH": src}, check=True)
    assert out.stdout.strip() == "[]"


def test_benchmark_checks_its_options_before_any_work(tmp_path):
    import importlib.util
    import os
    import sys

    path = os.path.join(os.path.dirname(__file__), "..", "benchmarks", "tuning.py")
    spec = importlib.util.spec_from_file_location("tuning_benchmark", path)
    bench = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = bench                 # dataclasses look their module up there
    spec.loader.exec_module(bench)
    workloads, seeds, out, methods, cache = bench.parse(["--quick", "--out", str(tmp_path)])
    assert ([w.name for w in workloads], seeds, out, methods, cache) == (
        list(bench.QUICK), bench.QUICK_SEEDS, str(tmp_path), list(bench.METHODS), None)
    dev, _, _, _, _ = bench.parse(["--dev", "--out", str(tmp_path)])
    # the development tasks are none of the benchmark's
    assert {w.name for w in dev} == set(bench.DEV_WORKLOADS)
    assert not {w.data for w in dev} & {w.data for w in bench.WORKLOADS.values()}
    for bad in (["--workloads", "mnist"], ["--seeds", "0"], ["--methods", "adam"],
                ["--dev", "--workloads", "digits"], ["--report", str(tmp_path / "no.json")]):
        with pytest.raises(SystemExit) as info:
            bench.parse(bad + ["--out", str(tmp_path)])
        assert info.value.code == 2
    # the protocol's grid: 13 x 8 = 104 points from 1e-3 to 10^1.5, momenta 0 to 0.99
    assert len(bench.GRID_LRS) * len(bench.GRID_MOMENTA) == 104
    assert bench.score([1.0] * 9 + [3.0], 10) == 3.0 and bench.score([1.0], 10) == math.inf


# --------------------------------------------------------------------------- Nesterov
def _grows(h, mu, nesterov, steps=20000):
    """Whether PyTorch's momentum step, written out (b = mu b + g; w -= lr (g + mu b) for
    Nesterov, w -= lr b for heavy ball), on f(w) = w^2 / 2 with lr = h leaves |w| above 1."""
    w, b = 1.0, 0.0
    for _ in range(steps):
        g = w
        b = mu * b + g
        w -= h * (g + mu * b) if nesterov else h * b
        if abs(w) > 1e6:
            return True
    return abs(w) > 1.0


@pytest.mark.parametrize("mu", [0.3, 0.7, 0.9, 0.99])
@pytest.mark.parametrize("nesterov", [False, True])
def test_stability_limit_of_each_form_is_where_the_iteration_starts_to_grow(mu, nesterov):
    limit = race.stable_lr(mu, 1.0, nesterov)          # lambda_max = 1
    assert not _grows(0.98 * limit, mu, nesterov) and _grows(1.02 * limit, mu, nesterov)
    assert limit == pytest.approx(2 * (1 + mu) / ((1 + 2 * mu) if nesterov else 1))


def test_race_chooses_for_nesterov_when_the_optimizer_has_it():
    net, X, y, loss = quadratic_regression()
    opt = inertia.SGD(0.1, momentum=0.9, nesterov=True, convention="keras")
    res = tune(net, X, y, loss=loss, epochs=24, batch_size=32, seed=2, optimizer=opt)
    lr_center = 1.0 / res.curvature.lambda_max
    assert res.trace and all(e["momentum"] > 0 for e in res.trace)
    assert all(e["lr"] <= race.STABLE_FACTOR * race.stable_lr(e["momentum"], lr_center, True)
               * (1 + 1e-12) for e in res.trace if e["entered"] == 0)
    assert len(res.trace) < len(race.grid(lr_center))        # no momentum 0, a lower limit
    assert res.optimizer.nesterov and res.optimizer.convention.name == "keras"
    assert res.summary().nesterov and "Nesterov, keras convention" in str(res.summary())
    # the race's winner is the run of a fit with the chosen pair and seed: bit for bit in
    # PyTorch's form (res.lr, res.momentum), to rounding in Keras's (another order of the
    # same arithmetic: 3e-15 measured after 120 steps)
    for opt, exact in ((inertia.SGD(res.lr, momentum=res.momentum, nesterov=True), True),
                       (res.optimizer, False)):
        again = net.copy()
        inertia.fit(again, X, y, loss=loss, optimizer=opt, epochs=24, batch_size=32, seed=2,
                    progress=False)
        for a, b in zip(res.net.parameters(), again.parameters()):
            for u, v in zip(a, b):
                if exact:
                    np.testing.assert_array_equal(u, v)
                else:
                    np.testing.assert_allclose(u, v, rtol=1e-11, atol=1e-13)
