"""Package energy (Intel and AMD) and die temperature (Intel) from model-specific registers.

Reads `<dev>/cpu/N/msr` with pread(fd, 8, address), one CPU per physical package
(topology from `<sysfs>/devices/system/cpu/cpuN/topology/physical_package_id`), and
the CPU vendor from `<procfs>/cpuinfo`. A sparse regular file stands in for the
device in tests. Registers (Intel SDM vol. 4; AMD PPR for family 17h+):

- Intel: 0x606 RAPL units (energy status unit in bits 12:8, 1/2^ESU J), 0x611 package
  energy (32-bit, wraps); 0x1A2 TjMax in bits 23:16, 0x1B1 package thermal status
  with the distance to TjMax in bits 22:16 (1 °C resolution).
- AMD: 0xC0010299 units (same layout, ESU 16 → 15.3 µJ), 0xC001029B package energy
  (32-bit, wraps). AMD has no temperature MSR: its die sensors live behind SMN
  (k10temp/zenpower).

Opens only the msr device files, read-only; never writes a register.
"""

from __future__ import annotations

import contextlib
import errno
import os
from pathlib import Path

from maxwell.common import Availability
from maxwell.physics._io import read_int, read_text, sorted_numeric
from maxwell.physics._records import RawCounter, SensorError, unavailable

INTEL_UNIT = 0x606
INTEL_PKG_ENERGY = 0x611
INTEL_TEMP_TARGET = 0x1A2
INTEL_PKG_THERM_STATUS = 0x1B1
AMD_UNIT = 0xC0010299
AMD_PKG_ENERGY = 0xC001029B

MSR_FIX = (
    "load the msr driver (`sudo modprobe msr`; persistent: add `msr` to "
    "/etc/modules-load.d/msr.conf) and run as root (reading MSRs needs CAP_SYS_RAWIO)"
)
_COUNTER_MODULUS = 1 << 32


def cpu_vendor(procfs_root: Path) -> str:
    """'intel', 'amd' or '' (unknown) from <procfs>/cpuinfo."""
    try:
        text = read_text(procfs_root / "cpuinfo")
    except SensorError:
        return ""
    for line in text.splitlines():
        if line.startswith("vendor_id"):
            value = line.split(":", 1)[-1].strip()
            if value == "GenuineIntel":
                return "intel"
            if value in ("AuthenticAMD", "HygonGenuine"):
                return "amd"
            return ""
    return ""


class _MsrDevices:
    """The msr device of one CPU per package, opened lazily and kept open."""

    def __init__(self, roots_dev: Path, sysfs_root: Path) -> None:
        self.dev_cpu = roots_dev / "cpu"
        self.sysfs_root = sysfs_root
        self._paths: list[Path] | None = None
        self._fds: dict[Path, int] = {}

    def paths(self) -> list[Path]:
        if self._paths is None:
            try:
                cpus = [p for p in self.dev_cpu.iterdir() if p.name.isdigit()]
            except OSError:
                cpus = []
            by_package: dict[int, Path] = {}
            for cpu in sorted_numeric(cpus, ""):
                msr = cpu / "msr"
                if not msr.exists():
                    continue
                topo = (
                    self.sysfs_root
                    / "devices/system/cpu"
                    / f"cpu{cpu.name}"
                    / "topology/physical_package_id"
                )
                try:
                    package = read_int(topo)
                except SensorError:
                    package = 0  # no topology: treat the machine as one package
                by_package.setdefault(package, msr)
            self._paths = [by_package[k] for k in sorted(by_package)]
        return self._paths

    def missing_reason(self) -> str:
        if not self.dev_cpu.is_dir():
            return f"no {self.dev_cpu}: {MSR_FIX}"
        return f"no {self.dev_cpu}/N/msr (msr driver not loaded): {MSR_FIX}"

    def read(self, path: Path, address: int) -> int:
        fd = self._fds.get(path)
        try:
            if fd is None:
                fd = os.open(path, os.O_RDONLY | os.O_CLOEXEC)
                self._fds[path] = fd
            data = os.pread(fd, 8, address)
        except OSError as err:
            if err.errno in (errno.EACCES, errno.EPERM):
                raise SensorError(f"{path}: permission denied: {MSR_FIX}") from err
            if err.errno == errno.EIO:
                raise SensorError(
                    f"{path}: MSR {address:#x} not readable"
                    " (EIO: this CPU or its hypervisor does not implement it)"
                ) from err
            raise SensorError(f"{path}: {err.strerror or err!r}") from err
        if len(data) != 8:
            raise SensorError(f"{path}: short read of MSR {address:#x} ({len(data)} bytes)")
        return int.from_bytes(data, "little")

    def close(self) -> None:
        for fd in self._fds.values():
            with contextlib.suppress(OSError):
                os.close(fd)
        self._fds.clear()


