"""Whole runs with jailed agents: nothing outlives the run, whatever the agent does."""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import signal
import sqlite3
import stat
import subprocess
import sys
import time
from pathlib import Path

import pytest

from maxwell.membrane._jail import live_uids

from .conftest import HERE, LEVELS, _system_python, skip_unless_level

CONFIG = """
[run]
# Shadow bills only: nothing is paused, so a slow start under load cannot freeze an
# agent before it acts.
policy = "cfs"
duration_s = {duration}
tick_s = 0.5
[membrane]
backend = "{backend}"
[jail]
mode = "{level}"
[[agents]]
name = "daemon"
cmd = ["{py}", "{script}", "daemonize", "stay"]
funds = 100.0
[[agents]]
name = "quiet"
cmd = ["{py}", "{script}", "sleep", "600"]
funds = 100.0
"""


def _start(tmp_path: Path, world_dir: Path, level: str, duration: float,
           backend: str = "auto") -> tuple[subprocess.Popen[bytes], Path]:
    script = world_dir / "hostile.py"
    shutil.copy(HERE / "hostile.py", script)
    os.chmod(script, stat.S_IRUSR | stat.S_IWUSR | stat.S_IRGRP | stat.S_IROTH)
    cfg = tmp_path / "jail.toml"
    cfg.write_text(CONFIG.format(duration=duration, level=level, py=_system_python(),
                                 script=script, backend=backend))
    out = tmp_path / "run"
    proc = subprocess.Popen(
        [sys.executable, "-m", "maxwell", "run", "--config", str(cfg), "--out", str(out)],
        stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
    )
    return proc, out


def _jail_record(db: Path, timeout_s: float = 30.0) -> dict[str, object]:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        try:
            with sqlite3.connect(f"file:{db}?mode=ro", uri=True) as c:
                row = c.execute("select jail_level, host from runs").fetchone()
                ticks = c.execute("select count(*) from ticks").fetchone()[0]
            if row is not None and ticks >= 2:
                return {"level": row[0], **json.loads(row[1])["jail"]}
        except sqlite3.Error:
            pass
        time.sleep(0.1)
    raise AssertionError(f"{db}: no run with two ticks in {timeout_s} s")


def _gone(uids: list[int], timeout_s: float = 5.0) -> set[int]:
    deadline = time.monotonic() + timeout_s
    while True:
        left = live_uids() & set(uids)
        if not left or time.monotonic() > deadline:
            return left
        time.sleep(0.05)


def _children(pid: int) -> list[int]:
    """Children of every thread of `pid` (the supervisor starts its watchdog from any)."""
    kids = []
    for task in Path(f"/proc/{pid}/task").glob("*"):
        with contextlib.suppress(OSError):
            kids += [int(x) for x in (task / "children").read_text().split()]
    return kids


def _cmdline(pid: int) -> bytes:
    try:
        return Path(f"/proc/{pid}/cmdline").read_bytes()
    except OSError:
        return b""


@pytest.mark.parametrize("level", LEVELS)
def test_nothing_outlives_the_run(tmp_path: Path, world_dir: Path, level: str) -> None:
    skip_unless_level(level)
    proc, out = _start(tmp_path, world_dir, level, 8.0)
    jail = _jail_record(out / "run.db")
    log = out / "agents" / "daemon.log"
    deadline = time.monotonic() + 30
    while "left a daemon behind" not in log.read_text() and time.monotonic() < deadline:
        time.sleep(0.05)
    # The daemon exists while the run is live (else this test could not fail).
    assert "left a daemon behind" in log.read_text() and proc.poll() is None
    _, err = proc.communicate(timeout=120)
    assert proc.returncode == 0, err.decode()
    assert jail["level"] == level
    uids = list(dict(jail["uids"]).values())  # type: ignore[call-overload]
    assert len(set(uids)) == 2  # one uid per agent
    assert not _gone(uids), "a process of the agents' uids outlived the run"


@pytest.mark.parametrize("level", LEVELS)
def test_a_killed_supervisor_takes_the_jailed_agents_along(tmp_path: Path, world_dir: Path,
                                                           level: str) -> None:
    """SIGKILL: no cleanup code of the supervisor runs. bwrap dies with its parent and its
    pid namespace with it, daemons included; without bwrap (no pid namespace) the
    supervisor's watchdog sees it die and cleans up at once, not at the next run."""
    skip_unless_level(level)
    proc, out = _start(tmp_path, world_dir, level, 60.0)
    try:
        jail = _jail_record(out / "run.db")
        uids = list(dict(jail["uids"]).values())  # type: ignore[call-overload]
        log = out / "agents" / "daemon.log"
        deadline = time.monotonic() + 30
        while "left a daemon behind" not in log.read_text() and time.monotonic() < deadline:
            time.sleep(0.05)
        assert _gone(uids, 0) == set(uids)  # both running (with the daemon) right now
        proc.send_signal(signal.SIGKILL)
        proc.wait(timeout=30)
        # Bounded wait, generous for a loaded machine (the watchdog scans /proc and the
        # cgroups); it returns as soon as they are gone.
        assert not _gone(uids, 60.0), "a jailed process outlived its SIGKILLed supervisor"
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
        subprocess.run([sys.executable, "-m", "maxwell", "cleanup"], capture_output=True,
                       check=False)


