"""The rows of a run database, one NamedTuple per table (fields = columns, in order)."""

from __future__ import annotations

import json
from typing import Any, NamedTuple


class RunRow(NamedTuple):
    id: int
    started_at: str
    ended_at: str | None
    policy: str
    duration_s: float
    tick_s: float
    config: str
    host: str
    energy_source: str
    energy_measured: int
    temp_source: str
    temp_measured: int
    memtrace_source: str
    memtrace_exact: int
    membrane_backend: str
    gains: str
    setpoint_c: float
    landauer_lambda: float
    schema_version: int
    jail_level: str | None = None


class TickRow(NamedTuple):
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
    # schema_version 2: CPU and energy of processes outside the run, and the cores
    # offered for sale (0 in version-1 databases).
    foreign_cpu_s: float = 0.0
    foreign_energy_j: float = 0.0
    capacity_cores: float = 0.0


class AgentTickRow(NamedTuple):
    t_s: float
    agent: str
    state: str
    cpu_s: float
    slots: int
    bid: float
    rent: float
    tax: float
    reward: float
    fine: float
    balance: float
    bytes_freed: int
    work_units: int
    energy_j: float


class EventRow(NamedTuple):
    t_s: float
    kind: str
    agent: str | None
    detail: str


def event_detail(event: EventRow) -> dict[str, Any]:
    """The event's JSON detail as a dict (empty when it is not a JSON object)."""
    try:
        value = json.loads(event.detail)
    except (TypeError, ValueError):
        return {}
    return value if isinstance(value, dict) else {}


class TransferRow(NamedTuple):
    t_s: float
    src: str
    dst: str
    amount: float
    reason: str
