"""The ledger: exact conservation, no negative balance, partial charges, pro-rata payouts."""

from __future__ import annotations

import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from maxwell.ledger import (
    K_B_J_PER_K,
    ConservationError,
    Ledger,
    Transfer,
    landauer_energy_j,
    landauer_tax_credits,
    landauer_tax_ucr,
    to_credits,
    to_ucr,
)

ACCOUNTS = ("a", "b", "c", "d", "treasury", "tax_authority", "bounty_pool")


def test_million_random_operations_conserve_exactly() -> None:
    rng = np.random.default_rng(2024)
    n_agents = 500
    names = (*(f"agent{i}" for i in range(n_agents)), "treasury", "tax", "pool")
    start = rng.integers(0, 10**12, len(names))
    ledger = Ledger(names, start)
    total = int(start.sum())
    agents = np.arange(n_agents)
    ops = 0
    while ops < 1_000_000:
        # Amounts span 0 … far more than any balance, so partial charges are common.
        amounts = (10 ** rng.integers(0, 14, n_agents)).astype(np.int64)
        amounts *= rng.integers(0, 10, n_agents)
        ledger.charge_many(agents, int(rng.integers(n_agents, n_agents + 3)), amounts,
                           "rent", ops)
        rng.shuffle(amounts)
        ledger.pay_many(int(rng.integers(n_agents, n_agents + 3)), agents, amounts,
                        "bounty", ops)
        ops += 2 * n_agents
        ledger.check()
        ledger.drain()
    assert int(ledger.balances_ucr.sum()) == total
    assert np.all(ledger.balances_ucr >= 0)


@settings(max_examples=60, deadline=None)
@given(
    st.lists(st.integers(0, 10**9), min_size=len(ACCOUNTS), max_size=len(ACCOUNTS)),
    st.lists(
        st.tuples(
            st.integers(0, len(ACCOUNTS) - 1),
            st.integers(0, len(ACCOUNTS) - 1),
            st.integers(0, 2 * 10**9),
            st.sampled_from(["rent", "landauer_tax", "fine", "bounty", "grant"]),
        ),
        max_size=200,
    ),
)
def test_no_negative_balance_and_journal_replays(
    start: list[int], ops: list[tuple[int, int, int, str]]
) -> None:
    ledger = Ledger(ACCOUNTS, start)
    for tick, (src, dst, amount, reason) in enumerate(ops):
        if src == dst:
            continue
        before = ledger.balance_ucr(src)
        paid, unpaid = ledger.charge(src, dst, amount, reason, tick)
        assert paid == min(amount, before) and paid + unpaid == amount
        assert np.all(ledger.balances_ucr >= 0)
    ledger.check()
    # Replaying the journal from the start reproduces the balances exactly.
    replay = np.array(start, dtype=np.int64)
    for t in ledger.journal:
        assert t.amount_ucr > 0
        replay[ledger.index(t.src)] -= t.amount_ucr
        replay[ledger.index(t.dst)] += t.amount_ucr
    assert np.array_equal(replay, ledger.balances_ucr)


def test_charge_takes_what_is_there() -> None:
    ledger = Ledger(("a", "t"), [5, 0])
    assert ledger.charge(0, 1, 8, "rent", 3) == (5, 3)
    assert ledger.balances_ucr.tolist() == [0, 5]
    assert ledger.drain() == (Transfer(3, "a", "t", 5, "rent"),)
    assert ledger.journal == []


def test_pay_many_prorates_a_short_pool() -> None:
    ledger = Ledger(("a", "b", "c", "pool"), [0, 0, 0, 10])
    paid, unpaid = ledger.pay_many(3, [0, 1, 2], [10, 5, 5], "bounty", 0)
    assert paid.tolist() == [5, 2, 2]  # floor(10·10/20), floor(5·10/20) …
    assert unpaid.tolist() == [5, 3, 3]
    assert ledger.balances_ucr.tolist() == [5, 2, 2, 1]
    ledger.check()