def _energy_unit_j(raw: int) -> float:
    esu = (raw >> 8) & 0x1F
    return 1.0 / (1 << esu)


class MsrEnergy:
    """Package energy counters: Intel 0x611 or AMD 0xC001029B, per package."""

    name = "msr"

    def __init__(self, dev_root: Path, sysfs_root: Path, procfs_root: Path) -> None:
        self.vendor = cpu_vendor(procfs_root)
        self._dev = _MsrDevices(dev_root, sysfs_root)
        self._units: dict[Path, float] = {}

    def _registers(self) -> tuple[int, int]:
        if self.vendor == "intel":
            return INTEL_UNIT, INTEL_PKG_ENERGY
        return AMD_UNIT, AMD_PKG_ENERGY

    def available(self) -> Availability:
        try:
            if self.vendor == "":
                return Availability(
                    False, "CPU vendor is neither Intel nor AMD (from cpuinfo): no known energy MSR"
                )
            if not self._dev.paths():
                return Availability(False, self._dev.missing_reason())
            unit_reg, _ = self._registers()
            for path in self._dev.paths():
                raw = self._dev.read(path, unit_reg)
                if raw == 0:
                    return Availability(
                        False, f"{path}: RAPL unit MSR {unit_reg:#x} reads 0 (no RAPL on this CPU)"
                    )
            self.read()
        except Exception as err:  # detection never raises
            return unavailable(err)
        n = len(self._dev.paths())
        return Availability(True, f"{self.vendor} package energy MSR on {n} package(s)")

    def read(self) -> tuple[RawCounter, ...]:
        unit_reg, energy_reg = self._registers()
        out = []
        for path in self._dev.paths():
            unit_j = self._units.get(path)
            if unit_j is None:
                unit_j = _energy_unit_j(self._dev.read(path, unit_reg))
                self._units[path] = unit_j
            value = self._dev.read(path, energy_reg) & 0xFFFFFFFF
            out.append(RawCounter(value, _COUNTER_MODULUS, unit_j))
        return tuple(out)

    def describe(self) -> dict[str, object]:
        return {
            "vendor": self.vendor,
            "devices": [str(p) for p in self._dev.paths()],
            "unit_j": [self._units.get(p) for p in self._dev.paths()],
        }

    def close(self) -> None:
        self._dev.close()


class MsrTemp:
    """Intel package temperature: TjMax (0x1A2) minus the 0x1B1 readout, hottest package."""

    name = "msr"

    def __init__(self, dev_root: Path, sysfs_root: Path, procfs_root: Path) -> None:
        self.vendor = cpu_vendor(procfs_root)
        self._dev = _MsrDevices(dev_root, sysfs_root)
        self._tjmax: dict[Path, int] = {}

    def available(self) -> Availability:
        try:
            if self.vendor == "amd":
                return Availability(
                    False, "AMD has no temperature MSR (k10temp/zenpower read its die sensors)"
                )
            if self.vendor != "intel":
                return Availability(False, "CPU vendor is not Intel (cpuinfo): no temperature MSR")
            if not self._dev.paths():
                return Availability(False, self._dev.missing_reason())
            self.read()
        except Exception as err:  # detection never raises
            return unavailable(err)
        n = len(self._dev.paths())
        return Availability(True, f"Intel package thermal MSR on {n} package(s)")

    def read(self) -> float:
        hottest = float("-inf")
        for path in self._dev.paths():
            tjmax = self._tjmax.get(path)
            if tjmax is None:
                tjmax = (self._dev.read(path, INTEL_TEMP_TARGET) >> 16) & 0xFF
                if tjmax == 0:
                    raise SensorError(f"{path}: TjMax (MSR 0x1a2) reads 0")
                self._tjmax[path] = tjmax
            below = (self._dev.read(path, INTEL_PKG_THERM_STATUS) >> 16) & 0x7F
            hottest = max(hottest, float(tjmax - below))
        if hottest == float("-inf"):
            raise SensorError("no msr device")
        return hottest

    def describe(self) -> dict[str, object]:
        return {
            "vendor": self.vendor,
            "devices": [str(p) for p in self._dev.paths()],
            "tjmax_c": [self._tjmax.get(p) for p in self._dev.paths()],
        }

    def close(self) -> None:
        self._dev.close()
