"""`maxwell dashboard`: headless screenshots and the usage errors (exit code 2)."""

from __future__ import annotations

from pathlib import Path

import pytest
from dashboard_fixture import DEATH_TICK, write_run

from maxwell.cli import main


@pytest.fixture()
def fixture_db(tmp_path: Path) -> Path:
    return write_run(tmp_path / "run" / "run.db")


def test_screenshot_writes_an_svg_of_the_chosen_tick(fixture_db: Path, tmp_path: Path,
                                                     capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "shots" / "dash.svg"
    code = main(["dashboard", str(fixture_db.parent), "--screenshot", str(out),
                 "--tick", str(DEATH_TICK), "--agent", "miner", "--size", "120x40"])
    assert code == 0 and capsys.readouterr().out.strip() == str(out)
    svg = out.read_text()
    assert svg.lstrip().startswith("<svg")
    text = svg.replace("&#160;", " ")
    assert f"tick {DEATH_TICK}/30" in text  # the tick asked for, counted from 1
    assert "APOPTOSIS: miner killed at t=18.0 s" in text


def test_screenshot_before_the_death_has_no_banner(fixture_db: Path, tmp_path: Path) -> None:
    out = tmp_path / "before.svg"
    assert main(["dashboard", str(fixture_db), "--screenshot", str(out), "--tick", "3"]) == 0
    text = out.read_text().replace("&#160;", " ")
    assert "tick 3/30" in text and "APOPTOSIS" not in text


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        (["--speed", "0"], "--speed must be positive"),
        (["--speed", "2", "--follow"], "drop it with --follow"),
        (["--screenshot", "x.svg", "--size", "big"], "WIDTHxHEIGHT"),
        (["--screenshot", "x.svg", "--size", "20x5"], "too small"),
        (["--screenshot", "x.svg", "--tick", "0"], "counts from 1"),
    ],
)
def test_bad_options_are_usage_errors(fixture_db: Path, extra: list[str], message: str,
                                      capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["dashboard", str(fixture_db), *extra]) == 2
    assert message in capsys.readouterr().err


def test_missing_or_foreign_database_is_a_usage_error(tmp_path: Path,
                                                      capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["dashboard", str(tmp_path / "nowhere")]) == 2
    assert "--follow" in capsys.readouterr().err  # says how to wait for a starting run
    (tmp_path / "run.db").write_bytes(b"\0" * 4096)
    assert main(["dashboard", str(tmp_path), "--screenshot", str(tmp_path / "x.svg")]) == 2
    assert "not a Maxwell run database" in capsys.readouterr().err


def test_a_demo_directory_names_its_runs(tmp_path: Path,
                                        capsys: pytest.CaptureFixture[str]) -> None:
    for policy in ("cfs", "maxwell"):
        write_run(tmp_path / policy / "run.db", n_ticks=2)
    assert main(["dashboard", str(tmp_path), "--follow"]) == 2
    err = capsys.readouterr().err
    assert str(tmp_path / "cfs") in err and str(tmp_path / "maxwell") in err
