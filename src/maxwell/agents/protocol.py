"""The agent wire protocol, version 1: message records, framing, parsing.

Newline-delimited JSON over a byte stream (a Unix socket for processes; the same
framing serves vsock or virtio-serial later). One JSON object per line, at most
`max_line_bytes` bytes including the newline. docs/protocol.md is the reference a
newcomer reads; this module is its executable form, shared by the supervisor's
Endpoint and the agent SDK. Pure: no sockets, no clocks.

Agent → supervisor: ``hello``, ``bid``, ``work``.
Supervisor → agent: ``welcome``, ``tick``, ``verdict``, ``error``.
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

PROTOCOL_VERSION = 1
DEFAULT_MAX_LINE_BYTES = 65536
MAX_SLOTS = 1024  # a bid for more slot-units than this is malformed, not ambitious
MAX_PRICE = 1e12  # credits per core-second; bigger is a typo or an attack
MAX_KIND_CHARS = 32
MAX_CLAIM_ID_CHARS = 64
MAX_UNITS = 2**53  # exact in a JSON double; more work than this per claim is not credible

AGENT_TYPES = ("hello", "bid", "work")
SUPERVISOR_TYPES = ("welcome", "tick", "verdict", "error")


class ProtocolError(ValueError):
    """A line that breaks the protocol; `reason` is sent back in an `error` reply."""


# ---- records the supervisor's Endpoint.poll() returns ("Inbound") -------------


@dataclass(frozen=True)
class Hello:
    """An agent authenticated (its token matched) on a new connection."""

    agent: str


@dataclass(frozen=True)
class Bid:
    """The agent's standing bid: `price` credits per core-second for up to `slots` slot-units."""

    agent: str
    price: float
    slots: int


@dataclass(frozen=True)
class WorkClaim:
    """A claim of finished work; verify it (Verifier) before paying anything."""

    agent: str
    kind: str
    units: int
    evidence: Mapping[str, Any]
    claim_id: str | int | None = None


@dataclass(frozen=True)
class Strike:
    """A protocol violation. `agent` is None before a valid hello; `closed` if we hung up."""

    agent: str | None
    reason: str
    closed: bool


@dataclass(frozen=True)
class Gone:
    """An authenticated agent's connection ended (it hung up, or we closed it)."""

    agent: str


Inbound = Hello | Bid | WorkClaim | Strike | Gone


@dataclass(frozen=True)
class Verdict:
    """The Verifier's answer. `fraud` means a false claim (fine it), not merely unpaid."""

    accepted: bool
    units: int
    reason: str
    fraud: bool = False
    # For a fraud: the claimed units ÷ the probability that such a lie is caught (1 for
    # the deterministic checks); the economy fines this many units' bounty, so a lie
    # never pays in expectation.
    fine_units: float = 0.0


# ---- records the agent SDK receives ---------------------------------------------


@dataclass(frozen=True)
class Welcome:
    """Sent once after a valid hello: who we are and the terms (bounty, tick length)."""

    agent: str
    protocol: int
    info: Mapping[str, Any] = field(default_factory=dict)

    @property
    def bounty_per_unit(self) -> float | None:
        return self._info_number("bounty_per_unit")

    @property
    def tick_s(self) -> float | None:
        return self._info_number("tick_s")

    def _info_number(self, key: str) -> float | None:
        """A number from the terms; None when absent or not a number (the SDK copes)."""
        v = self.info.get(key)
        return float(v) if isinstance(v, int | float) and not isinstance(v, bool) else None


@dataclass(frozen=True)
class Tick:
    """One settled tick: reserve `price`, the agent's `balance` and the `slots` it won."""

    t_s: float
    price: float
    balance: float
    slots: int


@dataclass(frozen=True)
class VerdictMessage:
    """The supervisor's verdict on one work claim (claim_id echoes the claim's `id`)."""

    accepted: bool
    units: int
    reason: str
    fraud: bool = False
    claim_id: str | int | None = None


@dataclass(frozen=True)
class ErrorMessage:
    """A protocol error reply: the line was rejected; `closing` if the connection ends now."""

    reason: str
    strikes: int = 0
    max_strikes: int = 0
    closing: bool = False


SupervisorMessage = Welcome | Tick | VerdictMessage | ErrorMessage


# ---- framing ----------------------------------------------------------------------


