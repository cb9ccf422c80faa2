"""`maxwell cleanup` and `maxwell bench membrane`, and raise_priority, as a user runs them."""

from __future__ import annotations

import argparse
import json
import subprocess
from pathlib import Path

import pytest
from membrane_programs import PY

from maxwell.cli import Commands, UsageError
from maxwell.membrane._cli import register


def _parser() -> argparse.ArgumentParser:
    # Only this package's commands, so these tests do not depend on the others.
    parser = argparse.ArgumentParser(prog="maxwell")
    top = parser.add_subparsers(dest="command")
    bench = top.add_parser("bench").add_subparsers(dest="bench")
    experiment = top.add_parser("experiment").add_subparsers(dest="experiment")
    register(Commands(top=top, bench=bench, experiment=experiment))
    return parser


def _run(argv: list[str]) -> int:
    args = _parser().parse_args(argv)
    return int(args.func(args))


def test_cleanup_json_prints_one_object(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    assert _run(["cleanup", "--json", "--cgroup-root", str(tmp_path)]) == 0
    out = json.loads(capsys.readouterr().out)
    assert set(out) >= {"removed_supervisors", "killed_pids", "removed_cgroups", "errors"}


def test_cleanup_text(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    assert _run(["cleanup", "--cgroup-root", str(tmp_path)]) == 0
    assert "removed 0 dead supervisor(s)" in capsys.readouterr().out


def test_bench_membrane_json_has_the_promised_keys(capsys: pytest.CaptureFixture[str]) -> None:
    assert _run(["bench", "membrane", "--json", "--cycles", "5", "--backend", "signals"]) == 0
    out = json.loads(capsys.readouterr().out)
    r = out["backends"]["signals"]
    for key in ("pause", "stop", "resume"):
        for stat in ("p50", "p99", "max"):
            assert r[f"{key}_{stat}_us"] > 0
    assert r["pause_p50_us"] <= r["pause_p99_us"] <= r["pause_max_us"]
    assert r["cycles"] == 5


def test_bench_rejects_bad_input() -> None:
    with pytest.raises(UsageError, match="--cycles"):
        _run(["bench", "membrane", "--cycles", "0"])
    with pytest.raises(UsageError, match="unknown --backend"):
        _run(["bench", "membrane", "--backend", "vm"])


RAISE = """
import os, subprocess, sys
from maxwell.membrane import raise_priority
print(raise_priority())
print(os.sched_getscheduler(0) & ~os.SCHED_RESET_ON_FORK == os.SCHED_FIFO)
probe = "import os; print(os.sched_getscheduler(0) == os.SCHED_OTHER, os.getpriority(0, 0))"
child = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True)
print(child.stdout.strip())
"""


def test_raise_priority_reports_what_it_did_and_children_do_not_inherit_it() -> None:
    # In a separate process: the test runner itself must not become real-time.
    out = subprocess.run([PY, "-c", RAISE], capture_output=True, text=True, check=True)
    said, fifo, child = out.stdout.splitlines()
    assert said.startswith(("SCHED_FIFO", "nice", "not permitted"))
    assert (said.startswith("SCHED_FIFO")) == (fifo == "True")
    if said.startswith("SCHED_FIFO"):
        assert child == "True 0"  # SCHED_RESET_ON_FORK


def test_agents_spawned_by_a_prioritised_supervisor_run_at_normal_priority(
    tmp_path: Path,
) -> None:
    code = f"""
import os, sys, time
from maxwell.membrane import AgentSpec, raise_priority, select_backend
raise_priority(); os.setpriority(os.PRIO_PROCESS, 0, -5)
b = select_backend("signals")
probe = "import os; open({str(tmp_path / 'n')!r}, 'w').write(str(os.getpriority(0, 0)))"
h = b.spawn(AgentSpec("n", [sys.executable, "-c", probe]))
while h.exit_status is None:
    time.sleep(0.01)
b.close()
"""
    subprocess.run([PY, "-c", code], check=True, timeout=60)
    assert (tmp_path / "n").read_text() == "0"
