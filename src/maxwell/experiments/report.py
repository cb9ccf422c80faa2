"""The compare report: a Markdown table and plots (matplotlib, headless).

Every table states the ratio to the oracle and the labels of the figures
(simulated or live; energy modelled or measured). Plots: value per Joule by policy
with its 95 % interval; the ablation waterfall (Maxwell's value per Joule, then
what each ablation changes); per seed, Maxwell's gain over cfs against the
parasites' share of the energy under cfs; false kills by policy.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from maxwell.report import table_lines

PLOTS = ("policies.png", "ablations.png", "gain_vs_parasite_share.png", "false_kills.png")


def _fmt(x: Any, digits: int = 4) -> str:
    if x is None:
        return "—"
    if isinstance(x, int):
        return str(x)
    return f"{x:.{digits}g}"


def _iv(d: dict[str, Any], digits: int = 4) -> str:
    lo, hi = d["ci95"]
    return f"{_fmt(d['median'], digits)} [{_fmt(lo, digits)}, {_fmt(hi, digits)}]"


def markdown_table(result: dict[str, Any]) -> str:
    lab = result["labels"]
    head = (
        f"Scenario **{result['scenario']}**, {result['seeds']} seeds, {lab['runs']} runs"
        f" (energy {lab['energy']}, temperature {lab['temperature']}); medians with"
        " bootstrap 95 % intervals; oracle fraction paired by seed.\n\n"
        "| policy | value per J | × oracle | false kills (total) | parasites' energy share"
        " | s above setpoint | mechanism CPU s | Maxwell above? |\n"
        "| --- | --- | --- | --- | --- | --- | --- | --- |\n"
    )
    rows = []
    for p, e in result["policies"].items():
        b = result["beats"].get(p)
        verdict = "—" if b is None else (
            "yes" if b["maxwell_above"] else ("**no: below**" if b["maxwell_below"]
                                              else "overlap"))
        rows.append(
            f"| {p} | {_iv(e['value_per_j'])} | {_iv(e['oracle_fraction'], 3)}"
            f" | {e['false_kills']['total']} | {_iv(e['parasite_energy_share'], 2)}"
            f" | {_iv(e['time_above_setpoint_s'], 3)} | {_fmt(e['mechanism_cpu_s']['median'], 2)}"
            f" | {verdict} |"
        )
    return head + "\n".join(rows) + "\n"


def write_report(result: dict[str, Any], out: Path) -> list[Path]:
    """report.md and the plots in `out`; returns the files written."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import numpy as np

    pol = result["policies"]
    names = list(pol)
    written = []

    def bar(ax: Any, key: str, title: str) -> None:
        med = np.array([pol[p][key]["median"] or 0.0 for p in names], dtype=float)
        lo = np.array([pol[p][key]["ci95"][0] or 0.0 for p in names], dtype=float)
        hi = np.array([pol[p][key]["ci95"][1] or 0.0 for p in names], dtype=float)
        colors = ["tab:green" if p == "maxwell" else
                  ("tab:gray" if p == "oracle" else "tab:blue") for p in names]
        ax.bar(range(len(names)), med, color=colors,
               yerr=[np.maximum(med - lo, 0), np.maximum(hi - med, 0)], capsize=3)
        ax.set_xticks(range(len(names)), names, rotation=45, ha="right")
        ax.set_title(title)

    lab = result["labels"]
    fig, ax = plt.subplots(figsize=(9, 4.5))
    bar(ax, "value_per_j", f"{result['scenario']}: verified value per J ({lab['runs']},"
        f" energy {lab['energy']}), median and 95 % CI")
    fig.tight_layout()
    written.append(out / "policies.png")
    fig.savefig(written[-1], dpi=110)
    plt.close(fig)

    base = pol.get("maxwell", {}).get("value_per_j", {}).get("median")
    abl = [p for p in names if p.startswith("maxwell-")]
    fig, ax = plt.subplots(figsize=(7, 4))
    if base:
        steps = [(p, (pol[p]["value_per_j"]["median"] or 0.0) - base) for p in abl]
        ax.bar([0], [base], color="tab:green")
        for i, (_, d) in enumerate(steps, start=1):
            ax.bar([i], [d], bottom=[base], color="tab:red" if d < 0 else "tab:olive")
        ax.set_xticks(range(len(steps) + 1), ["maxwell"] + [p for p, _ in steps],
                      rotation=30, ha="right")
    ax.set_title("ablations: change in median value per J from maxwell")
    fig.tight_layout()
    written.append(out / "ablations.png")
    fig.savefig(written[-1], dpi=110)
    plt.close(fig)

    runs = result["runs"]
    cfs = {r["seed"]: r for r in runs if r["policy"] == "cfs"}
    mx = {r["seed"]: r for r in runs if r["policy"] == "maxwell"}
    xs, ys = [], []
    for s, r in cfs.items():
        if s in mx and r["value_per_j"] > 0:
            xs.append(r["parasite_energy_share"])
            ys.append(mx[s]["value_per_j"] / r["value_per_j"])
    fig, ax = plt.subplots(figsize=(6, 4))
    ax.scatter(xs, ys, s=14)
    ax.axhline(1.0, color="k", lw=0.5)
    ax.set_xlabel("parasites' share of agents' energy under cfs (per seed)")
    ax.set_ylabel("value/J: maxwell ÷ cfs (same seed)")
    ax.set_title("gain vs parasite share")
    fig.tight_layout()
    written.append(out / "gain_vs_parasite_share.png")
    fig.savefig(written[-1], dpi=110)
    plt.close(fig)

    fig, ax = plt.subplots(figsize=(9, 4))
    ax.bar(range(len(names)), [pol[p]["false_kills"]["total"] for p in names])
    ax.set_xticks(range(len(names)), names, rotation=45, ha="right")
    ax.set_title(f"false kills of useful agents, total over {result['seeds']} seeds")
    fig.tight_layout()
    written.append(out / "false_kills.png")
    fig.savefig(written[-1], dpi=110)
    plt.close(fig)

    md = out / "report.md"
    md.write_text(
        f"# Compare: {result['scenario']} ({result['mode']})\n\n" + markdown_table(result)
        + "\n" + "".join(f"![{p}]({p})\n\n" for p in PLOTS)
    )
    written.append(md)
    return written


