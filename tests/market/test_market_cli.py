"""`maxwell bench auction` and `maxwell experiment poa`, through this package's parser."""

from __future__ import annotations

import argparse
import json

import pytest

from maxwell.cli import Commands, UsageError
from maxwell.market._cli import register


def run(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(prog="maxwell")
    top = parser.add_subparsers(dest="command")
    bench = top.add_parser("bench").add_subparsers(dest="bench")
    experiment = top.add_parser("experiment").add_subparsers(dest="experiment")
    register(Commands(top=top, bench=bench, experiment=experiment))
    args = parser.parse_args(argv)
    result: int = args.func(args)
    return result


def test_bench_auction_json(capsys: pytest.CaptureFixture[str]) -> None:
    assert run(["bench", "auction", "--json", "--units", "20000", "--slots", "16",
                "--runs", "3"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert out["units"] == 20000 and out["runs"] == 3 and out["slots"] == 16
    assert out["median_ms"] > 0 and out["units_per_s"] > 0
    assert set(out["cases"]) == {"unit", "multi"}
    assert isinstance(out["meets_target"], bool)


def test_experiment_poa_json(capsys: pytest.CaptureFixture[str]) -> None:
    assert run(["experiment", "poa", "--json", "--instances", "15", "--slots", "2",
                "--rounds", "20", "--seed", "4"]) == 0
    out = json.loads(capsys.readouterr().out)
    for key in ("instances", "max_ratio", "p50_ratio", "p99_ratio", "learning_max_ratio",
                "method"):
        assert key in out
    assert out["instances"] == 15
    assert 1.0 <= out["max_ratio"] <= 1.282


def test_experiment_poa_deployed_json(capsys: pytest.CaptureFixture[str]) -> None:
    assert run(["experiment", "poa", "--setting", "deployed", "--json", "--instances", "10",
                "--slots", "2", "--grid", "5"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert out["instances"] == 10 and out["budgets"] is True and out["max_ratio"] >= 1.0
    assert "liquid welfare" in out["setting"]


def test_experiment_poa_text(capsys: pytest.CaptureFixture[str]) -> None:
    assert run(["experiment", "poa", "--instances", "5", "--rounds", "5"]) == 0
    assert "OPT/W" in capsys.readouterr().out


@pytest.mark.parametrize(
    "argv",
    [
        ["bench", "auction", "--units", "0"],
        ["bench", "auction", "--runs", "0"],
        ["experiment", "poa", "--instances", "0"],
        ["experiment", "poa", "--slots", "8"],
        ["experiment", "poa", "--agents", "1"],
        ["experiment", "poa", "--setting", "deployed", "--grid", "1"],
        ["experiment", "poa", "--setting", "deployed", "--grid", "50", "--agents", "5"],
    ],
)
def test_bad_arguments_are_usage_errors(argv: list[str]) -> None:
    with pytest.raises(UsageError):
        run(argv)
