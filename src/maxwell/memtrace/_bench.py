"""`maxwell bench memtrace`: exactness and cost of the memory tracer, with its floor.

Two workload children (bench_child.c compiled on the spot when a C compiler
is present, else the Python workload): the *agent*, registered and in a
cgroup of its own (v2, plus v1 memory where memory is a v1 controller) when
we may make one, and *another* process, not registered. Each does N
iterations of (mmap, write, munmap) and (write, madvise(MADV_DONTNEED)) of
known sizes, some not page multiples, and N getppid() calls. Every block is
timed (the child's own CPU time: the BPF programs run in its context) in
three states, in rotating order within each run: nothing attached, the
counting programs attached, and empty programs on the same tracepoints (the
floor: the price of the tracepoint dispatch itself). Figures are medians over
runs of (state − nothing) per event, where an event is one page freed (and
faulted in before, which crosses the same hooks):

- `overhead_ns_per_traced_event`: the agent's pages, counted;
- `overhead_ns_per_untraced_page`: another process's pages (what the rest of
  the machine pays for a page it faults in and frees);
- `overhead_ns_per_untraced_syscall`: a syscall that touches no memory;
- `floor_ns_*`: the same with the empty programs;
- `baseline_ns_per_page` / `_per_syscall`: what a page (write + free) and a
  getppid() cost with nothing attached, to read the others against.

Touches a temporary cgroup and the BPF syscall.
"""

from __future__ import annotations

import os
import shutil
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any

from maxwell.memtrace import _cgroup

PAGE_BYTES = 4096
# Mixed sizes, some not page multiples (the kernel, and the tracer, round up).
BENCH_SIZES = (4096, 5000, 1, 65536, 12295, 8192)


