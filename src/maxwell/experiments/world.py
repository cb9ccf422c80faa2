"""The simulated world the ladder is measured in: modelled agents on a modelled machine.

One run = one scenario × one policy × one seed, a pure function of the three (the
mechanism's own CPU time is measured beside the result and is the only figure that
varies). Each tick: the fair scheduler's share of the CPU (weighted max-min over
what each runnable agent can use, within quotas and the machine cap) → the
virtual plant (`maxwell.physics.plant`: P = P_idle + P_core·busy and the exact RC
step) → the agents' models (work in claims of `claim_cpu_s`, bursts, lies, memory
churn) → verification (each liar's claim audited with the market's
`resieve_probability`; honest claims always pass) → the agents' bids (the
Scientist's value rule: margin × measured value per core-second, never more than
the wallet pays for one tick) → the policy's decision for the next tick.

Everything that does not depend on the policy — per-agent work rates (lognormal
jitter), burst schedules — is drawn from its own stream of the seed, so seed s of
every policy sees the same agents: comparisons are paired by seed. Every figure
here is *simulated*, energy and temperature *modelled*.

Results stay in memory (`RunResult`); `record=` writes the run database in the
project's schema as well (policy, simulated, modelled labels), so `maxwell report`
reads a simulated run like a live one.
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from maxwell.experiments.policies import Action, Policy, TickView, make_policy
from maxwell.experiments.scenario import Cast, Scenario

# "Above the setpoint" means more than this above it: the band a held setpoint keeps.
ABOVE_TOLERANCE_C = 1.0


@dataclass(frozen=True)
class RunResult:
    """One run's figures (deterministic for scenario, policy and seed, but mechanism_cpu_s)."""

    scenario: str
    policy: str
    seed: int
    duration_s: float
    value: float  # verified value of true work (value_per_unit × units)
    energy_j: float  # whole machine, idle included (modelled)
    value_per_j: float
    false_kills: int  # useful agents killed (or stopped for good)
    kills: int
    parasite_energy_share: float  # of the energy attributed to agents
    time_above_setpoint_s: float
    peak_temp_c: float
    mean_price: float  # nan for policies without a price
    mechanism_cpu_s: float  # CPU time of the policy's decisions (measured, varies)
    extra: dict[str, Any] = field(default_factory=dict)

    def metrics(self) -> dict[str, Any]:
        """The deterministic figures (what an in-process and a cluster run must share)."""
        return {
            "scenario": self.scenario,
            "policy": self.policy,
            "seed": self.seed,
            "value": self.value,
            "energy_j": self.energy_j,
            "value_per_j": self.value_per_j,
            "false_kills": self.false_kills,
            "kills": self.kills,
            "parasite_energy_share": self.parasite_energy_share,
            "time_above_setpoint_s": self.time_above_setpoint_s,
            "peak_temp_c": self.peak_temp_c,
            "mean_price": None if math.isnan(self.mean_price) else self.mean_price,
        }


def waterfill(capacity: float, want: np.ndarray, weights: np.ndarray) -> np.ndarray:
    """Weighted max-min shares: each gets min(want_i, λ·w_i) with Σ = capacity (or all
    wants, if they fit). The fair scheduler's long-run split between groups that can
    each use `want_i` CPUs."""
    want = np.maximum(np.asarray(want, dtype=np.float64), 0.0)
    total = float(want.sum())
    if total <= capacity:
        return want
    w = np.where(want > 0, np.maximum(weights, 1e-12), 0.0)
    ratio = np.where(w > 0, want / np.where(w > 0, w, 1.0), 0.0)
    idx = np.flatnonzero(w > 0)
    order = idx[np.argsort(ratio[idx], kind="stable")]
    r_s, want_s, w_s = ratio[order], want[order], w[order]
    sat = np.concatenate(([0.0], np.cumsum(want_s)))[:-1]
    rest = float(w_s.sum()) - np.concatenate(([0.0], np.cumsum(w_s)))[:-1]
    lam = (capacity - sat) / np.maximum(rest, 1e-300)
    k = int(np.argmax(lam <= r_s)) if np.any(lam <= r_s) else len(order) - 1
    level = float(lam[k])
    return np.asarray(np.minimum(want, level * w), dtype=np.float64)


class _Bursts:
    """On/off phases of bursty agents (exponential lengths), independent of the policy."""

    def __init__(self, cast: Cast, rng: np.random.Generator) -> None:
        self.idx = np.flatnonzero((cast.burst_on_s > 0) & (cast.burst_off_s > 0))
        self.on_s = cast.burst_on_s[self.idx]
        self.off_s = cast.burst_off_s[self.idx]
        self.rng = rng
        k = self.idx.size
        duty = self.on_s / (self.on_s + self.off_s)
        self.on = rng.random(k) < duty
        mean = np.where(self.on, self.on_s, self.off_s)
        self.next_s = rng.exponential(1.0, k) * mean

    def active(self, t_s: float, n: int) -> np.ndarray:
        out = np.ones(n, dtype=bool)
        if self.idx.size == 0:
            return out
        while True:
            flip = self.next_s <= t_s
            if not flip.any():
                break
            self.on = np.where(flip, ~self.on, self.on)
            mean = np.where(self.on, self.on_s, self.off_s)
            draws = self.rng.exponential(1.0, self.idx.size) * mean
            self.next_s = np.where(flip, self.next_s + draws, self.next_s)
        out[self.idx] = self.on
        return out


