"""Agents: the built-in Scientist and Miner, the wire protocol, the supervisor's
Endpoint, the work Verifier and the agent SDK's client (`client.py`, public as
`maxwell.agent`).

The supervisor uses `builtin_argv`, `Endpoint` and `Verifier`; the records that
`Endpoint.poll()` returns live in `maxwell.agents.protocol`. Imports here are
light (no numpy) so agents and the CLI start fast.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from maxwell.agents.builtin import OPTIONS, AgentOptionError, builtin_argv
from maxwell.agents.endpoint import Endpoint
from maxwell.agents.protocol import (
    PROTOCOL_VERSION,
    Bid,
    Gone,
    Hello,
    Inbound,
    Strike,
    Verdict,
    WorkClaim,
)

if TYPE_CHECKING:
    from maxwell.agents.verify import Verifier


def __getattr__(name: str) -> Any:
    # The Verifier pulls in numpy; load it only when asked for.
    if name == "Verifier":
        from maxwell.agents.verify import Verifier

        return Verifier
    raise AttributeError(name)


__all__ = [
    "OPTIONS",
    "PROTOCOL_VERSION",
    "AgentOptionError",
    "Bid",
    "Endpoint",
    "Gone",
    "Hello",
    "Inbound",
    "Strike",
    "Verdict",
    "Verifier",
    "WorkClaim",
    "builtin_argv",
]
