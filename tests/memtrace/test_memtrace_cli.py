"""`maxwell bench memtrace --json`: one JSON object, exact on this machine when eBPF loads."""

from __future__ import annotations

import argparse
import json

import pytest

from maxwell.cli import Commands, UsageError
from maxwell.memtrace import _cli, _ebpf


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="maxwell")
    top = parser.add_subparsers()
    bench = top.add_parser("bench").add_subparsers()
    experiment = top.add_parser("experiment").add_subparsers()
    _cli.register(Commands(top=top, bench=bench, experiment=experiment))
    return parser


def test_bench_json_is_one_exact_object(capsys):
    args = _parser().parse_args(["bench", "memtrace", "--json", "--events", "600", "--runs", "2"])
    assert args.func(args) == 0
    out = capsys.readouterr().out
    result = json.loads(out)
    assert out.count("\n") == 1
    for key in (
        "backend",
        "events",
        "expected_bytes",
        "counted_bytes",
        "exact",
        "overhead_ns_per_traced_event",
        "overhead_ns_per_untraced_page",
        "overhead_ns_per_untraced_syscall",
        "overhead_ns_per_traced_page_fault",
        "baseline_ns_per_page",
        "load_avg_1min",
    ):
        assert key in result
    assert result["events"] == 600
    if _ebpf.available().ok:
        assert result["backend"] == "ebpf"
        assert result["exact"] is True
        assert result["counted_bytes"] == result["expected_bytes"]
        assert "floor_ns_per_traced_event" in result  # empty programs on the same hook
    else:
        assert result["backend"] == "rss-sampling"
        assert result["exact"] is False


def test_bench_rejects_too_few_events():
    args = _parser().parse_args(["bench", "memtrace", "--events", "1"])
    with pytest.raises(UsageError, match="--events"):
        args.func(args)
