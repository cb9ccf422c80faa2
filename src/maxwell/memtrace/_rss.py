"""The fallback backend: bytes freed estimated from decreases of each process's resident set.

Used without privileges, BTF or the built BPF object. Each read samples the
RSS of every process of every agent (psutil, i.e. /proc/<pid>/statm) and adds
each living process's decrease since the previous sample. It is a lower bound
of what munmap/madvise released: frees of pages never touched, frees refilled
between two samples and frees of a process that exits before the next sample
are missed. (Reclaim of file pages under memory pressure also lowers RSS and
would be counted; agents here are anonymous-memory workloads.) Touches /proc only.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import psutil


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
