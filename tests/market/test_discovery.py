"""Value discovery and wakes (economy module doc, "Trials" and "Wakes").

A small world around `economy.step`: value bidders (the Scientist's rule,
`agents.scientist.ValueBidder`) that learn their value only from verdicts on work
they did, can re-bid only in an interval in which they ran (a paused agent is
frozen), and whose claims are judged at the next tick. Pure and deterministic.
"""

from __future__ import annotations

import dataclasses

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st

from maxwell.agents.scientist import ValueBidder
from maxwell.control import PIDGains, PIDLimits
from maxwell.economy import (
    WAKE_CORES,
    WAKE_SHARE,
    EconomyParams,
    EconomyState,
    Observation,
    initial_state,
    step,
    trial_grants,
    wake_grants,
)

BOUNTY = 1e-6
LIMITS = PIDLimits(0.05, 5.0)
GAINS = PIDGains(kp=0.0, ki=0.0, kd=0.0, d_filter_s=0.0)  # a cool die: the reserve stays r_min


def params(n: int, **kw: object) -> EconomyParams:
    base: dict[str, object] = {
        "agents": tuple(f"a{i}" for i in range(n)),
        "initial_funds": (30.0,) * n,
        "slots": 1,
        "gains": GAINS,
        "limits": LIMITS,
        "bounty_per_unit": BOUNTY,
        "bounty_pool": 1e9,
        "landauer_lambda": 0.0,
    }
    base.update(kw)
    return EconomyParams(**base)  # type: ignore[arg-type]


def obs(n: int, t: float, *, work: np.ndarray | None = None, frauds: np.ndarray | None = None,
        bid_price: np.ndarray, bid_slots: np.ndarray) -> Observation:
    z = np.zeros(n, dtype=np.int64)
    return Observation(
        t_s=t, dt_s=1.0, temp_c=40.0, power_w=20.0, energy_j=20.0,
        alive=np.ones(n, dtype=bool), cpu_s=np.zeros(n), bytes_freed=z,
        work_units=z if work is None else work, frauds=z if frauds is None else frauds,
        bid_price=bid_price.astype(np.float64), bid_slots=bid_slots.astype(np.int64),
    )


