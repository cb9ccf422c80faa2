"""Temporary v2 cgroups for the memtrace benchmark and tests (not the membrane's job).

The benchmark needs a child in a cgroup of its own so the eBPF program is
measured on its production path (cgroup-id hit). Layout follows the team
rule: `<unified>/maxwell/<our-pid>-<random>/<name>`; `close()` kills what is
left inside and removes only the directories this object made. Touches the
v2 hierarchy under `root` only.
"""

from __future__ import annotations

import contextlib
import os
import secrets
import signal
import time
from pathlib import Path

UNIFIED = Path("/sys/fs/cgroup/unified")


def v2_available(root: Path = UNIFIED) -> bool:
    """True if we can make cgroups in the v2 hierarchy at `root`."""
    return (root / "cgroup.procs").exists() and os.access(root, os.W_OK)


def cgroup_id(path: Path) -> int:
    """The v2 cgroup id, as bpf_get_current_cgroup_id() reports it: the directory's inode."""
    return os.stat(path).st_ino


class TempCgroups:
    """A supervisor-like directory `maxwell/<pid>-<random>` holding leaf cgroups."""

    def __init__(self, root: Path = UNIFIED) -> None:
        self.base = root / "maxwell" / f"{os.getpid()}-{secrets.token_hex(4)}"
        self.base.mkdir(parents=True)
        self._leaves: list[Path] = []

    def make(self, name: str) -> Path:
        path = self.base / name
        path.mkdir()
        self._leaves.append(path)
        return path

    @staticmethod
    def move(path: Path, pid: int) -> None:
        (path / "cgroup.procs").write_text(f"{pid}\n")

    def close(self, timeout_s: float = 2.0) -> None:
        """Kill leftover processes, then remove the leaves and the base directory."""
        for leaf in self._leaves:
            try:
                procs = [int(p) for p in (leaf / "cgroup.procs").read_text().split()]
            except OSError:
                procs = []
            for pid in procs:
                with contextlib.suppress(ProcessLookupError):
                    os.kill(pid, signal.SIGKILL)
        deadline = time.monotonic() + timeout_s
        for path in [*self._leaves, self.base]:
            while path.exists():
                try:
                    path.rmdir()
                except OSError:
                    # Still populated for a moment after SIGKILL; wall-clock wait, not logic.
                    if time.monotonic() > deadline:
                        raise
                    time.sleep(0.01)
        self._leaves.clear()

    def __enter__(self) -> TempCgroups:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
