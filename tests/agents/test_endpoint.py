"""The Endpoint over real Unix sockets: protocol, strikes, bans, back-pressure."""

from __future__ import annotations

import json
import socket
from pathlib import Path
from typing import Any

import pytest

from maxwell.agents.endpoint import Endpoint
from maxwell.agents.protocol import Bid, Gone, Hello, Inbound, Strike, WorkClaim


class Client:
    """A hand-driven agent: send lines, then let the endpoint poll, then read replies."""

    def __init__(self, ep: Endpoint) -> None:
        self.ep = ep
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self.sock.connect(str(ep.path))
        self.sock.settimeout(2.0)
        self.buf = b""

    def send(self, *lines: bytes | dict[str, Any]) -> list[Inbound]:
        for line in lines:
            data = line if isinstance(line, bytes) else json.dumps(line).encode() + b"\n"
            self.sock.sendall(data)
        return self.ep.poll()

    def replies(self, n: int = 1) -> list[dict[str, Any]]:
        while self.buf.count(b"\n") < n:
            chunk = self.sock.recv(65536)
            if not chunk:
                break
            self.buf += chunk
        lines = self.buf.split(b"\n")
        out, self.buf = lines[:n], b"\n".join(lines[n:])
        return [json.loads(x) for x in out if x]

    def hung_up(self) -> bool:
        try:
            while True:
                chunk = self.sock.recv(65536)
                if not chunk:
                    return True
                self.buf += chunk
        except (ConnectionResetError, BrokenPipeError):
            return True
        except TimeoutError:
            return False


@pytest.fixture
def ep(tmp_path: Path) -> Any:
    e = Endpoint(
        tmp_path,
        max_strikes=3,
        max_line_bytes=1024,
        hello_deadline_polls=3,
        welcome_extra={"bounty_per_unit": 0.25, "tick_s": 1.0},
    )
    yield e
    e.close()


def hello(token: str, **extra: Any) -> dict[str, Any]:
    return {"type": "hello", "token": token, "protocol": 1, **extra}


def test_full_conversation(ep: Endpoint) -> None:
    env = ep.register("alice")
    assert env["MAXWELL_ENDPOINT"] == str(ep.path) and env["MAXWELL_AGENT"] == "alice"
    c = Client(ep)
    assert c.send(hello(env["MAXWELL_TOKEN"], name="alice")) == [Hello("alice")]
    (welcome,) = c.replies()
    assert welcome["type"] == "welcome" and welcome["agent"] == "alice"
    assert welcome["bounty_per_unit"] == 0.25 and welcome["protocol"] == 1
    recs = c.send(
        {"type": "bid", "price": 0.5, "slots": 2},
        {
            "type": "work",
            "kind": "primes",
            "units": 4,
            "id": "c1",
            "evidence": {"lo": 0, "hi": 10, "sample": [2, 7]},
        },
    )
    assert recs[0] == Bid("alice", 0.5, 2)
    assert isinstance(recs[1], WorkClaim) and recs[1].claim_id == "c1" and recs[1].units == 4
    ep.send_verdict("alice", True, 4, "ok")
    ep.send_tick("alice", 1.0, 0.3, 99.5, 2)
    verdict, tick = c.replies(2)
    assert verdict == {
        "type": "verdict",
        "accepted": True,
        "units": 4,
        "reason": "ok",
        "fraud": False,
        "id": "c1",
    }
    assert tick == {"type": "tick", "t": 1.0, "price": 0.3, "balance": 99.5, "slots": 2}
    c.sock.close()
    assert ep.poll() == [Gone("alice")]
    assert not ep.connected("alice")


def test_bids_within_a_poll_are_coalesced(ep: Endpoint) -> None:
    env = ep.register("a")
    c = Client(ep)
    c.send(hello(env["MAXWELL_TOKEN"]))
    recs = c.send(*({"type": "bid", "price": float(i)} for i in range(10)))
    assert recs == [Bid("a", 9.0, 1)]


