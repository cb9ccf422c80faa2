"""Subcommands of maxwell.control: `calibrate` and `bench control`.

`maxwell calibrate` runs a step test on this machine's plant (CPU burners on the
allowed cores, read through `maxwell.physics`), fits it and writes the SIMC gains
as a profile to the user config dir (`--dry-run`: print only; `--profile PATH`:
elsewhere; `--simulate`: the hardware class's model plant in simulated time).
`maxwell bench control` compares the calibrated loop with power_allocator's gains
on each hardware class's model plant. Heavy imports happen inside the handlers.
"""

from __future__ import annotations

import argparse
import json
import math
import sys
from pathlib import Path
from typing import Any

from maxwell.common import Commands, UsageError, add_root_args

HW_CLASS_NAMES = ("laptop", "desktop", "server")


def register(commands: Commands) -> None:
    """Add this package's subcommands to the parser."""
    cal = commands.top.add_parser(
        "calibrate",
        help="step-test this machine's thermal plant and store PID gains for it",
        description="Idle, then CPU burners on the allowed cores while sampling the die"
        " temperature; fit first order plus dead time (with the die's fast mode) and"
        " derive SIMC gains; write them as this machine's profile.",
    )
    cal.add_argument("--json", action="store_true", help="print one JSON object")
    cal.add_argument(
        "--duration", type=float, default=120.0, metavar="S",
        help="seconds of load after the idle period (default 120)",
    )
    cal.add_argument("--idle", type=float, default=10.0, metavar="S", help="idle seconds first")
    cal.add_argument("--sample", type=float, default=0.25, metavar="S", help="sampling interval")
    cal.add_argument("--hw-class", choices=HW_CLASS_NAMES, default="desktop",
                     help="hardware class of the virtual plant when no sensor is measured")
    cal.add_argument("--cores", type=int, default=None,
                     help="burner processes (default: every CPU this process may use)")
    cal.add_argument("--tick", type=float, default=1.0, metavar="S", help="controller tick")
    cal.add_argument("--price-per-core", type=float, default=1.0, metavar="CR",
                     help="credits per core-second of reserve that shed one core (default 1)")
    cal.add_argument("--relay", type=float, default=0.0, metavar="S",
                     help="also run a relay-feedback test for S seconds and report it")
    cal.add_argument("--simulate", action="store_true",
                     help="calibrate the hardware class's model plant in simulated time")
    cal.add_argument("--dry-run", action="store_true", help="print the profile, write nothing")
    cal.add_argument("--profile", type=Path, default=None, metavar="PATH",
                     help="profile file (default: the user config dir)")
    add_root_args(cal)
    cal.set_defaults(func=_calibrate)

    bench = commands.bench.add_parser(
        "control",
        help="closed-loop step responses: calibrated gains vs power_allocator defaults",
    )
    bench.add_argument("--json", action="store_true", help="print one JSON object")
    bench.add_argument("--hw-class", choices=HW_CLASS_NAMES, action="append", default=None,
                       help="only this class (repeatable; default: all)")
    bench.add_argument("--tick", type=float, default=1.0, metavar="S", help="controller tick")
    bench.add_argument("--price-per-core", type=float, default=1.0, metavar="CR")
    bench.set_defaults(func=_bench)


def _jsonable(x: Any) -> Any:
    """Non-finite floats become null (strict JSON)."""
    if isinstance(x, float):
        return x if math.isfinite(x) else None
    if isinstance(x, dict):
        return {k: _jsonable(v) for k, v in x.items()}
    if isinstance(x, list | tuple):
        return [_jsonable(v) for v in x]
    return x


def _positive(name: str, value: float) -> None:
    if not (value > 0 and math.isfinite(value)):
        raise UsageError(f"{name} must be a positive number of seconds/credits, got {value}")


def _bench(args: argparse.Namespace) -> int:
    from maxwell.control.bench import format_bench, run_bench

    _positive("--tick", args.tick)
    _positive("--price-per-core", args.price_per_core)
    classes = tuple(args.hw_class) if args.hw_class else HW_CLASS_NAMES
    result = run_bench(classes, args.tick, args.price_per_core)
    if args.json:
        print(json.dumps(_jsonable(result)))
    else:
        print(format_bench(result))
    return 0 if result["ok"] else 1


