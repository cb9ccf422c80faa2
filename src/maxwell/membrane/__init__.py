"""The membrane: containment and enforcement of agents (spawn, pause, resume, quota, kill, usage).

Tiers, best first: cgroup v2 (`cgroup2`), `hybrid` (v2 membership/freeze/id with
v1 cpu+cpuacct, for hosts whose v2 tree lacks the cpu controller), cgroup v1
(`cgroup1`) and `signals` (SIGSTOP/SIGCONT, unprivileged). It touches only
cgroups under `<hierarchy>/maxwell/<supervisor-pid>-<random>/` and the processes
it started (plus, in `cleanup_stale`, those left by dead supervisors).

Usage::

    backend = select_backend()            # or select_backend("signals")
    try:
        h = backend.spawn(AgentSpec("miner", ["python3", "-m", "…"]))
        h.pause(); h.resume(); h.set_cpu(0.5); h.usage()
    finally:
        backend.close()                   # kills every tree, thaws, reaps, rmdirs

What each tier guarantees:

- cgroup tiers: the agent's whole tree (forks, double-forks, setsid) is one
  cgroup, placed there by the child itself before exec (see `_proc`). Pause is
  `cgroup.freeze` confirmed by `frozen 1` (v2) or freezer.state FROZEN (v1,
  with thaw-and-retry when FREEZING sticks); kill is `cgroup.kill` (v2) or
  freeze, SIGKILL every member, thaw (v1); usage from cpu.stat / cpuacct (CPU
  of exited children included). pids and memory limits where the controller is
  there (`Handle.unenforced` names any that is not). An agent running as root
  can still move itself out of its cgroup: containment, not a sandbox.
- signals: see `_signals` for what it cannot guarantee (no quota, no limits,
  best-effort tree).
- microvm (`_microvm`, never chosen by `auto`): each agent in its own QEMU
  microVM whose VMM runs in the cgroups of the best process tier, so freeze,
  quota, accounting and kill are that tier's; QMP stop/cont as the other pause.
  Per agent, `AgentSpec.isolation` picks a VM or a plain process.
- Every tier: agents get PR_SET_PDEATHSIG=SIGKILL, their own session, and the
  MAXWELL_MEMBRANE=<supervisor-id>/<agent> environment tag; the backend makes
  the supervisor a child subreaper so orphaned descendants are reaped by it;
  `close()` runs at interpreter exit too (atexit), so SystemExit from a SIGTERM
  handler, exceptions and Ctrl-C all clean up. After a SIGKILLed supervisor,
  `cleanup_stale` (run by `select_backend` and `maxwell cleanup`) kills and
  removes what it left, and never touches a live supervisor's agents.

A Handle is not thread-safe: pause/resume/kill one agent from one thread.
"""

from __future__ import annotations

import os
from pathlib import Path

from maxwell.common import Availability, Check
from maxwell.membrane._base import Backend, Handle
from maxwell.membrane._cleanup import cleanup_stale
from maxwell.membrane._jail import Jail, JailConfig, JailRequest
from maxwell.membrane._microvm import MicrovmOptions
from maxwell.membrane._microvm import options_from_config as microvm_options
from maxwell.membrane._priority import priority_restored, raise_priority, raised_priority
from maxwell.membrane._types import AgentSpec, CleanupReport, MembraneError, Usage
from maxwell.membrane._weight import set_cpu_weight

__all__ = [
    "BACKEND_ORDER",
    "AgentSpec",
    "Backend",
    "CleanupReport",
    "Handle",
    "Jail",
    "JailConfig",
    "JailRequest",
    "MembraneError",
    "MicrovmOptions",
    "Usage",
    "available_backends",
    "cleanup_stale",
    "doctor_checks",
    "microvm_options",
    "priority_restored",
    "raise_priority",
    "raised_priority",
    "select_backend",
    "set_cpu_weight",
]

BACKEND_ORDER = ("cgroup2", "hybrid", "cgroup1", "signals")
DEFAULT_CGROUP_ROOT = Path("/sys/fs/cgroup")


def available_backends(cgroup_root: Path = DEFAULT_CGROUP_ROOT) -> dict[str, Availability]:
    """Every tier, best first, with whether it can run here and why (no side effects).

    "microvm" comes last and is only ever chosen by name.
    """
    from maxwell.membrane import _microvm

    out = _process_backends(cgroup_root)
    out["microvm"] = _microvm.availability()
    return out


def _process_backends(cgroup_root: Path) -> dict[str, Availability]:
    from maxwell.membrane import _cgroup, _signals

    h = _cgroup.discover(cgroup_root)
    out = {tier: _cgroup.tier_availability(tier, h) for tier in _cgroup.TIERS}
    out["signals"] = _signals.availability()
    return out


