"""The run database: one SQLite file per run (WAL), written by the supervisor.

Reports, exports, the Prometheus exporter and the dashboard read only this
database, so a run can be analysed while it is live (WAL lets readers proceed
while the writer commits once per tick) and long after it ended. The schema is
documented in schema.sql and versioned by `SCHEMA_VERSION`. Touches only the
database file; stdlib only.
"""

from __future__ import annotations

import json
import os
import sqlite3
import threading
from collections.abc import Iterable, Mapping
from importlib import resources
from pathlib import Path
from typing import Any

from maxwell.record.rows import (
    AgentTickRow,
    EventRow,
    RunRow,
    TickRow,
    TransferRow,
    event_detail,
)

__all__ = [
    "SCHEMA_VERSION",
    "TABLES",
    "AgentTickRow",
    "EventRow",
    "Recorder",
    "RunReader",
    "RunRow",
    "SchemaError",
    "TickRow",
    "TransferRow",
    "event_detail",
    "find_db",
]

SCHEMA_VERSION = 3  # 2: runs.jail_level; 3: ticks.foreign_cpu_s, foreign_energy_j,
# capacity_cores (both additive: older files still read, missing columns as 0)
TABLES = ("runs", "ticks", "agent_ticks", "events", "transfers")


class SchemaError(Exception):
    """The file is not a Maxwell run database of a version this code reads."""


def find_db(path: str | Path) -> Path:
    """Accept a run directory or a run.db path; return the database path."""
    p = Path(path)
    if p.is_dir():
        p = p / "run.db"
    if not p.is_file():
        raise FileNotFoundError(f"no run database at {p} (expected a run directory or run.db)")
    return p


def _schema_sql() -> str:
    return resources.files("maxwell.record").joinpath("schema.sql").read_text()


def _create_atomically(path: Path) -> None:
    """Write the schema into a temporary file and link it into place, so a reader that
    sees `path` (a dashboard following a run that is starting) always sees the tables."""
    tmp = path.with_name(f".{path.name}.{os.getpid()}.{threading.get_ident()}.tmp")
    tmp.unlink(missing_ok=True)
    db = sqlite3.connect(tmp, isolation_level=None)
    try:
        db.executescript(_schema_sql())
    finally:
        db.close()
    try:
        os.link(tmp, path)  # fails if another writer created it meanwhile: keep theirs
    except FileExistsError:
        pass
    finally:
        tmp.unlink(missing_ok=True)


class Recorder:
    """Append-only writer of one run. Everything written for one tick is one transaction."""

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        if not self.path.exists():
            _create_atomically(self.path)
        # isolation_level=None: transactions are explicit (BEGIN/COMMIT per tick).
        self._db = sqlite3.connect(self.path, isolation_level=None, check_same_thread=False)
        self._db.execute("PRAGMA journal_mode=WAL")
        # NORMAL: a power cut may lose the last ticks, never corrupt the file.
        self._db.execute("PRAGMA synchronous=NORMAL")
        self._db.executescript(_schema_sql())
        self.run_id: int | None = None

    def start_run(
        self,
        *,
        started_at: str,
        policy: str,
        duration_s: float,
        tick_s: float,
        config: Mapping[str, Any],
        host: Mapping[str, Any],
        energy_source: str,
        energy_measured: bool,
        temp_source: str,
        temp_measured: bool,
        memtrace_source: str,
        memtrace_exact: bool,
        membrane_backend: str,
        gains: Mapping[str, Any],
        setpoint_c: float,
        landauer_lambda: float,
        jail_level: str | None = None,
    ) -> int:
        cur = self._db.execute(
            "INSERT INTO runs (started_at, ended_at, policy, duration_s, tick_s, config, host,"
            " energy_source, energy_measured, temp_source, temp_measured, memtrace_source,"
            " memtrace_exact, membrane_backend, gains, setpoint_c, landauer_lambda,"
            " schema_version, jail_level)"
            " VALUES (?, NULL, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
            (
                started_at,
                policy,
                duration_s,
                tick_s,
                json.dumps(config, sort_keys=True),
                json.dumps(host, sort_keys=True),
                energy_source,
                int(energy_measured),
                temp_source,
                int(temp_measured),
                memtrace_source,
                int(memtrace_exact),
                membrane_backend,
                json.dumps(gains, sort_keys=True),
                setpoint_c,
                landauer_lambda,
                SCHEMA_VERSION,
                jail_level,
            ),
        )
        self.run_id = int(cur.lastrowid or 0)
        return self.run_id

    def _rid(self) -> int:
        if self.run_id is None:
            raise RuntimeError("start_run() must be called before recording")
        return self.run_id

    def write_tick(
        self,
        tick: TickRow | None,
        agents: Iterable[AgentTickRow] = (),
        events: Iterable[EventRow] = (),
        transfers: Iterable[TransferRow] = (),
    ) -> None:
        """Write everything of one tick atomically (readers never see half a tick)."""
        rid = self._rid()
        db = self._db
        db.execute("BEGIN")
        try:
            if tick is not None:
                db.execute(
                    "INSERT INTO ticks VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                    (rid, *tick),
                )
            db.executemany(
                "INSERT INTO agent_ticks VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                [(rid, *a) for a in agents],
            )
            db.executemany(
                "INSERT INTO events VALUES (?, ?, ?, ?, ?)", [(rid, *e) for e in events]
            )
            db.executemany(
                "INSERT INTO transfers VALUES (?, ?, ?, ?, ?, ?)", [(rid, *t) for t in transfers]
            )
            db.execute("COMMIT")
        except BaseException:
            db.execute("ROLLBACK")
            raise

    def event(self, t_s: float, kind: str, agent: str | None = None, **detail: Any) -> None:
        self.write_tick(None, events=[EventRow(t_s, kind, agent, json.dumps(detail, default=str))])

    def finish(self, ended_at: str, host: Mapping[str, Any] | None = None) -> None:
        """Mark the run ended; `host` replaces the host facts (e.g. with overhead measured)."""
        rid = self._rid()
        if host is not None:
            self._db.execute(
                "UPDATE runs SET ended_at = ?, host = ? WHERE id = ?",
                (ended_at, json.dumps(host, sort_keys=True), rid),
            )
        else:
            self._db.execute("UPDATE runs SET ended_at = ? WHERE id = ?", (ended_at, rid))

    def close(self) -> None:
        """Close the run; a finished run is left as one self-contained file.

        WAL is for readers of a live run. At the end the database goes back to a
        rollback journal, so later read-only readers (reports, the dashboard) need
        no -wal/-shm files beside it and leave none behind. If a reader still holds
        the database, the switch is skipped and the WAL is only checkpointed.
        """
        try:
            try:
                self._db.execute("PRAGMA journal_mode=DELETE")
            except sqlite3.OperationalError:
                self._db.execute("PRAGMA wal_checkpoint(TRUNCATE)")
        finally:
            self._db.close()


