"""report.md: the summary or comparison of runs as Markdown that reads well on a repository page.

Pure text from `RunSummary` records and the list of plot files; the caller writes
the file. Every energy and temperature figure carries its measured/modelled
label, and the Landauer multiplier λ is stated, as the design requires.
"""

from __future__ import annotations

import math
import os
from collections.abc import Sequence
from pathlib import Path

from maxwell.report._summary import RunSummary, parasite


def fmt(x: float | int | None, digits: int = 4) -> str:
    """Compact number for tables: '—' for missing, general format otherwise."""
    if x is None or (isinstance(x, float) and not math.isfinite(x)):
        return "—"
    if isinstance(x, int):
        return f"{x:,}"
    if 1e4 <= abs(x) < 1e15:  # large values read better whole than in e-notation
        return f"{x:,.0f}"
    return f"{x:.{digits}g}"


def _ratio(a: float | int | None, b: float | int | None) -> str:
    if a is None or b is None or b == 0:
        return "—"
    return f"{a / b:.3g}×"


def _rel(path: Path, start: Path) -> str:
    """A path as seen from the report's directory, so the report can be moved with its runs."""
    try:
        return os.path.relpath(path.resolve(), start.resolve())
    except ValueError:  # another drive (Windows): keep it absolute
        return str(path)


def baseline_index(runs: Sequence[RunSummary]) -> int:
    """The run others are compared against: the first with policy 'cfs', else the first."""
    return next((i for i, r in enumerate(runs) if r.policy == "cfs"), 0)


def table_lines(header: Sequence[str], rows: Sequence[Sequence[str]]) -> list[str]:
    """A Markdown table: the header row, the rule, then one line per row of cells."""
    out = ["| " + " | ".join(header) + " |", "|" + "|".join(" --- " for _ in header) + "|"]
    out += ["| " + " | ".join(r) + " |" for r in rows]
    return out


def comparisontable_lines(runs: Sequence[RunSummary]) -> list[str]:
    """Rows: the headline figures; columns: runs, then each run ÷ the baseline."""
    base = baseline_index(runs)
    others = [i for i in range(len(runs)) if i != base]
    header = ["", *(r.label for r in runs)]
    header += [f"{runs[i].label} ÷ {runs[base].label}" for i in others]
    energy_words = {r.energy_label for r in runs}
    temp_words = {r.temp_label for r in runs}

    def row(name: str, values: Sequence[float | int | None], digits: int = 4) -> list[str]:
        cells = [name, *(fmt(v, digits) for v in values)]
        return cells + [_ratio(values[i], values[base]) for i in others]

    rows = [
        row("verified work (units)", [r.work_units for r in runs]),
        row(f"energy (J, {' / '.join(sorted(energy_words))})", [r.energy_j for r in runs]),
        row("  of which idle and overhead (J)", [r.idle_energy_j for r in runs]),
        row("  of which foreign: outside the run, never billed (J)",
            [r.foreign_energy_j for r in runs]),
        row("foreign CPU (share of the machine)", [r.foreign_cpu_share for r in runs]),
        row("verified work per J", [r.work_per_j for r in runs]),
        row(
            f"peak temperature (°C, {' / '.join(sorted(temp_words))})",
            [r.peak_temp_c for r in runs],
        ),
        row("mean reserve price (credits per core-s)", [r.mean_price for r in runs]),
        row("duration (s, last tick)", [r.duration_s for r in runs]),
    ]
    return table_lines(header, rows)


def agenttable_lines(runs: Sequence[RunSummary]) -> list[str]:
    header = [
        "run",
        "agent",
        "cpu_s",
        "verified work",
        "attributed energy (J)",
        "work per J",
        "final balance (credits)",
        "state",
        "death (s)",
        "bytes freed",
        "Landauer tax (credits)",
        "rent (credits)",
        "bounty (credits)",
        "fines (credits)",
    ]
    rows = []
    for r in runs:
        for a in r.agents:
            death = "—" if a.death_t_s is None else f"{a.death_t_s:g} ({a.death_cause})"
            rows.append(
                [
                    r.label,
                    a.name,
                    fmt(a.cpu_s),
                    fmt(a.work_units),
                    fmt(a.energy_j),
                    fmt(a.work_per_j),
                    fmt(a.balance),
                    a.state,
                    death,
                    fmt(a.bytes_freed),
                    fmt(a.tax),
                    fmt(a.rent),
                    fmt(a.reward),
                    fmt(a.fine),
                ]
            )
    return table_lines(header, rows)