def agent_rates(cast: Cast, seed: int) -> np.ndarray:
    """True verifiable units per core-second of each agent for this seed (lognormal jitter)."""
    rng = np.random.default_rng([seed, 1])
    z = rng.standard_normal(cast.n)
    return np.asarray(cast.units_per_core_s * np.exp(cast.jitter * z), dtype=np.float64)


def simulate(
    scn: Scenario, policy_name: str, seed: int, record: Path | None = None,
    duration_s: float | None = None,
) -> RunResult:
    """Run one scenario under one policy for one seed (see the module doc)."""
    from maxwell.physics.plant import plant_params, rc_step

    d = scn.doc
    cast = scn.cast()
    n = cast.n
    cpus = d.scenario.cpus
    tick_s = d.run.tick_s
    duration = d.run.duration_s if duration_s is None else duration_s
    ticks = max(1, round(duration / tick_s))
    plant = plant_params(d.physics.hw_class)
    die, sink = plant.steady_state_c(plant.idle_power_w)
    setpoint = d.physics.setpoint_c
    bounty = d.market.bounty_per_unit
    p_audit = d.market.resieve_probability

    rate = agent_rates(cast, seed)
    claim_units = np.maximum(np.rint(rate * cast.claim_cpu_s), 0).astype(np.int64)
    claimed_per_claim = np.rint(claim_units * cast.inflation).astype(np.int64)
    bursts = _Bursts(cast, np.random.default_rng([seed, 2]))
    audit_rng = np.random.default_rng([seed, 4])

    policy: Policy = make_policy(policy_name, scn, cast, cpus, seed, rate)
    c0 = time.process_time()
    action: Action = policy.initial()
    mech_cpu = time.process_time() - c0

    alive = np.ones(n, dtype=bool)
    killed = np.zeros(n, dtype=bool)
    progress = np.zeros(n)
    verified_total = np.zeros(n)
    claim_cpu_total = np.zeros(n)
    agent_energy = np.zeros(n)
    cpu_total = np.zeros(n)
    value = 0.0
    energy = 0.0
    above_s = 0.0
    peak = die
    prices: list[float] = []
    dyn_energy = 0.0
    rec = _Recorder(record, scn, policy_name, seed, cast, plant, duration) if record else None

    for k in range(1, ticks + 1):
        t_s = k * tick_s
        active = bursts.active(t_s - tick_s, n)
        runnable = alive & action.run & active
        want = np.where(runnable, np.minimum(cast.workers, action.quota), 0.0)
        alloc = waterfill(min(float(cpus), action.cap_cores), want, action.weights)
        cpu = alloc * tick_s
        busy = float(alloc.sum())
        power = plant.idle_power_w + plant.core_power_w * busy
        e_tick = power * tick_s
        energy += e_tick
        die_n, sink_n = rc_step(plant, die, sink, power, tick_s)
        die, sink = float(die_n), float(sink_n)
        peak = max(peak, die)
        if die > setpoint + ABOVE_TOLERANCE_C:
            above_s += tick_s
        share = plant.core_power_w * cpu
        agent_energy += share
        dyn_energy += float(share.sum())
        cpu_total += cpu

        before = progress
        progress = progress + cpu
        claims = (np.floor(progress / cast.claim_cpu_s) - np.floor(before / cast.claim_cpu_s))
        claims = np.where(cast.parasite, 0, claims).astype(np.int64)
        lying = claimed_per_claim > claim_units
        if policy.verifies:
            caught = np.where(lying & (claims > 0), audit_rng.binomial(claims, p_audit), 0)
        else:
            caught = np.zeros(n, dtype=np.int64)
        accepted = claims - caught
        work = accepted * claimed_per_claim
        value += float(np.sum(accepted * claim_units * cast.value_per_unit))
        verified_total += work
        claim_cpu_total += claims * cast.claim_cpu_s
        freed = np.rint(cast.churn_bytes_per_core_s * cpu).astype(np.int64)

        # Bids: parasites a fixed price; the others the Scientist's value rule.
        measured = np.where(claim_cpu_total > 0,
                            bounty * verified_total / np.maximum(claim_cpu_total, 1e-12), -1.0)
        price = np.where(cast.parasite | (measured < 0), cast.bid, cast.margin * measured)
        slots = np.where(alive & bursts.active(t_s, n), cast.workers, 0).astype(np.int64)
        if action.balances is not None:
            price = np.minimum(price, np.maximum(action.balances, 0.0)
                               / (np.maximum(slots, 1) * tick_s))
        view = TickView(
            t_s=t_s, dt_s=tick_s, temp_c=die, power_w=power, energy_j=e_tick, alive=alive.copy(),
            cpu_s=cpu, bytes_freed=freed, work_units=work.astype(np.int64),
            frauds=caught.astype(np.int64), bid_price=np.maximum(price, 0.0), bid_slots=slots,
            fraud_units=(caught * claimed_per_claim).astype(np.int64),
        )
        c0 = time.process_time()
        action = policy.decide(view)
        mech_cpu += time.process_time() - c0
        if not math.isnan(action.price):
            prices.append(action.price)
        newly = action.kill & alive
        killed |= newly
        alive &= ~newly
        if rec is not None:
            rec.tick(t_s, die, power, energy, energy - dyn_energy, action, busy, cast,
                     alive, cpu_total, verified_total, agent_energy, view, newly)

    stopped = killed.copy()
    if action.stopped is not None:
        stopped |= action.stopped
    par_e = float(agent_energy[cast.parasite].sum())
    result = RunResult(
        scenario=scn.name,
        policy=policy_name,
        seed=seed,
        duration_s=ticks * tick_s,
        value=value,
        energy_j=energy,
        value_per_j=value / energy if energy > 0 else 0.0,
        false_kills=int(np.sum(stopped & cast.useful)),
        kills=int(killed.sum()),
        parasite_energy_share=par_e / dyn_energy if dyn_energy > 0 else 0.0,
        time_above_setpoint_s=above_s,
        peak_temp_c=peak,
        mean_price=float(np.mean(prices)) if prices else math.nan,
        mechanism_cpu_s=mech_cpu,
    )
    if rec is not None:
        rec.close(result)
    return result


