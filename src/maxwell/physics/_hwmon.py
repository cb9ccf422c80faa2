"""Energy and die temperature from hwmon drivers (<sysfs>/class/hwmon/hwmonN).

Temperature, by chip: coretemp (Intel: "Package id N", else the hottest core),
k10temp and zenpower (AMD: Tdie, else the hottest Tccd, else Tctl; Tctl carries a
vendor offset on some parts and is "non-physical", so it is the last resort).
Energy: `energyN_input` (µJ) of per-socket counters ("Esocket" labels of amd_energy)
or of a chip with a single unlabelled counter; per-core counters are skipped because
they are parts of a socket and do not cover the uncore. Reads only under
`<sysfs>/class/hwmon`.
"""

from __future__ import annotations

import re
from pathlib import Path

from maxwell.common import Availability
from maxwell.physics._io import read_int, read_text, sorted_numeric
from maxwell.physics._records import RawCounter, SensorError, unavailable

TEMP_CHIPS = ("coretemp", "k10temp", "zenpower")
_TEMP_INPUT = re.compile(r"^temp(\d+)_input$")
_ENERGY_INPUT = re.compile(r"^energy(\d+)_input$")
# amd_energy and similar accumulate in 64 bits in the driver.
_HWMON_ENERGY_MODULUS = 1 << 64


def _chips(sysfs_root: Path) -> list[Path]:
    base = sysfs_root / "class" / "hwmon"
    try:
        return sorted_numeric([p for p in base.iterdir() if p.name.startswith("hwmon")], "hwmon")
    except OSError:
        return []


def _chip_name(chip: Path) -> str:
    try:
        return read_text(chip / "name")
    except SensorError:
        return ""


def _label(chip: Path, stem: str) -> str:
    try:
        return read_text(chip / f"{stem}_label")
    except SensorError:
        return ""


def _pick_temp_inputs(name: str, labelled: list[tuple[str, Path]]) -> tuple[list[Path], str]:
    """The inputs that best stand for the die on this chip, and which rule chose them."""

    def with_label(pred: object) -> list[Path]:
        return [p for label, p in labelled if callable(pred) and pred(label)]

    if name == "coretemp":
        package = with_label(lambda lab: lab.startswith("Package id"))
        if package:
            return package, "Package id"
        cores = with_label(lambda lab: lab.startswith("Core"))
        return (cores, "hottest Core") if cores else ([p for _, p in labelled], "all inputs")
    # k10temp, zenpower
    tdie = with_label(lambda lab: lab == "Tdie")
    if tdie:
        return tdie, "Tdie"
    tccd = with_label(lambda lab: lab.startswith("Tccd"))
    if tccd:
        return tccd, "hottest Tccd"
    tctl = with_label(lambda lab: lab == "Tctl")
    if tctl:
        return tctl, "Tctl (may include a vendor offset)"
    return [p for _, p in labelled], "all inputs"


class HwmonTemp:
    """Die temperature from the first of coretemp, k10temp, zenpower found."""

    name = "hwmon"

    def __init__(self, sysfs_root: Path) -> None:
        self.sysfs_root = sysfs_root
        self._chosen: tuple[str, Path, list[Path], str] | None = None

    def _choose(self) -> tuple[str, Path, list[Path], str]:
        """(driver, first chip, inputs, rule). A multi-socket machine has one chip per
        package (coretemp) or node (k10temp): the inputs of all of them are used."""
        if self._chosen is None:
            chips: dict[str, list[Path]] = {}
            for chip in _chips(self.sysfs_root):
                chips.setdefault(_chip_name(chip), []).append(chip)
            for name in TEMP_CHIPS:
                inputs: list[Path] = []
                rule = ""
                for chip in chips.get(name, []):
                    try:
                        entries = [p for p in chip.iterdir() if _TEMP_INPUT.match(p.name)]
                    except OSError:
                        continue
                    labelled = [
                        (_label(chip, p.name.removesuffix("_input")), p)
                        for p in sorted_numeric(entries, "temp")
                    ]
                    chip_inputs, chip_rule = _pick_temp_inputs(name, labelled)
                    inputs.extend(chip_inputs)
                    rule = rule or chip_rule
                if inputs:
                    self._chosen = (name, inputs[0].parent, inputs, rule)
                    break
            else:
                found = sorted(n for n in chips if n)
                raise SensorError(
                    f"no coretemp, k10temp or zenpower chip under {self.sysfs_root}/class/hwmon"
                    f" (found: {', '.join(found) or 'none'}; load the driver:"
                    " `modprobe coretemp` or `modprobe k10temp`)"
                )
        return self._chosen

    def available(self) -> Availability:
        try:
            name, chip, _, rule = self._choose()
            temp_c = self.read()
        except Exception as err:  # detection never raises
            return unavailable(err)
        return Availability(True, f"{name} at {chip} ({rule}), now {temp_c:.1f} °C")

    @property
    def chip_name(self) -> str:
        try:
            return self._choose()[0]
        except SensorError:
            return ""

    def read(self) -> float:
        _, _, inputs, _ = self._choose()
        return max(read_int(p) for p in inputs) / 1000.0

    def describe(self) -> dict[str, object]:
        try:
            name, _, inputs, rule = self._choose()
        except SensorError as err:
            return {"error": str(err)}
        return {"chip": name, "inputs": [str(p) for p in inputs], "rule": rule}

    def close(self) -> None:
        pass


class HwmonEnergy:
    """Per-socket energy counters exposed through hwmon (e.g. amd_energy's Esocket)."""

    name = "hwmon"

    def __init__(self, sysfs_root: Path) -> None:
        self.sysfs_root = sysfs_root
        self._inputs: list[Path] | None = None

    def inputs(self) -> list[Path]:
        if self._inputs is None:
            chosen: list[Path] = []
            for chip in _chips(self.sysfs_root):
                try:
                    entries = sorted_numeric(
                        [p for p in chip.iterdir() if _ENERGY_INPUT.match(p.name)], "energy"
                    )
                except OSError:
                    continue
                labels = [_label(chip, p.name.removesuffix("_input")).lower() for p in entries]
                sockets = [
                    p
                    for p, lab in zip(entries, labels, strict=True)
                    if "socket" in lab or "package" in lab or "pkg" in lab
                ]
                if sockets:
                    chosen.extend(sockets)
                elif len(entries) == 1 and "core" not in labels[0]:
                    chosen.extend(entries)
            self._inputs = chosen
        return self._inputs

    def available(self) -> Availability:
        try:
            if not self.inputs():
                return Availability(
                    False,
                    f"no per-socket energyN_input under {self.sysfs_root}/class/hwmon "
                    "(AMD: `modprobe amd_energy` where the kernel has it)",
                )
            self.read()
        except Exception as err:  # detection never raises
            return unavailable(err)
        return Availability(True, f"{len(self.inputs())} socket energy counter(s)")

    def read(self) -> tuple[RawCounter, ...]:
        out = []
        for p in self.inputs():
            value = read_int(p)
            if value < 0:
                raise SensorError(f"{p}: negative energy {value}")
            out.append(RawCounter(value, _HWMON_ENERGY_MODULUS, 1e-6))
        return tuple(out)

    def describe(self) -> dict[str, object]:
        return {"inputs": [str(p) for p in self.inputs()]}

    def close(self) -> None:
        pass