def render(
    runs: Sequence[RunSummary],
    plots: Sequence[tuple[Path, str]],
    out_dir: Path,
    command: str | None = None,
) -> str:
    """The whole report.md text; plot links are relative to `out_dir`."""
    comparing = len(runs) > 1
    title = "Maxwell: " + (" vs ".join(r.label for r in runs) if comparing else runs[0].label)
    lines = [f"# {title}", ""]
    if comparing:
        base = runs[baseline_index(runs)]
        for r in runs:
            if r is base or r.work_per_j is None or not base.work_per_j:
                continue
            lines.append(
                f"**{r.label}** did {r.work_per_j / base.work_per_j:.3g}× the verified work per "
                f"Joule of **{base.label}** "
                f"({fmt(r.work_per_j)} vs {fmt(base.work_per_j)} units/J; "
                f"energy {r.energy_label} / {base.energy_label})."
            )
        lines.append("")
    for r in runs:
        if r.policy == "cfs":
            lines += [f"Policy `cfs` is the baseline: {r.scheduler_name} schedules the agents "
                      f"(kernel {r.kernel or 'unknown'}); Maxwell only watches and keeps "
                      "shadow bills.", ""]
            break
    foreign = [r for r in runs if r.foreign_cpu_share > 0.10]
    for r in foreign:
        lines += [f"> **Foreign load.** During **{r.label}**, processes outside the run used "
                  f"{r.foreign_cpu_share:.0%} of the machine's CPU; their energy "
                  f"({fmt(r.foreign_energy_j)} J) is reported apart, never billed and not in "
                  "work per Joule, but the agents got less CPU than on a quiet machine.", ""]
    measured_all = all(r.energy_measured and r.temp_measured for r in runs)
    if not measured_all:
        lines += [
            "> **Measured or modelled.** Where a run says *modelled*, the machine that recorded "
            "it exposed no energy counter or thermometer (no RAPL, MSR, hwmon or thermal zone): "
            "power and temperature come from Maxwell's virtual plant (power = P_idle + "
            "P_core × busy cores, a two-node RC thermal model) driven by the real CPU use of "
            "the run itself (agents and supervisor; other processes on the host are split off "
            "as foreign load unless physics.model_load = \"machine\"). CPU time, verified "
            "work, memory freed and the ledger are measured either way; the Joules are a "
            "model's, so compare runs with each other, not with a wattmeter.",
            "",
        ]
    simulated = [r.label for r in runs if r.membrane_backend == "simulated"]
    if simulated:
        lines += [
            f"> **Simulated.** {', '.join(f'**{s}**' for s in simulated)}: `maxwell sim` ran "
            "the live tick loop and economy over *modelled* agents on a *modelled* host "
            "(CPU shares, work, claims, memory freed and the plant are all models; see the "
            "run's host facts for the calibration used). Nothing in a simulated run was "
            "measured.",
            "",
        ]
    lines += ["## Runs", ""]
    run_rows = []
    for r in runs:
        gains_src = r.gains.get("source", "") if isinstance(r.gains, dict) else ""
        run_rows.append(
            [
                r.label,
                r.policy,
                r.started_at,
                fmt(r.duration_s),
                str(r.tick_count),
                r.energy_label,
                r.temp_label,
                r.memtrace_label,
                f"{r.membrane_backend}, jail {r.jail_level or 'not recorded'}",
                fmt(r.setpoint_c),
                f"{r.landauer_lambda:.3g}",
                str(gains_src) or "—",
                f"`{_rel(r.db, out_dir)}`",
            ]
        )
    lines += table_lines(
        [
            "run",
            "policy",
            "started (UTC)",
            "duration (s)",
            "ticks",
            "energy",
            "temperature",
            "memory trace",
            "membrane, jail",
            "setpoint (°C)",
            "Landauer λ",
            "PID gains",
            "database",
        ],
        run_rows,
    )
    lines += ["", "## Comparison" if comparing else "## Summary", ""]
    lines += comparisontable_lines(runs)
    lines += ["", "## Agents", ""]
    lines += agenttable_lines(runs)
    lines += ["", "## Energy attributed to the least productive agent", ""]
    for r in runs:
        p = parasite(r)
        if p is None:
            lines.append(f"- {r.label}: no agent was attributed energy.")
        else:
            lines.append(
                f"- {r.label}: `{p.agent}` ({fmt(p.work_per_j)} verified units/J) took "
                f"{p.share_of_attributed:.1%} of the energy attributed to agents "
                f"({p.share_of_total:.1%} of all energy, {r.energy_label})."
            )
    storied = [r for r in runs if r.story]
    if storied:
        lines += ["", "## Thermal loop and the first death", ""]
        for r in storied:
            st = r.story
            lines.append(
                f"- **{r.label}**: over the last third, median |T − T_set| "
                f"{st['last_third_median_abs_error_c']:.2f} °C; the reserve at a limit in "
                f"{st['last_third_price_at_limit_share']:.0%} of ticks"
                + (f"; median {st['last_third_median_capacity_cores']:.2f} cores for sale"
                   if "last_third_median_capacity_cores" in st else "") + ".")
            death = st.get("first_death")
            if death:
                lines.append(
                    f"  {death['agent']} died at {death['t_s']:.1f} s ({death['cause']}); until "
                    f"then the die peaked at {st['peak_temp_before_c']:.1f} °C and the reserve "
                    f"at {st['peak_reserve_before']:.2f}; the die was at "
                    f"{st['temp_at_death_c']:.1f} °C then, {st['temp_3_ticks_later_c']:.1f} °C "
                    "three ticks later.")
                for res in st.get("resumed", []):
                    lines.append(f"  {res['agent']} next ran at {res['t_s']:.1f} s, reserve "
                                 f"{res['reserve']:.2f}.")
    lines += ["", "## Plots", ""]
    for path, caption in plots:
        rel = path.relative_to(out_dir) if path.is_relative_to(out_dir) else path
        lines += [f"### {caption}", "", f"![{caption}]({rel.as_posix()})", ""]
    lines += [
        "## Reproduce",
        "",
        "```",
        command
        or "maxwell report " + " ".join(str(r.db.parent) for r in runs) + f" --out {out_dir}",
        "```",
        "",
    ]
    return "\n".join(lines)
