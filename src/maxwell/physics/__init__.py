"""Physics: energy meters, thermometers and the virtual plant, behind one `Sensors`.

`probe(roots)` picks, per quantity, the best source that works on this machine —
energy: powercap RAPL, MSR, hwmon, else the model; temperature: Intel MSR, hwmon,
thermal_zone, else the model — and every reading is labelled measured or modelled.
The virtual plant (`maxwell.physics.plant`) is driven by the machine's real CPU use
from /proc/stat. Only reads under the given roots (sysfs, dev, procfs); never writes.
"""

from __future__ import annotations

from maxwell.physics._attribute import attribute, split_foreign
from maxwell.physics._doctor import doctor_checks
from maxwell.physics._records import PhysicsSample, RawCounter, Roots, SensorError
from maxwell.physics._sensors import (
    ENERGY_SOURCES,
    TEMP_SOURCES,
    Sensors,
    SensorUnavailable,
    probe,
)
from maxwell.physics.plant import HW_CLASSES, PlantParams, ThermalPlant, plant_params, rc_step

__all__ = [
    "ENERGY_SOURCES",
    "HW_CLASSES",
    "TEMP_SOURCES",
    "PhysicsSample",
    "PlantParams",
    "RawCounter",
    "Roots",
    "SensorError",
    "SensorUnavailable",
    "Sensors",
    "ThermalPlant",
    "attribute",
    "doctor_checks",
    "plant_params",
    "probe",
    "rc_step",
    "split_foreign",
]
