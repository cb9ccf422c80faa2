"""`maxwell run`, `maxwell demo`, `maxwell baseline` and `maxwell config`: the live
experiment commands.

`run_once` is the one way to run an experiment from code (the baseline command
and tests use it too); it returns the summary computed from the run database.
Progress and tables go to stderr/stdout through rich; `--json` keeps stdout to
exactly one JSON object.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import math
import shlex
import sys
import threading
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from maxwell.common import Commands, UsageError, add_root_args


def _load_config(path: str | None) -> Any:
    from maxwell.config import ConfigError, default_config, load

    try:
        return load(path) if path else default_config()
    except ConfigError as err:
        raise UsageError(str(err)) from None


def _roots(args: argparse.Namespace) -> Any:
    from maxwell.physics import Roots

    return Roots.from_env(args.sysfs_root, args.dev_root, args.procfs_root)


def _duration(args: argparse.Namespace, cfg: Any) -> float:
    """--duration if given (must be positive), else the config's [run] duration_s."""
    if args.duration is None:
        return float(cfg.run.duration_s)
    if args.duration <= 0:
        raise UsageError("--duration must be positive")
    return float(args.duration)


def _default_out(kind: str) -> Path:
    stamp = datetime.now(UTC).strftime("%Y%m%d-%H%M%S")
    return Path("runs") / f"{stamp}-{kind}"


def demo_out(args: argparse.Namespace, kind: str) -> Path:
    """The demo's output directory (--out or a new one); refused if it holds a run already."""
    out = Path(args.out) if args.out else _default_out(kind)
    for p in ("cfs", "maxwell"):
        if (out / p / "run.db").exists():
            raise UsageError(f"{out / p}/run.db exists: choose another --out directory")
    return out


def run_once(
    config: Any,
    *,
    policy: str,
    duration_s: float,
    out_dir: Path,
    roots: Any = None,
    prometheus_port: int | None = None,
    progress: bool = False,
    label: str = "",
    stop: threading.Event | None = None,
) -> dict[str, Any]:
    """Run one live experiment and return its summary (`maxwell.report.run_json`)."""
    for a in config.agents:
        if a.model is not None:  # refused before anything is created
            a.argv()
    from maxwell.physics import Roots
    from maxwell.report import run_json
    from maxwell.run.build import RunOptions, build_run

    bar = None
    on_tick = None
    if progress:
        from rich.console import Console
        from rich.progress import BarColumn, Progress, TextColumn, TimeRemainingColumn

        bar = Progress(
            TextColumn("[bold]{task.description}"),
            BarColumn(),
            TextColumn("{task.completed:>5.0f}/{task.total:.0f} s"),
            TimeRemainingColumn(),
            console=Console(stderr=True),
            transient=False,
        )
        task = bar.add_task(label or policy, total=duration_s)

        def on_tick(t_s: float, total_s: float) -> None:
            bar.update(task, completed=min(t_s, total_s))

    opts = RunOptions(
        policy=policy,
        duration_s=duration_s,
        out_dir=out_dir,
        roots=roots if roots is not None else Roots.from_env(),
        prometheus_port=prometheus_port,
        on_tick=on_tick,
        stop=stop,
    )
    if bar is not None:
        with bar:
            db = build_run(config, opts).run()
    else:
        db = build_run(config, opts).run()
    return run_json(db)


def _fmt(x: float | None, spec: str = ".3g") -> str:
    if x is None or (isinstance(x, float) and math.isnan(x)):
        return "—"
    return format(x, spec)


def _print_run(summary: dict[str, Any]) -> None:
    from rich.console import Console
    from rich.table import Table

    s = summary
    console = Console()
    console.print(
        f"[bold]{s['policy']}[/] run: {s['duration_s']:.0f} s, verified work {s['work_units']:,}, "
        f"energy {s['energy_j']:.1f} J ({s['energy_source']}), "
        f"work/J {s['work_per_j']:.4g}, peak {s['peak_temp_c']:.1f} °C ({s['temp_source']}), "
        f"mean price {s['mean_price']:.3g} cr/core-s"
    )
    t = Table("agent", "work", "energy J", "cpu s", "balance", "bytes freed", "died at s")
    for name, a in s["agents"].items():
        t.add_row(name, f"{a['work_units']:,}", _fmt(a["energy_j"], ".1f"), _fmt(a["cpu_s"], ".1f"),
                  _fmt(a["final_balance"], ".2f"), f"{a['bytes_freed']:,}",
                  _fmt(a["died_at_s"], ".0f"))
    console.print(t)
    console.print(f"database: {s['db']}")


