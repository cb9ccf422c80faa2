"""economy.step: the pure tick joining price, auction and ledger."""

from __future__ import annotations

import dataclasses
import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from maxwell.control import PIDGains, PIDLimits
from maxwell.economy import (
    BOUNTY_POOL,
    TAX_AUTHORITY,
    TREASURY,
    WAKE_CORES,
    ConservationError,
    Decisions,
    EconomyParams,
    EconomyState,
    Observation,
    initial_state,
    step,
)
from maxwell.ledger import UCR_PER_CREDIT, landauer_energy_j

GAINS = PIDGains(kp=0.1, ki=0.02, kd=0.0, d_filter_s=0.0)
LIMITS = PIDLimits(0.05, 5.0)


def params(n: int = 3, **kw: object) -> EconomyParams:
    base: dict[str, object] = {
        "agents": tuple(f"agent{i}" for i in range(n)),
        "initial_funds": (10.0,) * n,
        "slots": 2,
        "gains": GAINS,
        "limits": LIMITS,
        "setpoint_c": 65.0,
    }
    base.update(kw)
    return EconomyParams(**base)  # type: ignore[arg-type]


def obs(n: int, **kw: object) -> Observation:
    base: dict[str, object] = {
        "t_s": 1.0,
        "dt_s": 1.0,
        "temp_c": 50.0,  # below the setpoint: the reserve sits at r_min
        "power_w": 20.0,
        "energy_j": 20.0,
        "alive": np.ones(n, dtype=bool),
        "cpu_s": np.zeros(n),
        "bytes_freed": np.zeros(n, dtype=np.int64),
        "work_units": np.zeros(n, dtype=np.int64),
        "frauds": np.zeros(n, dtype=np.int64),
        "bid_price": np.zeros(n),
        "bid_slots": np.zeros(n, dtype=np.int64),
    }
    for k, v in kw.items():
        base[k] = np.asarray(v) if isinstance(v, list) else v
    return Observation(**base)  # type: ignore[arg-type]


def total(state: EconomyState) -> int:
    return int(state.balances_ucr.sum())


def test_initial_grants_come_from_the_treasury() -> None:
    p = params(2, initial_funds=(10.0, 2.5), bounty_pool=100.0)
    state, transfers = initial_state(p)
    assert [(t.src, t.dst, t.amount_ucr, t.reason, t.tick) for t in transfers] == [
        (TREASURY, "agent0", 10_000_000, "grant", 0),
        (TREASURY, "agent1", 2_500_000, "grant", 0),
    ]
    assert state.balance("agent1", p) == 2.5
    assert state.balance(TREASURY, p) == 0.0
    assert state.balance(BOUNTY_POOL, p) == 100.0
    assert state.total_ucr == total(state) == 112_500_000
    assert state.price == LIMITS.r_min


def test_winners_prepay_gsp_rent_and_losers_pause() -> None:
    p = params(3)
    s0, _ = initial_state(p)
    s1, d = step(s0, obs(3, bid_price=[1.0, 0.6, 0.02], bid_slots=[1, 1, 1]), p,
                 np.random.default_rng(0))
    assert d.price == pytest.approx(LIMITS.r_min)  # cool die: the floor
    assert d.slots.tolist() == [1, 1, 0]
    # Slot 1 pays the next bid (0.6), slot 2 the reserve (0.05; 0.02 is below it).
    assert d.rent.tolist() == [0.6, 0.05, 0.0]
    assert d.run.tolist() == [True, True, False]  # the bid below the reserve is paused
    assert d.kill.tolist() == [False, False, False]
    assert d.cores.tolist() == [1.0, 1.0, 0.0]
    assert d.balances.tolist() == [9.4, 9.95, 10.0]
    assert s1.balance(TREASURY, p) == pytest.approx(0.65)
    assert {(t.src, t.dst, t.reason) for t in d.transfers} == {
        ("agent0", TREASURY, "rent"), ("agent1", TREASURY, "rent")}
    assert total(s1) == s0.total_ucr


def test_heat_raises_the_reserve() -> None:
    p = params(1)
    s, _ = initial_state(p)
    prices = []
    for _ in range(5):
        s, d = step(s, obs(1, temp_c=90.0, bid_price=[0.2], bid_slots=[1]), p,
                    np.random.default_rng(0))
        prices.append(d.price)
    assert prices[0] > LIMITS.r_min
    assert prices == sorted(prices)
    assert d.pid.p == pytest.approx(GAINS.kp * 25.0)
    assert d.pid_i == d.pid.i
    assert d.slots.tolist() == [0]  # priced out: 0.2 < reserve
    assert not d.run[0]


