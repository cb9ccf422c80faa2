"""The simulated host: agent models sharing modelled cores, and the virtual plant.

`World` is the one mutable thing behind every simulated part. It advances lazily:
whichever part is asked first at a later time (`advance_to(t)`) simulates the
interval since the last call, so the loop above needs no hook into it and runs
unchanged with a virtual clock. Over an interval the membrane's decisions hold
(zero-order hold, like a tick): each living, unpaused agent may use
min(its demand, its quota) cores; when that exceeds the cores left by foreign load
they are shared max-min fairly (`models.fair_share`, what CFS gives groups of equal
weight, or weighted by the membrane's CPU weights); the agents then do the work
of the CPU they got (`Population.run`); and the plant integrates
P = P_idle + P_core · busy cores exactly (`physics.plant`), busy cores being the
agents' CPU plus the foreign load.

Claims are judged here by the rules of `agents.verify.Verifier`, vectorized over
claims: a claim above the deterministic ceiling (Brun–Titchmarsh for primes) is
fraud outright; any other inflated claim is caught when it is re-checked, with
the config's `resieve_probability` per claim (draws from the seeded generator);
caught claims earn nothing and count as frauds, which `economy.step` fines.
Evidence checks (Miller–Rabin on samples, overlaps) are not modelled: a model
never sends malformed evidence. Pure numpy; no I/O, no clock.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np

from maxwell.physics.plant import PlantParams, ThermalPlant
from maxwell.sim.models import KIND_PRIMES, BoolArray, FloatArray, IntArray, Population, fair_share


@dataclass
class Judged:
    """Verdicts of the claims finished since the last drain, per agent."""

    units: IntArray  # accepted (paid) units
    frauds: IntArray  # rejected false claims
    claims: IntArray  # claims judged


@dataclass
class World:
    pop: Population
    plant_params: PlantParams
    cpus: float  # cores of the simulated host
    foreign_cores: float = 0.0  # load outside the run (supervisor, other users)
    # Or a series, one value per `foreign_tick_s` (a live run's foreign load replayed);
    # the last value holds after its end.
    foreign_series: FloatArray | None = None
    foreign_tick_s: float = 1.0
    resieve_probability: float = 0.02
    rng: np.random.Generator = field(default_factory=lambda: np.random.default_rng(0))
    t_s: float = 0.0
    # membrane state
    alive: BoolArray = field(init=False)
    paused: BoolArray = field(init=False)
    quota: FloatArray = field(init=False)  # cores; inf: no quota set
    weight: FloatArray = field(init=False)  # relative CPU weight (1.0: the default share)
    # plant state, over the last interval
    energy_j: float = 0.0
    power_w: float = math.nan
    busy_cores: float = 0.0
    plant: ThermalPlant = field(init=False)
    # verdicts waiting for the channel
    _units: FloatArray = field(init=False)
    _frauds: IntArray = field(init=False)
    _claims: IntArray = field(init=False)
    fraud_log: list[tuple[float, int, float, str]] = field(default_factory=list)

    def __post_init__(self) -> None:
        n = self.pop.n
        self.alive = np.ones(n, dtype=np.bool_)
        self.paused = np.zeros(n, dtype=np.bool_)
        self.quota = np.full(n, np.inf)
        self.weight = np.ones(n)
        self.plant = ThermalPlant(self.plant_params)
        self._units = np.zeros(n)
        self._frauds = np.zeros(n, dtype=np.int64)
        self._claims = np.zeros(n, dtype=np.int64)

    def advance_to(self, t_s: float) -> None:
        """Simulate [self.t_s, t_s) with the membrane's current decisions."""
        t0 = self.t_s
        if t_s <= t0:
            return
        dt = t_s - t0
        pop = self.pop
        runnable = self.alive & ~self.paused
        caps = np.where(runnable, np.minimum(pop.demand(t0, t_s), self.quota), 0.0)
        foreign = self.foreign_at(t0)
        free = max(self.cpus - foreign, 0.0)
        cores = fair_share(caps, free, self.weight)
        cpu = cores * pop.efficiency * dt
        new, units, report_cpu = pop.run(cpu, t0, t_s, runnable)
        if new.any():
            self._judge(new, units, report_cpu, t_s)
        self.busy_cores = float(cpu.sum()) / dt + min(foreign, self.cpus)
        self.power_w = self.plant_params.power_w(self.busy_cores)
        self.energy_j += self.power_w * dt
        self.plant.step(self.power_w, dt)
        self.t_s = t_s

    def foreign_at(self, t_s: float) -> float:
        """Cores used outside the run over the interval starting at `t_s`."""
        fs = self.foreign_series
        if fs is None or fs.size == 0:
            return self.foreign_cores
        return float(fs[min(int(t_s / self.foreign_tick_s + 1e-9), fs.size - 1)])

    def _judge(self, new: IntArray, units: FloatArray, report_cpu: FloatArray, t_s: float
               ) -> None:
        pop = self.pop
        idx = np.flatnonzero(new)
        n_claims = new[idx]
        honest = units[idx]
        lie = pop.lie[idx]
        claimed = honest * lie
        per_claim = claimed / n_claims
        # The deterministic ceiling: primes kind, the Brun–Titchmarsh bound of the
        # segment; rate kind, ceiling_ratio × the honest units of a claim.
        ceiling = np.where(pop.kind[idx] == KIND_PRIMES, pop.ceiling[idx],
                           pop.ceiling[idx] * honest / n_claims)
        over = per_claim > ceiling * (1 + 1e-12)
        liar = lie > 1.0
        caught = np.where(over, n_claims, 0)
        spot = liar & ~over
        if spot.any():
            caught[spot] = self.rng.binomial(n_claims[spot], self.resieve_probability)
        ok = n_claims - caught
        paid = per_claim * ok
        self._units[idx] += paid
        self._frauds[idx] += caught
        self._claims[idx] += n_claims
        # The agent learns its verdicts: rejected work still cost its CPU.
        pop.verified[idx] += np.rint(paid).astype(np.int64)
        pop.judged_cpu_s[idx] += report_cpu[idx]
        for j in np.flatnonzero(caught):
            how = "above the deterministic ceiling" if over[j] else "re-checked"
            self.fraud_log.append((t_s, int(idx[j]), float(per_claim[j]), how))

    def drain(self) -> Judged:
        """Verdicts since the last drain (units rounded to whole units)."""
        units = np.rint(self._units).astype(np.int64)
        out = Judged(units, self._frauds.copy(), self._claims.copy())
        self._units[:] = 0.0
        self._frauds[:] = 0
        self._claims[:] = 0
        return out

    # -- the membrane's operations, as arrays -----------------------------------------

    def enforce(self, run: BoolArray, cores: FloatArray, kill: BoolArray, enforce: bool) -> None:
        """Apply one tick's decisions: kill, then (enforcing) pause/resume and quota."""
        self.alive &= ~kill
        if enforce:
            self.paused = self.alive & ~(run & (cores > 0))
            self.quota = np.where(self.paused, self.quota, cores)
