"""`maxwell bench supervisor`: the live supervisor's own cost with many SDK agents.

Runs one live `maxwell` run of N copies of the SDK example agent (each sieves a
segment per tick and claims its primes) on the machine's slots, then reads the
run database: start-up time (run start to the last agent's hello), tick lateness
(how long after its deadline each tick ran; p50/p99/max), and the supervisor's
CPU as a share of one core (the steady-state loop, with and without claim
verification, and the whole run including start-up). The machine's load
average before and after is reported beside the figures, since a shared
machine disturbs them. Touches what a live run touches.
"""

from __future__ import annotations

import json
import os
import sys
import tempfile
from pathlib import Path
from typing import Any

from maxwell.common import UsageError

TARGETS = {"all_hello_s": 10.0, "tick_late_p99_ms": 100.0, "supervisor_cpu_pct_of_core": 3.0}


def sdk_agent_path() -> Path:
    """examples/sdk_agent.py of this checkout."""
    here = Path(__file__).resolve()
    for parent in here.parents:
        candidate = parent / "examples" / "sdk_agent.py"
        if candidate.is_file():
            return candidate
    raise UsageError("examples/sdk_agent.py not found (run from a checkout, or pass --agent FILE)")


def bench_config(n_agents: int, agent: Path, duration_s: float, slots: int | None,
                 grace_s: float, jail: str | None = None) -> Any:
    from maxwell.config import validate

    market: dict[str, Any] = {}
    if slots is not None:
        market["slots"] = slots
    extra: dict[str, Any] = {"jail": {"mode": jail}} if jail is not None else {}
    return validate({
        "run": {"policy": "maxwell", "duration_s": duration_s, "startup_grace_s": grace_s},
        "market": market,
        **extra,
        "agents": [{"name": f"sdk{i:03d}", "cmd": [sys.executable, str(agent)], "funds": 1000.0}
                   for i in range(n_agents)],
    }, source="bench supervisor")


def summarize(db: Path, n_agents: int) -> dict[str, Any]:
    """The bench's figures from a finished run's database."""
    from maxwell.record import RunReader

    with RunReader(db) as r:
        events = r.events()
        host = r.host()
        ticks = r.ticks()
    spawns = [e.t_s for e in events if e.kind == "spawn"]
    hellos: dict[str, float] = {}
    for e in events:
        if e.kind == "hello" and e.agent is not None:
            hellos.setdefault(e.agent, e.t_s)
    # Times are from the run's start (t = 0, just before the first spawn); the spawn
    # events are stamped once every agent has been started.
    return {
        "agents": n_agents,
        "ticks": len(ticks),
        "said_hello": len(hellos),
        "spawn_s": round(max(spawns), 3) if spawns else None,
        "all_hello_s": round(max(hellos.values()), 3) if len(hellos) == n_agents else None,
        "median_hello_s": round(sorted(hellos.values())[len(hellos) // 2], 3)
        if hellos else None,
        "tick_late_p50_ms": host.get("tick_late_p50_ms"),
        "tick_late_p99_ms": host.get("tick_late_p99_ms"),
        "tick_late_max_ms": host.get("tick_late_max_ms"),
        "supervisor_cpu_pct_of_core": host.get("supervisor_loop_cpu_pct_of_core"),
        "supervisor_cpu_pct_of_core_excl_verify":
            host.get("supervisor_loop_cpu_pct_of_core_excl_verify"),
        "supervisor_cpu_pct_of_core_whole_run": host.get("supervisor_cpu_pct_of_core"),
        "supervisor_verify_cpu_s": host.get("supervisor_verify_cpu_s"),
        "priority": host.get("priority"),
        "membrane": host.get("membrane_reason"),
        "jail": (host.get("jail") or {}).get("level") if isinstance(host.get("jail"), dict)
        else host.get("jail"),
        "db": str(db),
    }


def run_bench(n_agents: int, duration_s: float, out: Path | None, agent: Path | None = None,
              slots: int | None = None, grace_s: float = 5.0, jail: str | None = None
              ) -> dict[str, Any]:
    from maxwell.run.build import RunOptions, build_run

    if n_agents < 1:
        raise UsageError("--agents must be at least 1")
    if duration_s <= 0:
        raise UsageError("--duration must be positive")
    agent = agent if agent is not None else sdk_agent_path()
    if not agent.is_file():
        raise UsageError(f"--agent {agent}: no such file")
    cfg = bench_config(n_agents, agent, duration_s, slots, grace_s, jail)
    out_dir = out if out is not None else Path(tempfile.mkdtemp(prefix="maxwell-bench-sup-"))
    if (out_dir / "run.db").exists():
        raise UsageError(f"{out_dir}/run.db exists: choose another --out directory")
    load_before = os.getloadavg()
    db = build_run(cfg, RunOptions(policy="maxwell", duration_s=duration_s, out_dir=out_dir)).run()
    load_after = os.getloadavg()
    result = summarize(db, n_agents)
    result["slots"] = cfg.slots()
    result["duration_s"] = duration_s
    result["cpus"] = os.cpu_count()
    result["loadavg_1m_before"] = round(load_before[0], 2)
    result["loadavg_1m_after"] = round(load_after[0], 2)
    result["targets"] = TARGETS
    result["meets"] = {k: result.get(k) is not None and float(result[k]) <= v
                       for k, v in TARGETS.items()}
    return result


def format_bench(r: dict[str, Any]) -> str:
    def f(key: str, unit: str) -> str:
        v = r.get(key)
        ok = "" if key not in r["meets"] else (" ✓" if r["meets"][key] else " ✗ (target "
                                                 f"≤ {TARGETS[key]:g}{unit})")
        return f"{'—' if v is None else v}{unit}{ok}"

    return "\n".join([
        f"supervisor bench: {r['agents']} SDK agents on {r['slots']} slots, "
        f"{r['duration_s']:g} s, {r['ticks']} ticks ({r['cpus']} CPUs, load "
        f"{r['loadavg_1m_before']} → {r['loadavg_1m_after']})",
        f"  start-up: spawned in {r['spawn_s']} s; {r['said_hello']}/{r['agents']} said hello; "
        f"all by {f('all_hello_s', ' s')} (median {r['median_hello_s']} s)",
        f"  tick lateness: p50 {r['tick_late_p50_ms']} ms, p99 {f('tick_late_p99_ms', ' ms')}, "
        f"max {r['tick_late_max_ms']} ms",
        f"  supervisor CPU (steady loop): {f('supervisor_cpu_pct_of_core', ' %')} of a core "
        f"({r['supervisor_cpu_pct_of_core_excl_verify']} % without verifying claims; "
        f"{r['supervisor_cpu_pct_of_core_whole_run']} % over the whole run)",
        f"  priority {r['priority']}; database {r['db']}",
    ])


def cmd_bench_supervisor(args: Any) -> int:
    result = run_bench(args.agents, args.duration, Path(args.out) if args.out else None,
                       Path(args.agent) if args.agent else None, args.slots, args.grace,
                       args.jail)
    print(json.dumps(result) if args.json else format_bench(result))
    return 0
