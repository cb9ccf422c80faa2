"""The jail: every agent as its own unprivileged uid, in its own namespaces, filtered.

In the order the Firecracker jailer uses — root work first, the drop last:
the forked child (still root) joins its cgroups and sets its rlimits, then
either execs bubblewrap, which builds the namespaces and read-only view and
execs `setpriv` to drop uid/gid/groups/capabilities, set no_new_privs and re-arm
the death signal (the uid change clears it) before the agent's command; or,
without bubblewrap, the child does the same drop itself before exec. Touches:
one lock file per reserved uid under `lock_dir`, /proc (to see which uids are
alive), and the processes it starts.

Levels, best first (`Jail.level`; `maxwell doctor` says which and what is missing):

- `bwrap`: own uid + pid/ipc/uts/cgroup/mount (+ net unless `host_net`)
  namespaces, a read-only view of the system, the agent's interpreter and
  environment, its command-line files and working directory; a size-limited
  tmpfs /tmp; a fresh /proc; no /sys; the run directory and the supervisor's
  home invisible; empty bounding set, no_new_privs, seccomp, rlimits,
  PDEATHSIG after the uid change. When the agent's leader exits, its pid
  namespace dies with everything in it (setsid, double fork, daemons).
- `drop`: no bubblewrap: the same uid/caps/no_new_privs/seccomp/rlimits/
  PDEATHSIG drop in the child before exec, without filesystem, pid or network
  isolation (the agent sees the host's files as an unprivileged stranger would).
- `user`: not root: agents stay the invoking user (they can signal, ptrace or
  read each other); no_new_privs, seccomp, rlimits and PDEATHSIG still apply.
- `off`: no jail (config `jail.mode = "off"`).

The environment is rebuilt from an allow-list (bubblewrap's `--clearenv` plus
`--setenv` would put the token on bwrap's command line, which every uid can
read in /proc; the process environment is readable only by its own uid).

API for other tiers (the microVM runs its VMM under the same jail)::

    jail = Jail(JailConfig(), hide=[run_dir])
    spec = AgentSpec("vm0", argv, jail=jail.request(rw=[vm_dir], dev=[Path("/dev/kvm")]))
    backend.spawn(spec)        # the spawn path calls jail.launch(spec) for you
    jail.uid_of("vm0")         # the uid SO_PEERCRED will report for it
    jail.close()               # releases the uid locks (after the agents are dead)
"""

from __future__ import annotations

import contextlib
import ctypes
import errno
import fcntl
import os
import resource
import secrets
import shutil
import signal
import sys
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from maxwell.common import Availability, Check
from maxwell.membrane import _seccomp
from maxwell.membrane._types import MembraneError

LEVELS = ("bwrap", "drop", "user", "off")
# The top 64 Ki block of systemd's container uid range (524288…1879048191), so
# no systemd-nspawn container or DynamicUser collides with an agent.
DEFAULT_UID_BASE = 1_878_982_656
DEFAULT_UID_COUNT = 65_536
DEFAULT_LOCK_DIR = Path("/run/maxwell/uids")
DEFAULT_ENV_ALLOW = (
    "PATH", "LANG", "LANGUAGE", "LC_ALL", "LC_CTYPE", "LC_NUMERIC", "TERM", "TZ",
    "PYTHONUNBUFFERED", "PYTHONPATH", "PYTHONDONTWRITEBYTECODE", "PYTHONHASHSEED",
)
# System directories every agent gets read-only (those that exist; merged-/usr
# symlinks are recreated as symlinks).
SYSTEM_DIRS = ("/usr", "/bin", "/sbin", "/lib", "/lib32", "/lib64", "/libx32", "/etc", "/opt")
LEVEL_MEANS = {
    "bwrap": "own uid, pid/mount/ipc/uts/cgroup/net namespaces, read-only view, empty caps, "
             "no_new_privs, seccomp, rlimits",
    "drop": "own uid, empty caps, no_new_privs, seccomp, rlimits; no namespaces (host files "
            "visible as to a stranger, no pid isolation)",
    "user": "the invoking uid (agents can signal/ptrace/read each other), no_new_privs, "
            "seccomp, rlimits",
    "off": "no jail",
}
PR_SET_PDEATHSIG = 1
PR_CAPBSET_DROP = 24


