"""Per-agent energy attribution for one tick: dynamic energy split by CPU time.

The tick's energy is idle energy (what the host burns doing nothing, reported
separately) plus dynamic energy (the rest, floored at zero); the dynamic part is
shared out in proportion to CPU seconds, the rule Kepler and Scaphandre use. Equal
CPU time can hide a 2–3× power difference (AVX, memory-bound code), so this is an
estimate even when the total is measured. CPU time of processes that are not agents
(`other_cpu_s`) takes its share and is left unattributed. Pure numpy, no I/O.
"""

from __future__ import annotations

import numpy as np


def attribute(
    energy_j: float, idle_j: float, cpu_s: np.ndarray, other_cpu_s: float = 0.0
) -> np.ndarray:
    """Joules per agent for one tick: max(energy_j − idle_j, 0) split by CPU-time share.

    Zeros when nobody used CPU. Per-agent sum + idle (+ the share of `other_cpu_s`)
    equals `energy_j` to within rounding whenever energy_j ≥ idle_j.
    """
    cpu = np.clip(np.asarray(cpu_s, dtype=np.float64), 0.0, None)
    dynamic_j = max(float(energy_j) - float(idle_j), 0.0)
    total_cpu_s = float(cpu.sum()) + max(float(other_cpu_s), 0.0)
    if total_cpu_s <= 0.0 or dynamic_j == 0.0:
        return np.zeros_like(cpu)
    return dynamic_j * (cpu / total_cpu_s)


def split_foreign(
    energy_j: float, idle_j: float, cpu_s: np.ndarray, busy_cpu_s: float, foreign_cpu_s: float,
    foreign_in_energy: bool = True,
) -> tuple[np.ndarray, float]:
    """(Joules per agent, Joules of foreign load) for one tick.

    `busy_cpu_s` is the machine's busy CPU over the tick (/proc/stat), `foreign_cpu_s`
    the part of it outside the run (neither agents nor supervisor). The dynamic energy
    is shared by CPU time among the agents, the run's own overhead and the foreign
    load; only the agents' shares are theirs. When the energy does not include the
    foreign load (`foreign_in_energy` False: a model driven by the run's CPU alone),
    the foreign share is 0 and the split is over the run's CPU only.
    """
    cpu = np.clip(np.asarray(cpu_s, dtype=np.float64), 0.0, None)
    foreign = max(float(foreign_cpu_s), 0.0) if foreign_in_energy else 0.0
    run_busy = max(float(busy_cpu_s) - max(float(foreign_cpu_s), 0.0), 0.0)
    total = max(run_busy + foreign, float(cpu.sum()) + foreign)
    other = max(total - float(cpu.sum()), 0.0)
    agents = attribute(energy_j, idle_j, cpu, other_cpu_s=other)
    dynamic_j = max(float(energy_j) - float(idle_j), 0.0)
    foreign_j = dynamic_j * foreign / total if total > 0 else 0.0
    return agents, foreign_j