def comparison_table(cfs: dict[str, Any], mx: dict[str, Any], gain: float) -> Any:
    from rich.table import Table

    e_label = cfs["energy_source"] if cfs["energy_source"] == mx["energy_source"] else "mixed"
    t_label = cfs["temp_source"] if cfs["temp_source"] == mx["temp_source"] else "mixed"
    t = Table(title=f"{cfs.get('scheduler') or 'Linux fair scheduler'} vs Maxwell "
                    f"({cfs['duration_s']:.0f} s each)")
    t.add_column("")
    t.add_column("cfs (baseline)", justify="right")
    t.add_column("maxwell", justify="right")
    rows = [
        ("verified work (units)", f"{cfs['work_units']:,}", f"{mx['work_units']:,}"),
        (f"energy (J, {e_label})", f"{cfs['energy_j']:.1f}", f"{mx['energy_j']:.1f}"),
        ("work per Joule", f"{cfs['work_per_j']:.4g}", f"{mx['work_per_j']:.4g}"),
        (f"peak temperature (°C, {t_label})", f"{cfs['peak_temp_c']:.1f}",
         f"{mx['peak_temp_c']:.1f}"),
        ("mean reserve price (cr/core-s)", f"{cfs['mean_price']:.3g}", f"{mx['mean_price']:.3g}"),
    ]
    for name in cfs["agents"]:
        a, b = cfs["agents"][name], mx["agents"].get(name, {})
        rows.append((f"{name}: CPU s", _fmt(a["cpu_s"], ".1f"), _fmt(b.get("cpu_s"), ".1f")))
        rows.append((f"{name}: final balance (cr)", _fmt(a["final_balance"], ".2f"),
                     _fmt(b.get("final_balance"), ".2f")))
        rows.append((f"{name}: died at (s)", _fmt(a["died_at_s"], ".0f"),
                     _fmt(b.get("died_at_s"), ".0f")))
    for r in rows:
        t.add_row(*r)
    t.caption = (f"gain in work per Joule: {gain:.2f}×  (energy and temperature are "
                 f"{e_label}; see README 'Physics')")
    return t


def _cmd_run(args: argparse.Namespace) -> int:
    cfg = _load_config(args.config)
    policy = args.policy or cfg.run.policy
    duration = _duration(args, cfg)
    out = Path(args.out) if args.out else _default_out(policy)
    if (out / "run.db").exists():
        raise UsageError(f"{out}/run.db exists: choose another --out directory")
    if args.tui:
        from maxwell.dashboard import run_with_dashboard

        stop = threading.Event()
        summary = run_with_dashboard(
            lambda: run_once(cfg, policy=policy, duration_s=duration, out_dir=out,
                             roots=_roots(args), prometheus_port=args.prometheus_port,
                             stop=stop),
            out / "run.db",
            on_interrupt=stop.set,
        )
    else:
        summary = run_once(cfg, policy=policy, duration_s=duration, out_dir=out,
                           roots=_roots(args), prometheus_port=args.prometheus_port,
                           progress=not args.json and sys.stderr.isatty(), label=policy)
    if args.json:
        print(json.dumps(summary))
    else:
        _print_run(summary)
    return 0


def run_demo(cfg: Any, duration: float, out: Path, roots: Any = None, progress: bool = False,
             tui: bool = False) -> dict[str, Any]:
    from maxwell.report import gain

    runs: dict[str, dict[str, Any]] = {}
    from maxwell.report import fair_scheduler_name

    labels = {"cfs": f"1/2 baseline: {fair_scheduler_name()} schedules",
              "maxwell": "2/2 Maxwell enforces"}
    for policy in ("cfs", "maxwell"):

        stop = threading.Event()

        def once(policy: str = policy, show: bool = progress and not tui,
                 stop: threading.Event = stop) -> dict[str, Any]:
            return run_once(cfg, policy=policy, duration_s=duration, out_dir=out / policy,
                            roots=roots, progress=show, label=labels[policy], stop=stop)

        if tui:
            from maxwell.dashboard import run_with_dashboard

            runs[policy] = run_with_dashboard(once, out / policy / "run.db",
                                              on_interrupt=stop.set)
        else:
            runs[policy] = once()
    from maxwell.report import foreign_warnings

    g = gain(runs["cfs"], runs["maxwell"])
    return {"gain": None if math.isnan(g) else g, "runs": runs,
            "warnings": foreign_warnings(runs)}