@dataclass(frozen=True)
class JailConfig:
    """The `[jail]` section (see config.py for the keys' documentation)."""

    mode: str = "auto"  # auto | bwrap | drop | user | off
    uid_base: int = DEFAULT_UID_BASE
    uid_count: int = DEFAULT_UID_COUNT
    lock_dir: Path = DEFAULT_LOCK_DIR
    host_net: bool = False
    tmp_size_mb: int = 256
    ro_binds: tuple[Path, ...] = ()
    env_allow: tuple[str, ...] = DEFAULT_ENV_ALLOW
    nofile: int = 1024
    fsize_mb: int = 1024
    seccomp: bool = True

    @classmethod
    def from_section(cls, section: Any) -> JailConfig:
        """From the config's `[jail]` section (maxwell.config.JailSection)."""
        return cls(
            mode=section.mode, uid_base=section.uid_base, uid_count=section.uid_count,
            lock_dir=Path(section.lock_dir), host_net=section.host_net,
            tmp_size_mb=section.tmp_size_mb, ro_binds=tuple(Path(p) for p in section.ro_binds),
            env_allow=DEFAULT_ENV_ALLOW + tuple(section.env), nofile=section.nofile,
            fsize_mb=section.fsize_mb, seccomp=section.seccomp,
        )


@dataclass(frozen=True)
class JailRequest:
    """One agent's extra needs: read-only, read-write and device binds (host paths)."""

    jail: Jail
    ro: tuple[Path, ...] = ()
    rw: tuple[Path, ...] = ()
    dev: tuple[Path, ...] = ()


@dataclass
class Launch:
    """What the spawn path executes instead of the bare command."""

    argv: list[str]
    env: dict[str, str]
    cwd: str | None
    uid: int | None
    pass_fds: tuple[int, ...] = ()
    # Runs in the forked child, as root, after the cgroup writes, before exec.
    # Pure syscalls; returns 0 or an errno.
    child_drop: Callable[[], int] | None = None

    def close_fds(self) -> None:
        for fd in self.pass_fds:
            with contextlib.suppress(OSError):
                os.close(fd)
        self.pass_fds = ()


# -- what this machine offers ------------------------------------------------------


def _bwrap() -> str | None:
    return shutil.which("bwrap")


def _setpriv() -> str | None:
    return shutil.which("setpriv")


def pieces() -> dict[str, Availability]:
    """Each piece the jail is built from, whether it is here, and what it adds."""
    root = os.geteuid() == 0
    bw, sp = _bwrap(), _setpriv()
    return {
        "root": Availability(root, "running as root: agents get their own uids"
                             if root else "not root: agents run as the invoking user "
                             "(run maxwell as root to give each its own uid)"),
        "bwrap": Availability(bw is not None, f"bubblewrap at {bw}" if bw else
                              "no bwrap: no pid/mount/net/ipc/uts/cgroup namespaces, the "
                              "host's files stay visible (sudo apt-get install bubblewrap)"),
        "setpriv": Availability(sp is not None, f"setpriv at {sp}" if sp else
                                "no setpriv: bwrap cannot drop the uid "
                                "(sudo apt-get install util-linux)"),
        "seccomp": _seccomp.availability(),
    }


def best_level(cfg: JailConfig) -> tuple[str, str]:
    """(level, reason) for `cfg.mode` here; raises MembraneError for an impossible forced mode."""
    p = pieces()
    if cfg.mode == "off":
        return "off", "jail.mode = off"
    possible = []
    if p["root"].ok and p["bwrap"].ok and p["setpriv"].ok:
        possible.append("bwrap")
    if p["root"].ok:
        possible.append("drop")
    possible.append("user")
    if cfg.mode == "auto":
        level = possible[0]
        missing = [a.reason for k, a in p.items() if not a.ok]
        return level, f"best available{': ' + '; '.join(missing) if missing else ''}"
    if cfg.mode not in possible:
        why = "; ".join(a.reason for a in p.values() if not a.ok)
        raise MembraneError(f"jail level {cfg.mode} unavailable here: {why}")
    return cfg.mode, "forced"


