"""The policies built on the economy: `maxwell` enforces `economy.step`, `cfs` only books it.

Under `cfs` the same bills go into a shadow ledger (the economy's `enforce=False`)
and nothing is applied, so Linux's fair scheduler decides who runs; under
`maxwell` the auction's winners run with their CPU quota and the others are
paused. Baseline policies implement the same `Policy` protocol. Pure: no I/O.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from maxwell import economy
from maxwell.ledger import Transfer
from maxwell.run.parts import Decision, Note


class EconomyPolicy:
    """`economy.step` as a policy; `params.enforce` picks maxwell (True) or cfs (False)."""

    def __init__(self, params: economy.EconomyParams, rng: np.random.Generator) -> None:
        self.params = params
        self.rng = rng
        self.name = "maxwell" if params.enforce else "cfs"

    def initial(self) -> tuple[Any, Sequence[Transfer]]:
        return economy.initial_state(self.params)

    def decide(self, state: Any, obs: economy.Observation) -> tuple[Any, Decision]:
        state, dec = economy.step(state, obs, self.params, self.rng)
        if not self.params.enforce:
            return state, Decision(economy=dec, kill=dec.kill)
        return state, Decision(economy=dec, kill=dec.kill, run=dec.run, cores=dec.cores)


def tie_notes(bid_price: np.ndarray, allocation: Any, names: Sequence[str]) -> list[Note]:
    """A `tie` event recording the seeded draws whenever equal bids competed for slots."""
    order = np.asarray(allocation.order)  # distinct agents, best first
    ranked = bid_price[order]
    # Sorted best first, so equal bids are neighbours: one vectorized check a tick.
    if ranked.size > 1 and bool(np.any(ranked[1:] == ranked[:-1])):
        return [Note("tie", None, {"order": [names[i] for i in order.tolist()],
                                   "bids": [float(x) for x in ranked.tolist()],
                                   "draws": [float(x) for x in allocation.tie_keys]})]
    return []
