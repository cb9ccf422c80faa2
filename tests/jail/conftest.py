"""Fixtures for the hostile-agent suite: real jails (bwrap and the no-bwrap drop), real cgroups.

Every test runs at both own-uid levels. The hostile program (`hostile.py`) runs
under the system Python from a world-readable copy, as a jailed uid would find it.
"""

from __future__ import annotations

import json
import os
import shutil
import stat
import tempfile
import time
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

import pytest

from maxwell.membrane import AgentSpec, Backend, Handle, select_backend
from maxwell.membrane._jail import Jail, JailConfig, _unreachable, live_uids, pieces

HERE = Path(__file__).parent
LEVELS = ["bwrap", "drop"]
TMP_MB = 8
FSIZE_MB = 4
PIDS_MAX = 40


def _system_python() -> str | None:
    for cand in ("/usr/bin/python3", "/bin/python3", "/usr/local/bin/python3"):
        if os.path.exists(cand) and _unreachable(Path(cand)) is None:
            return cand
    return None


def assert_uid_gone(uid: int, within_s: float = 5.0) -> None:
    """Fails unless no process of `uid` is alive within `within_s` (a killed tree's
    last processes may take a moment to be reaped)."""
    deadline = time.monotonic() + within_s
    while uid in live_uids() and time.monotonic() < deadline:
        time.sleep(0.02)
    assert uid not in live_uids()


def skip_unless_level(level: str) -> None:
    p = pieces()
    if not p["root"].ok:
        pytest.skip("the jail's own-uid levels need root: run the tests as root")
    if level == "bwrap" and not p["bwrap"].ok:
        pytest.skip("needs bubblewrap: sudo apt-get install bubblewrap")
    if level == "bwrap" and not p["setpriv"].ok:
        pytest.skip("needs setpriv: sudo apt-get install util-linux")
    if not p["seccomp"].ok:
        pytest.skip(f"needs libseccomp: {p['seccomp'].reason}")
    if _system_python() is None:
        pytest.skip("needs a system python3 reachable by other uids: sudo apt-get install python3")


class Cell:
    """One jail level with a real backend; spawns `hostile.py ATTACK ARGS` and reads its verdict."""

    def __init__(self, level: str, backend: Backend, jail: Jail, scripts: Path, logs: Path,
                 python: str) -> None:
        self.level, self.backend, self.jail = level, backend, jail
        self.scripts, self.logs, self.python = scripts, logs, python
        self.script = scripts / "hostile.py"

    def spawn(self, name: str, attack: str, *args: str, jailed: bool = True,
              rw: Sequence[Path] = (), pids_max: int | None = PIDS_MAX,
              env: dict[str, str] | None = None) -> Handle:
        spec = AgentSpec(
            name, [self.python, os.fspath(self.script), attack, *args], env=env or {},
            pids_max=pids_max, log_path=self.logs / f"{name}.log",
            jail=self.jail.request(rw=rw) if jailed else None,
        )
        return self.backend.spawn(spec)

    def verdict(self, name: str, h: Handle, timeout_s: float = 30.0) -> dict[str, Any]:
        deadline = time.monotonic() + timeout_s
        while h.exit_status is None and time.monotonic() < deadline:
            time.sleep(0.01)
        h.kill()
        text = (self.logs / f"{name}.log").read_text()
        lines = [ln for ln in text.splitlines() if ln.startswith("{")]
        assert lines, f"{name} printed no verdict; its log:\n{text}"
        return dict(json.loads(lines[-1]))

    def run(self, name: str, attack: str, *args: str, **kw: Any) -> dict[str, Any]:
        return self.verdict(name, self.spawn(name, attack, *args, **kw))

    def wait_running(self, h: Handle, uid: int | None, timeout_s: float = 30.0) -> list[int]:
        """Pids of the agent's own processes (its uid) once `sleep` says it is sleeping."""
        deadline = time.monotonic() + timeout_s
        log = self.logs / f"{h.name}.log"
        while time.monotonic() < deadline:
            pids = [p for p in h.pids() if uid is None or _uid(p) == uid]
            started = log.exists() and "sleeping" in log.read_text()
            if started and pids and all(_exe_is(p, self.python) for p in pids[:1]):
                return pids
            time.sleep(0.01)
        raise AssertionError(f"agent {h.name} did not start in {timeout_s} s")


def _uid(pid: int) -> int | None:
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("Uid:"):
                return int(line.split()[1])
    except OSError:
        return None
    return None


def _exe_is(pid: int, python: str) -> bool:
    try:
        return os.path.realpath(f"/proc/{pid}/exe") == os.path.realpath(python)
    except OSError:
        return False


@pytest.fixture
def world_dir() -> Iterator[Path]:
    """A directory every uid can read (as a real agent's files are), removed afterwards."""
    d = Path(tempfile.mkdtemp(prefix="maxwell-jail-test-"))
    os.chmod(d, 0o755)
    try:
        yield d
    finally:
        shutil.rmtree(d, ignore_errors=True)


@pytest.fixture(params=LEVELS)
def cell(request: pytest.FixtureRequest, tmp_path: Path, world_dir: Path) -> Iterator[Cell]:
    level = str(request.param)
    skip_unless_level(level)
    python = _system_python()
    assert python is not None
    shutil.copy(HERE / "hostile.py", world_dir / "hostile.py")
    os.chmod(world_dir / "hostile.py", stat.S_IRUSR | stat.S_IWUSR | stat.S_IRGRP | stat.S_IROTH)
    run_dir = tmp_path / "run"
    run_dir.mkdir()
    backend = select_backend("auto", clean_first=False)
    jail = Jail(JailConfig(mode=level, tmp_size_mb=TMP_MB, fsize_mb=FSIZE_MB), hide=[run_dir])
    try:
        yield Cell(level, backend, jail, world_dir, run_dir, python)
    finally:
        backend.close()
        jail.close()
