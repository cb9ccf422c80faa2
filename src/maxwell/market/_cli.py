"""Subcommands of maxwell.market: `bench auction` and `experiment poa`.

`maxwell bench auction` clears a GSP auction of a million bid-units several times
and prints the median wall time (this shell reads the clock; the auction does not).
`maxwell experiment poa` measures GSP's price of anarchy on random instances (see
`maxwell.market.poa`). Heavy imports happen inside the handlers.
"""

from __future__ import annotations

import argparse
import json
import math

from maxwell.common import Commands, UsageError

TARGET_MS = 100.0


def register(commands: Commands) -> None:
    """Add this package's subcommands to the parser."""
    bench = commands.bench.add_parser(
        "auction",
        help="clear a GSP auction of 1,000,000 bid-units (median wall time)",
        description="Random bids (uniform on [0, 1] credits per core-second) against a"
        " reserve of 0.5; one run per case is a fresh auction with the same inputs.",
    )
    bench.add_argument("--json", action="store_true", help="print one JSON object")
    bench.add_argument("--units", type=int, default=1_000_000, help="bid-units (default 1e6)")
    bench.add_argument("--slots", type=int, default=1024, help="slots K (default 1024)")
    bench.add_argument("--runs", type=int, default=9, help="timed runs per case (default 9)")
    bench.add_argument("--seed", type=int, default=0, help="seed of bids and tie-breaks")
    bench.set_defaults(func=_bench)

    poa = commands.experiment.add_parser(
        "poa",
        help="price of anarchy of GSP on random instances, next to the proven bounds",
        description="Worst pure Nash equilibrium per instance (exhaustive, one LP per"
        " ranking of the K highest values) and Hedge (no-regret) bidders; reports the"
        " distribution of OPT/W. See docs/experiments.md.",
    )
    poa.add_argument("--json", action="store_true", help="print one JSON object")
    poa.add_argument("--instances", type=int, default=2000, help="random instances (2000)")
    poa.add_argument("--slots", type=int, default=3, help="slots K (default 3)")
    poa.add_argument("--agents", type=int, default=None, help="bidders (default K+1)")
    poa.add_argument("--seed", type=int, default=0, help="seed (default 0)")
    poa.add_argument("--rounds", type=int, default=300, help="Hedge rounds (default 300)")
    poa.add_argument("--setting", choices=("random-alpha", "deployed"), default="random-alpha",
                     help="random-alpha: one-unit bidders, random slot weights (default);"
                     " deployed: alpha = 1, several units, budgets, liquid welfare")
    poa.add_argument("--no-budgets", action="store_true",
                     help="deployed: lift the budgets (liquid welfare = welfare)")
    poa.add_argument("--grid", type=int, default=9,
                     help="deployed: bid levels per agent in [0, v] (default 9)")
    poa.set_defaults(func=_poa)


def _median(xs: list[float]) -> float:
    s = sorted(xs)
    mid = len(s) // 2
    return s[mid] if len(s) % 2 else 0.5 * (s[mid - 1] + s[mid])


