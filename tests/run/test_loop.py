"""The tick loop in-process: modelled agents, a modelled plant and a virtual clock.

Outcomes are decided by the economy from what the parts report; these tests check
that the loop senses, decides, enforces and records each tick as the protocols say,
in simulated time (no process is started, nothing sleeps).
"""

from __future__ import annotations

import dataclasses
import json
import time

import numpy as np
from run_doubles import ModelAgent
from run_world import config, make_world

from maxwell.run.parts import DEAD, PAUSED, RUNNING


def test_a_hundred_ticks_run_in_well_under_a_second() -> None:
    cfg = config([{"name": "a", "funds": 1e6, "default_bid": 1.0},
                  {"name": "b", "funds": 1e6, "default_bid": 1.0}],
                 run={"duration_s": 100.0})
    w = make_world(cfg, [ModelAgent("a"), ModelAgent("b")])
    t0 = time.perf_counter()
    w.loop.run()
    assert time.perf_counter() - t0 < 1.0
    ticks = [r.tick for r in w.sink.records if r.tick is not None]
    assert len(ticks) == 100 == w.loop.ticks
    # Ticks sit on the grid of the virtual clock, never late.
    assert [t.t_s for t in ticks] == [float(k) for k in range(1, 101)]
    assert max(w.loop.lateness_s) == 0.0


def test_an_agent_bidding_below_the_reserve_is_paused_and_records_say_so() -> None:
    cfg = config([{"name": "payer", "funds": 1000.0, "default_bid": 1.0},
                  {"name": "loser", "funds": 1000.0, "default_bid": 0.1}],
                 market={"slots": 1, "r_min": 0.5}, run={"duration_s": 5.0})
    w = make_world(cfg, [ModelAgent("payer"), ModelAgent("loser")])
    w.loop.run()
    pauses = w.sink.events("pause")
    assert [(k, a) for _, k, a in pauses] == [("pause", "loser")]
    assert ("pause", [1]) in w.membrane.calls
    assert w.membrane.state.tolist() == [RUNNING, PAUSED]
    last = w.sink.records[-1].rows
    assert {r.agent: r.state for r in last} == {"payer": "running", "loser": "paused"}
    # A paused agent uses no CPU after it was paused: its cumulative CPU stops growing.
    loser_cpu = [r.cpu_s for rec in w.sink.records for r in rec.rows if r.agent == "loser"]
    assert loser_cpu[-1] == loser_cpu[1] > 0


def test_under_cfs_nothing_is_enforced_but_the_bills_are_booked() -> None:
    cfg = config([{"name": "payer", "funds": 1000.0, "default_bid": 1.0},
                  {"name": "loser", "funds": 1000.0, "default_bid": 0.1}],
                 market={"slots": 1, "r_min": 0.5}, run={"duration_s": 5.0})
    w = make_world(cfg, [ModelAgent("payer"), ModelAgent("loser")], policy="cfs")
    w.loop.run()
    assert [c for c, _ in w.membrane.calls if c in ("pause", "resume", "set_cpu")] == []
    assert w.sink.events("pause") == []
    rows = [r for rec in w.sink.records for r in rec.rows]
    assert any(r.rent > 0 for r in rows if r.agent == "payer")


def test_bankruptcy_kills_the_agent_and_it_gets_no_more_ticks() -> None:
    cfg = config([{"name": "rich", "funds": 1000.0, "default_bid": 1.0},
                  {"name": "poor", "funds": 2.0, "default_bid": 1.0}],
                 market={"slots": 2, "r_min": 1.0}, run={"duration_s": 10.0})
    w = make_world(cfg, [ModelAgent("rich"), ModelAgent("poor")])
    w.loop.run()
    deaths = w.sink.events("apoptosis")
    assert [a for _, _, a in deaths] == ["poor"]
    died_at = deaths[0][0]
    assert ("kill", [1]) in w.membrane.calls
    assert w.loop.state.tolist() == [RUNNING, DEAD]
    # After its death no tick message goes to it, and it is recorded dead.
    assert all(1 not in to for t, _, to in w.channel.ticks if t > died_at)
    assert [r.state for r in w.sink.records[-2].rows] == ["running", "dead"]
    obits = [json.loads(e.detail) for r in w.sink.records for e in r.events
             if e.kind == "obituary"]
    assert obits and obits[0]["cause"]