def test_transfer_is_exact_or_nothing() -> None:
    ledger = Ledger(("a", "b"), [10, 0])
    assert ledger.transfer(0, 1, 4, "grant", 0) == Transfer(0, "a", "b", 4, "grant")
    with pytest.raises(ValueError):
        ledger.transfer(0, 1, 7, "grant", 0)
    assert ledger.balances_ucr.tolist() == [6, 4]


def test_tampering_is_a_hard_error() -> None:
    ledger = Ledger(("a", "b"), [10, 0])
    ledger._bal[0] += 1  # simulate a bug that creates money
    with pytest.raises(ConservationError):
        ledger.check()


def test_copy_is_independent() -> None:
    ledger = Ledger(("a", "b"), [10, 0])
    other = ledger.copy()
    other.charge(0, 1, 10, "rent", 0)
    assert ledger.balances_ucr.tolist() == [10, 0]


@pytest.mark.parametrize(
    "call",
    [
        lambda lg: lg.charge(0, 1, -1, "rent", 0),
        lambda lg: lg.charge(0, 1, 1, "gift", 0),
        lambda lg: lg.charge(0, 0, 1, "rent", 0),
        lambda lg: lg.charge_many([0, 0], 1, [1, 1], "rent", 0),
        lambda lg: lg.pay_many(1, [0, 0], [1, 1], "bounty", 0),
    ],
)
def test_bad_operations_are_rejected(call) -> None:  # type: ignore[no-untyped-def]
    ledger = Ledger(("a", "b"), [10, 10])
    with pytest.raises(ValueError):
        call(ledger)
    assert ledger.balances_ucr.tolist() == [10, 10]


def test_bad_construction() -> None:
    with pytest.raises(ValueError):
        Ledger(("a", "a"))
    with pytest.raises(ValueError):
        Ledger(("a",), [-1])


def test_unit_conversion_rounds_to_nearest_micro_credit() -> None:
    assert to_ucr(1.0) == 1_000_000
    assert to_ucr(0.0000014) == 1
    assert to_ucr([2.5e-6, 3.5e-6]).tolist() == [2, 4]  # half to even
    assert to_credits(1_500_000) == 1.5
    with pytest.raises(ValueError):
        to_ucr(float("inf"))


def test_landauer_bound_matches_the_textbook_figure() -> None:
    assert K_B_J_PER_K == 1.380649e-23
    per_bit_300k = landauer_energy_j(1, 300.0 - 273.15) / 8
    assert per_bit_300k == pytest.approx(2.871e-21, rel=1e-3)
    per_gib = landauer_energy_j(2**30, 300.0 - 273.15)
    assert per_gib == pytest.approx(2.47e-11, rel=1e-2)
    expected = 2**30 * 8 * 1.380649e-23 * (65.0 + 273.15) * math.log(2)
    assert landauer_energy_j(2**30, 65.0) == pytest.approx(expected, rel=1e-15)


def test_landauer_tax_scales_with_price_lambda_and_temperature() -> None:
    gib = np.array([0, 2**30, 2 * 2**30], dtype=np.int64)
    tax = landauer_tax_ucr(gib, 65.0, 0.1, 1e11)
    e = landauer_energy_j(2**30, 65.0)
    assert tax.tolist() == [0, round(e * 0.1 * 1e11 * 1e6), round(2 * e * 0.1 * 1e11 * 1e6)]
    assert landauer_tax_credits(gib, 65.0, 0.1, 1e11)[1] == pytest.approx(e * 1e10, abs=1e-6)
    hot = landauer_tax_ucr(gib, 95.0, 0.1, 1e11)
    assert np.all(hot[1:] > tax[1:])
    with pytest.raises(ValueError):
        landauer_energy_j(-1, 20.0)
    with pytest.raises(ValueError):
        landauer_energy_j(1, -300.0)
    with pytest.raises(ValueError):
        landauer_tax_ucr(1, 20.0, -1.0, 1.0)
