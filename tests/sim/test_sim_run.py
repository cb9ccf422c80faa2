"""`maxwell sim`: the live loop over simulated parts, recorded like a live run."""

from __future__ import annotations

import json
import sqlite3
import subprocess
import sys
from pathlib import Path

import pytest

from maxwell.config import default_config, validate
from maxwell.record import RunReader
from maxwell.report import run_json
from maxwell.sim import SimOptions, run_sim

MAXWELL = [sys.executable, "-m", "maxwell.cli"]
TABLES = ("ticks", "agent_ticks", "events", "transfers")

MIX = """
[run]
duration_s = 40
seed = 7
[market]
slots = 2
bounty_per_unit = 2e-6
[[agents]]
name = "useful"
model = "worker"
funds = 20
options = { value_rate = 2e6, initial_bid = 1.0 }
[[agents]]
name = "parasite"
model = "parasite"
funds = 10
options = { bid = 5.0 }
[[agents]]
name = "liar"
model = "liar"
funds = 20
options = { value_rate = 2e6, lie_factor = 3.0, initial_bid = 4.5 }
[[agents]]
name = "bursty"
model = "bursty"
funds = 20
options = { burst_period_s = 6, burst_duty = 0.3, initial_bid = 2.0 }
[[agents]]
name = "slow"
model = "slow_start"
funds = 20
options = { first_proof_cpu_s = 5, initial_bid = 1.5 }
[[agents]]
name = "churner"
model = "churner"
funds = 20
options = { initial_bid = 0.8 }
"""


def _rows(db: Path, table: str) -> list[tuple[object, ...]]:
    with sqlite3.connect(db) as c:
        return c.execute(f"SELECT * FROM {table} ORDER BY rowid").fetchall()


def test_the_same_command_twice_gives_identical_tables(tmp_path: Path) -> None:
    cfg_path = tmp_path / "mix.toml"
    cfg_path.write_text(MIX)
    for k in (1, 2):
        proc = subprocess.run([*MAXWELL, "sim", "--config", str(cfg_path), "--out",
                               str(tmp_path / f"r{k}"), "--json"],
                              capture_output=True, text=True, timeout=120, check=False)
        assert proc.returncode == 0, proc.stderr
        summary = json.loads(proc.stdout)
        assert summary["simulated"] is True and summary["membrane"] == "simulated"
    a, b = tmp_path / "r1" / "run.db", tmp_path / "r2" / "run.db"
    for table in TABLES:
        rows = _rows(a, table)
        assert rows, table
        assert rows == _rows(b, table), table
    kinds = {r[2] for r in _rows(a, "events")}
    assert {"spawn", "hello", "pause", "apoptosis", "obituary", "fraud"} <= kinds


def test_another_seed_gives_another_run(tmp_path: Path) -> None:
    cfg = validate(__import__("tomllib").loads(MIX))
    one = run_sim(cfg, SimOptions(tmp_path / "a"))
    two = run_sim(cfg.with_run(seed=8), SimOptions(tmp_path / "b"))
    assert one is not None and two is not None
    assert _rows(one, "agent_ticks") != _rows(two, "agent_ticks")


def test_a_simulated_run_is_labelled_and_reads_like_a_live_one(tmp_path: Path) -> None:
    db = run_sim(default_config(), SimOptions(tmp_path / "demo", duration_s=20))
    assert db is not None
    with RunReader(db) as r:
        run = r.run()
        host = r.host()
    assert run.membrane_backend == "simulated" and run.memtrace_source == "simulated"
    assert run.energy_measured == 0 and run.temp_measured == 0
    assert host["simulated"] is True and "calibration" in host
    s = run_json(db)
    assert s["duration_s"] == pytest.approx(20.0)
    assert s["agents"]["miner"]["death"] == "apoptosis: rent"
    # report, export and the dashboard's reader work unchanged
    for cmd in (["report", str(tmp_path / "demo"), "--out", str(tmp_path / "rep")],
                ["export", str(tmp_path / "demo"), "--out", str(tmp_path / "csv")]):
        proc = subprocess.run([*MAXWELL, *cmd], capture_output=True, text=True, timeout=120,
                              check=False)
        assert proc.returncode == 0, proc.stderr
    report = next((tmp_path / "rep").glob("*.md")).read_text()
    assert "simulated" in report
    from maxwell.dashboard.model import RunFeed

    feed = RunFeed.open(db)
    try:
        feed.poll()
        snap = feed.snapshot()
        assert feed.n_ticks == 20 and snap is not None
        assert snap.agent("miner") is not None
    finally:
        feed.close()


def test_bad_input_is_one_line_exit_2_and_creates_nothing(tmp_path: Path) -> None:
    cases = {
        "model.toml": ('[[agents]]\nname = "w"\nmodel = "worker"\nfunds = 1\n'
                       "options = { value_rat = 1 }\n", "agents[0].options"),
        "cmd.toml": ('[[agents]]\nname = "p"\ncmd = ["true"]\nfunds = 1\n', "agents[0].cmd"),
        "both.toml": ('[[agents]]\nname = "p"\nmodel = "worker"\nbuiltin = "miner"\nfunds = 1\n',
                      "exactly one"),
    }
    for name, (text, key) in cases.items():
        f = tmp_path / name
        f.write_text(text)
        out = tmp_path / f"out-{name}"
        proc = subprocess.run([*MAXWELL, "sim", "--config", str(f), "--out", str(out)],
                              capture_output=True, text=True, timeout=60, check=False)
        assert proc.returncode == 2, (name, proc.stderr)
        assert key in proc.stderr and len(proc.stderr.strip().splitlines()) == 1
        assert not out.exists()


def test_a_model_agent_is_refused_by_a_live_run(tmp_path: Path) -> None:
    f = tmp_path / "m.toml"
    f.write_text('[[agents]]\nname = "w"\nmodel = "worker"\nfunds = 1\n')
    proc = subprocess.run([*MAXWELL, "run", "--config", str(f), "--out", str(tmp_path / "o"),
                           "--duration", "1"], capture_output=True, text=True, timeout=60,
                          check=False)
    assert proc.returncode == 2
    assert "maxwell sim" in proc.stderr


def test_demo_sim_prints_the_demo_json_shape_in_simulated_seconds(tmp_path: Path) -> None:
    proc = subprocess.run([*MAXWELL, "demo", "--sim", "--duration", "30", "--json", "--out",
                           str(tmp_path / "d"), "--no-report"],
                          capture_output=True, text=True, timeout=120, check=False)
    assert proc.returncode == 0, proc.stderr
    out = json.loads(proc.stdout)
    assert set(out) >= {"gain", "runs", "warnings"} and set(out["runs"]) == {"cfs", "maxwell"}
    assert out["gain"] > 1.0
    for run in out["runs"].values():
        assert run["duration_s"] == pytest.approx(30.0) and run["membrane"] == "simulated"
    # The same --out again: refused in one line, exit 2, the first demo's databases kept.
    before = (tmp_path / "d" / "maxwell" / "run.db").read_bytes()
    again = subprocess.run([*MAXWELL, "demo", "--sim", "--duration", "30", "--json", "--out",
                            str(tmp_path / "d"), "--no-report"],
                           capture_output=True, text=True, timeout=120, check=False)
    assert again.returncode == 2 and "run.db exists" in again.stderr, again.stderr
    assert len(again.stderr.strip().splitlines()) == 1 and again.stdout == ""
    assert (tmp_path / "d" / "maxwell" / "run.db").read_bytes() == before
