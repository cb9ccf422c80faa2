"""The run database round-trips every table and refuses what it cannot read."""

from __future__ import annotations

import sqlite3
import threading
from pathlib import Path

import pytest

from maxwell.record import (
    SCHEMA_VERSION,
    AgentTickRow,
    EventRow,
    Recorder,
    RunReader,
    SchemaError,
    TickRow,
    TransferRow,
)


def _start(rec: Recorder) -> int:
    return rec.start_run(
        started_at="2026-01-01T00:00:00+00:00",
        policy="maxwell",
        duration_s=3.0,
        tick_s=1.0,
        config={"run": {"policy": "maxwell"}},
        host={"cores": 2},
        energy_source="model:desktop",
        energy_measured=False,
        temp_source="model:desktop",
        temp_measured=False,
        memtrace_source="rss-sampling",
        memtrace_exact=False,
        membrane_backend="signals",
        gains={"kp": 1.0},
        setpoint_c=65.0,
        landauer_lambda=1e12,
    )


def test_round_trip_and_live_reader(tmp_path: Path) -> None:
    rec = Recorder(tmp_path / "run.db")
    _start(rec)
    reader = RunReader(tmp_path)  # opened while the writer is live (WAL)
    for t in (1.0, 2.0):
        rec.write_tick(
            TickRow(t, 50.0 + t, 30.0, 30.0 * t, 20.0 * t, 0.5, 1.5, 0.1, 0.2, 0.0),
            [AgentTickRow(t, "a", "running", t, 1, 1.0, 0.5, 0.01, 2.0, 0.0, 10.0, 4096, 7, t)],
            [EventRow(t, "pause", "a", "{}")],
            [TransferRow(t, "a", "treasury", 0.5, "rent")],
        )
        assert len(reader.ticks()) == int(t)
    rec.finish("2026-01-01T00:00:03+00:00", host={"cores": 2, "supervisor_cpu_s": 0.1})
    run = reader.run()
    assert run.policy == "maxwell" and run.schema_version == SCHEMA_VERSION
    assert run.ended_at is not None and reader.host()["supervisor_cpu_s"] == 0.1
    assert reader.agents() == ["a"]
    assert [r.t_s for r in reader.ticks(since_t_s=1.0)] == [2.0]
    assert reader.agent_ticks()[-1].work_units == 7
    assert reader.events()[0].kind == "pause"
    assert reader.transfers()[0].reason == "rent"
    assert {t: reader.count(t) for t in ("ticks", "agent_ticks", "events", "transfers")} == {
        "ticks": 2,
        "agent_ticks": 2,
        "events": 2,
        "transfers": 2,
    }
    rec.close()
    reader.close()


def test_failed_tick_writes_nothing(tmp_path: Path) -> None:
    rec = Recorder(tmp_path / "run.db")
    _start(rec)
    bad = (1.0, "a", "running", 1.0, 1, 1.0, 0, 0, 0, 0, 1, 0, 0)  # one column short
    with pytest.raises(sqlite3.Error):
        rec.write_tick(TickRow(1.0, 50, 1, 1, 1, 1, 1, 0, 0, 0), [bad])  # type: ignore[list-item]
    rec.close()
    with RunReader(tmp_path / "run.db") as reader:
        assert reader.ticks() == []


def test_refuses_other_files(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError):
        RunReader(tmp_path)
    (tmp_path / "run.db").write_bytes(b"not a database at all" * 100)
    with pytest.raises(SchemaError):
        RunReader(tmp_path)
    other = tmp_path / "other.db"
    db = sqlite3.connect(other)
    db.execute("CREATE TABLE runs (schema_version INTEGER)")
    db.execute("INSERT INTO runs VALUES (99)")
    db.commit()
    db.close()
    with pytest.raises(SchemaError, match="schema_version 99"):
        RunReader(other)


def test_a_finished_run_is_one_file(tmp_path: Path) -> None:
    rec = Recorder(tmp_path / "run.db")
    _start(rec)
    rec.write_tick(TickRow(1.0, 50, 1, 1, 1, 1, 1, 0, 0, 0))
    rec.close()
    with RunReader(tmp_path) as reader:
        assert len(reader.ticks()) == 1
    assert sorted(p.name for p in tmp_path.iterdir()) == ["run.db"]


def test_a_reader_that_sees_the_file_sees_the_tables(tmp_path: Path) -> None:
    """A dashboard following a run that is starting opens run.db the moment it appears:
    the schema must already be there (the file is linked into place whole)."""
    seen: list[set[str]] = []
    stop = threading.Event()
    paths = [tmp_path / f"r{i}" / "run.db" for i in range(40)]

    def watch() -> None:
        for path in paths:
            while not path.exists():
                # Done writing (stop read first: the file may have come meanwhile).
                if stop.is_set() and not path.exists():
                    return
            db = sqlite3.connect(f"file:{path}?mode=ro", uri=True)
            try:
                seen.append({r[0] for r in db.execute("SELECT name FROM sqlite_master")})
            finally:
                db.close()

    watcher = threading.Thread(target=watch)
    watcher.start()
    try:
        for path in paths:
            Recorder(path).close()
    finally:
        stop.set()
        watcher.join()
    assert len(seen) == len(paths)
    assert all("runs" in names for names in seen), [sorted(n) for n in seen if "runs" not in n]
    assert not [p for p in tmp_path.rglob("*.tmp")]  # no temporary file is left behind
