"""`maxwell bench supervisor`: its figures come from the run database; bad input is exit 2."""

from __future__ import annotations

from pathlib import Path

import pytest

from maxwell.record import EventRow, Recorder, TickRow
from maxwell.run.bench import summarize


def _db(path: Path, hellos: dict[str, float], host: dict[str, object]) -> Path:
    rec = Recorder(path)
    rec.start_run(started_at="2026-01-01T00:00:00+00:00", policy="maxwell", duration_s=3.0,
                  tick_s=1.0, config={}, host={}, energy_source="model", energy_measured=False,
                  temp_source="model", temp_measured=False, memtrace_source="rss-sampling",
                  memtrace_exact=False, membrane_backend="signals", gains={}, setpoint_c=70.0,
                  landauer_lambda=1.0)
    events = [EventRow(0.5, "spawn", name, "{}") for name in ("a", "b", "c")]
    events += [EventRow(t, "hello", name, "{}") for name, t in hellos.items()]
    rec.write_tick(None, events=events)
    for k in (1, 2, 3):
        rec.write_tick(TickRow(float(k), 50.0, 10.0, 10.0 * k, 5.0 * k, 0.1, 0.5, 0, 0, 0))
    rec.finish("2026-01-01T00:00:03+00:00", host)
    rec.close()
    return path


def test_the_figures_are_read_from_the_run(tmp_path: Path) -> None:
    host = {"tick_late_p50_ms": 0.5, "tick_late_p99_ms": 0.9, "tick_late_max_ms": 1.0,
            "supervisor_loop_cpu_pct_of_core": 2.5}
    r = summarize(_db(tmp_path / "run.db", {"a": 0.7, "b": 1.9, "c": 1.1}, host), 3)
    assert r["ticks"] == 3 and r["said_hello"] == 3
    assert r["spawn_s"] == 0.5 and r["all_hello_s"] == 1.9 and r["median_hello_s"] == 1.1
    assert (r["tick_late_p99_ms"], r["supervisor_cpu_pct_of_core"]) == (0.9, 2.5)


def test_start_up_is_unknown_until_every_agent_said_hello(tmp_path: Path) -> None:
    r = summarize(_db(tmp_path / "run.db", {"a": 0.7}, {}), 3)
    assert r["said_hello"] == 1 and r["all_hello_s"] is None


@pytest.mark.parametrize("args", [["--agents", "0"], ["--duration", "-1"],
                                  ["--agent", "/nonexistent/agent.py"]])
def test_bad_input_is_one_line_and_exit_2(args: list[str], tmp_path: Path,
                                          capsys: pytest.CaptureFixture[str]) -> None:
    from maxwell.cli import main

    out = tmp_path / "never"
    assert main(["bench", "supervisor", *args, "--out", str(out)]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("maxwell: error:")
    assert not out.exists()
