"""Calibration profiles: round trip through TOML, refusal on another machine, and the
gains a run resolves to. Every test writes under tmp_path, never the user's dir."""

from __future__ import annotations

from pathlib import Path

import pytest

from maxwell.control import (
    Machine,
    PIDGains,
    Profile,
    ProfileMismatch,
    choose_gains,
    current_machine,
    default_gains,
    gains_record,
    load_profile,
    resolve_gains,
    save_profile,
)
from maxwell.control.profile import ProfileError, cpu_model


def make_profile(machine: Machine) -> Profile:
    return Profile(
        machine=machine,
        gains=PIDGains(0.1, 0.02, 0.0, 0.0),
        hw_class="desktop",
        created_at="2026-01-01T00:00:00+00:00",
        tick_s=1.0,
        price_per_core=1.0,
        fit={"gain_c_per_core": 17.0, "tau_s": 150.0},
        simc={"kc_cores_per_c": 0.1},
        test={"load_s": 120.0, "simulated": False},
    )


def test_round_trip_on_this_machine(tmp_path: Path) -> None:
    here = current_machine(energy_source="model", temp_source="model")
    path = save_profile(make_profile(here), tmp_path / "sub" / "p.toml")
    loaded = load_profile(path, here)
    assert loaded == make_profile(here)
    # Without naming sources, only the CPU model and cores are compared.
    assert load_profile(path) is not None


def test_missing_profile_is_none(tmp_path: Path) -> None:
    assert load_profile(tmp_path / "absent.toml") is None


@pytest.mark.parametrize(
    ("other", "needle"),
    [
        (Machine("Some Other CPU", 2), "CPU model"),
        (Machine("X", 64), "cores"),
        (Machine("X", 2, "model", "hwmon:k10temp"), "temp source"),
    ],
)
def test_profile_from_another_machine_is_refused(
    tmp_path: Path, other: Machine, needle: str
) -> None:
    mine = Machine("X", 2, "model", "model")
    path = save_profile(make_profile(mine), tmp_path / "p.toml")
    with pytest.raises(ProfileMismatch, match=needle) as err:
        load_profile(path, other)
    assert "maxwell calibrate" in str(err.value)


def test_malformed_profiles_are_reported(tmp_path: Path) -> None:
    bad = tmp_path / "bad.toml"
    bad.write_text("this is = = not toml")
    with pytest.raises(ProfileError, match="not valid TOML"):
        load_profile(bad)
    bad.write_text("schema = 1\n[machine]\ncpu_model = 'X'\n")
    with pytest.raises(ProfileError, match="malformed"):
        load_profile(bad)


def test_resolve_gains_prefers_a_matching_profile(tmp_path: Path) -> None:
    here = current_machine()
    path = save_profile(make_profile(here), tmp_path / "p.toml")
    choice = resolve_gains("desktop", path)
    assert choice.source == "profile" and choice.gains == PIDGains(0.1, 0.02, 0.0, 0.0)
    assert choice.detail == str(path)
    other = resolve_gains("desktop", path, Machine("Other", 99))
    assert other.source == "hw-class default"
    assert other.gains == default_gains("desktop")
    assert "another machine" in other.detail
    none = resolve_gains("laptop", tmp_path / "absent.toml")
    assert none.source == "hw-class default" and "no profile" in none.detail


def test_cpu_model_from_a_fake_procfs(tmp_path: Path) -> None:
    (tmp_path / "cpuinfo").write_text("processor\t: 0\nmodel name\t: Fake CPU 9000\n")
    assert cpu_model(tmp_path) == "Fake CPU 9000"
    assert cpu_model(tmp_path / "nowhere") == "unknown"


def test_choose_gains_from_the_config_setting(tmp_path: Path) -> None:
    here = current_machine()
    path = save_profile(make_profile(here), tmp_path / "p.toml")
    explicit = choose_gains(str(path), "desktop")
    assert explicit.source == "profile" and explicit.gains.kp == 0.1
    default = choose_gains("default", "server")
    assert default.gains == default_gains("server")
    overridden = choose_gains(str(path), "desktop", kp=0.5)
    assert overridden.gains == PIDGains(0.5, 0.02, 0.0, 0.0)
    assert overridden.source == "profile + config (kp)"
    record = gains_record(overridden)
    assert record["kp"] == 0.5 and record["source"] == "profile + config (kp)"
    with pytest.raises(ProfileError, match="no such profile"):
        choose_gains(str(tmp_path / "absent.toml"))
    with pytest.raises(ProfileMismatch):
        choose_gains(str(path), machine=Machine("Other", 1))


def test_the_run_tick_is_honoured(tmp_path: Path) -> None:
    # Class defaults are tuned for the run's tick (the loop delay is 1.5 ticks).
    slow = choose_gains("default", "desktop", tick_s=5.0)
    assert slow.gains == default_gains("desktop", 5.0)
    assert slow.gains.ki < default_gains("desktop").ki
    path = save_profile(make_profile(current_machine()), tmp_path / "p.toml")
    noted = choose_gains(str(path), tick_s=2.0)
    assert "calibrated for a 1 s tick, run uses 2 s" in noted.detail
