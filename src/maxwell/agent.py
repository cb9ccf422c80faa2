"""The Maxwell agent SDK: what a program imports to join the economy.

    from maxwell.agent import connect

    with connect() as agent:            # reads MAXWELL_ENDPOINT / MAXWELL_TOKEN
        agent.bid(price=0.5, slots=1)   # credits per core-second
        for tick in agent.ticks():      # one per supervisor tick; ends when it hangs up
            agent.report_work("primes", units, evidence)

The wire protocol underneath is documented in docs/protocol.md; nothing here is
required to take part (any program that speaks the protocol is an agent, and one
that speaks nothing is still run, metered and charged). Re-exports
`maxwell.agents.client`; touches only the agent's own socket.
"""

from __future__ import annotations

from maxwell.agents.client import Agent, NotUnderMaxwell, Rejected, connect
from maxwell.agents.protocol import (
    PROTOCOL_VERSION,
    ErrorMessage,
    Tick,
    VerdictMessage,
    Welcome,
)

__all__ = [
    "PROTOCOL_VERSION",
    "Agent",
    "ErrorMessage",
    "NotUnderMaxwell",
    "Rejected",
    "Tick",
    "VerdictMessage",
    "Welcome",
    "connect",
]