def doctor_checks(cfg: JailConfig | None = None) -> list[Check]:
    """`maxwell doctor` lines: the level `auto` gives and what each missing piece would add."""
    cfg = cfg or JailConfig()
    out = [Check(f"jail {name}", a.ok, a.reason) for name, a in pieces().items()]
    try:
        level, why = best_level(cfg)
        out.append(Check("jail level", level == "bwrap",
                         f"{level}: {LEVEL_MEANS[level]} ({why})"))
    except MembraneError as err:
        out.append(Check("jail level", False, str(err)))
        return out
    if level == "drop":
        exe = Path(sys.executable)
        blocked = _unreachable(exe)
        if blocked is not None:
            out.append(Check("jail interpreter", False,
                             f"{exe} is behind {blocked} (not searchable by other uids): "
                             "without bwrap, Python agents run as the supervisor's uid "
                             "(mode auto) or fail (mode drop); sudo apt-get install "
                             "bubblewrap"))
    return out


def _unreachable(path: Path) -> Path | None:
    """The first ancestor of `path` that other uids cannot search, if any."""
    try:
        real = Path(os.path.realpath(path))
    except OSError:
        return None
    for anc in reversed(real.parents):
        try:
            if not os.stat(anc).st_mode & 0o001:
                return anc
        except OSError:
            return anc
    return None


# -- uid reservation -----------------------------------------------------------------


def live_uids(procfs: Path = Path("/proc")) -> set[int]:
    """Every uid (real, effective, saved, fs) of every live (non-zombie) process.

    /proc/PID/status rather than the directory's owner: a non-dumpable process's
    directory is owned by root whatever its uid.
    """
    uids: set[int] = set()
    with os.scandir(procfs) as it:
        for entry in it:
            if not entry.name.isdigit():
                continue
            try:
                with open(f"{procfs}/{entry.name}/status", "rb") as f:
                    data = f.read()
            except OSError:
                continue
            i = data.find(b"\nUid:")
            # A zombie runs nothing and holds nothing but its pid: not alive.
            if i < 0 or b"\nState:\tZ" in data[:i] or b"\nState:\tX" in data[:i]:
                continue
            line = data[i + 5 : data.find(b"\n", i + 5)]
            uids.update(int(x) for x in line.split())
    return uids


class UidPool:
    """Reserves uids from [base, base+count) with one flock'ed lock file each.

    A uid is taken only if no other supervisor holds its lock and no process
    with that uid is alive (checked after taking the lock, so the two cannot
    race). Locks die with the supervisor (flock), so a crash frees them; a uid
    whose processes survived stays unusable until they are gone.
    """

    def __init__(self, base: int, count: int, lock_dir: Path,
                 procfs: Path = Path("/proc"), start: int | None = None) -> None:
        if base < 1 or count < 1 or base + count > 2**32 - 2:
            raise MembraneError(f"jail uid block {base}+{count} is not a valid uid range")
        self.base, self.count, self.lock_dir, self.procfs = base, count, lock_dir, procfs
        self._held: dict[int, int] = {}  # uid -> lock fd
        self._live: set[int] | None = None
        # Each supervisor starts at a random place in the block, so a uid another one
        # just released is not handed out again at once (the files a drop-level agent
        # left in a world-writable directory stay with a uid nobody is given soon).
        self._next = base + (secrets.randbelow(count) if start is None else start)

    def reserve(self) -> int:
        try:
            self.lock_dir.mkdir(parents=True, exist_ok=True, mode=0o700)
        except OSError as err:
            raise MembraneError(f"jail.lock_dir {self.lock_dir}: {err.strerror}") from err
        if self._live is None:
            self._live = live_uids(self.procfs)
        end = self.base + self.count
        for _ in range(self.count):
            uid = self._next
            self._next = self._next + 1 if self._next + 1 < end else self.base
            if uid in self._held or uid in self._live:
                continue
            fd = os.open(self.lock_dir / f"{uid}.lock", os.O_RDWR | os.O_CREAT | os.O_CLOEXEC,
                         0o600)
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except OSError:
                os.close(fd)
                continue
            os.ftruncate(fd, 0)
            os.write(fd, f"{os.getpid()}\n".encode())
            self._held[uid] = fd
            return uid
        raise MembraneError(f"no free uid in the jail block {self.base}+{self.count}")

    def release(self, uid: int) -> None:
        fd = self._held.pop(uid, None)
        if fd is not None:
            with contextlib.suppress(OSError):
                os.close(fd)

    def close(self) -> None:
        for uid in list(self._held):
            self.release(uid)