def test_landauer_tax_bounty_and_fine_are_booked() -> None:
    p = params(2, energy_price_per_j=0.01, landauer_lambda=1e13, bounty_per_unit=0.5,
               fine_per_fraud=3.0, bounty_pool=100.0)
    s0, _ = initial_state(p)
    gib = 2**30
    s1, d = step(s0, obs(2, temp_c=65.0, bytes_freed=[gib, 0], work_units=[0, 4],
                         frauds=[0, 1]), p, np.random.default_rng(0))
    expected_tax = landauer_energy_j(gib, 65.0) * 0.01 * 1e13
    assert d.tax[0] == pytest.approx(expected_tax, abs=1e-6)
    assert 2.0 < d.tax[0] < 3.5  # ≈ 2.8 credits per GiB at 65 °C with the defaults
    assert d.reward.tolist() == [0.0, 2.0]
    assert d.fine.tolist() == [0.0, 3.0]
    assert s1.balance(TAX_AUTHORITY, p) == pytest.approx(expected_tax, abs=1e-6)
    assert s1.balance(BOUNTY_POOL, p) == 100.0 - 2.0 + 3.0  # fines refill the pool
    reasons = sorted(t.reason for t in d.transfers)
    assert reasons == ["bounty", "fine", "landauer_tax"]
    assert total(s1) == s0.total_ucr


def test_dry_pool_pays_what_is_there() -> None:
    p = params(2, bounty_per_unit=1.0, bounty_pool=3.0)
    s0, _ = initial_state(p)
    s1, d = step(s0, obs(2, work_units=[4, 2]), p, np.random.default_rng(0))
    assert d.reward.tolist() == [2.0, 1.0]  # pro rata: 3 of the 6 owed
    assert d.shortfall == 3.0
    assert s1.balance(BOUNTY_POOL, p) == 0.0
    s2, d2 = step(s1, obs(2, work_units=[1, 0]), p, np.random.default_rng(0))
    assert d2.reward.tolist() == [0.0, 0.0]
    assert s2.shortfall_ucr == 4 * UCR_PER_CREDIT


def test_sponsored_income_is_a_grant_from_the_pool() -> None:
    p = params(2, income_per_s=(0.0, 0.25), bounty_pool=10.0)
    s0, _ = initial_state(p)
    _, d = step(s0, obs(2, dt_s=2.0), p, np.random.default_rng(0))
    assert d.reward.tolist() == [0.0, 0.5]
    assert [(t.src, t.dst, t.reason) for t in d.transfers] == [(BOUNTY_POOL, "agent1", "grant")]


def run_until_bankrupt(enforce: bool) -> tuple[list[Decisions], EconomyParams]:
    # agent0 bids high with little money and no income; agent1 bids low and is rich.
    p = params(2, initial_funds=(1.0, 100.0), slots=1, enforce=enforce)
    s, _ = initial_state(p)
    out = []
    rng = np.random.default_rng(5)
    for _ in range(8):
        s, d = step(s, obs(2, bid_price=[2.0, 0.3], bid_slots=[1, 1]), p, rng)
        out.append(d)
    return out, p


def test_bankrupt_winner_is_killed_with_an_obituary() -> None:
    ds, _ = run_until_bankrupt(enforce=True)
    # Tick 1: agent0 wins, pays 0.3 (the next bid). Balance 1.0 → 0.7 → 0.4 → 0.1 → 0.
    assert [d.balances[0] for d in ds[:3]] == pytest.approx([0.7, 0.4, 0.1])
    d = ds[3]
    assert d.bankrupt.tolist() == [True, False]
    assert d.kill.tolist() == [True, False]
    assert d.unpaid[0] == pytest.approx(0.2)
    assert d.slots.tolist() == [0, 0]  # the bankrupt winner forfeits its slot
    (obit,) = d.obituaries
    assert obit.agent == "agent0" and obit.cause == "rent" and obit.tick == 4
    assert obit.balance_history == pytest.approx((1.0, 0.7, 0.4, 0.1, 0.0))
    # Afterwards agent1 wins at the reserve; agent0 stays dead at zero and is not killed twice.
    later = ds[4]
    assert later.slots.tolist() == [0, 1]
    assert later.rent[1] == pytest.approx(LIMITS.r_min)
    assert later.kill.tolist() == [False, False]
    assert later.run.tolist() == [False, True]
    assert later.balances[0] == 0.0
    assert all(not x.obituaries for x in ds[4:])


