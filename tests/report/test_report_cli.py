"""`maxwell report`, `maxwell export` and `maxwell baseline` from the command line."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from maxwell.cli import main
from maxwell.report._cli import _default_report_dir


def test_report_one_run_json(
    demo_runs: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str], plot_files: set[str]
) -> None:
    out = tmp_path / "rep"
    assert main(["report", str(demo_runs / "maxwell" / "run.db"), "--out", str(out), "--json"]) == 0
    doc = json.loads(capsys.readouterr().out)
    assert doc["report"] == str(out / "report.md")
    assert {Path(p).name for p in doc["plots"]} == plot_files
    (run,) = doc["runs"]
    assert run["policy"] == "maxwell"
    assert run["parasite"] is None or run["parasite"]["agent"] in run["agents"]
    assert set(run["agents"]) == {"scientist", "miner"}  # the demo cast
    text = (out / "report.md").read_text()
    assert text.startswith("# Maxwell: maxwell\n")
    assert "## Summary" in text and "÷" not in text  # one run: no comparison columns
    assert f"maxwell report {demo_runs / 'maxwell' / 'run.db'} --out {out}" in text


def test_default_report_dir(tmp_path: Path) -> None:
    (tmp_path / "demo" / "cfs").mkdir(parents=True)
    (tmp_path / "demo" / "maxwell").mkdir()
    demo = (tmp_path / "demo").resolve()
    assert _default_report_dir([demo / "cfs"]) == demo / "cfs" / "report"
    assert _default_report_dir([demo / "cfs" / "run.db"]) == demo / "cfs" / "report"
    assert _default_report_dir([demo / "cfs", demo / "maxwell"]) == demo / "report"


def test_bad_run_path_is_a_usage_error(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["report", str(tmp_path / "nothing")]) == 2
    assert "run directory" in capsys.readouterr().err
    (tmp_path / "run.db").write_bytes(b"garbage" * 200)
    assert main(["export", str(tmp_path)]) == 2


def test_export_command(
    demo_runs: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "csv"
    assert (
        main(["export", str(demo_runs / "maxwell"), "--format", "csv", "--out", str(out), "--json"])
        == 0
    )
    doc = json.loads(capsys.readouterr().out)
    assert set(doc["files"]) == {"runs", "ticks", "agent_ticks", "events", "transfers"}
    assert all(Path(p).parent == out for p in doc["files"].values())


@pytest.mark.slow
def test_baseline_runs_the_cfs_cast(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "baseline"
    assert main(["baseline", "--duration", "4", "--out", str(out), "--json"]) == 0
    doc = json.loads(capsys.readouterr().out)
    assert doc["run"]["policy"] == "cfs"
    db = Path(doc["run"]["db"])
    assert db.is_file() and db.parent == out
    assert doc["parasite"] is None or 0 <= doc["parasite"]["share_of_attributed"] <= 1
    assert doc["primes_per_j"] == pytest.approx(doc["run"]["work_per_j"])
    assert Path(doc["report"]).is_file()
