"""The ladder's metrics of one run, from its tick records (simulated) or its database (live).

Both sources hold the same columns: per agent the cumulative verified work units,
attributed energy and state, per tick the die temperature and the machine's
cumulative energy (idle included), and the apoptosis events. What neither can know
— which agents are useful and what a unit of their work is worth — comes from the
scenario's cast, matched by agent name.

- value: Σ verified units × value_per_unit. A lie that passed verification would
  count as value; in simulation each agent's value is capped at the units it truly
  did (the model knows), live it is not (nothing does).
- value_per_j: value ÷ the machine's energy (idle included).
- false_kills: useful agents killed (or, under `maxwell-pause`, stopped for good).
- parasite_energy_share: the parasites' share of the energy attributed to agents.
- time_above_setpoint_s: seconds with the die more than `ABOVE_TOLERANCE_C` above
  the setpoint (the band a held setpoint keeps).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from maxwell.experiments.scenario import Cast, Scenario

ABOVE_TOLERANCE_C = 1.0


@dataclass(frozen=True)
class RunResult:
    """One run's figures (deterministic for scenario, policy and seed, except
    mechanism_cpu_s, measured)."""

    scenario: str
    policy: str
    seed: int
    duration_s: float
    value: float
    energy_j: float
    value_per_j: float
    false_kills: int
    kills: int
    parasite_energy_share: float
    time_above_setpoint_s: float
    peak_temp_c: float
    mean_price: float
    mechanism_cpu_s: float
    extra: dict[str, Any] = field(default_factory=dict)

    def metrics(self) -> dict[str, Any]:
        """The deterministic figures (what an in-process and a cluster run must share)."""
        return {
            "scenario": self.scenario,
            "policy": self.policy,
            "seed": self.seed,
            "value": self.value,
            "energy_j": self.energy_j,
            "value_per_j": self.value_per_j,
            "false_kills": self.false_kills,
            "kills": self.kills,
            "parasite_energy_share": self.parasite_energy_share,
            "time_above_setpoint_s": self.time_above_setpoint_s,
            "peak_temp_c": None if math.isnan(self.peak_temp_c) else self.peak_temp_c,
            "mean_price": None if math.isnan(self.mean_price) else self.mean_price,
        }


def compute(
    scn: Scenario, cast: Cast, policy: str, seed: int, *, names: Sequence[str],
    work_units: np.ndarray, energy_j: np.ndarray, dead: np.ndarray, killed: np.ndarray,
    t_s: np.ndarray, temp_c: np.ndarray, machine_energy_j: float, price: np.ndarray,
    true_units: np.ndarray | None = None, stopped: np.ndarray | None = None,
    mechanism_cpu_s: float = 0.0, extra: dict[str, Any] | None = None,
) -> RunResult:
    """The metrics from per-agent end-of-run columns and per-tick series."""
    index = {n: i for i, n in enumerate(cast.names)}
    rows = np.array([index[n] for n in names], dtype=np.int64)
    work = np.asarray(work_units, dtype=np.float64)
    if true_units is not None:
        work = np.minimum(work, np.asarray(true_units, dtype=np.float64))
    value = float(np.sum(work * cast.value_per_unit[rows]))
    e = np.asarray(energy_j, dtype=np.float64)
    att = float(e.sum())
    par = float(e[cast.parasite[rows]].sum())
    out = np.asarray(killed, dtype=bool)
    if stopped is not None:
        out = out | np.asarray(stopped, dtype=bool)
    dt = np.diff(np.concatenate(([0.0], t_s))) if len(t_s) else np.zeros(0)
    above = float(np.sum(dt[np.asarray(temp_c) > scn.doc.physics.setpoint_c + ABOVE_TOLERANCE_C]))
    p = np.asarray(price, dtype=np.float64)
    return RunResult(
        scenario=scn.name, policy=policy, seed=seed,
        duration_s=float(t_s[-1]) if len(t_s) else 0.0,
        value=value, energy_j=float(machine_energy_j),
        value_per_j=value / machine_energy_j if machine_energy_j > 0 else 0.0,
        false_kills=int(np.sum(out & cast.useful[rows])),
        kills=int(np.sum(np.asarray(killed, dtype=bool))),
        parasite_energy_share=par / att if att > 0 else 0.0,
        time_above_setpoint_s=above,
        peak_temp_c=float(np.max(temp_c)) if len(temp_c) else math.nan,
        mean_price=float(p.mean()) if p.size else math.nan,
        mechanism_cpu_s=mechanism_cpu_s,
        extra=extra or {},
    )


def metrics_from_db(path: str | Path, scn: Scenario, policy: str | None = None,
                    seed: int = 0, stopped: Sequence[str] = ()) -> RunResult:
    """The metrics of a recorded run (live or simulated), via the report's reading."""
    from maxwell.record import RunReader
    from maxwell.report import load_run

    data = load_run(path)
    s = data.summary
    names = [a.name for a in s.agents]
    killed = np.array([a.death_cause is not None and a.death_cause.startswith("apoptosis")
                       for a in s.agents], dtype=bool)
    with RunReader(s.db) as reader:
        host = reader.host()
    return compute(
        scn, scn.cast(), policy or str(host.get("baseline") or s.policy), seed, names=names,
        work_units=np.array([a.work_units for a in s.agents], dtype=np.float64),
        energy_j=np.array([a.energy_j for a in s.agents], dtype=np.float64),
        dead=np.array([a.state == "dead" for a in s.agents], dtype=bool), killed=killed,
        t_s=data.t_s, temp_c=data.temp_c, machine_energy_j=s.energy_j, price=data.price,
        stopped=np.array([n in stopped for n in names], dtype=bool),
        mechanism_cpu_s=float(host.get("supervisor_cpu_s") or host.get("mechanism_cpu_s") or 0.0),
        extra={"energy_source": s.energy_label, "temp_source": s.temp_label, "db": str(s.db),
               "supervisor_cpu_pct_of_core": host.get("supervisor_cpu_pct_of_core")},
    )