def _bench(args: argparse.Namespace) -> int:
    import time

    import numpy as np

    from maxwell.market import gsp

    if args.units < 1:
        raise UsageError("--units must be >= 1")
    if args.slots < 1:
        raise UsageError("--slots must be >= 1")
    if args.runs < 1:
        raise UsageError("--runs must be >= 1")
    data_rng = np.random.default_rng(args.seed)
    units = int(args.units)
    # unit: one unit per bidder; multi: bidders asking for 1…7 units (4 on average).
    multi_q = data_rng.integers(1, 8, max(1, units // 4)).astype(np.int64)
    cases = {
        "unit": (data_rng.random(units), np.ones(units, dtype=np.int64)),
        "multi": (data_rng.random(multi_q.size), multi_q),
    }
    weights = np.ones(args.slots)
    results: dict[str, dict[str, float | int]] = {}
    for name, (bids, q) in cases.items():
        gsp(bids, q, 0.5, weights, np.random.default_rng(args.seed))  # warm caches
        times_ms, cpu_ms = [], []
        for run in range(args.runs):
            rng = np.random.default_rng(args.seed + run)
            c0, t0 = time.process_time(), time.perf_counter()
            gsp(bids, q, 0.5, weights, rng)
            times_ms.append((time.perf_counter() - t0) * 1000.0)
            cpu_ms.append((time.process_time() - c0) * 1000.0)
        med = _median(times_ms)
        results[name] = {
            "bidders": int(bids.size),
            "units": int(q.sum()),
            "median_ms": med,
            "min_ms": min(times_ms),
            "max_ms": max(times_ms),
            # CPU time of this process: what the wall time would be on an idle machine.
            "median_cpu_ms": _median(cpu_ms),
            "units_per_s": int(q.sum()) / (med / 1000.0),
        }
    head = results["unit"]
    out = {
        "units": head["units"],
        "slots": args.slots,
        "runs": args.runs,
        "median_ms": head["median_ms"],
        "median_cpu_ms": head["median_cpu_ms"],
        "units_per_s": head["units_per_s"],
        "target_ms": TARGET_MS,
        "meets_target": bool(head["median_ms"] <= TARGET_MS),
        "cases": results,
    }
    if args.json:
        print(json.dumps(out))
    else:
        for name, r in results.items():
            print(
                f"{name:>5}: {r['units']:>9,} units from {r['bidders']:>9,} bidders,"
                f" K={args.slots}:"
                f" median {r['median_ms']:.1f} ms (min {r['min_ms']:.1f}, max {r['max_ms']:.1f};"
                f" CPU {r['median_cpu_ms']:.1f} ms)"
                f" = {r['units_per_s'] / 1e6:.1f} M units/s"
            )
        verdict = "meets" if out["meets_target"] else "misses"
        print(f"target: {TARGET_MS:.0f} ms for the unit case; {verdict} it (median of {args.runs})")
    return 0


def _poa_deployed(args: argparse.Namespace) -> int:
    import time

    from maxwell.market.poa_deployed import MAX_PROFILES, run_deployed_poa

    agents = 3 if args.agents is None else args.agents
    if args.grid < 2:
        raise UsageError("--grid must be >= 2")
    if (args.grid * args.slots) ** agents > MAX_PROFILES:
        raise UsageError(f"--grid {args.grid}, --slots {args.slots}, --agents {agents}: "
                         f"more than {MAX_PROFILES} strategy profiles per instance; lower one")
    c0, t0 = time.process_time(), time.perf_counter()
    summary = run_deployed_poa(args.instances, args.slots, agents, args.grid, args.seed,
                               budgets=not args.no_budgets).summary()
    summary["elapsed_s"] = time.perf_counter() - t0
    summary["cpu_s"] = time.process_time() - c0
    if args.json:
        print(json.dumps({k: (None if isinstance(v, float) and not math.isfinite(v) else v)
                          for k, v in summary.items()}))
        return 0
    print(f"deployed setting (alpha = 1, multi-unit, budgets): {summary['instances']} "
          f"instances, K={args.slots}, n={agents}, grid {args.grid}, seed {args.seed}")
    print(f"  worst pure Nash  OPT_LW/LW: max {summary['max_ratio']:.4f}"
          f"  p50 {summary['p50_ratio']:.4f}  p99 {summary['p99_ratio']:.4f}"
          f"  ({summary['with_pure_equilibrium']} instances with a pure equilibrium)")
    print(f"  truthful bids    OPT_LW/LW: max {summary['truthful_max_ratio']:.4f}"
          f"  p50 {summary['truthful_p50_ratio']:.4f}")
    print(f"  method: {summary['method']}")
    print(f"  {summary['elapsed_s']:.1f} s ({summary['cpu_s']:.1f} s CPU)")
    return 0


def _poa(args: argparse.Namespace) -> int:
    import time

    from maxwell.market.poa import BOUNDS, MAX_ASSIGNMENTS, n_assignments, run_poa

    if args.instances < 1:
        raise UsageError("--instances must be >= 1")
    if args.slots < 1:
        raise UsageError("--slots must be >= 1")
    agents = args.slots + 1 if args.agents is None else args.agents
    if agents < 2:
        raise UsageError("--agents must be >= 2")
    if n_assignments(agents, args.slots) > MAX_ASSIGNMENTS:
        raise UsageError(
            f"--slots {args.slots} gives {n_assignments(agents, args.slots)} rankings per"
            f" instance to check (limit {MAX_ASSIGNMENTS}, i.e. K ≤ 7); lower --slots"
        )
    if args.rounds < 1:
        raise UsageError("--rounds must be >= 1")
    if args.setting == "deployed":
        return _poa_deployed(args)
    c0, t0 = time.process_time(), time.perf_counter()
    result = run_poa(
        instances=args.instances, slots=args.slots, agents=agents, seed=args.seed,
        rounds=args.rounds,
    )
    summary = result.summary()
    summary["elapsed_s"] = time.perf_counter() - t0
    summary["cpu_s"] = time.process_time() - c0
    if args.json:
        print(json.dumps({k: (None if isinstance(v, float) and not math.isfinite(v) else v)
                          for k, v in summary.items()}))
    else:
        print(f"GSP price of anarchy: {summary['instances']} instances, K={args.slots},"
              f" n={agents}, seed {args.seed}")
        print(f"  worst pure Nash  OPT/W: max {summary['max_ratio']:.4f}"
              f"  p50 {summary['p50_ratio']:.4f}  p99 {summary['p99_ratio']:.4f}"
              f"  ({100 * float(summary['inefficient_share']):.1f} % of instances have an"
              f" inefficient equilibrium)")
        print(f"  Hedge bidders    OPT/W: max {summary['learning_max_ratio']:.4f}"
              f"  p50 {summary['learning_p50_ratio']:.4f}  ({args.rounds} rounds)")
        print(f"  proven: pure ≤ {BOUNDS['pure_nash_upper_caragiannis_2011']}"
              f" (Caragiannis et al. 2011), ≤ {BOUNDS['pure_nash_upper_paes_leme_tardos_2010']}"
              f" (Paes Leme & Tardos 2010); ≥ {BOUNDS['pure_nash_lower_3_slots']} reachable"
              f" with 3 slots; coarse-correlated ≤"
              f" {BOUNDS['coarse_correlated_upper_caragiannis_2011']}")
        print(f"  method: {summary['method']}")
        print(f"  {summary['elapsed_s']:.1f} s ({summary['cpu_s']:.1f} s CPU)")
    return 0 if summary["within_proven_bound"] else 1
