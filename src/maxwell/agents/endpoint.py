"""The supervisor's side of the agent protocol: one Unix socket, many agents, never blocking.

The supervisor makes one `Endpoint` in its run directory, `register()`s each agent
(the returned environment goes to the agent's process) and calls `poll()` once per
tick. Everything is non-blocking and bounded: reads have a byte budget per poll,
lines a maximum length, outgoing buffers a maximum size (messages to an agent that
does not read are dropped, never waited for). Whatever an agent sends, `poll()`
returns records and never raises; protocol violations become `Strike` records and
`error` replies, and after `max_strikes` the agent is disconnected for the rest of
the run (its process keeps running and paying; it just cannot earn any more).

This module is the socket pump: it accepts, reads, writes and closes, and asks
the kernel who connected (SO_PEERCRED). Every protocol decision is made by the
socket-free state machine in `maxwell.agents.session`.

Touches: one socket file in the run directory (and, when that path is too long
for a Unix socket address, a short private directory under the system temp dir
with a symlink from the run directory).
"""

from __future__ import annotations

import contextlib
import os
import select
import shutil
import socket
import struct
import tempfile
from collections.abc import Mapping
from pathlib import Path

from maxwell.agents.protocol import (
    DEFAULT_MAX_LINE_BYTES,
    Bid,
    Gone,
    Hello,
    Inbound,
    Strike,
    WorkClaim,
)
from maxwell.agents.session import Peer, Session, Sessions

SOCKET_NAME = "agents.sock"
_MAX_SUN_PATH = 100  # sockaddr_un holds 108 bytes; keep a margin


class _Conn:
    """An accepted socket and the protocol session it carries."""

    __slots__ = ("s", "sock")

    def __init__(self, sock: socket.socket, s: Session) -> None:
        self.sock = sock
        self.s = s


