"""Each reader on fake trees: the layouts real kernels expose, wraps, permissions, garbage."""

from __future__ import annotations

from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from physics_fakes import (
    AMD_PKG_ENERGY,
    AMD_UNIT,
    AMD_UNIT_VALUE,
    amd_desktop,
    hwmon_chip,
    intel_laptop,
    make_roots,
    msr_device,
    powercap_zone,
    set_cpuinfo,
    set_msr,
    set_stat,
    thermal_zone,
    write,
)

from maxwell.physics import RawCounter, SensorError
from maxwell.physics._counters import EnergyAccumulator
from maxwell.physics._hwmon import HwmonEnergy, HwmonTemp
from maxwell.physics._msr import INTEL_PKG_ENERGY, INTEL_UNIT, MsrEnergy, MsrTemp
from maxwell.physics._powercap import PowercapEnergy
from maxwell.physics._procstat import ProcStat, parse_stat
from maxwell.physics._thermal_zone import ThermalZoneTemp

# --- counters -------------------------------------------------------------------


def test_accumulator_handles_wrap_without_dropping_a_sample() -> None:
    acc = EnergyAccumulator()
    assert acc.update([RawCounter(900, 1000, 1e-6)]) == 0.0
    assert acc.update([RawCounter(100, 1000, 1e-6)]) == pytest.approx(200e-6)  # wrapped
    assert acc.update([RawCounter(400, 1000, 1e-6)]) == pytest.approx(500e-6)
    assert acc.wraps == 1


@settings(max_examples=100, deadline=None)
@given(
    start=st.integers(0, 2**32 - 1),
    increments=st.lists(st.integers(0, 2**32 - 1), min_size=1, max_size=40),
)
def test_accumulator_counts_every_increment_below_one_wrap(
    start: int, increments: list[int]
) -> None:
    """Any sequence of increments smaller than the counter range is counted exactly."""
    acc = EnergyAccumulator()
    value = start
    acc.update([RawCounter(value, 1 << 32, 2.0**-16)])
    for inc in increments:
        value = (value + inc) % (1 << 32)
        total = acc.update([RawCounter(value, 1 << 32, 2.0**-16)])
    assert total == sum(increments) * 2.0**-16


def test_accumulator_sums_domains_each_with_its_own_unit_and_wrap() -> None:
    acc = EnergyAccumulator()
    acc.update([RawCounter(10, 1 << 32, 0.5), RawCounter(2**32 - 2, 1 << 32, 0.25)])
    total = acc.update([RawCounter(14, 1 << 32, 0.5), RawCounter(6, 1 << 32, 0.25)])
    assert total == pytest.approx(4 * 0.5 + 8 * 0.25)


def test_accumulator_keeps_energy_when_domain_set_changes() -> None:
    acc = EnergyAccumulator()
    acc.update([RawCounter(0, 100, 1.0)])
    acc.update([RawCounter(30, 100, 1.0)])
    assert acc.update([RawCounter(5, 100, 1.0), RawCounter(5, 100, 1.0)]) == 30.0
    assert acc.update([RawCounter(6, 100, 1.0), RawCounter(7, 100, 1.0)]) == 33.0


# --- powercap -------------------------------------------------------------------


def test_powercap_counts_only_top_level_package_zones(tmp_path: Path) -> None:
    roots = intel_laptop(tmp_path)
    reader = PowercapEnergy(roots.sysfs)
    ok = reader.available()
    assert ok, ok.reason
    assert [z.name for z in reader.zones()] == ["intel-rapl:0"]  # not psys, subzones, mmio
    assert reader.read() == (RawCounter(5_000_000, 262_143_328_850, 1e-6),)


def test_powercap_two_packages_are_summed(tmp_path: Path) -> None:
    roots = make_roots(tmp_path)
    powercap_zone(roots, "intel-rapl:0", "package-0", 10, 1000)
    powercap_zone(roots, "intel-rapl:1", "package-1", 20, 1000)
    acc = EnergyAccumulator()
    acc.update(PowercapEnergy(roots.sysfs).read())
    powercap_zone(roots, "intel-rapl:0", "package-0", 15, 1000)
    powercap_zone(roots, "intel-rapl:1", "package-1", 10, 1000)  # wrapped: +990
    assert acc.update(PowercapEnergy(roots.sysfs).read()) == pytest.approx(995e-6)


