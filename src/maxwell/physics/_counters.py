"""Cumulative energy from wrapping hardware counters: the one place wrap is handled.

RAPL and AMD energy counters are 32-bit and wrap (a 240 W two-socket AMD machine
wraps in about nine minutes); powercap reports its wrap point as
`max_energy_range_uj`. Each domain's delta is taken modulo its wrap point and added
to an unbounded Python int, so no sample is ever dropped or turned into a spike. More
than one wrap between two reads cannot be detected by any reader; at a 1 s tick that
needs a counter range smaller than one second of energy, which no known part has.
Pure arithmetic: no I/O.
"""

from __future__ import annotations

from collections.abc import Sequence

from maxwell.physics._records import RawCounter


class EnergyAccumulator:
    """Sums per-domain counter deltas (modulo each wrap point) into Joules."""

    def __init__(self) -> None:
        self._last: tuple[RawCounter, ...] | None = None
        # Counts per domain, kept as ints so precision never degrades with uptime.
        self._counts: list[int] = []
        # Energy of an earlier domain set (kept if a package goes away or appears).
        self._offset_j = 0.0
        self.wraps = 0

    def update(self, readings: Sequence[RawCounter]) -> float:
        """Take a new reading of every domain; return cumulative Joules since the first."""
        new_set = tuple(readings)
        last = self._last
        if last is None or len(new_set) != len(last):
            # First reading, or the domain set changed: a new baseline, counted energy kept.
            self._offset_j = self.joules()
            self._counts = [0] * len(new_set)
            self._last = new_set
            return self._offset_j
        for i, (new, old) in enumerate(zip(new_set, last, strict=True)):
            delta = new.value - old.value
            if delta < 0:
                self.wraps += 1
            self._counts[i] += delta % new.modulus if new.modulus > 0 else max(delta, 0)
        self._last = new_set
        return self.joules()

    def joules(self) -> float:
        if self._last is None:
            return self._offset_j
        return self._offset_j + sum(
            c * r.unit_j for c, r in zip(self._counts, self._last, strict=True)
        )
