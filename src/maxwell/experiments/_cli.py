"""Subcommands of maxwell.experiments: `experiment list`, `compare` and `sweep`.

`maxwell experiment poa` (the market's) sits beside these in the same group. Heavy
imports (numpy, scipy, matplotlib, dask) happen inside the handlers.
"""

from __future__ import annotations

import argparse
import json
import math
import sys
from pathlib import Path
from typing import Any

from maxwell.common import Commands, UsageError

MIN_SIM_SEEDS = 30
LIVE_QUICK_SEEDS = 5
LIVE_FULL_SEEDS = 10


def register(commands: Commands) -> None:
    """Add this package's subcommands to the parser."""
    lst = commands.experiment.add_parser(
        "list", help="the shipped scenarios",
        description="Names of the scenarios shipped with Maxwell (package data TOML);"
        " --show NAME prints one so it can be copied and edited.")
    lst.add_argument("--json", action="store_true", help="print one JSON object")
    lst.add_argument("--show", metavar="NAME", help="print the scenario file NAME")
    lst.set_defaults(func=_list)

    cmp_ = commands.experiment.add_parser(
        "compare", help="a scenario under the baseline ladder, seeds, 95 % intervals",
        description="Run one scenario under each policy for N seeds (simulated with --sim,"
        " else live on this machine) and print medians with bootstrap 95 % intervals,"
        " the ratio to the oracle paired by seed, and whether Maxwell's interval lies"
        " above each baseline's. See docs/experiments.md.")
    cmp_.add_argument("--scenario", required=True, help="a shipped name or a .toml path")
    cmp_.add_argument("--sim", action="store_true", help="simulate (default: live runs)")
    cmp_.add_argument("--seeds", type=int, default=None,
                      help=f"repetitions (default {MIN_SIM_SEEDS} simulated,"
                      f" {LIVE_QUICK_SEEDS} live; --full: {LIVE_FULL_SEEDS})")
    cmp_.add_argument("--full", action="store_true", help="live: the full mode (10 seeds,"
                      " the scenario's whole duration)")
    cmp_.add_argument("--policies", default=None,
                      help="comma-separated (default: the whole ladder)")
    cmp_.add_argument("--out", metavar="DIR", default=None,
                      help="write compare.json, report.md, plots and run databases here")
    cmp_.add_argument("--json", action="store_true", help="print one JSON object")
    cmp_.add_argument("--first-seed", type=int, default=1, help="seeds are FIRST..FIRST+N-1")
    cmp_.set_defaults(func=_compare)

    lad = commands.experiment.add_parser(
        "ladder", help="one table across scenarios from compare --out directories",
        description="Read the compare.json of each directory and print, per scenario, each"
        " policy's value per J as a fraction of the oracle's and Maxwell's verdict against"
        " the watchdog and the weights baselines.")
    lad.add_argument("dirs", nargs="+", metavar="DIR", help="compare --out directories")
    lad.add_argument("--table", choices=("summary", "policies", "readme"), default="summary",
                     help="summary: × oracle with intervals and Maxwell's verdicts (default);"
                     " policies: every policy's × oracle / s above setpoint / false kills;"
                     " readme: the README's short table")
    lad.add_argument("--link-root", metavar="PATH",
                     help="policies table: link each scenario to PATH/NAME/report.md")
    lad.set_defaults(func=_ladder)

    mg = commands.experiment.add_parser(
        "merge", help="replace some policies of a compare result by a re-run of them",
        description="Read BASE/compare.json and REDO/compare.json (same scenario, mode and"
        " seeds), keep BASE's runs of the policies REDO did not run, and write the summary"
        " of the union (compare.json, report.md, plots) to --out.")
    mg.add_argument("base", metavar="BASE")
    mg.add_argument("redo", metavar="REDO")
    mg.add_argument("--out", metavar="DIR", required=True)
    mg.add_argument("--json", action="store_true", help="print one JSON object")
    mg.set_defaults(func=_merge)

    sw = commands.experiment.add_parser(
        "sweep", help="scenario × parameter values × seeds on a Dask cluster",
        description="Simulate every combination of the --set values for N seeds, on a Dask"
        " cluster (--cluster ADDRESS), a local one started and stopped here"
        " (--cluster local), or in this process (no --cluster).")
    sw.add_argument("--scenario", required=True)
    sw.add_argument("--sim", action="store_true", help="simulate (required: sweeps are simulated)")
    sw.add_argument("--seeds", type=int, default=MIN_SIM_SEEDS)
    sw.add_argument("--set", dest="sets", action="append", default=[], metavar="KEY=V1,V2",
                    help="a scenario key and its values (repeatable), e.g."
                    " market.landauer_lambda=0,1e13,1e14 or cast.miner.funds=10,30")
    sw.add_argument("--policies", default="maxwell", help="comma-separated (default maxwell)")
    sw.add_argument("--cluster", default=None, metavar="ADDRESS|local",
                    help="a Dask scheduler address (tcp://host:8786) or 'local'")
    sw.add_argument("--workers", type=int, default=2, help="--cluster local: worker processes")
    sw.add_argument("--verify", action="store_true",
                    help="with --cluster: run the grid again in this process and report"
                    " whether every number matches exactly (matches_in_process)")
    sw.add_argument("--out", metavar="DIR", default=None,
                    help="write sweep.json, report plots here")
    sw.add_argument("--json", action="store_true", help="print one JSON object")
    sw.set_defaults(func=_sweep)


