"""One simulated repetition: a scenario's cast as `maxwell.sim` models under one policy.

The scenario becomes a `maxwell sim` config (`Scenario.sim_config_data`: one model
entry per agent; the policy's config changes applied; the seed in `[run]`), and
`maxwell.sim.SimRun` runs it on the live tick loop with simulated parts and a
virtual clock; the run's `EconomyPolicy` is wrapped in the ladder's
`BaselinePolicy`, the same object a live run uses. A sink keeps what the metrics
need (the last per-agent columns, the ticks' temperatures, apoptosis events), so
nothing is written unless a database is asked for.

Seeds: the seed is the config's `run.seed` (auction tie-breaks, verification draws,
the models' phases, as in `maxwell sim`) and also draws each agent's work rate
(lognormal, σ = the cast's `jitter`, stream [seed, 101]): seed s gives every policy
the same agents, so comparisons are paired by seed.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from maxwell.experiments.metrics import RunResult, compute
from maxwell.experiments.policies import BaselinePolicy, config_changes
from maxwell.experiments.scenario import Cast, Scenario


def agent_rates(cast: Cast, seed: int) -> np.ndarray:
    """Each agent's true work rate (units per core-second) for this seed."""
    z = np.random.default_rng([seed, 101]).standard_normal(cast.n)
    return np.asarray(cast.units_per_core_s * np.exp(cast.jitter * z), dtype=np.float64)


def run_config(scn: Scenario, policy: str, seed: int, data: dict[str, Any],
               duration_s: float | None = None) -> Any:
    """Validate a config document with the policy's changes, the seed and the duration."""
    from maxwell.config import validate

    data["run"] = {**data.get("run", {}), "seed": seed}
    if duration_s is not None:
        data["run"]["duration_s"] = duration_s
    for key, value in config_changes(policy).items():
        sec, _, k = key.partition(".")
        data.setdefault(sec, {})[k] = data[sec]["r_min"] if value == "r_min" else value
    return validate(data, f"{scn.source} ({policy}, seed {seed})")


class _Keep:
    """A sink keeping the last agent columns, the tick series and the apoptosis events."""

    def __init__(self) -> None:
        self.last: Any = None
        self.t_s: list[float] = []
        self.temp_c: list[float] = []
        self.price: list[float] = []
        self.energy_j = 0.0
        self.killed: set[str] = set()

    def write(self, record: Any) -> None:
        if record.agents is not None:
            self.last = record
        if record.tick is not None:
            self.t_s.append(float(record.tick.t_s))
            self.temp_c.append(float(record.tick.temp_c))
            self.price.append(float(record.tick.price))
            self.energy_j = float(record.tick.energy_j)
        for ev in record.events:
            if ev.kind == "apoptosis" and ev.agent is not None:
                self.killed.add(ev.agent)


def simulate(scn: Scenario, policy: str, seed: int, *, duration_s: float | None = None,
             record: Path | None = None) -> RunResult:
    """Run one (scenario, policy, seed) in the simulator; `record` also writes run.db there."""
    from maxwell.sim import SimOptions, SimRun

    cast = scn.cast()
    rates = agent_rates(cast, seed)
    cfg = run_config(scn, policy, seed, scn.sim_config_data(rates), duration_s)
    keep = _Keep()
    box: dict[str, BaselinePolicy] = {}
    cpus = float(scn.doc.scenario.cpus)

    class _Run(SimRun):
        def parts(self, sinks: Any) -> Any:
            parts, doc = super().parts([*sinks, keep])
            box["p"] = BaselinePolicy(policy, parts.policy, scn, cast, cpus, rates)
            parts.policy = box["p"]
            return parts, doc

    opts = SimOptions(out_dir=record, cpus=cpus, record="all" if record else "ticks")
    run = _Run(cfg, opts)
    run.run()
    pol = box["p"]
    last = keep.last
    names = list(last.names) if last is not None else list(cast.names)
    cols = last.agents if last is not None else None
    n = len(names)
    work = np.asarray(cols.work_units if cols is not None else np.zeros(n), dtype=np.float64)
    energy = np.asarray(cols.energy_j if cols is not None else np.zeros(n), dtype=np.float64)
    killed = np.array([nm in keep.killed for nm in names], dtype=bool)
    true_units = np.asarray(run.world.pop.true_units, dtype=np.float64)
    return compute(
        scn, cast, policy, seed, names=names, work_units=work, energy_j=energy,
        dead=killed, killed=killed, t_s=np.asarray(keep.t_s), temp_c=np.asarray(keep.temp_c),
        machine_energy_j=keep.energy_j,
        price=np.asarray(keep.price) if policy in ("maxwell",) or policy.startswith("maxwell-")
        else np.zeros(0),
        true_units=true_units, stopped=pol.stopped if pol.name == "maxwell-pause" else None,
        mechanism_cpu_s=pol.cpu_s,
    )


__all__ = ["agent_rates", "run_config", "simulate"]
