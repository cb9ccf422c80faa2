"""Fake hardware trees for the physics tests: sysfs, /dev/cpu/N/msr and procfs layouts
built under a temporary directory, the shapes real kernels expose (paths, file names,
units). Sparse regular files stand in for MSR devices (pread at the register address)."""

from __future__ import annotations

from pathlib import Path

from maxwell.physics import Roots


def write(path: Path, text: str | int) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(f"{text}\n")
    return path


def make_roots(tmp: Path) -> Roots:
    roots = Roots(sysfs=tmp / "sys", dev=tmp / "dev", procfs=tmp / "proc")
    for p in (roots.sysfs, roots.dev, roots.procfs):
        p.mkdir(parents=True, exist_ok=True)
    set_cpuinfo(roots, "GenuineIntel")
    set_stat(roots, busy=0, idle=0, n_cpus=2)
    return roots


def set_cpuinfo(roots: Roots, vendor: str) -> None:
    write(
        roots.procfs / "cpuinfo", f"processor\t: 0\nvendor_id\t: {vendor}\nmodel name\t: Fake CPU\n"
    )


def set_stat(roots: Roots, busy: int, idle: int, n_cpus: int = 2, steal: int = 0) -> None:
    """/proc/stat with `busy` jiffies of user time and `idle` idle jiffies in total."""
    lines = [f"cpu  {busy} 0 0 {idle} 0 0 0 {steal} 0 0"]
    lines += [f"cpu{i} 0 0 0 0 0 0 0 0 0 0" for i in range(n_cpus)]
    lines += ["intr 0", "ctxt 0", "btime 0", "processes 1"]
    write(roots.procfs / "stat", "\n".join(lines))


def powercap_zone(roots: Roots, zone: str, name: str, energy_uj: int, max_uj: int) -> Path:
    d = roots.sysfs / "class/powercap" / zone
    write(d / "name", name)
    write(d / "energy_uj", energy_uj)
    write(d / "max_energy_range_uj", max_uj)
    return d


def hwmon_chip(roots: Roots, index: int, name: str, temps: dict[str, float | None]) -> Path:
    """A hwmon chip with temp inputs: label → °C (label None: an unlabelled input)."""
    d = roots.sysfs / "class/hwmon" / f"hwmon{index}"
    write(d / "name", name)
    for i, (label, temp_c) in enumerate(temps.items(), start=1):
        write(d / f"temp{i}_input", round((temp_c or 0.0) * 1000))
        if not label.startswith("_"):
            write(d / f"temp{i}_label", label)
    return d


def thermal_zone(roots: Roots, index: int, zone_type: str, temp_c: float) -> Path:
    d = roots.sysfs / "class/thermal" / f"thermal_zone{index}"
    write(d / "type", zone_type)
    write(d / "temp", round(temp_c * 1000))
    return d


def msr_device(roots: Roots, cpu: int, registers: dict[int, int], package: int | None = 0) -> Path:
    """A sparse regular file standing in for /dev/cpu/N/msr; topology in sysfs."""
    path = roots.dev / "cpu" / str(cpu) / "msr"
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "wb") as f:
        f.truncate(0xC0011000)  # past the highest AMD register we read: holes read as 0
        for address, value in registers.items():
            f.seek(address)
            f.write(value.to_bytes(8, "little"))
    if package is not None:
        write(roots.sysfs / f"devices/system/cpu/cpu{cpu}/topology/physical_package_id", package)
    return path


def set_msr(path: Path, address: int, value: int) -> None:
    with open(path, "r+b") as f:
        f.seek(address)
        f.write(value.to_bytes(8, "little"))


def intel_laptop(tmp: Path) -> Roots:
    """Powercap with package, subzones, psys and the MMIO twin; coretemp; acpitz."""
    roots = make_roots(tmp)
    powercap_zone(roots, "intel-rapl:0", "package-0", 5_000_000, 262_143_328_850)
    powercap_zone(roots, "intel-rapl:0/intel-rapl:0:0", "core", 3_000_000, 262_143_328_850)
    powercap_zone(roots, "intel-rapl:0/intel-rapl:0:1", "uncore", 100_000, 262_143_328_850)
    powercap_zone(roots, "intel-rapl:0:0", "core", 3_000_000, 262_143_328_850)
    powercap_zone(roots, "intel-rapl:1", "psys", 9_000_000, 262_143_328_850)
    powercap_zone(roots, "intel-rapl-mmio:0", "package-0", 5_000_000, 262_143_328_850)
    hwmon_chip(roots, 0, "acpitz", {"_1": 27.8})
    hwmon_chip(
        roots,
        1,
        "coretemp",
        {"Package id 0": 47.0, "Core 0": 45.0, "Core 1": 49.0, "Core 2": 44.0, "Core 3": 46.0},
    )
    thermal_zone(roots, 0, "acpitz", 27.8)
    thermal_zone(roots, 1, "x86_pkg_temp", 47.0)
    return roots


AMD_UNIT = 0xC0010299
AMD_PKG_ENERGY = 0xC001029B
# AMD's default units register: power unit 3, energy status unit 16 (15.3 µJ), time 10.
AMD_UNIT_VALUE = (10 << 16) | (16 << 8) | 3


def amd_desktop(tmp: Path, energy_counts: int = 1000) -> Roots:
    """k10temp with Tctl (+offset) and two Tccd; AMD energy MSRs in a sparse file."""
    roots = make_roots(tmp)
    set_cpuinfo(roots, "AuthenticAMD")
    hwmon_chip(roots, 0, "nvme", {"Composite": 38.9})
    hwmon_chip(roots, 2, "k10temp", {"Tctl": 72.0, "Tccd1": 51.5, "Tccd2": 53.25})
    msr_device(roots, 0, {AMD_UNIT: AMD_UNIT_VALUE, AMD_PKG_ENERGY: energy_counts}, package=0)
    msr_device(roots, 1, {AMD_UNIT: AMD_UNIT_VALUE, AMD_PKG_ENERGY: 7}, package=0)
    return roots