def page_round(size: int) -> int:
    return -(-size // PAGE_BYTES) * PAGE_BYTES


def expected_bench_bytes(n: int, sizes: tuple[int, ...] = BENCH_SIZES) -> int:
    """Bytes the `bench n` command frees: each iteration munmaps and madvises one size."""
    return sum(2 * page_round(sizes[i % len(sizes)]) for i in range(n))


CHILD_SOURCE = Path(__file__).resolve().parent / "bench_child.c"


def build_c_child(directory: Path) -> Path | None:
    """Compile bench_child.c into `directory` with cc/clang; None if no compiler works."""
    for cc in ("cc", "clang", "gcc"):
        exe = shutil.which(cc)
        if exe is None:
            continue
        out = directory / "bench_child"
        done = subprocess.run(
            [exe, "-O2", "-o", str(out), str(CHILD_SOURCE)], capture_output=True, timeout=60
        )
        if done.returncode == 0:
            return out
    return None


class Workload:
    """A running workload child (`maxwell.memtrace._workload`, or a given argv), line by line."""

    def __init__(self, argv: list[str] | None = None, env: dict[str, str] | None = None) -> None:
        self.proc = subprocess.Popen(
            argv or [sys.executable, "-m", "maxwell.memtrace._workload"],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
            bufsize=1,
            env=env,
        )
        self.pid = self.proc.pid
        first = self._readline()
        if first != f"ready {self.pid}":
            self.close()
            raise RuntimeError(f"workload did not start: {first!r}")

    def _readline(self) -> str:
        assert self.proc.stdout is not None
        return self.proc.stdout.readline().strip()

    def cmd(self, line: str) -> str:
        """Send one command, wait for its answer (the work is finished when this returns)."""
        assert self.proc.stdin is not None
        self.proc.stdin.write(line + "\n")
        self.proc.stdin.flush()
        reply = self._readline()
        if not reply or reply.startswith("error"):
            raise RuntimeError(f"workload failed on {line!r}: {reply or 'exited'}")
        return reply

    def close(self) -> None:
        if self.proc.poll() is None:
            try:
                assert self.proc.stdin is not None
                self.proc.stdin.write("quit\n")
                self.proc.stdin.flush()
                self.proc.wait(timeout=5)
            except (OSError, subprocess.TimeoutExpired):
                self.proc.kill()
                self.proc.wait()
        for f in (self.proc.stdin, self.proc.stdout):
            if f is not None:
                f.close()


def _iqr(xs: list[float]) -> list[float]:
    if len(xs) < 2:
        return [round(xs[0], 1)] * 2 if xs else []
    q = statistics.quantiles(xs, n=4)
    return [round(q[0], 1), round(q[2], 1)]


def _median(xs: list[float]) -> float:
    return round(statistics.median(xs), 1)


def _load() -> float | None:
    try:
        return float(Path("/proc/loadavg").read_text().split()[0])
    except (OSError, ValueError, IndexError):
        return None


def run(events: int = 4000, runs: int = 31, prefer: str = "auto") -> dict[str, Any]:
    """Measure; `events` is the number of frees per timed block (half munmap, half madvise).

    The counting and the empty programs are loaded once each and attached in turn, so every
    run compares the same warm children, seconds apart.
    """
    from maxwell.memtrace import _ebpf, open_tracer

    n = max(1, events // 2)
    sizes = " ".join(str(s) for s in BENCH_SIZES)
    expected = expected_bench_bytes(n)
    pages = expected // PAGE_BYTES
    tmp = tempfile.TemporaryDirectory(prefix="maxwell-bench-")
    child = build_c_child(Path(tmp.name))
    cgroups = _cgroup.TempCgroups() if os.geteuid() == 0 and _cgroup.v2_available() else None
    argv = [str(child)] if child is not None else None
    work = Workload(argv)
    other = Workload(argv)
    tracer = floor = None
    per: dict[str, dict[str, list[float]]] = {
        s: {"agent": [], "other": [], "syscall": []} for s in ("page", "empty")
    }
    counted: list[int] = []
    base_page: list[float] = []  # the page's own cost, nothing attached (for relative figures)
    base_sys: list[float] = []
    load_before = _load()
    try:
        cg_id = None
        if cgroups is not None:
            leaf = cgroups.make("bench")
            cgroups.move(leaf, work.pid)
            cg_id = _cgroup.cgroup_id(leaf)
        tracer = open_tracer(prefer)
        ebpf = tracer if isinstance(tracer, _ebpf.EbpfTracer) else None
        if ebpf is not None:
            ebpf.detach()
            floor = _ebpf.EbpfTracer(design="empty")
            floor.detach()
        tracer.add("bench", cg_id, work.pid)
        pids = {"bench": [work.pid]}
        for w in (work, other):  # warm-up: page tables, code paths, the region's VMAs
            w.cmd(f"bench {n} {sizes}")
        states = ["none", "page", "empty"] if ebpf is not None else ["none", "page"]
        for r in range(runs):
            t: dict[str, tuple[int, int, int]] = {}
            k = r % len(states)
            for state in states[k:] + states[:k]:
                if ebpf is not None and floor is not None:
                    ebpf.attach() if state == "page" else ebpf.detach()
                    floor.attach() if state == "empty" else floor.detach()
                before = tracer.read(pids)["bench"]
                agent_ns = int(work.cmd(f"bench {n} {sizes}").split()[1])
                got = tracer.read(pids)["bench"] - before
                other_ns = int(other.cmd(f"bench {n} {sizes}").split()[1])
                sys_ns = int(work.cmd(f"syscalls {n}").split()[1])
                t[state] = (agent_ns, other_ns, sys_ns)
                if state == "page":
                    counted.append(got)
                elif got != 0 and ebpf is not None:
                    counted.append(-got)  # a detached tracer must count nothing
            base_page.append(t["none"][1] / pages)
            base_sys.append(t["none"][2] / n)
            for state in states[1:]:
                per[state]["agent"].append((t[state][0] - t["none"][0]) / pages)
                per[state]["other"].append((t[state][1] - t["none"][1]) / pages)
                per[state]["syscall"].append((t[state][2] - t["none"][2]) / n)
        backend, label, reason = tracer.source, tracer.label, tracer.reason
        keyed = ebpf.keyed_by["bench"] if ebpf is not None else ("cgroup" if cg_id else "pid")
    finally:
        for tr in (tracer, floor):
            if tr is not None:
                tr.close()
        work.close()
        other.close()
        if cgroups is not None:
            cgroups.close()
        tmp.cleanup()
    page, empty = per["page"], per["empty"]
    result: dict[str, Any] = {
        "backend": backend,
        "events": 2 * n,
        "pages_per_block": pages,
        "expected_bytes": expected,
        "counted_bytes": int(statistics.median(counted)),
        "exact": all(c == expected for c in counted),
        "overhead_ns_per_traced_event": _median(page["agent"]),
        "overhead_ns_per_traced_event_iqr": _iqr(page["agent"]),
        "overhead_ns_per_untraced_page": _median(page["other"]),
        "overhead_ns_per_untraced_page_iqr": _iqr(page["other"]),
        "overhead_ns_per_untraced_syscall": _median(page["syscall"]),
        "overhead_ns_per_untraced_syscall_iqr": _iqr(page["syscall"]),
        "baseline_ns_per_page": _median(base_page),
        "baseline_ns_per_syscall": _median(base_sys),
        "runs": runs,
        "keyed_by": keyed,
        "workload": "c" if child is not None else "python",
        "label": label,
        "reason": reason,
        "load_avg_1min": [load_before, _load()],
        "counted_bytes_runs": counted,
    }
    if empty["agent"]:
        result |= {
            "floor_ns_per_traced_event": _median(empty["agent"]),
            "floor_ns_per_untraced_page": _median(empty["other"]),
            "floor_ns_per_untraced_syscall": _median(empty["syscall"]),
        }
    # Kept for readers of older results: the same figure under its former name.
    result["overhead_ns_per_event"] = result["overhead_ns_per_traced_event"]
    return result
