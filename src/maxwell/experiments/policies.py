"""The baseline ladder: policies that decide one tick, from cfs to the oracle and Maxwell.

Every policy sees the same `TickView` (what was measured over the interval that
just ended) and returns an `Action` for the next one: CPU weights for contended
CPU (what cgroup cpu.shares / nice give the kernel's fair scheduler), a quota
per agent (cores; inf = none), a machine-wide cap (cores; inf = none), who runs,
who is killed. The simulated world (`maxwell.experiments.world`) turns an action
into CPU shares the way the fair scheduler does (weighted max-min over what each
agent can use); the live runner turns it into membrane operations.

- `cfs`: equal weights, nothing else (the kernel's fair scheduler; EEVDF ≥ 6.6).
- `nice`: weights from each agent's declared nice level (the kernel's
  sched_prio_to_weight: 1024 / 1.25^nice) — what nice does for tasks that share a
  group. With one cgroup per agent the kernel shares CPU between groups by group
  weight, so live, nice levels across agents do nothing (measured, not assumed).
- `weights`: static weights ∝ each agent's *declared* value per core-second
  (cgroup cpu.weight / cpu.shares), whatever the agent really does.
- `watchdog:N`: fair shares, and an agent with no verified output in the last N
  seconds (counted from its start) is killed.
- `thermal-cap`: a power_allocator-style PI controller (drivers/thermal/
  gov_power_allocator.c: sustainable power from the thermal budget, k_po/k_pu
  proportional gains for under/over the control temperature, a slow integral) caps
  the whole machine's CPU to hold the setpoint; agents share the cap fairly, as
  every task is throttled alike by a frequency cap.
- `oracle`: knows who is useful and what each agent's work is worth: parasites never
  run, useful agents get the static shares that maximize value per Joule within the
  thermal budget (steady-state die at the setpoint). The upper bound of the ladder
  for static policies (a dynamic policy may pass it with bursty agents).
- `maxwell` and its ablations (`maxwell-no-reserve`: the reserve pinned at r_min;
  `maxwell-lambda0`: no Landauer tax; `maxwell-no-verify`: every claim paid, none
  fined; `maxwell-pause`: a bankrupt agent is paused for good instead of killed):
  `economy.step`, the same core the live supervisor calls, enforcing.

Pure: numpy in, numpy out; the only state is each policy's own memory.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, fields, replace
from typing import Any

import numpy as np

from maxwell.experiments.scenario import Cast, Scenario

SHIPPED_WATCHDOG_S = (10.0, 30.0)
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
NICE_0_WEIGHT = 1024.0


@dataclass(frozen=True)
class TickView:
    """What was measured over the interval that just ended (arrays per agent)."""

    t_s: float
    dt_s: float
    temp_c: float
    power_w: float
    energy_j: float
    alive: np.ndarray
    cpu_s: np.ndarray
    bytes_freed: np.ndarray  # int64, this interval
    work_units: np.ndarray  # int64, verified this interval
    frauds: np.ndarray  # int64
    bid_price: np.ndarray
    bid_slots: np.ndarray  # int64
    fraud_units: np.ndarray | None = None  # int64: units claimed by the claims found false


@dataclass(frozen=True)
class Action:
    """What to enforce over the next interval."""

    weights: np.ndarray
    quota: np.ndarray  # cores per agent, inf = no quota
    run: np.ndarray  # bool: False = paused
    kill: np.ndarray  # bool: apoptosis now
    cap_cores: float = math.inf  # the whole machine's CPU
    price: float = math.nan  # reserve price (economy policies)
    balances: np.ndarray | None = None  # credits (economy policies)
    stopped: np.ndarray | None = None  # bool: out for good without a kill (pause ablation)
    events: tuple[tuple[str, int, dict[str, Any]], ...] = ()


def _free(n: int, weights: np.ndarray | None = None) -> Action:
    return Action(
        weights=np.ones(n) if weights is None else weights,
        quota=np.full(n, math.inf),
        run=np.ones(n, dtype=bool),
        kill=np.zeros(n, dtype=bool),
    )


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


class Policy:
    """Base: fair shares, no kills. `verifies` False makes the world pay every claim."""

    name = "cfs"
    verifies = True
    economy = False

    def __init__(self, scn: Scenario, cast: Cast, cpus: int, seed: int) -> None:
        self.scn, self.cast, self.cpus, self.seed = scn, cast, cpus, seed
        self.n = cast.n

    def initial(self) -> Action:
        return _free(self.n)

    def decide(self, view: TickView) -> Action:
        return _free(self.n)


class Nice(Policy):
    name = "nice"

    def initial(self) -> Action:
        return _free(self.n, nice_weight(self.cast.nice))

    def decide(self, view: TickView) -> Action:
        return self.initial()


class Weights(Policy):
    name = "weights"

    def initial(self) -> Action:
        w = np.asarray(self.cast.declared_value, dtype=np.float64)
        # A declared value of 0 still gets the smallest weight the kernel allows
        # (cpu.shares 2 of the default 1024), never nothing.
        top = float(w.max()) if w.size and w.max() > 0 else 1.0
        return _free(self.n, np.maximum(w / top * NICE_0_WEIGHT, 2.0))

    def decide(self, view: TickView) -> Action:
        return self.initial()


class Watchdog(Policy):
    def __init__(self, scn: Scenario, cast: Cast, cpus: int, seed: int, n_s: float) -> None:
        super().__init__(scn, cast, cpus, seed)
        self.n_s = n_s
        self.name = f"watchdog:{n_s:g}"
        self.last_output_s = np.zeros(self.n)

    def decide(self, view: TickView) -> Action:
        self.last_output_s = np.where(view.work_units > 0, view.t_s, self.last_output_s)
        kill = view.alive & (view.t_s - self.last_output_s >= self.n_s - 1e-9)
        act = _free(self.n)
        events = tuple(
            ("watchdog", int(i), {"silent_s": round(float(view.t_s - self.last_output_s[i]), 3)})
            for i in np.flatnonzero(kill)
        )
        return replace(act, kill=kill, events=events)


class ThermalCap(Policy):
    """power_allocator's shape with CPU cores as the actuator (see the module doc)."""

    name = "thermal-cap"
    # The kernel's defaults: proportional gains from sustainable power over the
    # 20 °C between switch-on and control temperature (k_po = sust/range for
    # running cool, k_pu = 2·sust/range for running hot), integral k_i = 10/1000 of
    # that scale per tick, integral only within integral_cutoff (0 °C: below the
    # setpoint only).
    TEMP_RANGE_C = 20.0

    def __init__(self, scn: Scenario, cast: Cast, cpus: int, seed: int) -> None:
        super().__init__(scn, cast, cpus, seed)
        self.sustainable = thermal_cores(scn, cpus)
        scale = max(self.sustainable, 0.25)
        self.k_po = scale / self.TEMP_RANGE_C
        self.k_pu = 2.0 * scale / self.TEMP_RANGE_C
        self.k_i = 0.01 * scale
        self.integral = 0.0
        self.setpoint = scn.doc.physics.setpoint_c
        self.cap = float(cpus)

    def decide(self, view: TickView) -> Action:
        err = self.setpoint - view.temp_c  # > 0: cooler than the setpoint
        p = (self.k_po if err > 0 else self.k_pu) * err
        self.integral = float(np.clip(self.integral + self.k_i * err * view.dt_s,
                                      -self.cpus, self.cpus))
        self.cap = float(np.clip(self.sustainable + p + self.integral, 0.05 * self.cpus,
                                 self.cpus))
        return replace(_free(self.n), cap_cores=self.cap)


