"""Process plumbing shared by every tier: spawning into containment, /proc reads, reaping.

Touches only processes this supervisor started (and, in `cleanup_stale`, those
of supervisors that are dead) through fork/exec, signals, prctl and /proc.

Why `preexec_fn` rather than a wrapper program: the child must be inside its
cgroups and armed with PR_SET_PDEATHSIG before a single instruction of the
agent runs, and PDEATHSIG can only be set by the child itself. A pre-exec step
in the forked child does both with no extra exec (a shell or Python wrapper
costs 1–40 ms per spawn and cannot call prctl). The step is a handful of
syscalls on pre-encoded paths (os.open/os.write, one ctypes prctl), so it takes
no Python-level locks that another supervisor thread could hold at fork time.
PDEATHSIG fires when the *thread* that forked the child exits, so spawn from a
long-lived thread (the supervisor's main thread).
"""

from __future__ import annotations

import contextlib
import errno
import os
import secrets
import signal
import subprocess
from collections.abc import Iterable, Iterator, Sequence
from pathlib import Path
from typing import IO, NamedTuple

from maxwell import _deathsig
from maxwell._deathsig import die_with_parent
from maxwell.membrane._types import AgentSpec, MembraneError

PR_SET_CHILD_SUBREAPER = 36

# The environment tag every agent carries: MAXWELL_MEMBRANE=<supervisor-id>/<agent>.
# Descendants inherit it, so a process that left the agent's group and session
# can still be found (signals tier) and a dead supervisor's leftovers recognised.
TAG_VAR = "MAXWELL_MEMBRANE"


CLK_TCK = os.sysconf("SC_CLK_TCK")
PAGE_SIZE = os.sysconf("SC_PAGE_SIZE")


def new_supervisor_id() -> str:
    """`<pid>-<random>`: the per-supervisor directory name in every hierarchy."""
    return f"{os.getpid()}-{secrets.token_hex(4)}"


def supervisor_pid(sup_id: str) -> int | None:
    head = sup_id.split("-", 1)[0]
    return int(head) if head.isdigit() else None


