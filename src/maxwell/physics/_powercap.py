"""Package energy from the powercap RAPL interface (/sys/class/powercap).

Reads `energy_uj` and `max_energy_range_uj` of the top-level package zones only
(`intel-rapl:N` whose `name` is `package-N`): subzones (core, uncore, dram) are
parts of a package, not additions, and `psys` overlaps the packages; the MMIO twin
(`intel-rapl-mmio:N`) measures the same package again. AMD uses the same path on
Linux ≥ 5.8. Since Linux 5.10 `energy_uj` is readable by root only (PLATYPUS,
CVE-2020-8694). Reads only under `<sysfs>/class/powercap`.
"""

from __future__ import annotations

import re
from pathlib import Path

from maxwell.common import Availability
from maxwell.physics._io import is_permission_error, read_int, read_text, sorted_numeric
from maxwell.physics._records import RawCounter, SensorError, unavailable

_TOP_LEVEL = re.compile(r"^intel-rapl:\d+$")

PLATYPUS_FIX = (
    "energy_uj is readable by root only since Linux 5.10 (PLATYPUS, CVE-2020-8694): "
    "run as root, or grant read access with "
    "`sudo chmod 0444 /sys/class/powercap/intel-rapl:*/energy_uj` (lost at reboot; "
    "to keep it, add `mode class/powercap/intel-rapl:0/energy_uj = 0444` to "
    "/etc/sysfs.conf (sysfsutils) or a udev rule)"
)


class PowercapEnergy:
    """Top-level RAPL package zones under <sysfs>/class/powercap."""

    name = "powercap"

    def __init__(self, sysfs_root: Path) -> None:
        self.base = sysfs_root / "class" / "powercap"
        self._zones: list[Path] | None = None
        self._modulus: dict[Path, int] = {}

    def zones(self) -> list[Path]:
        """Package zones, in index order (cached: the set does not change while running)."""
        if self._zones is None:
            found: list[Path] = []
            try:
                candidates = [p for p in self.base.iterdir() if _TOP_LEVEL.match(p.name)]
            except OSError:
                candidates = []
            for zone in sorted_numeric(candidates, "intel-rapl:"):
                try:
                    zone_name = read_text(zone / "name")
                except SensorError:
                    continue
                if zone_name.startswith("package"):
                    found.append(zone)
            self._zones = found
        return self._zones

    def available(self) -> Availability:
        try:
            if not self.base.is_dir():
                return Availability(
                    False,
                    f"no {self.base} (RAPL driver not loaded: `modprobe intel_rapl_msr`,"
                    " or no RAPL on this machine)",
                )
            if not self.zones():
                return Availability(
                    False, f"no package zone (intel-rapl:N named package-N) under {self.base}"
                )
            self.read()
        except Exception as err:  # detection never raises
            if isinstance(err, SensorError) and is_permission_error(err):
                return Availability(False, f"{err}; {PLATYPUS_FIX}")
            return unavailable(err)
        return Availability(True, f"{len(self.zones())} package zone(s) under {self.base}")

    def read(self) -> tuple[RawCounter, ...]:
        out = []
        for zone in self.zones():
            value = read_int(zone / "energy_uj")
            # The wrap point: the kernel reports the counter's range in µJ (constant).
            modulus = self._modulus.get(zone, 0)
            if modulus <= 0:
                modulus = read_int(zone / "max_energy_range_uj")
                if modulus > 0:
                    self._modulus[zone] = modulus
            if value < 0 or modulus <= 0:
                raise SensorError(f"{zone}: implausible energy_uj={value} max={modulus}")
            out.append(RawCounter(value, modulus, 1e-6))
        return tuple(out)

    def describe(self) -> dict[str, object]:
        return {"zones": [str(z) for z in self.zones()]}

    def close(self) -> None:
        pass
