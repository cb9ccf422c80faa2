"""Subcommands of maxwell.physics: `maxwell sensors` and `maxwell doctor`.

`sensors` reads the chosen energy meter and thermometer twice, an interval apart,
and says where each figure came from. `doctor` gathers the readiness checks of
every hardware-facing package (physics here; membrane and memtrace through their
own `doctor_checks()`), plus Python and package versions. Both only read.
"""

from __future__ import annotations

import argparse
import importlib
import json
import math
import sys
from typing import Any

from maxwell.common import Commands, UsageError, add_root_args

# Runtime dependencies reported by `maxwell doctor` (pyproject's [project] list).
PACKAGES = (
    "numpy",
    "scipy",
    "psutil",
    "pydantic",
    "rich",
    "textual",
    "matplotlib",
    "prometheus-client",
    "platformdirs",
    "tomli-w",
    "pyarrow",
)


def register(commands: Commands) -> None:
    """Add this package's subcommands to the parser."""
    from maxwell.physics.plant import HW_CLASSES

    p = commands.top.add_parser(
        "sensors",
        help="read energy, power and die temperature (measured or modelled), twice",
        description="Read the energy meter and thermometer twice, --interval apart, and print "
        "energy (J, over the interval), power (W, from the delta) and temperature (°C), "
        "each with its source and whether it is measured or modelled.",
    )
    p.add_argument("--json", action="store_true", help="print one JSON object")
    p.add_argument(
        "--interval", type=float, default=1.0, metavar="S", help="seconds between reads (default 1)"
    )
    p.add_argument(
        "--hw-class",
        choices=sorted(HW_CLASSES),
        default="desktop",
        help="virtual plant profile (default desktop)",
    )
    p.add_argument(
        "--energy",
        default=None,
        metavar="SRC",
        help="force an energy source: powercap, msr, hwmon, model",
    )
    p.add_argument(
        "--temp",
        default=None,
        metavar="SRC",
        help="force a temperature source: msr, hwmon, thermal_zone, model",
    )
    add_root_args(p)
    p.set_defaults(func=_sensors)

    d = commands.top.add_parser(
        "doctor",
        help="check what this machine offers: sensors, containment, eBPF, versions",
        description="Readiness checks, each ✓ or ✗ with the fix. "
        "Exit 0 even when optional parts are missing.",
    )
    d.add_argument("--json", action="store_true", help="print a JSON list of {check, ok, detail}")
    d.add_argument(
        "--hw-class",
        choices=sorted(HW_CLASSES),
        default="desktop",
        help="virtual plant profile named in the physics lines",
    )
    add_root_args(d)
    d.set_defaults(func=_doctor)

    b = commands.bench.add_parser(
        "sensors",
        help="cost of one Sensors.sample() (the per-tick read): median and p99",
    )
    b.add_argument("--json", action="store_true", help="print one JSON object")
    b.add_argument("-n", type=int, default=2000, metavar="N", help="samples (default 2000)")
    b.add_argument("--hw-class", choices=sorted(HW_CLASSES), default="desktop")
    b.add_argument("--energy", default=None, metavar="SRC", help="force an energy source")
    b.add_argument("--temp", default=None, metavar="SRC", help="force a temperature source")
    add_root_args(b)
    b.set_defaults(func=_bench_sensors)


def _finite(x: float) -> float | None:
    return x if math.isfinite(x) else None


def _sensors(args: argparse.Namespace) -> int:
    import time

    from maxwell.physics import Roots, SensorUnavailable, probe

    if not (0.0 < args.interval <= 3600.0) or not math.isfinite(args.interval):
        raise UsageError(
            f"--interval {args.interval}: give seconds between 0 and 3600, e.g. --interval 1"
        )
    roots = Roots.from_env(args.sysfs_root, args.dev_root, args.procfs_root)
    try:
        sensors = probe(roots, args.hw_class, force_energy=args.energy, force_temp=args.temp)
    except (ValueError, SensorUnavailable) as err:
        raise UsageError(str(err)) from err
    try:
        first = sensors.sample(time.monotonic())
        time.sleep(args.interval)
        second = sensors.sample(time.monotonic())
    finally:
        sensors.close()
    rejected = sensors.rejected
    out: dict[str, Any] = {
        "interval_s": round(second.t_s - first.t_s, 6),
        "hw_class": sensors.hw_class,
        "energy": {
            "source": sensors.energy_source,
            "measured": sensors.energy_measured,
            "energy_j": _finite(second.energy_j),
            "power_w": _finite(second.power_w),
        },
        "temperature": {
            "source": sensors.temp_source,
            "measured": sensors.temp_measured,
            "temp_c": _finite(second.temp_c),
        },
        "busy_cores": round(second.busy_cores, 4),
        "idle_power_w": sensors.idle_power_w,
        "rejected": rejected,
    }
    if args.json:
        print(json.dumps(out))
        return 0

    def label(measured: bool) -> str:
        return "measured" if measured else "modelled"

    def fmt(x: float | None, spec: str, unit: str) -> str:
        return "N/A" if x is None else f"{x:{spec}} {unit}"

    e, t = out["energy"], out["temperature"]
    print(
        f"energy       {fmt(e['energy_j'], '.3f', 'J'):>14} over {out['interval_s']:.2f} s"
        f"   {e['source']} ({label(e['measured'])})"
    )
    print(
        f"power        {fmt(e['power_w'], '.2f', 'W'):>14}   {e['source']} ({label(e['measured'])})"
    )
    print(
        f"temperature  {fmt(t['temp_c'], '.1f', '°C'):>14}   {t['source']} ({label(t['measured'])})"
    )
    print(f"busy cores   {out['busy_cores']:>14.2f}   /proc/stat")
    if not sensors.energy_measured or not sensors.temp_measured:
        print(f"model: virtual plant, {sensors.hw_class} class; why no measured source:")
        for quantity, rows in rejected.items():
            for row in rows:
                print(f"  {quantity} {row['source']}: {row['reason']}")
    return 0


