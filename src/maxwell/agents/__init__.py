"""Agents: the built-in Scientist and Miner, the wire protocol, the supervisor's
Endpoint, the work Verifier and the agent SDK's client (`client.py`, public as
`maxwell.agent`).

The supervisor uses `builtin_argv`, `Endpoint` and `Verifier`; the records that
`Endpoint.poll()` returns live in `maxwell.agents.protocol`. Only the protocol
records are imported eagerly: every agent imports this package (through
`maxwell.agent`), and 64 of them starting at once pay for each import, so the
supervisor's side (endpoint, session), the built-ins' options and the
Verifier (numpy) load when first asked for.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

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
    from maxwell.agents.builtin import OPTIONS, AgentOptionError, builtin_argv
    from maxwell.agents.endpoint import Endpoint
    from maxwell.agents.verify import Verifier

_LAZY = {
    "OPTIONS": "maxwell.agents.builtin",
    "AgentOptionError": "maxwell.agents.builtin",
    "builtin_argv": "maxwell.agents.builtin",
    "Endpoint": "maxwell.agents.endpoint",
    "Verifier": "maxwell.agents.verify",
}


def __getattr__(name: str) -> Any:
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(name)
    import importlib

    return getattr(importlib.import_module(module), name)


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
