"""The devserver: the stand-in supervisor the protocol docs tell newcomers to use."""

from __future__ import annotations

import subprocess
import sys
import time
from pathlib import Path

from maxwell.agent import Tick, VerdictMessage, connect


def test_devserver_serves_an_sdk_agent(tmp_path: Path) -> None:
    server = subprocess.Popen(
        [sys.executable, "-m", "maxwell.agents.devserver", "--dir", str(tmp_path),
         "--agent", "me", "--tick-s", "0.1", "--resieve-p", "1"],
        stdout=subprocess.PIPE, text=True)
    try:
        assert server.stdout is not None
        line = server.stdout.readline()
        assert line.startswith("# agent me: source ")
        env = dict(ln.removeprefix("export ").split("=", 1)
                   for ln in (tmp_path / "me.env").read_text().splitlines())
        with connect(env["MAXWELL_ENDPOINT"], env["MAXWELL_TOKEN"], "me") as agent:
            assert agent.welcome.bounty_per_unit is not None
            agent.bid(0.5, 1)
            agent.report_work("primes", 25, {"lo": 0, "hi": 100, "sample": [2, 97]})
            agent.report_work("primes", 26, {"lo": 100, "hi": 200, "sample": [101]})
            deadline = time.monotonic() + 60
            # the bid wins its slot from the first tick after the server read it
            while len(agent.verdicts) < 2 or agent.last_tick is None or not agent.last_tick.slots:
                assert time.monotonic() < deadline
                agent.receive(1.0)
            ok, lie = agent.verdicts
            assert isinstance(ok, VerdictMessage) and ok.accepted and ok.units == 25
            assert lie.fraud and not lie.accepted
            assert isinstance(agent.last_tick, Tick) and agent.last_tick.slots == 1
    finally:
        server.terminate()
        server.wait(timeout=10)
