"""probe() and Sensors on fake trees (injected time) and on this real machine, plus
per-agent attribution."""

from __future__ import annotations

import itertools
import json
import math
import os
import signal
import subprocess
import sys
from pathlib import Path

import numpy as np
import psutil
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from physics_fakes import (
    amd_desktop,
    hwmon_chip,
    intel_laptop,
    make_roots,
    powercap_zone,
    set_stat,
    thermal_zone,
    write,
)

from maxwell.physics import (
    Roots,
    SensorUnavailable,
    attribute,
    doctor_checks,
    plant_params,
    probe,
)

# --- probe on fake machines -----------------------------------------------------


def test_intel_laptop_measures_both(tmp_path: Path) -> None:
    roots = intel_laptop(tmp_path)
    s = probe(roots, "laptop")
    assert (s.energy_source, s.energy_measured) == ("powercap", True)
    assert (s.temp_source, s.temp_measured) == ("hwmon:coretemp", True)
    zone = roots.sysfs / "class/powercap/intel-rapl:0"
    set_stat(roots, busy=0, idle=0)
    first = s.sample(100.0)
    assert first.energy_j == 0.0 and math.isnan(first.power_w) and first.temp_c == 47.0
    write(zone / "energy_uj", 5_000_000 + 12_500_000)  # 12.5 J over 2.5 s
    set_stat(roots, busy=100, idle=100)
    second = s.sample(102.5)
    assert second.energy_j == pytest.approx(12.5)
    assert second.power_w == pytest.approx(5.0)
    assert second.busy_cores == pytest.approx(1.0)
    json.dumps(s.describe())
    s.close()


def test_wrap_between_two_reads_through_sensors(tmp_path: Path) -> None:
    roots = make_roots(tmp_path)
    zone = powercap_zone(roots, "intel-rapl:0", "package-0", 262_143_000_000, 262_143_328_850)
    s = probe(roots, force_energy="powercap", now_s=0.0)
    write(zone / "energy_uj", 671_150)  # wrapped: 328_850 + 671_150 = 1_000_000 µJ
    sample = s.sample(1.0)
    assert sample.energy_j == pytest.approx(1.0)
    assert sample.power_w == pytest.approx(1.0)


def test_amd_desktop_msr_energy_and_k10temp(tmp_path: Path) -> None:
    roots = amd_desktop(tmp_path)
    s = probe(roots)
    assert (s.energy_source, s.temp_source) == ("msr:amd", "hwmon:k10temp")
    assert s.sample(0.0).temp_c == 53.25
    from physics_fakes import AMD_PKG_ENERGY, set_msr

    set_msr(roots.dev / "cpu/0/msr", AMD_PKG_ENERGY, 1000 + 3 * 65536)  # 3 J
    sample = s.sample(2.0)
    assert sample.energy_j == pytest.approx(3.0) and sample.power_w == pytest.approx(1.5)
    s.close()


def test_thermal_zone_only_board_with_modelled_energy(tmp_path: Path) -> None:
    roots = make_roots(tmp_path)
    thermal_zone(roots, 0, "cpu-thermal", 61.2)
    s = probe(roots, "laptop")
    assert (s.energy_source, s.energy_measured) == ("model", False)
    assert (s.temp_source, s.temp_measured) == ("thermal_zone:cpu-thermal", True)
    assert s.sample(0.0).temp_c == 61.2


def test_model_energy_is_power_times_time_from_proc_stat(tmp_path: Path) -> None:
    roots = make_roots(tmp_path)
    p = plant_params("desktop")
    set_stat(roots, busy=0, idle=0)
    s = probe(roots, now_s=10.0)
    assert not s.energy_measured and not s.temp_measured
    set_stat(roots, busy=100, idle=100)  # one of two cores busy
    sample = s.sample(12.0)
    assert sample.busy_cores == pytest.approx(1.0)
    assert sample.power_w == pytest.approx(p.idle_power_w + p.core_power_w)
    assert sample.energy_j == pytest.approx(2.0 * (p.idle_power_w + p.core_power_w))
    assert sample.temp_c == pytest.approx(s.plant.die_c)


