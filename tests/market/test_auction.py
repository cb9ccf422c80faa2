"""GSP and VCG: properties over random bids, and hand-checked examples from the literature."""

from __future__ import annotations

import itertools

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from maxwell.market import gsp, optimal_welfare, vcg, welfare

FAST = settings(max_examples=80, deadline=None)

bid_value = st.floats(min_value=0.0, max_value=100.0, allow_nan=False, allow_infinity=False)


@st.composite
def auctions(draw: st.DrawFn, unit_demand: bool = False) -> tuple[
    np.ndarray, np.ndarray, float, np.ndarray, int
]:
    n = draw(st.integers(min_value=0, max_value=12))
    # A coarse grid of bids makes ties common, so tie-breaking is exercised.
    bids = np.array(draw(st.lists(st.sampled_from([0.0, 0.5, 1.0, 1.5, 2.0, 3.0]) | bid_value,
                                  min_size=n, max_size=n)))
    if unit_demand:
        q = np.ones(n, dtype=np.int64)
    else:
        q = np.array(draw(st.lists(st.integers(0, 5), min_size=n, max_size=n)), dtype=np.int64)
    k = draw(st.integers(min_value=1, max_value=6))
    alpha = np.sort(np.array(draw(st.lists(st.floats(0.05, 1.0), min_size=k, max_size=k))))[::-1]
    reserve = draw(st.sampled_from([0.0, 0.5, 1.0]) | st.floats(0.0, 50.0))
    seed = draw(st.integers(0, 2**32 - 1))
    return bids.astype(np.float64), q, float(reserve), alpha.copy(), seed


@FAST
@given(auctions())
def test_allocation_respects_slots_demand_and_reserve(case: tuple) -> None:  # type: ignore[type-arg]
    b, q, r, alpha, seed = case
    a = gsp(b, q, r, alpha, np.random.default_rng(seed), dt_s=0.5)
    assert a.slots.sum() <= alpha.size
    assert np.all(a.slots <= q)
    assert np.all(b[a.slots > 0] >= r)
    # Slots fill from the top with no gaps, and every eligible unit is placed if room.
    filled = a.slot_agent >= 0
    assert not np.any(np.diff(filled.astype(int)) > 0)
    eligible_units = int(q[b >= r].sum())
    assert filled.sum() == min(alpha.size, eligible_units)
    assert np.allclose(a.cores, np.bincount(a.slot_agent[filled], weights=alpha[filled],
                                            minlength=b.size))


@FAST
@given(auctions())
def test_every_winner_pays_between_reserve_and_its_bid(case: tuple) -> None:  # type: ignore[type-arg]
    b, q, r, alpha, seed = case
    a = gsp(b, q, r, alpha, np.random.default_rng(seed), dt_s=2.0)
    filled = a.slot_agent >= 0
    winners = a.slot_agent[filled]
    assert np.all(a.slot_price[filled] >= r)
    assert np.all(a.slot_price[filled] <= b[winners])
    # Higher slots go to (weakly) higher bids.
    assert np.all(np.diff(b[winners]) <= 0)
    expected = np.bincount(winners, weights=a.slot_price[filled] * alpha[filled] * 2.0,
                           minlength=b.size)
    assert np.allclose(a.payment, expected)
    assert np.all(a.payment <= b * a.cores * 2.0 + 1e-9)


@FAST
@given(auctions(unit_demand=True))
def test_one_slot_is_a_second_price_auction(case: tuple) -> None:  # type: ignore[type-arg]
    b, q, r, _, seed = case
    a = gsp(b, q, r, [1.0], np.random.default_rng(seed))
    eligible = np.sort(b[b >= r])[::-1]
    if eligible.size == 0:
        assert a.slots.sum() == 0 and a.revenue == 0.0
        return
    winner = int(a.slot_agent[0])
    assert b[winner] == eligible[0]
    second = eligible[1] if eligible.size > 1 else r
    assert a.payment[winner] == max(second, r)
    assert a.revenue == a.payment[winner]


