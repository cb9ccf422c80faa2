"""Subcommands of maxwell.agents (registered by maxwell.cli): `maxwell bench agents`.

The benchmark measures what the agents package costs the supervisor and what
the Scientist produces: sieve throughput, verification cost per claim (spot
check and full re-sieve), Endpoint cost per line (valid and hostile) and an
idle poll. Medians over --repeat runs; wall-clock figures for a shared,
noisy machine.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import time

from maxwell.common import Commands, UsageError


def register(commands: Commands) -> None:
    """Add this package's subcommands to the parser."""
    p = commands.bench.add_parser(
        "agents", help="sieve rate, verification cost, endpoint cost per line")
    p.add_argument("--repeat", type=int, default=5, help="runs per figure (median reported)")
    p.add_argument("--json", action="store_true", help="print one JSON object")
    p.set_defaults(func=_bench)


def _bench(args: argparse.Namespace) -> int:
    if args.repeat < 1:
        raise UsageError("--repeat must be at least 1")
    results = bench(args.repeat)
    if args.json:
        print(json.dumps(results))
    else:
        for key, value in results.items():
            print(f"{key:32s} {value:,.3f}" if isinstance(value, float) else f"{key:32s} {value}")
    return 0


def bench(repeat: int) -> dict[str, float | int | str]:
    import tempfile
    from pathlib import Path

    import numpy as np

    from maxwell.agents.endpoint import Endpoint
    from maxwell.agents.protocol import WorkClaim
    from maxwell.agents.sieve import evidence_sample, sieve_segment
    from maxwell.agents.verify import Verifier

    seg = 1 << 23
    lo0 = 10**9
    sieve_s: list[float] = []
    spot_ms: list[float] = []
    resieve_ms: list[float] = []
    for i in range(repeat):
        lo = lo0 + i * seg
        t0 = time.perf_counter()
        primes = sieve_segment(lo, lo + seg)
        sieve_s.append(time.perf_counter() - t0)
        claim = WorkClaim("b", "primes", int(primes.size),
                          {"lo": lo, "hi": lo + seg, "sample": evidence_sample(primes, 8)})
        for p, sink in ((0.0, spot_ms), (1.0, resieve_ms)):
            v = Verifier(p, np.random.default_rng(i))
            t0 = time.perf_counter()
            verdict = v.verify(claim)
            sink.append((time.perf_counter() - t0) * 1e3)
            assert verdict.accepted, verdict

    valid_us: list[float] = []
    garbage_us: list[float] = []
    idle_us: list[float] = []
    with tempfile.TemporaryDirectory(prefix="maxwell-bench-") as d:
        import socket

        ep = Endpoint(Path(d), max_strikes=10**9)
        try:
            env = ep.register("bench")
            for _ in range(repeat):
                for payload, sink in ((b'{"type":"bid","price":1.5,"slots":2}\n', valid_us),
                                      (b'{"type":"bid","price":NaN,"slots":\n', garbage_us)):
                    c = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
                    c.connect(env["MAXWELL_ENDPOINT"])
                    c.sendall(json.dumps({"type": "hello", "token": env["MAXWELL_TOKEN"]})
                              .encode() + b"\n")
                    ep.poll()
                    n = 2000
                    c.sendall(payload * n)
                    before = ep.stats["lines"]
                    t0 = time.perf_counter()
                    while ep.stats["lines"] - before < n:
                        ep.poll()
                    sink.append((time.perf_counter() - t0) / n * 1e6)
                    c.close()
                    ep.poll()
                t0 = time.perf_counter()
                for _ in range(1000):
                    ep.poll()
                idle_us.append((time.perf_counter() - t0) / 1000 * 1e6)
        finally:
            ep.close()
    med = statistics.median
    return {
        "repeat": repeat,
        "sieve_numbers_per_s": seg / med(sieve_s),
        "verify_spotcheck_ms": med(spot_ms),
        "verify_resieve_2p23_ms": med(resieve_ms),
        "endpoint_valid_line_us": med(valid_us),
        "endpoint_garbage_line_us": med(garbage_us),
        "endpoint_idle_poll_us": med(idle_us),
        "python": sys.version.split()[0],
    }
