"""The agent SDK's client: the agent side of the protocol (connect, bid, report work,
follow the ticks); `endpoint` is the supervisor's side.

Public as `maxwell.agent`. A whole agent::

    from maxwell.agent import connect

    with connect() as agent:                  # MAXWELL_ENDPOINT / MAXWELL_TOKEN from the env
        agent.bid(price=0.5, slots=1)          # credits per core-second, slot-units
        for tick in agent.ticks():             # blocks until the next tick; ends on hang-up
            agent.report_primes(lo, hi, primes) # or agent.report_work(kind, units, evidence)

Verdicts and errors that arrive while iterating are kept in `agent.verdicts` and
`agent.errors` (bounded deques) or passed to `on_verdict` / `on_error`. For event
loops, `fileno()` and `receive(timeout_s)` give non-blocking access to every
message. Touches only its own socket; standard library only (plus numpy for
`report_primes` when given an array).
"""

from __future__ import annotations

import contextlib
import itertools
import os
import select
import socket
from collections import deque
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from typing import Any

from maxwell.agents.protocol import (
    DEFAULT_MAX_LINE_BYTES,
    PROTOCOL_VERSION,
    ErrorMessage,
    ProtocolError,
    SupervisorMessage,
    Tick,
    VerdictMessage,
    Welcome,
    decode,
    encode,
    parse_supervisor,
)

DEFAULT_SAMPLE_SIZE = 8
_MAX_INBUF = 1 << 22  # a supervisor line longer than this is not ours to parse


class NotUnderMaxwell(RuntimeError):
    """MAXWELL_ENDPOINT / MAXWELL_TOKEN are missing: this process was not started by Maxwell."""


class Rejected(ConnectionError):
    """The supervisor refused the hello (wrong token, banned, unsupported version)."""


class Agent:
    """One authenticated connection to the supervisor. Make it with `connect()`."""

    def __init__(self, sock: socket.socket, welcome: Welcome, leftover: bytes = b"") -> None:
        self._sock = sock
        self.welcome = welcome
        self.name = welcome.agent
        self._inbuf = bytearray(leftover)
        self._ids = itertools.count(1)
        self.closed = False
        self.verdicts: deque[VerdictMessage] = deque(maxlen=1024)
        self.errors: deque[ErrorMessage] = deque(maxlen=1024)
        self.on_verdict: Callable[[VerdictMessage], None] | None = None
        self.on_error: Callable[[ErrorMessage], None] | None = None
        self.last_tick: Tick | None = None

    # ---- sending --------------------------------------------------------------------

    def bid(self, price: float, slots: int = 1) -> None:
        """Standing bid: `price` credits per core-second for up to `slots` slot-units."""
        self._send({"type": "bid", "price": float(price), "slots": int(slots)})

    def report_work(self, kind: str, units: int, evidence: Mapping[str, Any] | None = None,
                    claim_id: str | int | None = None) -> str | int:
        """Claim finished work; returns the claim id its verdict will carry."""
        cid: str | int = claim_id if claim_id is not None else next(self._ids)
        self._send({"type": "work", "kind": kind, "units": int(units),
                    "evidence": dict(evidence or {}), "id": cid})
        return cid

    def report_primes(self, lo: int, hi: int, primes: Sequence[int] | Any,
                      sample_size: int = DEFAULT_SAMPLE_SIZE,
                      claim_id: str | int | None = None) -> str | int:
        """Claim the primes of [lo, hi) (all of them, ascending) with an evenly spread sample."""
        found = [int(p) for p in primes]
        n = len(found)
        if n <= sample_size:
            sample = found
        else:
            step = (n - 1) / max(sample_size - 1, 1)
            sample = sorted({found[round(i * step)] for i in range(sample_size)})
        return self.report_work("primes", n, {"lo": int(lo), "hi": int(hi), "sample": sample},
                                claim_id)

    # ---- receiving ------------------------------------------------------------------

    def fileno(self) -> int:
        return self._sock.fileno()

    @property
    def buffered(self) -> bool:
        """Complete messages already read and waiting: `receive(0)` before select()ing again."""
        return b"\n" in self._inbuf

    def receive(self, timeout_s: float | None = 0.0) -> list[SupervisorMessage]:
        """Messages available within `timeout_s` (None: wait for at least one).

        Raises ConnectionResetError once the supervisor has hung up and nothing is left.
        """
        msgs = self._drain_lines()
        if msgs:
            return msgs
        if self.closed:
            raise ConnectionResetError("the supervisor closed the connection")
        while True:
            ready, _, _ = select.select([self._sock], [], [], timeout_s)
            if not ready:
                return []
            try:
                chunk = self._sock.recv(65536)
            except (BlockingIOError, InterruptedError):
                continue
            except OSError:
                chunk = b""
            if not chunk:
                self.closed = True
                msgs = self._drain_lines(final=True)
                if msgs:
                    return msgs
                raise ConnectionResetError("the supervisor closed the connection")
            self._inbuf += chunk
            if len(self._inbuf) > _MAX_INBUF:
                self._inbuf.clear()
            msgs = self._drain_lines()
            if msgs or timeout_s == 0.0:
                return msgs

    def ticks(self) -> Iterator[Tick]:
        """Each tick as it arrives; verdicts and errors are recorded on the way. Ends on hang-up."""
        while True:
            try:
                msgs = self.receive(None)
            except ConnectionResetError:
                return
            for m in msgs:
                if isinstance(m, Tick):
                    yield m

    def close(self) -> None:
        self.closed = True
        with contextlib.suppress(OSError):
            self._sock.close()

    def __enter__(self) -> Agent:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # ---- internals ------------------------------------------------------------------

    def _send(self, msg: Mapping[str, Any]) -> None:
        data = encode(msg)
        limit = self.welcome.info.get("max_line_bytes", DEFAULT_MAX_LINE_BYTES)
        if isinstance(limit, int) and len(data) > limit:
            raise ValueError(f"message of {len(data)} bytes exceeds the line limit {limit}")
        self._sock.sendall(data)

    def _drain_lines(self, final: bool = False) -> list[SupervisorMessage]:
        out: list[SupervisorMessage] = []
        for raw in _split_lines(self._inbuf, final):
            try:
                msg = parse_supervisor(decode(raw))
            except (ProtocolError, ValueError, TypeError):
                continue
            if msg is None:
                continue
            if isinstance(msg, VerdictMessage):
                self.verdicts.append(msg)
                if self.on_verdict is not None:
                    self.on_verdict(msg)
            elif isinstance(msg, ErrorMessage):
                self.errors.append(msg)
                if self.on_error is not None:
                    self.on_error(msg)
            elif isinstance(msg, Tick):
                self.last_tick = msg
            out.append(msg)
        return out


