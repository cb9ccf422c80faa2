"""The sensors facade: pick the best energy meter and thermometer, fall back to the model.

`probe()` asks each reader, best first, whether it works here (`available()`, which
never raises and says why not) and keeps the first that does; the virtual plant is
always last, so a reading always exists and is labelled measured or modelled.
`Sensors.sample(now_s)` is called once per tick: it reads /proc/stat (busy cores),
the chosen counters and thermometer, advances the plant by the caller's Δt and
returns one `PhysicsSample`. A reader that fails on a tick makes that quantity N/A
(NaN) for the tick, with the reason logged once; energy counters are cumulative, so
the next good read still accounts for every Joule. Touches only the files of the
chosen readers and <procfs>/stat.
"""

from __future__ import annotations

import logging
from typing import Any

from maxwell.common import Availability
from maxwell.physics._counters import EnergyAccumulator
from maxwell.physics._hwmon import HwmonEnergy, HwmonTemp
from maxwell.physics._msr import MsrEnergy, MsrTemp
from maxwell.physics._powercap import PowercapEnergy
from maxwell.physics._procstat import ProcStat
from maxwell.physics._records import (
    EnergyReader,
    PhysicsSample,
    Roots,
    SensorError,
    TempReader,
    unavailable,
)
from maxwell.physics._thermal_zone import ThermalZoneTemp
from maxwell.physics.plant import PlantParams, ThermalPlant, plant_params

log = logging.getLogger("maxwell.physics")

ENERGY_SOURCES = ("powercap", "msr", "hwmon", "model")
TEMP_SOURCES = ("msr", "hwmon", "thermal_zone", "model")
# Outside this range a "die temperature" is a driver or parsing fault, not physics.
TEMP_PLAUSIBLE_C = (-40.0, 150.0)
NAN = float("nan")


class SensorUnavailable(RuntimeError):
    """A source the user forced is not usable here (the message says why and the fix)."""


def energy_readers(roots: Roots) -> list[EnergyReader]:
    """Measured energy sources, best first."""
    return [
        PowercapEnergy(roots.sysfs),
        MsrEnergy(roots.dev, roots.sysfs, roots.procfs),
        HwmonEnergy(roots.sysfs),
    ]


def temp_readers(roots: Roots) -> list[TempReader]:
    """Measured thermometers, best first."""
    return [
        MsrTemp(roots.dev, roots.sysfs, roots.procfs),
        HwmonTemp(roots.sysfs),
        ThermalZoneTemp(roots.sysfs),
    ]


class _PlausibleTemp:
    """Wraps a thermometer so implausible values count as a failed reading."""

    def __init__(self, reader: TempReader) -> None:
        self.reader = reader
        self.name = reader.name

    def read(self) -> float:
        temp_c = self.reader.read()
        lo, hi = TEMP_PLAUSIBLE_C
        if not lo <= temp_c <= hi:
            raise SensorError(f"{self.name}: implausible die temperature {temp_c} °C")
        return temp_c

    def available(self) -> Availability:
        ok = self.reader.available()
        if not ok:
            return ok
        try:
            self.read()
        except Exception as err:  # detection never raises
            return unavailable(err)
        return ok

    def describe(self) -> dict[str, object]:
        return self.reader.describe()

    def close(self) -> None:
        self.reader.close()


def source_label(reader: EnergyReader | TempReader) -> str:
    """The recorded source name: the family, refined by driver or zone type."""
    if isinstance(reader, MsrEnergy | MsrTemp) and reader.vendor:
        return f"msr:{reader.vendor}"
    if isinstance(reader, HwmonTemp) and reader.chip_name:
        return f"hwmon:{reader.chip_name}"
    if isinstance(reader, ThermalZoneTemp) and reader.zone_type:
        return f"thermal_zone:{reader.zone_type}"
    return reader.name


def _choose(
    quantity: str,
    readers: list[Any],
    valid: tuple[str, ...],
    force: str | None,
) -> tuple[Any | None, list[dict[str, str]]]:
    """First available reader (or the forced one); the reasons the better ones were passed over."""
    if force is not None and force not in valid:
        raise ValueError(f"unknown {quantity} source {force!r}: choose one of {', '.join(valid)}")
    rejected: list[dict[str, str]] = []
    for reader in readers:
        if force is not None and reader.name != force:
            continue
        ok = reader.available()
        if ok:
            return reader, rejected
        rejected.append({"source": reader.name, "reason": ok.reason})
        reader.close()
        if force is not None:
            raise SensorUnavailable(
                f"{quantity} source {force!r} is not available here: {ok.reason}"
            )
    return None, rejected


