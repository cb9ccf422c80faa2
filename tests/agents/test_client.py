"""The agent SDK (maxwell.agent) against a real Endpoint and a scripted server."""

from __future__ import annotations

import json
import socket
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest

from maxwell.agent import NotUnderMaxwell, Rejected, Tick, Welcome, connect
from maxwell.agents.endpoint import Endpoint
from maxwell.agents.protocol import WorkClaim


@pytest.fixture
def polled(tmp_path: Path) -> Iterator[Endpoint]:
    """An Endpoint polled by a background thread (connect() blocks until the welcome)."""
    ep = Endpoint(tmp_path, welcome_extra={"bounty_per_unit": 2.0, "tick_s": 0.5})
    stop = threading.Event()
    ep.inbox = []  # type: ignore[attr-defined]

    def run() -> None:
        while not stop.is_set():
            ep.inbox += ep.poll()  # type: ignore[attr-defined]
            stop.wait(0.005)

    t = threading.Thread(target=run, daemon=True)
    t.start()
    yield ep
    stop.set()
    t.join()
    ep.close()


def test_connect_needs_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("MAXWELL_ENDPOINT", raising=False)
    monkeypatch.delenv("MAXWELL_TOKEN", raising=False)
    with pytest.raises(NotUnderMaxwell):
        connect()


def test_connect_from_env_and_report_primes(polled: Endpoint,
                                            monkeypatch: pytest.MonkeyPatch) -> None:
    for k, v in polled.register("sdk").items():
        monkeypatch.setenv(k, v)
    with connect() as agent:
        assert isinstance(agent.welcome, Welcome) and agent.name == "sdk"
        assert agent.welcome.bounty_per_unit == 2.0 and agent.welcome.tick_s == 0.5
        cid = agent.report_primes(0, 1000, list(range(1000)), sample_size=5)
    claim = next(r for r in _wait(polled, WorkClaim))
    assert claim.claim_id == cid and claim.units == 1000
    assert claim.evidence["sample"] == [0, 250, 500, 749, 999]


def test_wrong_token_is_rejected(polled: Endpoint) -> None:
    polled.register("x")
    with pytest.raises(Rejected, match="unknown token"):
        connect(polled.path, "f" * 32)


def test_messages_read_with_the_welcome_are_not_lost(tmp_path: Path) -> None:
    path = tmp_path / "s.sock"
    srv = socket.socket(socket.AF_UNIX)
    srv.bind(str(path))
    srv.listen(1)

    def serve() -> None:
        conn, _ = srv.accept()
        conn.recv(4096)  # hello
        conn.sendall(b'{"type":"welcome","agent":"a","protocol":1}\n'
                     b'{"type":"tick","t":1,"price":0.5,"balance":9,"slots":2}\n')
        conn.recv(4096)  # wait for the client to hang up
        conn.close()

    t = threading.Thread(target=serve, daemon=True)
    t.start()
    with connect(path, "t") as agent:
        assert agent.buffered
        assert agent.receive(0.0) == [Tick(1.0, 0.5, 9.0, 2)]
        assert not agent.buffered
    t.join(5)
    srv.close()


def test_oversize_message_refused_locally(polled: Endpoint) -> None:
    env = polled.register("big")
    with connect(env["MAXWELL_ENDPOINT"], env["MAXWELL_TOKEN"]) as agent, \
            pytest.raises(ValueError, match="line limit"):
        agent.report_work("blob", 1, {"x": "y" * 70_000})


def _wait(ep: Endpoint, kind: type) -> Iterator[object]:
    import time

    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        found = [r for r in ep.inbox if isinstance(r, kind)]  # type: ignore[attr-defined]
        if found:
            yield from found
            return
        time.sleep(0.01)
    raise AssertionError(f"no {kind.__name__} arrived; got {json.dumps(str(ep.inbox))}")  # type: ignore[attr-defined]