def oracle_shares(scn: Scenario, cast: Cast, rate: np.ndarray, cpus: int) -> np.ndarray:
    """Static cores per agent maximizing value per Joule (within the thermal budget if
    the scenario says `oracle_holds_setpoint`).

    value/J = Σ v_i c_i / (P_idle + P_core Σ c_i) per second: adding cores of an
    agent raises it iff v_i / P_core exceeds the current ratio, so the optimum fills
    agents in order of value per core-second until that test fails or the budget
    (cpus, thermal cores) is used. Parasites and liars' claimed surplus are worth
    nothing; a liar's true work counts at its true rate.
    """
    from maxwell.physics.plant import plant_params

    p = plant_params(scn.doc.physics.hw_class)
    v = np.where(cast.parasite, 0.0, rate * cast.value_per_unit)
    budget = thermal_cores(scn, cpus) if scn.doc.scenario.oracle_holds_setpoint else cpus
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


class Oracle(Policy):
    name = "oracle"

    def __init__(self, scn: Scenario, cast: Cast, cpus: int, seed: int,
                 rate: np.ndarray) -> None:
        super().__init__(scn, cast, cpus, seed)
        self.shares = oracle_shares(scn, cast, rate, cpus)

    def initial(self) -> Action:
        run = self.shares > 0
        return Action(weights=np.ones(self.n), quota=self.shares, run=run,
                      kill=np.zeros(self.n, dtype=bool))

    def decide(self, view: TickView) -> Action:
        return self.initial()