def stale_pids(lock_dir: Path = DEFAULT_LOCK_DIR, base: int = DEFAULT_UID_BASE,
               count: int = DEFAULT_UID_COUNT, procfs: Path = Path("/proc")) -> list[int]:
    """Live processes of a uid Maxwell handed out (its lock file exists) that no live
    supervisor holds: leftovers of a dead one, found even with a cleared environment and
    outside any cgroup. Uids never locked here (another tool's) are never matched."""
    free: set[int] = set()
    try:
        files = list(lock_dir.glob("*.lock"))
    except OSError:
        return []
    for f in files:
        if not f.stem.isdigit() or not base <= int(f.stem) < base + count:
            continue
        try:
            fd = os.open(f, os.O_RDWR | os.O_CLOEXEC)
        except OSError:
            continue
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            free.add(int(f.stem))  # nobody holds it (closing the fd drops our lock)
        except OSError:
            pass  # a live supervisor holds it
        finally:
            os.close(fd)
    if not free:
        return []
    out = []
    for entry in os.scandir(procfs):
        if not entry.name.isdigit():
            continue
        try:
            with open(f"{procfs}/{entry.name}/status", "rb") as fh:
                data = fh.read()
        except OSError:
            continue
        i = data.find(b"\nUid:")
        if i < 0 or b"\nState:\tZ" in data[:i]:
            continue
        uids = {int(x) for x in data[i + 5 : data.find(b"\n", i + 5)].split()}
        if uids & free:
            out.append(int(entry.name))
    return out


# -- the jail ------------------------------------------------------------------------


