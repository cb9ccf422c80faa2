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
from maxwell.run.parts import DEAD, RUNNING

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
    # Agents of one model differ (lognormal rates and bids, as real ones would), so
    # bids rarely tie and the auction's tie events stay rare.
    rng = np.random.default_rng([seed, 3])
    agents: list[dict[str, Any]] = []
    for (model, _, opts), count in zip(MIX, counts, strict=True):
        jitter = rng.lognormal(0.0, 0.3, count).tolist()
        for j, x in enumerate(jitter):
            o = {k: (v * x if k in ("value_rate", "bid", "initial_bid") else v)
                 for k, v in opts.items()}
            o.setdefault("initial_bid", round(x, 6)) if model != "parasite" else None
            agents.append({"name": f"{model}{j}", "model": model, "funds": 50.0, "options": o})
    return validate({
        "run": {"policy": "maxwell", "duration_s": float(ticks), "tick_s": 1.0, "seed": seed},
        # 10⁵ agents on one modelled desktop plant would be thousands of degrees: the
        # reserve saturates at r_max, which the bench keeps below most bids so that
        # the auction has winners every tick.
        "market": {"slots": cpus, "bounty_pool": 1e12, "r_max": 1.0},
        "agents": agents,
    }, "bench config")


class _TickTimer:
    """A sink that notes when each tick's record is written."""

    def __init__(self) -> None:
        self.at: list[float] = []
        self.cpu: list[float] = []

    def write(self, record: Any) -> None:
        if record.tick is not None:
            self.at.append(time.perf_counter())
            self.cpu.append(time.process_time())


def bench_once(n_agents: int, ticks: int, cpus: int | None = None, record: str = "none",
               seed: int = 1) -> dict[str, Any]:
    """One timed run. The first tick (every agent's hello, and the pauses of all the
    agents the first auction leaves out, each recorded as an event) is reported apart
    from the steady state, ticks 2…T, which `agent_ticks_per_s` is computed from."""
    from maxwell.sim.run import SimOptions, SimRun

    cpus = cpus if cpus is not None else max(2, n_agents // 100)
    t0 = time.perf_counter()
    cfg = bench_config(n_agents, ticks + 1, cpus, seed)
    timer = _TickTimer()
    with tempfile.TemporaryDirectory(prefix="maxwell-bench-sim-") as tmp:
        out = None if record == "none" else Path(tmp)
        sim = SimRun(cfg, SimOptions(out_dir=out, record=record, sinks=[timer]))
        started: list[float] = []
        sim.on_start = lambda: started.append(time.perf_counter())
        t1 = time.perf_counter()
        sim.run()
    assert sim.loop is not None
    loop_state = sim.loop.state
    at = timer.at
    first_s = at[0] - (started[0] if started else t1)
    steady = len(at) - 1
    wall = at[-1] - at[0] if steady > 0 else float("nan")
    cpu = timer.cpu[-1] - timer.cpu[0] if steady > 0 else float("nan")
    return {
        "agents": n_agents,
        "ticks": steady,
        "cpus": cpus,
        "record": record,
        "setup_s": round(t1 - t0, 4),  # config validation and the population
        "start_s": round((started[0] if started else t1) - t1, 4),  # spawn events
        "first_tick_s": round(first_s, 4),
        "run_s": round(wall, 4),
        "ms_per_tick": round(1000 * wall / max(steady, 1), 4),
        "agent_ticks_per_s": round(n_agents * steady / wall) if wall > 0 else None,
        # The same per CPU-second of this process: what one core would do if the
        # machine were not shared (it is single-threaded).
        "cpu_s": round(cpu, 4),
        "cpu_ms_per_tick": round(1000 * cpu / max(steady, 1), 4),
        "agent_ticks_per_cpu_s": round(n_agents * steady / cpu) if cpu > 0 else None,
        # The loop's view at the last tick (closing the membrane afterwards kills all).
        "alive_at_end": int(np.sum(loop_state != DEAD)),
        "running_at_end": int(np.sum(loop_state == RUNNING)),
    }


def scaling(results: list[dict[str, Any]]) -> dict[str, Any]:
    """Slope of log(CPU cost per tick) against log N, and cost ÷ (N log N) per N (ns)."""
    ns = np.array([r["agents"] for r in results], dtype=float)
    cost = np.array([r["cpu_ms_per_tick"] for r in results], dtype=float)
    out: dict[str, Any] = {
        "ms_per_tick_per_n_log_n": {
            int(n): round(c / (n * math.log(n)) * 1e6, 4) for n, c in zip(ns, cost, strict=True)
        },
    }
    if ns.size >= 2:
        out["loglog_slope"] = round(float(np.polyfit(np.log(ns), np.log(cost), 1)[0]), 3)
    return out
