"""The signals tier: SIGSTOP/SIGCONT to the agent's process group, usage from /proc.

Unprivileged and available everywhere; touches only processes of its own agents
(found by process group, session, parentage and the MAXWELL_MEMBRANE tag).

What it cannot guarantee, unlike a cgroup: a descendant that leaves the
agent's process group and session *and* scrubs its environment *and* is not
reparented to this supervisor (e.g. we are not a subreaper) is invisible to it;
CPU time of a descendant that exits between two scans and is not waited for by
another member is lost (usage is a lower bound); no CPU quota, pids or memory
limit is enforced; a pid reused between scans is guarded by its start time only.
"""

from __future__ import annotations

import contextlib
import os
import signal
import time
from pathlib import Path

from maxwell.common import Availability
from maxwell.membrane import _proc
from maxwell.membrane._base import Backend, Handle
from maxwell.membrane._types import AgentSpec, MembraneError, Usage

SPIN_S = 0.00005  # then nap, so a stopping task queued on our CPU can run (see _cgroup)
NAP_S = 0.00005
STOP_TIMEOUT_S = 2.0
KILL_TIMEOUT_S = 5.0


def availability() -> Availability:
    return Availability(True, "SIGSTOP/SIGCONT to the process group, usage from /proc")


class SignalsHandle(Handle):
    def __init__(self, backend: SignalsBackend, spec: AgentSpec) -> None:
        self._tag = f"{backend.supervisor_id}/{spec.name}"
        proc = _proc.spawn(spec, self._tag, [])
        super().__init__(spec.name, proc)
        unenforced = []
        if spec.pids_max is not None:
            unenforced.append("pids_max")
        if spec.memory_max_bytes is not None:
            unenforced.append("memory_max_bytes")
        self.unenforced = tuple(unenforced)
        self._members: dict[int, _proc.ProcStat] = {}  # pid -> last stat seen
        self._departed_cpu_ticks = 0
        self._gone = False
        self._cpu_s = 0.0
        self._last_scan = self._scan()

    def _scan(self) -> list[_proc.ProcStat]:
        """Find every live member: group, session, descendants, and adopted tagged orphans."""
        me = os.getpid()
        stats = {}
        for pid in _proc.all_pids():
            st = _proc.read_stat(pid)
            if st is not None and st.state not in ("Z", "X"):
                stats[pid] = st
        members: dict[int, _proc.ProcStat] = {}
        for pid, st in stats.items():
            old = self._members.get(pid)
            if (
                st.pgrp == self.pid
                or st.session == self.pid
                or (old is not None and old.start_ticks == st.start_ticks)
                or (st.ppid == me and pid != self.pid and _proc.read_tag(pid) == self._tag)
                or pid == self.pid
            ):
                members[pid] = st
        # Descendants by parentage (a child that called setsid but not yet orphaned).
        changed = True
        while changed:
            changed = False
            for pid, st in stats.items():
                if pid not in members and st.ppid in members:
                    members[pid] = st
                    changed = True
        # A member that vanished: keep its CPU unless a member parent will have
        # reaped it into its cutime (its own stat then counts it).
        for pid, old in self._members.items():
            if pid not in members and old.ppid not in members:
                self._departed_cpu_ticks += old.cpu_ticks + old.child_ticks
        self._members = members
        return list(members.values())

    def _signal_all(self, sig: int) -> None:
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(self.pid, sig)
        _proc.kill_pids([p for p, st in self._members.items() if st.pgrp != self.pid], sig)

    def pause(self, wait: bool = True) -> None:
        if self._killed:
            return
        self._signal_all(signal.SIGSTOP)
        if not wait:
            self.paused = True
            return
        # SIGSTOP is asynchronous for a task running on another CPU: confirm
        # every member reached state T (stopped) before reporting it paused.
        start = time.monotonic()
        pending = list(self._members)
        while pending:
            pending = [p for p in pending if _stopped(p) is False]
            if not pending:
                break
            elapsed = time.monotonic() - start
            if elapsed > STOP_TIMEOUT_S:
                raise MembraneError(f"agent {self.name}: pids {pending} did not stop")
            if elapsed > SPIN_S:
                time.sleep(NAP_S)
        self.paused = True

    def resume(self) -> None:
        if self._killed:
            return
        self._signal_all(signal.SIGCONT)
        self.paused = False

    def set_cpu(self, cores: float | None) -> None:
        # No quota without a cgroup; the supervisor can still pause/resume.
        # Recorded so callers can see it was asked for and not enforced.
        self.requested_cores = cores

    def pids(self) -> list[int]:
        if self._killed or self._gone:
            return []
        before = set(self._members)
        self._last_scan = self._scan()
        _proc.reap(before.difference(self._members, {self.pid}))
        if not self._members and self._proc.poll() is not None:
            # The whole tree is gone; from now on the leader's pid (and so its
            # group and session ids) may be reused by strangers: stop looking.
            self._gone = True
        return sorted(self._members)

    def usage(self) -> Usage:
        if self._killed or self._gone:
            return Usage(self._cpu_s, 0, 0)
        self.pids()
        ticks = self._departed_cpu_ticks + sum(
            st.cpu_ticks + st.child_ticks for st in self._members.values()
        )
        self._cpu_s = max(self._cpu_s, ticks / _proc.CLK_TCK)
        rss = sum(st.rss_pages for st in self._members.values()) * _proc.PAGE_SIZE
        return Usage(self._cpu_s, rss, len(self._members))

    def alive(self) -> bool:
        self._proc.poll()
        if self._killed or self._gone:
            return False
        return bool(self.pids())

    def kill(self) -> None:
        if self._killed:
            return
        if self._gone:
            self._killed = True
            return
        self.usage()
        killed: set[int] = set()
        deadline = time.monotonic() + KILL_TIMEOUT_S
        while True:
            self._signal_all(signal.SIGKILL)
            killed.update(self._members)
            # Also anything carrying our tag, wherever it went.
            tagged = [p for p in _proc.all_pids() if _proc.read_tag(p) == self._tag]
            tagged = [p for p in tagged if _proc.pid_alive(p)]
            killed.update(_proc.kill_pids(tagged))
            self._scan()
            if not self._members and not tagged:
                break
            if time.monotonic() > deadline:
                raise MembraneError(f"agent {self.name}: {sorted(self._members)} survived SIGKILL")
            time.sleep(0.001)
        self._killed = True
        self.paused = False
        self._reap_leader(KILL_TIMEOUT_S)
        killed.discard(self.pid)
        _proc.reap(killed)


def _stopped(pid: int) -> bool | None:
    """True if stopped, None if gone, False if still running."""
    st = _proc.read_stat(pid)
    if st is None or st.state in ("Z", "X"):
        return None
    return st.state in ("T", "t")


class SignalsBackend(Backend):
    name = "signals"
    capabilities = frozenset({"whole_tree_best_effort"})

    def __init__(self, cgroup_root: Path | None = None, *, subreaper: bool = True) -> None:
        del cgroup_root
        self.reason = availability().reason
        super().__init__(subreaper=subreaper)

    def _spawn(self, spec: AgentSpec) -> Handle:
        return SignalsHandle(self, spec)