def test_an_agent_that_exits_is_recorded_with_its_status() -> None:
    cfg = config([{"name": "crasher", "funds": 10.0, "default_bid": 0.1},
                  {"name": "steady", "funds": 10.0, "default_bid": 0.1}],
                 run={"duration_s": 4.0})
    w = make_world(cfg, [ModelAgent("crasher", exit_at_s=1000.0 + 1.5), ModelAgent("steady")])
    w.loop.run()
    exits = [(a, json.loads(e.detail)) for r in w.sink.records for e in r.events
             if e.kind == "exit" for a in [e.agent]]
    assert exits == [("crasher", {"status": 0})]
    assert w.loop.ticks == 4  # the run goes on for the survivor


def test_the_run_ends_early_when_every_agent_is_dead() -> None:
    cfg = config([{"name": "a", "funds": 10.0, "default_bid": 1.0}], run={"duration_s": 100.0})
    w = make_world(cfg, [ModelAgent("a", exit_at_s=1000.0 + 2.5)])
    w.loop.run()
    assert w.loop.ticks == 3


def test_bids_and_verified_work_reach_the_economy() -> None:
    cfg = config([{"name": "worker", "funds": 100.0, "default_bid": 0.0},
                  {"name": "idle", "funds": 100.0, "default_bid": 0.0}],
                 market={"slots": 1, "r_min": 0.5, "bounty_per_unit": 1e-3},
                 run={"duration_s": 6.0})
    w = make_world(cfg, [ModelAgent("worker", bid=(2.0, 1), work_per_s=1000),
                         ModelAgent("idle", hello_at_s=None)])
    w.loop.run()
    last = {r.agent: r for r in w.sink.records[-2].rows}
    assert last["worker"].bid == 2.0 and last["idle"].bid == 0.0
    assert last["worker"].work_units > 0 and last["idle"].work_units == 0
    rewards = sum(r.reward for rec in w.sink.records for r in rec.rows if r.agent == "worker")
    assert rewards > 0
    assert [a for _, _, a in w.sink.events("hello")] == ["worker"]


def test_finish_records_a_stop_for_every_agent_still_alive() -> None:
    cfg = config([{"name": "a", "funds": 10.0}, {"name": "b", "funds": 10.0}],
                 run={"duration_s": 2.0})
    w = make_world(cfg, [ModelAgent("a", exit_at_s=1000.5), ModelAgent("b")])
    w.loop.run()
    w.loop.finish("completed")
    stops = [(e.agent, json.loads(e.detail)) for e in w.sink.records[-1].events]
    assert stops == [("b", {"reason": "completed"})]


def test_the_membrane_recheck_hook_reports_drift_as_tamper_events() -> None:
    cfg = config([{"name": "a", "funds": 1e3, "default_bid": 1.0},
                  {"name": "b", "funds": 1e3, "default_bid": 0.1}],
                 market={"slots": 1, "r_min": 0.5}, run={"duration_s": 4.0})
    w = make_world(cfg, [ModelAgent("a"), ModelAgent("b")])
    # Something outside the loop thaws the paused agent between ticks 2 and 3.
    w.clock.schedule(1000.0 + 2.5, lambda: w.membrane.state.__setitem__(1, RUNNING))
    w.loop.run()
    tamper = w.sink.events("tamper")
    assert [(round(t), a) for t, _, a in tamper] == [(3, "b")]


def test_same_seed_same_record() -> None:
    def once() -> list[tuple[object, ...]]:
        cfg = config([{"name": "a", "funds": 50.0, "default_bid": 1.0},
                      {"name": "b", "funds": 50.0, "default_bid": 1.0}],
                     market={"slots": 1}, run={"duration_s": 20.0, "seed": 7})
        w = make_world(cfg, [ModelAgent("a"), ModelAgent("b")])
        w.loop.run()
        return [tuple(r) for rec in w.sink.records for r in (*rec.rows, *rec.events)]

    assert once() == once()


def test_no_bid_means_the_standing_bid() -> None:
    cfg = config([{"name": "a", "funds": 50.0, "default_bid": 0.7, "default_slots": 2}],
                 run={"duration_s": 2.0})
    w = make_world(cfg, [ModelAgent("a", hello_at_s=None)])
    w.loop.run()
    assert np.allclose(w.loop.bid_price, [0.7]) and w.loop.bid_slots.tolist() == [2]


def _pause_ticks(w: object) -> dict[str, float]:
    return {str(a): t for t, _, a in w.sink.events("pause")}  # type: ignore[attr-defined]


