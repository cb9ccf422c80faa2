"""The baseline ladder: every policy as a `maxwell.run.parts.Policy`, live and simulated.

A policy decides one tick from the loop's `economy.Observation`. Every baseline
keeps the economy's books in a shadow ledger (`economy.step` with `enforce=False`,
as the `cfs` policy does) so prices and balances are recorded for comparison, and
applies its own rule through the run's membrane (`Decision.run/cores/weight/nice/
kill`). The same objects drive a live run (`maxwell.run.build.LiveRun`) and a
simulated one (`maxwell.sim.SimRun`), so a baseline is one piece of code.

- `cfs`: nothing applied (the kernel's fair scheduler; EEVDF on ≥ 6.6).
- `nice`: each agent's declared nice level on all its processes. With one cgroup
  per agent, the kernel shares CPU between groups by group weight, so live, nice
  levels across agents do nothing; the simulator models what they would do for
  tasks sharing a group (weight 1024 / 1.25^nice) if it models weights at all.
- `weights`: a static CPU weight ∝ each agent's *declared* value per core-second
  (cgroup cpu.shares / cpu.weight), whatever the agent really does.
- `watchdog:N`: an agent with no verified output in the last N seconds (from its
  start) is killed.
- `thermal-cap`: a power_allocator-style PI controller (drivers/thermal/
  gov_power_allocator.c: sustainable power from the thermal budget; k_po and k_pu
  proportional gains below/above the control temperature over a 20 °C range; a
  slow integral) caps the whole machine's CPU to hold the setpoint, split over the
  living agents by the cores each can use (CPU quotas) — every task throttled
  alike, as by a frequency cap.
- `oracle`: knows who is useful and what each agent's work is worth: parasites never
  run; useful agents get the static shares that maximize value per Joule (within
  the thermal budget where the scenario makes the setpoint a hard budget).
- `maxwell` (`economy.step` enforcing, unchanged) and its ablations, which change
  the config (`config_changes`): `maxwell-no-reserve` (r_max = r_min: the reserve
  never rises), `maxwell-lambda0` (no Landauer tax), `maxwell-no-verify` (no claim
  is re-sieved: resieve_probability 0, block_audit_probability 1e-9; the
  deterministic evidence checks stay);
  and `maxwell-pause`, a policy: a bankrupt agent is paused for good, not killed.

Pure: numpy in, numpy out; state is each policy's own memory.
"""

from __future__ import annotations

import dataclasses
import math
import time
from collections.abc import Sequence
from typing import Any

import numpy as np

from maxwell import economy
from maxwell.experiments.scenario import Cast, Scenario

LADDER = (
    "cfs",
    "nice",
    "weights",
    "watchdog:10",
    "watchdog:30",
    "thermal-cap",
    "oracle",
    "maxwell",
    "maxwell-no-reserve",
    "maxwell-lambda0",
    "maxwell-no-verify",
    "maxwell-pause",
)
ABLATIONS = ("maxwell-no-reserve", "maxwell-lambda0", "maxwell-no-verify", "maxwell-pause")
ENFORCING = ("maxwell", *ABLATIONS)  # run with the economy enforcing (policy "maxwell")
NICE_0_WEIGHT = 1024.0


def nice_weight(nice: np.ndarray) -> np.ndarray:
    """The kernel's weight of a nice level (sched_prio_to_weight, to within rounding)."""
    return NICE_0_WEIGHT / np.power(1.25, np.asarray(nice, dtype=np.float64))


def thermal_cores(scn: Scenario, cpus: float) -> float:
    """Busy cores whose steady-state die temperature is the setpoint (≤ cpus)."""
    from maxwell.physics.plant import plant_params

    p = plant_params(scn.doc.physics.hw_class)
    p_budget = (scn.doc.physics.setpoint_c - p.ambient_c) / (
        p.r_die_sink_k_per_w + p.r_sink_amb_k_per_w
    )
    return float(min(max((p_budget - p.idle_power_w) / p.core_power_w, 0.0), cpus))