def test_pausing_the_load_cools_the_modelled_die(tmp_path: Path) -> None:
    """Busy jiffies drive the plant: 30 s of two busy cores heat it, 30 idle s cool it."""
    roots = make_roots(tmp_path)
    s = probe(roots, now_s=0.0)
    idle_c = s.sample(0.0).temp_c
    busy = idle = 0
    temps = []
    for t in range(1, 61):
        if t <= 30:
            busy += 200  # both CPUs busy for the whole second (USER_HZ 100)
        else:
            idle += 200
        set_stat(roots, busy=busy, idle=idle)
        temps.append(s.sample(float(t)).temp_c)
    assert temps[29] > idle_c + 20.0
    assert temps[-1] < temps[29] - 15.0
    assert all(b < a for a, b in itertools.pairwise(temps[30:]))


def test_temperature_failure_is_nan_for_that_tick_only(tmp_path: Path) -> None:
    roots = make_roots(tmp_path)
    chip = hwmon_chip(roots, 0, "coretemp", {"Package id 0": 50.0})
    s = probe(roots)
    assert s.sample(0.0).temp_c == 50.0
    write(chip / "temp1_input", "garbage")
    assert math.isnan(s.sample(1.0).temp_c)
    write(chip / "temp1_input", 55000)
    assert s.sample(2.0).temp_c == 55.0
    write(chip / "temp1_input", 900_000)  # 900 °C: a fault, not physics
    assert math.isnan(s.sample(3.0).temp_c)


def test_energy_failure_loses_no_joule(tmp_path: Path) -> None:
    roots = make_roots(tmp_path)
    zone = powercap_zone(roots, "intel-rapl:0", "package-0", 0, 10**12)
    s = probe(roots, now_s=0.0)
    write(zone / "energy_uj", 1_000_000)
    assert s.sample(1.0).energy_j == pytest.approx(1.0)
    write(zone / "energy_uj", "")  # unreadable this tick
    bad = s.sample(2.0)
    assert math.isnan(bad.power_w) and bad.energy_j == pytest.approx(1.0)
    write(zone / "energy_uj", 5_000_000)
    good = s.sample(3.0)
    assert good.energy_j == pytest.approx(5.0)
    assert good.power_w == pytest.approx(2.0)  # 4 J over the 2 s since the last good read


def test_forced_sources(tmp_path: Path) -> None:
    roots = intel_laptop(tmp_path)
    assert probe(roots, force_temp="thermal_zone").temp_source == "thermal_zone:x86_pkg_temp"
    assert probe(roots, force_energy="model", force_temp="model").energy_source == "model"
    with pytest.raises(SensorUnavailable, match="msr"):
        probe(roots, force_energy="msr")
    with pytest.raises(ValueError, match="powercap, msr, hwmon, model"):
        probe(roots, force_energy="battery")
    with pytest.raises(ValueError, match="hardware class"):
        probe(roots, hw_class="toaster")


