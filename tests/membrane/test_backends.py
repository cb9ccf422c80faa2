"""Every tier this machine has, with real processes: pause, resume, quota, kill, usage, limits."""

from __future__ import annotations

import os
import signal
import time
from pathlib import Path

import pytest
from membrane_programs import (
    BURNER,
    CHILD_BURNS,
    DOUBLE_FORK,
    FORK_BOMB,
    MEMORY_BOMB,
    PY,
    TWO_COUNTERS,
    Counters,
    exists,
    wait_file,
    wait_for,
)

from maxwell.membrane import AgentSpec, Backend, MembraneError
from maxwell.membrane._cgroup import CgroupBackend, CgroupHandle
from maxwell.membrane._proc import pid_alive


def test_pause_stops_the_whole_tree_and_resume_restarts_it(
    backend: Backend, tmp_path: Path
) -> None:
    c = Counters(tmp_path / "c")
    h = backend.spawn(AgentSpec("two", [PY, "-c", TWO_COUNTERS, str(tmp_path / "c")]))
    wait_for(lambda: min(c.read()) > 0, what="both counters moving")
    h.pause()
    assert h.paused
    if isinstance(h, CgroupHandle):  # the kernel's own word, for a per-tick re-check
        assert h.frozen()
    frozen = c.read()
    time.sleep(0.3)
    assert c.read() == frozen, "a paused tree made progress"
    h.resume()
    assert not h.paused
    if isinstance(h, CgroupHandle):
        assert not h.frozen()
    wait_for(lambda: all(x > y for x, y in zip(c.read(), frozen, strict=True)), what="resume")
    assert h.alive()


def test_an_unconfirmed_pause_stops_progress_too(backend: Backend, tmp_path: Path) -> None:
    c = Counters(tmp_path / "c")
    h = backend.spawn(AgentSpec("two", [PY, "-c", TWO_COUNTERS, str(tmp_path / "c")]))
    wait_for(lambda: min(c.read()) > 0, what="both counters moving")
    h.pause(wait=False)
    time.sleep(0.1)
    frozen = c.read()
    time.sleep(0.3)
    assert c.read() == frozen
    h.resume()
    wait_for(lambda: all(x > y for x, y in zip(c.read(), frozen, strict=True)), what="resume")


def test_kill_takes_the_double_forked_grandchild(backend: Backend, tmp_path: Path) -> None:
    pidfile = tmp_path / "gc.pid"
    h = backend.spawn(AgentSpec("df", [PY, "-c", DOUBLE_FORK, str(pidfile)]))
    grandchild = int(wait_file(pidfile))
    assert grandchild in h.pids()
    h.kill()
    assert not pid_alive(grandchild)
    assert not pid_alive(h.pid)
    assert h.exit_status == -signal.SIGKILL
    assert not h.alive()
    # Reaped too (we are the subreaper of the orphaned grandchild): no zombie left.
    wait_for(lambda: not exists(grandchild), 5, "grandchild reaped")
    h.kill()  # idempotent


def test_a_frozen_agent_is_killed_not_left_frozen(backend: Backend, tmp_path: Path) -> None:
    pidfile = tmp_path / "gc.pid"
    h = backend.spawn(AgentSpec("fz", [PY, "-c", DOUBLE_FORK, str(pidfile)]))
    grandchild = int(wait_file(pidfile))
    h.pause()
    h.kill()
    assert not h.paused
    assert not pid_alive(grandchild) and not pid_alive(h.pid)


def test_usage_counts_the_childrens_cpu(backend: Backend, tmp_path: Path) -> None:
    done = tmp_path / "done"
    h = backend.spawn(AgentSpec("cb", [PY, "-c", CHILD_BURNS, str(done), "0.4"]))
    wait_file(done)
    # The child burned 0.4 s by its own precise clock. /proc (the signals tier)
    # reports utime and stime in whole clock ticks, each rounded down, so its
    # reading may fall short by up to two ticks; cgroup counters are in ns or µs.
    resolution_s = 2 / os.sysconf("SC_CLK_TCK") if backend.name == "signals" else 1e-6
    u = h.usage()
    assert u.cpu_s >= 0.4 - resolution_s
    assert u.nprocs == 2
    assert u.rss_bytes > 0
    h.kill()
    assert h.usage().cpu_s >= u.cpu_s  # the last reading survives the kill


