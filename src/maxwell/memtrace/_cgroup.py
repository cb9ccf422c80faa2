"""Where an agent's pages are charged (its memory cgroup), and temporary cgroups for tests/bench.

The eBPF tracer attributes a freed page to the memory cgroup it is charged
to. `memcg_dir(pid)` finds that cgroup from `/proc/<pid>/cgroup`: the v1
`memory` hierarchy when the controller is bound there (this kind of hybrid
host), else the v2 cgroup whose `cgroup.controllers` lists `memory`. Its id,
as the kernel's `cgroup_id()` reports it, is the directory's inode.

`TempCgroups` gives the benchmark and the tests a supervisor-like directory
`maxwell/<our-pid>-<random>/<name>` in the v2 tree and, where memory is a v1
controller, in the v1 memory tree too (team rule: only our own directories,
removed by `close()`, which kills what is left inside). Touches /proc and the
cgroup hierarchies under `cgroup_root` only.
"""

from __future__ import annotations

import contextlib
import os
import secrets
import signal
import time
from pathlib import Path
from typing import NamedTuple

CGROUP_ROOT = Path("/sys/fs/cgroup")
UNIFIED = CGROUP_ROOT / "unified"
PROCFS = Path("/proc")


class Mounts(NamedTuple):
    """The v2 tree and the v1 memory hierarchy, where mounted."""

    v2: Path | None
    memory_v1: Path | None


def mounts(procfs: Path = PROCFS) -> Mounts:
    """Read /proc/self/mountinfo for the cgroup2 mount and the v1 hierarchy holding `memory`."""
    v2 = mem = None
    try:
        text = (procfs / "self" / "mountinfo").read_text()
    except OSError:
        return Mounts(None, None)
    for line in text.splitlines():
        left, _, right = line.partition(" - ")
        fields, tail = left.split(), right.split()
        if len(fields) < 5 or len(tail) < 3:
            continue
        where = Path(fields[4])
        if tail[0] == "cgroup2" and v2 is None:
            v2 = where
        elif tail[0] == "cgroup" and "memory" in tail[2].split(",") and mem is None:
            mem = where
    return Mounts(v2, mem)


def memcg_dir(pid: int, procfs: Path = PROCFS, where: Mounts | None = None) -> Path | None:
    """The memory cgroup `pid` is charged to, as a directory; None if none can be found."""
    where = where if where is not None else mounts(procfs)
    try:
        lines = (procfs / str(pid) / "cgroup").read_text().splitlines()
    except OSError:
        return None
    v2_rel = None
    for line in lines:
        _, controllers, rel = line.split(":", 2)
        if "memory" in controllers.split(",") and where.memory_v1 is not None:
            return where.memory_v1 / rel.lstrip("/")
        if controllers == "":
            v2_rel = rel
    if v2_rel is None or where.v2 is None:
        return None
    d = where.v2 / v2_rel.lstrip("/")
    # The memcg is the nearest cgroup whose parent enabled `memory` for it.
    while d != where.v2:
        try:
            if "memory" in (d / "cgroup.controllers").read_text().split():
                return d
        except OSError:
            return None
        d = d.parent
    return d


def v2_available(root: Path = UNIFIED) -> bool:
    """True if we can make cgroups in the v2 hierarchy at `root`."""
    return (root / "cgroup.procs").exists() and os.access(root, os.W_OK)


def cgroup_id(path: Path) -> int:
    """The cgroup id, as bpf_get_current_cgroup_id()/cgroup_id() report it: the inode."""
    return os.stat(path).st_ino


class TempCgroups:
    """A supervisor-like directory `maxwell/<pid>-<random>` holding leaf cgroups."""

    def __init__(self, root: Path = UNIFIED, memory_root: Path | None = None) -> None:
        tag = f"{os.getpid()}-{secrets.token_hex(4)}"
        if memory_root is None:
            mem = mounts().memory_v1
            memory_root = mem if mem is not None and os.access(mem, os.W_OK) else None
        self._bases = [root / "maxwell" / tag]
        if memory_root is not None:
            self._bases.append(memory_root / "maxwell" / tag)
        self.base = self._bases[0]
        made: list[Path] = []
        try:
            for b in self._bases:
                b.mkdir(parents=True)
                made.append(b)
        except OSError:
            for b in made:
                b.rmdir()
            raise
        self._leaves: list[Path] = []

    def make(self, name: str) -> Path:
        """A leaf in every tree; returns the v2 one (whose inode is the v2 cgroup id)."""
        for b in self._bases:
            (b / name).mkdir()
            self._leaves.append(b / name)
        return self.base / name

    def memory_leaf(self, leaf: Path) -> Path | None:
        """The v1 memory cgroup made beside the v2 `leaf`, if memory is a v1 controller."""
        return self._bases[1] / leaf.name if len(self._bases) > 1 else None

    def move(self, leaf: Path, pid: int) -> None:
        """Put `pid` in the v2 `leaf` and its v1 memory twin (pages it charges from now on)."""
        for b in self._bases:
            (b / leaf.name / "cgroup.procs").write_text(f"{pid}\n")

    def close(self, timeout_s: float = 2.0) -> None:
        """Kill leftover processes, then remove the leaves and the base directories."""
        for leaf in self._leaves:
            try:
                procs = [int(p) for p in (leaf / "cgroup.procs").read_text().split()]
            except OSError:
                procs = []
            for pid in procs:
                with contextlib.suppress(ProcessLookupError):
                    os.kill(pid, signal.SIGKILL)
        deadline = time.monotonic() + timeout_s
        for path in [*self._leaves, *self._bases]:
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
