"""`maxwell sensors`, `maxwell doctor` and `maxwell bench sensors` as real processes: on
this machine (model, labelled modelled) and on fake trees given by the root options."""

from __future__ import annotations

import json
import os
import shutil
import stat
import subprocess
import sys
import time
from pathlib import Path

import pytest
from physics_fakes import intel_laptop, powercap_zone

from maxwell.physics import Roots

# Through main() as the console script does (`-m maxwell.cli` would load the module
# twice, as __main__ and as maxwell.cli, with two UsageError classes).
MAIN = "import sys; from maxwell.cli import main; sys.exit(main())"


def maxwell(*args: str, wrapper: tuple[str, ...] = ()) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        # Through main() as the console script does (`-m maxwell.cli` would load the
        # module twice, as __main__ and as maxwell.cli, with two UsageError classes).
        [
            *wrapper,
            sys.executable,
            "-c",
            "import sys; from maxwell.cli import main; sys.exit(main())",
            *args,
        ],
        capture_output=True,
        text=True,
        timeout=120,
    )


def roots_args(roots: Roots) -> list[str]:
    return [
        "--sysfs-root",
        str(roots.sysfs),
        "--dev-root",
        str(roots.dev),
        "--procfs-root",
        str(roots.procfs),
    ]


def _real_has_measured_sources() -> bool:
    return Path("/sys/class/powercap").is_dir() or Path("/sys/class/hwmon").is_dir()


@pytest.mark.skipif(_real_has_measured_sources(), reason="this host exposes measured sensors")
def test_sensors_json_on_this_machine_is_modelled() -> None:
    r = maxwell("sensors", "--json", "--interval", "0.2")
    assert r.returncode == 0, r.stderr
    out = json.loads(r.stdout)
    assert out["energy"]["measured"] is False and out["energy"]["source"] == "model"
    assert out["temperature"]["measured"] is False and out["temperature"]["source"] == "model"
    assert out["energy"]["power_w"] >= 12.0  # at least the desktop class's idle power
    assert out["energy"]["energy_j"] == pytest.approx(
        out["energy"]["power_w"] * out["interval_s"], rel=1e-4
    )
    assert 30.0 < out["temperature"]["temp_c"] < 100.0
    assert {row["source"] for row in out["rejected"]["energy"]} == {"powercap", "msr", "hwmon"}


def test_sensors_json_on_fake_tree_reports_the_fakes_values(tmp_path: Path) -> None:
    roots = intel_laptop(tmp_path)
    r = maxwell("sensors", "--json", "--interval", "0.1", *roots_args(roots))
    assert r.returncode == 0, r.stderr
    out = json.loads(r.stdout)
    assert out["energy"] == {
        "source": "powercap",
        "measured": True,
        "energy_j": 0.0,  # the fake counter does not move
        "power_w": 0.0,
    }
    assert out["temperature"] == {"source": "hwmon:coretemp", "measured": True, "temp_c": 47.0}
    assert out["busy_cores"] == 0.0  # the fake /proc/stat does not move either


def test_sensors_human_output_names_sources(tmp_path: Path) -> None:
    r = maxwell("sensors", "--interval", "0.1", *roots_args(intel_laptop(tmp_path)))
    assert r.returncode == 0, r.stderr
    assert "powercap (measured)" in r.stdout and "hwmon:coretemp (measured)" in r.stdout


