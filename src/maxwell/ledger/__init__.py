"""The ledger: integer micro-credit accounts, transfers with reasons, Landauer's tax.

Public API (see docs/api.md): `Ledger`, `Transfer`, `ConservationError`, `to_ucr`,
`to_credits`, `UCR_PER_CREDIT`, `REASONS`, `landauer_energy_j`, `landauer_tax_ucr`,
`landauer_tax_credits`, `K_B_J_PER_K`. Pure: no I/O, no clock.
"""

from maxwell.ledger.book import (
    REASONS,
    UCR_PER_CREDIT,
    ConservationError,
    Ledger,
    Transfer,
    Transfers,
    to_credits,
    to_ucr,
)
from maxwell.ledger.landauer import (
    K_B_J_PER_K,
    landauer_energy_j,
    landauer_tax_credits,
    landauer_tax_ucr,
)

__all__ = [
    "K_B_J_PER_K",
    "REASONS",
    "UCR_PER_CREDIT",
    "ConservationError",
    "Ledger",
    "Transfer",
    "Transfers",
    "landauer_energy_j",
    "landauer_tax_credits",
    "landauer_tax_ucr",
    "to_credits",
    "to_ucr",
]
