"""The dashboard's one data model: the state of a run at one tick, built from the run database.

`RunFeed` is the only reader: it pulls the rows of one run through
`maxwell.record.RunReader` (read-only, safe beside a live writer thanks to WAL),
appending what is new at each `poll()`, and builds frozen `Snapshot`s for any
tick index. Widgets receive snapshots and render them; they never read the
database, the sensors or a clock. Touches only the run database, read-only.
"""

from __future__ import annotations

import sqlite3
from bisect import bisect_right
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TypeVar

from maxwell.record import (
    AgentTickRow,
    EventRow,
    RunReader,
    RunRow,
    SchemaError,
    TickRow,
    TransferRow,
    event_detail,
    find_db,
)

__all__ = [
    "HISTORY_TICKS",
    "AgentSnapshot",
    "RunFeed",
    "RunInfo",
    "Snapshot",
    "build_snapshot",
    "event_detail",
]

# Sparklines and trends show this many ticks (two minutes at the default 1 s tick).
HISTORY_TICKS = 120
# The event log keeps this many events up to the shown tick; the ledger view this many transfers.
EVENT_TAIL = 200
TRANSFER_TAIL = 12

R = TypeVar("R", TickRow, AgentTickRow, EventRow, TransferRow)


@dataclass(frozen=True)
class RunInfo:
    """The facts of a run that do not change per tick (from the `runs` row)."""

    policy: str
    started_at: str
    ended_at: str | None
    duration_s: float
    tick_s: float
    setpoint_c: float
    landauer_lambda: float
    energy_source: str
    energy_measured: bool
    temp_source: str
    temp_measured: bool
    memtrace_source: str
    memtrace_exact: bool
    membrane_backend: str

    @classmethod
    def from_row(cls, row: RunRow) -> RunInfo:
        return cls(
            policy=row.policy,
            started_at=row.started_at,
            ended_at=row.ended_at,
            duration_s=float(row.duration_s),
            tick_s=float(row.tick_s),
            setpoint_c=float(row.setpoint_c),
            landauer_lambda=float(row.landauer_lambda),
            energy_source=row.energy_source,
            energy_measured=bool(row.energy_measured),
            temp_source=row.temp_source,
            temp_measured=bool(row.temp_measured),
            memtrace_source=row.memtrace_source,
            memtrace_exact=bool(row.memtrace_exact),
            membrane_backend=row.membrane_backend,
        )

    @property
    def live(self) -> bool:
        return self.ended_at is None


@dataclass(frozen=True)
class AgentSnapshot:
    """One agent at the shown tick (its last row at or before that tick)."""

    name: str
    state: str  # running | paused | dead (dead also when an apoptosis event is on record)
    t_s: float  # time of the row shown (earlier than the tick when the agent stopped reporting)
    cpu_s: float  # cumulative
    cpu_cores: float  # cores used over the last interval
    cpu_share: float  # fraction of all agents' CPU over the last interval
    slots: int
    bid: float
    rent: float
    tax: float
    reward: float
    fine: float
    balance: float
    balance_history: tuple[float, ...]
    work_units: int  # cumulative, verified
    bytes_freed: int  # cumulative
    energy_j: float  # cumulative, attributed
    apoptosis_t_s: float | None  # when it was killed, if it was
    death_cause: str | None = None  # from the apoptosis or obituary event, if recorded


@dataclass(frozen=True)
class Snapshot:
    """The state of a run at tick `index` (0-based) of `n_ticks` recorded so far."""

    run: RunInfo
    index: int
    n_ticks: int
    t_s: float
    temp_c: float
    power_w: float
    energy_j: float
    idle_energy_j: float
    price: float
    busy_cores: float
    pid_p: float
    pid_i: float
    pid_d: float
    temp_history: tuple[float, ...]
    power_history: tuple[float, ...]
    price_history: tuple[float, ...]
    agents: tuple[AgentSnapshot, ...]
    transfers: tuple[TransferRow, ...]  # the last ones at or before t_s, oldest first
    events: tuple[EventRow, ...]  # the last ones at or before t_s, oldest first
    apoptoses: tuple[EventRow, ...]  # every apoptosis at or before t_s

    @property
    def is_last(self) -> bool:
        return self.index == self.n_ticks - 1

    def agent(self, name: str) -> AgentSnapshot | None:
        for a in self.agents:
            if a.name == name:
                return a
        return None


def _upto(rows: Sequence[R], times: Sequence[float], t_s: float) -> int:
    """How many rows have t_s <= t (rows are in write order, so t_s never decreases)."""
    return bisect_right(times, t_s)