class Jail:
    """Builds each agent's launch at this machine's best level (or the one forced)."""

    def __init__(self, cfg: JailConfig | None = None, *, hide: Sequence[Path] = (),
                 home: Path | None = None) -> None:
        self.cfg = cfg or JailConfig()
        self.level, self.reason = best_level(self.cfg)
        self.home = Path(os.path.realpath(home or Path.home()))
        self.hide = tuple(Path(os.path.realpath(p)) for p in hide)
        self._pool = (UidPool(self.cfg.uid_base, self.cfg.uid_count, self.cfg.lock_dir)
                      if self.level in ("bwrap", "drop") else None)
        self._uids: dict[str, int] = {}
        # Agents run below `level` (auto mode only), with the reason.
        self.downgraded: dict[str, str] = {}
        self._bwrap = _bwrap() or "bwrap"
        self._setpriv = _setpriv() or "setpriv"
        self._seccomp = b""
        if self.cfg.seccomp and self.level != "off":
            avail = _seccomp.availability()
            if avail.ok:
                self._seccomp = _seccomp.program()
            else:
                self.reason += f"; no seccomp ({avail.reason})"
        self._installer = _seccomp.Installer(self._seccomp) if self._seccomp else None
        self._cap_last = _cap_last_cap()

    # -- public API --------------------------------------------------------------------

    @property
    def seccomp(self) -> bool:
        return bool(self._seccomp)

    def describe(self) -> dict[str, object]:
        """For the run record: the level, why, and what is in force."""
        return {
            "level": self.level, "reason": self.reason, "seccomp": self.seccomp,
            "own_uid": self.level in ("bwrap", "drop"),
            "namespaces": self.level == "bwrap",
            "host_net": self.cfg.host_net if self.level == "bwrap" else True,
            "uids": dict(self._uids),
            "downgraded": dict(self.downgraded),
        }

    def request(self, ro: Sequence[Path] = (), rw: Sequence[Path] = (),
                dev: Sequence[Path] = ()) -> JailRequest:
        return JailRequest(self, tuple(map(Path, ro)), tuple(map(Path, rw)),
                           tuple(map(Path, dev)))

    def reserve(self, name: str, argv: Sequence[str] | None = None) -> int | None:
        """Reserve agent `name`'s uid now (e.g. to register it with the endpoint first).

        At the `drop` level the program `argv[0]` must be reachable by a stranger
        uid; if it is not, a forced mode raises and `auto` runs that agent as the
        supervisor's uid (recorded in `downgraded`), so pass `argv` when you can.
        """
        if self._pool is None or name in self.downgraded:
            return None
        uid = self._uids.get(name)
        if uid is not None:
            return uid
        if self.level == "drop" and argv:
            exe = shutil.which(argv[0]) or argv[0]
            blocked = _unreachable(Path(exe))
            if blocked is not None:
                why = (f"{exe} is behind {blocked}, which other uids cannot search; without "
                       "bwrap a jailed agent needs a world-reachable program "
                       "(sudo apt-get install bubblewrap)")
                if self.cfg.mode != "auto":
                    raise MembraneError(f"agent {name!r}: {why}")
                # auto: run it as the supervisor's uid with what still applies, and say so.
                self.downgraded[name] = f"user: {why}"
                return None
        uid = self._uids[name] = self._pool.reserve()
        return uid

    def helpers(self) -> int:
        """How many of the jail's own processes sit between the spawned leader and the
        agent: at `bwrap`, bubblewrap's monitor (the leader) and the pid-1 reaper of the
        agent's pid namespace (its child, the agent's parent). Both run as root, sleep
        for the agent's whole life and never fork again; the cgroup tiers move them out
        of the freezer's cgroup so that a pause has only the agent's processes to stop."""
        return 2 if self.level == "bwrap" else 0

    def uid_of(self, name: str) -> int | None:
        """The uid agent `name` runs as (None below the `drop` level: the supervisor's own)."""
        return self._uids.get(name)

    def close(self) -> None:
        if self._pool is not None:
            self._pool.close()
        self._uids.clear()

    def release(self, name: str) -> None:
        uid = self._uids.pop(name, None)
        if uid is not None and self._pool is not None:
            self._pool.release(uid)

    def launch(self, name: str, argv: Sequence[str], env: Mapping[str, str],
               cwd: Path | None, req: JailRequest | None = None,
               pids_max: int | None = None) -> Launch:
        """The command, environment and child step that run `argv` jailed."""
        jenv = self._env(env)
        if self.level == "off":
            return Launch(list(argv), {**os.environ, **env}, _s(cwd), None)
        uid = self.reserve(name, argv)
        workdir = Path(os.path.realpath(cwd or os.getcwd()))
        rl = self._rlimits(pids_max if uid is not None else None)
        if self.level == "bwrap":
            assert uid is not None
            fd = _seccomp.pipe_fd() if self._seccomp else None
            args = self._bwrap_argv(argv, workdir, req, uid, fd)
            return Launch(args, jenv, None, uid, (fd,) if fd is not None else (),
                          _rlimit_step(rl))
        return Launch(list(argv), jenv, os.fspath(workdir), uid, (),
                      self._drop_step(rl, uid))

    # -- internals ---------------------------------------------------------------------

    def _env(self, env: Mapping[str, str]) -> dict[str, str]:
        allow = set(self.cfg.env_allow)
        out = {k: v for k, v in os.environ.items() if k in allow}
        # The spec's own variables (the agent's token, its tag) pass; what is merely a
        # copy of the supervisor's environment passes only if allow-listed.
        for k, v in env.items():
            if k in allow or os.environ.get(k) != v:
                out[k] = v
        out["HOME"] = "/tmp"
        out.setdefault("PATH", "/usr/local/bin:/usr/bin:/bin")
        return out

    def _rlimits(self, nproc: int | None) -> list[tuple[int, int]]:
        mib = 1 << 20
        rl = [
            (resource.RLIMIT_RTPRIO, 0),
            (resource.RLIMIT_NICE, 0),  # cannot raise its priority above the default
            (resource.RLIMIT_CORE, 0),
            (resource.RLIMIT_FSIZE, self.cfg.fsize_mb * mib),
            (resource.RLIMIT_NOFILE, self.cfg.nofile),
        ]
        if nproc is not None:
            # Per uid, so with own uids it caps this agent's tree even without a pids cgroup.
            # bwrap's own processes run as root and do not count.
            rl.append((resource.RLIMIT_NPROC, nproc))
        return rl

    def _drop_step(self, rl: list[tuple[int, int]], uid: int | None) -> Callable[[], int]:
        installer = self._installer
        cap_last = self._cap_last
        prctl = _prctl()
        parent = os.getpid()

        def step() -> int:
            try:
                for res, lim in rl:
                    resource.setrlimit(res, (lim, lim))
                if uid is not None:
                    os.setgroups([])
                    os.setresgid(uid, uid, uid)
                    for cap in range(cap_last + 1):
                        if prctl(PR_CAPBSET_DROP, cap, 0, 0, 0) != 0:
                            return ctypes.get_errno() or errno.EPERM
                    os.setresuid(uid, uid, uid)
                # A uid change clears the death signal: arm it again, then make
                # sure the supervisor did not die in between.
                if prctl(PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0) != 0:
                    return ctypes.get_errno() or errno.EPERM
                if os.getppid() != parent:
                    return errno.ESRCH
            except OSError as err:
                return err.errno or errno.EPERM
            if installer is not None:
                return installer.install()
            if prctl(38, 1, 0, 0, 0) != 0:  # PR_SET_NO_NEW_PRIVS
                return ctypes.get_errno() or errno.EPERM
            return 0

        return step

    def _bwrap_argv(self, argv: Sequence[str], workdir: Path, req: JailRequest | None,
                    uid: int, seccomp_fd: int | None) -> list[str]:
        cfg = self.cfg
        a = [self._bwrap, "--unshare-pid", "--unshare-ipc", "--unshare-uts", "--unshare-cgroup"]
        if not cfg.host_net:
            a.append("--unshare-net")
        a += ["--die-with-parent", "--new-session", "--hostname", "maxwell-agent"]
        view = _View(a)
        for d in SYSTEM_DIRS:
            if os.path.islink(d):
                view.symlink(os.readlink(d), d)
            elif os.path.isdir(d):
                view.bind("--ro-bind", Path(d))
        a += ["--proc", "/proc", "--dev", "/dev"]
        a += ["--perms", "1777", "--size", str(cfg.tmp_size_mb << 20), "--tmpfs", "/tmp"]
        a += ["--perms", "1777", "--size", str(cfg.tmp_size_mb << 20), "--tmpfs", "/dev/shm"]
        # Fresh filesystems, not the host's: binds below them still need their parents made.
        view.made.update({Path("/proc"), Path("/dev"), Path("/tmp"), Path("/dev/shm")})
        ro: list[Path] = []
        ro += self._program_paths(argv[0])
        ro += list(cfg.ro_binds)
        for arg in argv[1:]:
            p = Path(arg) if os.path.isabs(arg) else workdir / arg
            if len(arg) < 4096 and os.path.exists(p):
                ro.append(p)
        chdir_ok = self._bindable(workdir)
        if chdir_ok:
            ro.append(workdir)
        for p in sorted({Path(os.path.realpath(x)) for x in ro}, key=lambda x: len(x.parts)):
            if self._bindable(p):
                view.bind("--ro-bind", p)
        if req is not None:
            for p in req.ro:
                view.bind("--ro-bind", Path(os.path.realpath(p)), force=True)
            for p in req.rw:
                view.bind("--bind", Path(os.path.realpath(p)), force=True)
            for p in req.dev:
                view.bind("--dev-bind", Path(p), force=True)
        for h in self.hide:
            if view.visible(h) and os.path.isdir(h):
                a += ["--perms", "0700", "--tmpfs", os.fspath(h)]
        if not chdir_ok:
            view.mkdir(workdir)
        a += ["--chdir", os.fspath(workdir)]
        if seccomp_fd is not None:
            a += ["--seccomp", str(seccomp_fd)]
        a += ["--", self._setpriv, f"--reuid={uid}", f"--regid={uid}", "--clear-groups",
              "--inh-caps=-all", "--bounding-set=-all", "--no-new-privs",
              "--pdeathsig=SIGKILL", "--"]
        a += list(argv)
        return a

    def _bindable(self, p: Path) -> bool:
        """Never the home itself or anything above it, nothing inside a hidden path."""
        if p == self.home or p in self.home.parents:
            return False
        return not any(p == h or h in p.parents for h in self.hide)

    def _program_paths(self, prog: str) -> list[Path]:
        """The program and, for Python, its environment (what `import` will look at)."""
        exe = shutil.which(prog) if not os.path.isabs(prog) else prog
        if exe is None:
            return []
        out = [Path(exe)]
        real = Path(os.path.realpath(exe))
        if real.parent.name == "bin":
            out.append(real.parent.parent)
        venv = Path(exe).parent.parent
        if (venv / "pyvenv.cfg").is_file():
            out.append(venv)
        if real == Path(os.path.realpath(sys.executable)):
            out += [Path(sys.prefix), Path(sys.base_prefix)]
            out += [Path(p) for p in sys.path if p and os.path.exists(p)]
        return [p for p in out if not _under_system(p)]


