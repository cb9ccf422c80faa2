"""Machine calibration profiles: the gains `maxwell calibrate` measured, bound to a machine.

A profile is a TOML file (written with tomli_w, read with tomllib) in the user's
config directory (platformdirs: ``~/.config/maxwell/control-profile.toml`` on
Linux) holding the machine it was measured on (CPU model, core count, energy and
temperature sources), the fitted plant, the SIMC tuning and the resulting gains.
Loading it on a different machine raises `ProfileMismatch`, whose message names
the difference and the fix (re-run `maxwell calibrate`). This module reads
<procfs>/cpuinfo and the profile file and writes only the profile file.
"""

from __future__ import annotations

import math
import os
import tomllib
from dataclasses import dataclass
from pathlib import Path
from typing import Any, NamedTuple

from maxwell.control.pid import PIDGains
from maxwell.control.tuning import DEFAULT_TICK_S

PROFILE_SCHEMA = 1
PROFILE_NAME = "control-profile.toml"


class ProfileMismatch(Exception):
    """The profile was measured on another machine (or with other sensors)."""


class ProfileError(Exception):
    """The profile file is unreadable or malformed."""


@dataclass(frozen=True)
class Machine:
    """What identifies a plant: CPU model and cores, and which sensors were used
    (a modelled and a measured thermometer are different plants)."""

    cpu_model: str
    cores: int
    energy_source: str = ""
    temp_source: str = ""

    def as_dict(self) -> dict[str, str | int]:
        return {
            "cpu_model": self.cpu_model,
            "cores": self.cores,
            "energy_source": self.energy_source,
            "temp_source": self.temp_source,
        }

    def mismatch(self, other: Machine) -> str | None:
        """Why `other` is not this machine, or None. Empty sources are not compared."""
        if self.cpu_model != other.cpu_model:
            return f"CPU model {self.cpu_model!r} ≠ {other.cpu_model!r}"
        if self.cores != other.cores:
            return f"{self.cores} cores ≠ {other.cores} cores"
        for name in ("energy_source", "temp_source"):
            mine, theirs = getattr(self, name), getattr(other, name)
            if mine and theirs and mine != theirs:
                return f"{name.replace('_', ' ')} {mine!r} ≠ {theirs!r}"
        return None


def cpu_model(procfs_root: Path = Path("/proc")) -> str:
    """The CPU's model name from <procfs>/cpuinfo ("unknown" if absent)."""
    try:
        text = (procfs_root / "cpuinfo").read_text(errors="replace")
    except OSError:
        return "unknown"
    for line in text.splitlines():
        key, _, value = line.partition(":")
        if key.strip() in ("model name", "Model", "cpu model", "Processor") and value.strip():
            return value.strip()
    return "unknown"


def current_machine(
    procfs_root: Path = Path("/proc"), energy_source: str = "", temp_source: str = ""
) -> Machine:
    """This machine as a `Machine` (cores: CPUs this process may run on)."""
    try:
        cores = len(os.sched_getaffinity(0))
    except (AttributeError, OSError):
        cores = os.cpu_count() or 1
    return Machine(cpu_model(procfs_root), cores, energy_source, temp_source)


@dataclass(frozen=True)
class Profile:
    """A calibration: the machine, the gains and how they were obtained."""

    machine: Machine
    gains: PIDGains
    hw_class: str
    created_at: str  # ISO 8601, UTC, given by the caller
    tick_s: float
    price_per_core: float
    fit: dict[str, float]  # FOPDTFit.as_dict()
    simc: dict[str, float]  # SimcResult.as_dict()
    test: dict[str, Any]  # step-test facts: duration, samples, burner cores, plant source

    def to_toml_dict(self) -> dict[str, Any]:
        return {
            "schema": PROFILE_SCHEMA,
            "created_at": self.created_at,
            "hw_class": self.hw_class,
            "tick_s": self.tick_s,
            "price_per_core": self.price_per_core,
            "machine": self.machine.as_dict(),
            "gains": self.gains.as_dict(),
            "fit": dict(self.fit),
            "simc": dict(self.simc),
            "test": dict(self.test),
        }

    @classmethod
    def from_toml_dict(cls, data: dict[str, Any], where: str) -> Profile:
        try:
            if data.get("schema") != PROFILE_SCHEMA:
                raise ProfileError(
                    f"{where}: profile schema {data.get('schema')!r} is not {PROFILE_SCHEMA};"
                    " re-run `maxwell calibrate`"
                )
            m = data["machine"]
            g = data["gains"]
            return cls(
                machine=Machine(
                    str(m["cpu_model"]),
                    int(m["cores"]),
                    str(m.get("energy_source", "")),
                    str(m.get("temp_source", "")),
                ),
                gains=PIDGains(
                    float(g["kp"]), float(g["ki"]), float(g["kd"]), float(g["d_filter_s"])
                ),
                hw_class=str(data["hw_class"]),
                created_at=str(data["created_at"]),
                tick_s=float(data["tick_s"]),
                price_per_core=float(data["price_per_core"]),
                fit={k: float(v) for k, v in data.get("fit", {}).items()},
                simc={k: float(v) for k, v in data.get("simc", {}).items()},
                test=dict(data.get("test", {})),
            )
        except (KeyError, TypeError, ValueError) as err:
            raise ProfileError(
                f"{where}: malformed profile ({err}); re-run `maxwell calibrate`"
            ) from err

    def to_toml(self) -> str:
        import tomli_w

        return tomli_w.dumps(self.to_toml_dict())


