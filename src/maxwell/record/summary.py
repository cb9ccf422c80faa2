"""The summary of one run, computed from its database alone.

This is the RUN object of `maxwell run --json` and `maxwell demo --json`, and
what reports and the comparison table start from. Efficiency is verified work
per Joule of total (not attributed) energy, so idle power counts against it.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from maxwell.record import RunReader

DEATH_EVENTS = ("apoptosis", "exit")


def _label(measured: int) -> str:
    return "measured" if measured else "modelled"


def summarize(db: str | Path) -> dict[str, Any]:
    with RunReader(db) as reader:
        run = reader.run()
        ticks = reader.ticks()
        agent_rows = reader.agent_ticks()
        events = reader.events()
        host = reader.host()
    last: dict[str, Any] = {}
    for row in agent_rows:
        last[row.agent] = row
    died: dict[str, dict[str, Any]] = {}
    for ev in events:
        if ev.kind in DEATH_EVENTS and ev.agent is not None and ev.agent not in died:
            died[ev.agent] = {"t_s": ev.t_s, "kind": ev.kind}
    energy_j = ticks[-1].energy_j if ticks else 0.0
    work = sum(int(r.work_units) for r in last.values())
    agents = {
        name: {
            "work_units": int(r.work_units),
            "energy_j": float(r.energy_j),
            "cpu_s": float(r.cpu_s),
            "final_balance": float(r.balance),
            "bytes_freed": int(r.bytes_freed),
            "died_at_s": died[name]["t_s"] if name in died else None,
            "death": died[name]["kind"] if name in died else None,
        }
        for name, r in last.items()
    }
    return {
        "policy": run.policy,
        "duration_s": ticks[-1].t_s if ticks else 0.0,
        "work_units": work,
        "energy_j": float(energy_j),
        "idle_energy_j": float(ticks[-1].idle_energy_j) if ticks else 0.0,
        "energy_source": _label(run.energy_measured),
        "energy_source_name": run.energy_source,
        "temp_source": _label(run.temp_measured),
        "temp_source_name": run.temp_source,
        "memtrace": run.memtrace_source,
        "memtrace_exact": bool(run.memtrace_exact),
        "membrane": run.membrane_backend,
        "work_per_j": work / energy_j if energy_j > 0 else 0.0,
        "peak_temp_c": max((t.temp_c for t in ticks), default=0.0),
        "mean_price": sum(t.price for t in ticks) / len(ticks) if ticks else 0.0,
        "landauer_lambda": run.landauer_lambda,
        "supervisor_cpu_pct_of_core": host.get("supervisor_cpu_pct_of_core"),
        "supervisor_peak_rss_mb": host.get("supervisor_peak_rss_mb"),
        "outcome": host.get("outcome"),
        "db": str(Path(reader.path)),
        "agents": agents,
    }


def gain(cfs: dict[str, Any], maxwell: dict[str, Any]) -> float:
    """Work per Joule under Maxwell over work per Joule under CFS (nan if undefined)."""
    base = float(cfs["work_per_j"])
    return float(maxwell["work_per_j"]) / base if base > 0 else float("nan")
