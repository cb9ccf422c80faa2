"""The price-of-anarchy experiment: equilibria found are equilibria, ratios respect bounds."""

from __future__ import annotations

import numpy as np
import pytest

from maxwell.market import gsp
from maxwell.market.poa import (
    BOUNDS,
    hedge_welfare,
    optimal_welfare_batch,
    random_instances,
    run_poa,
    worst_pure_nash,
)


@pytest.fixture(scope="module")
def small_run():  # type: ignore[no-untyped-def]
    return run_poa(instances=60, slots=3, seed=3, rounds=80)


def test_ratios_respect_the_proven_bounds(small_run) -> None:  # type: ignore[no-untyped-def]
    r = small_run.ratios
    assert np.all(np.isfinite(r))
    assert np.all(r >= 1.0 - 1e-9)
    assert r.max() <= BOUNDS["pure_nash_upper_caragiannis_2011"]
    assert np.all(small_run.equilibria >= 1)  # the efficient equilibrium always exists
    lr = small_run.learning_ratios
    assert np.all(lr >= 1.0 - 1e-9)
    assert lr.max() <= BOUNDS["coarse_correlated_upper_caragiannis_2011"]
    s = small_run.summary()
    assert set(s) >= {"instances", "max_ratio", "p50_ratio", "p99_ratio",
                      "learning_max_ratio", "method"}
    assert s["instances"] == 60 and s["within_proven_bound"] is True


def test_worst_equilibria_admit_no_profitable_deviation(small_run) -> None:  # type: ignore[no-untyped-def]
    """Check every equilibrium found against the real auction, independently of the LP."""
    rng = np.random.default_rng(0)
    k = small_run.slots
    checked_inefficient = 0
    for v, alpha, bids, order in zip(small_run.values, small_run.weights,
                                     small_run.worst_bids, small_run.worst_order, strict=True):
        assert np.all(bids <= v + 1e-9) and np.all(bids >= -1e-9)  # no overbidding
        ranked = bids[order]
        assert np.all(np.diff(ranked) <= 1e-9)
        baseline = np.zeros(v.size)
        for pos in range(k):
            nxt = ranked[pos + 1] if pos + 1 < ranked.size else 0.0
            baseline[order[pos]] = alpha[pos] * (v[order[pos]] - nxt)
        assert np.all(baseline >= -1e-9)
        q = np.ones(v.size, dtype=np.int64)
        for i in range(v.size):
            others = np.delete(bids, i)
            for x in {0.0, *np.maximum(others - 1e-7, 0.0), *(others + 1e-7)}:
                dev = bids.copy()
                dev[i] = x
                a = gsp(dev, q, 0.0, alpha, rng)
                u = v[i] * a.cores[i] - a.payment[i]
                assert u <= baseline[i] + 1e-6
        w = float(np.dot(alpha, v[order[:k]]))
        if w < optimal_welfare_batch(v[None], alpha[None])[0] - 1e-9:
            checked_inefficient += 1
    assert checked_inefficient > 0  # the check covered bad equilibria, not only efficient ones


def test_one_slot_equilibria_are_efficient() -> None:
    # Without overbidding a loser with a higher value would always outbid the winner.
    r = run_poa(instances=40, slots=1, seed=1, rounds=20)
    assert np.allclose(r.ratios, 1.0)


def test_same_seed_same_result() -> None:
    a = run_poa(instances=10, slots=2, seed=9, rounds=20).summary()
    b = run_poa(instances=10, slots=2, seed=9, rounds=20).summary()
    c = run_poa(instances=10, slots=2, seed=10, rounds=20).summary()
    assert a == b
    assert a != c


def test_hedge_welfare_never_beats_optimum() -> None:
    rng = np.random.default_rng(4)
    v, w = random_instances(rng, 30, 5, 2)
    learned = hedge_welfare(v, w, rng, rounds=50, grid=11)
    assert np.all(learned <= optimal_welfare_batch(v, w) + 1e-12)
    assert np.all(learned >= 0)


def test_enumeration_is_bounded() -> None:
    v, w = random_instances(np.random.default_rng(0), 1, 10, 8)
    with pytest.raises(ValueError, match="too many"):
        worst_pure_nash(v, w)


@pytest.mark.parametrize("kw", [{"instances": 0}, {"slots": 0}, {"agents": 1}, {"grid": 1}])
def test_bad_arguments(kw: dict) -> None:  # type: ignore[type-arg]
    with pytest.raises(ValueError):
        run_poa(**kw)


def test_two_slot_lower_bound_instance_is_found_exactly() -> None:
    """α = (1, ½), values (1, ½): the low bidder takes slot 1 bidding ½, the high
    bidder sits in slot 2 paying nothing; OPT/W = (1 + ¼)/(½ + ½) = 1.25, the known
    lower bound for two slots (worked out by hand: W(eq) = ½ + ½·1)."""
    v = np.array([[1.0, 0.5]])
    w = np.array([[1.0, 0.5]])
    welfare, count, bids, order = worst_pure_nash(v, w)
    assert optimal_welfare_batch(v, w)[0] / welfare[0] == pytest.approx(1.25, abs=1e-12)
    assert count[0] == 2  # the efficient and the inefficient ranking
    assert order[0].tolist() == [1, 0]
    assert bids[0][1] == pytest.approx(0.5)


@pytest.mark.parametrize(("agents", "slots"), [(4, 2), (5, 3)])
def test_top_k_rankings_find_the_same_worst_equilibria_as_every_assignment(
    agents: int, slots: int
) -> None:
    """The reduction to the K! orders of the K highest values loses nothing: compare
    with every ordered choice of K winners and a top loser, n!/(n−K−1)! of them."""
    import itertools

    from maxwell.market.poa import FEASIBLE_TOL, _block_lp

    v, w = random_instances(np.random.default_rng(agents * 10 + slots), 40, agents, slots)
    fast, count, _, _ = worst_pure_nash(v, w)
    every = np.array(list(itertools.permutations(range(agents), slots + 1)), dtype=np.int64)
    slack, _ = _block_lp(v, w, every)
    welfare = np.sum(v[:, every[:, :slots]] * w[:, None, :], axis=2)
    brute = np.where(slack <= FEASIBLE_TOL, welfare, np.inf).min(axis=1)
    assert np.allclose(fast, brute, rtol=0, atol=1e-12)
    # Feasible assignments all have the K highest values as winners.
    top = np.sort(np.argsort(-v, axis=1)[:, :slots], axis=1)
    feasible = slack <= FEASIBLE_TOL
    for i, a in zip(*np.nonzero(feasible), strict=True):
        assert np.array_equal(np.sort(every[a, :slots]), top[i])
    assert np.all(count >= 1)