def _calibrate(args: argparse.Namespace) -> int:
    import datetime
    import os

    from maxwell.control.calibrate import BurnerRig, SimRig, calibrate
    from maxwell.control.plant import class_plant, hw_params
    from maxwell.control.profile import Machine, Profile, current_machine, save_profile

    for name in ("duration", "idle", "sample", "tick", "price_per_core"):
        _positive("--" + name.replace("_", "-"), getattr(args, name))
    if args.relay < 0:
        raise UsageError("--relay must be >= 0 seconds")
    if args.duration < 10 * args.sample:
        raise UsageError("--duration must cover at least 10 samples; raise it or lower --sample")

    sources: dict[str, Any]
    if args.simulate:
        cores = args.cores or hw_params(args.hw_class).cores
        plant, plant_source = class_plant(args.hw_class, 0.0)
        # The "machine" is the model: such a profile loads only where that model is named.
        machine = Machine(f"model:{args.hw_class}", cores, "model", "model")
        sources = {"plant": plant_source, "simulated": True}
        cal = calibrate(
            SimRig(plant, float(cores)), idle_s=args.idle, load_s=args.duration,
            sample_s=args.sample, tick_s=args.tick, price_per_core=args.price_per_core,
            relay_s=args.relay,
        )
    else:
        import time

        from maxwell.physics import Roots, probe

        roots = Roots.from_env(args.sysfs_root, args.dev_root, args.procfs_root)
        allowed = len(os.sched_getaffinity(0))
        cores = args.cores or allowed
        if not 1 <= cores <= allowed:
            raise UsageError(f"--cores must be between 1 and {allowed} (CPUs this process may use)")
        try:
            sensors = probe(roots, args.hw_class, now_s=time.monotonic())
        except ValueError as err:
            raise UsageError(str(err)) from err
        machine = current_machine(roots.procfs, sensors.energy_source, sensors.temp_source)
        sources = {"describe": sensors.describe(), "simulated": False}
        if not args.json:
            print(
                f"calibrating: {cores} burner(s), temperature from {sensors.temp_source}"
                f" ({'measured' if sensors.temp_measured else 'modelled'}),"
                f" {args.idle:g} s idle + {args.duration:g} s load"
                + (f" + {args.relay:g} s relay" if args.relay else ""),
                file=sys.stderr,
            )
        try:
            with BurnerRig(sensors, cores) as rig:
                cal = calibrate(
                    rig, idle_s=args.idle, load_s=args.duration, sample_s=args.sample,
                    tick_s=args.tick, price_per_core=args.price_per_core, relay_s=args.relay,
                )
        except ValueError as err:
            print(f"maxwell: calibration failed: {err}", file=sys.stderr)
            return 1
        finally:
            sensors.close()

    now = datetime.datetime.now(datetime.UTC).isoformat(timespec="seconds")
    profile = Profile(
        machine=machine,
        gains=cal.simc.gains,
        hw_class=args.hw_class,
        created_at=now,
        tick_s=args.tick,
        price_per_core=args.price_per_core,
        fit={k: float(v) for k, v in cal.fit.as_dict().items()},
        simc=cal.simc.as_dict(),
        test={
            "idle_s": args.idle, "load_s": args.duration, "sample_s": args.sample,
            "burner_cores": cores, "samples": len(cal.record.t_s),
            "simulated": bool(args.simulate),
        },
    )
    written: str | None = None
    if not args.dry_run:
        written = str(save_profile(profile, args.profile))
    if args.json:
        out = {
            "profile": profile.to_toml_dict(),
            "written": written,
            "relay": cal.relay.as_dict() if cal.relay else None,
            "relay_zn_gains": cal.relay_gains,
            "sources": sources,
        }
        print(json.dumps(_jsonable(out), default=str))
        return 0
    f = cal.fit
    print(
        f"plant: k = {f.gain_c_per_core:.3g} °C per core, τ = {f.tau_s:.1f} s,"
        f" θ = {f.theta_s:.2f} s, fast share {f.fast_fraction:.2f} (τ_f {f.tau_fast_s:.2f} s),"
        f" rmse {f.rmse_c:.3f} °C over {f.n_samples} samples"
    )
    g = cal.simc.gains
    print(
        f"SIMC: K_c = {cal.simc.kc_cores_per_c:.4g} cores/°C, τ_I = {cal.simc.tau_i_s:.3g} s,"
        f" τ_c = {cal.simc.tau_c_s:.3g} s → kp = {g.kp:.4g}, ki = {g.ki:.4g}, kd = {g.kd:.4g}"
        f" (price_per_core {args.price_per_core:g})"
    )
    if args.relay:
        if cal.relay is None:
            print("relay: no sustained oscillation in the time given (raise --relay)")
        else:
            r = cal.relay
            print(
                f"relay: K_u = {r.ku_cores_per_c:.4g} cores/°C, T_u = {r.period_s:.2f} s"
                f" (a = {r.amplitude_c:.3g} °C); Ziegler–Nichols: {cal.relay_gains}"
            )
    if args.dry_run:
        print(profile.to_toml(), end="")
    else:
        print(f"profile written to {written}")
    return 0