@FAST
@given(auctions())
def test_vcg_never_charges_more_than_gsp_for_truthful_bids(case: tuple) -> None:  # type: ignore[type-arg]
    b, q, r, alpha, seed = case
    g = gsp(b, q, r, alpha, np.random.default_rng(seed))
    v = vcg(b, q, r, alpha, np.random.default_rng(seed))
    assert np.array_equal(g.slots, v.slots)
    assert np.all(v.payment <= g.payment + 1e-9)
    assert np.all(v.payment >= r * v.cores - 1e-9)  # nobody pays less than the reserve
    assert welfare(v, b) == pytest.approx(welfare(g, b))


@FAST
@given(auctions(), st.integers(0, 2**32 - 1))
def test_same_seed_same_outcome(case: tuple, seed2: int) -> None:  # type: ignore[type-arg]
    b, q, r, alpha, seed = case
    a1 = gsp(b, q, r, alpha, np.random.default_rng(seed))
    a2 = gsp(b, q, r, alpha, np.random.default_rng(seed))
    for f in ("order", "tie_keys", "slot_agent", "slot_price", "slots", "payment"):
        assert np.array_equal(getattr(a1, f), getattr(a2, f))


def test_ties_are_broken_by_the_generator_not_by_position() -> None:
    b = np.full(4, 2.0)
    q = np.ones(4, dtype=np.int64)
    firsts = {int(gsp(b, q, 0.0, [1.0], np.random.default_rng(s)).slot_agent[0]) for s in range(64)}
    assert firsts == {0, 1, 2, 3}


def test_truthful_welfare_is_optimal() -> None:
    rng = np.random.default_rng(7)
    for _ in range(50):
        n = int(rng.integers(1, 9))
        v = rng.random(n)
        q = rng.integers(0, 4, n)
        alpha = np.sort(rng.random(4))[::-1] + 0.01
        a = gsp(v, q, 0.0, alpha, rng)
        assert welfare(a, v) == pytest.approx(optimal_welfare(v, q, alpha))


def test_eos_example_truthful_gsp_and_vcg() -> None:
    """Edelman, Ostrovsky & Schwarz (AER 2007): values $10, $4, $2; two slots.

    With 200 and 100 clicks, truthful GSP charges 4·200 and 2·100; VCG charges
    (200−100)·4 + 100·2 = 600 and 100·2 = 200.
    """
    values = [10.0, 4.0, 2.0]
    alpha = [200.0, 100.0]
    q = [1, 1, 1]
    g = gsp(values, q, 0.0, alpha, np.random.default_rng(0))
    assert g.slot_agent.tolist() == [0, 1]
    assert g.payment.tolist() == [800.0, 200.0, 0.0]
    v = vcg(values, q, 0.0, alpha, np.random.default_rng(0))
    assert v.payment.tolist() == [600.0, 200.0, 0.0]


def test_eos_truth_telling_is_not_an_equilibrium() -> None:
    """EOS's example with 200 and 199 clicks: bidding $3 instead of $10 pays off."""
    alpha = [200.0, 199.0]
    q = [1, 1, 1]
    truthful = gsp([10.0, 4.0, 2.0], q, 0.0, alpha, np.random.default_rng(0))
    utility_truthful = 10.0 * truthful.cores[0] - truthful.payment[0]
    shaded = gsp([3.0, 4.0, 2.0], q, 0.0, alpha, np.random.default_rng(0))
    utility_shaded = 10.0 * shaded.cores[0] - shaded.payment[0]
    assert utility_truthful == 1200.0
    assert utility_shaded == 1592.0


def test_eos_generalized_english_auction_equilibrium_pays_vcg() -> None:
    """EOS Theorem 2: bids b_k = v_k − (α_k/α_{k−1})(v_k − b_{k+1}) (the loser bids its
    value) form an equilibrium whose GSP payments equal the VCG payments."""
    values = np.array([10.0, 4.0, 2.0])
    alpha = np.array([200.0, 100.0])
    b3 = values[2]
    b2 = values[1] - (alpha[1] / alpha[0]) * (values[1] - b3)
    assert b2 == 3.0
    bids = np.array([values[0], b2, b3])
    q = np.ones(3, dtype=np.int64)
    g = gsp(bids, q, 0.0, alpha, np.random.default_rng(0))
    v = vcg(values, q, 0.0, alpha, np.random.default_rng(0))
    assert g.payment.tolist() == [600.0, 200.0, 0.0]
    assert g.payment.tolist() == v.payment.tolist()
    # Locally envy-free: nobody gains by taking the slot above or below at its price.
    u = values * g.cores - g.payment
    assert u[1] >= alpha[0] * (values[1] - bids[0])  # 2 taking slot 1 pays b_1
    assert u[0] >= alpha[1] * (values[0] - bids[2])  # 1 dropping to slot 2 pays b_3
    assert u[2] >= alpha[1] * (values[2] - bids[1])  # 3 taking slot 2 pays b_2


