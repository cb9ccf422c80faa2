"""`maxwell sim` (a simulated run, or `--calibrate`) and `maxwell bench sim`."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

from maxwell.common import Commands, UsageError


def _calibration(args: argparse.Namespace) -> Any:
    from maxwell.sim import CalibrationError, load

    try:
        return load(Path(args.calibration) if args.calibration else None)
    except CalibrationError as err:
        raise UsageError(f"--calibration: {err}") from None


def _load(args: argparse.Namespace) -> dict[str, Any]:
    """The simulated host's load besides the agents, from the options."""
    if args.foreign_cores is not None and args.foreign_cores < 0:
        raise UsageError("--foreign-cores must be >= 0")
    if args.foreign_from is None:
        return {"foreign_cores": float(args.foreign_cores or 0.0)}
    from maxwell.record import SchemaError
    from maxwell.sim.calibration import load_series

    try:
        foreign, overhead = load_series(Path(args.foreign_from))
    except (FileNotFoundError, SchemaError) as err:
        raise UsageError(f"--foreign-from: {err}") from None
    return {"foreign_series": foreign, "overhead_series": overhead}


def sim_once(cfg: Any, args: argparse.Namespace, out: Path, policy: str | None,
             duration: float | None) -> dict[str, Any]:
    """One simulated run; returns its summary (the RUN object of `maxwell run --json`)."""
    from maxwell.config import ConfigError
    from maxwell.report import run_json
    from maxwell.sim import SimOptions, run_sim

    load = _load(args)
    if args.cpus is not None and args.cpus <= 0:
        raise UsageError("--cpus must be positive")
    opts = SimOptions(out_dir=out, policy=policy, duration_s=duration,
                      calibration=_calibration(args), cpus=args.cpus, **load)
    try:
        db = run_sim(cfg, opts)
    except ConfigError as err:
        raise UsageError(str(err)) from None
    assert db is not None
    summary = run_json(db)
    summary["simulated"] = True
    return summary


def sim_demo(cfg: Any, args: argparse.Namespace, out: Path, duration: float) -> dict[str, Any]:
    """`maxwell demo --sim`: both policies simulated; the shape of `maxwell demo --json`."""
    from maxwell.report import foreign_warnings, gain

    runs = {p: sim_once(cfg, args, out / p, p, duration) for p in ("cfs", "maxwell")}
    g = gain(runs["cfs"], runs["maxwell"])
    return {"gain": None if g != g else g, "runs": runs, "warnings": foreign_warnings(runs),
            "simulated": True}


def _cmd_sim(args: argparse.Namespace) -> int:
    if args.calibrate:
        return _cmd_calibrate(args)
    if args.replay:
        return _cmd_replay(args)
    from maxwell.run._cli import _default_out, _duration, _load_config, _print_run

    cfg = _load_config(args.config)
    duration = _duration(args, cfg)
    out = Path(args.out) if args.out else _default_out("sim")
    if (out / "run.db").exists():
        raise UsageError(f"{out}/run.db exists: choose another --out directory")
    summary = sim_once(cfg, args, out, args.policy, duration)
    if args.json:
        print(json.dumps(summary))
    else:
        _print_run(summary)
        print("simulated run (modelled agents, host and physics); calibration: "
              f"{_calibration(args).source}")
    return 0


def _cmd_calibrate(args: argparse.Namespace) -> int:
    from maxwell.sim import calibration as cal

    if not args.json:
        print("measuring the built-in Scientist on this machine (a few seconds)...",
              file=sys.stderr)
    result = cal.measure()
    if args.from_run:
        try:
            result = cal.from_runs(result, [Path(p) for p in args.from_run])
        except (FileNotFoundError, cal.CalibrationError) as err:
            raise UsageError(f"--from-run: {err}") from None
    path = cal.save(result, Path(args.calibration) if args.calibration else None)
    if args.json:
        from dataclasses import asdict

        print(json.dumps({"path": str(path), **asdict(result)}))
    else:
        print(f"calibration written to {path}: {result.sieve_numbers_per_cpu_s:.3g} numbers "
              f"per CPU-second, start-up {result.scientist_startup_cpu_s:.3f} CPU-s")
    return 0


def _cmd_replay(args: argparse.Namespace) -> int:
    from maxwell.run._cli import _default_out
    from maxwell.sim.replay import replay_demo

    live = Path(args.replay)
    if not all((live / p / "run.db").is_file() for p in ("cfs", "maxwell")):
        raise UsageError(f"--replay: {live} is not a demo directory (needs cfs/run.db and "
                         "maxwell/run.db)")
    out = Path(args.out) if args.out else _default_out("replay")
    if any((out / p / "run.db").exists() for p in ("cfs", "maxwell")):
        raise UsageError(f"{out} already holds runs: choose another --out directory")
    result = replay_demo(live, _calibration(args), out)
    if args.json:
        print(json.dumps(result))
        return 0
    for policy, r in result["policies"].items():
        print(f"{policy}: deaths live {r['live_deaths']} / simulated {r['sim_deaths']}; "
              f"work per J live {r['live_work_per_j']:.4g} / simulated {r['sim_work_per_j']:.4g}")
    print(f"gain live {result['live_gain']:.3f}, simulated {result['sim_gain']:.3f} "
          f"({100 * result['gain_rel_diff']:.1f} % apart); within the bar: {result['ok']}")
    return 0