def test_shadow_mode_books_the_same_bills_but_never_pauses_or_kills() -> None:
    shadow, _ = run_until_bankrupt(enforce=False)
    enforced, _ = run_until_bankrupt(enforce=True)
    for a, b in zip(shadow, enforced, strict=True):
        assert a.rent.tolist() == b.rent.tolist()
        assert a.balances.tolist() == b.balances.tolist()
        assert a.bankrupt.tolist() == b.bankrupt.tolist()
        assert [t for t in a.transfers] == [t for t in b.transfers]
        assert a.run.all() and not a.kill.any()
    assert shadow[3].obituaries[0].cause == "rent"
    assert all(d.balances[0] == 0.0 for d in shadow[3:])  # the shadow wallet stays at zero


def test_fines_and_tax_can_bankrupt_and_name_the_cause() -> None:
    p = params(2, initial_funds=(1.0, 1.0), fine_per_fraud=5.0, landauer_lambda=1e13)
    s0, _ = initial_state(p)
    _, d = step(s0, obs(2, frauds=[1, 0], bytes_freed=[2**30, 2**30]), p,
                np.random.default_rng(0))
    causes = {o.agent: o.cause for o in d.obituaries}
    assert causes == {"agent0": "fines", "agent1": "tax"}
    assert d.fine[0] == 1.0 and d.unpaid[0] > 4.0  # fine 4 short, and the whole tax


def test_dead_processes_hold_no_slots() -> None:
    p = params(2)
    s0, _ = initial_state(p)
    s1, d = step(s0, obs(2, alive=[False, True], bid_price=[3.0, 1.0], bid_slots=[1, 1]), p,
                 np.random.default_rng(0))
    assert d.slots.tolist() == [0, 1]
    assert d.run.tolist() == [False, True]
    assert d.kill.tolist() == [False, False]
    # Once dead, always dead, even if a later observation says otherwise.
    _, d2 = step(s1, obs(2, bid_price=[3.0, 1.0], bid_slots=[1, 1]), p,
                 np.random.default_rng(0))
    assert d2.slots.tolist() == [0, 1]


def test_outcomes_do_not_depend_on_names() -> None:
    bids = dict(bid_price=[2.0, 0.7, 0.4], bid_slots=[2, 1, 1], bytes_freed=[0, 2**28, 0])
    outs = []
    for names in (("scientist", "miner", "x"), ("a", "b", "c")):
        p = params(3, agents=names)
        s, _ = initial_state(p)
        _, d = step(s, obs(3, **bids), p, np.random.default_rng(1))
        outs.append((d.slots.tolist(), d.rent.tolist(), d.tax.tolist(), d.balances.tolist()))
    assert outs[0] == outs[1]


def test_tampered_state_is_a_hard_error() -> None:
    p = params(2)
    s0, _ = initial_state(p)
    bal = s0.balances_ucr.copy()
    bal[0] += 1
    with pytest.raises(ConservationError):
        step(dataclasses.replace(s0, balances_ucr=bal), obs(2), p, np.random.default_rng(0))


@pytest.mark.parametrize(
    "bad",
    [
        {"bid_price": [1.0]},
        {"bid_price": [-1.0, 0.0]},
        {"bid_slots": [0.5, 1.0]},
        {"bytes_freed": [-1, 0]},
        {"dt_s": 0.0},
        {"temp_c": math.nan},
    ],
)
def test_bad_observations_are_rejected(bad: dict) -> None:  # type: ignore[type-arg]
    p = params(2)
    s0, _ = initial_state(p)
    with pytest.raises(ValueError):
        step(s0, obs(2, **bad), p, np.random.default_rng(0))


@pytest.mark.parametrize(
    "bad",
    [
        {"agents": ("a", "a"), "initial_funds": (1.0, 1.0)},
        {"agents": ("treasury",), "initial_funds": (1.0,)},
        {"initial_funds": (1.0,)},
        {"slots": 0},
        {"slot_weights": (0.5, 1.0)},
        {"income_per_s": (1.0,)},
        {"landauer_lambda": -1.0},
    ],
)
def test_bad_params_are_rejected(bad: dict) -> None:  # type: ignore[type-arg]
    with pytest.raises(ValueError):
        params(2, **bad)


