"""The tick loop's energy books: the "attribute" stage of DESIGN.md's tick.

Each sample's energy since the last one is split across agents by their CPU time;
the idle share is nobody's, and the share of processes outside the run (foreign)
is kept apart and never billed. Pure arithmetic over arrays: no I/O, no clock.
"""

from __future__ import annotations

import numpy as np

from maxwell import physics
from maxwell.physics import PhysicsSample


class EnergyBook:
    """Running totals of a run's energy (Joules) and of the CPU it was split by."""

    def __init__(self, n: int, first: PhysicsSample, idle_power_w: float,
                 foreign_in_energy: bool) -> None:
        self.energy0_j = self._last_j = first.energy_j
        self.idle_power_w, self.foreign_in_energy = idle_power_w, foreign_in_energy
        self.agents_j = np.zeros(n)  # cumulative, per agent
        self.idle_j = self.foreign_j = self.foreign_cpu_s = self.busy_cpu_s = 0.0

    def take(self, sample: PhysicsSample) -> float:
        """Joules since the last sample. Fail soft: a meter that failed this tick holds
        its energy, and the next good read covers the gap."""
        energy_j = max(sample.energy_j - self._last_j, 0.0)
        self._last_j = sample.energy_j
        return energy_j

    def split(self, energy_j: float, cpu_s: np.ndarray, sample: PhysicsSample,
              span_s: float) -> None:
        """Book `energy_j`, sampled over `span_s`, given each agent's CPU over it."""
        idle_j = min(self.idle_power_w * span_s, energy_j)
        busy_s = float(sample.busy_cores) * span_s
        foreign_s = float(getattr(sample, "foreign_cores", 0.0)) * span_s
        share, foreign_j = physics.split_foreign(
            energy_j, idle_j, cpu_s, busy_s, foreign_s, self.foreign_in_energy)
        self.foreign_cpu_s += foreign_s
        self.busy_cpu_s += busy_s
        self.foreign_j += foreign_j
        self.idle_j += energy_j - float(np.sum(share)) - foreign_j
        self.agents_j = self.agents_j + share