def test_reserve_prices_and_excludes() -> None:
    a = gsp([5.0, 3.0, 1.0], [1, 1, 1], 2.0, [1.0, 1.0], np.random.default_rng(0))
    assert a.slots.tolist() == [1, 1, 0]
    assert a.slot_price.tolist() == [3.0, 2.0]  # the last winner pays the reserve
    v = vcg([5.0, 3.0, 1.0], [1, 1, 1], 2.0, [1.0, 1.0], np.random.default_rng(0))
    assert v.payment.tolist() == [2.0, 2.0, 0.0]


def test_lone_agent_pays_the_reserve_not_its_own_bid() -> None:
    a = gsp([10.0], [2], 1.0, [1.0, 1.0], np.random.default_rng(0))
    assert a.payment.tolist() == [2.0]
    assert a.slot_price.tolist() == [1.0, 1.0]


def test_winner_pays_the_rival_units_it_displaced() -> None:
    a = gsp([3.0, 4.0], [2, 2], 0.0, [1.0, 1.0], np.random.default_rng(0))
    assert a.slots.tolist() == [0, 2]
    assert a.payment.tolist() == [0.0, 6.0]


def test_multi_unit_agent_is_priced_by_rivals_only() -> None:
    # One agent wanting 3 units against a rival at 1: the rival prices its first unit,
    # the reserve (0) the rest; VCG charges the same (the rival is the only one displaced).
    a = gsp([4.0, 1.0], [3, 1], 0.0, [1.0, 1.0, 1.0], np.random.default_rng(0))
    assert a.slots.tolist() == [3, 0]
    assert a.slot_price.tolist() == [1.0, 0.0, 0.0]
    v = vcg([4.0, 1.0], [3, 1], 0.0, [1.0, 1.0, 1.0], np.random.default_rng(0))
    assert v.payment.tolist() == [1.0, 0.0]
    # Rivals below a block that still win slots price it too: A's three units pay the
    # three rival units ranked after them (5, 4, 3); B pays C's 4.
    a = gsp([10.0, 5.0, 4.0, 3.0, 2.0], [3, 1, 1, 1, 1], 0.0, [1.0] * 4,
            np.random.default_rng(0))
    assert a.slot_price.tolist() == [5.0, 4.0, 3.0, 4.0]
    assert a.payment.tolist() == [12.0, 4.0, 0.0, 0.0, 0.0]


def _reference_prices(b: np.ndarray, q: np.ndarray, r: float, a) -> list[float]:  # type: ignore[no-untyped-def]
    """The rule as written: unit j of an agent's block pays the j-th rival unit ranked
    after the block (in the auction's own ranking), or the reserve."""
    k = a.slot_agent.size
    units = [int(i) for i in a.order for _ in range(min(int(q[i]), k))]
    prices = []
    for slot, agent in enumerate(a.slot_agent):
        if agent < 0:
            break
        first = units.index(agent)
        j = slot - first
        rivals = [b[u] for u in units[first:] if u != agent]
        prices.append(max(rivals[j], r) if j < len(rivals) else r)
    return prices


@FAST
@given(auctions())
def test_prices_follow_the_displaced_rival_rule(case: tuple) -> None:  # type: ignore[type-arg]
    b, q, r, alpha, seed = case
    a = gsp(b, q, r, alpha, np.random.default_rng(seed))
    filled = a.slot_agent >= 0
    assert a.slot_price[filled].tolist() == _reference_prices(b, q, r, a)


