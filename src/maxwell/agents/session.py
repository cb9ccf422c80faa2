"""The supervisor's side of the agent protocol as a state machine, without sockets.

`Sessions` holds everything the protocol decides: the agents' tokens (and, for
jailed agents, the one uid each may connect as), each connection's buffers and
whether it has proved who it is, strikes and bans, the order of unanswered work
claims, and the bounded outgoing queue. Bytes go in with `feed()`, complete
lines are handled by `parse()` into `Inbound` records and replies, and what is
to be sent waits in each session's `outbuf` for the socket pump
(`maxwell.agents.endpoint`) to write. Nothing here blocks, raises on agent
input or touches a file descriptor, so every protocol rule is testable with
plain bytes.
"""

from __future__ import annotations

import secrets
from collections import deque
from collections.abc import Mapping
from typing import Any, NamedTuple

from maxwell.agents.protocol import (
    DEFAULT_MAX_LINE_BYTES,
    PROTOCOL_VERSION,
    Bid,
    Gone,
    Hello,
    Inbound,
    ProtocolError,
    Strike,
    decode,
    encode,
    parse_bid,
    parse_work,
)

_MAX_NAME_CHARS = 64


class Peer(NamedTuple):
    """Who is at the other end, as the kernel recorded it at connect() (SO_PEERCRED)."""

    pid: int | None = None
    uid: int | None = None


class Session:
    """One connection's protocol state: buffers, the agent it proved to be, its strikes."""

    __slots__ = (
        "agent", "claims", "closing", "discarding", "inbuf", "outbuf", "peer", "polls",
        "strikes", "write_dead",
    )

    def __init__(self, peer: Peer) -> None:
        self.peer = peer
        self.inbuf = bytearray()
        self.outbuf = bytearray()
        self.agent: str | None = None
        self.strikes = 0  # before hello; after it, strikes are counted per agent
        self.discarding = False  # skipping the rest of an oversize line
        self.closing = False
        # The peer stopped reading (EPIPE): drop replies, but still read what it sent
        # before hanging up (its last work claims).
        self.write_dead = False
        self.polls = 0
        self.claims = 0  # work claims accepted in the current poll


