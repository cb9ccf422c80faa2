"""The ladder on the real machine: each baseline as a `maxwell.run.parts.Policy`.

Every live baseline keeps the economy's books in a shadow ledger (the `cfs`
policy's `economy.step` with `enforce=False`, so balances and prices are recorded
for comparison) and applies its own rule through the run's membrane: `nice`
sets nice levels on every process of an agent, `weights` the agent cgroup's
cpu.shares / cpu.weight, `watchdog:N` kills, `thermal-cap` sets CPU quotas
(the cap split over the living agents by the cores each can use), `oracle`
pauses the parasites and quotas the useful agents to their static shares.
`maxwell` is the run's own `economy.step` enforcing; `maxwell-lambda0` and
`maxwell-no-reserve` change the config (λ = 0; r_max = r_min); `maxwell-pause`
pauses a bankrupt agent for good instead of killing it. `maxwell-no-verify`
needs a channel that pays unverified claims and is simulation-only.

`compare_live` runs the (policy, seed) pairs interleaved (ABAB…), each a real
`maxwell run` in its own directory, measures the CPU that other processes used
meanwhile (/proc/stat minus the run's agents and supervisor) and flags a run
whose foreign CPU exceeds `DISTURBED_SHARE` of the machine. Touches processes,
cgroups and the run databases through `maxwell.run`.
"""

from __future__ import annotations

import dataclasses
import math
import os
import tempfile
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from maxwell import economy
from maxwell.common import UsageError
from maxwell.experiments.policies import ThermalCap, TickView, oracle_shares
from maxwell.experiments.scenario import Cast, Scenario

DISTURBED_SHARE = 0.10  # foreign CPU above this share of the machine flags the run
SIM_ONLY = ("maxwell-no-verify",)
QUICK_DURATION_S = 20.0


class LivePolicy:
    """A baseline on the shadow economy (see the module doc)."""

    def __init__(self, name: str, shadow: Any, scn: Scenario, cast: Cast, cpus: int) -> None:
        from maxwell.run.policy import EconomyPolicy

        self.name = name
        self.inner = EconomyPolicy(dataclasses.replace(shadow.params, enforce=False),
                                   shadow.rng)
        self.enforcing = shadow  # for maxwell-pause
        self.cast, self.cpus = cast, cpus
        n = cast.n
        self.last_output_s = np.zeros(n)
        self.stopped = np.zeros(n, dtype=bool)
        self.cap: ThermalCap | None = None
        if name == "thermal-cap":
            self.cap = ThermalCap(scn, cast, cpus, 0)
        self.shares = oracle_shares(scn, cast, cast.units_per_core_s, cpus)
        top = float(cast.declared_value.max()) if n and cast.declared_value.max() > 0 else 1.0
        self.weights = np.maximum(cast.declared_value / top, 2.0 / 1024.0)

    def initial(self) -> tuple[Any, Sequence[Any]]:
        if self.name == "maxwell-pause":
            return self.enforcing.initial()  # type: ignore[no-any-return]
        return self.inner.initial()

    def decide(self, state: Any, obs: economy.Observation) -> tuple[Any, Any]:
        from maxwell.run.parts import Decision

        n = self.cast.n
        none = np.zeros(n, dtype=bool)
        if self.name == "maxwell-pause":
            state, d = self.enforcing.decide(state, obs)
            self.stopped |= np.asarray(d.kill, dtype=bool)
            run = np.asarray(d.economy.run, dtype=bool) & ~self.stopped
            return state, Decision(economy=d.economy, kill=none, run=run,
                                   cores=np.where(run, d.economy.cores, 0.0))
        state, d = self.inner.decide(state, obs)
        alive = np.asarray(obs.alive, dtype=bool)
        if self.name == "nice":
            return state, Decision(economy=d.economy, kill=none,
                                   nice=self.cast.nice.astype(np.int64))
        if self.name == "weights":
            return state, Decision(economy=d.economy, kill=none, weight=self.weights)
        if self.name.startswith("watchdog"):
            n_s = float(self.name.partition(":")[2] or 10)
            work = np.asarray(obs.work_units)
            self.last_output_s = np.where(work > 0, obs.t_s, self.last_output_s)
            kill = alive & (obs.t_s - self.last_output_s >= n_s - 1e-9)
            return state, Decision(economy=d.economy, kill=kill)
        if self.cap is not None:
            view = TickView(obs.t_s, obs.dt_s, obs.temp_c, obs.power_w, obs.energy_j, alive,
                            np.asarray(obs.cpu_s), np.asarray(obs.bytes_freed),
                            np.asarray(obs.work_units), np.asarray(obs.frauds),
                            np.asarray(obs.bid_price), np.asarray(obs.bid_slots))
            cap = self.cap.decide(view).cap_cores
            want = np.where(alive, self.cast.workers, 0.0)
            cores = cap * want / max(float(want.sum()), 1e-9)
            return state, Decision(economy=d.economy, kill=none, run=alive,
                                   cores=np.where(alive, np.minimum(cores, self.cast.workers),
                                                  0.0))
        if self.name == "oracle":
            run = self.shares > 0
            return state, Decision(economy=d.economy, kill=none, run=run,
                                   cores=np.where(run, self.shares, 0.0))
        return state, Decision(economy=d.economy, kill=none)  # cfs


def _busy_cpu_s(procfs: str = "/proc") -> float:
    """Machine-wide busy CPU seconds so far (all CPUs, /proc/stat's first line)."""
    with open(os.path.join(procfs, "stat")) as f:
        parts = f.readline().split()
    vals = [int(x) for x in parts[1:]]
    idle = vals[3] + (vals[4] if len(vals) > 4 else 0)
    hz = os.sysconf("SC_CLK_TCK")
    return (sum(vals[:8]) - idle) / hz


