"""The cgroup tiers: cgroup v2, hybrid (v2 membership/freeze + v1 cpu/cpuacct), cgroup v1.

Touches only `<hierarchy>/maxwell/<supervisor-id>/…` under the cgroup root it is
given (and, for pure v2, enables controllers in `subtree_control` on the way
down), plus the processes inside those cgroups.

One class serves all three tiers; a `_Plan` says which hierarchy does what:
membership (every hierarchy the agent is placed in), freezing (one strategy
per version in `_freezer.py`: v2 `cgroup.freeze` confirmed by `cgroup.events`,
or the v1 freezer),
CPU quota (v2 `cpu.max` or v1 `cpu.cfs_quota_us`), accounting (v2 `cpu.stat` or
v1 `cpuacct.usage`) and limits (pids, memory).

A jailed agent's tree starts with the jail's own helpers (bubblewrap's monitor
and the pid-1 reaper of its pid namespace: root, asleep, never forking again).
At the first confirmed pause they move from the agent's freezer cgroup to a
sibling `<agent>+jail` (`+` is not allowed in agent names, so it names no
agent), so a pause freezes the agent's processes only; in every other
hierarchy they stay with the agent (its CPU and memory accounting still covers
them; on pure v2 the sibling's `cpu.stat` is added). The sibling is watched
each tick: any other process found in it is a tamper and is moved back.
"""

from __future__ import annotations

import contextlib
import os
import time
from dataclasses import dataclass
from pathlib import Path

from maxwell.common import Availability
from maxwell.membrane import _proc
from maxwell.membrane._base import Backend, Handle
from maxwell.membrane._freezer import Freezer, freezer_for
from maxwell.membrane._types import AgentSpec, MembraneError, Usage

TOP = "maxwell"
CFS_PERIOD_US = 100_000
CFS_QUOTA_MIN_US = 1_000  # the kernel refuses smaller quotas
EMPTY_TIMEOUT_S = 5.0
TIERS = ("cgroup2", "hybrid", "cgroup1")
HELPERS_SUFFIX = "+jail"  # the jail helpers' sibling cgroup: `<agent>+jail`
HELPER_MOVE_TRIES = 100  # pauses to wait for bwrap to have started the agent


@dataclass(frozen=True)
class Hierarchies:
    """What is mounted under a cgroup root (v1 controllers by name, the v2 tree)."""

    root: Path
    v2: Path | None
    v2_controllers: frozenset[str]
    v1: dict[str, Path]

    def v1_paths(self) -> list[Path]:
        return list(self.v1.values())

    def all_paths(self) -> list[Path]:
        """Every distinct hierarchy (co-mounted controllers appear once)."""
        seen: dict[str, Path] = {}
        for p in ([self.v2] if self.v2 else []) + self.v1_paths():
            with contextlib.suppress(OSError):
                seen.setdefault(os.path.realpath(p), p)
        return list(seen.values())


_V1_MARKERS = {
    "cpu": "cpu.cfs_quota_us",
    "cpuacct": "cpuacct.usage",
    "freezer": "tasks",
    "pids": "tasks",
    "memory": "memory.limit_in_bytes",
}


def discover(root: Path) -> Hierarchies:
    """Find the v2 tree and the v1 controllers under `root`; never raises."""
    v2: Path | None = None
    controllers: frozenset[str] = frozenset()
    for cand in (root, root / "unified"):
        if (cand / "cgroup.controllers").is_file():
            v2 = cand
            try:
                controllers = frozenset((cand / "cgroup.controllers").read_text().split())
            except OSError:
                controllers = frozenset()
            break
    v1: dict[str, Path] = {}
    if v2 != root:
        for ctrl, marker in _V1_MARKERS.items():
            d = root / ctrl
            if (d / marker).is_file() and not (d / "cgroup.controllers").exists():
                v1[ctrl] = d
    return Hierarchies(root=root, v2=v2, v2_controllers=controllers, v1=v1)


