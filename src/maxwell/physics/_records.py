"""Records shared by the physics readers, the sensors facade and its callers.

Plain immutable values (frozen dataclasses and NamedTuples) with no I/O, so every
other module in the package can import them without side effects.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import NamedTuple, Protocol

from maxwell.common import Availability


@dataclass(frozen=True)
class Roots:
    """Filesystem roots the readers look under (fake trees in tests, / in production)."""

    sysfs: Path = Path("/sys")
    dev: Path = Path("/dev")
    procfs: Path = Path("/proc")

    @classmethod
    def from_env(
        cls,
        sysfs: str | Path | None = None,
        dev: str | Path | None = None,
        procfs: str | Path | None = None,
    ) -> Roots:
        """Explicit arguments win, then MAXWELL_{SYSFS,DEV,PROCFS}_ROOT, then the defaults."""

        def pick(explicit: str | Path | None, env: str, default: Path) -> Path:
            if explicit is not None and str(explicit) != "":
                return Path(explicit)
            value = os.environ.get(env, "")
            return Path(value) if value else default

        return cls(
            sysfs=pick(sysfs, "MAXWELL_SYSFS_ROOT", Path("/sys")),
            dev=pick(dev, "MAXWELL_DEV_ROOT", Path("/dev")),
            procfs=pick(procfs, "MAXWELL_PROCFS_ROOT", Path("/proc")),
        )

    def as_dict(self) -> dict[str, str]:
        return {"sysfs": str(self.sysfs), "dev": str(self.dev), "procfs": str(self.procfs)}


class PhysicsSample(NamedTuple):
    """One reading of the host's physics at caller time `t_s` (a monotonic clock).

    `energy_j` is cumulative since the baseline (the first sample, or `probe(now_s=…)`);
    `power_w` is the mean over the interval since the previous sample (NaN for the
    baseline sample, or when the energy source failed this tick); `temp_c` is the die
    temperature (NaN when a measured thermometer failed this tick); `busy_cores` is the
    machine-wide number of busy CPUs over the interval, from /proc/stat;
    `foreign_cores` the part of it that is not the run's (agents and supervisor), when
    the caller told the sampler the run's CPU (`Sensors.set_run_cpu_s`), else 0.
    """

    t_s: float
    energy_j: float
    power_w: float
    temp_c: float
    busy_cores: float
    foreign_cores: float = 0.0


class RawCounter(NamedTuple):
    """A hardware energy counter as read: value in counts, wraps to 0 at `modulus`."""

    value: int
    modulus: int
    unit_j: float  # Joules per count


class SensorError(Exception):
    """A reader failed for this reading (the caller marks it N/A, never crashes)."""


def unavailable(err: Exception) -> Availability:
    """Why a reader's `available()` probe failed: detection never raises, it explains.

    A SensorError already says what is wrong; anything else is reported as unexpected.
    """
    if isinstance(err, SensorError):
        return Availability(False, str(err))
    return Availability(False, f"unexpected error: {err!r}")


class EnergyReader(Protocol):
    """A measured energy source: cumulative counters per package."""

    name: str

    def available(self) -> Availability: ...
    def read(self) -> tuple[RawCounter, ...]: ...
    def describe(self) -> dict[str, object]: ...
    def close(self) -> None: ...


class TempReader(Protocol):
    """A measured die thermometer."""

    name: str

    def available(self) -> Availability: ...
    def read(self) -> float: ...
    def describe(self) -> dict[str, object]: ...
    def close(self) -> None: ...