class Sensors:
    """The chosen energy meter and thermometer (or the model) behind one `sample()`."""

    def __init__(
        self,
        roots: Roots,
        params: PlantParams,
        energy_reader: EnergyReader | None,
        temp_reader: TempReader | None,
        rejected: dict[str, list[dict[str, str]]],
        idle_power_w: float | None = None,
    ) -> None:
        self.roots = roots
        self.params = params
        self.hw_class = params.hw_class
        self.plant = ThermalPlant(params)
        self._energy = energy_reader
        self._temp = _PlausibleTemp(temp_reader) if temp_reader is not None else None
        self._temp_raw = temp_reader
        self.rejected = rejected
        self.energy_source = source_label(energy_reader) if energy_reader else "model"
        self.energy_measured = energy_reader is not None
        self.temp_source = source_label(temp_reader) if temp_reader else "model"
        self.temp_measured = temp_reader is not None
        # Idle power for attribution: the model's P_idle. With a measured meter this is
        # the hardware class's figure too (an estimate: real idle power varies with the
        # part and its power states); pass idle_power_w to probe() to override.
        self.idle_power_w = params.idle_power_w if idle_power_w is None else idle_power_w
        self._procstat = ProcStat(roots.procfs)
        self._acc = EnergyAccumulator()
        self._t_last: float | None = None
        self._energy_j = 0.0
        self._good_t_s: float | None = None  # time of the last good measured energy read
        self._good_energy_j = 0.0
        self._busy_cores = 0.0
        # What drives the model: "run" (only the run's own CPU, so neighbours neither
        # heat the modelled die nor enter its energy) or "machine" (all of /proc/stat).
        self.model_load = "run"
        self._run_cpu_s: float | None = None  # the run's cumulative CPU, from the caller
        self._run_cpu_last_s: float | None = None
        self._last: PhysicsSample | None = None
        self._logged: set[str] = set()
        self._prime()

    def _warn_once(self, key: str, message: str) -> None:
        if key not in self._logged:
            self._logged.add(key)
            log.warning("%s (reported once; the reading is N/A while it lasts)", message)

    def _prime(self) -> None:
        """Baseline /proc/stat so the first interval's busy cores are real."""
        try:
            self._procstat.update()
        except SensorError as err:
            self._warn_once("procstat", f"busy cores: {err}")

    def _read_busy(self) -> float:
        try:
            self._busy_cores = self._procstat.update()
        except SensorError as err:
            self._warn_once("procstat", f"busy cores: {err}")
        return self._busy_cores

    def _read_energy_j(self) -> float | None:
        assert self._energy is not None
        try:
            return self._acc.update(self._energy.read())
        except SensorError as err:
            self._warn_once("energy", f"energy ({self.energy_source}): {err}")
            return None

    def _read_temp_c(self) -> float:
        if self._temp is None:
            return self.plant.die_c
        try:
            return self._temp.read()
        except SensorError as err:
            self._warn_once("temp", f"temperature ({self.temp_source}): {err}")
            return NAN

    def set_run_cpu_s(self, cpu_s: float) -> None:
        """The run's own cumulative CPU seconds (agents and supervisor) as of now; call
        before each `sample()` so it can split off CPU from outside the run."""
        self._run_cpu_s = float(cpu_s)

    @property
    def foreign_in_energy(self) -> bool:
        """Whether `energy_j` includes what processes outside the run used."""
        return self.energy_measured or self.model_load != "run"

    def _foreign_cores(self, busy: float, dt_s: float) -> float:
        run, last = self._run_cpu_s, self._run_cpu_last_s
        self._run_cpu_last_s = run
        if run is None or last is None or dt_s <= 0:
            return 0.0
        return min(max(busy - max(run - last, 0.0) / dt_s, 0.0), busy)

    def start(self, now_s: float) -> PhysicsSample:
        """Take the baseline sample at `now_s` (energy 0, power unknown)."""
        busy = self._read_busy()
        if self._energy is not None:
            energy_j = self._read_energy_j()
            if energy_j is not None:
                self._good_t_s, self._good_energy_j = now_s, energy_j
        self._t_last = now_s
        self._energy_j = 0.0
        self._run_cpu_last_s = self._run_cpu_s
        sample = PhysicsSample(now_s, 0.0, NAN, self._read_temp_c(), busy)
        self._last = sample
        return sample

    def sample(self, now_s: float) -> PhysicsSample:
        """Read everything for the interval since the previous sample (cheap: one tick)."""
        if self._t_last is None:
            return self.start(now_s)
        dt_s = now_s - self._t_last
        if dt_s <= 0.0:
            # No time has passed on the caller's clock: nothing new to integrate.
            assert self._last is not None
            return self._last._replace(t_s=now_s)
        busy = self._read_busy()
        foreign = self._foreign_cores(busy, dt_s)
        model_power_w = self.params.power_w(busy if self.model_load != "run" else busy - foreign)
        if self._energy is None:
            power_w = model_power_w
            self._energy_j += power_w * dt_s
        else:
            energy_j = self._read_energy_j()
            power_w = NAN
            if energy_j is not None:
                if self._good_t_s is not None and now_s > self._good_t_s:
                    # Over the span since the last good read, so a failed tick loses nothing.
                    power_w = (energy_j - self._good_energy_j) / (now_s - self._good_t_s)
                self._good_t_s, self._good_energy_j = now_s, energy_j
                self._energy_j = energy_j
        # The plant is driven by the class's power model even when energy is measured:
        # a measured host's power (a 300 W server, say) through another class's thermal
        # resistances would give temperatures no real die has.
        self.plant.step(model_power_w, dt_s)
        self._t_last = now_s
        sample = PhysicsSample(now_s, self._energy_j, power_w, self._read_temp_c(), busy, foreign)
        self._last = sample
        return sample

    def describe(self) -> dict[str, object]:
        """JSON-able facts for the run record: sources, hardware class, plant parameters."""
        return {
            "energy": {
                "source": self.energy_source,
                "measured": self.energy_measured,
                "detail": self._energy.describe()
                if self._energy
                else {"model": "P_idle + P_core * busy_cores"},
                "rejected": self.rejected.get("energy", []),
            },
            "temperature": {
                "source": self.temp_source,
                "measured": self.temp_measured,
                "detail": self._temp_raw.describe()
                if self._temp_raw
                else {"model": "two-node RC (die, heatsink)"},
                "rejected": self.rejected.get("temperature", []),
            },
            "hw_class": self.hw_class,
            "idle_power_w": self.idle_power_w,
            "plant": self.params.as_dict(),
            "busy_cores_source": str(self._procstat.path),
            "model_load": self.model_load,
            "roots": self.roots.as_dict(),
        }

    def close(self) -> None:
        self._procstat.close()
        if self._energy is not None:
            self._energy.close()
        if self._temp_raw is not None:
            self._temp_raw.close()


