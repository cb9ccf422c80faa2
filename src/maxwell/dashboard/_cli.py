"""Subcommands of maxwell.dashboard (registered by maxwell.cli): `maxwell dashboard`."""

from __future__ import annotations

import argparse
from pathlib import Path

from maxwell.cli import Commands, UsageError


def register(commands: Commands) -> None:
    """Add this package's subcommands to the parser."""
    p = commands.top.add_parser(
        "dashboard",
        help="terminal dashboard of a run (live with --follow, or a replay)",
        description="Show a run's thermals, market, wallets and events from its database. "
        "Keys: q quit, p pause, ? help, arrows pick an agent / step through ticks.",
    )
    p.add_argument("run", metavar="RUN_DIR_OR_DB", help="a run directory or its run.db")
    p.add_argument("--follow", action="store_true",
                   help="follow a live run (waits for the database if it does not exist yet)")
    p.add_argument("--speed", type=float, default=None, metavar="X",
                   help="replay from the first tick at X times real time "
                   "(default: show the last tick; step with the arrow keys)")
    p.set_defaults(func=_dashboard)


def _dashboard(args: argparse.Namespace) -> int:
    from maxwell.dashboard import run_dashboard
    from maxwell.record import SchemaError, find_db

    src = Path(args.run)
    if args.speed is not None and args.speed <= 0:
        raise UsageError(f"--speed must be positive, got {args.speed}")
    if args.speed is not None and args.follow:
        raise UsageError("--speed replays a recorded run; drop it with --follow")
    if not args.follow:
        try:
            find_db(src)
        except FileNotFoundError as err:
            raise UsageError(f"{err}; pass --follow to wait for a run that is starting") from err
    try:
        run_dashboard(src, follow=args.follow, speed=args.speed)
    except SchemaError as err:
        raise UsageError(str(err)) from err
    return 0