def default_profile_path() -> Path:
    """Where `maxwell calibrate` writes and `maxwell run` looks (user config dir)."""
    from platformdirs import user_config_path

    return user_config_path("maxwell") / PROFILE_NAME


def save_profile(profile: Profile, path: Path | None = None) -> Path:
    """Write the profile atomically (temporary file, then rename); returns the path."""
    target = default_profile_path() if path is None else path
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = target.with_name(f".{target.name}.{os.getpid()}.tmp")
    tmp.write_text(profile.to_toml())
    tmp.replace(target)
    return target


def load_profile(path: Path | None = None, machine: Machine | None = None) -> Profile | None:
    """The profile at `path` (default: the user config dir), or None if there is none.

    Raises ProfileMismatch if it was measured on another machine than `machine`
    (default: this one, compared by CPU model and cores; sources are compared when
    `machine` names them), and ProfileError if the file is malformed.
    """
    source = default_profile_path() if path is None else path
    try:
        raw = source.read_bytes()
    except FileNotFoundError:
        return None
    except OSError as err:
        raise ProfileError(f"{source}: cannot read profile: {err}") from err
    try:
        data = tomllib.loads(raw.decode("utf-8", errors="replace"))
    except tomllib.TOMLDecodeError as err:
        raise ProfileError(f"{source}: not valid TOML ({err}); re-run `maxwell calibrate`") from err
    profile = Profile.from_toml_dict(data, str(source))
    here = current_machine() if machine is None else machine
    why = profile.machine.mismatch(here)
    if why is not None:
        raise ProfileMismatch(
            f"{source} was calibrated on another machine ({why}); run `maxwell calibrate`"
            " on this one or remove the file"
        )
    return profile


class GainChoice(NamedTuple):
    """The gains a run should use, and where they came from (for the run record)."""

    gains: PIDGains
    source: str  # "profile" | "hw-class default"
    detail: str  # path of the profile, or the class and why no profile was used


def _tick_note(profile: Profile, tick_s: float | None) -> str:
    if tick_s is None or math.isclose(profile.tick_s, tick_s):
        return ""
    return f" (calibrated for a {profile.tick_s:g} s tick, run uses {tick_s:g} s)"


def resolve_gains(
    hw_class: str = "desktop",
    path: Path | None = None,
    machine: Machine | None = None,
    tick_s: float | None = None,
) -> GainChoice:
    """Profile gains when a profile for this machine exists, else the class default
    (tuned for `tick_s`, default 1 s).

    A profile for another machine is not used (the detail says so) rather than
    failing the run; a malformed one likewise.
    """
    from maxwell.control.defaults import default_gains

    tick = DEFAULT_TICK_S if tick_s is None else tick_s
    try:
        profile = load_profile(path, machine)
    except (ProfileMismatch, ProfileError) as err:
        return GainChoice(
            default_gains(hw_class, tick), "hw-class default", f"{hw_class}; {err}"
        )
    where = default_profile_path() if path is None else path
    if profile is None:
        return GainChoice(
            default_gains(hw_class, tick), "hw-class default", f"{hw_class}; no profile at {where}"
        )
    return GainChoice(profile.gains, "profile", f"{where}{_tick_note(profile, tick_s)}")


def choose_gains(
    setting: str,
    hw_class: str = "desktop",
    machine: Machine | None = None,
    *,
    kp: float | None = None,
    ki: float | None = None,
    kd: float | None = None,
    tick_s: float | None = None,
) -> GainChoice:
    """The gains for a run from the config's ``[control]`` section (tick: the run's).

    ``setting`` is ``profile``: "auto" (this machine's profile if there is one, else
    the class default), "default" (the class default), or a path (that profile; a
    missing, malformed or foreign file raises ProfileError / ProfileMismatch, which
    the caller reports as bad input). ``kp``/``ki``/``kd``, when given, override the
    chosen gains one by one, and the source says so.
    """
    from maxwell.control.defaults import default_gains

    if setting == "auto":
        choice = resolve_gains(hw_class, None, machine, tick_s)
    elif setting == "default":
        tick = DEFAULT_TICK_S if tick_s is None else tick_s
        choice = GainChoice(default_gains(hw_class, tick), "hw-class default", hw_class)
    else:
        path = Path(setting).expanduser()
        profile = load_profile(path, machine)
        if profile is None:
            raise ProfileError(
                f"{path}: no such profile; run `maxwell calibrate --profile {path}` or set"
                " control.profile = \"auto\""
            )
        choice = GainChoice(profile.gains, "profile", f"{path}{_tick_note(profile, tick_s)}")
    overrides = {k: v for k, v in (("kp", kp), ("ki", ki), ("kd", kd)) if v is not None}
    if not overrides:
        return choice
    g = choice.gains
    gains = PIDGains(
        kp=overrides.get("kp", g.kp),
        ki=overrides.get("ki", g.ki),
        kd=overrides.get("kd", g.kd),
        d_filter_s=g.d_filter_s,
    )
    names = ", ".join(sorted(overrides))
    return GainChoice(gains, f"{choice.source} + config ({names})", choice.detail)


def gains_record(choice: GainChoice) -> dict[str, Any]:
    """JSON-able record of the gains a run used, for ``runs.gains``."""
    return {**choice.gains.as_dict(), "source": choice.source, "detail": choice.detail}