def test_powercap_absent_says_why(tmp_path: Path) -> None:
    ok = PowercapEnergy(make_roots(tmp_path).sysfs).available()
    assert not ok and "powercap" in ok.reason and "modprobe" in ok.reason


@pytest.mark.parametrize("garbage", ["", "abc", "12.5", "-3"])
def test_powercap_garbage_is_unavailable_not_a_crash(tmp_path: Path, garbage: str) -> None:
    roots = make_roots(tmp_path)
    zone = powercap_zone(roots, "intel-rapl:0", "package-0", 0, 1000)
    write(zone / "energy_uj", garbage)
    ok = PowercapEnergy(roots.sysfs).available()
    assert not ok
    assert "energy_uj" in ok.reason


def test_powercap_directory_instead_of_file_is_unavailable(tmp_path: Path) -> None:
    roots = make_roots(tmp_path)
    zone = powercap_zone(roots, "intel-rapl:0", "package-0", 0, 1000)
    (zone / "energy_uj").unlink()
    (zone / "energy_uj").mkdir()
    assert not PowercapEnergy(roots.sysfs).available()


# --- MSR ------------------------------------------------------------------------


def test_amd_msr_energy_in_sparse_file(tmp_path: Path) -> None:
    roots = amd_desktop(tmp_path, energy_counts=2**32 - 100)
    reader = MsrEnergy(roots.dev, roots.sysfs, roots.procfs)
    ok = reader.available()
    assert ok, ok.reason
    (first,) = reader.read()  # cpu0 and cpu1 share package 0: read once
    assert first == RawCounter(2**32 - 100, 1 << 32, 2.0**-16)
    set_msr(roots.dev / "cpu/0/msr", AMD_PKG_ENERGY, 65436)  # wrapped past 2^32
    acc = EnergyAccumulator()
    acc.update([first])
    assert acc.update(reader.read()) == pytest.approx(65536 * 2.0**-16)  # exactly 1 J
    reader.close()


def test_intel_msr_energy_and_temperature(tmp_path: Path) -> None:
    roots = make_roots(tmp_path)
    # ESU 14 → 61 µJ; TjMax 100 °C; package 35 °C below TjMax; upper bits must be masked.
    path = msr_device(
        roots,
        0,
        {
            INTEL_UNIT: (10 << 16) | (14 << 8) | 3,
            INTEL_PKG_ENERGY: (0xABCD << 32) | 16384,
            0x1A2: (100 << 16) | (5 << 24),
            0x1B1: (35 << 16) | (1 << 31),
        },
    )
    energy = MsrEnergy(roots.dev, roots.sysfs, roots.procfs)
    assert energy.available()
    assert energy.read() == (RawCounter(16384, 1 << 32, 2.0**-14),)
    temp = MsrTemp(roots.dev, roots.sysfs, roots.procfs)
    assert temp.available()
    assert temp.read() == 65.0
    set_msr(path, 0x1B1, 20 << 16)
    assert temp.read() == 80.0
    energy.close()
    temp.close()


def test_msr_two_packages_read_one_cpu_each(tmp_path: Path) -> None:
    roots = make_roots(tmp_path)
    set_cpuinfo(roots, "AuthenticAMD")
    for cpu, package, counts in ((0, 0, 10), (1, 0, 99), (2, 1, 20), (3, 1, 99)):
        msr_device(roots, cpu, {AMD_UNIT: AMD_UNIT_VALUE, AMD_PKG_ENERGY: counts}, package)
    reader = MsrEnergy(roots.dev, roots.sysfs, roots.procfs)
    assert [c.value for c in reader.read()] == [10, 20]
    reader.close()


def test_msr_missing_driver_says_modprobe(tmp_path: Path) -> None:
    roots = make_roots(tmp_path)
    (roots.dev / "cpu/0").mkdir(parents=True)
    (roots.dev / "cpu/0/cpuid").write_text("")
    ok = MsrEnergy(roots.dev, roots.sysfs, roots.procfs).available()
    assert not ok and "modprobe msr" in ok.reason


