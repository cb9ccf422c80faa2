"""The supervisor's side of the agent protocol: one Unix socket, many agents, never blocking.

The supervisor makes one `Endpoint` in its run directory, `register()`s each agent
(the returned environment goes to the agent's process) and calls `poll()` once per
tick. Everything is non-blocking and bounded: reads have a byte budget per poll,
lines a maximum length, outgoing buffers a maximum size (messages to an agent that
does not read are dropped, never waited for). Whatever an agent sends, `poll()`
returns records and never raises; protocol violations become `Strike` records and
`error` replies, and after `max_strikes` the agent is disconnected for the rest of
the run (its process keeps running and paying; it just cannot earn any more).

Touches: one socket file in the run directory (and, when that path is too long
for a Unix socket address, a short private directory under the system temp dir
with a symlink from the run directory).
"""

from __future__ import annotations

import contextlib
import os
import secrets
import select
import shutil
import socket
import struct
import tempfile
from collections import deque
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from maxwell.agents.protocol import (
    DEFAULT_MAX_LINE_BYTES,
    PROTOCOL_VERSION,
    Bid,
    Gone,
    Hello,
    Inbound,
    ProtocolError,
    Strike,
    WorkClaim,
    decode,
    encode,
    parse_bid,
    parse_work,
)

SOCKET_NAME = "agents.sock"
_MAX_SUN_PATH = 100  # sockaddr_un holds 108 bytes; keep a margin
_MAX_NAME_CHARS = 64


class _Conn:
    """One accepted connection: buffers, the agent it proved to be, its strikes."""

    __slots__ = (
        "agent", "claims", "closing", "discarding", "inbuf", "outbuf", "peer_pid", "peer_uid",
        "polls", "sock", "strikes", "write_dead",
    )

    def __init__(self, sock: socket.socket) -> None:
        self.sock = sock
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
        self.peer_pid, self.peer_uid = _peer_cred(sock)


def _peer_cred(sock: socket.socket) -> tuple[int | None, int | None]:
    """(pid, uid) of the connecting process, as the kernel recorded them at connect()."""
    try:
        creds = sock.getsockopt(socket.SOL_SOCKET, socket.SO_PEERCRED, struct.calcsize("3i"))
        pid, uid, _gid = struct.unpack("3I", creds)
        return int(pid), int(uid)
    except OSError:
        return None, None