def test_wrong_token_strikes_then_closes(ep: Endpoint) -> None:
    ep.register("a")
    c = Client(ep)
    r1 = c.send(hello("0" * 32))
    assert len(r1) == 1 and isinstance(r1[0], Strike) and r1[0].agent is None
    assert not r1[0].closed and "unknown token" in r1[0].reason
    (err,) = c.replies()
    assert err["type"] == "error" and err["strikes"] == 1 and not err["closing"]
    c.send(b"not json\n")
    r3 = c.send({"type": "bid", "price": 1})
    assert isinstance(r3[0], Strike) and r3[0].closed
    assert c.hung_up()


def test_agent_banned_after_strikes_cannot_reconnect(ep: Endpoint) -> None:
    env = ep.register("bad")
    c = Client(ep)
    c.send(hello(env["MAXWELL_TOKEN"]))
    recs = c.send(b"{}\n", b'{"type":"dance"}\n', b"\xff\n")
    strikes = [r for r in recs if isinstance(r, Strike)]
    assert [s.agent for s in strikes] == ["bad"] * 3 and strikes[-1].closed
    assert Gone("bad") in recs and ep.strikes("bad") == 3
    assert c.hung_up()
    c2 = Client(ep)
    assert c2.send(hello(env["MAXWELL_TOKEN"])) == []  # refused, not another Hello
    (err,) = c2.replies()
    assert err["closing"] and "rest of the run" in err["reason"]
    assert c2.hung_up()


def test_strikes_persist_across_reconnects(ep: Endpoint) -> None:
    env = ep.register("a")
    for _ in range(2):
        c = Client(ep)
        c.send(hello(env["MAXWELL_TOKEN"]), b"oops\n")
        c.sock.close()
        ep.poll()
    assert ep.strikes("a") == 2


def test_oversize_line_is_one_strike_and_the_stream_recovers(ep: Endpoint) -> None:
    env = ep.register("a")
    c = Client(ep)
    c.send(hello(env["MAXWELL_TOKEN"]))
    c.sock.sendall(b"x" * 5000)  # no newline yet: the endpoint must not buffer it all
    recs = ep.poll()
    assert [type(r) for r in recs] == [Strike] and "longer than 1024" in recs[0].reason  # type: ignore[union-attr]
    recs = c.send(b"y" * 3000 + b"\n", {"type": "bid", "price": 1.0})
    assert recs == [Bid("a", 1.0, 1)]


def test_blank_lines_are_ignored(ep: Endpoint) -> None:
    env = ep.register("a")
    c = Client(ep)
    assert c.send(b"\n\r\n  \n", hello(env["MAXWELL_TOKEN"])) == [Hello("a")]


def test_silent_connection_is_closed_after_the_hello_deadline(ep: Endpoint) -> None:
    c = Client(ep)
    recs: list[Inbound] = []
    for _ in range(5):
        recs += ep.poll()
    assert len(recs) == 1 and isinstance(recs[0], Strike) and recs[0].closed
    assert c.hung_up()


def test_new_connection_supersedes_old(ep: Endpoint) -> None:
    env = ep.register("a")
    old = Client(ep)
    old.send(hello(env["MAXWELL_TOKEN"]))
    new = Client(ep)
    assert new.send(hello(env["MAXWELL_TOKEN"])) == [Hello("a")]
    ep.poll()
    assert old.hung_up()
    ep.send_tick("a", 1.0, 0.1, 5.0, 1)
    new.replies()  # welcome
    assert new.replies()[0]["type"] == "tick"


def test_claims_over_the_limit_get_an_error_not_a_strike(tmp_path: Path) -> None:
    with Endpoint(tmp_path, max_claims_per_poll=2) as ep:
        env = ep.register("a")
        c = Client(ep)
        c.send(hello(env["MAXWELL_TOKEN"]))
        recs = c.send(*({"type": "work", "kind": "hash", "units": 1} for _ in range(5)))
        assert [type(r) for r in recs] == [WorkClaim, WorkClaim]
        assert ep.strikes("a") == 0 and ep.stats["claims_over_limit"] == 3


