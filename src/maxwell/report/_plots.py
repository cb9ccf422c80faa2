"""The six report figures, drawn with matplotlib's object API onto Agg canvases.

Every builder takes loaded runs (`RunData`) and returns a `matplotlib.figure.Figure`
without touching pyplot's global state, so figures can be inspected by tests and
rendered from any thread. Every figure says, next to the quantity, whether
energy and temperature were measured or modelled. Writes files only in
`render_plots`.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from pathlib import Path
from typing import NamedTuple

import numpy as np
from matplotlib.axes import Axes
from matplotlib.figure import Figure

from maxwell.report._summary import RunData

MIB = 1024 * 1024


class PlotSpec(NamedTuple):
    filename: str
    title: str
    build: Callable[[Sequence[RunData]], Figure]


def _caption(fig: Figure, runs: Sequence[RunData]) -> None:
    """The measured/modelled line under every figure, one clause per run."""
    parts = [
        f"{r.summary.label}: energy {r.summary.energy_label}, temperature {r.summary.temp_label}"
        for r in runs
    ]
    fig.text(0.01, 0.005, " | ".join(parts), fontsize=7, ha="left", va="bottom")


def _figure(nrows: int, ncols: int, title: str, height_per_row: float = 3.0) -> Figure:
    fig = Figure(figsize=(7.5 * max(ncols, 1) ** 0.5 + 3.0, 0.8 + height_per_row * nrows))
    fig.suptitle(title)
    return fig


def _word(measured: bool) -> str:
    return "measured" if measured else "modelled"


def _finish(fig: Figure, runs: Sequence[RunData]) -> Figure:
    _caption(fig, runs)
    fig.tight_layout(rect=(0.0, 0.03, 1.0, 1.0))
    return fig


def plot_temperature_price(runs: Sequence[RunData]) -> Figure:
    """1. Die temperature and setpoint, with the reserve price on a second axis."""
    fig = _figure(len(runs), 1, "Temperature, setpoint and reserve price")
    axes = fig.subplots(len(runs), 1, squeeze=False, sharex=True)[:, 0]
    for ax, run in zip(axes, runs, strict=True):
        s = run.summary
        ax.plot(
            run.t_s,
            run.temp_c,
            color="tab:red",
            label=f"die temperature ({_word(s.temp_measured)})",
        )
        ax.axhline(s.setpoint_c, color="tab:red", linestyle="--", linewidth=1, label="setpoint")
        ax.set_ylabel(f"temperature (°C, {_word(s.temp_measured)})")
        ax.set_title(f"{s.label} — temperature {s.temp_label}", fontsize=9)
        price_ax = ax.twinx()
        price_ax.plot(run.t_s, run.price, color="tab:blue", label="reserve price")
        price_ax.set_ylabel("reserve price (credits per core-s)")
        handles = ax.get_legend_handles_labels()
        more = price_ax.get_legend_handles_labels()
        ax.legend(handles[0] + more[0], handles[1] + more[1], fontsize=7, loc="lower right")
    axes[-1].set_xlabel("time (s)")
    return _finish(fig, runs)


def plot_energy(runs: Sequence[RunData]) -> Figure:
    """2. Power and cumulative energy, idle and per-agent attributed energy stacked."""
    fig = _figure(2, len(runs), "Power and energy (attributed energy stacked per agent)")
    grid = fig.subplots(2, len(runs), squeeze=False, sharex="col")
    for i, run in enumerate(runs):
        s = run.summary
        word = _word(s.energy_measured)
        p_ax: Axes = grid[0, i]
        p_ax.plot(run.t_s, run.power_w, color="tab:orange", label=f"power ({word})")
        p_ax.set_ylabel(f"power (W, {word})")
        p_ax.set_ylim(bottom=0)  # a zoomed axis would make a 1 % wobble look like a swing
        p_ax.set_title(f"{s.label} — energy {s.energy_label}", fontsize=9)
        p_ax.legend(fontsize=7, loc="upper left")
        e_ax: Axes = grid[1, i]
        names = [n for n in run.agents]
        stacks = [run.idle_energy_j] + [
            np.interp(run.t_s, run.agents[n].t_s, run.agents[n].energy_j) for n in names
        ]
        if len(run.t_s):
            e_ax.stackplot(run.t_s, *stacks, labels=["idle", *names], alpha=0.7)
        e_ax.plot(run.t_s, run.energy_j, color="black", linewidth=1.2, label="total")
        e_ax.set_ylabel(f"cumulative energy (J, {word})")
        e_ax.set_xlabel("time (s)")
        e_ax.legend(fontsize=7, loc="upper left")
    return _finish(fig, runs)


def plot_wallets(runs: Sequence[RunData]) -> Figure:
    """3. Wallet balances over time, apoptosis marked."""
    fig = _figure(len(runs), 1, "Wallets (apoptosis marked ✕)")
    axes = fig.subplots(len(runs), 1, squeeze=False, sharex=True)[:, 0]
    for ax, run in zip(axes, runs, strict=True):
        s = run.summary
        for a in s.agents:
            series = run.agents[a.name]
            (line,) = ax.plot(series.t_s, series.balance, label=a.name)
            if a.death_t_s is not None:
                y = float(np.interp(a.death_t_s, series.t_s, series.balance))
                ax.axvline(a.death_t_s, color=line.get_color(), linestyle=":", linewidth=1)
                ax.plot(
                    [a.death_t_s],
                    [y],
                    marker="X",
                    markersize=10,
                    color=line.get_color(),
                    linestyle="none",
                    label=f"{a.name} {a.death_cause or 'died'}",
                )
        ax.set_ylabel("balance (credits)")
        ax.set_title(f"{s.label} (policy {s.policy})", fontsize=9)
        ax.legend(fontsize=7, loc="best")
    axes[-1].set_xlabel("time (s)")
    return _finish(fig, runs)


def _rate(t_s: np.ndarray, cumulative: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Per-interval rate of a cumulative series (first interval from t=0)."""
    if len(t_s) == 0:
        return t_s, cumulative
    t0 = np.concatenate(([0.0], t_s[:-1]))
    c0 = np.concatenate(([0.0], cumulative[:-1]))
    dt = np.where(t_s - t0 > 0, t_s - t0, np.nan)
    return t_s, np.nan_to_num((cumulative - c0) / dt)


