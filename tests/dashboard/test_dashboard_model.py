"""The snapshot model agrees with the run database and follows a live writer row for row."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from dashboard_fixture import DEATH_TICK, N_TICKS, tick_rows, write_run

from maxwell.dashboard import RunFeed, build_snapshot
from maxwell.dashboard.model import RunInfo
from maxwell.dashboard.widgets import fmt_bytes, spark
from maxwell.record import EventRow, Recorder, RunReader, SchemaError


@pytest.fixture()
def fixture_db(tmp_path: Path) -> Path:
    return write_run(tmp_path / "run.db")


def test_snapshot_matches_reader_at_every_tick(fixture_db: Path) -> None:
    feed = RunFeed.open(fixture_db.parent)
    reader = RunReader(fixture_db)
    ticks = reader.ticks()
    assert feed.n_ticks == len(ticks) == N_TICKS
    assert feed.agents == tuple(reader.agents())
    for i, tick in enumerate(ticks):
        snap = feed.snapshot(i)
        assert snap is not None
        assert (snap.t_s, snap.temp_c, snap.power_w, snap.price) == (
            tick.t_s, tick.temp_c, tick.power_w, tick.price)
        assert snap.temp_history[-1] == tick.temp_c and len(snap.temp_history) == i + 1
        rows = {a.agent: a for a in reader.agent_ticks() if a.t_s == tick.t_s}
        for a in snap.agents:
            row = rows[a.name]
            assert (a.balance, a.bid, a.slots, a.work_units, a.bytes_freed) == (
                row.balance, row.bid, row.slots, row.work_units, row.bytes_freed)
            assert a.balance_history[-1] == row.balance
        shares = [a.cpu_share for a in snap.agents]
        assert sum(shares) == pytest.approx(1.0)
        events = [e for e in reader.events() if e.t_s <= tick.t_s]
        assert snap.events == tuple(events)
        assert snap.transfers == tuple(t for t in reader.transfers() if t.t_s <= tick.t_s)[-12:]
    reader.close()
    feed.close()


def test_apoptosis_marks_the_agent_dead_from_its_tick(fixture_db: Path) -> None:
    feed = RunFeed.open(fixture_db)
    before = feed.snapshot(DEATH_TICK - 2)
    at = feed.snapshot(DEATH_TICK - 1)
    assert before is not None and at is not None
    miner_before, miner_at = before.agent("miner"), at.agent("miner")
    assert miner_before is not None and miner_at is not None
    assert not before.apoptoses and miner_before.state == "running"
    assert [e.agent for e in at.apoptoses] == ["miner"]
    assert miner_at.state == "dead" and miner_at.apoptosis_t_s == at.t_s
    after = feed.snapshot(DEATH_TICK)
    assert after is not None
    miner_after = after.agent("miner")
    assert miner_after is not None and miner_after.state == "dead"
    assert miner_after.cpu_cores == 0.0 and miner_after.cpu_share == 0.0  # no CPU once dead
    feed.close()


def test_cpu_share_is_the_interval_rate(fixture_db: Path) -> None:
    feed = RunFeed.open(fixture_db)
    snap = feed.snapshot(4)
    assert snap is not None
    cores = {a.name: a.cpu_cores for a in snap.agents}
    # The fixture's agents use 0.9, 0.8 and 0.05 CPU seconds per second while alive.
    assert cores == pytest.approx({"scientist": 0.9, "miner": 0.8, "idler": 0.05})
    feed.close()


def test_follow_reads_only_new_rows_including_late_events(tmp_path: Path) -> None:
    db = tmp_path / "run.db"
    assert RunFeed.try_open(tmp_path) is None  # nothing yet: a follower waits
    rec = Recorder(db)
    assert RunFeed.try_open(tmp_path) is None  # schema but no run row yet
    whole = tmp_path / "whole.db"
    write_run(whole, n_ticks=6)
    from dashboard_fixture import _start

    _start(rec, 1.0, 6)
    feed = RunFeed.try_open(tmp_path)
    assert feed is not None and feed.snapshot() is None and not feed.poll()
    for i in range(1, 7):
        rec.write_tick(*tick_rows(i, 1.0))
        # An event stamped with the tick just written, recorded after it.
        rec.event(float(i), "strike", "idler", reason=f"late {i}")
        assert feed.poll()
        assert not feed.poll()  # nothing new: nothing appended twice
        snap = feed.snapshot()
        assert snap is not None and snap.index == i - 1 and snap.run.live
    rec.finish("2026-01-01T00:00:06+00:00")
    assert feed.poll() and feed.run.ended_at is not None
    reader = RunReader(tmp_path)
    last = feed.snapshot()
    assert last is not None
    assert last.events == tuple(reader.events())
    assert [json.loads(e.detail)["reason"] for e in last.events if e.kind == "strike"] == [
        f"late {i}" for i in range(1, 7)]
    # The incremental feed built the same snapshots as one read of the finished file.
    once = RunFeed.open(whole)
    for i in range(6):
        a, b = feed.snapshot(i), once.snapshot(i)
        assert a is not None and b is not None
        assert a.agents == b.agents and a.temp_history == b.temp_history
    reader.close()
    rec.close()
    feed.close()
    once.close()


def test_build_snapshot_is_pure_and_bounds_checked(fixture_db: Path) -> None:
    reader = RunReader(fixture_db)
    run = RunInfo.from_row(reader.run())
    args = (run, reader.ticks(), reader.agent_ticks(), reader.events(), reader.transfers())
    snap = build_snapshot(*args, 10, history=5)
    assert snap.index == 10 and len(snap.price_history) == 5
    assert all(len(a.balance_history) == 5 for a in snap.agents)
    with pytest.raises(IndexError):
        build_snapshot(*args, N_TICKS)
    reader.close()


def test_not_a_run_database_is_refused(tmp_path: Path) -> None:
    (tmp_path / "run.db").write_bytes(b"not sqlite at all" * 100)
    with pytest.raises(SchemaError):
        RunFeed.try_open(tmp_path)


def test_formatting_helpers() -> None:
    assert [fmt_bytes(n) for n in (0, 512, 4096, 1 << 20, 5 << 30)] == [
        "0 B", "512 B", "4.0 KiB", "1.0 MiB", "5.0 GiB"]
    assert spark([1, 2, 3], 3) == "▁▅█"
    assert spark([2, 2], 5) == "▁▁" and spark([], 4) == ""
    assert spark(range(100), 4) == "▁▃▆█"


def test_event_detail_tolerates_bad_json() -> None:
    from maxwell.dashboard.model import event_detail

    assert event_detail(EventRow(1.0, "x", None, "{not json")) == {}
    assert event_detail(EventRow(1.0, "x", None, "[1]")) == {}
    assert event_detail(EventRow(1.0, "x", None, '{"a": 1}')) == {"a": 1}


def test_follow_keeps_an_event_stamped_before_the_last_tick(tmp_path: Path) -> None:
    from dashboard_fixture import _start

    rec = Recorder(tmp_path / "run.db")
    _start(rec, 1.0, 4)
    rec.write_tick(*tick_rows(1, 1.0))
    rec.write_tick(*tick_rows(2, 1.0))
    rec.event(2.0, "resume", "idler")
    feed = RunFeed.open(tmp_path)
    rec.event(1.5, "strike", "idler", reason="late")  # written after the 2.0 one, stamped before
    rec.write_tick(*tick_rows(3, 1.0))
    assert feed.poll()
    with RunReader(tmp_path) as reader:
        snap = feed.snapshot()
        assert snap is not None and snap.events == tuple(reader.events())
    assert [e.kind for e in snap.events][-2:] == ["resume", "strike"]
    rec.close()
    feed.close()
