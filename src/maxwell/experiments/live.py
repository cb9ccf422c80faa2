"""The ladder on the real machine: each baseline as a `maxwell.run.parts.Policy`.

Every live baseline keeps the economy's books in a shadow ledger (the `cfs`
policy's `economy.step` with `enforce=False`, so balances and prices are recorded
for comparison) and applies its own rule through the run's membrane: `nice`
sets nice levels on every process of an agent, `weights` the agent cgroup's
cpu.shares / cpu.weight, `watchdog:N` kills, `thermal-cap` sets CPU quotas
(the cap split over the living agents by the cores each can use), `oracle`
pauses the parasites and quotas the useful agents to their static shares.
`maxwell` is the run's own `economy.step` enforcing; the ablations are those of
`maxwell.experiments.policies` (the same objects as in simulation).

`compare_live` runs the (policy, seed) pairs interleaved (ABAB…), each a real
`maxwell run` in its own directory, measures the CPU that other processes used
meanwhile (/proc/stat minus the run's agents and supervisor) and flags a run
whose foreign CPU exceeds `DISTURBED_SHARE` of the machine. Touches processes,
cgroups and the run databases through `maxwell.run`.
"""

from __future__ import annotations

import os
import tempfile
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from maxwell.common import UsageError
from maxwell.experiments.metrics import RunResult
from maxwell.experiments.scenario import Scenario

DISTURBED_SHARE = 0.10  # foreign CPU above this share of the machine flags the run
QUICK_DURATION_S = 20.0


def _busy_cpu_s(procfs: str = "/proc") -> float:
    """Machine-wide busy CPU seconds so far (all CPUs, /proc/stat's first line)."""
    with open(os.path.join(procfs, "stat")) as f:
        parts = f.readline().split()
    vals = [int(x) for x in parts[1:]]
    idle = vals[3] + (vals[4] if len(vals) > 4 else 0)
    hz = os.sysconf("SC_CLK_TCK")
    return (sum(vals[:8]) - idle) / hz


def run_live(scn: Scenario, policy: str, seed: int, duration_s: float, out_dir: Path,
             on_tick: Callable[[float, float], None] | None = None) -> RunResult:
    """One live repetition; returns the ladder's metrics read back from its database."""
    from maxwell.experiments.metrics import metrics_from_db
    from maxwell.experiments.policies import BaselinePolicy
    from maxwell.experiments.simrun import run_config
    from maxwell.record import RunReader
    from maxwell.run.build import LiveRun, RunOptions

    cfg = run_config(scn, policy, seed, scn.live_config_data(), duration_s)
    cast = scn.cast()
    cpus = float(os.cpu_count() or 1)
    box: dict[str, BaselinePolicy] = {}

    class _Run(LiveRun):
        def _build(self, stack: Any, priority: str) -> Any:
            loop, rec, host = super()._build(stack, priority)
            host["baseline"] = policy
            host["scenario"] = scn.name
            box["p"] = BaselinePolicy(policy, loop.parts.policy, scn, cast, cpus)
            loop.parts.policy = box["p"]
            return loop, rec, host

    opts = RunOptions(policy=cfg.run.policy, duration_s=duration_s, out_dir=out_dir,
                      on_tick=on_tick)
    busy0, t0 = _busy_cpu_s(), os.times().elapsed
    db = _Run(cfg, opts).run()
    busy1, t1 = _busy_cpu_s(), os.times().elapsed
    pol = box["p"]
    stopped = [cast.names[i] for i in range(cast.n) if pol.stopped[i]]
    r = metrics_from_db(db, scn, policy, seed, stopped=stopped)
    with RunReader(db) as reader:
        host = reader.host()
        agent_cpu = sum(a.cpu_s for a in _last_rows(reader))
    own = float(host.get("supervisor_cpu_s") or 0.0)
    foreign = max((busy1 - busy0) - agent_cpu - own, 0.0)
    share = foreign / max((t1 - t0) * cpus, 1e-9)
    r.extra.update(foreign_cpu_s=round(foreign, 3), foreign_cpu_share=round(share, 4),
                   disturbed=bool(share > DISTURBED_SHARE), policy_cpu_s=round(pol.cpu_s, 4))
    return r


def _last_rows(reader: Any) -> list[Any]:
    last: dict[str, Any] = {}
    for row in reader.agent_ticks():
        last[row.agent] = row
    return list(last.values())


def compare_live(scn: Scenario, policies: Sequence[str], seeds: Sequence[int], full: bool,
                 progress: Callable[[int, int, str], None] | None = None,
                 out_dir: Path | None = None) -> dict[str, Any]:
    from maxwell.experiments.compare import run_order, summarize

    if not scn.live_capable:
        scn.live_config_data()  # raises the ConfigError naming what is missing
    if not policies:
        raise UsageError("--policies: name at least one policy")
    duration = scn.doc.run.duration_s if full else (
        scn.doc.scenario.live_duration_s or QUICK_DURATION_S)
    root = out_dir if out_dir is not None else Path(tempfile.mkdtemp(prefix="maxwell-live-"))
    order = run_order(policies, seeds)
    runs: list[RunResult] = []
    for k, (p, s) in enumerate(order):
        d = root / "runs" / f"{p.replace(':', '-')}-seed{s}"
        if progress is not None:
            progress(k, len(order), f"live {p} seed {s}")
        runs.append(run_live(scn, p, s, duration, d))
    if progress is not None:
        progress(len(order), len(order), "live done")
    result = summarize(scn.name, "live", policies, seeds, runs, extra={
        "duration_s": duration,
        "quick": not full,
        "disturbed_runs": sum(1 for r in runs if r.extra.get("disturbed")),
        "disturbed_threshold": DISTURBED_SHARE,
        "runs_dir": str(root),
    })
    energy = sorted({str(r.extra.get("energy_source")) for r in runs})
    temp = sorted({str(r.extra.get("temp_source")) for r in runs})
    result["labels"]["energy"] = ", ".join(energy)
    result["labels"]["temperature"] = ", ".join(temp)
    result["labels"]["mechanism_cpu_s"] = "supervisor CPU seconds of the run (measured)"
    return result


__all__ = ["compare_live", "run_live"]