def test_a_silent_loser_is_not_frozen_before_the_grace_is_over() -> None:
    cfg = config([{"name": "payer", "funds": 1e3, "default_bid": 1.0},
                  {"name": "mute", "funds": 1e3, "default_bid": 0.1}],
                 market={"slots": 1, "r_min": 0.5},
                 run={"duration_s": 8.0, "startup_grace_s": 3.0})
    w = make_world(cfg, [ModelAgent("payer", hello_at_s=None),
                         ModelAgent("mute", hello_at_s=None)])
    w.loop.run()
    assert _pause_ticks(w) == {"mute": 3.0}  # the first tick at or after the grace


def test_a_loser_is_frozen_at_the_first_tick_after_its_hello() -> None:
    cfg = config([{"name": "payer", "funds": 1e3, "default_bid": 1.0},
                  {"name": "late", "funds": 1e3, "default_bid": 0.1}],
                 market={"slots": 1, "r_min": 0.5},
                 run={"duration_s": 8.0, "startup_grace_s": 6.0})
    w = make_world(cfg, [ModelAgent("payer"), ModelAgent("late", hello_at_s=2.5)])
    w.loop.run()
    assert [(round(t, 1), a) for t, _, a in w.sink.events("hello")] == [(0.1, "payer"),
                                                                         (2.5, "late")]
    assert _pause_ticks(w) == {"late": 3.0}


def test_without_grace_a_silent_loser_is_frozen_at_once() -> None:
    cfg = config([{"name": "payer", "funds": 1e3, "default_bid": 1.0},
                  {"name": "mute", "funds": 1e3, "default_bid": 0.1}],
                 market={"slots": 1, "r_min": 0.5},
                 run={"duration_s": 3.0, "startup_grace_s": 0.0})
    w = make_world(cfg, [ModelAgent("payer"), ModelAgent("mute", hello_at_s=None)])
    w.loop.run()
    assert _pause_ticks(w) == {"mute": 1.0}


def test_64_agents_on_2_slots_all_get_to_say_hello() -> None:
    # Each takes a different time to start (up to 9 s); none may be frozen first.
    n = 64
    cfg = config([{"name": f"a{i}", "funds": 100.0, "default_bid": 0.0} for i in range(n)],
                 market={"slots": 2, "r_min": 0.05}, run={"duration_s": 12.0})
    assert cfg.run.startup_grace_s == 5.0  # the default
    cfg = cfg.with_run(startup_grace_s=10.0)
    models = [ModelAgent(f"a{i}", hello_at_s=0.2 + 8.8 * i / (n - 1), bid=(0.2, 1))
              for i in range(n)]
    w = make_world(cfg, models)
    w.loop.run()
    assert w.loop.said_hello.all()
    hello_at = {a: t for t, _, a in w.sink.events("hello")}
    for a, t in _pause_ticks(w).items():
        assert t >= hello_at[a]
    assert int((w.loop.state == PAUSED).sum()) == n - 2


def test_a_slow_enforcement_makes_the_next_tick_late_and_the_grid_resumes_from_it() -> None:
    cfg = config([{"name": "payer", "funds": 1e3, "default_bid": 1.0},
                  {"name": "loser", "funds": 1e3, "default_bid": 0.1}],
                 market={"slots": 1, "r_min": 0.5},
                 run={"duration_s": 8.0, "startup_grace_s": 0.0})
    w = make_world(cfg, [ModelAgent("payer"), ModelAgent("loser")])
    w.membrane.pause_s = 2.5  # the pause at tick 1 takes 2.5 s
    w.loop.run()
    ticks = [r.tick.t_s for r in w.sink.records if r.tick is not None]
    assert ticks[:3] == [1.0, 3.5, 4.5]  # tick 2 began 1.5 s late, then the grid follows it
    assert w.loop.lateness_s[:3] == [0.0, 1.5, 0.0]


def test_equal_bids_record_the_seeded_tie_break_and_one_agent_gets_the_slot() -> None:
    cfg = config([{"name": "a", "funds": 100.0, "default_bid": 1.0},
                  {"name": "b", "funds": 100.0, "default_bid": 1.0}],
                 market={"slots": 1}, run={"duration_s": 3.0})
    w = make_world(cfg, [ModelAgent("a", hello_at_s=None), ModelAgent("b", hello_at_s=None)])
    w.loop.run()
    ties = [json.loads(e.detail) for r in w.sink.records for e in r.events if e.kind == "tie"]
    assert len(ties) == 3  # one per tick
    for tie in ties:
        assert sorted(tie["order"]) == ["a", "b"] and tie["bids"] == [1.0, 1.0]
        assert len(tie["draws"]) == 2 and tie["draws"][0] <= tie["draws"][1]  # lower draw wins
    for rec in w.sink.records:
        if rec.tick is not None:
            assert sum(r.slots for r in rec.rows) == 1