def _kernel_at_least(major: int, minor: int) -> bool:
    try:
        parts = os.uname().release.split(".")
        return (int(parts[0]), int("".join(c for c in parts[1] if c.isdigit()) or 0)) >= (
            major,
            minor,
        )
    except (ValueError, IndexError):
        return False


def _writable(p: Path) -> bool:
    return os.access(p, os.W_OK)


def tier_availability(tier: str, h: Hierarchies) -> Availability:
    """Can `tier` run on these hierarchies? Explains what is missing; no side effects."""
    v2_ok = h.v2 is not None and _writable(h.v2) and _kernel_at_least(5, 2)
    v2_why = (
        f"no cgroup v2 tree under {h.root}"
        if h.v2 is None
        else f"{h.v2} not writable (run as root or delegate it)"
        if not _writable(h.v2)
        else "kernel < 5.2 has no cgroup.freeze"
    )
    missing_v1 = [c for c in ("cpu", "cpuacct") if c not in h.v1 or not _writable(h.v1[c])]
    if tier == "cgroup2":
        if not v2_ok:
            return Availability(False, v2_why)
        if "cpu" not in h.v2_controllers:
            have = " ".join(sorted(h.v2_controllers)) or "none"
            return Availability(
                False,
                f"v2 tree {h.v2} has no cpu controller (controllers: {have}); "
                "cpu is bound to a v1 hierarchy",
            )
        return Availability(True, f"cgroup v2 at {h.v2} (freeze, cpu.max, cpu.stat)")
    if tier == "hybrid":
        if not v2_ok:
            return Availability(False, v2_why)
        if h.v2 == h.root:
            return Availability(False, "pure v2 host: no v1 controllers to combine")
        if missing_v1:
            return Availability(False, f"v1 {', '.join(missing_v1)} not mounted/writable")
        extra = [c for c in ("pids", "memory") if c in h.v1]
        return Availability(
            True,
            f"v2 {h.v2} for membership/freeze/cgroup id; v1 cpu+cpuacct"
            + (f" ({'+'.join(extra)} for limits)" if extra else ""),
        )
    if tier == "cgroup1":
        missing = missing_v1 + (
            [] if "freezer" in h.v1 and _writable(h.v1["freezer"]) else ["freezer"]
        )
        if missing:
            return Availability(False, f"v1 {', '.join(missing)} not mounted/writable")
        return Availability(True, "cgroup v1 freezer, cpu, cpuacct")
    return Availability(False, f"unknown cgroup tier {tier!r}")


@dataclass(frozen=True)
class _Plan:
    """Which hierarchy does what for one tier."""

    members: tuple[Path, ...]  # every hierarchy the agent is placed in
    v2: Path | None  # freeze + kill + id (cgroup2, hybrid)
    freezer: Path | None  # v1 freezer (cgroup1)
    cpu_v1: Path | None
    cpuacct_v1: Path | None
    pids_v1: Path | None
    memory_v1: Path | None
    v2_cpu: bool
    v2_pids: bool
    v2_memory: bool


def _plan(tier: str, h: Hierarchies) -> _Plan:
    if tier == "cgroup2":
        assert h.v2 is not None
        c = h.v2_controllers
        return _Plan((h.v2,), h.v2, None, None, None, None, None,
                     "cpu" in c, "pids" in c, "memory" in c)  # fmt: skip
    v1 = h.v1
    if tier == "hybrid":
        members = [h.v2] + [v1[c] for c in ("cpu", "cpuacct", "pids", "memory") if c in v1]
        v2 = h.v2
        freezer = None
    else:
        members = [v1[c] for c in ("freezer", "cpu", "cpuacct", "pids", "memory") if c in v1]
        v2 = None
        freezer = v1["freezer"]
    dedup: dict[str, Path] = {}
    for m in members:
        assert m is not None
        dedup.setdefault(os.path.realpath(m), m)
    return _Plan(tuple(dedup.values()), v2, freezer, v1.get("cpu"), v1.get("cpuacct"),
                 v1.get("pids"), v1.get("memory"), False, False, False)  # fmt: skip