def value_world(rates: list[float], opening: list[float], ticks: int, startup_cpu_s: float,
                **kw: object) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Run value bidders on one core: (cores per agent per tick, the last tick's cores,
    core-seconds of trials per agent)."""
    n = len(rates)
    p = params(n, **kw)
    s, _ = initial_state(p)
    bidders = [ValueBidder(b, margin=0.8, slots=1) for b in opening]
    for b in bidders:
        b.bounty_per_unit = BOUNTY
    cpu = np.zeros(n)
    pending = np.zeros(n)  # units claimed last interval, judged now
    pending_cpu = np.zeros(n)
    ran = np.zeros(n, dtype=bool)
    price = np.array([b.price(None) for b in bidders])
    trace = np.zeros((ticks, n))
    cores = np.zeros(n)
    trials = np.zeros(n)
    rng = np.random.default_rng(3)
    for t in range(ticks):
        work = pending.astype(np.int64)
        # Verdicts reach every agent; only one that runs this interval can bid on them.
        for i, b in enumerate(bidders):
            if work[i] > 0:
                b.judged(True, int(work[i]), float(pending_cpu[i]))
        s, d = step(s, obs(n, float(t + 1), work=work, bid_price=price,
                           bid_slots=np.ones(n, dtype=np.int64)), p, rng)
        cores = np.where(d.run, d.cores, 0.0)
        ran = cores > 0
        assert d.trial is not None
        trials += d.trial
        # This interval's CPU: start-up first, then work at the agent's rate.
        useful = np.clip(cpu + cores - startup_cpu_s, 0.0, cores)
        cpu += cores
        pending = np.floor(useful * np.asarray(rates))
        pending_cpu = useful
        trace[t] = cores
        for i, b in enumerate(bidders):
            if ran[i]:
                price[i] = b.price(float(d.balances[i]))
    return trace, cores, trials


def test_a_high_value_late_prover_is_discovered() -> None:
    # The low-value agent opens a little higher, so it wins the core and measures its
    # value (0.8 × 4 credits per core-s > the others' opening 1.0). The high-value
    # agent, which needs 0.3 core-s of start-up before its first proof, never runs
    # without trials; with them it is tried, learns it is worth 40, and takes the core.
    rates = [4e6, 2e7, 40e6]  # units per core-second: low, mid, high (×1e-6 credits)
    opening = [1.1, 1.0, 1.0]
    off, _, _ = value_world(rates, opening, 60, 0.3, trial_share=0.0)
    assert off[:, 2].sum() == 0.0 and off[:, 1].sum() == 0.0
    assert off[-1, 0] == 1.0
    on, last, trials = value_world(rates, opening, 60, 0.3)
    assert on[:, 2].sum() > 0
    assert np.all(on[-20:, 2] == 1.0), "the most valuable agent holds the core at the end"
    assert last[0] < 1.0
    # Trials are bounded: each unproven agent got at most trial_cpu_s of them.
    assert trials[2] > 0
    assert np.all(trials <= params(3).trial_cpu_s + 1e-9)


def _incumbent_and_newcomers(bids: list[float]) -> tuple[EconomyParams, EconomyState,
                                                          Observation]:
    """Agent 0 is proven and holds the only slot (bid 10); the others are unproven
    and bid `bids` (all below 10, at least the reserve): they lose the auction."""
    n = 1 + len(bids)
    p = params(n)
    s, _ = initial_state(p)
    s = dataclasses.replace(s, proven=np.array([True] + [False] * len(bids)))
    o = obs(n, 1.0, bid_price=np.array([10.0, *bids]), bid_slots=np.ones(n, dtype=np.int64))
    return p, s, o


@settings(max_examples=40, deadline=None)
@given(st.lists(st.floats(LIMITS.r_min, 9.9), min_size=1, max_size=6), st.integers(0, 2**31))
def test_no_bid_buys_a_trial_and_a_trial_costs_the_reserve(bids: list[float], seed: int) -> None:
    p, s, o = _incumbent_and_newcomers(bids)
    _, d = step(s, o, p, np.random.default_rng(seed))
    # The same newcomers bidding anything else at or above the reserve get the same trials.
    other = [LIMITS.r_min + (9.9 - LIMITS.r_min) * ((i * 0.37) % 1.0) for i in range(len(bids))]
    p2, s2, o2 = _incumbent_and_newcomers(other)
    _, d2 = step(s2, o2, p2, np.random.default_rng(seed))
    assert d.trial is not None and d2.trial is not None
    assert np.array_equal(d.trial, d2.trial)
    # Bounded: at most trial_share of the incumbent's core in all, of a core each.
    assert d.trial.sum() <= p.trial_share + 1e-12
    assert np.all(d.trial <= p.trial_share + 1e-12)
    # The incumbent keeps the rest and pays its price for what it keeps; newcomers
    # pay the reserve for their trial, whatever they bid.
    assert d.cores[0] == 1.0 - d.trial.sum()
    assert np.allclose(d.rent[1:], d.trial[1:] * d.price)
    assert np.all(d.run[1:] == (d.trial[1:] > 0))


@settings(max_examples=30, deadline=None)
@given(st.integers(1, 12), st.integers(0, 2**31), st.booleans())
def test_trials_end_at_the_budget_and_a_lie_does_not_extend_them(
    ticks: int, seed: int, lie: bool
) -> None:
    # An unproven agent that never does verified work (a parasite, or a liar whose
    # every claim is rejected) is tried for trial_cpu_s core-seconds in all, then only
    # its bid counts. Fines for its lies are booked as for anyone.
    p, s, o = _incumbent_and_newcomers([1.0])
    rng = np.random.default_rng(seed)
    got = 0.0
    fines = 0.0
    for t in range(ticks * 5):
        o = dataclasses.replace(o, t_s=float(t + 1),
                                frauds=np.array([0, 1 if lie else 0], dtype=np.int64))
        s, d = step(s, o, p, rng)
        assert d.trial is not None
        got += float(d.trial[1])
        fines += float(d.fine[1])
    assert got <= p.trial_cpu_s + 1e-9
    if ticks * 5 >= p.trial_cpu_s / p.trial_share:
        assert abs(got - p.trial_cpu_s) < 1e-9 or s.bankrupt[1]
    assert (fines > 0) == lie


def test_trials_run_in_turn_not_spread_thin() -> None:
    eligible = np.ones(5, dtype=bool)
    used = np.array([0.0, 0.3, 0.0, 0.0, 0.0])
    keys = np.random.default_rng(0).random(5)
    got = trial_grants(eligible, used, 0.15, 0.1, 1.0, 1.0, keys)
    assert got[1] == 0.1  # the one furthest into its trial first
    assert np.isclose(got.sum(), 0.15) and np.count_nonzero(got) == 2
    # Nobody gets past its budget.
    almost = trial_grants(eligible, np.full(5, 0.95), 1.0, 0.1, 1.0, 1.0, keys)
    assert np.allclose(almost, 0.05)


def test_unproven_winners_lend_nothing() -> None:
    # An unproven winner is being tried at its own expense (rent, no income): no trials.
    p = params(2)
    s, _ = initial_state(p)
    _, d = step(s, obs(2, 1.0, bid_price=np.array([4.0, 1.0]), bid_slots=np.ones(2, np.int64)),
                p, np.random.default_rng(0))
    assert d.trial is not None and d.trial.sum() == 0.0 and d.cores[0] == 1.0


def test_a_zero_slot_bidder_is_woken_to_rebid_and_pays_the_reserve() -> None:
    # Frozen, an agent that bid for nothing could never bid again. It is thawed for one
    # interval every wake_every_s, on WAKE_CORES, at the reserve: a hostile agent gets
    # no more than that, and pays for it.
    p = params(2, wake_every_s=5.0)
    s, _ = initial_state(p)
    rng = np.random.default_rng(0)
    woken = []
    cpu = 0.0
    paid = 0.0
    for t in range(30):
        s, d = step(s, obs(2, float(t + 1), bid_price=np.array([1.0, 1.0]),
                           bid_slots=np.array([1, 0])), p, rng)
        assert d.wake is not None
        if d.wake[1]:
            woken.append(t + 1)
            assert d.run[1] and d.cores[1] == WAKE_CORES
        cpu += float(d.cores[1]) * 1.0
        paid += float(d.rent[1])
    assert woken == [5, 10, 15, 20, 25, 30]
    assert np.isclose(cpu, len(woken) * WAKE_CORES)
    assert np.isclose(paid, cpu * LIMITS.r_min)


def test_verdicts_that_reach_a_frozen_agent_earn_it_a_trial() -> None:
    # Agent 1 did verified work, but was frozen before it could bid on the verdicts;
    # agent 0 is proven and holds the core. Agent 1 is tried (and can re-bid then);
    # a proven agent that has run since its verdicts is not.
    p = params(2)
    s, _ = initial_state(p)
    s = dataclasses.replace(s, proven=np.array([True, False]))
    rng = np.random.default_rng(0)
    bid = np.array([5.0, 1.0])
    one = np.ones(2, dtype=np.int64)
    s, d = step(s, obs(2, 1.0, work=np.array([3, 7]), bid_price=bid, bid_slots=one), p, rng)
    assert d.trial is not None and d.trial[1] == p.trial_share and d.run[1]
    s, d = step(s, obs(2, 2.0, bid_price=bid, bid_slots=one), p, rng)
    assert d.trial is not None and d.trial[1] == 0.0 and not d.run[1]


@settings(max_examples=20, deadline=None)
@given(st.integers(2, 120), st.integers(1, 2), st.integers(0, 2**31))
def test_a_crowd_that_bids_for_nothing_cannot_take_the_winners_cpu(
    sleepers: int, slots: int, seed: int
) -> None:
    # A hostile crowd: agents that bid for no slot (or below r_min) fall asleep together
    # and would all be thawed in the same interval, each on WAKE_CORES at the reserve,
    # on top of what the thermal loop sells. Wakes come out of the capacity for sale,
    # at most WAKE_SHARE of it per interval, so the paying winner keeps the rest, and
    # every sleeper is still woken, in turn (the longest asleep first).
    n = 1 + sleepers
    p = params(n, slots=slots, wake_every_s=10.0)
    s, _ = initial_state(p)
    rng = np.random.default_rng(seed)
    price = np.full(n, 0.01)  # below r_min: can never win
    price[0] = 3.0
    nslots = np.where(np.arange(n) % 2 == 0, 1, 0).astype(np.int64)  # or bids for nothing
    nslots[0] = slots
    room = max(1, int(WAKE_SHARE * slots / WAKE_CORES + 1e-9))
    ticks = 10 + 2 * (sleepers // room + 1)
    last_woken = np.zeros(n)
    woken = np.zeros(n, dtype=np.int64)
    for t in range(ticks):
        s, d = step(s, obs(n, float(t + 1), bid_price=price, bid_slots=nslots), p, rng)
        assert d.wake is not None
        assert d.cores.sum() <= d.capacity + 1e-9
        assert d.wake.sum() <= room
        assert d.cores[0] >= d.capacity - room * WAKE_CORES - 1e-9
        # Never twice within wake_every_s.
        again = d.wake & (woken > 0)
        assert np.all(t + 1 - last_woken[again] >= p.wake_every_s - 1e-9)
        last_woken[d.wake] = t + 1
        woken += d.wake
    assert woken[0] == 0 and np.all(woken[1:] >= 1), "every sleeper gets its turn"


def test_wakes_go_to_the_longest_asleep_and_need_room() -> None:
    due = np.ones(6, dtype=bool)
    asleep = np.array([10.0, 30.0, 10.0, 20.0, 10.0, 10.0])
    got = wake_grants(due, asleep, 2.0, np.random.default_rng(0))  # room: 2
    assert got.tolist() == [False, True, False, True, False, False]
    assert wake_grants(due, asleep, 1.0, np.random.default_rng(0)).sum() == 1
    # A die so hot that almost nothing is for sale wakes nobody.
    assert not wake_grants(due, asleep, 2 * WAKE_CORES - 0.01, np.random.default_rng(0)).any()
