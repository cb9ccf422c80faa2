"""`maxwell bench agents` (registered by the agents package's _cli)."""

from __future__ import annotations

import argparse
import json

import pytest

from maxwell.agents import _cli
from maxwell.cli import Commands, UsageError


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser()
    top = p.add_subparsers()
    bench = top.add_parser("bench").add_subparsers()
    exp = top.add_parser("experiment").add_subparsers()
    _cli.register(Commands(top=top, bench=bench, experiment=exp))
    return p


def test_bench_agents_json(capsys: pytest.CaptureFixture[str]) -> None:
    args = _parser().parse_args(["bench", "agents", "--json", "--repeat", "1"])
    assert args.func(args) == 0
    out = json.loads(capsys.readouterr().out)
    assert out["sieve_numbers_per_s"] > 0 and out["verify_resieve_2p23_ms"] > 0
    assert out["endpoint_valid_line_us"] > 0 and out["endpoint_garbage_line_us"] > 0


def test_bench_rejects_bad_repeat() -> None:
    args = _parser().parse_args(["bench", "agents", "--repeat", "0"])
    with pytest.raises(UsageError):
        args.func(args)
