"""Die temperature from the thermal framework (<sysfs>/class/thermal/thermal_zoneN).

Zone types in order of preference: `x86_pkg_temp` (the package sensor on Intel),
then zones whose type names the CPU or SoC (`cpu-thermal`, `soc_thermal`, …, common
on ARM boards), then ACPI's `acpitz` (firmware-defined, often tracks the CPU on
laptops). Other zones (battery, Wi-Fi, PCH, …) do not measure the die and are
ignored. The hottest zone of the best type is used. Reads only under
`<sysfs>/class/thermal`.
"""

from __future__ import annotations

from pathlib import Path

from maxwell.common import Availability
from maxwell.physics._io import read_int, read_text, sorted_numeric
from maxwell.physics._records import SensorError, unavailable

_CPU_WORDS = ("cpu", "soc", "pkg", "core", "package")


def _rank(zone_type: str) -> int | None:
    t = zone_type.lower()
    if t == "x86_pkg_temp":
        return 0
    if any(w in t for w in _CPU_WORDS):
        return 1
    if t == "acpitz":
        return 2
    return None


class ThermalZoneTemp:
    """The hottest thermal zone of the most die-like type."""

    name = "thermal_zone"

    def __init__(self, sysfs_root: Path) -> None:
        self.base = sysfs_root / "class" / "thermal"
        self._chosen: tuple[str, list[Path]] | None = None

    def _choose(self) -> tuple[str, list[Path]]:
        if self._chosen is None:
            try:
                zones = sorted_numeric(
                    [p for p in self.base.iterdir() if p.name.startswith("thermal_zone")],
                    "thermal_zone",
                )
            except OSError:
                zones = []
            best: dict[int, tuple[str, list[Path]]] = {}
            seen: list[str] = []
            for zone in zones:
                try:
                    zone_type = read_text(zone / "type")
                except SensorError:
                    continue
                seen.append(zone_type)
                rank = _rank(zone_type)
                if rank is not None:
                    best.setdefault(rank, (zone_type, []))[1].append(zone / "temp")
            if not best:
                raise SensorError(
                    f"no CPU thermal zone under {self.base}"
                    f" (types found: {', '.join(seen) or 'none'};"
                    " Intel: `modprobe x86_pkg_temp_thermal`)"
                )
            self._chosen = best[min(best)]
        return self._chosen

    def available(self) -> Availability:
        try:
            zone_type, temps = self._choose()
            temp_c = self.read()
        except Exception as err:  # detection never raises
            return unavailable(err)
        return Availability(True, f"{len(temps)} zone(s) of type {zone_type}, now {temp_c:.1f} °C")

    @property
    def zone_type(self) -> str:
        try:
            return self._choose()[0]
        except SensorError:
            return ""

    def read(self) -> float:
        _, temps = self._choose()
        return max(read_int(p) for p in temps) / 1000.0

    def describe(self) -> dict[str, object]:
        try:
            zone_type, temps = self._choose()
        except SensorError as err:
            return {"error": str(err)}
        return {"type": zone_type, "zones": [str(p.parent) for p in temps]}

    def close(self) -> None:
        pass
