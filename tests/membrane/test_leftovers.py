"""Nothing left behind: a supervisor SIGKILLed while its agents run or are frozen.

A real supervisor process is killed with SIGKILL (no finally, no atexit); then
`cleanup_stale` (what `maxwell cleanup` and the next run's start call) must
leave zero agent processes and zero cgroups of that supervisor. A live
supervisor's agents must survive the same cleanup.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest
from membrane_backends import CGROUP_ROOT, TIERS, make_backend
from membrane_programs import BURNER, DOUBLE_FORK, PY, SUPERVISOR, exists, wait_for

from maxwell.membrane import AgentSpec, cleanup_stale
from maxwell.membrane._cgroup import CgroupBackend
from maxwell.membrane._proc import pid_alive, read_tag, reap, set_child_subreaper


@pytest.fixture(autouse=True)
def _adopt_orphans() -> Iterator[None]:
    # The killed supervisor's orphans reparent to us rather than to pid 1
    # (which never reaps on this machine), so the test can check for zombies.
    set_child_subreaper()
    yield


def _start_supervisor(tier: str, mode: str, tmp: Path) -> tuple[subprocess.Popen[str], dict]:  # type: ignore[type-arg]
    make_backend(tier).close()  # skips if the tier is missing here
    sup = subprocess.Popen(
        [PY, "-c", SUPERVISOR, tier, mode, str(tmp), DOUBLE_FORK],
        stdout=subprocess.PIPE,
        text=True,
    )
    assert sup.stdout is not None
    line = sup.stdout.readline()
    assert line, f"supervisor exited early ({sup.wait()})"
    return sup, json.loads(line)


def _describe(pid: int) -> str:
    try:
        return Path(f"/proc/{pid}/stat").read_text() + repr(read_tag(pid))
    except OSError as err:
        return str(err)


@pytest.mark.parametrize("mode", ["run", "frozen"])
@pytest.mark.parametrize("tier", TIERS)
def test_sigkilled_supervisor_leaves_nothing_after_cleanup(
    tier: str, mode: str, tmp_path: Path
) -> None:
    sup, made = _start_supervisor(tier, mode, tmp_path)
    assert len(made["pids"]) >= 4  # two agents, each with a grandchild
    sup.send_signal(signal.SIGKILL)
    sup.wait()
    # Without cleanup the grandchildren outlive their supervisor (that is the bug
    # cleanup exists for); the leaders die by PDEATHSIG.
    assert any(pid_alive(p) for p in made["pids"])

    report = cleanup_stale(CGROUP_ROOT)

    assert made["sup"] in report.removed_supervisors
    # A process already SIGKILLed (the leaders, by PDEATHSIG) may need a moment
    # on a loaded machine to be scheduled and finish exiting.
    def survivors() -> list[int]:
        return [p for p in made["pids"] if pid_alive(p)]

    try:
        wait_for(lambda: not survivors(), 5, "every agent process to exit")
    except AssertionError:
        raise AssertionError((made, report, [_describe(p) for p in survivors()])) from None
    for d in made["dirs"]:
        assert not Path(d).exists()
    for mount in ("unified", "cpu", "cpuacct", "freezer", "pids", "memory"):
        assert not (CGROUP_ROOT / mount / "maxwell" / made["sup"]).exists()
    # The orphans were ours to reap (we are their subreaper): cleanup reaped
    # those it killed; reap the PDEATHSIG-killed leaders and check no zombie stays.
    reap(made["pids"])
    wait_for(lambda: not any(exists(p) for p in made["pids"]), 5, "no zombies")
    assert report.errors == []


def test_cleanup_leaves_a_live_supervisors_agents_alone(tmp_path: Path) -> None:
    backend = make_backend("hybrid")
    try:
        h = backend.spawn(AgentSpec("keep", [PY, "-c", BURNER]))
        h.pause()
        report = cleanup_stale(CGROUP_ROOT)
        assert backend.supervisor_id in report.live_supervisors
        assert backend.supervisor_id not in report.removed_supervisors
        assert h.pid not in report.killed_pids and pid_alive(h.pid)
        assert isinstance(backend, CgroupBackend)
        assert all(d.exists() for d in backend.sup_dirs.values())
        assert h.paused
    finally:
        backend.close()


def test_signals_agents_of_a_live_supervisor_are_left_alone(tmp_path: Path) -> None:
    backend = make_backend("signals")
    try:
        h = backend.spawn(AgentSpec("keep", [PY, "-c", BURNER]))
        cleanup_stale(CGROUP_ROOT)
        assert pid_alive(h.pid)
    finally:
        backend.close()


def test_cleanup_with_nothing_stale_is_a_no_op(tmp_path: Path) -> None:
    report = cleanup_stale(tmp_path)  # an empty cgroup root
    assert report.removed_cgroups == [] and report.errors == []
    assert os.getpid() not in report.killed_pids


def test_the_next_start_cleans_a_dead_supervisors_cgroups() -> None:
    dead = subprocess.Popen([PY, "-c", "pass"])
    dead.wait()
    sup_id = f"{dead.pid}-deadbeef"
    v2 = CGROUP_ROOT / "unified" / "maxwell"
    if not (CGROUP_ROOT / "unified" / "cgroup.controllers").exists():
        pytest.skip("needs the hybrid layout's v2 tree at /sys/fs/cgroup/unified")
    v2.mkdir(exist_ok=True)
    (v2 / sup_id / "agent").mkdir(parents=True)
    (v2 / sup_id / "agent" / "cgroup.freeze").write_text("1")  # left frozen
    from maxwell.membrane import select_backend

    backend = select_backend("signals", CGROUP_ROOT)
    try:
        assert backend.cleanup_report is not None
        assert sup_id in backend.cleanup_report.removed_supervisors
        assert not (v2 / sup_id).exists()
    finally:
        backend.close()


@pytest.mark.parametrize("tier", TIERS)
def test_sigterm_to_a_supervisor_closes_everything_without_cleanup(
    tier: str, tmp_path: Path
) -> None:
    sup, made = _start_supervisor(tier, "sigterm", tmp_path)
    sup.send_signal(signal.SIGTERM)
    assert sup.wait(timeout=60) == 143
    assert [p for p in made["pids"] if pid_alive(p)] == []
    for d in made["dirs"]:
        assert not Path(d).exists()