def _list(args: argparse.Namespace) -> int:
    from maxwell.experiments.scenario import list_scenarios, scenario_text

    if args.show:
        sys.stdout.write(scenario_text(args.show))
        return 0
    names = list_scenarios()
    if args.json:
        print(json.dumps({"scenarios": names}))
    else:
        from maxwell.experiments.scenario import load_scenario

        for n in names:
            s = load_scenario(n)
            live = "live+sim" if s.live_capable else "sim"
            print(f"{n:<16} {live:<8} {s.doc.scenario.description}")
    return 0


def _progress(quiet: bool) -> tuple[Any, Any]:
    """(callback, closer) drawing a progress bar on stderr."""
    from rich.console import Console
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

    console = Console(stderr=True)
    if quiet and not console.is_terminal:
        return None, lambda: None
    bar = Progress(TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(),
                   TimeElapsedColumn(), console=console, transient=True)
    bar.start()
    task = bar.add_task("runs", total=None)

    def cb(done: int, total: int, what: str) -> None:
        bar.update(task, completed=done, total=total, description=what)

    return cb, bar.stop


def _policies(text: str | None) -> list[str]:
    from maxwell.experiments.policies import LADDER, check_policies

    return check_policies(text.split(",")) if text else list(LADDER)


def _compare(args: argparse.Namespace) -> int:
    from maxwell.experiments.scenario import load_scenario

    scn = load_scenario(args.scenario)
    policies = _policies(args.policies)
    if args.seeds is not None and args.seeds < 1:
        raise UsageError("--seeds must be >= 1")
    out = Path(args.out) if args.out else None
    if out is not None and (out / "compare.json").exists():
        raise UsageError(f"--out {out}: compare.json exists; choose another directory")
    cb, stop = _progress(args.json)
    try:
        if args.sim:
            from maxwell.experiments.compare import compare_sim

            seeds = list(range(args.first_seed, args.first_seed + (args.seeds or MIN_SIM_SEEDS)))
            result = compare_sim(scn, policies, seeds, progress=cb, record_dir=out)
        else:
            from maxwell.experiments.live import compare_live

            n = args.seeds or (LIVE_FULL_SEEDS if args.full else LIVE_QUICK_SEEDS)
            seeds = list(range(args.first_seed, args.first_seed + n))
            result = compare_live(scn, policies, seeds, full=args.full, progress=cb,
                                  out_dir=out)
    finally:
        stop()
    if out is not None:
        from maxwell.experiments.report import write_report

        out.mkdir(parents=True, exist_ok=True)
        (out / "compare.json").write_text(json.dumps(result, indent=1) + "\n")
        write_report(result, out)
    if args.json:
        print(json.dumps(_clean(result)))
    else:
        from maxwell.experiments.report import markdown_table

        print(markdown_table(result))
    return 0


