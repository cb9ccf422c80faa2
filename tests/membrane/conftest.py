"""Fixtures for the membrane tests: one backend per tier this machine has."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from membrane_backends import TIERS, make_backend

from maxwell.membrane import Backend


@pytest.fixture(params=TIERS)
def backend(request: pytest.FixtureRequest) -> Iterator[Backend]:
    b = make_backend(request.param)
    try:
        yield b
    finally:
        b.close()