def build_snapshot(
    run: RunInfo,
    ticks: Sequence[TickRow],
    agent_ticks: Sequence[AgentTickRow],
    events: Sequence[EventRow],
    transfers: Sequence[TransferRow],
    index: int,
    *,
    history: int = HISTORY_TICKS,
) -> Snapshot:
    """The snapshot at tick `index` from full row lists (pure; `RunFeed` caches the indexes)."""
    feed = _Rows()
    feed.extend(ticks, agent_ticks, events, transfers)
    return feed.snapshot(run, index, history=history)


class _Rows:
    """The rows read so far, with the per-time indexes a snapshot needs."""

    def __init__(self) -> None:
        self.ticks: list[TickRow] = []
        self.tick_t: list[float] = []
        self.agent_order: list[str] = []
        self.agent_rows: dict[str, list[AgentTickRow]] = {}
        self.agent_t: dict[str, list[float]] = {}
        self.events: list[EventRow] = []
        self.event_t: list[float] = []
        self.transfers: list[TransferRow] = []
        self.transfer_t: list[float] = []
        self.apoptoses: dict[str, float] = {}  # agent -> first apoptosis time
        self.causes: dict[str, str] = {}  # agent -> cause of death (apoptosis or obituary)

    def extend(
        self,
        ticks: Sequence[TickRow],
        agent_ticks: Sequence[AgentTickRow],
        events: Sequence[EventRow],
        transfers: Sequence[TransferRow],
    ) -> None:
        for t in ticks:
            self.ticks.append(t)
            self.tick_t.append(t.t_s)
        for a in agent_ticks:
            if a.agent not in self.agent_rows:
                self.agent_order.append(a.agent)
                self.agent_rows[a.agent] = []
                self.agent_t[a.agent] = []
            self.agent_rows[a.agent].append(a)
            self.agent_t[a.agent].append(a.t_s)
        for e in events:
            self.events.append(e)
            self.event_t.append(e.t_s)
            if e.kind == "apoptosis" and e.agent is not None:
                self.apoptoses.setdefault(e.agent, e.t_s)
            if e.kind in ("apoptosis", "obituary") and e.agent is not None:
                cause = event_detail(e).get("cause")
                if cause:
                    self.causes.setdefault(e.agent, str(cause))
        for x in transfers:
            self.transfers.append(x)
            self.transfer_t.append(x.t_s)

    def snapshot(self, run: RunInfo, index: int, *, history: int = HISTORY_TICKS) -> Snapshot:
        n = len(self.ticks)
        if not 0 <= index < n:
            raise IndexError(f"tick index {index} out of range (0..{n - 1})")
        tick = self.ticks[index]
        t = tick.t_s
        lo = max(0, index + 1 - history)
        window = self.ticks[lo : index + 1]
        agents = self._agents(t, history)
        n_ev = _upto(self.events, self.event_t, t)
        n_tr = _upto(self.transfers, self.transfer_t, t)
        apoptoses = tuple(e for e in self.events[:n_ev] if e.kind == "apoptosis")
        return Snapshot(
            run=run,
            index=index,
            n_ticks=n,
            t_s=t,
            temp_c=tick.temp_c,
            power_w=tick.power_w,
            energy_j=tick.energy_j,
            idle_energy_j=tick.idle_energy_j,
            price=tick.price,
            busy_cores=tick.busy_cores,
            pid_p=tick.pid_p,
            pid_i=tick.pid_i,
            pid_d=tick.pid_d,
            temp_history=tuple(r.temp_c for r in window),
            power_history=tuple(r.power_w for r in window),
            price_history=tuple(r.price for r in window),
            agents=agents,
            transfers=tuple(self.transfers[max(0, n_tr - TRANSFER_TAIL) : n_tr]),
            events=tuple(self.events[max(0, n_ev - EVENT_TAIL) : n_ev]),
            apoptoses=apoptoses,
        )

    def _agents(self, t: float, history: int) -> tuple[AgentSnapshot, ...]:
        # First pass: each agent's row at or before t and its CPU rate over its last interval.
        picked: list[tuple[AgentTickRow, list[AgentTickRow], float]] = []
        for name in self.agent_order:
            rows = self.agent_rows[name]
            k = _upto(rows, self.agent_t[name], t)
            if k == 0:
                continue  # not yet reporting at this tick
            row = rows[k - 1]
            if row.t_s < t:
                cores = 0.0  # no row this tick: it used nothing we know of
            else:
                prev_cpu, prev_t = (rows[k - 2].cpu_s, rows[k - 2].t_s) if k >= 2 else (0.0, 0.0)
                dt = row.t_s - prev_t
                cores = max(0.0, (row.cpu_s - prev_cpu) / dt) if dt > 0 else 0.0
            picked.append((row, rows[max(0, k - history) : k], cores))
        total_cores = sum(c for _, _, c in picked)
        out = []
        for row, hist, cores in picked:
            died = self.apoptoses.get(row.agent)
            died = died if died is not None and died <= t else None
            out.append(
                AgentSnapshot(
                    name=row.agent,
                    state="dead" if died is not None else row.state,
                    t_s=row.t_s,
                    cpu_s=row.cpu_s,
                    cpu_cores=cores,
                    cpu_share=cores / total_cores if total_cores > 0 else 0.0,
                    slots=int(row.slots),
                    bid=row.bid,
                    rent=row.rent,
                    tax=row.tax,
                    reward=row.reward,
                    fine=row.fine,
                    balance=row.balance,
                    balance_history=tuple(r.balance for r in hist),
                    work_units=int(row.work_units),
                    bytes_freed=int(row.bytes_freed),
                    energy_j=row.energy_j,
                    apoptosis_t_s=died,
                    death_cause=self.causes.get(row.agent) if died is not None else None,
                )
            )
        return tuple(out)