class Sessions:
    """The protocol state of every agent and connection of one supervisor.

    Limits (see `Endpoint` for what each bounds): `max_line_bytes`, `max_strikes`,
    `max_claims_per_poll`, `out_buffer_bytes`, `hello_deadline_polls`,
    `max_anonymous_strike_records`; `welcome_extra` goes into every welcome.
    """

    def __init__(
        self,
        *,
        max_line_bytes: int = DEFAULT_MAX_LINE_BYTES,
        max_strikes: int = 5,
        welcome_extra: Mapping[str, object] | None = None,
        max_claims_per_poll: int = 64,
        out_buffer_bytes: int = 1 << 18,
        hello_deadline_polls: int = 200,
        max_anonymous_strike_records: int = 16,
    ) -> None:
        if max_line_bytes < 256:
            raise ValueError("max_line_bytes must be at least 256")
        if max_strikes < 1:
            raise ValueError("max_strikes must be at least 1")
        self.max_line_bytes = max_line_bytes
        self.max_strikes = max_strikes
        self.max_claims_per_poll = max_claims_per_poll
        self.out_buffer_bytes = out_buffer_bytes
        self.hello_deadline_polls = hello_deadline_polls
        self.max_anonymous_strike_records = max_anonymous_strike_records
        self._welcome_extra = dict(welcome_extra or {})
        encode(self._welcome_extra)  # fail now, on the supervisor's config, if not JSON-able
        self._tokens: dict[str, str] = {}  # token -> agent
        self._agents: dict[str, str] = {}  # agent -> token
        self._agent_extra: dict[str, dict[str, object]] = {}
        self._uids: dict[str, int] = {}  # agent -> the only uid its hello is accepted from
        self._strikes: dict[str, int] = {}
        self._banned: set[str] = set()
        self.live: dict[str, Session] = {}  # agent -> its authenticated session
        self._claim_ids: dict[str, deque[str | int | None]] = {}
        self._anon_strikes = 0  # this poll's strikes against unauthenticated sessions
        self._anon_suppressed = 0
        # Counters for the run record and the benchmarks; never used for decisions.
        self.stats: dict[str, int] = {
            "connections": 0, "refused": 0, "lines": 0, "bytes_in": 0, "strikes": 0,
            "dropped_out": 0, "claims_over_limit": 0, "evicted": 0,
            # Sessions closed because a newer connection said hello with their token:
            # what they had not yet parsed is dropped with them.
            "superseded": 0,
        }

    # ---- agents ---------------------------------------------------------------------

    def register(self, name: str, welcome_extra: Mapping[str, object] | None = None,
                 uid: int | None = None) -> str:
        """Create the agent's token (and, with `uid`, bind it to that peer uid)."""
        if not isinstance(name, str) or not 0 < len(name) <= _MAX_NAME_CHARS:
            raise ValueError(f"agent name must be 1..{_MAX_NAME_CHARS} characters: {name!r}")
        if name in self._agents:
            raise ValueError(f"agent {name!r} is already registered")
        extra = dict(welcome_extra or {})
        encode(extra)
        token = secrets.token_hex(16)
        self._tokens[token] = name
        self._agents[name] = token
        self._agent_extra[name] = extra
        if uid is not None:
            self._uids[name] = uid
        self._strikes[name] = 0
        self._claim_ids[name] = deque(maxlen=4 * self.max_claims_per_poll)
        return token

    def strikes(self, name: str) -> int:
        return self._strikes.get(name, 0)

    # ---- one poll -------------------------------------------------------------------

    def begin_poll(self) -> None:
        self._anon_strikes = self._anon_suppressed = 0

    def end_poll(self, out: list[Inbound]) -> list[Inbound]:
        """Summarize suppressed strikes; keep only the last bid of each agent."""
        if self._anon_suppressed:
            out.append(Strike(None, f"and {self._anon_suppressed} more strikes against "
                              "unauthenticated connections in this poll", False))
        return _coalesce_bids(out)

    def open(self, peer: Peer) -> Session:
        self.stats["connections"] += 1
        return Session(peer)

    def feed(self, s: Session, data: bytes) -> None:
        self.stats["bytes_in"] += len(data)
        s.inbuf += data

    def wants_input(self, s: Session) -> bool:
        """False while a backlog of complete lines waits (back-pressure on the reader)."""
        return len(s.inbuf) < 2 * self.max_line_bytes

    def handle(self, s: Session, out: list[Inbound], eof: bool, max_lines: int
               ) -> tuple[bool, int]:
        """One poll's work on a session after its bytes were fed: parse up to
        `max_lines` lines and enforce the hello deadline. Returns (close it now, lines)."""
        s.polls += 1
        s.claims = 0
        drained, nlines = self.parse(s, out, eof, max_lines)
        if s.agent is None and not s.closing and s.polls > self.hello_deadline_polls:
            self.strike(s, out, "no valid hello in time", force_close=True)
        return s.closing or (eof and drained), nlines  # at EOF, first finish its lines

    def parse(self, s: Session, out: list[Inbound], final: bool, max_lines: int
              ) -> tuple[bool, int]:
        """Handle up to max_lines complete lines; (none left, lines handled)."""
        buf = s.inbuf
        pos = 0
        lines = 0
        limit = self.max_line_bytes
        while lines < max_lines and not s.closing:
            nl = buf.find(b"\n", pos)
            if s.discarding:
                if nl < 0:
                    pos = len(buf)
                    break
                s.discarding = False
                pos = nl + 1
                continue
            if nl < 0:
                if len(buf) - pos >= limit:
                    self.stats["lines"] += 1
                    lines += 1
                    self.strike(s, out, f"line longer than {limit} bytes")
                    s.discarding = True
                    pos = len(buf)
                elif final and pos < len(buf):
                    # The peer hung up after an unterminated last line: take it.
                    line = bytes(buf[pos:])
                    pos = len(buf)
                    lines += 1
                    self._line(s, line, out)
                break
            line = bytes(buf[pos:nl])
            pos = nl + 1
            lines += 1
            if len(line) + 1 > limit:
                self.stats["lines"] += 1
                self.strike(s, out, f"line longer than {limit} bytes")
                continue
            self._line(s, line, out)
        del buf[:pos]
        return s.closing or b"\n" not in buf, lines

    def closed(self, s: Session, out: list[Inbound]) -> None:
        """The pump closed the session's connection."""
        if s.agent is not None and self.live.get(s.agent) is s:
            del self.live[s.agent]
            out.append(Gone(s.agent))

    # ---- messages -------------------------------------------------------------------

    def _line(self, s: Session, line: bytes, out: list[Inbound]) -> None:
        self.stats["lines"] += 1
        line = line.strip()
        if not line:
            return  # blank lines are harmless (someone pressed Enter in socat)
        try:
            obj = decode(line)
            kind = obj["type"]
            if s.agent is None:
                self._hello(s, obj, out)
            elif kind == "bid":
                out.append(parse_bid(s.agent, obj))
            elif kind == "work":
                if s.claims >= self.max_claims_per_poll:
                    self.stats["claims_over_limit"] += 1
                    self.reply(s, {
                        "type": "error", "closing": False,
                        "reason": f"more than {self.max_claims_per_poll} work claims in one "
                        "tick; claim larger units of work less often (this claim is ignored)",
                    })
                    return
                claim = parse_work(s.agent, obj)
                s.claims += 1
                self._claim_ids[s.agent].append(claim.claim_id)
                out.append(claim)
            elif kind == "hello":
                raise ProtocolError("already greeted on this connection")
            else:
                raise ProtocolError(f"unknown message type {str(kind)[:32]!r}")
        except ProtocolError as err:
            self.strike(s, out, str(err))

    def _hello(self, s: Session, obj: Mapping[str, Any], out: list[Inbound]) -> None:
        if obj["type"] != "hello":
            raise ProtocolError('the first message must be {"type":"hello","token":...}')
        version = obj.get("protocol", PROTOCOL_VERSION)
        if version != PROTOCOL_VERSION:
            raise ProtocolError(f"unsupported protocol {str(version)[:16]}; "
                                f"this supervisor speaks {PROTOCOL_VERSION}")
        token = obj.get("token")
        name = self._tokens.get(token) if isinstance(token, str) else None
        if name is None:
            raise ProtocolError("unknown token (use the MAXWELL_TOKEN you were given)")
        want_uid = self._uids.get(name)
        if want_uid is not None and s.peer.uid != want_uid:
            raise ProtocolError(f"token of agent {name!r} presented by uid {s.peer.uid}, "
                                "not the agent's own uid")
        claimed = obj.get("name")
        if claimed is not None and claimed != name:
            raise ProtocolError(f"name {str(claimed)[:64]!r} does not match the token's agent")
        if name in self._banned:
            self.reply(s, {
                "type": "error", "closing": True,
                "reason": f"disconnected for the rest of the run after {self.max_strikes} strikes",
            })
            s.closing = True
            return
        old = self.live.get(name)
        if old is not None:
            self.stats["superseded"] += 1
            self.reply(old, {"type": "error", "closing": True,
                             "reason": "superseded by a newer connection with your token"})
            old.agent = None  # the agent is still connected: no Gone for the old session
            old.closing = True
        s.agent = name
        self.live[name] = s
        welcome: dict[str, Any] = {
            "type": "welcome", "protocol": PROTOCOL_VERSION, "agent": name,
            "max_line_bytes": self.max_line_bytes, "max_strikes": self.max_strikes,
            "strikes": self._strikes[name],
        }
        welcome.update(self._welcome_extra)
        welcome.update(self._agent_extra[name])
        self.reply(s, welcome)
        out.append(Hello(name))

    def strike(self, s: Session, out: list[Inbound], reason: str,
               force_close: bool = False) -> None:
        self.stats["strikes"] += 1
        if s.agent is not None:
            self._strikes[s.agent] += 1
            n = self._strikes[s.agent]
        else:
            s.strikes += 1
            n = s.strikes
        closing = force_close or n >= self.max_strikes
        self.reply(s, {
            "type": "error", "reason": reason, "strikes": n,
            "max_strikes": self.max_strikes, "closing": closing,
        })
        if s.agent is None:
            who = f"pid {s.peer.pid}" if s.peer.pid is not None else "unknown peer"
            reason = f"{who} (not authenticated): {reason}"
            self._anon_strikes += 1
            if self._anon_strikes > self.max_anonymous_strike_records:
                self._anon_suppressed += 1  # summarized at the end of the poll
                if closing:
                    s.closing = True
                return
        elif closing:
            self._banned.add(s.agent)
        out.append(Strike(s.agent, reason, closing))
        if closing:
            s.closing = True

    def reply(self, s: Session, msg: Mapping[str, Any]) -> None:
        """Queue a message for the session (dropped when its queue is full or dead)."""
        if s.write_dead:
            return
        data = encode(msg)
        if len(s.outbuf) + len(data) > self.out_buffer_bytes:
            self.stats["dropped_out"] += 1
            return
        s.outbuf += data

    def tick(self, agent: str, t_s: float, price: float, balance: float, slots: int
             ) -> Session | None:
        """Queue the tick's outcome for the agent; its session (to flush), if connected."""
        s = self.live.get(agent)
        if s is None:
            return None
        try:
            msg = {
                "type": "tick", "t": _finite(t_s), "price": _finite(price),
                "balance": _finite(balance), "slots": int(slots),
            }
        except (TypeError, ValueError, OverflowError):
            return None
        self.reply(s, msg)
        return s

    def verdict(self, agent: str, accepted: bool, units: int, reason: str, *,
                fraud: bool = False, claim_id: str | int | None = None) -> Session | None:
        """Queue the answer to a work claim (in the claims' order per agent: without
        `claim_id`, the oldest unanswered claim's id is echoed)."""
        ids = self._claim_ids.get(agent)
        if claim_id is None and ids:
            claim_id = ids.popleft()
        elif ids and claim_id in ids:
            ids.remove(claim_id)
        s = self.live.get(agent)
        if s is None:
            return None
        try:
            msg: dict[str, Any] = {
                "type": "verdict", "accepted": bool(accepted), "units": int(units),
                "reason": str(reason), "fraud": bool(fraud),
            }
        except (TypeError, ValueError, OverflowError):
            return None
        if claim_id is not None:
            msg["id"] = claim_id
        self.reply(s, msg)
        return s


def _finite(x: float) -> float:
    f = float(x)
    if f != f or f in (float("inf"), float("-inf")):
        raise ValueError("not finite")
    return f


def _coalesce_bids(records: list[Inbound]) -> list[Inbound]:
    last: dict[str, int] = {}
    for i, r in enumerate(records):
        if isinstance(r, Bid):
            last[r.agent] = i
    if len(last) == sum(isinstance(r, Bid) for r in records):
        return records
    return [r for i, r in enumerate(records) if not isinstance(r, Bid) or last[r.agent] == i]