def live_config(scn: Scenario, policy: str, seed: int, duration_s: float) -> Any:
    """The validated run config of one live repetition."""
    from maxwell.config import validate

    data = scn.live_config_data()
    data.setdefault("run", {})
    data["run"].update(seed=seed, duration_s=duration_s,
                       policy="maxwell" if policy in ("maxwell", "maxwell-lambda0",
                                                      "maxwell-no-reserve") else "cfs")
    if policy == "maxwell-pause":
        data["run"]["policy"] = "maxwell"
    if policy == "maxwell-lambda0":
        data["market"]["landauer_lambda"] = 0.0
    if policy == "maxwell-no-reserve":
        data["market"]["r_max"] = data["market"]["r_min"]
    return validate(data, f"{scn.source} (live, {policy})")


def run_live(scn: Scenario, policy: str, seed: int, duration_s: float, out_dir: Path,
             on_tick: Callable[[float, float], None] | None = None) -> dict[str, Any]:
    """One live repetition; returns the ladder's metrics read back from its database."""
    from maxwell.experiments.metrics import metrics_from_db
    from maxwell.record import RunReader
    from maxwell.run.build import LiveRun, RunOptions

    cfg = live_config(scn, policy, seed, duration_s)
    cast = scn.cast()
    cpus = os.cpu_count() or 1

    class _Run(LiveRun):
        def _build(self, stack: Any, priority: str) -> Any:
            loop, rec, host = super()._build(stack, priority)
            host["baseline"] = policy
            host["scenario"] = scn.name
            if policy not in ("maxwell", "maxwell-lambda0", "maxwell-no-reserve"):
                loop.parts.policy = LivePolicy(policy, loop.parts.policy, scn, cast, cpus)
            return loop, rec, host

    opts = RunOptions(policy=cfg.run.policy, duration_s=duration_s, out_dir=out_dir,
                      on_tick=on_tick)
    busy0, t0 = _busy_cpu_s(), os.times().elapsed
    db = _Run(cfg, opts).run()
    busy1, t1 = _busy_cpu_s(), os.times().elapsed
    m = metrics_from_db(db, scn)
    with RunReader(db) as r:
        host = r.host()
        agent_cpu = sum(a.cpu_s for a in _last_rows(r))
    own = float(host.get("supervisor_cpu_s") or 0.0)
    foreign = max((busy1 - busy0) - agent_cpu - own, 0.0)
    share = foreign / max((t1 - t0) * cpus, 1e-9)
    m.update(foreign_cpu_s=round(foreign, 3), foreign_cpu_share=round(share, 4),
             disturbed=bool(share > DISTURBED_SHARE), db=str(db), seed=seed, policy=policy,
             mechanism_cpu_s=own)
    return m


def _last_rows(reader: Any) -> list[Any]:
    last: dict[str, Any] = {}
    for row in reader.agent_ticks():
        last[row.agent] = row
    return list(last.values())


def compare_live(scn: Scenario, policies: Sequence[str], seeds: Sequence[int], full: bool,
                 progress: Callable[[int, int, str], None] | None = None,
                 out_dir: Path | None = None) -> dict[str, Any]:
    from maxwell.experiments.compare import run_order, summarize
    from maxwell.experiments.world import RunResult

    if not scn.live_capable:
        scn.live_config_data()  # raises the ConfigError naming what is missing
    skipped = [p for p in policies if p in SIM_ONLY]
    run_policies = [p for p in policies if p not in SIM_ONLY]
    if not run_policies:
        raise UsageError(f"--policies: {', '.join(skipped)} run only simulated (add --sim)")
    duration = scn.doc.run.duration_s if full else (
        scn.doc.scenario.live_duration_s or QUICK_DURATION_S)
    root = out_dir if out_dir is not None else Path(tempfile.mkdtemp(prefix="maxwell-live-"))
    order = run_order(run_policies, seeds)
    runs: list[RunResult] = []
    for k, (p, s) in enumerate(order):
        d = root / "runs" / f"{p.replace(':', '-')}-seed{s}"
        if progress is not None:
            progress(k, len(order), f"live {p} seed {s}")
        m = run_live(scn, p, s, duration, d)
        runs.append(RunResult(
            scenario=scn.name, policy=p, seed=s, duration_s=float(m["duration_s"]),
            value=float(m["value"]), energy_j=float(m["energy_j"]),
            value_per_j=float(m["value_per_j"]), false_kills=int(m["false_kills"]),
            kills=int(m["kills"]), parasite_energy_share=float(m["parasite_energy_share"]),
            time_above_setpoint_s=float(m["time_above_setpoint_s"]), peak_temp_c=math.nan,
            mean_price=math.nan, mechanism_cpu_s=float(m["mechanism_cpu_s"]),
            extra={k2: m[k2] for k2 in ("foreign_cpu_s", "foreign_cpu_share", "disturbed",
                                        "db", "energy_source", "temp_source")},
        ))
    if progress is not None:
        progress(len(order), len(order), "live done")
    result = summarize(scn.name, "live", run_policies, seeds, runs, extra={
        "duration_s": duration,
        "quick": not full,
        "skipped_sim_only": skipped,
        "disturbed_runs": sum(1 for r in runs if r.extra.get("disturbed")),
        "disturbed_threshold": DISTURBED_SHARE,
    })
    energy = sorted({str(r.extra.get("energy_source")) for r in runs})
    temp = sorted({str(r.extra.get("temp_source")) for r in runs})
    result["labels"]["energy"] = ", ".join(energy)
    result["labels"]["temperature"] = ", ".join(temp)
    result["labels"]["mechanism_cpu_s"] = "supervisor CPU seconds of the run (measured)"
    return result


__all__ = ["LivePolicy", "compare_live", "live_config", "run_live"]
