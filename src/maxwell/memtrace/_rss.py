"""The fallback backend: bytes freed estimated from decreases of each process's resident set.

Used without privileges, BTF, the memcg tracepoints or the built BPF object.
Each read samples the RSS of every process of every agent (psutil, i.e.
/proc/<pid>/statm) and adds each living process's decrease since the
previous sample. What it sees of the ways the eBPF tracer counts (checked by
tests/memtrace/test_free_ways.py, `SEES` below): a resident page unmapped or
dropped by a living process between two samples — munmap (also through the
32-bit entry), madvise DONTNEED/DONTNEED_LOCKED/REMOVE, process_madvise,
io_uring's madvise,
brk and mremap shrinking, mmap(MAP_FIXED) over written pages, huge pages, and
MADV_FREE pages once reclaim took them. What it misses: memory freed by a
process that exits (it is gone before the next sample: a parasite forking
children that allocate and exit pays nothing here), a memfd or tmpfs file
written with write() and truncated (never mapped, never in RSS), and any
free refilled before the next sample. It may also count what the eBPF tracer
does not: a file mapping unmapped (its pages stay in the page cache) and
pages of a forked child that were shared with its parent. Hence "estimate
(lower bound)" for the ways above, not an exact figure. Touches /proc only.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import psutil

# The ways of freeing (tests/memtrace/free_ways.c) this backend sees; the others it misses.
SEES = frozenset(
    {
        "munmap",
        "madv_dontneed",
        "madv_dontneed_locked",
        "madv_remove",
        "madv_free",
        "process_madvise",
        "io_uring",
        "brk",
        "mremap",
        "map_fixed",
        "int80",
        "thp",
    }
)
MISSES = frozenset({"memfd", "exit", "forkexit"})


def _rss_bytes(pid: int) -> int | None:
    try:
        return int(psutil.Process(pid).memory_info().rss)
    except (psutil.Error, OSError):
        return None


class RssTracer:
    """Lower-bound estimate of bytes freed per agent from RSS sampling."""

    source = "rss-sampling"
    exact = False
    label = "estimate (lower bound)"

    def __init__(self, reason: str) -> None:
        self.reason = reason
        self._leaders: dict[str, int] = {}
        self._freed: dict[str, int] = {}
        self._last: dict[str, dict[int, int]] = {}

    def add(self, name: str, cgroup_id: int | None, pid: int) -> None:
        """Track `name` from its leader `pid` (the cgroup id is not needed for sampling)."""
        self._leaders[name] = pid
        self._freed.setdefault(name, 0)
        last = self._last.setdefault(name, {})
        rss = _rss_bytes(pid)
        if rss is not None:
            last[pid] = rss

    def read(self, pids: Mapping[str, Sequence[int]]) -> dict[str, int]:
        """Cumulative estimated bytes freed per agent (RSS decreases of living processes)."""
        for name, leader in self._leaders.items():
            prev = self._last[name]
            now: dict[int, int] = {}
            for pid in pids.get(name, (leader,)):
                rss = _rss_bytes(pid)
                if rss is None:
                    continue
                before = prev.get(pid)
                if before is not None and rss < before:
                    self._freed[name] += before - rss
                now[pid] = rss
            # Processes that exited drop out: their memory went back at exit, not by a free.
            self._last[name] = now
        return dict(self._freed)

    def close(self) -> None:
        self._last.clear()