def _write(path: Path, text: str) -> None:
    try:
        # O_TRUNC as a shell's `>` does: cgroupfs ignores it, fake trees need it.
        fd = os.open(path, os.O_WRONLY | os.O_TRUNC)
        try:
            os.write(fd, text.encode())
        finally:
            os.close(fd)
    except OSError as err:
        raise MembraneError(f"cannot write {text!r} to {path}: {err.strerror}") from err


def _read(path: Path) -> str:
    with open(path) as f:
        return f.read()


def read_procs(cg: Path) -> list[int]:
    try:
        return [int(x) for x in _read(cg / "cgroup.procs").split()]
    except (OSError, ValueError):
        return []


def live(pids: list[int]) -> list[int]:
    out = []
    for pid in pids:
        st = _proc.read_stat(pid)
        if st is not None and st.state not in ("Z", "X"):
            out.append(pid)
    return out


def remove_tree(cg: Path, removed: list[str] | None = None) -> None:
    """rmdir a cgroup and its sub-cgroups, deepest first (retrying briefly on EBUSY)."""
    if not cg.is_dir():
        return
    for child in [p for p in cg.iterdir() if p.is_dir()]:
        remove_tree(child, removed)
    for attempt in range(50):
        try:
            os.rmdir(cg)
            if removed is not None:
                removed.append(str(cg))
            return
        except FileNotFoundError:
            return
        except OSError as err:
            if attempt == 49:
                raise MembraneError(f"cannot remove cgroup {cg}: {err.strerror}") from err
            time.sleep(0.01)


def v2_freeze(cg: Path, freeze: bool) -> None:
    _write(cg / "cgroup.freeze", "1" if freeze else "0")


def kill_cgroups(v2: Path | None, freezer: Path | None, members: list[Path]) -> list[int]:
    """Kill every process in these cgroups (one agent's), leaving nothing frozen.

    Returns the pids signalled. v2 with `cgroup.kill` kills atomically (frozen or
    not); otherwise the tree is frozen so nothing can fork, every pid is SIGKILLed,
    then thawed (a v1-frozen task only dies once thawed).
    """
    killed: list[int] = []
    for cg in members:
        killed.extend(read_procs(cg))
    if v2 is not None and (v2 / "cgroup.kill").exists():
        _write(v2 / "cgroup.kill", "1")
        with contextlib.suppress(MembraneError):
            v2_freeze(v2, False)
    else:
        if v2 is not None:
            with contextlib.suppress(MembraneError):
                v2_freeze(v2, True)
        if freezer is not None and (freezer / "freezer.state").exists():
            with contextlib.suppress(MembraneError):
                _write(freezer / "freezer.state", "FROZEN")
        for cg in members:
            _proc.kill_pids(read_procs(cg))
        if v2 is not None:
            with contextlib.suppress(MembraneError):
                v2_freeze(v2, False)
        if freezer is not None and (freezer / "freezer.state").exists():
            with contextlib.suppress(MembraneError):
                _write(freezer / "freezer.state", "THAWED")
    deadline = time.monotonic() + EMPTY_TIMEOUT_S
    while True:
        left = [pid for cg in members for pid in live(read_procs(cg))]
        if not left:
            break
        if time.monotonic() > deadline:
            raise MembraneError(f"processes {left} survived SIGKILL in {members[0]}")
        killed.extend(_proc.kill_pids(left))
        if freezer is not None and (freezer / "freezer.state").exists():
            with contextlib.suppress(MembraneError):
                _write(freezer / "freezer.state", "THAWED")
        time.sleep(0.001)
    return sorted(set(killed))


