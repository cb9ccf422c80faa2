"""The ladder's metrics read from a run database (live or simulated).

Uses the report's reading of a run (`maxwell.report.load_run`): verified work and
attributed energy per agent, the machine's energy (idle included), the ticks'
temperatures, death events. What the database cannot know — which agents are
useful and what a unit of their work is worth — comes from the scenario's cast,
matched by agent name. Verified work is what passed verification: a lie that was
never caught counts as value here (the simulator, which knows the truth, does not
count it).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from maxwell.experiments.scenario import Scenario
from maxwell.experiments.world import ABOVE_TOLERANCE_C


def metrics_from_db(path: str | Path, scn: Scenario) -> dict[str, Any]:
    """value_per_j, false_kills, parasite_energy_share, time_above_setpoint_s (+ context)."""
    from maxwell.record import RunReader
    from maxwell.report import load_run

    data = load_run(path)
    s = data.summary
    cast = scn.cast()
    index = {n: i for i, n in enumerate(cast.names)}
    value = 0.0
    par_e = 0.0
    att_e = 0.0
    false_kills = 0
    kills = 0
    for a in s.agents:
        i = index.get(a.name)
        if i is None:
            continue
        value += a.work_units * float(cast.value_per_unit[i])
        att_e += a.energy_j
        if cast.parasite[i]:
            par_e += a.energy_j
        killed = a.death_cause is not None and a.death_cause.startswith("apoptosis")
        kills += int(killed)
        false_kills += int(killed and bool(cast.useful[i]))
    t = data.t_s
    dt = np.diff(np.concatenate(([0.0], t))) if len(t) else np.zeros(0)
    above = float(np.sum(dt[data.temp_c > s.setpoint_c + ABOVE_TOLERANCE_C]))
    with RunReader(s.db) as reader:
        host = reader.host()
    return {
        "policy": s.policy,
        "value": value,
        "energy_j": s.energy_j,
        "value_per_j": value / s.energy_j if s.energy_j > 0 else 0.0,
        "false_kills": false_kills,
        "kills": kills,
        "parasite_energy_share": par_e / att_e if att_e > 0 else 0.0,
        "time_above_setpoint_s": above,
        "energy_source": s.energy_label,
        "temp_source": s.temp_label,
        "duration_s": s.duration_s,
        "supervisor_cpu_pct_of_core": host.get("supervisor_cpu_pct_of_core"),
    }
