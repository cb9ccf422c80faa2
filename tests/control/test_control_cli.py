"""The control commands end to end: `maxwell bench control --json` meets the issue's
criteria; `maxwell calibrate` in simulated time writes, or with --dry-run does not
write, a profile; the real burner rig runs and stops real processes."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

from maxwell.control import Machine, ProfileMismatch, load_profile

MAXWELL = [sys.executable, "-c", "import sys; from maxwell.cli import main; sys.exit(main())"]


def run_cli(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [*MAXWELL, *args], capture_output=True, text=True, timeout=240, env=env, check=False
    )


def test_bench_control_json_meets_the_criteria_for_every_class() -> None:
    proc = run_cli("bench", "control", "--json")
    assert proc.returncode == 0, proc.stderr
    result = json.loads(proc.stdout)  # exactly one JSON object on stdout
    assert set(result["classes"]) == {"laptop", "desktop", "server"}
    for name, c in result["classes"].items():
        for scen in ("load_step", "setpoint_step"):
            mine, ref = c["calibrated"][scen], c["reference"][scen]
            assert mine["overshoot_pct"] <= 10.0, (name, scen)
            assert abs(mine["steady_state_error_c"]) <= 0.01, (name, scen)
            ref_settle = ref["settling_s"] if ref["settling_s"] is not None else float("inf")
            assert mine["settling_s"] is not None and mine["settling_s"] <= ref_settle
        assert abs(c["fit_error"]["gain_pct"]) < 10 and abs(c["fit_error"]["tau_pct"]) < 10
    assert result["ok"] is True


def test_calibrate_simulated_writes_the_profile_where_told(tmp_path: Path) -> None:
    target = tmp_path / "profile.toml"
    proc = run_cli(
        "calibrate", "--simulate", "--hw-class", "laptop", "--duration", "60",
        "--profile", str(target), "--json",
    )
    assert proc.returncode == 0, proc.stderr
    out = json.loads(proc.stdout)
    assert out["written"] == str(target)
    assert out["profile"]["gains"]["kp"] > 0
    # The profile names the model it was measured on, so only that "machine" loads it.
    profile = load_profile(target, Machine("model:laptop", 4, "model", "model"))
    assert profile is not None and profile.gains.kp == out["profile"]["gains"]["kp"]
    with pytest.raises(ProfileMismatch):
        load_profile(target)


def test_calibrate_dry_run_writes_nothing(tmp_path: Path) -> None:
    env = dict(os.environ, XDG_CONFIG_HOME=str(tmp_path / "cfg"), HOME=str(tmp_path))
    proc = run_cli("calibrate", "--simulate", "--duration", "30", "--dry-run", env=env)
    assert proc.returncode == 0, proc.stderr
    assert "[gains]" in proc.stdout and "kp = " in proc.stdout
    assert not any(tmp_path.rglob("*.toml"))


def test_calibrate_rejects_bad_input() -> None:
    proc = run_cli("calibrate", "--simulate", "--duration", "-3")
    assert proc.returncode == 2 and "--duration" in proc.stderr
    proc = run_cli("calibrate", "--cores", "999", "--duration", "5")
    assert proc.returncode == 2 and "--cores" in proc.stderr


def _cpu_ticks(pid: int) -> int:
    fields = Path(f"/proc/{pid}/stat").read_text().rpartition(")")[2].split()
    return int(fields[11]) + int(fields[12])  # utime + stime


def test_burner_rig_runs_only_when_on_and_cleans_up() -> None:
    from maxwell.control.calibrate import BurnerRig
    from maxwell.physics import Roots, probe

    sensors = probe(Roots(), "desktop", force_temp="model", force_energy="model",
                    now_s=time.monotonic())
    rig = BurnerRig(sensors, 1)
    try:
        (pid,) = [p.pid for p in rig._procs]
        before = _cpu_ticks(pid)
        time.sleep(0.3)
        assert _cpu_ticks(pid) == before  # stopped: no CPU at all
        rig.set_load(True)
        time.sleep(0.5)
        rig.set_load(False)
        ran = _cpu_ticks(pid) - before
        _, busy, temp = rig.read()
        assert ran > 0
        assert busy > 0 and temp == temp  # a real reading (not NaN)
    finally:
        rig.close()
        sensors.close()
    assert not Path(f"/proc/{pid}").exists() or "Z" not in Path(f"/proc/{pid}/stat").read_text()


@pytest.mark.slow
def test_calibrate_on_this_machine_short(tmp_path: Path) -> None:
    """A real (short) calibration: burners, /proc/stat, the virtual plant."""
    target = tmp_path / "p.toml"
    proc = run_cli(
        "calibrate", "--duration", "8", "--idle", "2", "--sample", "0.25",
        "--profile", str(target), "--json",
    )
    if proc.returncode == 1 and "other processes keep the CPU busy" in proc.stderr:
        pytest.skip("the shared machine is saturated: no step to identify")
    assert proc.returncode == 0, proc.stderr
    out = json.loads(proc.stdout)
    assert out["profile"]["test"]["simulated"] is False
    assert out["profile"]["fit"]["gain_c_per_core"] > 0
    assert load_profile(target) is not None
