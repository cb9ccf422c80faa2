"""Subcommands of maxwell.dashboard (registered by maxwell.cli): `maxwell dashboard`."""

from __future__ import annotations

import argparse
from pathlib import Path

from maxwell.common import Commands, UsageError


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
    p.add_argument("--screenshot", metavar="FILE.svg", default=None,
                   help="write an SVG of the dashboard (no terminal needed) and exit")
    p.add_argument("--tick", type=int, default=None, metavar="N",
                   help="with --screenshot: the tick to show (1-based; default the last)")
    p.add_argument("--size", default="160x48", metavar="WxH",
                   help="with --screenshot: terminal size in cells (default 160x48)")
    p.add_argument("--agent", default=None, help="with --screenshot: the agent to detail")
    p.set_defaults(func=_dashboard)


def _dashboard(args: argparse.Namespace) -> int:
    from maxwell.dashboard import run_dashboard
    from maxwell.record import SchemaError, find_db

    src = Path(args.run)
    runs = sorted(p.parent.name for p in src.glob("*/run.db")) if src.is_dir() else []
    if runs and not (src / "run.db").exists():
        # A `maxwell demo --out DIR` directory holds one run per policy.
        choices = " or ".join(str(src / r) for r in runs)
        raise UsageError(f"{src} holds several runs: pass one of them, {choices}")
    if args.speed is not None and args.speed <= 0:
        raise UsageError(f"--speed must be positive, got {args.speed}")
    if args.speed is not None and args.follow:
        raise UsageError("--speed replays a recorded run; drop it with --follow")
    if not args.follow:
        try:
            find_db(src)
        except FileNotFoundError as err:
            raise UsageError(f"{err}; pass --follow to wait for a run that is starting") from err
    if args.screenshot is not None:
        return _screenshot(args, src)
    try:
        run_dashboard(src, follow=args.follow, speed=args.speed)
    except SchemaError as err:
        raise UsageError(str(err)) from err
    return 0


def _screenshot(args: argparse.Namespace, src: Path) -> int:
    from maxwell.dashboard import save_screenshot
    from maxwell.record import SchemaError

    try:
        width, height = (int(v) for v in args.size.lower().split("x"))
    except ValueError as err:
        raise UsageError(f"--size takes WIDTHxHEIGHT in cells (e.g. 160x48), not {args.size!r}"
                         ) from err
    if width < 40 or height < 12:
        raise UsageError(f"--size {args.size} is too small: at least 40x12")
    if args.tick is not None and args.tick < 1:
        raise UsageError("--tick counts from 1")
    try:
        out = save_screenshot(src, args.screenshot, size=(width, height), select=args.agent,
                              tick=None if args.tick is None else args.tick - 1)
    except SchemaError as err:
        raise UsageError(str(err)) from err
    print(out)
    return 0
