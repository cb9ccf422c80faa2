"""Shared answers to "can this backend work here?" and "is this machine ready?".

Every hardware-facing backend (physics readers, membrane tiers, memory tracers)
answers `available()` with an `Availability`, and `maxwell doctor` gathers
`Check` rows from each package. Neither ever raises: detection explains.
"""

from __future__ import annotations

from typing import NamedTuple


class Availability(NamedTuple):
    """Whether a backend can be used here, and if not, why (with the fix when known)."""

    ok: bool
    reason: str = ""

    def __bool__(self) -> bool:
        return self.ok


class Check(NamedTuple):
    """One line of `maxwell doctor`: what was checked, whether it passed, and detail or fix."""

    check: str
    ok: bool
    detail: str
