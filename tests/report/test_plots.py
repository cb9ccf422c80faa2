"""The six report figures draw what the recorded runs hold, labelled measured/modelled."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import numpy as np
import pytest
from matplotlib.figure import Figure

from maxwell.report import RunData, load_runs
from maxwell.report import _plots as plots


@pytest.fixture(scope="module")
def runs(demo_runs: Path) -> list[RunData]:
    return load_runs([demo_runs / "cfs", demo_runs / "maxwell"])


@pytest.fixture(scope="module")
def figures(runs: list[RunData]) -> dict[str, Figure]:
    """Each figure built once for the module (drawing is the slow part)."""
    return {spec.filename: spec.build(runs) for spec in plots.PLOTS}


def _texts(fig: Figure) -> str:
    """Every piece of text on a figure: titles, axis labels, legends, captions."""
    parts = [t.get_text() for t in fig.texts]
    if fig._suptitle is not None:
        parts.append(fig._suptitle.get_text())
    for ax in fig.axes:
        parts += [ax.get_title(), ax.get_xlabel(), ax.get_ylabel()]
        legend = ax.get_legend()
        if legend is not None:
            parts += [t.get_text() for t in legend.get_texts()]
    return "\n".join(parts)


def _word(measured: bool) -> str:
    return "measured" if measured else "modelled"


@pytest.mark.parametrize("spec", plots.PLOTS, ids=[s.filename for s in plots.PLOTS])
def test_every_figure_states_its_sources(
    runs: list[RunData], figures: dict[str, Figure], spec: plots.PlotSpec
) -> None:
    fig = figures[spec.filename]
    text = _texts(fig)
    for run in runs:
        s = run.summary
        assert f"{s.label}: energy {s.energy_label}" in text
        assert f"temperature {s.temp_label}" in text
        assert _word(s.energy_measured) in text


def test_temperature_price_axes(runs: list[RunData], figures: dict[str, Figure]) -> None:
    fig = figures["temperature_price.png"]
    main_axes = [ax for ax in fig.axes if ax.get_ylabel().startswith("temperature")]
    price_axes = [ax for ax in fig.axes if ax.get_ylabel().startswith("reserve price")]
    assert len(main_axes) == len(price_axes) == len(runs)
    for ax, price_ax, run in zip(main_axes, price_axes, runs, strict=True):
        assert f"°C, {_word(run.summary.temp_measured)}" in ax.get_ylabel()
        temp_line, setpoint = ax.get_lines()[:2]
        np.testing.assert_allclose(temp_line.get_ydata(), run.temp_c)
        assert set(np.asarray(setpoint.get_ydata(), dtype=float)) == {run.summary.setpoint_c}
        np.testing.assert_allclose(price_ax.get_lines()[0].get_ydata(), run.price)
    assert fig.axes[len(runs) - 1].get_xlabel() == "time (s)"


def test_energy_stack_adds_up_to_the_meter(runs: list[RunData], figures: dict[str, Figure]) -> None:
    fig = figures["energy.png"]
    energy_axes = [ax for ax in fig.axes if ax.get_ylabel().startswith("cumulative energy")]
    assert len(energy_axes) == len(runs)
    for ax, run in zip(energy_axes, runs, strict=True):
        assert _word(run.summary.energy_measured) in ax.get_ylabel()
        labels = [t.get_text() for t in ax.get_legend().get_texts()]
        assert labels[0] == "idle" and set(run.agents) <= set(labels)
        total = ax.get_lines()[-1]
        np.testing.assert_allclose(total.get_ydata(), run.energy_j)
        # idle + attributed never exceeds what the meter (or model) says was used
        stacked_top = run.idle_energy_j + sum(
            np.interp(run.t_s, a.t_s, a.energy_j) for a in run.agents.values()
        )
        assert np.all(stacked_top <= run.energy_j * (1 + 1e-6) + 1e-6)


def test_wallets_mark_the_apoptosis(runs: list[RunData], figures: dict[str, Figure]) -> None:
    fig = figures["wallets.png"]
    by_label = {run.summary.label: (ax, run) for ax, run in zip(fig.axes, runs, strict=True)}
    ax, run = by_label["maxwell"]
    dead = [a for a in run.summary.agents if a.death_t_s is not None]
    assert dead, "the maxwell demo run records an apoptosis"
    markers = [ln for ln in ax.get_lines() if ln.get_marker() == "X"]
    assert sorted(float(ln.get_xdata()[0]) for ln in markers) == sorted(
        a.death_t_s for a in dead if a.death_t_s is not None
    )
    for a in run.summary.agents:
        line = next(ln for ln in ax.get_lines() if ln.get_label() == a.name)
        np.testing.assert_allclose(line.get_ydata(), run.agents[a.name].balance)
    assert all(ax.get_ylabel() == "balance (credits)" for ax in fig.axes)


def test_cpu_share_is_the_rate_of_cpu_seconds(
    runs: list[RunData], figures: dict[str, Figure]
) -> None:
    fig = figures["cpu_share.png"]
    for ax, run in zip(fig.axes, runs, strict=True):
        assert ax.get_ylabel() == "CPU (cores)"
        for name, series in run.agents.items():
            used = next(ln for ln in ax.get_lines() if ln.get_label() == f"{name} used")
            y = np.asarray(used.get_ydata(), dtype=float)
            # integrating the plotted rate gives back the recorded CPU seconds
            dt = np.diff(np.concatenate(([0.0], series.t_s)))
            assert np.sum(y * dt) == pytest.approx(series.cpu_s[-1], rel=1e-6, abs=1e-9)
            assert any(ln.get_label().startswith(f"{name} slots") for ln in ax.get_lines())
    assert "not enforced" in _texts(fig)  # the cfs run's allocation is only a shadow


def test_work_chart_puts_both_runs_on_one_axes(
    runs: list[RunData], figures: dict[str, Figure], demo_runs: Path
) -> None:
    fig = figures["work.png"]
    work_ax, eff_ax = fig.axes
    assert work_ax.get_ylabel() == "cumulative verified work (units)"
    assert eff_ax.get_ylabel().startswith("verified work per J (energy ")
    assert [ln.get_label() for ln in work_ax.get_lines()] == [r.summary.label for r in runs]
    for line, run in zip(work_ax.get_lines(), runs, strict=True):
        db = sqlite3.connect(demo_runs / run.summary.label / "run.db")
        (expected,) = db.execute(
            "SELECT SUM(w) FROM (SELECT MAX(work_units) AS w FROM agent_ticks GROUP BY agent)"
        ).fetchone()
        db.close()
        assert line.get_ydata()[-1] == expected
    for line, run in zip(eff_ax.get_lines(), runs, strict=True):
        assert line.get_ydata()[-1] == pytest.approx(run.summary.work_per_j)


def test_memory_and_tax_bars(runs: list[RunData], figures: dict[str, Figure]) -> None:
    fig = figures["memory_tax.png"]
    mem_ax, tax_ax = fig.axes
    assert mem_ax.get_ylabel() == "memory freed (MiB)"
    assert tax_ax.get_ylabel() == "Landauer tax (credits)"
    names = [t.get_text() for t in mem_ax.get_xticklabels()]
    for i, run in enumerate(runs):
        by = {a.name: a for a in run.summary.agents}
        bars = mem_ax.containers[i]
        heights = [b.get_height() for b in bars]
        assert heights == pytest.approx([by[n].bytes_freed / plots.MIB for n in names])
        taxes = [b.get_height() for b in tax_ax.containers[i]]
        assert taxes == pytest.approx([by[n].tax for n in names])
    legend = "\n".join(t.get_text() for t in tax_ax.get_legend().get_texts())
    assert "λ=" in legend