def peer_cred(sock: socket.socket) -> Peer:
    """(pid, uid) of the connecting process, as the kernel recorded them at connect()."""
    try:
        creds = sock.getsockopt(socket.SOL_SOCKET, socket.SO_PEERCRED, struct.calcsize("3i"))
        pid, uid, _gid = struct.unpack("3I", creds)
        return Peer(int(pid), int(uid))
    except OSError:
        return Peer()


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
        self.sessions = Sessions(
            max_line_bytes=max_line_bytes, max_strikes=max_strikes, welcome_extra=welcome_extra,
            max_claims_per_poll=max_claims_per_poll, out_buffer_bytes=out_buffer_bytes,
            hello_deadline_polls=hello_deadline_polls,
            max_anonymous_strike_records=max_anonymous_strike_records,
        )
        self.max_line_bytes = max_line_bytes
        self.max_strikes = max_strikes
        self.max_connections = max_connections
        self.read_budget_bytes = read_budget_bytes
        self.max_lines_per_poll = max_lines_per_poll
        self.max_claims_per_poll = max_claims_per_poll
        self.stats = self.sessions.stats
        self._conns: list[_Conn] = []
        self._by_session: dict[int, _Conn] = {}  # id(session) -> its connection
        self._closed = False
        self._rr = 0  # round-robin start among anonymous connections
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
        token = self.sessions.register(name, welcome_extra, uid)
        return {
            "MAXWELL_ENDPOINT": os.fspath(self.path),
            "MAXWELL_TOKEN": token,
            "MAXWELL_AGENT": name,
        }

    def connected(self, name: str) -> bool:
        """Whether the agent has an authenticated connection right now."""
        return name in self.sessions.live

    def strikes(self, name: str) -> int:
        return self.sessions.strikes(name)

    def poll(self) -> list[Inbound]:
        """Accept, read and parse everything available now; never blocks, never raises.

        Of several bids from one agent within a poll only the last is returned (a bid
        is a standing order; the earlier ones were superseded before anyone saw them).
        """
        out: list[Inbound] = []
        if self._closed:
            return out
        self.sessions.begin_poll()
        with contextlib.suppress(Exception):  # a listener error must not stop the tick
            self._accept()
        # Agents that proved who they are go first, each with its own budget; anonymous
        # connections share one budget, taken round-robin, so a flood of them costs a
        # bounded amount per poll and cannot delay a registered agent.
        authed = [c for c in self._conns if c.s.agent is not None]
        anon = [c for c in self._conns if c.s.agent is None]
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
                self.sessions.strike(conn.s, out,
                                     f"internal error handling this connection: {err!r}"[:200])
                self._close(conn, out)
                continue
            if shared:
                anon_bytes -= nbytes
                anon_lines -= nlines
        return self.sessions.end_poll(out)

    def wait(self, timeout_s: float) -> bool:
        """Block up to `timeout_s` until a connection or the listener is readable.

        Lets the supervisor sleep between ticks instead of polling on a timer; True
        if `poll()` has something to do (or an error that poll will report).
        """
        if self._closed:
            return False
        socks = [self._listener, *(c.sock for c in self._conns if not c.s.closing)]
        try:
            ready, _, _ = select.select(socks, [], [], max(timeout_s, 0.0))
        except (OSError, ValueError):
            return True  # a socket went bad under us: let poll() find and close it
        return bool(ready)

    def send_tick(self, agent: str, t_s: float, price: float, balance: float, slots: int) -> None:
        """Tell the agent the tick's outcome. Never blocks; dropped if the agent is not reading."""
        if not self._closed:
            self._flush_session(self.sessions.tick(agent, t_s, price, balance, slots))

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
        s = self.sessions.verdict(agent, accepted, units, reason, fraud=fraud, claim_id=claim_id)
        if not self._closed:
            self._flush_session(s)

    def close(self) -> None:
        """Disconnect everyone and remove the socket file. Idempotent."""
        if self._closed:
            return
        self._closed = True
        for conn in list(self._conns):
            with contextlib.suppress(OSError):
                conn.sock.close()
        self._conns.clear()
        self._by_session.clear()
        self.sessions.live.clear()
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

    # ---- the pump -------------------------------------------------------------------

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
                anon = next((c for c in self._conns
                             if c.s.agent is None and not c.s.closing), None)
                if anon is None:
                    self.stats["refused"] += 1
                    with contextlib.suppress(OSError):
                        sock.close()
                    continue
                self.stats["evicted"] += 1
                self._forget(anon)
                with contextlib.suppress(OSError):
                    anon.sock.close()
            sock.setblocking(False)
            conn = _Conn(sock, self.sessions.open(peer_cred(sock)))
            self._conns.append(conn)
            self._by_session[id(conn.s)] = conn

    def _service(
        self, conn: _Conn, out: list[Inbound], byte_budget: int, line_budget: int
    ) -> tuple[int, int]:
        """Read and handle one connection within the budgets; returns (bytes, lines) used."""
        eof, nbytes = self._read(conn, byte_budget)
        close, nlines = self.sessions.handle(conn.s, out, eof, line_budget)
        self._flush(conn)
        if close:
            self._close(conn, out)
        return nbytes, nlines

    def _read(self, conn: _Conn, budget: int) -> tuple[bool, int]:
        """Read up to the budget; (end of stream or broken, bytes read)."""
        total = 0
        while total < budget and self.sessions.wants_input(conn.s):
            try:
                chunk = conn.sock.recv(min(65536, budget - total))
            except (BlockingIOError, InterruptedError):
                return False, total
            except OSError:
                return True, total
            if not chunk:
                return True, total
            total += len(chunk)
            self.sessions.feed(conn.s, chunk)
        return False, total

    def _flush_session(self, s: Session | None) -> None:
        conn = self._by_session.get(id(s)) if s is not None else None
        if conn is not None:
            # Never let one agent's socket reach the supervisor.
            with contextlib.suppress(Exception):
                self._flush(conn)

    def _flush(self, conn: _Conn) -> None:
        s = conn.s
        while s.outbuf:
            try:
                n = conn.sock.send(s.outbuf)
            except (BlockingIOError, InterruptedError):
                return
            except OSError:
                s.outbuf.clear()
                s.write_dead = True
                return
            del s.outbuf[:n]

    def _forget(self, conn: _Conn) -> None:
        if conn in self._conns:
            self._conns.remove(conn)
        self._by_session.pop(id(conn.s), None)

    def _close(self, conn: _Conn, out: list[Inbound]) -> None:
        self._forget(conn)
        with contextlib.suppress(OSError):
            conn.sock.close()
        self.sessions.closed(conn.s, out)


__all__ = ["Bid", "Endpoint", "Gone", "Hello", "Inbound", "Strike", "WorkClaim"]
