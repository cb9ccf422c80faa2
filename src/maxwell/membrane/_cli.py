"""Subcommands of maxwell.membrane: `maxwell cleanup`, `maxwell bench membrane`."""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from maxwell.common import Commands, UsageError


def register(commands: Commands) -> None:
    """Add this package's subcommands to the parser."""
    p = commands.top.add_parser(
        "cleanup",
        help="kill and remove agents and cgroups left by dead supervisors",
        description="Thaw, kill and remove every maxwell/<pid>-<random> cgroup subtree whose "
        "supervisor is dead (and processes tagged by it). Live supervisors are never touched.",
    )
    p.add_argument("--json", action="store_true", help="print one JSON object")
    p.add_argument("--cgroup-root", type=Path, default=Path("/sys/fs/cgroup"), metavar="DIR")
    p.set_defaults(func=_cleanup)

    b = commands.bench.add_parser(
        "membrane",
        help="pause/resume latency of each membrane backend (other core loaded)",
    )
    b.add_argument("--json", action="store_true", help="print one JSON object")
    b.add_argument("--cycles", type=int, default=500, metavar="N")
    b.add_argument(
        "--backend", action="append", default=None, metavar="NAME",
        help="benchmark only this backend (repeatable; default: every available one)",
    )  # fmt: skip
    b.add_argument("--no-priority", action="store_true", help="do not raise our priority")
    b.add_argument(
        "--agent-nice", type=int, default=0, metavar="N",
        help="run the bench agent at this nice value (e.g. -10 on a machine shared with "
        "other work, so its queueing does not set the tail; default 0)",
    )  # fmt: skip
    b.add_argument(
        "--jail", default="auto", choices=["auto", "bwrap", "drop", "user", "off"],
        help="jail level for the bench agents (default: the best this machine allows)",
    )  # fmt: skip
    b.add_argument(
        "--spawn-samples", type=int, default=20, metavar="N",
        help="spawns timed bare and jailed for the spawn figure (0: skip)",
    )  # fmt: skip
    b.add_argument(
        "--jail-pair", action="store_true",
        help="also time a bare and a jailed agent in alternating blocks of cycles "
        "(both see the same load): the jail's cost on pause/resume",
    )  # fmt: skip
    b.add_argument("--cgroup-root", type=Path, default=Path("/sys/fs/cgroup"), metavar="DIR")
    b.set_defaults(func=_bench)


def _cleanup(args: argparse.Namespace) -> int:
    from maxwell.membrane import cleanup_stale

    report = cleanup_stale(args.cgroup_root)
    if args.json:
        print(json.dumps(report.to_dict()))
    else:
        print(
            f"removed {len(report.removed_supervisors)} dead supervisor(s), "
            f"{len(report.removed_cgroups)} cgroup(s); killed {len(report.killed_pids)} "
            f"process(es); left {len(report.live_supervisors)} live supervisor(s) alone"
        )
        for err in report.errors:
            print(f"error: {err}")
    return 1 if report.errors else 0