def test_msr_short_file_and_zero_units_are_unavailable(tmp_path: Path) -> None:
    roots = make_roots(tmp_path)
    set_cpuinfo(roots, "AuthenticAMD")
    path = roots.dev / "cpu/0/msr"
    path.parent.mkdir(parents=True)
    path.write_bytes(b"\x01\x02")  # every pread comes back short
    ok = MsrEnergy(roots.dev, roots.sysfs, roots.procfs).available()
    assert not ok and "short read" in ok.reason
    msr_device(roots, 0, {})  # all registers read 0: no RAPL
    ok = MsrEnergy(roots.dev, roots.sysfs, roots.procfs).available()
    assert not ok and "reads 0" in ok.reason


def test_msr_temperature_is_intel_only(tmp_path: Path) -> None:
    roots = amd_desktop(tmp_path)
    ok = MsrTemp(roots.dev, roots.sysfs, roots.procfs).available()
    assert not ok and "k10temp" in ok.reason


def test_unknown_vendor_has_no_msr(tmp_path: Path) -> None:
    roots = amd_desktop(tmp_path)
    set_cpuinfo(roots, "CentaurHauls")
    assert not MsrEnergy(roots.dev, roots.sysfs, roots.procfs).available()


# --- hwmon ----------------------------------------------------------------------


def test_coretemp_prefers_package_sensor(tmp_path: Path) -> None:
    roots = intel_laptop(tmp_path)
    reader = HwmonTemp(roots.sysfs)
    assert reader.available()
    assert reader.chip_name == "coretemp"
    assert reader.read() == 47.0


def test_coretemp_two_sockets_reads_both_packages(tmp_path: Path) -> None:
    roots = make_roots(tmp_path)
    hwmon_chip(roots, 0, "coretemp", {"Package id 0": 51.0, "Core 0": 50.0})
    hwmon_chip(roots, 1, "coretemp", {"Package id 1": 58.0, "Core 0": 57.0})
    reader = HwmonTemp(roots.sysfs)
    assert reader.read() == 58.0
    assert len(reader.describe()["inputs"]) == 2  # type: ignore[arg-type]


def test_coretemp_without_package_uses_hottest_core(tmp_path: Path) -> None:
    roots = make_roots(tmp_path)
    hwmon_chip(roots, 0, "coretemp", {"Core 0": 45.0, "Core 1": 49.5})
    assert HwmonTemp(roots.sysfs).read() == 49.5


def test_k10temp_prefers_tccd_over_tctl(tmp_path: Path) -> None:
    roots = amd_desktop(tmp_path)
    reader = HwmonTemp(roots.sysfs)
    assert reader.available()
    assert reader.chip_name == "k10temp"
    assert reader.read() == 53.25  # hottest Tccd, not Tctl (72, carries an offset)
    assert reader.describe()["rule"] == "hottest Tccd"


def test_k10temp_prefers_tdie_then_falls_back_to_tctl(tmp_path: Path) -> None:
    roots = make_roots(tmp_path)
    hwmon_chip(roots, 0, "k10temp", {"Tctl": 80.0, "Tdie": 60.0, "Tccd1": 58.0})
    assert HwmonTemp(roots.sysfs).read() == 60.0
    roots2 = make_roots(tmp_path / "b")
    hwmon_chip(roots2, 0, "k10temp", {"Tctl": 41.0})
    assert HwmonTemp(roots2.sysfs).read() == 41.0


def test_zenpower_is_read_like_k10temp(tmp_path: Path) -> None:
    roots = make_roots(tmp_path)
    hwmon_chip(roots, 3, "zenpower", {"Tdie": 44.5, "Tctl": 54.5})
    reader = HwmonTemp(roots.sysfs)
    assert reader.chip_name == "zenpower" and reader.read() == 44.5


def test_hwmon_without_cpu_chip_names_what_it_found(tmp_path: Path) -> None:
    roots = make_roots(tmp_path)
    hwmon_chip(roots, 0, "nvme", {"Composite": 40.0})
    ok = HwmonTemp(roots.sysfs).available()
    assert not ok and "nvme" in ok.reason


