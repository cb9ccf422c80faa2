"""The agent models and the simulated host, without the loop: CPU sharing, work, verdicts."""

from __future__ import annotations

import numpy as np
import pytest

from maxwell.agents.scientist import ValueBidder
from maxwell.agents.sieve import count_primes
from maxwell.config import MODELS as CONFIG_MODELS
from maxwell.physics import plant_params
from maxwell.sim.models import (
    MODELS,
    AgentModel,
    Calibration,
    ModelOptionError,
    build_population,
    check_model_options,
    fair_share,
    li,
)
from maxwell.sim.world import World


def _world(*agents: AgentModel, cpus: float = 2.0, p: float = 0.02, seed: int = 0) -> World:
    pop = build_population(list(agents), Calibration(), np.random.default_rng(seed))
    return World(pop, plant_params("desktop"), cpus=cpus, resieve_probability=p,
                 rng=np.random.default_rng(seed))


def test_config_and_simulator_name_the_same_models() -> None:
    assert CONFIG_MODELS == MODELS


def test_fair_share_is_max_min_fair_and_uses_the_capacity() -> None:
    caps = np.array([0.2, 2.0, 2.0, 0.0, 5.0])
    got = fair_share(caps, 3.0)
    assert got.sum() == pytest.approx(3.0)
    assert got[0] == pytest.approx(0.2)  # below the level: gets what it wants
    assert got[1] == got[2] == got[4] == pytest.approx((3.0 - 0.2) / 3)
    assert got[3] == 0.0
    assert np.array_equal(fair_share(caps, 100.0), caps)  # enough for all


def test_li_counts_the_primes_of_a_segment_within_a_tenth_of_a_percent() -> None:
    lo, hi = 10**8, 10**8 + (1 << 20)
    est = float(li(np.array([float(hi)]))[0] - li(np.array([float(lo)]))[0])
    assert est == pytest.approx(count_primes(lo, hi), rel=2e-3)


def test_options_are_checked_with_a_message_naming_the_key() -> None:
    with pytest.raises(ModelOptionError, match="'value_rat'"):
        check_model_options("worker", {"value_rat": 1.0})
    with pytest.raises(ModelOptionError, match=r"'lie_factor'.*\[1, "):
        check_model_options("liar", {"lie_factor": 0.5})
    with pytest.raises(ModelOptionError, match="unknown model"):
        check_model_options("wizard", {})


def test_a_worker_claims_its_value_rate_and_its_bid_follows_the_scientists_rule() -> None:
    opts = {"value_rate": 1e6, "claim_cpu_s": 0.1, "startup_cpu_s": 0.0, "startup_s": 0.0,
            "initial_bid": 3.0, "margin": 0.8}
    w = _world(AgentModel("w", "worker", 1, opts))
    w.advance_to(2.0)
    judged = w.drain()
    assert int(judged.claims[0]) == 20  # 2 CPU-s in claims of 0.1
    assert int(judged.units[0]) == 2_000_000
    bidder = ValueBidder(3.0, 0.8, 1)
    bidder.bounty_per_unit = 5e-6
    bidder.judged(True, 2_000_000, 2.0)
    price, slots = w.pop.bids(np.array([100.0]), 1.0, 5e-6)
    assert price[0] == pytest.approx(bidder.price(100.0))
    assert int(slots[0]) == 1
    # Never more than the wallet can prepay for its slots over one tick.
    assert w.pop.bids(np.array([1.5]), 1.0, 5e-6)[0][0] == pytest.approx(bidder.price(1.5))


def test_liars_above_the_ceiling_are_always_caught_below_it_by_the_recheck_rate() -> None:
    base = {"value_rate": 1e6, "claim_cpu_s": 0.01, "startup_cpu_s": 0.0}
    blatant = AgentModel("blatant", "liar", 1, {**base, "lie_factor": 3.0})  # ceiling 2
    subtle = AgentModel("subtle", "liar", 1, {**base, "lie_factor": 1.5})
    honest = AgentModel("honest", "worker", 1, base)
    w = _world(blatant, subtle, honest, cpus=3.0, p=0.1, seed=3)
    w.advance_to(10.0)  # 1000 claims each
    j = w.drain()
    assert j.frauds[0] == j.claims[0] == 1000 and j.units[0] == 0
    assert 60 <= j.frauds[1] <= 140  # Binomial(1000, 0.1)
    assert j.units[1] == pytest.approx(1.5 * 1e4 * (1000 - j.frauds[1]), rel=1e-9)
    assert j.frauds[2] == 0 and j.units[2] == 10_000_000