class _Recorder:
    """Writes a simulated run in the run-database schema (for report/export/dashboard)."""

    def __init__(self, path: Path, scn: Scenario, policy: str, seed: int, cast: Cast,
                 plant: Any, duration_s: float) -> None:
        from datetime import UTC, datetime

        from maxwell.record import Recorder

        self.rec = Recorder(path)
        self.names = cast.names
        self.rec.start_run(
            started_at=datetime.now(UTC).isoformat(timespec="seconds"),
            policy=policy,
            duration_s=duration_s,
            tick_s=scn.doc.run.tick_s,
            config={"scenario": scn.data},
            host={"simulated": True, "scenario": scn.name, "seed": seed,
                  "plant": plant.as_dict()},
            energy_source=f"model:{plant.hw_class}",
            energy_measured=False,
            temp_source=f"model:{plant.hw_class}",
            temp_measured=False,
            memtrace_source="model",
            memtrace_exact=True,
            membrane_backend="sim",
            gains={"origin": "class defaults (simulated)"},
            setpoint_c=scn.doc.physics.setpoint_c,
            landauer_lambda=scn.doc.market.landauer_lambda,
        )
        self.bytes = np.zeros(cast.n, dtype=np.int64)

    def tick(self, t_s: float, die: float, power: float, energy: float, idle: float,
             action: Action, busy: float, cast: Cast, alive: np.ndarray, cpu_total: np.ndarray,
             verified: np.ndarray, agent_energy: np.ndarray, view: TickView,
             newly: np.ndarray) -> None:
        import json

        from maxwell.record import AgentTickRow, EventRow, TickRow

        self.bytes += view.bytes_freed
        price = 0.0 if math.isnan(action.price) else action.price
        bal = action.balances
        rows = []
        for i, name in enumerate(self.names):
            state = "dead" if not alive[i] else ("running" if action.run[i] else "paused")
            rows.append(AgentTickRow(
                t_s, name, state, float(cpu_total[i]), 0, float(view.bid_price[i]), 0.0, 0.0,
                0.0, 0.0, float(bal[i]) if bal is not None else 0.0, int(self.bytes[i]),
                int(verified[i]), float(agent_energy[i]),
            ))
        events = [EventRow(t_s, kind, self.names[i], json.dumps(detail))
                  for kind, i, detail in action.events]
        events += [EventRow(t_s, "apoptosis", self.names[i], json.dumps({"by": "policy"}))
                   for i in np.flatnonzero(newly)
                   if not any(e[1] == i and e[0] == "apoptosis" for e in action.events)]
        self.rec.write_tick(TickRow(t_s, die, power, energy, idle, price, busy, 0.0, 0.0, 0.0),
                            rows, events)

    def close(self, result: RunResult) -> None:
        from datetime import UTC, datetime

        self.rec.finish(datetime.now(UTC).isoformat(timespec="seconds"),
                        {"simulated": True, "scenario": result.scenario, "seed": result.seed,
                         "outcome": "completed", "mechanism_cpu_s": result.mechanism_cpu_s})
        self.rec.close()