def _new_rows(
    have: Sequence[R], fetch: Callable[[float | None], list[R]]
) -> list[R]:
    """Rows written since the last read.

    The reader filters on `t_s > since`, but the writer may add rows stamped with
    the time of rows already read (an event recorded between ticks), so fetch
    everything from the last time seen on and drop the ones already held: rows
    come in write order, in which t_s never decreases.
    """
    if not have:
        return fetch(None)
    last_t = have[-1].t_s
    held = 0
    for r in reversed(have):
        if r.t_s < last_t:
            break
        held += 1
    fresh = fetch(last_t - 1e-9 * max(1.0, abs(last_t)))
    fresh = [r for r in fresh if r.t_s >= last_t]
    return fresh[held:]


class RunFeed:
    """All rows of one run database so far; `poll()` appends what the writer added since."""

    def __init__(self, reader: RunReader) -> None:
        self._reader = reader
        self._rows = _Rows()
        self._agent_rows: list[AgentTickRow] = []  # all agents, in write order
        self.run = RunInfo.from_row(reader.run())
        self.path = reader.path

    @classmethod
    def open(cls, path: str | Path) -> RunFeed:
        """Open a run directory or run.db (raises FileNotFoundError or SchemaError)."""
        feed = cls(RunReader(path))
        feed.poll()
        return feed

    @classmethod
    def try_open(cls, path: str | Path) -> RunFeed | None:
        """Open if the database exists and holds a run yet, else None (for following a run
        that is still starting)."""
        try:
            find_db(path)
            return cls.open(path)
        except (FileNotFoundError, sqlite3.OperationalError):
            return None
        except SchemaError as err:
            if "holds no run yet" in str(err):
                return None
            raise

    def close(self) -> None:
        self._reader.close()

    @property
    def n_ticks(self) -> int:
        return len(self._rows.ticks)

    @property
    def agents(self) -> tuple[str, ...]:
        return tuple(self._rows.agent_order)

    def time_of(self, index: int) -> float:
        return self._rows.tick_t[index]

    def poll(self) -> bool:
        """Read what is new; True when anything was. Read errors (a busy or truncated
        WAL in the middle of a checkpoint) are retried at the next poll."""
        r = self._reader
        rows = self._rows
        try:
            run = RunInfo.from_row(r.run())
            ticks = _new_rows(rows.ticks, r.ticks)
            # agent rows, events and transfers up to the last complete tick are all written
            # in the same transaction as that tick, so reading ticks first never shows a
            # tick without its agents.
            agent_ticks = _new_rows(self._agent_rows, r.agent_ticks)
            events = _new_rows(rows.events, r.events)
            transfers = _new_rows(rows.transfers, r.transfers)
            # A row stamped earlier than one already read (an event timed by another clock)
            # escapes the time filter; the row count catches it, and the rows are then taken
            # by position, as written.
            if len(rows.events) + len(events) < r.count("events"):
                events = r.events()[len(rows.events) :]
            if len(rows.transfers) + len(transfers) < r.count("transfers"):
                transfers = r.transfers()[len(rows.transfers) :]
        except sqlite3.Error:
            return False
        changed = bool(ticks or agent_ticks or events or transfers) or run != self.run
        self.run = run
        rows.extend(ticks, agent_ticks, events, transfers)
        self._agent_rows.extend(agent_ticks)
        return changed

    def snapshot(
        self, index: int | None = None, *, history: int = HISTORY_TICKS
    ) -> Snapshot | None:
        """The snapshot at tick `index` (default the latest); None before the first tick."""
        n = self.n_ticks
        if n == 0:
            return None
        i = n - 1 if index is None else max(0, min(index, n - 1))
        return self._rows.snapshot(self.run, i, history=history)
