"""The membrane's abstract Handle and Backend: the one interface every tier implements.

No I/O of its own beyond reaping the leader; tiers live in `_cgroup.py` and
`_signals.py`.
"""

from __future__ import annotations

import atexit
import contextlib
import subprocess
import threading
from abc import ABC, abstractmethod
from pathlib import Path
from typing import Any

from maxwell.membrane import _proc
from maxwell.membrane._types import AgentSpec, CleanupReport, MembraneError, Usage

# Jail levels whose agents have no pid namespace of their own (see `_ensure_watchdog`).
NO_PID_NAMESPACE = ("drop", "user")


class Handle(ABC):
    """One running agent: its whole process tree is paused, metered and killed as a unit."""

    name: str
    pid: int  # the leader (also its process group and session id)
    cgroup_id: int | None  # inode of the agent's v2 cgroup directory (eBPF key), if any
    paused: bool
    # Limits from the spec this tier could not enforce (e.g. ("pids_max",) on signals).
    unenforced: tuple[str, ...]

    def __init__(self, name: str, proc: subprocess.Popen[bytes]) -> None:
        self.name = name
        self.pid = proc.pid
        self.cgroup_id = None
        self.paused = False
        self.unenforced = ()
        self._proc = proc
        self._killed = False

    @property
    def exit_status(self) -> int | None:
        """The leader's exit status once it has exited (negative: killed by that signal)."""
        return self._proc.poll()

    @abstractmethod
    def pause(self, wait: bool = True) -> None:
        """Stop the whole tree; returns once the kernel confirms it is stopped.

        `wait=False` only makes the request: every task then stops at its next
        return to user mode (a task waiting for a CPU runs no more agent code),
        but the kernel confirms only once each task has run to that point, which
        on a loaded machine can take a scheduler slice.
        """

    @abstractmethod
    def resume(self) -> None:
        """Let the whole tree run again."""

    @abstractmethod
    def set_cpu(self, cores: float | None) -> None:
        """Cap the tree at `cores` CPUs (None: no cap)."""

    @abstractmethod
    def kill(self) -> None:
        """Kill the whole tree (never leaving anything frozen) and reap; idempotent."""

    @abstractmethod
    def usage(self) -> Usage:
        """Cumulative CPU seconds of the whole tree (children included), RSS, process count."""

    @abstractmethod
    def pids(self) -> list[int]:
        """Live processes of the tree."""

    @abstractmethod
    def alive(self) -> bool:
        """True while any process of the tree is alive."""

    def verify(self) -> list[str]:
        """Re-check that what this handle enforces still holds (frozen state, quota),
        restore it where it drifted, and describe each drift (empty: untouched).
        Tiers that enforce nothing checkable return []."""
        return []

    def _reap_leader(self, timeout_s: float) -> None:
        with contextlib.suppress(subprocess.TimeoutExpired):
            self._proc.wait(timeout=timeout_s)


class Backend(ABC):
    """A containment tier. `reason` says why it was chosen (or how it is limited)."""

    name: str = "abstract"
    reason: str = ""
    # What this tier enforces: subset of {"cpu_quota", "pids_max", "memory_max", "whole_tree"}.
    capabilities: frozenset[str] = frozenset()

    # Where `cleanup_stale` looks (the cgroup tiers set their own root).
    cgroup_root: Path = Path("/sys/fs/cgroup")

    def __init__(self, *, subreaper: bool = True) -> None:
        self.supervisor_id = _proc.new_supervisor_id()
        self._watchdog: Any = None  # _cleanup.Watchdog, started by the first agent needing it
        self._watchdog_lock = threading.Lock()
        self.cleanup_report: CleanupReport | None = None
        self.handles: dict[str, Handle] = {}
        self._closed = False
        # Orphaned grandchildren then reparent to us instead of pid 1, so they
        # can be reaped (and, on the signals tier, found); some inits (this
        # Firecracker guest's among them) never reap orphans.
        self.subreaper = _proc.set_child_subreaper() if subreaper else False
        atexit.register(self.close)

    def spawn(self, spec: AgentSpec) -> Handle:
        if self._closed:
            raise MembraneError("backend is closed")
        old = self.handles.get(spec.name)
        if old is not None:
            if old.alive():
                raise MembraneError(f"agent {spec.name!r} is already running (pid {old.pid})")
            self._forget(old)
        if spec.jail is not None and spec.jail.jail.level in NO_PID_NAMESPACE:
            self._ensure_watchdog()
        handle = self._spawn(spec)
        self.handles[spec.name] = handle
        return handle

    def _ensure_watchdog(self) -> None:
        """Jail levels without a pid namespace: if this supervisor is SIGKILLed, nothing in
        the kernel ends an agent's daemons, so a watchdog process does (`_cleanup`)."""
        with self._watchdog_lock:
            if self._watchdog is None:
                from maxwell.membrane._cleanup import Watchdog

                self._watchdog = Watchdog(self.cgroup_root)

    @abstractmethod
    def _spawn(self, spec: AgentSpec) -> Handle: ...

    def _forget(self, handle: Handle) -> None:
        handle.kill()
        self.handles.pop(handle.name, None)

    def close(self) -> None:
        """Kill every agent's whole tree, thaw, reap, remove this supervisor's cgroups."""
        if self._closed:
            return
        self._closed = True
        errors = []
        for handle in list(self.handles.values()):
            try:
                handle.kill()
            except Exception as err:  # keep going: the others must die too
                errors.append(f"{handle.name}: {err}")
        try:
            self._close_tier()
        except Exception as err:
            errors.append(str(err))
        if self._watchdog is not None and not errors:
            self._watchdog.stand_down()
        atexit.unregister(self.close)
        if errors:
            raise MembraneError("close: " + "; ".join(errors))

    def _close_tier(self) -> None:  # noqa: B027 - optional hook, most tiers need none
        """Tier-specific teardown after every agent is dead."""

    def __enter__(self) -> Backend:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