def _cmd_demo(args: argparse.Namespace) -> int:
    cfg = _load_config(args.config)
    duration = _duration(args, cfg)
    out = demo_out(args, "demo")
    show = not args.json
    if show:
        from rich.console import Console

        Console(stderr=True).print(
            f"Maxwell demo: the same agents and funding, {duration:.0f} s under Linux's "
            f"scheduler, then {duration:.0f} s under Maxwell's market. Output in {out}/"
        )
    result = run_demo(cfg, duration, out, roots=_roots(args), progress=show, tui=args.tui)
    for w in result["warnings"]:
        print(w, file=sys.stderr)
    report_md = None
    if not args.no_report:
        from maxwell.report import write_report

        report_md = write_report([out / "cfs", out / "maxwell"], out / "report")
    if report_md is not None:
        result["report"] = str(report_md)
    return print_demo(result, args.json, f"run databases: {out}/cfs/run.db, {out}/maxwell/run.db")


def print_demo(result: dict[str, Any], as_json: bool, footer: str) -> int:
    """The demo's output, live or simulated: one JSON object, or the table and where things are."""
    if as_json:
        print(json.dumps(result))
        return 0
    from rich.console import Console

    console = Console()
    g = result["gain"]
    console.print(comparison_table(result["runs"]["cfs"], result["runs"]["maxwell"],
                                   float("nan") if g is None else g))
    if result.get("report") is not None:
        console.print(f"report with plots: {result['report']}")
    console.print(footer)
    return 0


def _cmd_bench_supervisor(args: argparse.Namespace) -> int:
    from maxwell.run.bench import cmd_bench_supervisor

    return cmd_bench_supervisor(args)


def _cmd_config(args: argparse.Namespace) -> int:
    from maxwell.config import default_text

    if args.print_default:
        sys.stdout.write(default_text())
        return 0
    if args.check:
        cfg = _load_config(args.check)
        print(f"{args.check}: valid ({len(cfg.agents)} agents, policy {cfg.run.policy})")
        return 0
    raise UsageError("say --print-default or --check FILE")


