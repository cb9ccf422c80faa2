"""Export a run database's tables as CSV or Parquet files, one file per table.

Reads the database read-only (safe on a live run: a WAL snapshot per table) and
writes `<table>.csv` or `<table>.parquet` into the output directory. Columns and
their order are the schema's (see schema.sql); JSON columns stay JSON text.
Parquet goes through pyarrow, imported only when asked for.
"""

from __future__ import annotations

import csv
import sqlite3
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from maxwell.record import TABLES, RunReader, find_db

FORMATS = ("csv", "parquet")

# SQLite declared type -> Arrow type name, so an empty table still has typed columns.
_ARROW_TYPES = {"INTEGER": "int64", "REAL": "float64", "TEXT": "string"}


def _columns(db: sqlite3.Connection, table: str) -> list[tuple[str, str]]:
    return [(r[1], str(r[2]).upper()) for r in db.execute(f"PRAGMA table_info({table})")]


def export_run(
    path: str | Path, out_dir: str | Path, fmt: str = "csv", tables: Sequence[str] = TABLES
) -> dict[str, Path]:
    """Write every table of the run at `path` (run dir or run.db); returns table -> file."""
    if fmt not in FORMATS:
        raise ValueError(f"unknown export format {fmt!r}; use one of: {', '.join(FORMATS)}")
    unknown = [t for t in tables if t not in TABLES]
    if unknown:
        raise ValueError(f"unknown tables {unknown}; tables: {', '.join(TABLES)}")
    db_path = find_db(path)
    RunReader(db_path).close()  # refuses files that are not run databases of this schema
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    db = sqlite3.connect(f"file:{db_path.resolve()}?mode=ro", uri=True)
    written: dict[str, Path] = {}
    try:
        for table in tables:
            cols = _columns(db, table)
            names = [c for c, _ in cols]
            rows = db.execute(f"SELECT {', '.join(names)} FROM {table} ORDER BY rowid").fetchall()
            target = out / f"{table}.{fmt}"
            if fmt == "csv":
                _write_csv(target, names, rows)
            else:
                _write_parquet(target, cols, rows)
            written[table] = target
    finally:
        db.close()
    return written


def _write_csv(target: Path, names: list[str], rows: list[tuple[Any, ...]]) -> None:
    with target.open("w", newline="") as f:
        w = csv.writer(f)
        w.writerow(names)
        w.writerows(rows)


def _write_parquet(target: Path, cols: list[tuple[str, str]], rows: list[tuple[Any, ...]]) -> None:
    import pyarrow as pa
    import pyarrow.parquet as pq

    schema = pa.schema(
        [(name, getattr(pa, _ARROW_TYPES.get(decl, "string"))()) for name, decl in cols]
    )
    arrays = {name: [r[i] for r in rows] for i, (name, _) in enumerate(cols)}
    pq.write_table(pa.Table.from_pydict(arrays, schema=schema), target)