class Endpoint:
    """Unix-socket endpoint for all agents of one supervisor.

    Parameters bound every cost an agent can impose per `poll()`:
    `max_line_bytes` (a longer line is a strike), `max_strikes` (then disconnect and
    refuse the agent's token), `read_budget_bytes` per connection, `max_lines_per_poll`
    per connection (the rest waits in the kernel buffer: back-pressure),
    `max_claims_per_poll` work claims per agent (more get an `error` reply, unverified),
    `out_buffer_bytes` queued for an agent (further messages are dropped),
    `max_connections` open at once, and `hello_deadline_polls` for a new
    connection to authenticate; at most `max_anonymous_strike_records` Strike records
    per poll for unauthenticated connections (the rest summarized in one, so a
    flood cannot flood the run's event table). `welcome_extra` goes into every `welcome` message
    (the supervisor puts `bounty_per_unit` and `tick_s` there).
    """

    def __init__(
        self,
        directory: Path,
        *,
        max_line_bytes: int = DEFAULT_MAX_LINE_BYTES,
        max_strikes: int = 5,
        welcome_extra: Mapping[str, object] | None = None,
        max_connections: int = 64,
        read_budget_bytes: int = 1 << 18,
        max_lines_per_poll: int = 256,
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
        self.max_connections = max_connections
        self.read_budget_bytes = read_budget_bytes
        self.max_lines_per_poll = max_lines_per_poll
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
        self._live: dict[str, _Conn] = {}
        self._conns: list[_Conn] = []
        self._claim_ids: dict[str, deque[str | int | None]] = {}
        self._closed = False
        self._rr = 0  # round-robin start among anonymous connections
        self._anon_strikes = 0  # this poll's strikes against unauthenticated connections
        self._anon_suppressed = 0
        # Counters for the run record and the benchmarks; never used for decisions.
        self.stats: dict[str, int] = {
            "connections": 0, "refused": 0, "lines": 0, "bytes_in": 0, "strikes": 0,
            "dropped_out": 0, "claims_over_limit": 0, "evicted": 0,
        }
        directory = Path(directory)
        directory.mkdir(parents=True, exist_ok=True)
        self.link: Path | None = None
        self._tmpdir: Path | None = None
        wanted = directory / SOCKET_NAME
        if len(os.fsencode(wanted.absolute())) <= _MAX_SUN_PATH:
            self.path = wanted.absolute()
        else:
            self._tmpdir = Path(tempfile.mkdtemp(prefix="maxwell-ep-"))
            self.path = self._tmpdir / SOCKET_NAME
            self.link = wanted
        for p in (wanted, self.path):
            if p.is_socket() or p.is_symlink():
                p.unlink()
        self._listener = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self._listener.bind(os.fspath(self.path))
        # Jailed agents connect as their own uids (connect needs write permission
        # on the socket). Who can reach it is the directory's business; who is
        # accepted is the token's and, for jailed agents, SO_PEERCRED's.
        os.chmod(self.path, 0o666)
        self._listener.listen(512)
        self._listener.setblocking(False)
        if self.link is not None:
            self.link.symlink_to(self.path)

    # ---- supervisor API -------------------------------------------------------------

    def register(
        self, name: str, welcome_extra: Mapping[str, object] | None = None,
        uid: int | None = None,
    ) -> dict[str, str]:
        """Create the agent's token; returns MAXWELL_ENDPOINT, MAXWELL_TOKEN, MAXWELL_AGENT.

        With `uid` (a jailed agent's own uid) the identity is the kernel's: a hello
        whose SO_PEERCRED uid differs is refused whatever token it carries, so a
        stolen token is worthless; the token only backs that up.
        """
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
        return {
            "MAXWELL_ENDPOINT": os.fspath(self.path),
            "MAXWELL_TOKEN": token,
            "MAXWELL_AGENT": name,
        }

    def connected(self, name: str) -> bool:
        """Whether the agent has an authenticated connection right now."""
        return name in self._live

    def strikes(self, name: str) -> int:
        return self._strikes.get(name, 0)

    def poll(self) -> list[Inbound]:
        """Accept, read and parse everything available now; never blocks, never raises.

        Of several bids from one agent within a poll only the last is returned (a bid
        is a standing order; the earlier ones were superseded before anyone saw them).
        """
        out: list[Inbound] = []
        if self._closed:
            return out
        self._anon_strikes = self._anon_suppressed = 0
        with contextlib.suppress(Exception):  # a listener error must not stop the tick
            self._accept()
        # Agents that proved who they are go first, each with its own budget; anonymous
        # connections share one budget, taken round-robin, so a flood of them costs a
        # bounded amount per poll and cannot delay a registered agent.
        authed = [c for c in self._conns if c.agent is not None]
        anon = [c for c in self._conns if c.agent is None]
        if anon:
            k = self._rr % len(anon)
            anon = anon[k:] + anon[:k]
            self._rr += 1
        anon_bytes, anon_lines = self.read_budget_bytes, self.max_lines_per_poll
        for shared, conn in [(False, c) for c in authed] + [(True, c) for c in anon]:
            if shared and (anon_bytes <= 0 or anon_lines <= 0):
                break
            try:
                nbytes, nlines = self._service(
                    conn, out,
                    min(anon_bytes, self.read_budget_bytes) if shared else self.read_budget_bytes,
                    min(anon_lines, self.max_lines_per_poll) if shared else self.max_lines_per_poll,
                )
            except Exception as err:  # defensive: one connection never takes the loop down
                self._strike(conn, out, f"internal error handling this connection: {err!r}"[:200])
                self._close(conn, out)
                continue
            if shared:
                anon_bytes -= nbytes
                anon_lines -= nlines
        if self._anon_suppressed:
            out.append(Strike(None, f"and {self._anon_suppressed} more strikes against "
                              "unauthenticated connections in this poll", False))
        return _coalesce_bids(out)

    def wait(self, timeout_s: float) -> bool:
        """Block up to `timeout_s` until a connection or the listener is readable.

        Lets the supervisor sleep between ticks instead of polling on a timer; True
        if `poll()` has something to do (or an error that poll will report).
        """
        if self._closed:
            return False
        socks = [self._listener, *(c.sock for c in self._conns if not c.closing)]
        try:
            ready, _, _ = select.select(socks, [], [], max(timeout_s, 0.0))
        except (OSError, ValueError):
            return True  # a socket went bad under us: let poll() find and close it
        return bool(ready)

    def send_tick(self, agent: str, t_s: float, price: float, balance: float, slots: int) -> None:
        """Tell the agent the tick's outcome. Never blocks; dropped if the agent is not reading."""
        try:
            msg = {
                "type": "tick", "t": _finite(t_s), "price": _finite(price),
                "balance": _finite(balance), "slots": int(slots),
            }
        except (TypeError, ValueError, OverflowError):
            return
        self._send(agent, msg)

    def send_verdict(
        self,
        agent: str,
        accepted: bool,
        units: int,
        reason: str,
        *,
        fraud: bool = False,
        claim_id: str | int | None = None,
    ) -> None:
        """Answer a work claim. Verdicts must follow the claims' order per agent: when
        `claim_id` is None the id of the agent's oldest unanswered claim is echoed."""
        ids = self._claim_ids.get(agent)
        if claim_id is None and ids:
            claim_id = ids.popleft()
        elif ids and claim_id in ids:
            ids.remove(claim_id)
        try:
            msg: dict[str, Any] = {
                "type": "verdict", "accepted": bool(accepted), "units": int(units),
                "reason": str(reason), "fraud": bool(fraud),
            }
        except (TypeError, ValueError, OverflowError):
            return
        if claim_id is not None:
            msg["id"] = claim_id
        self._send(agent, msg)

    def close(self) -> None:
        """Disconnect everyone and remove the socket file. Idempotent."""
        if self._closed:
            return
        self._closed = True
        for conn in list(self._conns):
            with contextlib.suppress(OSError):
                conn.sock.close()
        self._conns.clear()
        self._live.clear()
        with contextlib.suppress(OSError):
            self._listener.close()
        for p in (self.link, self.path):
            if p is not None:
                with contextlib.suppress(OSError):
                    p.unlink()
        if self._tmpdir is not None:
            shutil.rmtree(self._tmpdir, ignore_errors=True)

    def __enter__(self) -> Endpoint:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # ---- internals ------------------------------------------------------------------

    def _accept(self) -> None:
        # Drain the whole backlog (bounded) so a real agent queued behind a flood of
        # anonymous connections gets in this poll rather than after many.
        for _ in range(1024):
            try:
                sock, _addr = self._listener.accept()
            except (BlockingIOError, InterruptedError):
                return
            except OSError:  # EMFILE and friends: try again next poll
                return
            if len(self._conns) >= self.max_connections:
                # Make room by dropping the oldest connection that has not proved who
                # it is, so a flood of anonymous sockets cannot lock real agents out.
                anon = next((c for c in self._conns if c.agent is None and not c.closing), None)
                if anon is None:
                    self.stats["refused"] += 1
                    with contextlib.suppress(OSError):
                        sock.close()
                    continue
                self.stats["evicted"] += 1
                self._conns.remove(anon)
                with contextlib.suppress(OSError):
                    anon.sock.close()
            sock.setblocking(False)
            self._conns.append(_Conn(sock))
            self.stats["connections"] += 1

    def _service(
        self, conn: _Conn, out: list[Inbound], byte_budget: int, line_budget: int
    ) -> tuple[int, int]:
        """Read and handle one connection within the budgets; returns (bytes, lines) used."""
        conn.polls += 1
        conn.claims = 0
        eof, nbytes = self._read(conn, byte_budget)
        drained, nlines = self._parse(conn, out, eof, line_budget)
        if (
            conn.agent is None
            and not conn.closing
            and conn.polls > self.hello_deadline_polls
        ):
            self._strike(conn, out, "no valid hello in time", force_close=True)
        self._flush(conn)
        if conn.closing or (eof and drained):  # at EOF, first finish the lines it sent
            self._close(conn, out)
        return nbytes, nlines

    def _read(self, conn: _Conn, budget: int) -> tuple[bool, int]:
        """Read up to the budget; (end of stream or broken, bytes read)."""
        total = 0
        # Do not read further while a backlog of complete lines waits (back-pressure).
        while total < budget and len(conn.inbuf) < 2 * self.max_line_bytes:
            try:
                chunk = conn.sock.recv(min(65536, budget - total))
            except (BlockingIOError, InterruptedError):
                return False, total
            except OSError:
                return True, total
            if not chunk:
                return True, total
            self.stats["bytes_in"] += len(chunk)
            total += len(chunk)
            conn.inbuf += chunk
        return False, total

    def _parse(
        self, conn: _Conn, out: list[Inbound], final: bool, max_lines: int
    ) -> tuple[bool, int]:
        """Handle up to max_lines complete lines; (none left, lines handled)."""
        buf = conn.inbuf
        pos = 0
        lines = 0
        limit = self.max_line_bytes
        while lines < max_lines and not conn.closing:
            nl = buf.find(b"\n", pos)
            if conn.discarding:
                if nl < 0:
                    pos = len(buf)
                    break
                conn.discarding = False
                pos = nl + 1
                continue
            if nl < 0:
                if len(buf) - pos >= limit:
                    self.stats["lines"] += 1
                    lines += 1
                    self._strike(conn, out, f"line longer than {limit} bytes")
                    conn.discarding = True
                    pos = len(buf)
                elif final and pos < len(buf):
                    # The peer hung up after an unterminated last line: take it.
                    line = bytes(buf[pos:])
                    pos = len(buf)
                    lines += 1
                    self._line(conn, line, out)
                break
            line = bytes(buf[pos:nl])
            pos = nl + 1
            lines += 1
            if len(line) + 1 > limit:
                self.stats["lines"] += 1
                self._strike(conn, out, f"line longer than {limit} bytes")
                continue
            self._line(conn, line, out)
        del buf[:pos]
        return conn.closing or b"\n" not in buf, lines

    def _line(self, conn: _Conn, line: bytes, out: list[Inbound]) -> None:
        self.stats["lines"] += 1
        line = line.strip()
        if not line:
            return  # blank lines are harmless (someone pressed Enter in socat)
        try:
            obj = decode(line)
            kind = obj["type"]
            if conn.agent is None:
                self._hello(conn, obj, out)
            elif kind == "bid":
                out.append(parse_bid(conn.agent, obj))
            elif kind == "work":
                if conn.claims >= self.max_claims_per_poll:
                    self.stats["claims_over_limit"] += 1
                    self._reply(conn, {
                        "type": "error", "closing": False,
                        "reason": f"more than {self.max_claims_per_poll} work claims in one "
                        "tick; claim larger units of work less often (this claim is ignored)",
                    })
                    return
                claim = parse_work(conn.agent, obj)
                conn.claims += 1
                self._claim_ids[conn.agent].append(claim.claim_id)
                out.append(claim)
            elif kind == "hello":
                raise ProtocolError("already greeted on this connection")
            else:
                raise ProtocolError(f"unknown message type {str(kind)[:32]!r}")
        except ProtocolError as err:
            self._strike(conn, out, str(err))

    def _hello(self, conn: _Conn, obj: Mapping[str, Any], out: list[Inbound]) -> None:
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
        if want_uid is not None and conn.peer_uid != want_uid:
            raise ProtocolError(f"token of agent {name!r} presented by uid {conn.peer_uid}, "
                                "not the agent's own uid")
        claimed = obj.get("name")
        if claimed is not None and claimed != name:
            raise ProtocolError(f"name {str(claimed)[:64]!r} does not match the token's agent")
        if name in self._banned:
            self._reply(conn, {
                "type": "error", "closing": True,
                "reason": f"disconnected for the rest of the run after {self.max_strikes} strikes",
            })
            conn.closing = True
            return
        old = self._live.get(name)
        if old is not None:
            self._reply(old, {"type": "error", "closing": True,
                              "reason": "superseded by a newer connection with your token"})
            self._flush(old)
            old.agent = None  # the agent is still connected: no Gone for the old socket
            old.closing = True
        conn.agent = name
        self._live[name] = conn
        welcome: dict[str, Any] = {
            "type": "welcome", "protocol": PROTOCOL_VERSION, "agent": name,
            "max_line_bytes": self.max_line_bytes, "max_strikes": self.max_strikes,
            "strikes": self._strikes[name],
        }
        welcome.update(self._welcome_extra)
        welcome.update(self._agent_extra[name])
        self._reply(conn, welcome)
        out.append(Hello(name))

    def _strike(
        self, conn: _Conn, out: list[Inbound], reason: str, force_close: bool = False
    ) -> None:
        self.stats["strikes"] += 1
        if conn.agent is not None:
            self._strikes[conn.agent] += 1
            n = self._strikes[conn.agent]
        else:
            conn.strikes += 1
            n = conn.strikes
        closing = force_close or n >= self.max_strikes
        self._reply(conn, {
            "type": "error", "reason": reason, "strikes": n,
            "max_strikes": self.max_strikes, "closing": closing,
        })
        if conn.agent is None:
            who = f"pid {conn.peer_pid}" if conn.peer_pid is not None else "unknown peer"
            reason = f"{who} (not authenticated): {reason}"
            self._anon_strikes += 1
            if self._anon_strikes > self.max_anonymous_strike_records:
                self._anon_suppressed += 1  # summarized at the end of the poll
                if closing:
                    conn.closing = True
                return
        elif closing:
            self._banned.add(conn.agent)
        out.append(Strike(conn.agent, reason, closing))
        if closing:
            conn.closing = True

    def _reply(self, conn: _Conn, msg: Mapping[str, Any]) -> None:
        if conn.write_dead:
            return
        data = encode(msg)
        if len(conn.outbuf) + len(data) > self.out_buffer_bytes:
            self.stats["dropped_out"] += 1
            return
        conn.outbuf += data

    def _send(self, agent: str, msg: Mapping[str, Any]) -> None:
        conn = self._live.get(agent)
        if conn is None or self._closed:
            return
        try:
            self._reply(conn, msg)
            self._flush(conn)
        except Exception:  # never let one agent's socket reach the supervisor
            pass

    def _flush(self, conn: _Conn) -> None:
        while conn.outbuf:
            try:
                n = conn.sock.send(conn.outbuf)
            except (BlockingIOError, InterruptedError):
                return
            except OSError:
                conn.outbuf.clear()
                conn.write_dead = True
                return
            del conn.outbuf[:n]

    def _close(self, conn: _Conn, out: list[Inbound]) -> None:
        if conn in self._conns:
            self._conns.remove(conn)
        with contextlib.suppress(OSError):
            conn.sock.close()
        if conn.agent is not None and self._live.get(conn.agent) is conn:
            del self._live[conn.agent]
            out.append(Gone(conn.agent))


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


__all__ = ["Bid", "Endpoint", "Gone", "Hello", "Inbound", "Strike", "WorkClaim"]
