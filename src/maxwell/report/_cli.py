"""Subcommands of maxwell.report: `report` and `export`.

Both read run databases and write files into an output directory. Heavy
imports stay in the handlers.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import shlex
from pathlib import Path
from typing import TYPE_CHECKING, Any

from maxwell.common import Commands, UsageError

if TYPE_CHECKING:
    from maxwell.report import RunSummary


def register(commands: Commands) -> None:
    """Add this package's subcommands to the parser."""
    p = commands.top.add_parser(
        "report",
        help="summarise one run or compare several: report.md and PNG plots",
        description="Write report.md and six PNG plots for one run (a summary) or several "
        "(a comparison, e.g. the cfs and maxwell runs of a demo).",
    )
    p.add_argument("runs", nargs="+", metavar="RUN", help="run directory or run.db")
    p.add_argument(
        "--out",
        metavar="DIR",
        default=None,
        help="output directory (default: RUN/report for one run, else PARENT/report "
        "where PARENT is the runs' common parent)",
    )
    p.add_argument("--json", action="store_true", help="print one JSON object")
    p.set_defaults(func=_report)

    e = commands.top.add_parser(
        "export",
        help="export a run's tables as CSV or Parquet",
        description="Write every table of a run database (runs, ticks, agent_ticks, events, "
        "transfers) as one CSV or Parquet file each.",
    )
    e.add_argument("run", metavar="RUN", help="run directory or run.db")
    e.add_argument("--format", choices=("csv", "parquet"), default="csv")
    e.add_argument("--out", metavar="DIR", default=None, help="default: RUN/export-FORMAT")
    e.add_argument("--json", action="store_true", help="print one JSON object")
    e.set_defaults(func=_export)


def _open_error(err: Exception) -> UsageError:
    return UsageError(f"{err}; pass a run directory (holding run.db) or a run.db file")


def _default_report_dir(runs: list[Path]) -> Path:
    dirs = [(r if r.is_dir() else r.parent).resolve() for r in runs]
    if len(dirs) == 1:
        return dirs[0] / "report"
    parents = {d.parent for d in dirs}
    common = parents.pop() if len(parents) == 1 else Path.cwd()
    return common / "report"


def _report(args: argparse.Namespace) -> int:
    from maxwell.record import SchemaError
    from maxwell.report import load_runs, write_report
    from maxwell.report._plots import PLOTS

    runs = [Path(r) for r in args.runs]
    out = Path(args.out) if args.out else _default_report_dir(runs)
    command = "maxwell report " + " ".join(shlex.quote(str(r)) for r in runs)
    command += f" --out {shlex.quote(str(out))}"
    try:
        path = write_report(runs, out, command=command)
        summaries = [r.summary for r in load_runs(runs)]
    except (FileNotFoundError, SchemaError) as err:
        raise _open_error(err) from err
    if args.json:
        print(
            json.dumps(
                {
                    "report": str(path),
                    "plots": [str(out / spec.filename) for spec in PLOTS],
                    "runs": [_summary_json(s) for s in summaries],
                }
            )
        )
    else:
        print(f"report: {path}")
    return 0


def _summary_json(s: RunSummary) -> dict[str, Any]:
    from maxwell.report import parasite

    p = parasite(s)
    return {
        "label": s.label,
        "policy": s.policy,
        "db": str(s.db),
        "duration_s": s.duration_s,
        "work_units": s.work_units,
        "energy_j": s.energy_j,
        "energy_source": s.energy_label,
        "temp_source": s.temp_label,
        "work_per_j": s.work_per_j,
        "peak_temp_c": s.peak_temp_c,
        "mean_price": s.mean_price,
        "parasite": None if p is None else dataclasses.asdict(p),
        "agents": {
            a.name: {
                "cpu_s": a.cpu_s,
                "work_units": a.work_units,
                "energy_j": a.energy_j,
                "balance": a.balance,
                "state": a.state,
                "death_t_s": a.death_t_s,
                "bytes_freed": a.bytes_freed,
                "tax": a.tax,
            }
            for a in s.agents
        },
    }


def _export(args: argparse.Namespace) -> int:
    from maxwell.record import SchemaError
    from maxwell.record.export import export_run

    run = Path(args.run)
    base = run if run.is_dir() else run.parent
    out = Path(args.out) if args.out else base / f"export-{args.format}"
    try:
        files = export_run(run, out, args.format)
    except (FileNotFoundError, SchemaError) as err:
        raise _open_error(err) from err
    if args.json:
        print(json.dumps({"format": args.format, "files": {t: str(p) for t, p in files.items()}}))
    else:
        for table, path in files.items():
            print(f"{table}: {path}")
    return 0