def plot_cpu_share(runs: Sequence[RunData]) -> Figure:
    """4. CPU per agent: what the kernel gave (solid) vs what the auction allocated (dashed)."""
    fig = _figure(len(runs), 1, "CPU per agent: used (solid) vs auction allocation (dashed)")
    axes = fig.subplots(len(runs), 1, squeeze=False, sharex=True)[:, 0]
    for ax, run in zip(axes, runs, strict=True):
        s = run.summary
        enforced = s.policy != "cfs"
        for name, series in run.agents.items():
            t, cores = _rate(series.t_s, series.cpu_s)
            # the rate holds over the interval that ends at each tick
            (line,) = ax.step(t, cores, where="pre", label=f"{name} used")
            alloc = "auction" if enforced else "shadow auction, not enforced"
            ax.step(
                series.t_s,
                series.slots,
                where="post",
                linestyle="--",
                linewidth=1,
                color=line.get_color(),
                label=f"{name} slots ({alloc})",
            )
        if enforced and run.capacity_cores.size and np.any(run.capacity_cores > 0):
            ax.step(run.t_s, run.capacity_cores, where="post", color="black", linewidth=1,
                    linestyle=":", label="cores for sale (thermal loop)")
        ax.set_ylabel("CPU (cores)")
        who = "auction enforced" if enforced else f"{s.scheduler_name} scheduled"
        ax.set_title(f"{s.label} — {who}", fontsize=9)
        ax.legend(fontsize=7, loc="best")
    axes[-1].set_xlabel("time (s)")
    return _finish(fig, runs)


