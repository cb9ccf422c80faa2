"""Shared answers every package gives: bad input, "can this work here?", doctor lines,
and the shape of the command registry each package adds its subcommands to.

Every hardware-facing backend (physics readers, membrane tiers, memory tracers)
answers `available()` with an `Availability`, and `maxwell doctor` gathers
`Check` rows from each package; neither ever raises: detection explains.
`UsageError` is bad input from the user (one line, exit code 2). Each package's
`_cli.py` registers its subcommands into a `Commands` (so no package imports
the `maxwell` command itself). Stdlib only; imports nothing of Maxwell.
"""

from __future__ import annotations

import argparse
from dataclasses import dataclass
from typing import NamedTuple


class UsageError(Exception):
    """Bad input from the user: printed as one line, exit code 2."""


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


@dataclass
class Commands:
    """The subparser groups a package may add to: top level, `bench …`, `experiment …`."""

    top: argparse._SubParsersAction[argparse.ArgumentParser]
    bench: argparse._SubParsersAction[argparse.ArgumentParser]
    experiment: argparse._SubParsersAction[argparse.ArgumentParser]


def add_root_args(parser: argparse.ArgumentParser) -> None:
    """Filesystem roots for the hardware readers (fake trees in tests, real / by default)."""
    g = parser.add_argument_group(
        "filesystem roots (default: env MAXWELL_*_ROOT, else /sys, /dev, /proc)"
    )
    g.add_argument("--sysfs-root", metavar="DIR", default=None)
    g.add_argument("--dev-root", metavar="DIR", default=None)
    g.add_argument("--procfs-root", metavar="DIR", default=None)