def test_agent_that_never_reads_cannot_block_the_supervisor(ep: Endpoint) -> None:
    env = ep.register("deaf")
    c = Client(ep)
    c.send(hello(env["MAXWELL_TOKEN"]))
    for i in range(20_000):  # far more than socket buffers hold; must never block
        ep.send_tick("deaf", float(i), 0.1, 1.0, 1)
    assert ep.stats["dropped_out"] > 0
    assert ep.poll() == []


def test_messages_to_unknown_or_absent_agents_are_ignored(ep: Endpoint) -> None:
    env = ep.register("a")
    ep.send_tick("a", 0.0, 0.1, 1.0, 1)  # registered but not connected yet: dropped
    ep.send_tick("nobody", 0.0, 0.1, 1.0, 1)
    ep.send_verdict("nobody", True, 1, "x")
    c = Client(ep)
    assert c.send(hello(env["MAXWELL_TOKEN"])) == [Hello("a")]
    assert c.replies(1)[0]["type"] == "welcome"
    ep.send_tick("a", float("nan"), 0.1, 1.0, 1)  # not a number on the wire: dropped
    ep.send_tick("nobody", 2.0, 0.1, 1.0, 1)
    ep.send_tick("a", 3.0, 0.25, 1.0, 1)
    # The only message after the welcome is the last, valid tick: nothing was queued
    # for "a" before it connected, nor for anyone else.
    tick = c.replies(1)[0]
    assert tick == {"type": "tick", "t": 3.0, "price": 0.25, "balance": 1.0, "slots": 1}
    c.sock.settimeout(0.2)
    assert not c.hung_up() and c.buf == b""


def test_connection_flood_evicts_anonymous_sockets(tmp_path: Path) -> None:
    with Endpoint(tmp_path, max_connections=4) as ep:
        env = ep.register("a")
        flood = [Client(ep) for _ in range(10)]
        ep.poll()
        c = Client(ep)
        assert c.send(hello(env["MAXWELL_TOKEN"])) == [Hello("a")]
        assert ep.stats["evicted"] >= 6
        for f in flood:
            f.sock.close()


def test_long_directory_uses_a_short_socket_and_a_link(tmp_path: Path) -> None:
    deep = tmp_path / ("d" * 60) / ("e" * 60)
    ep = Endpoint(deep)
    try:
        env = ep.register("a")
        assert ep.link == deep / "agents.sock" and ep.link.is_symlink()
        assert len(env["MAXWELL_ENDPOINT"]) < 100
        c = socket.socket(socket.AF_UNIX)
        c.connect(env["MAXWELL_ENDPOINT"])
        c.sendall(json.dumps(hello(env["MAXWELL_TOKEN"])).encode() + b"\n")
        c.settimeout(2)
        assert ep.poll() == [Hello("a")]
        c.close()
    finally:
        ep.close()
    assert not (deep / "agents.sock").exists() and not ep.path.exists()


def test_register_rejects_duplicates_and_bad_names(ep: Endpoint) -> None:
    ep.register("a")
    with pytest.raises(ValueError, match="already"):
        ep.register("a")
    with pytest.raises(ValueError):
        ep.register("")


def test_anonymous_strike_records_are_capped_per_poll(tmp_path: Path) -> None:
    with Endpoint(tmp_path, max_strikes=10**6, max_anonymous_strike_records=4) as ep:
        c = Client(ep)
        recs = c.send(b"junk\n" * 50)
        strikes = [r for r in recs if isinstance(r, Strike)]
        assert len(strikes) == 5 and "46 more strikes" in strikes[-1].reason
        assert ep.stats["strikes"] == 50