def test_set_cpu_holds_a_burner_near_the_quota(backend: Backend) -> None:
    if "cpu_quota" not in backend.capabilities:
        pytest.skip(f"{backend.name} enforces no cpu quota here")
    h = backend.spawn(AgentSpec("burn", [PY, "-c", BURNER]))
    h.set_cpu(0.2)
    wait_for(lambda: h.usage().cpu_s > 0.05, what="burner running")
    t0, u0 = time.monotonic(), h.usage().cpu_s
    time.sleep(2.0)
    share = (h.usage().cpu_s - u0) / (time.monotonic() - t0)
    # Upper bound is the quota (plus one period of slack); the lower bound only
    # checks it still ran, since other work on the machine may starve it.
    assert 0.05 < share < 0.27
    h.set_cpu(None)


def test_cgroup_id_is_the_v2_directory_inode(backend: Backend) -> None:
    h = backend.spawn(AgentSpec("idle", [PY, "-c", "import time; time.sleep(1000)"]))
    if isinstance(backend, CgroupBackend) and backend.plan.v2 is not None:
        d = backend.sup_dirs[backend.plan.v2] / "idle"
        assert h.cgroup_id == os.stat(d).st_ino
        # The kernel's own view: the process is in that v2 cgroup.
        rel = "/" + str(d.relative_to(backend.plan.v2))
        assert f"0::{rel}" in Path(f"/proc/{h.pid}/cgroup").read_text()
    else:
        assert h.cgroup_id is None


def test_close_kills_every_agent_and_removes_its_cgroups(backend: Backend, tmp_path: Path) -> None:
    pidfile = tmp_path / "gc.pid"
    a = backend.spawn(AgentSpec("a", [PY, "-c", DOUBLE_FORK, str(pidfile)]))
    b = backend.spawn(AgentSpec("b", [PY, "-c", BURNER]))
    b.pause()
    grandchild = int(wait_file(pidfile))
    backend.close()
    backend.close()
    for pid in (a.pid, b.pid, grandchild):
        assert not pid_alive(pid)
    if isinstance(backend, CgroupBackend):
        assert all(not d.exists() for d in backend.sup_dirs.values())
    with pytest.raises(MembraneError):
        backend.spawn(AgentSpec("c", [PY, "-c", BURNER]))


def test_pids_max_contains_a_fork_bomb(backend: Backend, tmp_path: Path) -> None:
    out = tmp_path / "forks"
    h = backend.spawn(AgentSpec("fb", [PY, "-c", FORK_BOMB, str(out), "40"], pids_max=5))
    if "pids_max" not in backend.capabilities:
        assert h.unenforced == ("pids_max",)
        return
    assert int(wait_file(out)) <= 4
    assert h.usage().nprocs <= 5


def test_memory_max_contains_a_memory_bomb(backend: Backend) -> None:
    h = backend.spawn(
        AgentSpec("mb", [PY, "-c", MEMORY_BOMB, "200"], memory_max_bytes=64 * 1024 * 1024)
    )
    if "memory_max" not in backend.capabilities:
        assert h.unenforced == ("memory_max_bytes",)
        return
    wait_for(lambda: h.exit_status is not None, what="the OOM kill")
    assert h.exit_status == -signal.SIGKILL


def test_a_name_colliding_with_a_cgroup_file_is_refused(backend: Backend) -> None:
    if not isinstance(backend, CgroupBackend):
        pytest.skip("only cgroup directories hold interface files")
    with pytest.raises(MembraneError, match="collides"):
        backend.spawn(AgentSpec("cgroup.procs", [PY, "-c", BURNER]))
    assert "cgroup.procs" not in backend.handles


def test_a_second_spawn_of_a_running_name_is_refused(backend: Backend) -> None:
    backend.spawn(AgentSpec("x", [PY, "-c", BURNER]))
    with pytest.raises(MembraneError, match="already running"):
        backend.spawn(AgentSpec("x", [PY, "-c", BURNER]))


def test_an_exited_agent_can_be_respawned_under_its_name(backend: Backend) -> None:
    h = backend.spawn(AgentSpec("once", [PY, "-c", "pass"]))
    wait_for(lambda: h.exit_status is not None and not h.alive(), what="exit")
    assert h.exit_status == 0
    h2 = backend.spawn(AgentSpec("once", [PY, "-c", "import time; time.sleep(1000)"]))
    assert h2.alive()