def register(commands: Commands) -> None:
    p = commands.top.add_parser("run", help="one live run; writes DIR/run.db")
    p.add_argument("--config", metavar="FILE.toml")
    p.add_argument("--policy", choices=("cfs", "maxwell"))
    p.add_argument("--duration", type=float, metavar="S")
    p.add_argument("--out", metavar="DIR")
    p.add_argument("--json", action="store_true", help="print the summary as one JSON object")
    p.add_argument("--tui", action="store_true", help="show the live dashboard")
    p.add_argument("--prometheus-port", type=int, metavar="PORT",
                   help="serve /metrics on 127.0.0.1:PORT during the run")
    add_root_args(p)
    p.set_defaults(func=_cmd_run)

    d = commands.top.add_parser("demo", help="baseline (cfs) then maxwell, and the comparison")
    d.add_argument("--config", metavar="FILE.toml")
    d.add_argument("--duration", type=float, metavar="S", help="seconds per run (default 60)")
    d.add_argument("--out", metavar="DIR")
    d.add_argument("--json", action="store_true", help="print one JSON object")
    d.add_argument("--tui", action="store_true", help="show the live dashboard during each run")
    d.add_argument("--no-report", action="store_true", help="skip report.md and plots")
    add_root_args(d)
    d.set_defaults(func=_cmd_demo)

    b = commands.top.add_parser(
        "baseline",
        help="the control experiment: the demo cast under the Linux fair scheduler (EEVDF on"
        " kernels >= 6.6, CFS before), then efficiency",
        description="Run the demo cast with policy cfs (Linux schedules; Maxwell only meters, "
        "1 Hz) and print verified work (primes) per Joule and the share of energy attributed "
        "to the least productive agent.",
    )
    b.add_argument("--duration", type=float, default=300.0, metavar="S", help="seconds (300)")
    b.add_argument(
        "--out", metavar="DIR", default=None, help="run directory (default: runs/STAMP-baseline)"
    )
    b.add_argument("--config", metavar="FILE", default=None, help="experiment TOML (default: demo)")
    b.add_argument("--json", action="store_true", help="print one JSON object")
    b.set_defaults(func=_baseline)

    bs = commands.bench.add_parser(
        "supervisor", help="the live supervisor's cost with N SDK agents (start-up, lateness, CPU)")
    bs.add_argument("--agents", type=int, default=64, metavar="N", help="SDK agents (64)")
    bs.add_argument("--duration", type=float, default=30.0, metavar="S", help="seconds (30)")
    bs.add_argument("--slots", type=int, default=None, metavar="K",
                    help="slots for sale (default: the config's, one per CPU)")
    bs.add_argument("--grace", type=float, default=5.0, metavar="S",
                    help="start-up grace before a silent agent may be frozen (5)")
    bs.add_argument("--agent", metavar="FILE", help="agent program (default examples/sdk_agent.py)")
    bs.add_argument("--jail", choices=("auto", "bwrap", "drop", "user", "off"), default=None,
                    help="jail mode for the agents (default: the config default, auto)")
    bs.add_argument("--out", metavar="DIR", help="run directory (default: a temporary one)")
    bs.add_argument("--json", action="store_true", help="print one JSON object")
    bs.set_defaults(func=_cmd_bench_supervisor)

    c = commands.top.add_parser("config", help="print or check an experiment config")
    c.add_argument("--print-default", action="store_true", help="print the built-in demo config")
    c.add_argument("--check", metavar="FILE.toml", help="validate a config file")
    c.set_defaults(func=_cmd_config)


def _baseline(args: argparse.Namespace) -> int:
    from maxwell import config as config_mod
    from maxwell.report import load_run, parasite, write_report

    if args.duration <= 0:
        raise UsageError(f"--duration must be positive seconds, got {args.duration}")
    if args.config:
        try:
            cfg = config_mod.load(args.config)
        except (OSError, ValueError) as err:
            raise UsageError(f"cannot use --config {args.config}: {err}") from err
    else:
        cfg = config_mod.default_config()
    stamp = datetime.now(UTC).strftime("%Y%m%d-%H%M%S")
    out = Path(args.out) if args.out else Path("runs") / f"{stamp}-baseline"
    if (out / "run.db").exists():
        raise UsageError(f"{out}/run.db exists: choose another --out directory")
    result: dict[str, Any] = run_once(
        cfg,
        policy="cfs",
        duration_s=args.duration,
        out_dir=out,
        progress=not args.json,
        label="baseline: the Linux fair scheduler schedules",
    )
    db = Path(result.get("db") or out)
    data = load_run(db)
    s = data.summary
    p = parasite(s)
    report = write_report(
        [db],
        (db if db.is_dir() else db.parent) / "report",
        command=f"maxwell report {shlex.quote(str(db))}",
    )
    if args.json:
        print(
            json.dumps(
                {
                    "run": result,
                    "primes_per_j": s.work_per_j,
                    "parasite": None if p is None else dataclasses.asdict(p),
                    "report": str(report),
                },
                default=str,
            )
        )
        return 0
    print(
        f"baseline: policy {s.policy}, {s.duration_s:g} s, {s.tick_count} ticks; "
        f"run database {s.db}"
    )
    print(f"energy {s.energy_label}; temperature {s.temp_label}")
    wpj = "n/a (no energy recorded)" if s.work_per_j is None else f"{s.work_per_j:.4g}"
    print(f"efficiency: {s.work_units:,} verified primes / {s.energy_j:.4g} J = {wpj} primes per J")
    if p is None:
        print("parasite: no agent was attributed energy")
    else:
        print(
            f"parasite (least verified work per attributed J): {p.agent} — "
            f"{p.share_of_attributed:.1%} of the energy attributed to agents "
            f"({p.share_of_total:.1%} of all energy), {p.work_per_j:.4g} primes per J"
        )
    print(f"report: {report}")
    return 0
