"""report.md from recorded runs: figures agree with the database, plots are linked."""

from __future__ import annotations

import re
import sqlite3
from pathlib import Path

import pytest
from matplotlib.image import imread

from maxwell.report import load_run, parasite, write_report


@pytest.fixture(scope="module")
def comparison(demo_runs: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("report")
    path = write_report([demo_runs / "cfs", demo_runs / "maxwell"], out)
    assert path == out / "report.md"
    return path


def _sql(db: Path, query: str) -> tuple[object, ...]:
    con = sqlite3.connect(db)
    try:
        return tuple(con.execute(query).fetchone())
    finally:
        con.close()


@pytest.mark.parametrize("policy", ["cfs", "maxwell"])
def test_summary_matches_the_database(demo_runs: Path, policy: str) -> None:
    db = demo_runs / policy / "run.db"
    s = load_run(demo_runs / policy).summary
    energy, idle, t_last = _sql(
        db, "SELECT energy_j, idle_energy_j, t_s FROM ticks ORDER BY rowid DESC LIMIT 1"
    )
    peak, mean_price, n = _sql(db, "SELECT MAX(temp_c), AVG(price), COUNT(*) FROM ticks")
    (work,) = _sql(
        db,
        "SELECT SUM(work_units) FROM agent_ticks a WHERE rowid = "
        "(SELECT MAX(rowid) FROM agent_ticks b WHERE b.agent = a.agent)",
    )
    measured, source = _sql(db, "SELECT energy_measured, energy_source FROM runs")
    assert s.policy == policy and s.tick_count == n and s.duration_s == t_last
    assert s.energy_j == energy and s.idle_energy_j == idle and s.work_units == work
    assert s.peak_temp_c == peak and s.mean_price == pytest.approx(mean_price)
    assert s.energy_label == f"{'measured' if measured else 'modelled'} ({source})"
    assert s.work_per_j == pytest.approx(float(work) / float(energy))  # type: ignore[arg-type]
    assert s.attributed_energy_j <= float(energy) + 1e-6  # type: ignore[arg-type]


def test_the_maxwell_run_records_a_death(demo_runs: Path) -> None:
    s = load_run(demo_runs / "maxwell").summary
    con = sqlite3.connect(demo_runs / "maxwell" / "run.db")
    row = con.execute(
        "SELECT t_s, agent FROM events WHERE kind = 'apoptosis' ORDER BY rowid LIMIT 1"
    ).fetchone()
    con.close()
    assert row is not None, "the demo's maxwell run is expected to record an apoptosis"
    t_apoptosis, agent = row
    dead = {a.name: a for a in s.agents if a.death_t_s is not None}
    assert agent in dead
    assert dead[str(agent)].death_t_s == t_apoptosis
    assert (dead[str(agent)].death_cause or "").startswith("apoptosis")


def test_parasite_is_found_by_its_numbers(demo_runs: Path) -> None:
    s = load_run(demo_runs / "cfs").summary
    p = parasite(s)
    assert p is not None
    used = [a for a in s.agents if a.energy_j > 0]
    rates = {a.name: a.work_units / a.energy_j for a in used}
    assert rates[p.agent] == min(rates.values())
    assert p.share_of_attributed == pytest.approx(
        next(a.energy_j for a in used if a.name == p.agent) / sum(a.energy_j for a in used)
    )
    assert 0 < p.share_of_total <= p.share_of_attributed <= 1


def test_report_links_every_plot_and_tables_the_comparison(
    comparison: Path, plot_files: set[str]
) -> None:
    text = comparison.read_text()
    links = re.findall(r"!\[[^\]]*\]\(([^)]+)\)", text)
    assert set(links) == plot_files
    for link in links:
        png = comparison.parent / link
        assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
        pixels = imread(png)
        assert pixels.ndim == 3 and pixels.shape[0] > 200 and pixels.shape[1] > 400
        assert float(pixels.std()) > 0.01  # not a blank canvas
    assert "# Maxwell: cfs vs maxwell" in text
    header = next(line for line in text.splitlines() if line.startswith("|  | cfs | maxwell"))
    assert "maxwell ÷ cfs" in header
    for row in (
        "| verified work (units) |",
        "| verified work per J |",
        "| mean reserve price (credits per core-s) |",
    ):
        assert row in text
    assert re.search(r"\| energy \(J, (measured|modelled) \(", text)
    assert re.search(r"\| peak temperature \(°C, (measured|modelled) \(", text)
    assert "## Agents" in text and "final balance (credits)" in text
    assert "apoptosis" in text  # the death of the bankrupt agent, with its time
    assert "Landauer λ" in text
    assert "maxwell report " in text  # how to regenerate it


def test_gain_in_report_is_the_ratio_of_work_per_joule(demo_runs: Path, comparison: Path) -> None:
    cfs = load_run(demo_runs / "cfs").summary
    mx = load_run(demo_runs / "maxwell").summary
    row = next(
        line
        for line in comparison.read_text().splitlines()
        if line.startswith("| verified work per J |")
    )
    cells = [c.strip() for c in row.strip("|").split("|")]
    assert cfs.work_per_j is not None and mx.work_per_j is not None  # both used energy
    expected = f"{mx.work_per_j / cfs.work_per_j:.3g}×" if cfs.work_per_j else "—"
    assert cells[-1] == expected


def test_no_runs_is_an_error(tmp_path: Path) -> None:
    with pytest.raises(ValueError):
        write_report([], tmp_path)


def test_the_baseline_is_named_by_what_the_kernel_runs() -> None:
    from maxwell.report import fair_scheduler_name

    assert fair_scheduler_name("6.18.0-cloud") == "Linux fair scheduler (EEVDF)"
    assert fair_scheduler_name("6.6.0") == "Linux fair scheduler (EEVDF)"
    assert fair_scheduler_name("6.5.13") == "Linux fair scheduler (CFS)"
    assert fair_scheduler_name("4.19.0") == "Linux fair scheduler (CFS)"


def test_thermal_story_reads_the_loop_and_the_first_death() -> None:
    import numpy as np

    from maxwell.report._summary import AgentSeries, AgentSummary, thermal_story

    t = np.arange(1.0, 31.0)
    temp = np.where(t <= 10, 50 + 2.5 * t, 70.0)
    temp[10] = 66.0  # the tick after the death: nobody ran
    price = np.where(t <= 10, 0.05 + 0.03 * t, 0.3)
    cap = np.full(30, 1.5)

    def agent(name: str, died: float | None) -> AgentSummary:
        return AgentSummary(name=name, cpu_s=0.0, work_units=0, energy_j=0.0, balance=0.0,
                            state="dead" if died else "running", death_t_s=died,
                            death_cause="apoptosis: rent" if died else None, bytes_freed=0,
                            rent=0.0, tax=0.0, reward=0.0, fine=0.0)

    cpu = np.where(t >= 12, t - 11, 0.0)
    z = np.zeros(30)
    series = {"useful": AgentSeries(t_s=t, state=("running",) * 30, cpu_s=cpu, slots=z,
                                    balance=z, bytes_freed=z, work_units=z, energy_j=z, tax=z)}
    st = thermal_story(t, temp, price, cap, 70.0, 0.05, 2.05,
                       [agent("parasite", 10.0), agent("useful", None)], series)
    assert st["last_third_median_abs_error_c"] == 0.0
    assert st["last_third_price_at_limit_share"] == 0.0
    assert st["first_death"]["agent"] == "parasite"
    assert st["peak_temp_before_c"] == 75.0 and st["temp_at_death_c"] == 75.0
    assert st["resumed"][0]["agent"] == "useful" and st["resumed"][0]["t_s"] == 12.0