def test_roots_from_env(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("MAXWELL_SYSFS_ROOT", str(tmp_path / "s"))
    monkeypatch.delenv("MAXWELL_DEV_ROOT", raising=False)
    roots = Roots.from_env(procfs=tmp_path / "p")
    assert roots == Roots(sysfs=tmp_path / "s", dev=Path("/dev"), procfs=tmp_path / "p")
    assert Roots.from_env(sysfs="/x").sysfs == Path("/x")


def test_doctor_checks_on_fake_and_real(tmp_path: Path) -> None:
    checks = {c.check: c for c in doctor_checks(intel_laptop(tmp_path))}
    assert checks["energy source"].detail == "powercap (measured)"
    assert checks["temperature source"].detail == "hwmon:coretemp (measured)"
    assert not checks["temperature: msr"].ok  # no msr device in this fake
    real = {c.check: c for c in doctor_checks(Roots())}
    assert real["energy source"].detail.startswith("model (modelled")
    assert not real["energy: powercap"].ok and real["energy: powercap"].detail


# --- this real machine ----------------------------------------------------------


def _real_has_measured_sources() -> bool:
    return Path("/sys/class/powercap").is_dir() or Path("/sys/class/hwmon").is_dir()


@pytest.mark.skipif(_real_has_measured_sources(), reason="this host exposes measured sensors")
def test_real_probe_chooses_and_labels_the_model() -> None:
    s = probe(Roots())
    assert (s.energy_source, s.energy_measured) == ("model", False)
    assert (s.temp_source, s.temp_measured) == ("model", False)
    rejected = {r["source"] for r in s.rejected["energy"]}
    assert rejected == {"powercap", "msr", "hwmon"}
    d = json.loads(json.dumps(s.describe()))
    assert d["plant"]["hw_class"] == "desktop" and d["energy"]["measured"] is False
    s.close()


def test_real_busy_cores_follow_real_processes() -> None:
    """Two real spinners make /proc/stat report about two busy cores; the plant heats."""
    s = probe(Roots(), force_energy="model", force_temp="model")
    code = "while True: pass"
    procs = [subprocess.Popen([sys.executable, "-c", code]) for _ in range(2)]
    try:
        ps = [psutil.Process(p.pid) for p in procs]

        # Wait on the spinners' CPU time (a condition, not a duration) before each read.
        def spun(seconds: float) -> None:
            base = [sum(p.cpu_times()[:2]) for p in ps]
            while any(sum(p.cpu_times()[:2]) - b < seconds for p, b in zip(ps, base, strict=True)):
                os.sched_yield()

        spun(0.2)
        s.sample(0.0)
        spun(0.5)
        busy = s.sample(1.0)
        assert busy.busy_cores > 1.2
        assert busy.temp_c > plant_params("desktop").steady_state_c(12.0)[0]
    finally:
        for p in procs:
            p.send_signal(signal.SIGKILL)
            p.wait()
    s.close()


# --- attribution ----------------------------------------------------------------


def test_attribution_splits_dynamic_energy_by_cpu_share() -> None:
    per_agent = attribute(100.0, 40.0, np.array([1.0, 3.0, 0.0]))
    np.testing.assert_allclose(per_agent, [15.0, 45.0, 0.0])
    assert per_agent.sum() + 40.0 == pytest.approx(100.0)


def test_attribution_edge_cases() -> None:
    np.testing.assert_array_equal(attribute(50.0, 10.0, np.zeros(3)), np.zeros(3))
    np.testing.assert_array_equal(attribute(5.0, 10.0, np.ones(2)), np.zeros(2))  # floored
    np.testing.assert_allclose(attribute(30.0, 10.0, np.array([1.0]), other_cpu_s=1.0), [10.0])
    assert attribute(1.0, 0.0, np.array([], dtype=float)).shape == (0,)


@settings(max_examples=100, deadline=None)
@given(
    idle_j=st.floats(0.0, 1e4),
    dynamic_j=st.floats(0.0, 1e4),
    cpu_s=st.lists(st.floats(0.0, 64.0), min_size=1, max_size=50),
)
def test_attribution_conserves_energy(idle_j: float, dynamic_j: float, cpu_s: list[float]) -> None:
    energy_j = idle_j + dynamic_j
    per_agent = attribute(energy_j, idle_j, np.array(cpu_s))
    assert (per_agent >= 0).all()
    if sum(cpu_s) > 0:
        assert per_agent.sum() + idle_j == pytest.approx(energy_j, rel=1e-9, abs=1e-9)
    else:
        assert per_agent.sum() == 0.0


def test_modelled_temperature_with_measured_energy_follows_busy_cores(tmp_path: Path) -> None:
    """A measured 1 kW does not push the desktop model's die past its busy-core range."""
    roots = make_roots(tmp_path)
    zone = powercap_zone(roots, "intel-rapl:0", "package-0", 0, 10**15)
    s = probe(roots, now_s=0.0)
    assert s.energy_measured and not s.temp_measured
    write(zone / "energy_uj", 600 * 10**9)  # 600 kJ in 600 s: 1 kW
    set_stat(roots, busy=0, idle=120_000)  # idle all along
    sample = s.sample(600.0)
    assert sample.power_w == pytest.approx(1000.0)
    p = plant_params("desktop")
    assert sample.temp_c == pytest.approx(p.steady_state_c(p.idle_power_w)[0], abs=0.01)