def test_sensors_on_a_counter_that_wraps_during_the_interval(tmp_path: Path) -> None:
    """The counter is moved past its wrap point while the command sleeps between its two
    reads (seen in /proc/<pid>/wchan: the command's only sleep is that interval)."""
    roots = intel_laptop(tmp_path)
    max_uj = 262_143_328_850
    zone = powercap_zone(roots, "intel-rapl:0", "package-0", 262_143_000_000, max_uj)
    proc = subprocess.Popen(
        [sys.executable, "-c", MAIN, "sensors", "--json", "--interval", "1", *roots_args(roots)],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    wchan = Path(f"/proc/{proc.pid}/wchan")
    try:
        while "nanosleep" not in wchan.read_text() and proc.poll() is None:
            time.sleep(0.002)  # waiting for a state, not testing a duration
    except OSError:
        pass
    (zone / "energy_uj").write_text("671150\n")  # 328_850 + 671_150 = 1_000_000 µJ
    stdout, stderr = proc.communicate(timeout=120)
    assert proc.returncode == 0, stderr
    out = json.loads(stdout)
    assert out["energy"]["source"] == "powercap"
    assert out["energy"]["energy_j"] == pytest.approx(1.0)
    assert out["energy"]["power_w"] == pytest.approx(1.0 / out["interval_s"], rel=1e-4)


@pytest.mark.skipif(
    os.geteuid() != 0 or shutil.which("setpriv") is None,
    reason="needs root and setpriv to drop CAP_DAC_OVERRIDE (root reads 0000 files otherwise)",
)
def test_unreadable_energy_uj_gives_the_platypus_fix(tmp_path: Path) -> None:
    roots = intel_laptop(tmp_path)
    (roots.sysfs / "class/powercap/intel-rapl:0/energy_uj").chmod(0o000)
    drop = ("setpriv", "--inh-caps=-all", "--bounding-set=-dac_override,-dac_read_search")
    r = maxwell("sensors", "--json", "--interval", "0.1", *roots_args(roots), wrapper=drop)
    assert r.returncode == 0, r.stderr
    out = json.loads(r.stdout)
    (powercap,) = [row for row in out["rejected"]["energy"] if row["source"] == "powercap"]
    assert "permission denied" in powercap["reason"] and "CVE-2020-8694" in powercap["reason"]
    assert "chmod 0444" in powercap["reason"]
    assert out["energy"]["source"] == "model" and out["energy"]["measured"] is False
    assert out["temperature"]["source"] == "hwmon:coretemp"  # still readable: 0444 as made
    assert stat.S_IMODE((roots.sysfs / "class/hwmon/hwmon1/temp1_input").stat().st_mode) != 0


@pytest.mark.parametrize(
    ("args", "needle"),
    [
        (("--energy", "battery"), "unknown energy source"),
        (("--energy", "msr"), "not available here"),
        (("--interval", "-1"), "--interval"),
    ],
)
def test_sensors_usage_errors_exit_2(tmp_path: Path, args: tuple[str, ...], needle: str) -> None:
    r = maxwell("sensors", *args, *roots_args(intel_laptop(tmp_path)))
    assert r.returncode == 2
    assert needle in r.stderr and r.stdout == ""


def test_doctor_json_is_a_list_of_checks() -> None:
    r = maxwell("doctor", "--json")
    assert r.returncode == 0, r.stderr
    checks = json.loads(r.stdout)
    assert isinstance(checks, list) and checks
    assert all(set(c) == {"check", "ok", "detail"} for c in checks)
    names = {c["check"]: c for c in checks}
    assert names["python"]["ok"] is True
    assert names["package numpy"]["ok"] is True
    assert "energy source" in names and "temperature source" in names
    assert any(c["check"].startswith("membrane") for c in checks)
    assert any(c["check"].startswith("mem") and "membrane" not in c["check"] for c in checks)


def test_doctor_human_on_fake_tree(tmp_path: Path) -> None:
    r = maxwell("doctor", *roots_args(intel_laptop(tmp_path)))
    assert r.returncode == 0, r.stderr
    assert "✓ energy source: powercap (measured)" in r.stdout
    assert "✓ temperature source: hwmon:coretemp (measured)" in r.stdout


def test_bench_sensors_json() -> None:
    r = maxwell("bench", "sensors", "--json", "-n", "50")
    assert r.returncode == 0, r.stderr
    out = json.loads(r.stdout)
    assert out["n"] == 50 and out["sample_us_p50"] > 0