def oracle_shares(scn: Scenario, cast: Cast, rate: np.ndarray, cpus: float) -> np.ndarray:
    """Static cores per agent maximizing value per Joule.

    value/J = Σ v_i c_i / (P_idle + P_core Σ c_i) per second: adding cores of an
    agent raises it iff v_i / P_core exceeds the current ratio, so the optimum fills
    agents in order of value per core-second until that test fails or the budget is
    used (cpus; the thermal cores too if the scenario says `oracle_holds_setpoint`).
    Parasites are worth nothing; a liar counts at its true rate.
    """
    from maxwell.physics.plant import plant_params

    p = plant_params(scn.doc.physics.hw_class)
    v = np.where(cast.parasite, 0.0, rate * cast.value_per_unit)
    budget = thermal_cores(scn, cpus) if scn.doc.scenario.oracle_holds_setpoint else float(cpus)
    order = np.argsort(-v, kind="stable")
    shares = np.zeros(cast.n)
    value, cores = 0.0, 0.0
    for i in order:
        if v[i] <= 0 or budget - cores <= 1e-12:
            break
        if v[i] / p.core_power_w <= value / (p.idle_power_w + p.core_power_w * cores):
            break
        c = min(float(cast.workers[i]), budget - cores)
        shares[i] = c
        value += v[i] * c
        cores += c
    return shares


class PowerAllocator:
    """power_allocator's control law with CPU cores as the actuator (see the module doc)."""

    TEMP_RANGE_C = 20.0

    def __init__(self, setpoint_c: float, sustainable_cores: float, cpus: float) -> None:
        self.setpoint_c, self.sustainable, self.cpus = setpoint_c, sustainable_cores, cpus
        scale = max(sustainable_cores, 0.25)
        self.k_po = scale / self.TEMP_RANGE_C
        self.k_pu = 2.0 * scale / self.TEMP_RANGE_C
        self.k_i = 0.01 * scale
        self.integral = 0.0
        self.cap = float(cpus)

    def update(self, temp_c: float, dt_s: float) -> float:
        err = self.setpoint_c - temp_c  # > 0: cooler than the setpoint
        p = (self.k_po if err > 0 else self.k_pu) * err
        self.integral = float(np.clip(self.integral + self.k_i * err * dt_s,
                                      -self.cpus, self.cpus))
        self.cap = float(np.clip(self.sustainable + p + self.integral, 0.05 * self.cpus,
                                 self.cpus))
        return self.cap