class RunReader:
    """Read-only access to a run database, live or finished (safe beside the writer)."""

    def __init__(self, path: str | Path) -> None:
        self.path = find_db(path)
        uri = f"file:{self.path.resolve()}?mode=ro"
        self._db = sqlite3.connect(uri, uri=True, check_same_thread=False)
        try:
            row = self._db.execute(
                "SELECT schema_version FROM runs ORDER BY rowid LIMIT 1"
            ).fetchone()
        except sqlite3.DatabaseError as err:
            self._db.close()
            raise SchemaError(f"{self.path} is not a Maxwell run database: {err}") from err
        if row is None:
            self._db.close()
            raise SchemaError(f"{self.path} holds no run yet")
        if not 1 <= row[0] <= SCHEMA_VERSION:
            self._db.close()
            raise SchemaError(
                f"{self.path} has schema_version {row[0]}; this Maxwell reads 1 to {SCHEMA_VERSION}"
            )
        self.schema_version = int(row[0])
        self._columns = {
            t: {r[1] for r in self._db.execute(f"PRAGMA table_info({t})")} for t in TABLES
        }

    def __enter__(self) -> RunReader:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        self._db.close()

    def run(self) -> RunRow:
        # Columns added after schema_version 1 are nullable: an older database lacks
        # them, and they read as their defaults.
        have = {r[1] for r in self._db.execute("PRAGMA table_info(runs)")}
        fields = [f for f in RunRow._fields if f in have]
        row = self._db.execute(f"SELECT {', '.join(fields)} FROM runs ORDER BY id LIMIT 1")
        return RunRow(**dict(zip(fields, row.fetchone(), strict=True)))

    @property
    def run_id(self) -> int:
        return self.run().id

    def config(self) -> dict[str, Any]:
        return dict(json.loads(self.run().config))

    def host(self) -> dict[str, Any]:
        return dict(json.loads(self.run().host))

    def ticks(self, since_t_s: float | None = None) -> list[TickRow]:
        return self._rows(TickRow, "ticks", since_t_s)

    def agent_ticks(self, since_t_s: float | None = None) -> list[AgentTickRow]:
        return self._rows(AgentTickRow, "agent_ticks", since_t_s)

    def events(self, since_t_s: float | None = None) -> list[EventRow]:
        return self._rows(EventRow, "events", since_t_s)

    def transfers(self, since_t_s: float | None = None) -> list[TransferRow]:
        return self._rows(TransferRow, "transfers", since_t_s)

    def agents(self) -> list[str]:
        rows = self._db.execute(
            "SELECT agent FROM agent_ticks GROUP BY agent ORDER BY MIN(rowid)"
        ).fetchall()
        return [r[0] for r in rows]

    def count(self, table: str) -> int:
        if table not in TABLES:
            raise ValueError(f"unknown table {table!r}; tables: {', '.join(TABLES)}")
        return int(self._db.execute(f"SELECT COUNT(*) FROM {table}").fetchone()[0])

    def _rows(self, cls: Any, table: str, since_t_s: float | None) -> list[Any]:
        have = self._columns.get(table, set())
        cols = ", ".join(f if f in have else "0" for f in cls._fields)
        if since_t_s is None:
            cur = self._db.execute(f"SELECT {cols} FROM {table} ORDER BY rowid")
        else:
            cur = self._db.execute(
                f"SELECT {cols} FROM {table} WHERE t_s > ? ORDER BY rowid", (since_t_s,)
            )
        return [cls(*r) for r in cur.fetchall()]
