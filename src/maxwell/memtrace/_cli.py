"""Subcommands of maxwell.memtrace (registered by maxwell.cli): `maxwell bench memtrace`."""

from __future__ import annotations

import argparse
import json

from maxwell.cli import Commands, UsageError


def register(commands: Commands) -> None:
    """Add this package's subcommands to the parser."""
    p = commands.bench.add_parser(
        "memtrace",
        help="exactness and per-call overhead of the memory-free tracer",
        description=(
            "A child does mmap+munmap and madvise(MADV_DONTNEED) of known sizes, timed with "
            "and without the tracer attached; prints the counted vs expected bytes and the "
            "median overhead per traced call."
        ),
    )
    p.add_argument(
        "--events",
        type=int,
        default=4000,
        metavar="N",
        help="traced calls per run, half munmap, half madvise (default 4000)",
    )
    p.add_argument(
        "--runs",
        type=int,
        default=31,
        metavar="R",
        help="alternating untraced/traced runs; the median is reported (default 31)",
    )
    p.add_argument("--backend", choices=("auto", "ebpf", "rss"), default="auto")
    p.add_argument(
        "--design",
        choices=("auto", "raw", "tp"),
        default="auto",
        help="eBPF attachment: raw (BTF raw tracepoint sys_exit) or tp "
        "(syscalls:sys_exit_munmap/madvise tracepoints; needs tracefs)",
    )
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
            events=args.events, runs=args.runs, prefer=args.backend, design=args.design
        )
    except MemtraceError as err:
        raise UsageError(f"{err} (or use --backend auto)") from err
    if args.json:
        print(json.dumps(result))
        return 0
    print(f"backend           {result['backend']} ({result['label']}; design {result['design']})")
    print(f"reason            {result['reason']}")
    print(f"keyed by          {result['keyed_by']}")
    print(f"events per run    {result['events']}")
    print(f"expected bytes    {result['expected_bytes']}")
    print(f"counted bytes     {result['counted_bytes']} (median of {result['runs']} runs)")
    print(f"exact             {result['exact']}")
    iqr = result["overhead_ns_per_event_iqr"]
    print(
        f"overhead          {result['overhead_ns_per_event']} ns per event "
        f"(median of {result['runs']} runs, IQR {iqr[0]}..{iqr[1]}; workload {result['workload']})"
    )
    print(
        f"per traced call   {result['overhead_ns_per_traced_call']} ns (the mmap's share removed)"
    )
    print(f"other syscalls    {result['overhead_ns_per_other_syscall']} ns added per call (median)")
    return 0