def write_sweep_report(result: dict[str, Any], out: Path) -> list[Path]:
    """Plots of a sweep against its first swept key: value per J and false kills by
    policy (medians, 95 % intervals), and — when cfs and maxwell both ran — Maxwell's
    gain over cfs (paired by seed) against the parasites' energy share under cfs."""
    import matplotlib

    matplotlib.use("Agg")
    import json

    import matplotlib.pyplot as plt
    import numpy as np

    from maxwell.experiments.stats import paired_ratio_ci

    keys = list(result["sets"])
    if not keys:
        return []
    key = keys[0]
    written: list[Path] = []
    groups = result["groups"]
    policies = result["policies"]

    def xs_for(p: str, metric: str) -> tuple[list[float], list[float], list[float], list[float]]:
        rows = [g for g in groups if g["policy"] == p]
        x = [float(g["set"][key]) for g in rows]
        m = [g[metric]["median"] or 0.0 for g in rows]
        lo = [g[metric]["ci95"][0] or 0.0 for g in rows]
        hi = [g[metric]["ci95"][1] or 0.0 for g in rows]
        return x, m, lo, hi

    for metric, fname, label in (("value_per_j", "sweep_value_per_j.png", "value per J"),
                                 ("false_kills", "sweep_false_kills.png", "false kills")):
        fig, ax = plt.subplots(figsize=(7, 4))
        for p in policies:
            x, m, lo, hi = xs_for(p, metric)
            ax.errorbar(x, m, yerr=[np.maximum(np.subtract(m, lo), 0),
                                    np.maximum(np.subtract(hi, m), 0)],
                        marker="o", capsize=3, label=p)
        ax.set_xlabel(key)
        ax.set_ylabel(f"{label} (median, 95 % CI)")
        ax.set_title(f"{result['scenario']}: {label} vs {key} (simulated, {result['seeds']} seeds)")
        ax.legend(fontsize=8)
        fig.tight_layout()
        written.append(out / fname)
        fig.savefig(written[-1], dpi=110)
        plt.close(fig)

    if "cfs" in policies and "maxwell" in policies:
        fig, ax = plt.subplots(figsize=(6, 4))
        res = result["results"]
        for combo in {json.dumps(g["set"], sort_keys=True) for g in groups}:
            c = json.loads(combo)
            rows = {p: {r["seed"]: r for r in res if r["policy"] == p and r["set"] == c}
                    for p in ("cfs", "maxwell")}
            seeds = sorted(set(rows["cfs"]) & set(rows["maxwell"]))
            share = float(np.median([rows["cfs"][s]["parasite_energy_share"] for s in seeds]))
            iv = paired_ratio_ci([rows["maxwell"][s]["value_per_j"] for s in seeds],
                                 [rows["cfs"][s]["value_per_j"] for s in seeds])
            ax.errorbar([share], [iv.median], yerr=[[iv.median - iv.lo], [iv.hi - iv.median]],
                        marker="o", capsize=3, color="tab:green")
            ax.annotate(f"{key.split('.')[-1]}={c[key]}", (share, iv.median), fontsize=7)
        ax.axhline(1.0, color="k", lw=0.5)
        ax.set_xlabel("parasites' share of agents' energy under cfs")
        ax.set_ylabel("value/J maxwell ÷ cfs, paired by seed")
        ax.set_title("gain vs parasite share (simulated)")
        fig.tight_layout()
        written.append(out / "gain_vs_parasite_share.png")
        fig.savefig(written[-1], dpi=110)
        plt.close(fig)
    return written