def test_hwmon_garbage_temperature_is_a_sensor_error(tmp_path: Path) -> None:
    roots = make_roots(tmp_path)
    chip = hwmon_chip(roots, 0, "coretemp", {"Package id 0": 50.0})
    write(chip / "temp1_input", "N/A")
    reader = HwmonTemp(roots.sysfs)
    assert not reader.available()
    with pytest.raises(SensorError):
        reader.read()


def test_hwmon_energy_uses_socket_counters_not_cores(tmp_path: Path) -> None:
    roots = make_roots(tmp_path)
    chip = roots.sysfs / "class/hwmon/hwmon4"
    write(chip / "name", "amd_energy")
    for i, (label, value) in enumerate(
        [("Ecore000", 111), ("Ecore001", 222), ("Esocket0", 5_000_000)], start=1
    ):
        write(chip / f"energy{i}_input", value)
        write(chip / f"energy{i}_label", label)
    reader = HwmonEnergy(roots.sysfs)
    assert reader.available()
    assert reader.read() == (RawCounter(5_000_000, 1 << 64, 1e-6),)


def test_hwmon_energy_skips_per_core_only_chips(tmp_path: Path) -> None:
    roots = make_roots(tmp_path)
    chip = roots.sysfs / "class/hwmon/hwmon0"
    write(chip / "name", "amd_energy")
    write(chip / "energy1_input", 5)
    write(chip / "energy1_label", "Ecore000")
    assert not HwmonEnergy(roots.sysfs).available()


# --- thermal_zone ---------------------------------------------------------------


def test_thermal_zone_prefers_x86_pkg_temp(tmp_path: Path) -> None:
    roots = intel_laptop(tmp_path)
    reader = ThermalZoneTemp(roots.sysfs)
    assert reader.available()
    assert reader.zone_type == "x86_pkg_temp" and reader.read() == 47.0


def test_thermal_zone_only_board(tmp_path: Path) -> None:
    roots = make_roots(tmp_path)
    thermal_zone(roots, 0, "battery", 30.0)
    thermal_zone(roots, 1, "gpu-thermal", 70.0)
    thermal_zone(roots, 2, "cpu-thermal", 55.5)
    thermal_zone(roots, 10, "soc-thermal", 57.0)
    reader = ThermalZoneTemp(roots.sysfs)
    assert reader.available()
    assert reader.read() == 57.0  # the hottest CPU/SoC zone; battery and GPU ignored


def test_thermal_zone_with_no_cpu_zone_lists_types(tmp_path: Path) -> None:
    roots = make_roots(tmp_path)
    thermal_zone(roots, 0, "iwlwifi_1", 40.0)
    ok = ThermalZoneTemp(roots.sysfs).available()
    assert not ok and "iwlwifi_1" in ok.reason


# --- /proc/stat -----------------------------------------------------------------


def test_parse_real_proc_stat() -> None:
    times = parse_stat(Path("/proc/stat").read_text())
    assert times.n_cpus >= 1 and 0 <= times.busy <= times.total


def test_busy_cores_from_deltas(tmp_path: Path) -> None:
    roots = make_roots(tmp_path)
    stat = ProcStat(roots.procfs)
    set_stat(roots, busy=1000, idle=1000, n_cpus=2)
    assert stat.update() == 0.0
    set_stat(roots, busy=1150, idle=1050, n_cpus=2)  # 150 of 200 jiffies busy on 2 CPUs
    assert stat.update() == pytest.approx(1.5)
    set_stat(roots, busy=1150, idle=1050, n_cpus=2)  # no jiffy elapsed: keep the last value
    assert stat.update() == pytest.approx(1.5)
    set_stat(roots, busy=1150, idle=1080, steal=20, n_cpus=2)  # steal is not our work
    assert stat.update() == 0.0


def test_proc_stat_garbage_is_a_sensor_error(tmp_path: Path) -> None:
    roots = make_roots(tmp_path)
    write(roots.procfs / "stat", "cpu  x y z\n")
    with pytest.raises(SensorError):
        ProcStat(roots.procfs).update()
