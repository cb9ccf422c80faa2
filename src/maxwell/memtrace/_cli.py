"""Subcommands of maxwell.memtrace (registered by maxwell.cli): `maxwell bench memtrace`."""

from __future__ import annotations

import argparse
import json

from maxwell.common import Commands, UsageError


def register(commands: Commands) -> None:
    """Add this package's subcommands to the parser."""
    p = commands.bench.add_parser(
        "memtrace",
        help="exactness and cost of the memory-free tracer, with the floor",
        description=(
            "Two children (one registered, one not) write and free pages of known sizes by "
            "munmap and madvise(MADV_DONTNEED), and make getppid() calls, timed with nothing, "
            "the tracer, and empty programs on the same hooks attached; prints the counted vs "
            "expected bytes and the median cost per page and per syscall."
        ),
    )
    p.add_argument(
        "--events",
        type=int,
        default=4000,
        metavar="N",
        help="frees per run, half munmap, half madvise (default 4000)",
    )
    p.add_argument(
        "--runs",
        type=int,
        default=31,
        metavar="R",
        help="runs, states in rotating order; medians are reported (default 31)",
    )
    p.add_argument("--backend", choices=("auto", "ebpf", "rss"), default="auto")
    p.add_argument("--json", action="store_true", help="print one JSON object")
    p.set_defaults(func=_bench)


def _bench(args: argparse.Namespace) -> int:
    if args.events < 2:
        raise UsageError("--events must be at least 2 (half munmap, half madvise)")
    if args.runs < 1:
        raise UsageError("--runs must be at least 1")
    from maxwell.memtrace import MemtraceError, _bench

    try:
        result = _bench.run(
            events=args.events, runs=args.runs, prefer=args.backend
        )
    except MemtraceError as err:
        raise UsageError(f"{err} (or use --backend auto)") from err
    if args.json:
        print(json.dumps(result))
        return 0
    print(f"backend           {result['backend']} ({result['label']})")
    print(f"reason            {result['reason']}")
    print(f"keyed by          {result['keyed_by']}")
    print(f"frees per run     {result['events']} ({result['pages_per_block']} pages)")
    print(f"expected bytes    {result['expected_bytes']}")
    print(f"counted bytes     {result['counted_bytes']} (median of {result['runs']} runs)")
    print(f"exact             {result['exact']}")
    floor = "floor_ns_per_traced_event" in result
    for key, what in (
        ("traced_event", "per page the agent gives back (the free alone)"),
        ("traced_page_fault", "per page the agent faults in"),
        ("traced_page_life", "per page the agent writes and frees"),
        ("untraced_page", "per page another process writes and frees"),
        ("untraced_syscall", "per syscall that frees nothing"),
    ):
        iqr = result[f"overhead_ns_per_{key}_iqr"]
        extra = f"; floor {result[f'floor_ns_per_{key}']}" if floor else ""
        print(
            f"{key:18s} {result[f'overhead_ns_per_{key}']} ns {what} "
            f"(IQR {iqr[0]}..{iqr[1]}{extra})"
        )
    print(
        f"baseline          {result['baseline_ns_per_page']} ns per page, "
        f"{result['baseline_ns_per_syscall']} ns per syscall (nothing attached)"
    )
    load = result["load_avg_1min"]
    print(f"load average      {load} (before, after; workload {result['workload']})")
    return 0