LADDER_COLUMNS = ("cfs", "weights", "watchdog:10", "watchdog:30", "thermal-cap", "maxwell")


def ladder_markdown(results: list[dict[str, Any]]) -> str:
    """One row per scenario: each policy's value per J as a fraction of the oracle's
    (median [95 % CI], paired by seed), and whether Maxwell's value-per-J interval lies
    wholly above (▲), below (▼) or overlaps (≈) the watchdog's and the weights'."""
    header = ["scenario", "mode", "seeds", *(f"{c} × oracle" for c in LADDER_COLUMNS),
              "maxwell vs watchdog:10 / :30 / weights"]
    rows = []
    for r in results:
        pol, beats = r["policies"], r["beats"]
        cells = [_iv(pol[c]["oracle_fraction"], 3) if c in pol else "—" for c in LADDER_COLUMNS]

        def mark(p: str, beats: dict[str, Any] = beats) -> str:
            b = beats.get(p)
            if b is None:
                return "—"
            return "▲" if b["maxwell_above"] else ("▼" if b["maxwell_below"] else "≈")

        rows.append([str(r["scenario"]), str(r["labels"]["runs"]), str(r["seeds"]), *cells,
                     f"{mark('watchdog:10')} / {mark('watchdog:30')} / {mark('weights')}"])
    return "\n".join(table_lines(header, rows)) + "\n"


def _link(r: dict[str, Any], link_root: str | None) -> str:
    name = str(r["scenario"])
    return f"[{name}]({link_root}/{name}/report.md)" if link_root else name


def ladder_by_policy(results: list[dict[str, Any]], link_root: str | None = None) -> str:
    """One row per scenario, one column per policy (every policy of the first result):
    value per J × oracle (median) / seconds above the setpoint (median) / false kills
    of useful agents (total over the seeds). `link_root`: link each scenario to
    LINK_ROOT/NAME/report.md."""
    policies = list(results[0]["policies"]) if results else []
    rows = []
    for r in results:
        cells = []
        for p in policies:
            e = r["policies"].get(p)
            cells.append("—" if e is None else (
                f"{_fmt(e['oracle_fraction']['median'], 3)}"
                f" / {_fmt(e['time_above_setpoint_s']['median'], 3)}"
                f" / {e['false_kills']['total']}"))
        rows.append([_link(r, link_root), *cells])
    return "\n".join(table_lines(["scenario", *policies], rows)) + "\n"


README_COLUMNS = (*LADDER_COLUMNS, "maxwell-no-reserve")


def ladder_readme(results: list[dict[str, Any]]) -> str:
    """The README's short ladder: value per J × oracle (median, 2 digits) and, in
    brackets, the median seconds above the setpoint, Maxwell's column in bold."""
    names = ["**maxwell**" if c == "maxwell" else
             ("maxwell, no reserve" if c == "maxwell-no-reserve" else c) for c in README_COLUMNS]
    rows = []
    for r in results:
        cells = []
        for c in README_COLUMNS:
            e = r["policies"].get(c)
            if e is None:
                cells.append("—")
                continue
            cell = (f"{e['oracle_fraction']['median']:.2f}"
                    f" ({e['time_above_setpoint_s']['median']:.0f} s)")
            cells.append(f"**{cell}**" if c == "maxwell" else cell)
        rows.append([str(r["scenario"]), *cells])
    return "\n".join(table_lines(["scenario", *names], rows)) + "\n"
