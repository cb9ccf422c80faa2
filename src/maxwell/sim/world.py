"""The simulated host: agent models sharing modelled cores, and the virtual plant.

`World` is the one mutable thing behind every simulated part. It advances lazily:
whichever part is asked first at a later time (`advance_to(t)`) simulates the
interval since the last call, so the loop above needs no hook into it and runs
unchanged with a virtual clock. Over an interval the membrane's decisions hold
(zero-order hold, like a tick): each living, unpaused agent may use
min(its demand, its quota) cores; when that exceeds the cores left by foreign load
and the run's own overhead they are shared max-min fairly (`models.fair_share`,
what CFS gives groups of equal weight, or weighted by the membrane's CPU weights);
the agents then do the work of the CPU they got (`Population.run`); and the plant
integrates P = P_idle + P_core · run cores exactly (`physics.plant`), the run's
cores being the agents' CPU plus its overhead: foreign load takes cores but, as in
a live run (physics' model_load "run"), is reported apart and drives no energy.

Claims are judged here by the rules of `agents.verify.Verifier`, vectorized over
claims: a claim above the deterministic ceiling (Brun–Titchmarsh for primes) is
fraud outright, fined what it claimed; any other inflated claim is caught when it
is audited — with the block-audit probability for claims with per-block counts
(the Scientist's), the re-sieve probability for others, and probability 1 for the
`probation_claims` after a catch — and fined claimed ÷ q (draws from the seeded
generator); caught claims earn nothing and count as frauds, which `economy.step`
fines. Evidence checks (Miller–Rabin on samples, overlaps) are not modelled: a model
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
    fine_units: FloatArray  # what the frauds are fined, in units at the bounty rate
    claims: IntArray  # claims judged


@dataclass
class World:
    pop: Population
    plant_params: PlantParams
    cpus: float  # cores of the simulated host
    # Load outside the run (other users): takes cores, is not the run's energy.
    foreign_cores: float = 0.0
    # The run's own overhead besides the agents (the supervisor): takes cores and, as
    # the run's, drives the plant.
    overhead_cores: float = 0.0
    # Or series, one value per `series_tick_s` (a live run's, replayed); the last value
    # holds after the end.
    foreign_series: FloatArray | None = None
    overhead_series: FloatArray | None = None
    series_tick_s: float = 1.0
    # physics.model_load: "run" drives the plant with the run's CPU only (the live
    # default); "machine" with every busy core, foreign load included.
    model_load: str = "run"
    # The verifier's audit rates (market.resieve_probability, block_audit_probability,
    # probation_claims): a claim with per-block counts (the Scientist's) is audited with
    # the block probability, any other with the re-sieve probability, and every claim
    # of an agent on probation after a catch with probability 1.
    resieve_probability: float = 0.02
    block_audit_probability: float = 0.25
    probation_claims: int = 200
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
    busy_cores: float = 0.0  # machine-wide, as /proc/stat would say
    foreign_busy_cores: float = 0.0  # the part outside the run
    plant: ThermalPlant = field(init=False)
    # verdicts waiting for the channel
    _units: FloatArray = field(init=False)
    _frauds: IntArray = field(init=False)
    _fine_units: FloatArray = field(init=False)
    _claims: IntArray = field(init=False)
    _probation: IntArray = field(init=False)  # claims each agent still has audited at p = 1
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
        self._fine_units = np.zeros(n)
        self._claims = np.zeros(n, dtype=np.int64)
        self._probation = np.zeros(n, dtype=np.int64)

    def advance_to(self, t_s: float) -> None:
        """Simulate [self.t_s, t_s) with the membrane's current decisions."""
        t0 = self.t_s
        if t_s <= t0:
            return
        dt = t_s - t0
        pop = self.pop
        runnable = self.alive & ~self.paused
        # Only the runnable share the cores (most of 10⁵ agents wait paused).
        r = np.flatnonzero(runnable)
        caps = np.minimum(pop.demand(t0, t_s, r), self.quota[r])
        foreign = min(self._at(self.foreign_series, self.foreign_cores, t0), self.cpus)
        overhead = min(self._at(self.overhead_series, self.overhead_cores, t0),
                       self.cpus - foreign)
        cores = fair_share(caps, max(self.cpus - foreign - overhead, 0.0), self.weight[r])
        cpu = np.zeros(pop.n)
        cpu[r] = cores * pop.efficiency[r] * dt
        new, units, report_cpu = pop.run(cpu, t0, t_s, runnable)
        if new.any():
            self._judge(new, units, report_cpu, t_s)
        run_cores = float(cpu.sum()) / dt + overhead
        self.busy_cores = run_cores + foreign
        self.foreign_busy_cores = foreign
        # The plant is driven by the run's own CPU (physics' model_load "run"): foreign
        # load is reported apart and heats nothing the run pays for.
        self.power_w = self.plant_params.power_w(
            run_cores if self.model_load == "run" else self.busy_cores)
        self.energy_j += self.power_w * dt
        self.plant.step(self.power_w, dt)
        self.t_s = t_s

    def _at(self, series: FloatArray | None, constant: float, t_s: float) -> float:
        if series is None or series.size == 0:
            return constant
        return float(series[min(int(t_s / self.series_tick_s + 1e-9), series.size - 1)])

    def _judge(self, new: IntArray, units: FloatArray, report_cpu: FloatArray, t_s: float
               ) -> None:
        pop = self.pop
        idx = np.flatnonzero(new)
        n_claims = new[idx]
        honest = units[idx]
        lie = pop.lie[idx]
        claimed = honest * lie
        per_claim = claimed / n_claims
        blocks = pop.kind[idx] == KIND_PRIMES
        # The deterministic ceiling: primes kind, the Brun–Titchmarsh bound of the
        # segment; rate kind, ceiling_ratio × the honest units of a claim.
        ceiling = np.where(blocks, pop.ceiling[idx], pop.ceiling[idx] * honest / n_claims)
        over = per_claim > ceiling * (1 + 1e-12)
        caught = np.where(over, n_claims, 0)
        fine = np.where(over, claimed, 0.0)  # caught with certainty: fined what it claimed
        # A lie below the ceiling is caught when its claim is audited: the whole claim is
        # inflated, so any audited block shows it. Probation claims are audited surely.
        p = np.where(blocks, self.block_audit_probability, self.resieve_probability)
        spot = (lie > 1.0) & ~over
        for j in np.flatnonzero(spot):
            i = int(idx[j])
            sure = int(min(self._probation[i], n_claims[j]))
            self._probation[i] -= sure
            rest = int(n_claims[j]) - sure
            hit = sure + (int(self.rng.binomial(rest, float(p[j]))) if rest > 0 else 0)
            if hit:
                caught[j] = hit
                # Fined claimed units / q per caught claim (1/p, or 1 on probation);
                # the verifier's block audit also scales by the blocks (n/p) but a
                # proportional lie is caught in whichever block is drawn.
                fine[j] = per_claim[j] * (sure + (hit - sure) / float(p[j]))
                self._probation[i] = self.probation_claims
        ok = n_claims - caught
        paid = per_claim * ok
        pop.true_accepted[idx] += honest / n_claims * ok
        self._units[idx] += paid
        self._frauds[idx] += caught
        self._fine_units[idx] += fine
        self._claims[idx] += n_claims
        # The agent learns its verdicts: rejected work still cost its CPU.
        pop.verified[idx] += np.rint(paid).astype(np.int64)
        pop.judged_cpu_s[idx] += report_cpu[idx]
        for j in np.flatnonzero(caught):
            how = "above the deterministic ceiling" if over[j] else "audited"
            self.fraud_log.append((t_s, int(idx[j]), float(per_claim[j]), how))

    def drain(self) -> Judged:
        """Verdicts since the last drain (units rounded to whole units); the buffers
        are handed over and replaced."""
        n = self.pop.n
        out = Judged(np.rint(self._units).astype(np.int64), self._frauds, self._fine_units,
                     self._claims)
        self._units = np.zeros(n)
        self._frauds = np.zeros(n, dtype=np.int64)
        self._fine_units = np.zeros(n)
        self._claims = np.zeros(n, dtype=np.int64)
        return out

    # -- the membrane's operations, as arrays -----------------------------------------

    def enforce(self, run: BoolArray, cores: FloatArray, kill: BoolArray, enforce: bool) -> None:
        """Apply one tick's decisions: kill, then (enforcing) pause/resume and quota."""
        self.alive &= ~kill
        if enforce:
            self.paused = self.alive & ~(run & (cores > 0))
            self.quota = np.where(self.paused, self.quota, cores)
