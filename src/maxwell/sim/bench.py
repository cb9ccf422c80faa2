"""`maxwell bench sim`: agent-ticks per second of the simulator, and how cost grows with N.

A population of N agents mixing every model (useful workers, parasites, liars,
bursty, slow-starting and memory-churning workers) runs T ticks of the real loop
(`SimRun`, so the same `economy.step`) on a host of `cpus` cores and as many slots.
Timed from the first tick to the last (building the population and the first
`economy.initial_state` are excluded and reported apart). Recording is off by
default (`record="none"`: the loop's sinks get nothing), or the ticks table only
(`"ticks"`), because writing 10⁵ agent rows a tick measures SQLite, not the loop.
Single-threaded: numpy's element-wise kernels use one core.
"""

from __future__ import annotations

import math
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np

from maxwell.config import Config, validate

# The mix, by share of the population (model, options).
MIX: tuple[tuple[str, float, dict[str, float]], ...] = (
    ("worker", 0.40, {"value_rate": 2e6, "claim_cpu_s": 0.05, "initial_bid": 1.0}),
    ("parasite", 0.15, {"bid": 2.0}),
    ("liar", 0.10, {"value_rate": 2e6, "claim_cpu_s": 0.05, "lie_factor": 1.5}),
    ("bursty", 0.15, {"value_rate": 2e6, "claim_cpu_s": 0.05, "burst_period_s": 10.0}),
    ("slow_start", 0.10, {"value_rate": 2e6, "claim_cpu_s": 0.05, "first_proof_cpu_s": 2.0}),
    ("churner", 0.10, {"value_rate": 1e6, "claim_cpu_s": 0.05,
                       "churn_bytes_per_cpu_s": 64 * 2**20}),
)


def bench_config(n_agents: int, ticks: int, cpus: int, seed: int = 1) -> Config:
    """A config of `n_agents` modelled agents in the bench's mix."""
    counts = [int(n_agents * share) for _, share, _ in MIX]
    counts[0] += n_agents - sum(counts)
    agents: list[dict[str, Any]] = []
    for (model, _, opts), count in zip(MIX, counts, strict=True):
        agents.extend({"name": f"{model}{j}", "model": model, "funds": 50.0, "options": opts}
                      for j in range(count))
    return validate({
        "run": {"policy": "maxwell", "duration_s": float(ticks), "tick_s": 1.0, "seed": seed},
        "market": {"slots": cpus, "bounty_pool": 1e12},
        "agents": agents,
    }, "bench config")


def bench_once(n_agents: int, ticks: int, cpus: int | None = None, record: str = "none",
               seed: int = 1) -> dict[str, Any]:
    from maxwell.sim.run import SimOptions, SimRun

    cpus = cpus if cpus is not None else max(2, n_agents // 100)
    t0 = time.perf_counter()
    cfg = bench_config(n_agents, ticks, cpus, seed)
    with tempfile.TemporaryDirectory(prefix="maxwell-bench-sim-") as tmp:
        out = None if record == "none" else Path(tmp)
        sim = SimRun(cfg, SimOptions(out_dir=out, record=record))
        started: list[float] = []
        sim.on_start = lambda: started.append(time.perf_counter())
        t1 = time.perf_counter()
        sim.run()
        t2 = time.perf_counter()
        t1 = started[0] if started else t1  # the loop proper: after spawning and hellos
        loop = sim.loop
        assert loop is not None
        done = loop.ticks
    wall = t2 - t1
    return {
        "agents": n_agents,
        "ticks": done,
        "cpus": cpus,
        "record": record,
        "setup_s": round(t1 - t0, 4),  # config, population, spawn events
        "run_s": round(wall, 4),
        "ms_per_tick": round(1000 * wall / max(done, 1), 4),
        "agent_ticks_per_s": round(n_agents * done / wall) if wall > 0 else None,
        "alive_at_end": int(np.sum(sim.world.alive)),
    }


def scaling(results: list[dict[str, Any]]) -> dict[str, Any]:
    """Slope of log(cost per tick) against log N, and cost ÷ (N log N) per N."""
    ns = np.array([r["agents"] for r in results], dtype=float)
    cost = np.array([r["ms_per_tick"] for r in results], dtype=float)
    out: dict[str, Any] = {
        "ms_per_tick_per_n_log_n": {
            int(n): round(c / (n * math.log(n)) * 1e6, 4) for n, c in zip(ns, cost, strict=True)
        },
    }
    if ns.size >= 2:
        out["loglog_slope"] = round(float(np.polyfit(np.log(ns), np.log(cost), 1)[0]), 3)
    return out