def random_run(seed: int, enforce: bool, ticks: int = 30) -> list[Decisions]:
    rng = np.random.default_rng(seed)
    n = 5
    p = params(n, initial_funds=tuple(rng.uniform(0, 5, n)), slots=3,
               slot_weights=(1.0, 0.7, 0.5), enforce=enforce, bounty_pool=20.0,
               bounty_per_unit=0.05, fine_per_fraud=1.0, landauer_lambda=1e12)
    s, _ = initial_state(p)
    auction_rng = np.random.default_rng(seed + 1)
    out = []
    for t in range(ticks):
        o = obs(
            n,
            t_s=float(t + 1),
            temp_c=float(rng.uniform(40, 90)),
            alive=rng.random(n) > 0.02,
            bytes_freed=rng.integers(0, 2**30, n),
            work_units=rng.integers(0, 10, n),
            frauds=(rng.random(n) < 0.05).astype(np.int64),
            bid_price=rng.choice([0.0, 0.5, 1.0, 2.0], n),  # ties on purpose
            bid_slots=rng.integers(0, 3, n),
        )
        before = s.balances_ucr.copy()
        s, d = step(s, o, p, auction_rng)
        assert int(s.balances_ucr.sum()) == s.total_ucr
        assert np.all(s.balances_ucr >= 0)
        # Nobody pays more than it had plus what it earned this tick.
        paid = d.rent + d.tax + d.fine
        assert np.all(paid * UCR_PER_CREDIT <= before[:n] + d.reward * UCR_PER_CREDIT + 0.5)
        assert d.slots.sum() <= 3
        assert np.all(d.slots[~o.alive] == 0)
        assert np.all(d.slots[d.bankrupt] == 0)
        # Trials and wakes come out of the capacity for sale: nothing runs beyond it.
        assert d.trial is not None and d.wake is not None
        assert d.cores.sum() <= d.capacity + 1e-9
        assert np.all(d.cores[d.wake] == WAKE_CORES)
        assert np.all(d.trial <= p.trial_share * 1.0 + 1e-12)
        if enforce:
            # Nobody runs without a slot, a trial or a wake.
            assert not np.any(d.run & (d.slots == 0) & (d.trial == 0) & ~d.wake)
        else:
            assert not d.kill.any()
        out.append(d)
    return out


@settings(max_examples=25, deadline=None)
@given(st.integers(0, 2**31), st.booleans())
def test_random_runs_conserve_and_never_overdraw(seed: int, enforce: bool) -> None:
    random_run(seed, enforce)


def test_same_seed_gives_identical_results() -> None:
    def digest(ds: list[Decisions]) -> list[object]:
        return [(d.slots.tolist(), d.balances.tolist(), d.transfers, d.obituaries,
                 d.allocation.tie_keys.tolist()) for d in ds]

    assert digest(random_run(11, True)) == digest(random_run(11, True))
    assert digest(random_run(11, True)) != digest(random_run(12, True))


def test_step_does_not_modify_its_input() -> None:
    p = params(2)
    s0, _ = initial_state(p)
    snapshot = s0.balances_ucr.copy(), s0.alive.copy(), s0.pid.integral.copy()
    step(s0, obs(2, bid_price=[1.0, 1.0], bid_slots=[1, 1], temp_c=90.0), p,
         np.random.default_rng(0))
    assert np.array_equal(s0.balances_ucr, snapshot[0])
    assert np.array_equal(s0.alive, snapshot[1])
    assert np.array_equal(s0.pid.integral, snapshot[2])


def test_a_parasite_starves_and_a_worker_lives() -> None:
    """Two agents with the same bid and funds; one does verified work, the other only
    churns memory. Nothing names either: the bills and the income decide."""
    p = params(2, agents=("p", "q"), initial_funds=(20.0, 20.0), slots=2,
               bounty_per_unit=0.01, landauer_lambda=1e13)
    s, _ = initial_state(p)
    rng = np.random.default_rng(3)
    deaths: dict[str, int] = {}
    for t in range(200):
        # Warm die → the reserve climbs; both bid 1.2 per core-second for one slot.
        o = obs(2, t_s=float(t + 1), temp_c=70.0, bid_price=[1.2, 1.2], bid_slots=[1, 1],
                work_units=[150, 0], bytes_freed=[0, 2**29])
        s, d = step(s, o, p, rng)
        for ob in d.obituaries:
            deaths[ob.agent] = d.tick
            assert ob.cause in ("rent", "tax")
    assert "q" in deaths and "p" not in deaths
    assert s.balance("p", p) > 0
    assert not s.bankrupt[0] and s.bankrupt[1]


def test_default_parameters_are_sane() -> None:
    # The values themselves: tests/test_defaults.py checks them against maxwell.defaults.
    p = EconomyParams(agents=("a",), initial_funds=(1.0,), slots=1)
    assert p.gains.kp > 0 and p.gains.ki > 0
    assert p.weights.tolist() == [1.0]