def _split_lines(buf: bytearray, final: bool) -> Iterable[bytes]:
    lines = []
    while True:
        nl = buf.find(b"\n")
        if nl < 0:
            break
        lines.append(bytes(buf[:nl]))
        del buf[: nl + 1]
    if final and buf.strip():
        lines.append(bytes(buf))
        buf.clear()
    return [ln for ln in lines if ln.strip()]


def connect(
    endpoint: str | os.PathLike[str] | None = None,
    token: str | None = None,
    name: str | None = None,
    timeout_s: float = 10.0,
) -> Agent:
    """Connect and say hello; arguments default to MAXWELL_ENDPOINT, MAXWELL_TOKEN, MAXWELL_AGENT.

    Raises NotUnderMaxwell without an endpoint/token, Rejected if the supervisor
    refuses us, OSError if the socket cannot be reached.
    """
    endpoint = endpoint if endpoint is not None else os.environ.get("MAXWELL_ENDPOINT")
    token = token if token is not None else os.environ.get("MAXWELL_TOKEN")
    name = name if name is not None else os.environ.get("MAXWELL_AGENT")
    if not endpoint or not token:
        raise NotUnderMaxwell("MAXWELL_ENDPOINT and MAXWELL_TOKEN are not set: "
                              "run this program as an agent of `maxwell run`")
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    sock.settimeout(timeout_s)
    try:
        sock.connect(os.fspath(endpoint))
        hello: dict[str, Any] = {"type": "hello", "token": token, "protocol": PROTOCOL_VERSION}
        if name:
            hello["name"] = name
        sock.sendall(encode(hello))
        buf = bytearray()
        while b"\n" not in buf:
            chunk = sock.recv(65536)
            if not chunk:
                raise Rejected("the supervisor hung up during hello")
            buf += chunk
        nl = buf.find(b"\n")
        first = parse_supervisor(decode(bytes(buf[:nl])))
    except (OSError, ProtocolError):
        sock.close()
        raise
    if isinstance(first, ErrorMessage):
        sock.close()
        raise Rejected(first.reason)
    if not isinstance(first, Welcome):
        sock.close()
        raise Rejected(f"expected a welcome, got {first!r}")
    sock.settimeout(None)
    return Agent(sock, first, bytes(buf[nl + 1 :]))