def _clean(x: Any) -> Any:
    """JSON without NaN/inf (null instead)."""
    if isinstance(x, float):
        return x if math.isfinite(x) else None
    if isinstance(x, dict):
        return {k: _clean(v) for k, v in x.items()}
    if isinstance(x, list | tuple):
        return [_clean(v) for v in x]
    return x


def _ladder(args: argparse.Namespace) -> int:
    from maxwell.experiments.report import ladder_by_policy, ladder_markdown, ladder_readme

    results = [_read_result(d) for d in args.dirs]
    if args.table == "policies":
        print(ladder_by_policy(results, args.link_root))
    elif args.table == "readme":
        print(ladder_readme(results))
    else:
        print(ladder_markdown(results))
    return 0


def _read_result(d: str) -> Any:
    p = Path(d) / "compare.json"
    try:
        return json.loads(p.read_text())
    except OSError as err:
        raise UsageError(f"{p}: cannot read: {err.strerror}") from None
    except json.JSONDecodeError as err:
        raise UsageError(f"{p}: not a compare result: {err}") from None


def _merge(args: argparse.Namespace) -> int:
    from maxwell.experiments.compare import merge_results
    from maxwell.experiments.report import markdown_table, write_report

    result = merge_results(_read_result(args.base), _read_result(args.redo))
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    (out / "compare.json").write_text(json.dumps(_clean(result), indent=1) + "\n")
    write_report(result, out)
    print(json.dumps(_clean(result)) if args.json else markdown_table(result))
    return 0


def _sweep(args: argparse.Namespace) -> int:
    from maxwell.experiments.scenario import load_scenario
    from maxwell.experiments.sweep import parse_sets, sweep

    if not args.sim:
        raise UsageError("sweep: add --sim (sweeps run simulated; live runs use compare)")
    if args.seeds < 1:
        raise UsageError("--seeds must be >= 1")
    if args.workers < 1:
        raise UsageError("--workers must be >= 1")
    scn = load_scenario(args.scenario)
    sets = parse_sets(args.sets)
    policies = _policies(args.policies)
    cb, stop = _progress(args.json)
    try:
        result = sweep(scn, sets, policies, list(range(1, args.seeds + 1)),
                       cluster=args.cluster, workers=args.workers, progress=cb)
    finally:
        stop()
    if args.verify:
        if args.cluster is None:
            raise UsageError("--verify compares a --cluster run with this process: add --cluster")
        from maxwell.experiments.sweep import same_numbers

        here = sweep(scn, sets, policies, list(range(1, args.seeds + 1)))
        result["matches_in_process"] = same_numbers(result, here)
        result["in_process_wall_s"] = here["wall_s"]
    if args.out:
        out = Path(args.out)
        out.mkdir(parents=True, exist_ok=True)
        (out / "sweep.json").write_text(json.dumps(_clean(result), indent=1) + "\n")
        from maxwell.experiments.report import write_sweep_report

        write_sweep_report(result, out)
    if args.json:
        print(json.dumps(_clean(result)))
    else:
        print(f"{result['runs']} runs on {result['engine']} in {result['wall_s']:.1f} s")
        if "matches_in_process" in result:
            print(f"same numbers as in this process: {result['matches_in_process']}")
        for g in result["groups"]:
            vpj = g["value_per_j"]
            print(f"{json.dumps(g['set'])} {g['policy']}: value/J {vpj['median']:.4g}"
                  f" [{vpj['ci95'][0]:.4g}, {vpj['ci95'][1]:.4g}]")
    return 0
