"""The deployed-setting PoA study: its clearing copy is the real rule, its optimum is
exact, and identical slots without budgets leave nothing to lose on two slots."""

from __future__ import annotations

import itertools

import numpy as np
import pytest

from maxwell.market import gsp
from maxwell.market.poa_deployed import (
    clear_identical,
    optimal_liquid_welfare,
    run_deployed_poa,
)


def test_vectorized_clearing_is_the_deployed_rule() -> None:
    rng = np.random.default_rng(0)
    for _ in range(500):
        n, k = int(rng.integers(2, 5)), int(rng.integers(1, 5))
        b = np.round(rng.random(n) * 10) / 10 + rng.random(n) * 1e-6  # no ties
        q = rng.integers(1, k + 2, n)
        won, pay = clear_identical(b[None, :], q[None, :], k, 0.05)
        a = gsp(b, q, 0.05, np.ones(k), np.random.default_rng(1))
        assert won[0].tolist() == a.slots.tolist()
        assert pay[0] == pytest.approx(a.payment)


def test_optimal_liquid_welfare_matches_brute_force() -> None:
    rng = np.random.default_rng(1)
    for _ in range(200):
        n, k = 3, int(rng.integers(1, 4))
        v, q = rng.random(n), rng.integers(1, k + 1, n)
        budget = rng.uniform(0.2, 1.0, n) * q * v
        best = max(
            float(np.minimum(v * np.array(x), budget).sum())
            for x in itertools.product(*(range(int(qi) + 1) for qi in q)) if sum(x) <= k
        )
        assert optimal_liquid_welfare(v, q, budget, k) == pytest.approx(best)


def test_two_identical_slots_without_budgets_are_efficient() -> None:
    r = run_deployed_poa(instances=40, slots=2, agents=3, grid=5, seed=0, budgets=False)
    assert np.allclose(r.ratios, 1.0)
    s = run_deployed_poa(instances=40, slots=2, agents=3, grid=5, seed=0).summary()
    assert s["max_ratio"] >= 1.0 and s["with_pure_equilibrium"] > 0
