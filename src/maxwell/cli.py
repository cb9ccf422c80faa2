"""The `maxwell` command.

Each package registers its own subcommands (`register(commands)` in its
`_cli.py`), so this module only builds the parser, sets up logging and turns
errors into exit codes: 0 success, 1 failure, 2 bad input (config or usage).
Handlers import their heavy dependencies lazily so `maxwell --help` is fast.
"""

from __future__ import annotations

import argparse
import importlib
import sys
from collections.abc import Callable, Sequence

from maxwell.common import Commands, UsageError, add_root_args

# The packages that contribute subcommands, in the order they appear in --help.
COMMAND_MODULES = (
    "maxwell.run._cli",  # run, demo, baseline, config
    "maxwell.physics._cli",  # sensors, doctor
    "maxwell.control._cli",  # calibrate, bench control
    "maxwell.market._cli",  # bench auction, experiment poa
    "maxwell.experiments._cli",  # experiment list, compare, sweep
    "maxwell.membrane._cli",  # cleanup, bench membrane
    "maxwell.image._cli",  # image build, image show
    "maxwell.memtrace._cli",  # bench memtrace
    "maxwell.agents._cli",  # bench agents
    "maxwell.report._cli",  # report, export, baseline
    "maxwell.dashboard._cli",  # dashboard
    "maxwell.sim._cli",  # sim, bench sim
)

# Re-exported: the registry and the usage error live in maxwell.common.
__all__ = ["COMMAND_MODULES", "Commands", "UsageError", "add_root_args", "build_parser", "main"]

Handler = Callable[[argparse.Namespace], int]


def build_parser() -> argparse.ArgumentParser:
    from maxwell import __version__

    parser = argparse.ArgumentParser(
        prog="maxwell",
        description="A resource economy for agents: heat prices CPU, parasites starve.",
    )
    parser.add_argument("--version", action="version", version=f"maxwell {__version__}")
    top = parser.add_subparsers(dest="command", metavar="COMMAND")
    bench_p = top.add_parser("bench", help="benchmarks (print medians; --json for machines)")
    bench = bench_p.add_subparsers(dest="bench", metavar="TARGET")
    bench_p.set_defaults(func=_needs_sub(bench_p))
    exp_p = top.add_parser("experiment", help="experiments on the market and economy")
    experiment = exp_p.add_subparsers(dest="experiment", metavar="NAME")
    exp_p.set_defaults(func=_needs_sub(exp_p))
    commands = Commands(top=top, bench=bench, experiment=experiment)
    for name in COMMAND_MODULES:
        importlib.import_module(name).register(commands)
    return parser


def _needs_sub(p: argparse.ArgumentParser) -> Handler:
    def handler(_: argparse.Namespace) -> int:
        p.print_help(sys.stderr)
        return 2

    return handler


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    func: Handler | None = getattr(args, "func", None)
    if func is None:
        parser.print_help(sys.stderr)
        return 2
    try:
        return func(args)
    except UsageError as err:
        print(f"maxwell: error: {err}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("maxwell: interrupted", file=sys.stderr)
        return 130
    except BrokenPipeError:
        return 1


if __name__ == "__main__":
    # Run through the package module so exception classes are the package's own
    # (under `python -m maxwell.cli` this file is __main__, a second copy).
    from maxwell.cli import main as _main

    sys.exit(_main())