class BaselinePolicy:
    """One rung of the ladder over the run's own `EconomyPolicy` (see the module doc).

    `economy_policy` is what the run built (`maxwell.run.policy.EconomyPolicy`): for a
    baseline its params are replaced by a shadow copy (enforce=False); maxwell and the
    config-only ablations use it as it is. `cpu_s` accumulates the CPU time of the
    decisions (the mechanism's own cost, measured); a baseline's shadow books are
    not its mechanism, so their cost is left out of its `cpu_s`.
    """

    def __init__(self, name: str, economy_policy: Any, scn: Scenario, cast: Cast,
                 cpus: float, rate: np.ndarray | None = None) -> None:
        self.name = name
        self.cast, self.cpus = cast, cpus
        params = economy_policy.params
        enforcing = name in ENFORCING
        self.econ = type(economy_policy)(dataclasses.replace(params, enforce=enforcing),
                                         economy_policy.rng)
        n = cast.n
        self.last_output_s = np.zeros(n)
        self.stopped = np.zeros(n, dtype=bool)
        self.cpu_s = 0.0
        self.cap: PowerAllocator | None = None
        if name == "thermal-cap":
            self.cap = PowerAllocator(scn.doc.physics.setpoint_c, thermal_cores(scn, cpus), cpus)
        self.shares = oracle_shares(scn, cast, cast.units_per_core_s if rate is None else rate,
                                    cpus)
        top = float(cast.declared_value.max()) if n and cast.declared_value.max() > 0 else 1.0
        # Relative weight 1.0 = the default share; the kernel's floor is 2/1024.
        self.weights = np.maximum(cast.declared_value / top, 2.0 / NICE_0_WEIGHT)

    def initial(self) -> tuple[Any, Sequence[Any]]:
        return self.econ.initial()  # type: ignore[no-any-return]

    def decide(self, state: Any, obs: economy.Observation) -> tuple[Any, Any]:
        c0 = time.process_time()
        state, d = self.econ.decide(state, obs)
        c1 = time.process_time()
        try:
            return self._decide(state, obs, d)
        finally:
            shadow = 0.0 if self.name in ENFORCING else c1 - c0
            self.cpu_s += time.process_time() - c0 - shadow

    def _decide(self, state: Any, obs: economy.Observation, d: Any) -> tuple[Any, Any]:
        from maxwell.run.parts import Decision

        name, n = self.name, self.cast.n
        none = np.zeros(n, dtype=bool)
        alive = np.asarray(obs.alive, dtype=bool)
        if name == "maxwell-pause":
            self.stopped |= np.asarray(d.kill, dtype=bool)
            run = np.asarray(d.economy.run, dtype=bool) & ~self.stopped
            return state, Decision(economy=d.economy, kill=none, run=run,
                                   cores=np.where(run, d.economy.cores, 0.0))
        if name in ENFORCING:
            return state, d
        if name == "nice":
            return state, Decision(economy=d.economy, kill=none,
                                   nice=self.cast.nice.astype(np.int64))
        if name == "weights":
            return state, Decision(economy=d.economy, kill=none, weight=self.weights)
        if name.startswith("watchdog:"):
            n_s = float(name.partition(":")[2])
            work = np.asarray(obs.work_units)
            self.last_output_s = np.where(work > 0, obs.t_s, self.last_output_s)
            kill = alive & (obs.t_s - self.last_output_s >= n_s - 1e-9)
            return state, Decision(economy=d.economy, kill=kill)
        if self.cap is not None:
            cap = self.cap.update(float(obs.temp_c), float(obs.dt_s))
            want = np.where(alive, self.cast.workers, 0.0)
            cores = np.minimum(cap * want / max(float(want.sum()), 1e-9), self.cast.workers)
            return state, Decision(economy=d.economy, kill=none, run=alive,
                                   cores=np.where(alive, cores, 0.0))
        if name == "oracle":
            run = self.shares > 0
            return state, Decision(economy=d.economy, kill=none, run=run,
                                   cores=np.where(run, self.shares, 0.0))
        return state, Decision(economy=d.economy, kill=none)  # cfs


def config_changes(name: str) -> dict[str, Any]:
    """Dotted config keys a policy changes (run.policy and the ablations' market keys)."""
    out: dict[str, Any] = {"run.policy": "maxwell" if name in ENFORCING else "cfs"}
    if name == "maxwell-no-reserve":
        out["market.r_max"] = "r_min"
    elif name == "maxwell-lambda0":
        out["market.landauer_lambda"] = 0.0
    elif name == "maxwell-no-verify":
        out["market.resieve_probability"] = 0.0
        out["market.block_audit_probability"] = 1e-9  # the config requires > 0
    return out


def check_policies(names: list[str]) -> list[str]:
    """Validate a --policies list (UsageError naming the bad entry)."""
    from maxwell.common import UsageError

    out = []
    for name in names:
        name = name.strip()
        if not name:
            continue
        if name.startswith("watchdog"):
            _, _, n = name.partition(":")
            try:
                n_s = float(n or 10)
            except ValueError:
                raise UsageError(f"--policies: {name!r}: watchdog:N needs N in seconds") from None
            if not (n_s > 0 and math.isfinite(n_s)):
                raise UsageError(f"--policies: {name!r}: N must be > 0 seconds")
            out.append(f"watchdog:{n_s:g}")
        elif name in LADDER:
            out.append(name)
        else:
            raise UsageError(
                f"--policies: unknown policy {name!r}: choose from {', '.join(LADDER)}"
                " (watchdog:N for any N seconds)"
            )
    if not out:
        raise UsageError("--policies: name at least one policy")
    return list(dict.fromkeys(out))


__all__ = [
    "ABLATIONS",
    "ENFORCING",
    "LADDER",
    "BaselinePolicy",
    "PowerAllocator",
    "check_policies",
    "config_changes",
    "nice_weight",
    "oracle_shares",
    "thermal_cores",
]