def quota_us(cores: float | None) -> int | None:
    """CFS quota per CFS_PERIOD_US for `cores` CPUs (None: unlimited); at least 1000 µs."""
    if cores is None:
        return None
    if cores < 0:
        raise ValueError(f"cores must be >= 0, got {cores}")
    return max(CFS_QUOTA_MIN_US, round(cores * CFS_PERIOD_US))


def write_quota(cpu_v1: Path | None, v2: Path | None, quota: int | None) -> None:
    """Apply a quota through v1 `cpu.cfs_*` (preferred when given) or v2 `cpu.max`."""
    if cpu_v1 is not None:
        _write(cpu_v1 / "cpu.cfs_period_us", str(CFS_PERIOD_US))
        _write(cpu_v1 / "cpu.cfs_quota_us", "-1" if quota is None else str(quota))
    elif v2 is not None:
        _write(v2 / "cpu.max", f"{'max' if quota is None else quota} {CFS_PERIOD_US}")


class CgroupHandle(Handle):
    def __init__(
        self, backend: CgroupBackend, spec: AgentSpec, dirs: dict[Path, Path], plan: _Plan,
        helpers: Path | None = None,
    ) -> None:
        self._backend = backend
        self._plan = plan
        self._dirs = dirs  # hierarchy mount -> this agent's cgroup in it
        self._v2 = dirs[plan.v2] if plan.v2 is not None else None
        self._freezer = dirs[plan.freezer] if plan.freezer is not None else None
        self._primary = self._v2 if self._v2 is not None else next(iter(dirs.values()))
        self._cpu = dirs[plan.cpu_v1] if plan.cpu_v1 is not None else None
        self._cpuacct = dirs[plan.cpuacct_v1] if plan.cpuacct_v1 is not None else None
        self._final_usage: Usage | None = None
        self._quota_us: int | None = None
        self._quota_set = False
        self._seen: set[int] = set()
        # The jail helpers' sibling cgroup in the freezer's hierarchy, the helpers
        # moved there, and whether that hierarchy is also the one CPU is read from.
        self._helpers = helpers
        self._helper_pids: tuple[int, ...] = ()
        self._helper_tries = 0
        self._helpers_in_acct = helpers is not None and (
            plan.cpuacct_v1 is None
            or os.path.realpath(helpers.parent) == os.path.realpath(dirs[plan.cpuacct_v1].parent)
        )
        unenforced = _apply_limits(spec, dirs, plan)
        proc = _proc.spawn(
            spec,
            f"{backend.supervisor_id}/{spec.name}",
            [d / "cgroup.procs" for d in dirs.values()],
        )
        super().__init__(spec.name, proc)
        self.unenforced = unenforced
        if self._v2 is not None:
            self.cgroup_id = os.stat(self._v2).st_ino
        # v2 freezes where the agent has a v2 cgroup (hybrid too), else the v1 freezer.
        self._freeze: Freezer | None = freezer_for(self._v2, self._freezer)

    # -- pause / resume ---------------------------------------------------
    def pause(self, wait: bool = True) -> None:
        if self._killed or self._freeze is None:
            return
        self._freeze.freeze(wait)
        self.paused = True
        if wait and self._helpers is not None and not self._helper_pids:
            self._move_helpers()

    def _move_helpers(self) -> None:
        """Move bwrap's monitor and pid-1 reaper out of the (now frozen) freezer cgroup.

        Only once the reaper has forked the agent (before that, moving it would put
        the agent in the unfrozen sibling). Done while frozen, so neither can exit
        and have its pid reused under us: the reaper is the frozen monitor's child,
        the monitor ours, and nothing else can reap them.
        """
        assert self._helpers is not None
        self._helper_tries += 1
        if self._helper_tries > HELPER_MOVE_TRIES or self._proc.returncode is not None:
            self._helpers = None  # bwrap never got the agent going: leave things be
            return
        kids = _proc.children(self.pid)
        if len(kids) != 1 or not _proc.children(kids[0]):
            return  # bwrap is still setting the jail up: next pause
        moved = []
        for pid in (kids[0], self.pid):
            try:
                _write(self._helpers / "cgroup.procs", str(pid))
                moved.append(pid)
            except MembraneError:
                break  # it is exiting (the agent died): the rest stays where it is
        self._helper_pids = tuple(moved)

    def resume(self) -> None:
        if self._killed or self._freeze is None:
            return
        self._freeze.thaw()
        self.paused = False

    def frozen(self) -> bool:
        """Whether the kernel reports this agent frozen now (for a per-tick re-check)."""
        return not self._killed and self._freeze is not None and self._freeze.frozen()

    # -- cpu quota ----------------------------------------------------------
    def set_cpu(self, cores: float | None) -> None:
        if self._killed:
            return
        quota = quota_us(cores)
        if quota == self._quota_us and self._quota_set:
            return  # called every tick; skip the writes when nothing changes
        v2 = self._v2 if self._plan.v2_cpu else None
        if self._cpu is None and v2 is None:
            raise MembraneError(f"{self._backend.name}: no cpu controller to set a quota")
        write_quota(self._cpu, v2, quota)
        self._quota_us, self._quota_set = quota, True

    def verify(self) -> list[str]:
        """Tamper check: the freeze and quota files still say what we wrote."""
        if self._killed:
            return []
        drift = []
        try:
            if self._v2 is not None:
                frozen = _read(self._v2 / "cgroup.freeze").strip() == "1"
            elif self._freezer is not None:
                frozen = not _read(self._freezer / "freezer.state").startswith("THAWED")
            else:
                frozen = self.paused
            if frozen != self.paused:
                drift.append(f"{'frozen' if frozen else 'thawed'} behind the supervisor's back "
                             f"(should be {'paused' if self.paused else 'running'}); restored")
                if self.paused:
                    self.pause(wait=False)
                else:
                    self.resume()
            if self._helper_pids:
                drift += self._check_helpers()
            if self._quota_set:
                v2 = self._v2 if self._plan.v2_cpu else None
                if self._cpu is not None:
                    raw = _read(self._cpu / "cpu.cfs_quota_us").strip()
                    now = None if raw == "-1" else int(raw)
                elif v2 is not None:
                    raw = _read(v2 / "cpu.max").split()[0]
                    now = None if raw == "max" else int(raw)
                else:
                    now = self._quota_us
                if now != self._quota_us:
                    drift.append(f"cpu quota {now} us is not the {self._quota_us} us set; "
                                 "restored")
                    write_quota(self._cpu, v2, self._quota_us)
        except (OSError, ValueError, MembraneError) as err:
            drift.append(f"cannot re-check: {err}")
        return drift

    def _check_helpers(self) -> list[str]:
        """Only the helpers may be in their sibling cgroup: move anything else back."""
        assert self._helpers is not None
        home = self._v2 if self._v2 is not None else self._freezer
        assert home is not None
        drift = []
        for pid in read_procs(self._helpers):
            if pid not in self._helper_pids:
                _write(home / "cgroup.procs", str(pid))
                drift.append(f"process {pid} was in the jail helpers' cgroup "
                             f"{self._helpers.name}; moved back")
        return drift

    # -- metering -----------------------------------------------------------
    def _cpu_s(self) -> float:
        if self._cpuacct is not None:
            cpu_s = int(_read(self._cpuacct / "cpuacct.usage")) / 1e9
            if self._helpers_in_acct and self._helper_pids and self._helpers is not None:
                with contextlib.suppress(OSError, ValueError):
                    cpu_s += int(_read(self._helpers / "cpuacct.usage")) / 1e9
            return cpu_s
        assert self._v2 is not None
        cpu_s = _usage_usec(self._v2) / 1e6
        if self._helpers_in_acct and self._helper_pids and self._helpers is not None:
            # Pure v2: the helpers' CPU since their move is in their sibling's cpu.stat.
            with contextlib.suppress(OSError, ValueError):
                cpu_s += _usage_usec(self._helpers) / 1e6
        return cpu_s

    def pids(self) -> list[int]:
        if self._killed:
            return []
        pids = live(read_procs(self._primary))
        gone = self._seen.difference(pids)
        gone.discard(self.pid)  # the leader is reaped by its Popen
        if gone:  # adopted orphans of ours that exited: collect them
            _proc.reap(gone)
        self._seen = set(pids)
        return pids

    def usage(self) -> Usage:
        if self._final_usage is not None:
            return self._final_usage
        pids = self.pids()
        try:
            cpu_s = self._cpu_s()
        except (OSError, ValueError):
            cpu_s = 0.0
        return Usage(cpu_s, _proc.rss_bytes(pids), len(pids))

    def alive(self) -> bool:
        self._proc.poll()
        if self._killed:
            return False
        if self._v2 is not None:
            try:
                return "populated 1" in _read(self._v2 / "cgroup.events")
            except OSError:
                return False
        return bool(self.pids())

    # -- kill ---------------------------------------------------------------
    def kill(self) -> None:
        if self._killed:
            return
        try:
            before = self.usage()
        except OSError:
            before = Usage(0.0, 0, 0)
        members = list(self._dirs.values())
        killed = kill_cgroups(self._v2, self._freezer, members)
        if self._helpers is not None:
            hv2 = self._helpers if self._v2 is not None else None
            hfz = self._helpers if self._v2 is None else None
            killed += kill_cgroups(hv2, hfz, [self._helpers])
        try:
            cpu_s = self._cpu_s()
        except (OSError, ValueError):
            cpu_s = before.cpu_s
        self._final_usage = Usage(max(cpu_s, before.cpu_s), 0, 0)
        self._killed = True
        self.paused = False
        self._reap_leader(EMPTY_TIMEOUT_S)
        _proc.reap(p for p in killed + list(self._seen) if p != self.pid)
        if self._freeze is not None:
            self._freeze.close()
            self._freeze = None
        for cg in members + ([self._helpers] if self._helpers is not None else []):
            remove_tree(cg)