@FAST
@given(auctions(), st.integers(0, 11), st.floats(0.0, 1.0))
def test_an_agents_own_bid_never_sets_its_price(case: tuple, who: int, x: float) -> None:  # type: ignore[type-arg]
    # Moving one's bid anywhere that keeps the same ranking leaves the payment unchanged.
    b, q, r, alpha, seed = case
    if who >= b.size:
        return
    a = gsp(b, q, r, alpha, np.random.default_rng(seed))
    if a.slots[who] == 0:
        return
    above = b[b > b[who]]
    below = b[(b < b[who]) & (q > 0)]
    lo = max(float(below.max()) if below.size else r, r)
    hi = float(above.min()) if above.size else b[who] + 10.0
    if not lo < hi:
        return
    b2 = b.copy()
    b2[who] = lo + (hi - lo) * (0.01 + 0.98 * x)
    a2 = gsp(b2, q, r, alpha, np.random.default_rng(seed))
    if not np.array_equal(a2.slot_agent, a.slot_agent):
        return  # ties in the original ranking moved; a different case
    assert a2.payment[who] == pytest.approx(a.payment[who])


@FAST
@given(auctions(), st.integers(0, 11))
def test_asking_for_every_unit_one_values_is_a_best_reply(case: tuple, who: int) -> None:  # type: ignore[type-arg]
    # A truthful bidder (value = bid, flat up to q) never loses by asking for one more unit.
    b, q, r, alpha, seed = case
    if who >= b.size:
        return
    utility = []
    for qi in range(alpha.size + 1):
        q2 = q.copy()
        q2[who] = qi
        a = gsp(b, q2, r, alpha, np.random.default_rng(seed))
        utility.append(b[who] * a.cores[who] - a.payment[who])
    assert all(u2 >= u1 - 1e-9 for u1, u2 in itertools.pairwise(utility))


def test_large_auction_matches_full_sort() -> None:
    rng = np.random.default_rng(3)
    n = 20_000
    b = np.round(rng.random(n), 3)  # many ties
    q = rng.integers(0, 3, n)
    a = gsp(b, q, 0.2, np.linspace(1.0, 0.5, 64), np.random.default_rng(1))
    units = np.sort(np.repeat(b[b >= 0.2], q[b >= 0.2]))[::-1]
    assert np.array_equal(b[a.slot_agent], units[:64])
    assert a.slot_price.tolist() == _reference_prices(b, q, 0.2, a)


@pytest.mark.parametrize(
    "kwargs",
    [
        {"bid_price": [1.0, -1.0], "bid_slots": [1, 1]},
        {"bid_price": [1.0, np.nan], "bid_slots": [1, 1]},
        {"bid_price": [1.0], "bid_slots": [-1]},
        {"bid_price": [1.0], "bid_slots": [1.5]},
        {"bid_price": [1.0, 2.0], "bid_slots": [1]},
        {"slot_weights": [0.5, 1.0]},
        {"slot_weights": []},
        {"reserve": -1.0},
        {"dt_s": 0.0},
    ],
)
def test_bad_input_is_rejected(kwargs: dict) -> None:  # type: ignore[type-arg]
    args: dict = {"bid_price": [1.0], "bid_slots": [1], "reserve": 0.0,  # type: ignore[type-arg]
                  "slot_weights": [1.0], "dt_s": 1.0}
    args.update(kwargs)
    with pytest.raises(ValueError):
        gsp(rng=np.random.default_rng(0), **args)


def test_chunked_preselection_matches_full_sort() -> None:
    # Large enough for the chunked path; bids on a coarse grid so ties straddle chunks.
    rng = np.random.default_rng(11)
    n = 300_000
    b = np.round(rng.random(n), 2)
    q = rng.integers(0, 3, n)
    a = gsp(b, q, 0.3, np.ones(100), np.random.default_rng(2))
    ok = (b >= 0.3) & (q > 0)
    units = np.sort(np.repeat(b[ok], q[ok]))[::-1]
    assert np.array_equal(b[a.slot_agent], units[:100])
    assert a.slot_price.tolist() == _reference_prices(b, q, 0.3, a)
    # Everyone tied at the boundary bid is a candidate, whatever chunk it sits in.
    boundary = np.sort(b[ok])[::-1][2 * 100]  # the (2K+1)-th best agent's bid
    assert set(a.order.tolist()) == set(np.flatnonzero(ok & (b >= boundary)).tolist())