def _make(name: str, cgroup_root: Path) -> Backend:
    from maxwell.membrane import _cgroup, _signals

    if name == "signals":
        return _signals.SignalsBackend(cgroup_root)
    return _cgroup.CgroupBackend(name, cgroup_root)


def select_backend(
    prefer: str = "auto",
    cgroup_root: Path = DEFAULT_CGROUP_ROOT,
    *,
    clean_first: bool = True,
    microvm: MicrovmOptions | None = None,
) -> Backend:
    """The best available tier (`prefer="auto"`) or the one named; `.reason` explains.

    With `clean_first` (the default) leftovers of dead supervisors are cleaned
    first (`cleanup_stale`); the report is kept as `backend.cleanup_report`.
    Raises MembraneError if a named tier is unknown or unavailable here.
    `prefer="microvm"` runs every agent in a VM (`microvm` gives its options);
    `microvm` with a process tier wraps that tier so agents whose spec says
    `isolation="microvm"` get a VM and the others stay processes.
    """
    report = cleanup_stale(cgroup_root) if clean_first else None
    if prefer == "microvm" or microvm is not None:
        from dataclasses import replace

        from maxwell.membrane._microvm import MicrovmBackend

        opts = microvm or MicrovmOptions()
        if prefer == "microvm":
            backend: Backend = MicrovmBackend(opts, cgroup_root)
        else:
            inner = _select(prefer, cgroup_root)
            try:
                backend = MicrovmBackend(replace(opts, isolation="process"), cgroup_root,
                                         inner=inner)
            except BaseException:
                inner.close()
                raise
    else:
        backend = _select(prefer, cgroup_root)
    backend.cleanup_report = report
    return backend


def _select(prefer: str, cgroup_root: Path) -> Backend:
    avail = _process_backends(cgroup_root)
    if prefer != "auto":
        if prefer not in avail:
            raise MembraneError(
                f"unknown membrane backend {prefer!r}; "
                f"choose one of auto, {', '.join(BACKEND_ORDER)}, microvm"
            )
        if not avail[prefer].ok:
            raise MembraneError(f"membrane backend {prefer} unavailable: {avail[prefer].reason}")
        backend = _make(prefer, cgroup_root)
        backend.reason = f"forced; {avail[prefer].reason}"
        return backend
    skipped = []
    for name in BACKEND_ORDER:
        if avail[name].ok:
            try:
                backend = _make(name, cgroup_root)
            except MembraneError as err:
                skipped.append(f"{name}: {err}")
                continue
            why_not = f" (not {'; '.join(skipped)})" if skipped else ""
            backend.reason = f"best available: {avail[name].reason}{why_not}"
            return backend
        skipped.append(f"{name}: {avail[name].reason}")
    raise MembraneError("no membrane backend usable: " + "; ".join(skipped))


def _priority_check() -> Check:
    import resource

    rtprio = resource.getrlimit(resource.RLIMIT_RTPRIO)[0]
    if os.geteuid() == 0 or rtprio == resource.RLIM_INFINITY or rtprio > 0:
        return Check("membrane priority", True, "SCHED_FIFO permitted for the pause path")
    return Check(
        "membrane priority",
        False,
        "SCHED_FIFO not permitted (pause tails will be longer under load); "
        "run as root or raise RLIMIT_RTPRIO (limits.conf rtprio)",
    )


def doctor_checks(cgroup_root: Path = DEFAULT_CGROUP_ROOT) -> list[Check]:
    """`maxwell doctor` lines: each tier, the one `auto` would pick, stale leftovers."""
    from maxwell.membrane import _cgroup

    avail = available_backends(cgroup_root)
    checks = [Check(f"membrane {name}", a.ok, a.reason) for name, a in avail.items()
              if name != "microvm"]  # the microVM lines come below
    best = next((n for n in BACKEND_ORDER if avail[n].ok), None)
    checks.append(
        Check("membrane backend", best is not None, f"auto selects {best}" if best else "none")
    )
    stale = []
    for mount in _cgroup.discover(cgroup_root).all_paths():
        top = mount / _cgroup.TOP
        if top.is_dir():
            from maxwell.membrane._cleanup import _supervisor_alive

            stale += [d.name for d in top.iterdir() if d.is_dir() and not _supervisor_alive(d.name)]
    checks.append(_priority_check())
    from maxwell.membrane._vmcheck import microvm_checks

    checks += microvm_checks()
    from maxwell.membrane._jail import doctor_checks as jail_checks

    checks += jail_checks()
    checks.append(
        Check(
            "membrane leftovers",
            not stale,
            "none" if not stale else f"{len(set(stale))} dead supervisor(s): run `maxwell cleanup`",
        )
    )
    return checks