def test_a_stop_request_ends_the_run_between_ticks_like_ctrl_c() -> None:
    import threading

    import pytest

    cfg = config([{"name": "a", "funds": 100.0}], run={"duration_s": 60.0})
    w = make_world(cfg, [ModelAgent("a")])
    stop = threading.Event()
    w.loop.plan = dataclasses.replace(w.loop.plan, stop=stop)
    w.clock.schedule(1000.0 + 2.5, stop.set)
    with pytest.raises(KeyboardInterrupt):
        w.loop.run()
    assert w.loop.ticks == 2


def test_the_grace_lasts_while_agents_keep_saying_hello_but_not_forever() -> None:
    # Hellos every 1.5 s (each within 2 s of the last) keep the 2 s grace open, up to
    # its cap of 4 graces (8 s): then the silent and the too-late are frozen.
    hello_at = [0.01, 1.51, 3.01, 4.51, 6.01, 9.0]
    names = [f"a{i}" for i in range(len(hello_at))]
    cfg = config([{"name": a, "funds": 100.0, "default_bid": 0.0} for a in names]
                 + [{"name": "mute", "funds": 100.0, "default_bid": 0.0}],
                 market={"slots": 1, "r_min": 0.05, "wake_every_s": 100.0},
                 run={"duration_s": 12.0, "startup_grace_s": 2.0})
    models = [ModelAgent(a, hello_at_s=t, bid=(0.2, 1)) for a, t in zip(names, hello_at,
                                                                          strict=True)]
    w = make_world(cfg, [*models, ModelAgent("mute", hello_at_s=None)])
    w.loop.run()
    assert w.loop.said_hello.tolist() == [True] * 5 + [False, False]
    paused = _pause_ticks(w)
    assert paused["mute"] == paused["a5"] == 8.0


def test_an_agent_frozen_before_its_hello_is_woken_and_joins() -> None:
    # Its default bid (0) can never win, so it is thawed every wake_every_s for one
    # interval (economy: "Wakes"): it says hello then and bids for real.
    cfg = config([{"name": "early", "funds": 100.0, "default_bid": 1.0},
                  {"name": "late", "funds": 100.0, "default_bid": 0.0}],
                 market={"slots": 1, "r_min": 0.05, "wake_every_s": 4.0},
                 run={"duration_s": 20.0, "startup_grace_s": 2.0})
    w = make_world(cfg, [ModelAgent("early", bid=(1.0, 1)),
                         ModelAgent("late", hello_at_s=9.0, bid=(5.0, 1))])
    w.loop.run()
    assert w.loop.said_hello.tolist() == [True, True]
    resumed = [a for _, _, a in w.sink.events("resume")]
    assert "late" in resumed


def test_start_up_is_not_billed_as_the_first_tick() -> None:
    # Agents that take 30 s to start (VM boots on a busy machine) must not make the
    # first auction's winner prepay rent for an interval 31 s long.
    cfg = config([{"name": "a", "funds": 1000.0, "default_bid": 1.0},
                  {"name": "b", "funds": 1000.0, "default_bid": 1.0}],
                 market={"slots": 2, "r_min": 1.0, "r_max": 1.0}, run={"duration_s": 3.0})
    slow = make_world(cfg, [ModelAgent("a"), ModelAgent("b")], spawn_s=30.0)
    quick = make_world(cfg, [ModelAgent("a"), ModelAgent("b")])
    slow.loop.run()
    quick.loop.run()

    def rents(w: object) -> list[list[float]]:
        return [[r.rent for r in rec.rows] for rec in w.sink.records if rec.rows]  # type: ignore[attr-defined]

    assert rents(slow) == rents(quick)
    first = rents(slow)[0]
    assert all(0.5 <= x <= 1.5 for x in first), first  # one core-second at price 1
    # The start-up's CPU is still metered (in the first tick's sample): nothing is lost.
    assert slow.loop.ticks == quick.loop.ticks == 3
