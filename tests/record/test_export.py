"""CSV and Parquet exports of a recorded run round-trip every table's rows."""

from __future__ import annotations

import csv
import sqlite3
from pathlib import Path

import pyarrow.parquet as pq
import pytest

from maxwell.record import TABLES, RunReader
from maxwell.record.export import export_run


def _columns(db: Path, table: str) -> list[str]:
    con = sqlite3.connect(db)
    try:
        return [r[1] for r in con.execute(f"PRAGMA table_info({table})")]
    finally:
        con.close()


@pytest.mark.parametrize("policy", ["cfs", "maxwell"])
def test_csv_round_trip(demo_runs: Path, tmp_path: Path, policy: str) -> None:
    files = export_run(demo_runs / policy, tmp_path, "csv")
    assert set(files) == set(TABLES)
    with RunReader(demo_runs / policy) as reader:
        counts = {t: reader.count(t) for t in TABLES}
        ticks = reader.ticks()
    assert counts["ticks"] > 0 and counts["agent_ticks"] > 0 and counts["events"] > 0
    for table, path in files.items():
        with path.open(newline="") as f:
            rows = list(csv.reader(f))
        assert rows[0] == _columns(demo_runs / policy / "run.db", table)
        assert len(rows) - 1 == counts[table], table
    with files["ticks"].open(newline="") as f:
        energy = [float(r["energy_j"]) for r in csv.DictReader(f)]
    assert energy == [t.energy_j for t in ticks]  # repr of a float round-trips exactly


@pytest.mark.parametrize("policy", ["cfs", "maxwell"])
def test_parquet_round_trip(demo_runs: Path, tmp_path: Path, policy: str) -> None:
    files = export_run(demo_runs / policy, tmp_path, "parquet")
    with RunReader(demo_runs / policy) as reader:
        counts = {t: reader.count(t) for t in TABLES}
        agent_rows = reader.agent_ticks()
    for table, path in files.items():
        t = pq.read_table(path)
        assert t.num_rows == counts[table], table
        assert t.column_names == _columns(demo_runs / policy / "run.db", table)
    at = pq.read_table(files["agent_ticks"])
    assert str(at.schema.field("work_units").type) == "int64"
    assert str(at.schema.field("balance").type) == "double"
    assert at.column("work_units").to_pylist() == [r.work_units for r in agent_rows]
    assert at.column("agent").to_pylist() == [r.agent for r in agent_rows]


def test_refuses_bad_input(demo_runs: Path, tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="format"):
        export_run(demo_runs / "cfs", tmp_path, "xlsx")
    with pytest.raises(ValueError, match="unknown tables"):
        export_run(demo_runs / "cfs", tmp_path, "csv", tables=("nope",))
    with pytest.raises(FileNotFoundError):
        export_run(tmp_path / "missing", tmp_path, "csv")
    assert not list(tmp_path.iterdir())
