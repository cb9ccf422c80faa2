"""`maxwell bench memtrace`: exactness and cost per traced call of the memory tracer.

A workload child (bench_child.c compiled on the spot when a C compiler is
present, else the Python workload; in a v2 cgroup of its own when we may make
one, so the eBPF program runs its production path) does N mmap+munmap and N
madvise(MADV_DONTNEED) of known sizes, some not page multiples, timed with
no tracer loaded and with the tracer attached, alternately, several times.
The overhead per event is the median over runs of the CPU-time difference
divided by 2N; the cost added to other syscalls is measured the same way
with getppid(), and `overhead_ns_per_traced_call` removes from the former the
share of the untraced mmap in each iteration. Touches a temporary cgroup and the BPF syscall.
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


def run(
    events: int = 4000, runs: int = 31, prefer: str = "auto", design: str = "auto"
) -> dict[str, Any]:
    """Measure; `events` is the number of traced calls per timed block (half munmap, half madvise).

    The tracer is loaded once; its programs are attached for one block and detached for
    the next (order alternating), so each pair compares the same child, warm, seconds apart.
    """
    from maxwell.memtrace import _ebpf, open_tracer

    n = max(1, events // 2)
    sizes = " ".join(str(s) for s in BENCH_SIZES)
    expected = expected_bench_bytes(n)
    tmp = tempfile.TemporaryDirectory(prefix="maxwell-bench-")
    child = build_c_child(Path(tmp.name))
    cgroups = _cgroup.TempCgroups() if os.geteuid() == 0 and _cgroup.v2_available() else None
    work = Workload([str(child)] if child is not None else None)
    tracer = None
    overhead_ns: list[float] = []
    other_ns: list[float] = []
    traced_ns: list[float] = []
    counted: list[int] = []
    try:
        cg_id = None
        if cgroups is not None:
            leaf = cgroups.make("bench")
            cgroups.move(leaf, work.pid)
            cg_id = _cgroup.cgroup_id(leaf)
        tracer = open_tracer(prefer, design=design)
        ebpf = tracer if isinstance(tracer, _ebpf.EbpfTracer) else None
        tracer.add("bench", cg_id, work.pid)
        pids = {"bench": [work.pid]}
        work.cmd(f"bench {n} {sizes}")  # warm-up: page tables, code paths, the region's VMAs
        for r in range(runs):
            t: dict[bool, tuple[int, int]] = {}
            for traced in (False, True) if r % 2 == 0 else (True, False):
                if ebpf is not None:
                    ebpf.attach() if traced else ebpf.detach()
                before = tracer.read(pids)["bench"]
                elapsed = int(work.cmd(f"bench {n} {sizes}").split()[1])
                got = tracer.read(pids)["bench"] - before
                other = int(work.cmd(f"syscalls {n}").split()[1])
                t[traced] = (elapsed, other)
                if traced:
                    counted.append(got)
                elif got != 0:
                    counted.append(-got)  # a detached tracer must count nothing
            overhead_ns.append((t[True][0] - t[False][0]) / (2 * n))
            other_ns.append((t[True][1] - t[False][1]) / n)
            # Each iteration also makes one untraced call (mmap), taxed like any syscall.
            traced_ns.append(((t[True][0] - t[False][0]) / n - other_ns[-1]) / 2)
        backend, label, reason = tracer.source, tracer.label, tracer.reason
        tracer_design = ebpf.design if ebpf is not None else None
    finally:
        if tracer is not None:
            tracer.close()
        work.close()
        if cgroups is not None:
            cgroups.close()
        tmp.cleanup()
    return {
        "backend": backend,
        "events": 2 * n,
        "expected_bytes": expected,
        "counted_bytes": int(statistics.median(counted)),
        "exact": all(c == expected for c in counted),
        "overhead_ns_per_event": round(statistics.median(overhead_ns), 1),
        "overhead_ns_per_event_runs": [round(x, 1) for x in overhead_ns],
        "overhead_ns_per_event_iqr": _iqr(overhead_ns),
        "overhead_ns_per_traced_call": round(statistics.median(traced_ns), 1),
        "overhead_ns_per_other_syscall": round(statistics.median(other_ns), 1),
        "runs": runs,
        "keyed_by": "cgroup" if cgroups is not None else "pid",
        "workload": "c" if child is not None else "python",
        "design": tracer_design,
        "label": label,
        "reason": reason,
        "counted_bytes_runs": counted,
    }