TAMPER = """
[run]
duration_s = 30
tick_s = 0.5
startup_grace_s = 0
[[agents]]
name = "capped"
cmd = ["{py}", "-c", "while True: pass"]
funds = 1000.0
default_bid = 10.0
default_slots = 1
"""


def test_a_lifted_quota_is_restored_and_recorded(tmp_path: Path) -> None:
    """The per-tick re-check: a quota lifted behind the supervisor's back (here by the
    test, as root: the jailed agent itself cannot) comes back and is a `tamper` event."""
    from maxwell.membrane._cgroup import discover

    h = discover(Path("/sys/fs/cgroup"))
    if os.geteuid() != 0 or "cpu" not in h.v1:
        pytest.skip("needs root and the v1 cpu controller (where the quota lives here)")
    cfg = tmp_path / "tamper.toml"
    cfg.write_text(TAMPER.format(py=sys.executable))
    out = tmp_path / "run"
    proc = subprocess.Popen(
        [sys.executable, "-m", "maxwell", "run", "--config", str(cfg), "--out", str(out)],
        stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    try:
        deadline = time.monotonic() + 60
        quota: Path | None = None
        while time.monotonic() < deadline:
            found = list((h.v1["cpu"] / "maxwell").glob(f"{proc.pid}-*/capped/cpu.cfs_quota_us"))
            if found and found[0].read_text().strip() not in ("-1", ""):
                quota = found[0]
                break
            time.sleep(0.05)
        assert quota is not None, "the agent never got a quota"
        before = quota.read_text().strip()
        quota.write_text("-1")
        while time.monotonic() < deadline:
            with sqlite3.connect(f"file:{out / 'run.db'}?mode=ro", uri=True) as c:
                rows = c.execute("select detail from events where kind = 'tamper'").fetchall()
            if rows:
                break
            time.sleep(0.1)
        assert rows and "quota" in rows[0][0], rows
        assert quota.read_text().strip() == before
    finally:
        proc.send_signal(signal.SIGINT)
        proc.communicate(timeout=60)


def test_cleanup_finds_jailed_leftovers_by_uid(tmp_path: Path, world_dir: Path) -> None:
    """Signals tier, no bwrap, supervisor and its watchdog SIGKILLed (as a kill of its
    whole service would): the agent's daemon left its group, its session and its tag
    (empty environment) and is nobody's child; only its uid says whose it is, and
    `maxwell cleanup` kills it by that."""
    skip_unless_level("drop")
    proc, out = _start(tmp_path, world_dir, "drop", 60.0, backend="signals")
    try:
        jail = _jail_record(out / "run.db")
        uids = list(dict(jail["uids"]).values())  # type: ignore[call-overload]
        log = out / "agents" / "daemon.log"
        deadline = time.monotonic() + 30
        while "left a daemon behind" not in log.read_text() and time.monotonic() < deadline:
            time.sleep(0.05)
        # The watchdog first: left alive, it would do the cleanup this test is about.
        watchdogs = [p for p in _children(proc.pid) if b"_watch()" in _cmdline(p)]
        assert len(watchdogs) == 1, "a drop-level supervisor runs one watchdog"
        os.kill(watchdogs[0], signal.SIGKILL)
        proc.send_signal(signal.SIGKILL)
        proc.wait(timeout=30)
        time.sleep(0.3)
        daemon_uid = dict(jail["uids"])["daemon"]  # type: ignore[call-overload]
        # The leader died with its parent, the daemon not (unless another supervisor's
        # start-up cleanup, sharing this machine, already did the job).
        if daemon_uid not in live_uids():
            pytest.skip("another supervisor's start-up cleanup removed the daemon first")
        done = subprocess.run([sys.executable, "-m", "maxwell", "cleanup", "--json"],
                              capture_output=True, text=True, check=False, timeout=60)
        assert done.returncode == 0, done.stdout + done.stderr
        assert not _gone(uids), "cleanup left a jailed process alive"
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