def encode(message: Mapping[str, Any]) -> bytes:
    """One protocol line: compact JSON, no NaN/Infinity, newline-terminated."""
    return (json.dumps(message, separators=(",", ":"), allow_nan=False) + "\n").encode()


def _reject_constant(name: str) -> Any:
    raise ProtocolError(f"{name} is not valid JSON")


def decode(line: bytes) -> dict[str, Any]:
    """Parse one line (without or with its newline) into a JSON object with a `type`.

    Raises ProtocolError with a reason fit to send back; never anything else.
    """
    try:
        text = line.decode("utf-8")
    except UnicodeDecodeError:
        raise ProtocolError("line is not UTF-8") from None
    try:
        obj = json.loads(text, parse_constant=_reject_constant)
    except ProtocolError:
        raise
    except RecursionError:
        raise ProtocolError("JSON nested too deeply") from None
    except ValueError as err:  # JSONDecodeError, or an int with too many digits
        raise ProtocolError(f"malformed JSON: {str(err)[:80]}") from None
    if not isinstance(obj, dict):
        raise ProtocolError("a message must be a JSON object")
    kind = obj.get("type")
    if not isinstance(kind, str):
        raise ProtocolError('a message needs a string "type"')
    return obj


def _number(obj: Mapping[str, Any], key: str) -> float:
    v = obj.get(key)
    if isinstance(v, bool) or not isinstance(v, int | float):
        raise ProtocolError(f'"{key}" must be a number')
    f = float(v)
    if not math.isfinite(f):
        raise ProtocolError(f'"{key}" must be finite')
    return f


def _integer(obj: Mapping[str, Any], key: str, lo: int, hi: int) -> int:
    v = obj.get(key)
    if isinstance(v, bool) or not isinstance(v, int):
        raise ProtocolError(f'"{key}" must be an integer')
    if not lo <= v <= hi:
        raise ProtocolError(f'"{key}" must be in [{lo}, {hi}]')
    return v


def parse_bid(agent: str, obj: Mapping[str, Any]) -> Bid:
    price = _number(obj, "price")
    if not 0.0 <= price <= MAX_PRICE:
        raise ProtocolError(f'"price" must be in [0, {MAX_PRICE:g}] credits per core-second')
    slots = _integer(obj, "slots", 0, MAX_SLOTS) if "slots" in obj else 1
    return Bid(agent, price, slots)


def parse_work(agent: str, obj: Mapping[str, Any]) -> WorkClaim:
    kind = obj.get("kind")
    if not isinstance(kind, str) or not 0 < len(kind) <= MAX_KIND_CHARS:
        raise ProtocolError(f'"kind" must be a string of 1..{MAX_KIND_CHARS} characters')
    units = _integer(obj, "units", 0, MAX_UNITS)
    evidence = obj.get("evidence", {})
    if not isinstance(evidence, dict):
        raise ProtocolError('"evidence" must be a JSON object')
    claim_id = obj.get("id")
    if claim_id is not None:
        if isinstance(claim_id, bool) or not isinstance(claim_id, str | int):
            raise ProtocolError('"id" must be a string or an integer')
        if len(str(claim_id)) > MAX_CLAIM_ID_CHARS:
            raise ProtocolError(f'"id" must be at most {MAX_CLAIM_ID_CHARS} characters')
    return WorkClaim(agent, kind, units, evidence, claim_id)


def parse_supervisor(obj: Mapping[str, Any]) -> SupervisorMessage | None:
    """A supervisor → agent message as a record; None for a type this version does not know.

    Unknown types are skipped rather than fatal so newer supervisors can add messages.
    """
    kind = obj.get("type")
    if kind == "welcome":
        info = {k: v for k, v in obj.items() if k not in ("type", "agent", "protocol")}
        return Welcome(str(obj.get("agent", "")), int(obj.get("protocol", 0)), info)
    if kind == "tick":
        return Tick(
            _number(obj, "t"), _number(obj, "price"), _number(obj, "balance"),
            _integer(obj, "slots", 0, 2**31),
        )
    if kind == "verdict":
        cid = obj.get("id")
        return VerdictMessage(
            bool(obj.get("accepted")), int(obj.get("units", 0)), str(obj.get("reason", "")),
            bool(obj.get("fraud", False)), cid if isinstance(cid, str | int) else None,
        )
    if kind == "error":
        return ErrorMessage(
            str(obj.get("reason", "")), int(obj.get("strikes", 0)),
            int(obj.get("max_strikes", 0)), bool(obj.get("closing", False)),
        )
    return None