class _View:
    """The mount list being built: which paths the jail already shows, parents made 0755."""

    def __init__(self, args: list[str]) -> None:
        self.args = args
        self.covered: set[Path] = set()  # bound or created paths
        self.made: set[Path] = {Path("/")}

    def visible(self, p: Path) -> bool:
        return any(p == c or c in p.parents for c in self.covered)

    def mkdir(self, p: Path) -> None:
        for anc in [*reversed(p.parents), p]:
            if anc in self.made or self.visible(anc):
                continue
            # Root-run bwrap would make missing parents 0700: unreachable for the agent.
            self.args += ["--perms", "0755", "--dir", os.fspath(anc)]
            self.made.add(anc)

    def symlink(self, target: str, p: str) -> None:
        self.args += ["--symlink", target, p]
        self.covered.add(Path(p))

    def bind(self, how: str, p: Path, force: bool = False) -> None:
        if not force and self.visible(p):
            return
        if not os.path.exists(p):
            return
        self.mkdir(p.parent)
        self.args += [how, os.fspath(p), os.fspath(p)]
        self.covered.add(p)


def _under_system(p: Path) -> bool:
    real = Path(os.path.realpath(p))
    return any(real == Path(d) or Path(d) in real.parents for d in ("/usr", "/etc"))


def _s(p: Path | None) -> str | None:
    return None if p is None else os.fspath(p)


def _cap_last_cap() -> int:
    try:
        return int(Path("/proc/sys/kernel/cap_last_cap").read_text())
    except (OSError, ValueError):
        return 40


def _prctl() -> Callable[..., int]:
    libc = ctypes.CDLL(None, use_errno=True)
    f = libc.prctl
    f.argtypes = [ctypes.c_int, ctypes.c_ulong, ctypes.c_ulong, ctypes.c_ulong, ctypes.c_ulong]
    f.restype = ctypes.c_int
    return f


def _rlimit_step(rl: list[tuple[int, int]]) -> Callable[[], int]:
    def step() -> int:
        try:
            for res, lim in rl:
                resource.setrlimit(res, (lim, lim))
        except OSError as err:
            return err.errno or errno.EPERM
        return 0

    return step


__all__ = [
    "DEFAULT_UID_BASE",
    "LEVELS",
    "Jail",
    "JailConfig",
    "JailRequest",
    "Launch",
    "UidPool",
    "best_level",
    "doctor_checks",
    "live_uids",
    "pieces",
]
