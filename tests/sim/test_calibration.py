"""Calibration: the simulator, calibrated here, reproduces the live demo of the current config.

The live side is the session's real `maxwell demo` (tests/conftest.py `demo_runs`,
both policies, the built-in config as it is today); the simulated side replays each
run's recorded config and the load besides its agents (this machine is shared: the
agents get what others leave, which the runs record as foreign CPU). The bar is the
issue's: same death order and causes, death times within 2 s, gain in work per
Joule within 15 %.

What the replay also takes from each live run is the machine's speed per
CPU-second while it ran (`calibration.sieve_speed`: the Scientist's verified work
per CPU-second against the calibrated model). It drifts with other tenants' load
in ways their CPU time does not show (that is replayed): on this shared VM the same
stand-alone calibration varied by up to ±25 % a minute apart, and the cfs and
maxwell runs of one demo, 20 s apart, sieved at speeds up to 12 % apart, which the
live gain carried; without this the comparison passed or failed by chance. With it the gain checks
what the simulator models — how the cores are shared (CFS, auction, freezes,
quotas), when agents die, the plant's energy, and where in the number line the
Scientist's CPU takes it. Since a ratio hides errors common to both runs, each
agent's CPU-seconds are checked too (CPU_TOLERANCE: a CFS split modelled 60/40
instead of 50/50 moves the gain only ~13 %), and the speed itself against the
stand-alone calibration within a factor SPEED_FACTOR: wider than that drift and
than the noise of the test's short calibration (a few tenths of a CPU-second per
point, from which a start-up cost of ~0.3 s is subtracted: 1.68 was seen once in a
clean CI run on the quiet VM), narrow enough to catch a sieve model off by a unit
(rates per wall-second of two workers, or per segment instead of per number).
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from maxwell.sim import calibration as cal
from maxwell.sim.replay import replay_demo

pytestmark = pytest.mark.slow

SPEED_FACTOR = 2.5  # live speed ÷ calibrated, either way; 0.80-1.68 seen
CPU_TOLERANCE = 0.10  # each agent's CPU-seconds, sim vs live; within 2 % seen under load


def test_a_calibration_round_trips_and_bad_files_name_themselves(tmp_path: Path) -> None:
    c = cal.Calibration(sieve_numbers_per_cpu_s=1e8, source="test")
    p = cal.save(c, tmp_path / "c.json")
    assert cal.load(p) == c
    (tmp_path / "bad.json").write_text('{"sieve": 1}')
    with pytest.raises(cal.CalibrationError, match=r"bad\.json"):
        cal.load(tmp_path / "bad.json")


def test_the_simulated_demo_reproduces_the_live_demo(demo_runs: Path, tmp_path: Path) -> None:
    measured = cal.measure(repeats=2, segments=24)
    assert 1e7 < measured.sieve_numbers_per_cpu_s < 1e10
    calibrated = cal.from_runs(measured, [demo_runs / "cfs", demo_runs / "maxwell"])
    result = replay_demo(demo_runs, calibrated, tmp_path / "sim")
    (tmp_path / "replay.json").write_text(json.dumps(result, indent=1))
    for policy, r in result["policies"].items():
        assert r["same_order_and_cause"], (policy, r["live_deaths"], r["sim_deaths"])
        assert r["deaths_within_tolerance"], (policy, r["death_time_diff_s"])
        for agent, cpu_s in r["live_cpu_s"].items():  # how the cores were shared
            assert abs(r["sim_cpu_s"][agent] - cpu_s) <= max(CPU_TOLERANCE * cpu_s, 0.5), (
                policy, agent, cpu_s, r["sim_cpu_s"][agent])
        speed = r["live_sieve_speed"]
        assert speed is not None and 1 / SPEED_FACTOR < speed < SPEED_FACTOR, (policy, speed)
    assert result["gain_rel_diff"] <= 0.15, (result["live_gain"], result["sim_gain"])
    assert result["ok"]