def plot_work(runs: Sequence[RunData]) -> Figure:
    """5. Cumulative verified work and work per Joule, every run on the same axes."""
    fig = _figure(1, 2, "Verified work and work per Joule", height_per_row=3.6)
    work_ax, eff_ax = fig.subplots(1, 2)
    for run in runs:
        s = run.summary
        total = np.zeros_like(run.t_s)
        for series in run.agents.values():
            # right-continuous: an agent no longer recorded keeps its last count
            idx = np.searchsorted(series.t_s, run.t_s, side="right") - 1
            total = total + np.where(idx >= 0, series.work_units[np.clip(idx, 0, None)], 0.0)
        work_ax.plot(run.t_s, total, label=s.label)
        with np.errstate(divide="ignore", invalid="ignore"):
            eff = np.where(run.energy_j > 0, total / run.energy_j, np.nan)
        eff_ax.plot(run.t_s, eff, label=f"{s.label} (energy {_word(s.energy_measured)})")
    work_ax.set_xlabel("time (s)")
    work_ax.set_ylabel("cumulative verified work (units)")
    work_ax.legend(fontsize=7)
    words = sorted({_word(r.summary.energy_measured) for r in runs})
    eff_ax.set_xlabel("time (s)")
    eff_ax.set_ylabel(f"verified work per J (energy {'/'.join(words)})")
    eff_ax.legend(fontsize=7)
    return _finish(fig, runs)


def plot_memory_tax(runs: Sequence[RunData]) -> Figure:
    """6. Memory freed and Landauer tax per agent (grouped bars, one group per agent)."""
    fig = _figure(1, 2, "Memory freed and Landauer tax per agent", height_per_row=3.6)
    mem_ax, tax_ax = fig.subplots(1, 2)
    names: list[str] = []
    for run in runs:
        names += [a.name for a in run.summary.agents if a.name not in names]
    x = np.arange(len(names))
    width = 0.8 / max(len(runs), 1)
    for i, run in enumerate(runs):
        s = run.summary
        by = {a.name: a for a in s.agents}
        freed = [by[n].bytes_freed / MIB if n in by else 0.0 for n in names]
        tax = [by[n].tax if n in by else 0.0 for n in names]
        mem_ax.bar(x + i * width, freed, width, label=f"{s.label} ({s.memtrace_label})")
        tax_ax.bar(
            x + i * width,
            tax,
            width,
            label=f"{s.label} (T {_word(s.temp_measured)}, λ={s.landauer_lambda:.3g})",
        )
    for ax in (mem_ax, tax_ax):
        ax.set_xticks(x + width * (len(runs) - 1) / 2, names)
        ax.set_xlabel("agent")
        ax.legend(fontsize=7)
    mem_ax.set_ylabel("memory freed (MiB)")
    tax_ax.set_ylabel("Landauer tax (credits)")
    return _finish(fig, runs)


PLOTS: tuple[PlotSpec, ...] = (
    PlotSpec(
        "temperature_price.png", "Temperature, setpoint and reserve price", plot_temperature_price
    ),
    PlotSpec("energy.png", "Power and energy, attributed per agent", plot_energy),
    PlotSpec("wallets.png", "Wallets and apoptosis", plot_wallets),
    PlotSpec("cpu_share.png", "CPU per agent: used vs allocated", plot_cpu_share),
    PlotSpec("work.png", "Verified work and work per Joule", plot_work),
    PlotSpec("memory_tax.png", "Memory freed and Landauer tax", plot_memory_tax),
)


def render_plots(runs: Sequence[RunData], out_dir: Path, dpi: int = 100) -> list[tuple[Path, str]]:
    """Draw and save every figure as PNG; returns (path, title) pairs in report order."""
    out_dir.mkdir(parents=True, exist_ok=True)
    written = []
    for spec in PLOTS:
        fig = spec.build(runs)
        path = out_dir / spec.filename
        fig.savefig(path, format="png", dpi=dpi)
        written.append((path, spec.title))
    return written