def _cmd_bench(args: argparse.Namespace) -> int:
    from maxwell.sim.bench import bench_once, scaling

    try:
        ns = [int(x) for x in str(args.agents).split(",")]
    except ValueError:
        raise UsageError("--agents takes N or N1,N2,... (integers)") from None
    if any(n < 1 for n in ns) or args.ticks < 1:
        raise UsageError("--agents and --ticks must be >= 1")
    results = [bench_once(n, args.ticks, args.cpus, args.record) for n in ns]
    out: dict[str, Any] = {"runs": results, **scaling(results)}
    if args.json:
        print(json.dumps(out))
        return 0
    for r in results:
        print(f"{r['agents']:>8} agents × {r['ticks']} ticks on {r['cpus']} cores: "
              f"{r['ms_per_tick']:.2f} ms/tick ({r['agent_ticks_per_s']:,} agent-ticks/s wall), "
              f"{r['cpu_ms_per_tick']:.2f} CPU-ms/tick ({r['agent_ticks_per_cpu_s']:,} "
              "agent-ticks per CPU-second)")
    if "loglog_slope" in out:
        print(f"cost per tick grows as N^{out['loglog_slope']}")
    return 0


def add_sim_args(p: argparse.ArgumentParser) -> None:
    """The simulated host's options (shared with `maxwell demo --sim`)."""
    p.add_argument("--calibration", metavar="FILE.json",
                   help="calibration to use or write (default: the user's, if any)")
    p.add_argument("--cpus", type=float, metavar="N",
                   help="cores of the simulated host (default: the config's slots)")
    p.add_argument("--foreign-cores", type=float, metavar="X",
                   help="CPU load outside the run, in cores (default 0)")
    p.add_argument("--foreign-from", metavar="RUN_DIR",
                   help="replay the load a live run recorded besides its agents (its "
                        "supervisor's and other processes'), tick by tick")


def _cmd_demo_sim(args: argparse.Namespace) -> int:
    """`maxwell demo --sim`: the live demo's command, both runs simulated."""
    from maxwell.run._cli import _duration, _load_config, demo_out, print_demo

    cfg = _load_config(args.config)
    duration = _duration(args, cfg)
    out = demo_out(args, "demo-sim")
    result = sim_demo(cfg, args, out, duration)
    if not args.no_report:
        from maxwell.report import write_report

        result["report"] = str(write_report([out / "cfs", out / "maxwell"], out / "report"))
    return print_demo(result, args.json,
                      f"SIMULATED (modelled agents and host; calibration: "
                      f"{_calibration(args).source}); run databases: {out}/cfs/run.db, "
                      f"{out}/maxwell/run.db")


def _add_demo_sim(commands: Commands) -> None:
    """`--sim` on the live `maxwell demo` (registered here: the shell knows no simulator)."""
    demo = commands.top.choices.get("demo")
    if demo is None:
        return
    live = demo.get_default("func")
    demo.add_argument("--sim", action="store_true",
                      help="simulate both runs (maxwell sim: modelled agents and host; seconds)")
    add_sim_args(demo)

    def func(args: argparse.Namespace) -> int:
        return _cmd_demo_sim(args) if args.sim else int(live(args))

    demo.set_defaults(func=func)


def register(commands: Commands) -> None:
    p = commands.top.add_parser("sim", help="a simulated run (same loop and economy, modelled "
                                "agents and host); writes DIR/run.db")
    p.add_argument("--config", metavar="FILE.toml")
    p.add_argument("--policy", choices=("cfs", "maxwell"))
    p.add_argument("--duration", type=float, metavar="S")
    p.add_argument("--out", metavar="DIR")
    p.add_argument("--json", action="store_true", help="print the summary as one JSON object")
    p.add_argument("--calibrate", action="store_true",
                   help="measure the built-in agents here and write the calibration file")
    p.add_argument("--from-run", action="append", metavar="RUN_DIR",
                   help="with --calibrate: also read spawn → hello delays from live runs")
    p.add_argument("--replay", metavar="DEMO_DIR",
                   help="simulate a live `maxwell demo` (its configs, durations and foreign "
                        "load) and compare the outcomes")
    add_sim_args(p)
    p.set_defaults(func=_cmd_sim)

    b = commands.bench.add_parser("sim", help="simulator throughput: agent-ticks per second")
    b.add_argument("--agents", default="100000", metavar="N[,N...]")
    b.add_argument("--ticks", type=int, default=20, metavar="T")
    b.add_argument("--cpus", type=int, metavar="K", help="cores and slots (default max(2, N/100))")
    b.add_argument("--record", choices=("none", "ticks"), default="none")
    b.add_argument("--json", action="store_true")
    b.set_defaults(func=_cmd_bench)
    _add_demo_sim(commands)
