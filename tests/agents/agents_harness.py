"""Test harness for the agents tests: a real Endpoint driven like the supervisor drives it."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from collections.abc import Callable, Sequence
from pathlib import Path

import numpy as np

from maxwell.agents.endpoint import Endpoint
from maxwell.agents.protocol import Inbound, Verdict, WorkClaim
from maxwell.agents.verify import Verifier

REPO = Path(__file__).resolve().parents[2]
BOUNTY = 1e-3


class Harness:
    """Endpoint + Verifier + agent processes; `pump()` plays the supervisor's tick loop."""

    def __init__(
        self,
        tmp_path: Path,
        resieve_probability: float = 1.0,
        seed: int = 0,
        tick_s: float = 0.1,
        **endpoint_kwargs: object,
    ) -> None:
        self.tmp_path = tmp_path
        self.tick_s = tick_s
        self.ep = Endpoint(
            tmp_path / "run",
            welcome_extra={"bounty_per_unit": BOUNTY, "tick_s": tick_s},
            **endpoint_kwargs,
        )  # type: ignore[arg-type]
        self.verifier = Verifier(resieve_probability, np.random.default_rng(seed))
        self.envs: dict[str, dict[str, str]] = {}
        self.procs: dict[str, subprocess.Popen[bytes]] = {}
        self.records: list[Inbound] = []
        self.verdicts: list[tuple[WorkClaim, Verdict]] = []
        self.balance: dict[str, float] = {}
        self._t0 = time.monotonic()
        self._last_tick = -1.0

    def register(self, name: str) -> dict[str, str]:
        env = self.ep.register(name)
        self.envs[name] = env
        self.balance[name] = 100.0
        return env

    def spawn(
        self, name: str, argv: Sequence[str], register: bool = True
    ) -> subprocess.Popen[bytes]:
        env = dict(os.environ)
        if register:
            env.update(self.register(name))
        log = open(self.tmp_path / f"{name}.log", "wb")  # noqa: SIM115 - closed with the process
        proc = subprocess.Popen(
            list(argv),
            env=env,
            stdout=log,
            stderr=subprocess.STDOUT,
            cwd=REPO,
            start_new_session=True,
        )
        self.procs[name] = proc
        return proc

    def log(self, name: str) -> str:
        return (self.tmp_path / f"{name}.log").read_text(errors="replace")

    def step(self) -> list[Inbound]:
        recs = self.ep.poll()
        for r in recs:
            if isinstance(r, WorkClaim):
                v = self.verifier.verify(r)
                self.verdicts.append((r, v))
                self.ep.send_verdict(r.agent, v.accepted, v.units, v.reason, fraud=v.fraud)
        self.records += recs
        now = time.monotonic() - self._t0
        if now - self._last_tick >= self.tick_s:
            self._last_tick = now
            for name in self.envs:
                self.ep.send_tick(name, now, 0.1, self.balance[name], 1)
        return recs

    def pump(self, until: Callable[[], bool], timeout_s: float = 30.0) -> None:
        """Run the tick loop until `until()` holds; fail (with agent logs) after timeout_s."""
        deadline = time.monotonic() + timeout_s
        while not until():
            if time.monotonic() > deadline:
                logs = {n: self.log(n)[-2000:] for n in self.procs}
                raise AssertionError(f"condition not reached in {timeout_s} s; logs: {logs}")
            self.step()
            time.sleep(0.01)

    def accepted_units(self, agent: str) -> int:
        return sum(v.units for c, v in self.verdicts if c.agent == agent and v.accepted)

    def close(self) -> None:
        for proc in self.procs.values():
            if proc.poll() is None:
                proc.kill()
            proc.wait(timeout=10)
        self.ep.close()


PYTHON = sys.executable