def probe(
    roots: Roots,
    hw_class: str = "desktop",
    force_energy: str | None = None,
    force_temp: str | None = None,
    *,
    now_s: float | None = None,
    idle_power_w: float | None = None,
) -> Sensors:
    """Pick the best energy meter and thermometer here; the model where none works.

    `force_*` names one source ("model" forces the virtual plant); a forced source that
    does not work raises SensorUnavailable with the reason, an unknown name or hardware
    class raises ValueError. With `now_s` the baseline is taken now, else at the first
    `sample()`.
    """
    params = plant_params(hw_class)
    rejected: dict[str, list[dict[str, str]]] = {}
    energy: EnergyReader | None = None
    temp: TempReader | None = None
    if force_energy != "model":
        energy, rejected["energy"] = _choose(
            "energy", energy_readers(roots), ENERGY_SOURCES, force_energy
        )
    if force_temp != "model":
        readers = [_PlausibleTemp(r) for r in temp_readers(roots)]
        chosen, rejected["temperature"] = _choose("temperature", readers, TEMP_SOURCES, force_temp)
        temp = chosen.reader if chosen is not None else None
    sensors = Sensors(roots, params, energy, temp, rejected, idle_power_w=idle_power_w)
    if now_s is not None:
        sensors.start(now_s)
    return sensors