def economy_params(scn: Scenario, cast: Cast, cpus: int, variant: str = "maxwell") -> Any:
    """EconomyParams of a scenario's cast (the sections validated by the config models)."""
    from maxwell import control, economy

    d = scn.doc
    m = d.market
    gains = control.default_gains(d.physics.hw_class, d.run.tick_s)
    c = d.control
    if (c.kp, c.ki, c.kd) != (None, None, None):
        gains = control.PIDGains(
            kp=gains.kp if c.kp is None else c.kp,
            ki=gains.ki if c.ki is None else c.ki,
            kd=gains.kd if c.kd is None else c.kd,
            d_filter_s=gains.d_filter_s,
        )
    r_max = m.r_min if variant == "maxwell-no-reserve" else m.r_max
    return economy.EconomyParams(
        agents=cast.names,
        initial_funds=tuple(float(x) for x in cast.funds),
        slots=m.slots or cpus,
        slot_weights=tuple(m.slot_weights) if m.slot_weights else None,
        enforce=True,
        setpoint_c=d.physics.setpoint_c,
        gains=gains,
        limits=control.PIDLimits(r_min=m.r_min, r_max=r_max),
        energy_price_per_j=m.energy_price_per_j,
        landauer_lambda=0.0 if variant == "maxwell-lambda0" else m.landauer_lambda,
        bounty_per_unit=m.bounty_per_unit,
        fine_per_fraud=m.fine_per_fraud,
        bounty_pool=m.bounty_pool,
        income_per_s=None,
    )


class Maxwell(Policy):
    economy = True

    def __init__(self, scn: Scenario, cast: Cast, cpus: int, seed: int,
                 variant: str = "maxwell") -> None:
        from maxwell import economy

        super().__init__(scn, cast, cpus, seed)
        self.name = variant
        self.verifies = variant != "maxwell-no-verify"
        self.pause = variant == "maxwell-pause"
        self.params = economy_params(scn, cast, cpus, variant)
        self.state, _ = economy.initial_state(self.params)
        self.rng = np.random.default_rng([seed, 3])
        self.stopped = np.zeros(self.n, dtype=bool)
        self.balances = np.asarray(cast.funds, dtype=np.float64)
        # Claim-scaled fines need the claimed units of each false claim (when the
        # economy's Observation takes them).
        self._fraud_units = "fraud_units" in {f.name for f in fields(economy.Observation)}

    def initial(self) -> Action:
        return replace(_free(self.n), balances=self.balances)

    def decide(self, view: TickView) -> Action:
        from maxwell import economy

        extra: dict[str, Any] = {}
        if self._fraud_units and view.fraud_units is not None:
            extra["fraud_units"] = view.fraud_units
        obs = economy.Observation(
            t_s=view.t_s, dt_s=view.dt_s, temp_c=view.temp_c, power_w=view.power_w,
            energy_j=view.energy_j, alive=view.alive, cpu_s=view.cpu_s,
            bytes_freed=view.bytes_freed, work_units=view.work_units, frauds=view.frauds,
            bid_price=view.bid_price, bid_slots=view.bid_slots, **extra,
        )
        self.state, dec = economy.step(self.state, obs, self.params, self.rng)
        self.balances = np.asarray(dec.balances, dtype=np.float64)
        kill = np.asarray(dec.kill, dtype=bool)
        events = tuple(
            ("apoptosis" if not self.pause else "pause-bankrupt",
             self.params.agents.index(ob.agent), {"cause": ob.cause})
            for ob in dec.obituaries
        )
        if self.pause:
            self.stopped |= kill
            kill = np.zeros(self.n, dtype=bool)
        run = np.asarray(dec.run, dtype=bool) & ~self.stopped
        return Action(
            weights=np.ones(self.n),
            quota=np.where(run, np.asarray(dec.cores, dtype=np.float64), 0.0),
            run=run,
            kill=kill,
            price=float(dec.price),
            balances=self.balances,
            stopped=self.stopped.copy() if self.pause else None,
            events=events,
        )


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


def make_policy(name: str, scn: Scenario, cast: Cast, cpus: int, seed: int,
                rate: np.ndarray) -> Policy:
    if name == "cfs":
        return Policy(scn, cast, cpus, seed)
    if name == "nice":
        return Nice(scn, cast, cpus, seed)
    if name == "weights":
        return Weights(scn, cast, cpus, seed)
    if name.startswith("watchdog"):
        return Watchdog(scn, cast, cpus, seed, float(name.partition(":")[2] or 10))
    if name == "thermal-cap":
        return ThermalCap(scn, cast, cpus, seed)
    if name == "oracle":
        return Oracle(scn, cast, cpus, seed, rate)
    if name == "maxwell" or name in ABLATIONS:
        return Maxwell(scn, cast, cpus, seed, name)
    raise ValueError(f"unknown policy {name!r}")


__all__ = [
    "ABLATIONS",
    "LADDER",
    "Action",
    "Policy",
    "TickView",
    "check_policies",
    "economy_params",
    "make_policy",
    "nice_weight",
    "oracle_shares",
    "thermal_cores",
]
