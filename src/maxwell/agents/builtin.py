"""The command lines of the built-in agents, built from a config's ``[[agents]]`` options.

`builtin_argv("scientist", {"workers": 2})` gives
``[sys.executable, "-m", "maxwell.agents.scientist", "--workers", "2"]``. `OPTIONS`
is the single source of each option's type, default, bounds and meaning: the
agents' own argument parsers take their defaults from it, and the docs list it.
Keys the supervisor itself consumes (name, builtin, cmd, funds, ...) must be
removed by the caller; anything else unknown is an error naming the key.
Pure: no I/O.
"""

from __future__ import annotations

import math
import sys
from collections.abc import Callable, Mapping
from dataclasses import dataclass


class AgentOptionError(ValueError):
    """An [[agents]] option the built-in agent does not accept (message names key and fix)."""


@dataclass(frozen=True)
class Option:
    type: type  # int, float or bool
    default: int | float | bool
    lo: float
    hi: float
    help: str


MiB = 1 << 20

OPTIONS: dict[str, dict[str, Option]] = {
    "scientist": {
        "workers": Option(int, 1, 1, 64, "sieving processes"),
        "slots": Option(int, 0, 0, 1024, "slot-units to bid for (0: one per worker)"),
        "initial_bid": Option(float, 0.5, 0, 1e12,
                              "credits per core-second bid until its verified rate is known"),
        "margin": Option(float, 0.8, 0.01, 10,
                         "fraction of its expected value per core-second that it bids"),
        "segment_size": Option(int, 1 << 23, 1000, 1 << 24,
                               "numbers per sieved segment (one work claim each)"),
        "sample_size": Option(int, 8, 1, 64, "evidence primes sent with each claim"),
        "start": Option(int, 0, 0, 1 << 40, "first number to sieve"),
        "stop": Option(int, 0, 0, 1 << 40, "stop (and exit) after this number; 0: never"),
    },
    "miner": {
        "workers": Option(int, 1, 1, 64, "hashing processes"),
        "slots": Option(int, 0, 0, 1024, "slot-units to bid for (0: one per worker)"),
        "bid": Option(float, 2.0, 0, 1e12, "fixed bid, credits per core-second"),
        "churn_bytes_per_s": Option(int, 64 * MiB, 0, 1 << 40,
                                    "bytes mapped, touched and released per second (all workers)"),
        "chunk_bytes": Option(int, 4 * MiB, 4096, 1 << 32, "bytes per mmap/munmap cycle"),
        "claim_hashes": Option(bool, True, 0, 1,
                               "send its hash counts as (unverifiable, unpaid) work claims"),
    },
}


def check_options(kind: str, options: Mapping[str, object]) -> dict[str, int | float | bool]:
    """Validated options (given keys only). Raises AgentOptionError naming the bad key."""
    if kind not in OPTIONS:
        raise AgentOptionError(
            f"unknown builtin agent {kind!r}: use one of {', '.join(sorted(OPTIONS))}")
    spec = OPTIONS[kind]
    out: dict[str, int | float | bool] = {}
    for key, value in options.items():
        opt = spec.get(key)
        if opt is None:
            raise AgentOptionError(
                f"unknown option {key!r} for builtin agent {kind!r}: accepted keys are "
                f"{', '.join(spec)}")
        where = f"option {key!r} of builtin agent {kind!r}"
        if opt.type is bool:
            if not isinstance(value, bool):
                raise AgentOptionError(f"{where} must be true or false, not {value!r}")
            out[key] = value
            continue
        if isinstance(value, bool) or not isinstance(value, int | float):
            raise AgentOptionError(f"{where} must be a number, not {value!r}")
        if opt.type is int and not isinstance(value, int):
            raise AgentOptionError(f"{where} must be an integer, not {value!r}")
        if not math.isfinite(value) or not opt.lo <= value <= opt.hi:
            raise AgentOptionError(f"{where} must be in [{opt.lo:g}, {opt.hi:g}], not {value!r}")
        out[key] = opt.type(value)
    return out


def builtin_argv(kind: str, options: Mapping[str, object]) -> list[str]:
    """The command that starts a built-in agent with these options."""
    checked = check_options(kind, options)
    argv = [sys.executable, "-m", f"maxwell.agents.{kind}"]
    for key, value in checked.items():
        flag = "--" + key.replace("_", "-")
        if isinstance(value, bool):
            argv.append(flag if value else "--no-" + key.replace("_", "-"))
        else:
            argv += [flag, repr(value) if isinstance(value, float) else str(value)]
    return argv


def add_arguments(parser: object, kind: str) -> None:
    """Add OPTIONS[kind] to an argparse parser (the agents' own command lines)."""
    import argparse

    assert isinstance(parser, argparse.ArgumentParser)
    for key, opt in OPTIONS[kind].items():
        flag = "--" + key.replace("_", "-")
        if opt.type is bool:
            parser.add_argument(flag, action=argparse.BooleanOptionalAction,
                                default=opt.default, help=opt.help)
        else:
            parser.add_argument(flag, type=_bounded(key, opt), default=opt.default,
                                help=f"{opt.help} (default {opt.default})")


def _bounded(key: str, opt: Option) -> Callable[[str], int | float]:
    import argparse

    def parse(text: str) -> int | float:
        try:
            value = opt.type(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"{key} must be a {opt.type.__name__}") from None
        if not (math.isfinite(value) and opt.lo <= value <= opt.hi):
            raise argparse.ArgumentTypeError(f"{key} must be in [{opt.lo:g}, {opt.hi:g}]")
        return value  # type: ignore[no-any-return]

    return parse
