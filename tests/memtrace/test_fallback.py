"""The RSS-sampling fallback, backend selection and the unprivileged path."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from maxwell.common import Check
from maxwell.memtrace import MemtraceError, _ebpf, _rss, doctor_checks, open_tracer

MIB = 1 << 20


def test_rss_tracer_counts_a_resident_free_as_a_lower_bound(workloads):
    w = workloads()
    tracer = open_tracer("rss")
    assert (tracer.source, tracer.exact, tracer.label) == (
        "rss-sampling",
        False,
        "estimate (lower bound)",
    )
    tracer.add("a", None, w.pid)
    pids = {"a": [w.pid]}
    w.cmd(f"touch {16 * MIB}")  # 16 MiB written: resident
    base = tracer.read(pids)["a"]
    w.cmd("untouch")
    freed = tracer.read(pids)["a"] - base
    # The exact figure is 16 MiB; sampling may miss a little but never invents a free here.
    assert 15 * MIB <= freed <= 16 * MIB + MIB // 4
    tracer.close()


def test_rss_tracer_misses_untouched_frees_and_growth_is_not_a_free(workloads):
    w = workloads()
    tracer = _rss.RssTracer(reason="test")
    tracer.add("a", None, w.pid)
    pids = {"a": [w.pid]}
    base = tracer.read(pids)["a"]
    w.cmd(f"munmap {8 * MIB}")  # never touched: no RSS change, invisible to sampling
    w.cmd(f"touch {4 * MIB}")  # growth
    assert tracer.read(pids)["a"] - base < MIB // 4


def test_rss_tracer_does_not_count_an_exited_process_as_a_free(workloads):
    w = workloads()
    tracer = _rss.RssTracer(reason="test")
    tracer.add("a", None, w.pid)
    w.cmd(f"touch {8 * MIB}")
    base = tracer.read({"a": [w.pid]})["a"]
    w.close()
    assert tracer.read({"a": []})["a"] == base


def test_missing_object_is_explained(tmp_path: Path):
    why = _ebpf.available(tmp_path / "memtrace.bpf.o")
    assert not why.ok
    assert "make bpf" in why.reason


def test_unknown_backend_is_rejected():
    with pytest.raises(ValueError, match="auto, ebpf or rss"):
        open_tracer("perf")


def test_doctor_reports_the_backend_in_use():
    checks = doctor_checks()
    assert all(isinstance(c, Check) for c in checks)
    line = checks[0]
    tracer_ok = _ebpf.available().ok
    assert line.ok == tracer_ok
    assert ("eBPF, exact" if tracer_ok else "estimate (lower bound)") in line.detail


_PROBE = (
    "import json; from maxwell.memtrace import open_tracer, MemtraceError\n"
    "t = open_tracer()\n"
    "print(json.dumps([t.source, t.exact, t.label, t.reason]))\n"
    "t.close()\n"
    "try:\n    open_tracer('ebpf')\nexcept MemtraceError as e:\n    print(json.dumps(str(e)))\n"
)


def _run_unprivileged(prefix: list[str]) -> list[str]:
    env = {**os.environ, "PYTHONDONTWRITEBYTECODE": "1"}
    out = subprocess.run(
        [*prefix, sys.executable, "-c", _PROBE],
        capture_output=True,
        text=True,
        timeout=60,
        env=env,
        cwd="/",
    )
    assert out.returncode == 0, out.stderr
    return out.stdout.splitlines()


@pytest.mark.parametrize(
    "prefix",
    [
        ["setpriv", "--reuid=nobody", "--regid=nogroup", "--clear-groups"],
        # root, but without any capability
        ["setpriv", "--inh-caps=-all", "--bounding-set=-all"],
    ],
    ids=["nobody", "root-without-caps"],
)
def test_unprivileged_run_falls_back_with_the_reason(prefix: list[str]):
    if os.geteuid() != 0 or shutil.which("setpriv") is None:
        pytest.skip("needs root and setpriv to drop privileges")
    import json

    lines = _run_unprivileged(prefix)
    source, exact, label, reason = json.loads(lines[0])
    assert (source, exact, label) == ("rss-sampling", False, "estimate (lower bound)")
    assert "not privileged" in reason
    assert "not privileged" in json.loads(lines[1])
    if not _ebpf.is_elf(_ebpf.OBJECT_PATH):  # a machine without clang/bpftool says that too
        assert "not built" in reason and "apt-get install clang" in reason


def test_explicit_ebpf_raises_when_unusable(tmp_path: Path):
    missing = tmp_path / "memtrace.bpf.o"
    with pytest.raises(MemtraceError, match="not built"):
        open_tracer("ebpf", object_path=missing)
    tracer = open_tracer("auto", object_path=missing)
    assert tracer.source == "rss-sampling"
    assert "not built" in tracer.reason
    tracer.close()