def _usage_usec(cg: Path) -> int:
    for line in _read(cg / "cpu.stat").splitlines():
        key, _, val = line.partition(" ")
        if key == "usage_usec":
            return int(val)
    return 0


def _apply_limits(spec: AgentSpec, dirs: dict[Path, Path], plan: _Plan) -> tuple[str, ...]:
    unenforced = []
    if spec.pids_max is not None:
        if plan.pids_v1 is not None:
            _write(dirs[plan.pids_v1] / "pids.max", str(spec.pids_max))
        elif plan.v2_pids and plan.v2 is not None:
            _write(dirs[plan.v2] / "pids.max", str(spec.pids_max))
        else:
            unenforced.append("pids_max")
    if spec.memory_max_bytes is not None:
        limit = str(spec.memory_max_bytes)
        if plan.memory_v1 is not None:
            cg = dirs[plan.memory_v1]
            _write(cg / "memory.limit_in_bytes", limit)
            # Without this the agent could spill past its limit into swap.
            if (cg / "memory.memsw.limit_in_bytes").exists():
                with contextlib.suppress(MembraneError):
                    _write(cg / "memory.memsw.limit_in_bytes", limit)
        elif plan.v2_memory and plan.v2 is not None:
            _write(dirs[plan.v2] / "memory.max", limit)
            if (dirs[plan.v2] / "memory.swap.max").exists():
                _write(dirs[plan.v2] / "memory.swap.max", "0")
        else:
            unenforced.append("memory_max_bytes")
    return tuple(unenforced)


