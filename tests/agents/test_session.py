"""The protocol's state machine on plain bytes: no socket, no process."""

from __future__ import annotations

import json

from maxwell.agents.protocol import Bid, Hello, Strike, WorkClaim
from maxwell.agents.session import Peer, Sessions


def _lines(buf: bytearray) -> list[dict[str, object]]:
    out = [json.loads(x) for x in bytes(buf).splitlines() if x.strip()]
    buf.clear()
    return out


def _say(ss: Sessions, s: object, *msgs: dict[str, object], eof: bool = False) -> list[object]:
    out: list[object] = []
    ss.feed(s, b"".join(json.dumps(m).encode() + b"\n" for m in msgs))  # type: ignore[arg-type]
    ss.begin_poll()
    ss.handle(s, out, eof, 256)  # type: ignore[arg-type]
    return ss.end_poll(out)  # type: ignore[arg-type]


def test_hello_then_bid_and_work() -> None:
    ss = Sessions(welcome_extra={"tick_s": 1.0})
    token = ss.register("a")
    s = ss.open(Peer(123, 1000))
    out = _say(ss, s, {"type": "hello", "token": token},
               {"type": "bid", "price": 2.0, "slots": 1},
               {"type": "bid", "price": 3.0, "slots": 2},
               {"type": "work", "kind": "primes", "units": 5, "evidence": {}})
    assert out[0] == Hello("a")
    assert [r for r in out if isinstance(r, Bid)] == [Bid("a", 3.0, 2)]  # the last bid stands
    assert any(isinstance(r, WorkClaim) for r in out)
    welcome = _lines(s.outbuf)[0]
    assert welcome["type"] == "welcome" and welcome["agent"] == "a" and welcome["tick_s"] == 1.0
    assert ss.live["a"] is s


def test_a_wrong_token_is_a_strike_and_never_authenticates() -> None:
    ss = Sessions(max_strikes=2)
    ss.register("a")
    s = ss.open(Peer(7, 0))
    out = _say(ss, s, {"type": "hello", "token": "nope"})
    assert isinstance(out[0], Strike) and out[0].agent is None and "pid 7" in out[0].reason
    assert s.agent is None and not s.closing
    _say(ss, s, {"type": "hello", "token": "nope"})
    assert s.closing and _lines(s.outbuf)[-1]["closing"] is True


def test_a_jailed_agents_token_from_another_uid_is_refused() -> None:
    ss = Sessions()
    token = ss.register("j", uid=2001)
    s = ss.open(Peer(9, 1000))
    out = _say(ss, s, {"type": "hello", "token": token})
    assert isinstance(out[0], Strike) and "uid 1000" in out[0].reason
    ok = ss.open(Peer(10, 2001))
    assert _say(ss, ok, {"type": "hello", "token": token}) == [Hello("j")]


def test_an_oversize_line_is_skipped_to_its_end() -> None:
    ss = Sessions(max_line_bytes=256)
    token = ss.register("a")
    s = ss.open(Peer())
    _say(ss, s, {"type": "hello", "token": token})
    _lines(s.outbuf)
    out: list[object] = []
    ss.feed(s, b"x" * 300)
    ss.handle(s, out, False, 256)
    ss.feed(s, b"yyy\n" + json.dumps({"type": "bid", "price": 1, "slots": 1}).encode() + b"\n")
    ss.handle(s, out, False, 256)
    assert isinstance(out[0], Strike) and "longer than 256" in out[0].reason
    assert out[1] == Bid("a", 1.0, 1)


def test_ticks_and_verdicts_queue_only_for_live_agents() -> None:
    ss = Sessions()
    token = ss.register("a")
    assert ss.tick("a", 1.0, 0.5, 10.0, 1) is None  # not connected: nothing queued
    s = ss.open(Peer())
    _say(ss, s, {"type": "hello", "token": token})
    _lines(s.outbuf)
    assert ss.tick("a", 1.0, 0.5, 10.0, 1) is s
    assert ss.tick("a", float("nan"), 0.5, 10.0, 1) is None  # never a non-finite number
    ss.verdict("a", True, 5, "ok", claim_id=3)
    msgs = _lines(s.outbuf)
    assert [m["type"] for m in msgs] == ["tick", "verdict"] and msgs[1]["id"] == 3


def test_a_silent_connection_is_closed_after_the_hello_deadline() -> None:
    ss = Sessions(hello_deadline_polls=3)
    s = ss.open(Peer())
    closes = []
    for _ in range(4):
        out: list[object] = []
        close, _ = ss.handle(s, out, False, 256)
        closes.append(close)
    assert closes == [False, False, False, True]