def test_cpu_is_shared_fairly_with_foreign_load_and_quotas_hold() -> None:
    a = AgentModel("a", "parasite", 2, {"startup_cpu_s": 0.0})
    b = AgentModel("b", "parasite", 2, {"startup_cpu_s": 0.0})
    w = _world(a, b)
    w.foreign_cores = 0.5
    w.advance_to(1.0)
    assert w.pop.cpu_s == pytest.approx([0.75, 0.75])
    assert w.busy_cores == pytest.approx(2.0)
    w.quota[:] = [0.25, np.inf]
    w.advance_to(2.0)
    assert np.diff(np.r_[[0.75, 0.75], w.pop.cpu_s].reshape(2, 2), axis=0)[0] == pytest.approx(
        [0.25, 1.25])
    w.paused[1] = True
    w.advance_to(3.0)
    assert w.pop.cpu_s[1] == pytest.approx(2.0)


def test_bursty_demand_is_on_for_its_duty_cycle() -> None:
    m = AgentModel("b", "bursty", 1, {"burst_period_s": 4.0, "burst_duty": 0.25})
    w = _world(m, cpus=4.0)
    total = sum(float(w.pop.demand(t, t + 1.0)[0]) for t in range(40))
    assert total == pytest.approx(10.0)


def test_a_slow_starter_proves_nothing_before_its_first_proof_cpu() -> None:
    m = AgentModel("s", "slow_start", 1, {"first_proof_cpu_s": 3.0, "startup_cpu_s": 0.0,
                                          "claim_cpu_s": 0.5})
    w = _world(m)
    w.advance_to(2.9)
    assert w.drain().claims[0] == 0
    w.advance_to(4.0)
    assert w.drain().claims[0] == 2


def test_a_churner_frees_bytes_per_cpu_second_and_the_miner_per_second_running() -> None:
    c = AgentModel("c", "churner", 1, {"churn_bytes_per_cpu_s": 1000.0, "startup_cpu_s": 0.0})
    m = AgentModel("m", "miner", 2, {"churn_bytes_per_s": 4096.0, "startup_cpu_s": 0.0})
    w = _world(c, m, cpus=1.0)  # c gets 0.5 core, m 0.5
    w.advance_to(2.0)
    assert list(w.pop.bytes_freed) == [1000, 8192]
    w.paused[1] = True
    w.advance_to(3.0)
    assert int(w.pop.bytes_freed[1]) == 8192


def test_the_plant_heats_with_busy_cores() -> None:
    w = _world(AgentModel("p", "parasite", 2, {}))
    idle = w.plant.die_c
    w.advance_to(30.0)
    assert w.plant.die_c > idle + 10
    assert w.energy_j == pytest.approx(30 * 12.0 + 15.0 * float(w.pop.cpu_s[0]))


def test_the_bench_runs_the_loop_and_reports_throughput() -> None:
    from maxwell.sim.bench import bench_once, scaling

    runs = [bench_once(n, 5) for n in (200, 2000)]
    for r in runs:
        assert r["ticks"] == 5 and r["agent_ticks_per_s"] > 0 and r["agent_ticks_per_cpu_s"] > 0
        assert r["alive_at_end"] > 0
    assert "loglog_slope" in scaling(runs)


def test_a_caught_liar_is_fined_claimed_over_q_and_then_audited_on_every_claim() -> None:
    base = {"value_rate": 1e6, "claim_cpu_s": 0.01, "startup_cpu_s": 0.0}
    w = _world(AgentModel("subtle", "liar", 1, {**base, "lie_factor": 1.5}), p=0.05, seed=1)
    w.probation_claims = 1000
    w.advance_to(1.0)  # 100 claims
    first = w.drain()
    assert first.frauds[0] >= 1
    # the first catch is fined claimed / q; the claims after it are on probation
    w.advance_to(2.0)
    second = w.drain()
    assert second.frauds[0] == second.claims[0] == 100 and second.units[0] == 0
    assert second.fine_units[0] == pytest.approx(100 * 1.5 * 1e4)


def test_death_causes_agree_on_the_final_bill_or_on_the_dominant_one() -> None:
    from maxwell.sim.replay import _same_causes

    live = [("miner", "apoptosis: rent", 12.0)]
    assert _same_causes(live, [("miner", "apoptosis: rent", 12.0)], {}, {})
    # tax booked before rent took the last cents: the dominant bill decides
    assert _same_causes(live, [("miner", "apoptosis: tax", 12.0)], {"miner": "rent"},
                        {"miner": "rent"})
    assert not _same_causes(live, [("miner", "apoptosis: tax", 12.0)], {"miner": "rent"},
                            {"miner": "tax"})
    assert not _same_causes(live, [("miner", "exited", 12.0)], {"miner": "rent"},
                            {"miner": "rent"})
    assert not _same_causes(live, [], {}, {})
