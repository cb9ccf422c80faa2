"""Reports: summaries and comparisons of recorded runs, as Markdown and PNG plots.

Reads only run databases (through `maxwell.record.RunReader`) and writes only into
the output directory it is given: `report.md` and the six figures. `maxwell demo`
calls `write_report` at the end; `maxwell report` is the same from the shell.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from maxwell.report._markdown import table_lines
from maxwell.report._summary import (
    AgentSummary,
    Parasite,
    RunData,
    RunSummary,
    fair_scheduler_name,
    foreign_warnings,
    gain,
    load_run,
    load_runs,
    parasite,
    run_json,
    source_label,
)

__all__ = [
    "AgentSummary",
    "Parasite",
    "RunData",
    "RunSummary",
    "fair_scheduler_name",
    "foreign_warnings",
    "gain",
    "load_run",
    "load_runs",
    "parasite",
    "run_json",
    "source_label",
    "table_lines",
    "write_report",
]


def write_report(run_dirs: Sequence[Path], out_dir: Path, command: str | None = None) -> Path:
    """Write report.md and the plots for one run (summary) or several (comparison).

    `run_dirs` are run directories or run.db files; returns the path of report.md.
    `command` is the shell command that regenerates the report (shown in it).
    """
    from maxwell.report import _markdown, _plots

    if not run_dirs:
        raise ValueError("write_report needs at least one run directory")
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    runs = load_runs(list(run_dirs))
    plots = _plots.render_plots(runs, out_dir)
    text = _markdown.render([r.summary for r in runs], plots, out_dir, command)
    path = out_dir / "report.md"
    path.write_text(text)
    return path
