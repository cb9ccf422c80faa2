"""Framing and parsing of protocol lines."""

from __future__ import annotations

import contextlib
import json

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from maxwell.agents.protocol import (
    Bid,
    ProtocolError,
    Tick,
    VerdictMessage,
    Welcome,
    decode,
    encode,
    parse_bid,
    parse_supervisor,
    parse_work,
)


def test_encode_is_one_line() -> None:
    line = encode({"type": "bid", "price": 1.5, "slots": 2, "note": "a\nb"})
    assert line.endswith(b"\n") and line.count(b"\n") == 1
    assert decode(line) == {"type": "bid", "price": 1.5, "slots": 2, "note": "a\nb"}


@pytest.mark.parametrize("raw", [
    b"\xff\xfe", b"{", b"[]", b"42", b'{"price": 1}', b'{"type": 3}', b"NaN",
    b'{"type":"bid","price":NaN}', b"[" * 100_000, b'{"type":"bid","price":1' + b"9" * 5000 + b"}",
])
def test_decode_rejects_with_protocol_error(raw: bytes) -> None:
    with pytest.raises(ProtocolError):
        decode(raw)


@settings(max_examples=500, deadline=None)
@given(st.binary(max_size=200))
def test_decode_never_raises_anything_else(raw: bytes) -> None:
    with contextlib.suppress(ProtocolError):
        decode(raw)


def test_bid_validation() -> None:
    assert parse_bid("a", {"type": "bid", "price": 2}) == Bid("a", 2.0, 1)
    for bad in ({"price": -1}, {"price": 1e300}, {"price": True}, {"price": "1"},
                {"price": 1, "slots": -1}, {"price": 1, "slots": 10**6},
                {"price": 1, "slots": 1.0}):
        with pytest.raises(ProtocolError):
            parse_bid("a", bad)


def test_work_validation() -> None:
    c = parse_work("a", {"kind": "primes", "units": 3, "evidence": {"lo": 0}, "id": 7})
    assert (c.kind, c.units, c.claim_id) == ("primes", 3, 7)
    for bad in ({"kind": "", "units": 1}, {"kind": "x" * 33, "units": 1},
                {"kind": "p", "units": -1}, {"kind": "p", "units": 1, "evidence": []},
                {"kind": "p", "units": 1, "id": [1]}, {"kind": "p", "units": 1, "id": "x" * 65}):
        with pytest.raises(ProtocolError):
            parse_work("a", bad)


def test_supervisor_messages() -> None:
    w = parse_supervisor(json.loads('{"type":"welcome","agent":"s","protocol":1,'
                                    '"bounty_per_unit":0.5,"tick_s":1}'))
    assert isinstance(w, Welcome) and w.bounty_per_unit == 0.5 and w.tick_s == 1.0
    assert parse_supervisor({"type": "tick", "t": 1, "price": 0.2, "balance": 3, "slots": 1}) \
        == Tick(1.0, 0.2, 3.0, 1)
    v = parse_supervisor({"type": "verdict", "accepted": True, "units": 4, "reason": "ok", "id": 9})
    assert isinstance(v, VerdictMessage) and v.claim_id == 9
    assert parse_supervisor({"type": "future-thing"}) is None
