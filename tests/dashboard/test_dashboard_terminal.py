"""The dashboard in a real terminal (tmux): it follows a run being written, redraws at
every tick, and exits cleanly on q.

A writer process records a run in real time (a real `maxwell run`, or the fixed
fixture run written tick by tick with the real Recorder); `maxwell dashboard
DIR --follow` runs inside a detached tmux session whose screen is read with
capture-pane. "At least once per tick" is checked as: every tick number the run
recorded appears on the status line, in order, between the first one seen and
the last. Skipped where tmux is absent.
"""

from __future__ import annotations

import importlib.util
import os
import re
import shlex
import shutil
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from maxwell.record import RunReader

pytestmark = [
    pytest.mark.slow,
    pytest.mark.timeout(180),
    pytest.mark.skipif(shutil.which("tmux") is None, reason="tmux is not installed"),
]

HERE = Path(__file__).parent
TICK_RE = re.compile(r"tick (\d+)/(\d+)")


def maxwell_cmd() -> list[str]:
    exe = Path(sys.executable).with_name("maxwell")
    return [str(exe)] if exe.exists() else [sys.executable, "-m", "maxwell.cli"]


class Tmux:
    """One detached tmux server of our own (its own socket), so nothing else is touched."""

    def __init__(self, tmp: Path) -> None:
        self.socket = str(tmp / "tmux.sock")

    def __call__(self, *args: str, check: bool = True) -> str:
        out = subprocess.run(["tmux", "-S", self.socket, *args], capture_output=True,
                             text=True, check=check, timeout=10)
        return out.stdout

    def start(self, command: str, exit_file: Path, width: int = 120, height: int = 40) -> None:
        env = f"TERM=xterm-256color PYTHONPATH={shlex.quote(str(HERE))}"
        shell = f"{env} {command}; echo $? > {shlex.quote(str(exit_file))}"
        # remain-on-exit keeps the pane (and a failing app's traceback) after the
        # command ends; stderr cannot go to a file, the app draws on it.
        self("new-session", "-d", "-s", "dash", "-x", str(width), "-y", str(height), shell,
             ";", "set-option", "-t", "dash", "remain-on-exit", "on")

    def screen(self) -> str:
        return self("capture-pane", "-p", "-t", "dash", check=False)

    def kill(self) -> None:
        self("kill-server", check=False)


@pytest.fixture()
def tmux(tmp_path: Path) -> Iterator[Tmux]:
    t = Tmux(tmp_path)
    try:
        yield t
    finally:
        t.kill()


def watch(tmux: Tmux, writer: subprocess.Popen[bytes] | None, exit_file: Path,
          until_s: float) -> tuple[list[int], int]:
    """Capture the screen until the writer is done (or the app exits); return the tick
    numbers seen in order (repeats removed) and how many distinct screens there were."""
    ticks: list[int] = []
    screens: set[str] = set()
    deadline = time.monotonic() + until_s
    while time.monotonic() < deadline:
        text = tmux.screen()
        screens.add(text)
        m = TICK_RE.search(text)
        if m and (not ticks or ticks[-1] != int(m.group(1))):
            ticks.append(int(m.group(1)))
        writer_done = writer is not None and writer.poll() is not None
        if exit_file.exists() or (writer_done and "ENDED" in text):
            break
        time.sleep(0.03)  # sampling period of the screen, not a wait for the logic
    return ticks, len(screens)


def wait_for_file(path: Path, within_s: float) -> str:
    deadline = time.monotonic() + within_s
    while time.monotonic() < deadline:
        if path.exists() and path.read_text().strip():
            return path.read_text().strip()
        time.sleep(0.05)
    raise AssertionError(f"{path} was not written within {within_s} s")


def follow_and_quit(tmux: Tmux, tmp_path: Path, out: Path,
                    writer_argv: list[str]) -> None:
    exit_file = tmp_path / "exit_code"
    # The dashboard starts first and waits for the database: it must cope with that.
    cmd = " ".join(shlex.quote(a) for a in [*maxwell_cmd(), "dashboard", str(out), "--follow"])
    tmux.start(cmd, exit_file)
    writer = subprocess.Popen(writer_argv, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
                              env={**os.environ, "PYTHONPATH": str(HERE)})
    try:
        ticks, n_screens = watch(tmux, writer, exit_file, until_s=120)
        assert writer.wait(timeout=60) == 0, writer.stderr.read() if writer.stderr else ""
    finally:
        if writer.poll() is None:
            writer.kill()
            writer.wait()
    assert not exit_file.exists(), f"the dashboard exited early:\n{tmux.screen()}"
    with RunReader(out) as reader:
        n_ticks = len(reader.ticks())
    assert n_ticks >= 4
    # Every tick from the first one seen to the last was on screen, in order.
    assert ticks, f"no status line seen:\n{tmux.screen()}"
    assert ticks == list(range(ticks[0], n_ticks + 1)), ticks
    assert ticks[0] <= 3  # the dashboard was following from the start of the run
    assert n_screens >= len(ticks)
    tmux("send-keys", "-t", "dash", "q")
    assert wait_for_file(exit_file, within_s=30) == "0"


def test_follows_a_live_fixture_writer_and_quits_on_q(tmux: Tmux, tmp_path: Path) -> None:
    out = tmp_path / "run"
    writer = [sys.executable, str(HERE / "dashboard_fixture.py"), str(out), "--live",
              "--tick-s", "0.5", "--ticks", "12"]
    follow_and_quit(tmux, tmp_path, out, writer)


@pytest.mark.skipif(importlib.util.find_spec("maxwell.run.loop") is None,
                    reason="maxwell.run.loop (needed by `maxwell run`) is not built yet")
def test_follows_a_live_maxwell_run_and_quits_on_q(tmux: Tmux, tmp_path: Path) -> None:
    out = tmp_path / "run"
    follow_and_quit(tmux, tmp_path, out, [*maxwell_cmd(), "run", "--duration", "8",
                                          "--out", str(out)])


def test_run_with_dashboard_closes_itself_when_the_run_ends(tmux: Tmux, tmp_path: Path) -> None:
    """The in-process API for `maxwell run --tui`: the run in a thread, the UI in front."""
    db = tmp_path / "run" / "run.db"
    result = tmp_path / "result"
    exit_file = tmp_path / "exit_code"
    script = (
        "from pathlib import Path; from dashboard_fixture import write_run; "
        "from maxwell.dashboard import run_with_dashboard; "
        f"db = Path({str(db)!r}); "
        "r = run_with_dashboard(lambda: write_run(db, n_ticks=6, tick_s=0.5, live=True), db,"
        " hold_s=0.5); "
        f"Path({str(result)!r}).write_text(str(r))"
    )
    tmux.start(f"{shlex.quote(sys.executable)} -c {shlex.quote(script)}", exit_file)
    ticks, _ = watch(tmux, None, exit_file, until_s=60)
    assert wait_for_file(exit_file, within_s=30) == "0", tmux.screen()
    assert result.read_text() == str(db)  # what the run returned came back
    assert ticks and ticks[-1] == 6, ticks
