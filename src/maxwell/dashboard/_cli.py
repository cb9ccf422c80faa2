"""Subcommands of maxwell.dashboard (registered by maxwell.cli)."""

from __future__ import annotations

from maxwell.cli import Commands


def register(commands: Commands) -> None:
    """Add this package's subcommands to the parser."""
