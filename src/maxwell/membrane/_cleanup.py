"""Finding and removing what dead supervisors left behind.

Touches only `<hierarchy>/maxwell/<pid>-<random>` subtrees whose supervisor pid
is no longer alive, and processes inside them or tagged with such a supervisor's
id (MAXWELL_MEMBRANE), or running as a jail uid whose lock no live supervisor
holds. A live supervisor's subtree is never touched: other supervisors (and
other people's test runs) share the machine.

`Watchdog` is a dead man's switch for the jail levels without a pid namespace
(`drop`, `user`): there a SIGKILLed supervisor runs no cleanup code and nothing
in the kernel takes an agent's setsid'd daemons along (bwrap's pid namespace
does that at the `bwrap` level). A small process outside every agent's cgroup
holds the read end of a pipe whose write end only the supervisor has; when the
pipe reaches end-of-file without the supervisor having said "all clean" first,
the supervisor died, and the watchdog runs `cleanup_stale` for it at once.
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

from maxwell.membrane import _cgroup, _proc
from maxwell.membrane._types import CleanupReport, MembraneError


def _supervisor_alive(sup_id: str) -> bool:
    pid = _proc.supervisor_pid(sup_id)
    # A directory we cannot parse is not ours to judge: treat it as alive.
    return pid is None or _proc.pid_alive(pid)


def cleanup_stale(
    cgroup_root: Path = Path("/sys/fs/cgroup"), *, scan_procs: bool = True
) -> CleanupReport:
    """Kill, thaw and remove what supervisors that are no longer alive left behind."""
    report = CleanupReport()
    h = _cgroup.discover(cgroup_root)
    hierarchies = h.all_paths()
    stale: dict[str, list[Path]] = {}
    for mount in hierarchies:
        top = mount / _cgroup.TOP
        if not top.is_dir():
            continue
        for sup in top.iterdir():
            if not sup.is_dir():
                continue
            if _supervisor_alive(sup.name):
                if sup.name not in report.live_supervisors:
                    report.live_supervisors.append(sup.name)
                continue
            stale.setdefault(sup.name, []).append(sup)
    for sup_id, dirs in stale.items():
        # Per agent: kill through every hierarchy the agent has a cgroup in,
        # thawing v2 and the v1 freezer so nothing stays frozen.
        agents: dict[str, list[Path]] = {}
        for sup in dirs:
            for agent in sup.iterdir():
                if agent.is_dir():
                    agents.setdefault(agent.name, []).append(agent)
        for name, cgs in agents.items():
            v2 = next((c for c in cgs if (c / "cgroup.freeze").exists()), None)
            freezer = next((c for c in cgs if (c / "freezer.state").exists()), None)
            try:
                killed = _cgroup.kill_cgroups(v2, freezer, cgs)
                _proc.reap(killed)  # ours to reap if we are their subreaper
                report.killed_pids.extend(killed)
            except (OSError, MembraneError) as err:
                report.errors.append(f"{sup_id}/{name}: {err}")
        ok = True
        for sup in dirs:
            try:
                _cgroup.remove_tree(sup, report.removed_cgroups)
            except (OSError, MembraneError) as err:
                ok = False
                report.errors.append(str(err))
        if ok:
            report.removed_supervisors.append(sup_id)
    if scan_procs:
        _kill_tagged(report)
        _kill_jailed(report)
    from maxwell.membrane._microvm import remove_stale_dirs

    remove_stale_dirs(_supervisor_alive)  # their VMMs died with their cgroups above
    report.killed_pids = sorted(set(report.killed_pids))
    return report


def _kill_tagged(report: CleanupReport, timeout_s: float = 5.0) -> None:
    """Signals-tier leftovers (and escapees): processes tagged by a dead supervisor.

    Waits (bounded) until every one found is gone: a process with a pending
    SIGKILL on a loaded machine may need a while to be scheduled and exit.
    """
    known: set[int] = set()
    deadline = time.monotonic() + timeout_s
    while True:
        for pid in _proc.all_pids():
            tag = _proc.read_tag(pid)
            if tag is None:
                continue
            sup_id = tag.split("/", 1)[0]
            if not _supervisor_alive(sup_id) and _proc.pid_alive(pid):
                known.add(pid)
                if sup_id not in report.removed_supervisors:
                    report.removed_supervisors.append(sup_id)
        pending = [p for p in known if _proc.pid_alive(p)]
        if not pending:
            break
        if time.monotonic() > deadline:
            report.errors.append(f"tagged processes {sorted(pending)} survived SIGKILL")
            break
        # Stopped processes die from SIGKILL too; SIGCONT is not needed.
        _proc.kill_pids(pending, signal.SIGKILL)
        time.sleep(0.002)
        _proc.reap(known)  # ours to reap if we are their subreaper
    report.killed_pids.extend(known)


def _kill_jailed(report: CleanupReport, timeout_s: float = 5.0) -> None:
    """Processes of a jail uid that no live supervisor holds (see `_jail.stale_pids`):
    what escaped both cgroup and tag (a setsid'd daemon with a cleared environment on
    the signals tier, after its supervisor was SIGKILLed)."""
    from maxwell.membrane._jail import stale_pids

    deadline = time.monotonic() + timeout_s
    known: set[int] = set()
    while True:
        found = stale_pids()
        known.update(found)
        if not found:
            break
        if time.monotonic() > deadline:
            report.errors.append(f"jailed processes {sorted(found)} survived SIGKILL")
            break
        _proc.kill_pids(found, signal.SIGKILL)
        time.sleep(0.002)
        _proc.reap(known)
    report.killed_pids.extend(known)


STAND_DOWN = b"clean\n"  # the supervisor cleaned up itself: exit without a cleanup
WATCHDOG_WAIT_S = 10.0  # after end-of-file: how long the supervisor may take to be gone


class Watchdog:
    """A process that runs `cleanup_stale` as soon as this supervisor dies uncleanly."""

    def __init__(self, cgroup_root: Path) -> None:
        r, w = os.pipe2(os.O_CLOEXEC)
        try:
            self._proc = subprocess.Popen(
                [sys.executable, "-c", "from maxwell.membrane._cleanup import _watch; _watch()",
                 str(os.getpid()), os.fspath(cgroup_root)],
                stdin=r, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                # Its own session: a terminal's Ctrl-C to the supervisor's group, or a
                # kill of that group, must not take the switch down with it.
                start_new_session=True, close_fds=True,
            )
        except BaseException:
            os.close(w)
            raise
        finally:
            os.close(r)
        self._w: int | None = w

    @property
    def pid(self) -> int:
        return self._proc.pid

    def stand_down(self) -> None:
        """Every agent is dead and cleaned: tell the watchdog to exit quietly."""
        if self._w is None:
            return
        with contextlib.suppress(OSError):
            os.write(self._w, STAND_DOWN)
        os.close(self._w)
        self._w = None
        with contextlib.suppress(subprocess.TimeoutExpired):
            self._proc.wait(timeout=5)


def _watch() -> None:
    """The watchdog's body (argv: supervisor pid, cgroup root; stdin: the pipe)."""
    for sig in (signal.SIGINT, signal.SIGHUP, signal.SIGTERM, signal.SIGPIPE):
        signal.signal(sig, signal.SIG_IGN)
    sup_pid, root = int(sys.argv[1]), Path(sys.argv[2])
    said = b""
    while True:
        try:
            chunk = os.read(0, 64)
        except InterruptedError:
            continue
        if not chunk:
            break
        said += chunk
    if said.endswith(STAND_DOWN):
        return
    # The write end closes when the supervisor's last thread exits; it is dead (or a
    # zombie, which pid_alive counts as dead) a moment later.
    deadline = time.monotonic() + WATCHDOG_WAIT_S
    while _proc.pid_alive(sup_pid) and time.monotonic() < deadline:
        time.sleep(0.01)
    if not _proc.pid_alive(sup_pid):
        cleanup_stale(root)