def pid_alive(pid: int) -> bool:
    """True if a non-zombie process with this pid exists (conservative on EPERM)."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    st = read_stat(pid)
    return st is not None and st.state not in ("Z", "X")


def set_child_subreaper() -> bool:
    """Make orphaned descendants reparent to us, so we can reap them (and find them)."""
    prctl = _deathsig.prctl
    return prctl is not None and int(prctl(PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0)) == 0


class ProcStat(NamedTuple):
    pid: int
    state: str
    ppid: int
    pgrp: int
    session: int
    cpu_ticks: int  # utime + stime
    child_ticks: int  # cutime + cstime (waited-for children)
    start_ticks: int
    rss_pages: int


def read_stat(pid: int, procfs: Path = Path("/proc")) -> ProcStat | None:
    try:
        with open(procfs / str(pid) / "stat", "rb") as f:
            data = f.read()
    except OSError:
        return None
    # comm may contain spaces and parentheses: split after the last ')'.
    rest = data[data.rfind(b")") + 2 :].split()
    return ProcStat(
        pid=pid,
        state=rest[0].decode(),
        ppid=int(rest[1]),
        pgrp=int(rest[2]),
        session=int(rest[3]),
        cpu_ticks=int(rest[11]) + int(rest[12]),
        child_ticks=int(rest[13]) + int(rest[14]),
        start_ticks=int(rest[19]),
        rss_pages=int(rest[21]),
    )


def all_pids(procfs: Path = Path("/proc")) -> Iterator[int]:
    with os.scandir(procfs) as it:
        for entry in it:
            if entry.name.isdigit():
                yield int(entry.name)


def read_tag(pid: int, procfs: Path = Path("/proc")) -> str | None:
    """The MAXWELL_MEMBRANE tag of a process, if it has one (None if unreadable)."""
    try:
        with open(procfs / str(pid) / "environ", "rb") as f:
            env = f.read()
    except OSError:
        return None
    key = TAG_VAR.encode() + b"="
    for item in env.split(b"\0"):
        if item.startswith(key):
            return item[len(key) :].decode(errors="replace")
    return None


def children(pid: int, procfs: Path = Path("/proc")) -> list[int]:
    """The children of single-threaded process `pid` (empty if it is gone)."""
    try:
        with open(procfs / str(pid) / "task" / str(pid) / "children", "rb") as f:
            return [int(x) for x in f.read().split()]
    except (OSError, ValueError):
        return []


def rss_bytes(pids: Iterable[int]) -> int:
    total = 0
    for pid in pids:
        st = read_stat(pid)
        if st is not None:
            total += st.rss_pages * PAGE_SIZE
    return total


def reap(pids: Iterable[int]) -> None:
    """Collect any of these that are our (possibly adopted) zombie children."""
    for pid in pids:
        with contextlib.suppress(ChildProcessError, OSError):
            os.waitpid(pid, os.WNOHANG)


def kill_pids(pids: Iterable[int], sig: int = signal.SIGKILL) -> list[int]:
    done = []
    for pid in pids:
        try:
            os.kill(pid, sig)
            done.append(pid)
        except ProcessLookupError:
            pass
        except OSError as err:
            if err.errno != errno.ESRCH:
                raise
    return done


def spawn(spec: AgentSpec, tag: str, procs_files: Sequence[Path]) -> subprocess.Popen[bytes]:
    """Start the agent in a new session, inside `procs_files`' cgroups, with PDEATHSIG.

    The child writes its own pid to each `cgroup.procs` before exec, so the agent
    and everything it forks is contained from its first instruction.
    """
    parent = os.getpid()
    encoded = [os.fsencode(p) for p in procs_files]
    launch = None
    argv, cwd = list(spec.argv), spec.cwd
    env = dict(os.environ)
    env.update(spec.env)
    env[TAG_VAR] = tag
    if spec.jail is not None:
        # Built in the parent (uid reservation, mount list, seccomp pipe): the child
        # only runs `child_drop`'s syscalls, after the cgroup writes.
        launch = spec.jail.jail.launch(
            spec.name, spec.argv, {**spec.env, TAG_VAR: tag}, spec.cwd, spec.jail, spec.pids_max
        )
        argv, env = launch.argv, launch.env
        cwd = Path(launch.cwd) if launch.cwd is not None else None
    drop = launch.child_drop if launch is not None else None

    def child_setup() -> None:
        # The supervisor may have died between fork and prctl: then nobody would
        # ever send the death signal, so die now (both cases exit 125).
        if not die_with_parent(parent, signal.SIGKILL, orphan_status=125):
            os._exit(125)
        # A real-time supervisor set up without SCHED_RESET_ON_FORK (e.g. by
        # chrt) would make the cgroup write fail under RT group scheduling.
        with contextlib.suppress(OSError):
            os.sched_setscheduler(0, os.SCHED_OTHER, os.sched_param(0))
        me = str(os.getpid()).encode()
        for path in encoded:
            fd = os.open(path, os.O_WRONLY)
            try:
                os.write(fd, me)
            finally:
                os.close(fd)
        # Undo the supervisor's raised priority (nice is inherited; SCHED_FIFO is
        # dropped by SCHED_RESET_ON_FORK).
        with contextlib.suppress(OSError):
            os.setpriority(os.PRIO_PROCESS, 0, 0)
        # The privilege drop comes last: everything above needed root.
        if drop is not None and (err := drop()) != 0:
            raise OSError(err, f"jail: privilege drop failed: {os.strerror(err)}")

    out: IO[bytes] | int = subprocess.DEVNULL
    log: IO[bytes] | None = None
    if spec.log_path is not None:
        log = open(spec.log_path, "ab")  # noqa: SIM115 - closed right after the fork
        out = log
    try:
        return subprocess.Popen(
            argv,
            env=env,
            cwd=cwd,
            pass_fds=launch.pass_fds if launch is not None else (),
            stdin=subprocess.DEVNULL,
            stdout=out,
            stderr=out,
            close_fds=True,
            start_new_session=True,
            preexec_fn=child_setup,
        )
    except (OSError, subprocess.SubprocessError) as err:
        raise MembraneError(f"cannot spawn agent {spec.name!r} ({spec.argv[0]}): {err}") from err
    finally:
        if log is not None:
            log.close()
        if launch is not None:
            launch.close_fds()