def _external_checks(module_name: str) -> list[Any]:
    """A package's own doctor lines, or one line saying they are not available yet."""
    from maxwell.common import Check

    short = module_name.rsplit(".", 1)[-1]
    try:
        module = importlib.import_module(module_name)
        fn = getattr(module, "doctor_checks", None)
        if fn is None:
            return [Check(short, False, f"{module_name}.doctor_checks() is not available yet")]
        return list(fn())
    except Exception as err:  # doctor reports, never crashes
        return [Check(short, False, f"{module_name} checks failed: {err!r}")]


def _doctor(args: argparse.Namespace) -> int:
    import platform
    from importlib import metadata

    from maxwell import __version__
    from maxwell.common import Check
    from maxwell.physics import Roots, doctor_checks

    roots = Roots.from_env(args.sysfs_root, args.dev_root, args.procfs_root)
    checks: list[Check] = [
        Check(
            "python",
            sys.version_info >= (3, 11),
            f"{platform.python_version()} ({sys.executable})"
            + ("" if sys.version_info >= (3, 11) else "; Maxwell needs Python 3.11 or newer"),
        ),
        Check("maxwell", True, __version__),
    ]
    for name in PACKAGES:
        try:
            checks.append(Check(f"package {name}", True, metadata.version(name)))
        except metadata.PackageNotFoundError:
            checks.append(Check(f"package {name}", False, "not installed: run `make setup`"))
    try:
        checks.extend(doctor_checks(roots, hw_class=args.hw_class))
    except Exception as err:  # doctor reports, never crashes
        checks.append(Check("physics", False, f"physics checks failed: {err!r}"))
    checks.extend(_external_checks("maxwell.membrane"))
    checks.extend(_external_checks("maxwell.memtrace"))
    if args.json:
        print(
            json.dumps([{"check": c.check, "ok": bool(c.ok), "detail": c.detail} for c in checks])
        )
        return 0
    for c in checks:
        print(f"{'✓' if c.ok else '✗'} {c.check}: {c.detail}")
    return 0


def _bench_sensors(args: argparse.Namespace) -> int:
    import time

    import numpy as np

    from maxwell.physics import Roots, SensorUnavailable, probe

    if args.n < 10:
        raise UsageError(f"-n {args.n}: give at least 10 samples, e.g. -n 2000")
    roots = Roots.from_env(args.sysfs_root, args.dev_root, args.procfs_root)
    try:
        sensors = probe(roots, args.hw_class, force_energy=args.energy, force_temp=args.temp)
    except (ValueError, SensorUnavailable) as err:
        raise UsageError(str(err)) from err
    costs_ns = np.empty(args.n, dtype=np.int64)
    try:
        sensors.sample(0.0)
        for i in range(args.n):
            # Simulated 1 s ticks: the cost measured is the reads and the plant step.
            t0 = time.perf_counter_ns()
            sensors.sample(float(i + 1))
            costs_ns[i] = time.perf_counter_ns() - t0
    finally:
        sensors.close()
    us = costs_ns / 1000.0
    out = {
        "bench": "sensors",
        "n": args.n,
        "energy_source": sensors.energy_source,
        "energy_measured": sensors.energy_measured,
        "temp_source": sensors.temp_source,
        "temp_measured": sensors.temp_measured,
        "sample_us_p50": round(float(np.median(us)), 2),
        "sample_us_p99": round(float(np.percentile(us, 99)), 2),
        "sample_us_max": round(float(us.max()), 2),
    }
    if args.json:
        print(json.dumps(out))
    else:
        print(
            f"Sensors.sample() ({sensors.energy_source}/{sensors.temp_source}), n={args.n}: "
            f"p50 {out['sample_us_p50']} µs, p99 {out['sample_us_p99']} µs, "
            f"max {out['sample_us_max']} µs"
        )
    return 0