def _bench(args: argparse.Namespace) -> int:
    from maxwell.membrane import BACKEND_ORDER, MembraneError, _bench, priority_restored

    if args.cycles < 1:
        raise UsageError("--cycles must be >= 1 (e.g. --cycles 500)")
    for name in args.backend or []:
        if name not in (*BACKEND_ORDER, "microvm"):
            raise UsageError(f"unknown --backend {name!r}; choose from "
                             f"{', '.join(BACKEND_ORDER)}, microvm")
    if args.backend and "microvm" in args.backend:
        return _bench_microvm(args)
    try:
        with priority_restored():  # the bench raises it for its cycles only
            result = _bench.run(
                args.cycles, args.backend, args.cgroup_root, not args.no_priority,
                args.agent_nice, args.jail, args.spawn_samples, args.jail_pair,
            )
    except MembraneError as err:
        raise UsageError(str(err)) from err
    if args.json:
        print(json.dumps(result))
        return 0
    before, after = result["loadavg_1m"]
    print(
        f"priority: {result['priority']}; load: {result['load']}; "
        f"agent nice {result['agent_nice']}; "
        f"1-min load average {before} -> {after} on {result['cpus']} CPUs"
    )
    print(
        f"{'backend':10} {'pause (confirmed)':>20} {'stop (counter)':>20} {'resume':>20}"
        "  p50/p99/max µs"
    )
    for name, r in result["backends"].items():
        cols = [
            f"{r[k + '_p50_us']:.0f}/{r[k + '_p99_us']:.0f}/{r[k + '_max_us']:.0f}"
            for k in ("pause", "stop", "resume")
        ]
        print(f"{name:10} {cols[0]:>20} {cols[1]:>20} {cols[2]:>20}  {r['cycles']} cycles")
    for name, pr in (result.get("jail_pair") or {}).items():
        for side in ("bare", "jail"):
            r = pr[side]
            cols = [
                f"{r[k + '_p50_us']:.0f}/{r[k + '_p99_us']:.0f}/{r[k + '_max_us']:.0f}"
                for k in ("pause", "stop", "resume")
            ]
            label = f"{name} {side if side == 'bare' else pr['jail_level']}"
            print(f"{label:16} {cols[0]:>14} {cols[1]:>20} {cols[2]:>20}  paired, "
                  f"blocks of {pr['block']}")
    for name, why in result["skipped"].items():
        print(f"{name:10} skipped: {why}")
    sp = result.get("spawn")
    if sp:
        print(f"spawn ({sp['backend']}, {sp['samples']} each): bare {sp['bare_median_ms']} ms "
              f"median, jail {sp['jail_level']} {sp['jail_median_ms']} ms median "
              f"(p90 {sp['jail_p90_ms']}, max {sp['jail_max_ms']})")
    return 0


def _bench_microvm(args: argparse.Namespace) -> int:
    """`--backend microvm`: boot, pause/resume by freeze and by QMP, per-tick cost."""
    from maxwell.membrane import MembraneError, _bench, _bench_microvm, priority_restored

    others = [n for n in args.backend if n != "microvm"]
    try:
        with priority_restored():
            vm = _bench_microvm.run(args.cycles, not args.no_priority,
                                    agent_nice=args.agent_nice)
            procs = (_bench.run(args.cycles, others, args.cgroup_root, not args.no_priority,
                                args.agent_nice, args.jail, 0) if others else None)  # fmt: skip
    except MembraneError as err:
        raise UsageError(str(err)) from err
    if args.json:
        print(json.dumps({"microvm": vm, "process": procs}))
        return 0
    print(f"microvm: {vm['reason']}")
    print(f"boot (spawn -> agent started) s: {vm['boot_s']}; idle VMM CPU "
          f"{vm['idle_vmm_cpu_pct']} % of a core; 1-min load {vm['loadavg_1m']}")
    for m, r in vm["pause"].items():
        print(f"  {m:6} pause {r['pause_p50_us']:.0f}/{r['pause_p99_us']:.0f}/"
              f"{r['pause_max_us']:.0f} µs, resume {r['resume_p50_us']:.0f}/"
              f"{r['resume_p99_us']:.0f}/{r['resume_max_us']:.0f} µs (p50/p99/max), guest seen "
              f"running {r['resume_seen_p50_us']:.0f} µs p50; {r['cycles']} cycles, "
              f"{r['moved_after_confirm']}/{r['verified']} moved after confirm")
    t = vm["tick_us"]
    print(f"  per tick (alive+usage+set_cpu): VM {t['microvm']['p50_us']:.0f} µs p50, "
          f"process {t['process']['p50_us']:.0f} µs p50; default pause {vm['default_pause']}, "
          f"faster p99 here {vm['faster_p99']}")
    if procs is not None:
        for name, r in procs["backends"].items():
            print(f"  {name:8} pause {r['pause_p50_us']:.0f}/{r['pause_p99_us']:.0f} µs, "
                  f"resume {r['resume_p50_us']:.0f}/{r['resume_p99_us']:.0f} µs (p50/p99)")
    return 0