class CgroupBackend(Backend):
    """cgroup2, hybrid or cgroup1, by `tier`."""

    def __init__(
        self,
        tier: str,
        cgroup_root: Path = Path("/sys/fs/cgroup"),
        *,
        subreaper: bool = True,
        allow_no_cpu: bool = False,
    ) -> None:
        h = discover(cgroup_root)
        avail = tier_availability(tier, h)
        # allow_no_cpu: a v2 tree without the cpu controller still freezes,
        # kills and accounts (cpu.stat is core); only set_cpu is missing.
        if not avail.ok and not (
            allow_no_cpu and tier == "cgroup2" and h.v2 is not None and _writable(h.v2)
        ):
            raise MembraneError(f"{tier} unavailable: {avail.reason}")
        self.name = tier
        self.reason = avail.reason
        self.hierarchies = h
        self.cgroup_root = cgroup_root
        self.plan = _plan(tier, h)
        caps = {"whole_tree"}
        if self.plan.cpu_v1 is not None or self.plan.v2_cpu:
            caps.add("cpu_quota")
        if self.plan.pids_v1 is not None or self.plan.v2_pids:
            caps.add("pids_max")
        if self.plan.memory_v1 is not None or self.plan.v2_memory:
            caps.add("memory_max")
        self.capabilities = frozenset(caps)
        super().__init__(subreaper=subreaper)
        self.sup_dirs: dict[Path, Path] = {}
        try:
            for mount in self.plan.members:
                top = mount / TOP
                top.mkdir(exist_ok=True)
                sup = top / self.supervisor_id
                sup.mkdir()
                self.sup_dirs[mount] = sup
            if self.plan.v2 is not None and tier == "cgroup2":
                self._enable_v2_controllers()
        except (OSError, MembraneError) as err:
            self._close_tier()
            raise MembraneError(f"{tier}: cannot create cgroups: {err}") from err

    def _enable_v2_controllers(self) -> None:
        assert self.plan.v2 is not None
        want = [c for c, on in (("cpu", self.plan.v2_cpu), ("pids", self.plan.v2_pids),
                                ("memory", self.plan.v2_memory)) if on]  # fmt: skip
        if not want:
            return
        text = " ".join("+" + c for c in want)
        for d in (self.plan.v2, self.plan.v2 / TOP, self.sup_dirs[self.plan.v2]):
            enabled = _read(d / "cgroup.subtree_control").split()
            if not all(c in enabled for c in want):
                _write(d / "cgroup.subtree_control", text)

    def _spawn(self, spec: AgentSpec) -> Handle:
        dirs: dict[Path, Path] = {}
        helpers: Path | None = None
        try:
            for mount, sup in self.sup_dirs.items():
                d = sup / spec.name
                if d.is_dir():
                    remove_tree(d)
                try:
                    d.mkdir()
                except FileExistsError:
                    raise MembraneError(
                        f"agent name {spec.name!r} collides with a cgroup interface file in "
                        f"{sup}; rename the agent"
                    ) from None
                dirs[mount] = d
            freeze_mount = self.plan.v2 or self.plan.freezer
            if spec.jail is not None and spec.jail.jail.helpers() and freeze_mount is not None:
                helpers = self.sup_dirs[freeze_mount] / (spec.name + HELPERS_SUFFIX)
                if helpers.is_dir():
                    remove_tree(helpers)
                helpers.mkdir()
                if (helpers / "pids.max").exists():
                    # Two helpers, and neither ever forks: nothing else fits.
                    _write(helpers / "pids.max", "2")
            return CgroupHandle(self, spec, dirs, self.plan, helpers)
        except BaseException:
            if helpers is not None:
                with contextlib.suppress(MembraneError, OSError):
                    remove_tree(helpers)
            for d in dirs.values():
                with contextlib.suppress(MembraneError, OSError):
                    kill_cgroups(None, None, [d])
                    remove_tree(d)
            raise

    def _close_tier(self) -> None:
        errors = []
        for sup in self.sup_dirs.values():
            try:
                leftovers = [d for d in sup.iterdir() if d.is_dir()] if sup.is_dir() else []
                for d in leftovers:
                    kill_cgroups(None, None, [d])
                remove_tree(sup)
            except (OSError, MembraneError) as err:
                errors.append(str(err))
        if errors:
            raise MembraneError("; ".join(errors))
