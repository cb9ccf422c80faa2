"""`maxwell bench memtrace`: exactness and cost of the memory tracer, with its floor.

Two workload children (bench_child.c compiled on the spot when a C compiler
is present, else the Python workload): the *agent*, registered and in a
cgroup of its own (v2, plus v1 memory where memory is a v1 controller) when
we may make one, and *another* process, not registered. Each runs, per state:
N iterations of (mmap, write, munmap) and (write, madvise(MADV_DONTNEED)) of
known sizes, some not page multiples (the page's whole life); the same mmaps
written and kept (`fault`), then unmapped (`free`); and N getppid() calls.
Every block is timed (the child's own CPU time: the BPF programs run in its
context) in three states, in rotating order within each run: nothing
attached, the counting programs attached, and empty programs on the same
tracepoint (the floor: the price of the tracepoint dispatch itself). Figures
are medians over runs of (state − nothing), per page or per call:

- `overhead_ns_per_traced_event`: a page the agent gives back, counted (the
  `free` block); `_traced_page_fault`: a page it faults in; `_traced_page_life`:
  both, in the mixed loop;
- `overhead_ns_per_untraced_page` (and `_fault`, `_free`): another process's
  pages — what the rest of the machine pays;
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


def states_of(ebpf: bool) -> list[str]:
    """Attachment states each run times: nothing, the counting programs, empty programs."""
    return ["none", "page", "empty"] if ebpf else ["none", "page"]


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
    kinds = ("agent_life", "agent_fault", "agent_free", "other_life", "other_fault",
             "other_free", "syscall")  # fmt: skip
    per: dict[str, dict[str, list[float]]] = {s: {k: [] for k in kinds} for s in states_of(True)}
    counted: list[int] = []
    base: dict[str, list[float]] = {"page": [], "syscall": []}  # nothing attached
    held = expected // 2  # the `fault` block maps (and `free` unmaps) one size per iteration
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

        def freed_by(command: str) -> tuple[int, int]:
            """(CPU ns, bytes counted) of one command of the agent."""
            before = tracer.read(pids)["bench"]
            ns = int(work.cmd(command).split()[1])
            return ns, tracer.read(pids)["bench"] - before

        for w in (work, other):  # warm-up: page tables, code paths, the region's VMAs
            w.cmd(f"bench {n} {sizes}")
        states = states_of(ebpf is not None)
        held_pages = held // PAGE_BYTES
        unit = {k: n if k == "syscall" else pages if k.endswith("life") else held_pages
                for k in kinds}  # fmt: skip
        for r in range(runs):
            t: dict[str, dict[str, int]] = {}
            k = r % len(states)
            for state in states[k:] + states[:k]:
                if ebpf is not None and floor is not None:
                    ebpf.attach() if state == "page" else ebpf.detach()
                    floor.attach() if state == "empty" else floor.detach()
                life_ns, got_life = freed_by(f"bench {n} {sizes}")
                fault_ns, got_fault = freed_by(f"fault {n} {sizes}")
                free_ns, got_free = freed_by("free")
                t[state] = {
                    "agent_life": life_ns,
                    "agent_fault": fault_ns,
                    "agent_free": free_ns,
                    "other_life": int(other.cmd(f"bench {n} {sizes}").split()[1]),
                    "other_fault": int(other.cmd(f"fault {n} {sizes}").split()[1]),
                    "other_free": int(other.cmd("free").split()[1]),
                    "syscall": int(work.cmd(f"syscalls {n}").split()[1]),
                }
                if state == "page":
                    counted.append(got_life)
                    if got_fault != 0 or got_free != held:
                        counted.append(-1)  # the split blocks must be exact too
                elif ebpf is not None and (got_life or got_fault or got_free):
                    counted.append(-1)  # a detached tracer must count nothing
            base["page"].append(t["none"]["other_life"] / pages)
            base["syscall"].append(t["none"]["syscall"] / n)
            for state in states[1:]:
                for key in kinds:
                    per[state][key].append((t[state][key] - t["none"][key]) / unit[key])
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
    names = {  # result key suffix -> measured block
        "traced_event": "agent_free",
        "traced_page_fault": "agent_fault",
        "traced_page_life": "agent_life",
        "untraced_page": "other_life",
        "untraced_page_fault": "other_fault",
        "untraced_page_free": "other_free",
        "untraced_syscall": "syscall",
    }
    page, empty = per["page"], per["empty"]
    result: dict[str, Any] = {
        "backend": backend,
        "events": 2 * n,
        "pages_per_block": pages,
        "expected_bytes": expected,
        "counted_bytes": int(statistics.median(counted)),
        "exact": all(c == expected for c in counted),
    }
    for name, key in names.items():
        result[f"overhead_ns_per_{name}"] = _median(page[key])
        result[f"overhead_ns_per_{name}_iqr"] = _iqr(page[key])
    result |= {
        "baseline_ns_per_page": _median(base["page"]),
        "baseline_ns_per_syscall": _median(base["syscall"]),
        "runs": runs,
        "keyed_by": keyed,
        "workload": "c" if child is not None else "python",
        "label": label,
        "reason": reason,
        "load_avg_1min": [load_before, _load()],
        "counted_bytes_runs": counted,
    }
    if empty["agent_free"]:
        for name, key in names.items():
            result[f"floor_ns_per_{name}"] = _median(empty[key])
    # Kept for readers of older results: the same figure under its former name.
    result["overhead_ns_per_event"] = result["overhead_ns_per_traced_event"]
    return result
