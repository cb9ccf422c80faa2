"""What every report holds, for the report's library and command-line tests alike."""

from __future__ import annotations

import pytest


@pytest.fixture
def plot_files() -> set[str]:
    """The plots a report writes and links, by file name."""
    return {
        "temperature_price.png",
        "energy.png",
        "wallets.png",
        "cpu_share.png",
        "work.png",
        "memory_tax.png",
    }
