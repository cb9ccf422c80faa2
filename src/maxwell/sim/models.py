"""Vectorized agent models: what each simulated agent does with the CPU it is given.

One `Population` holds every simulated agent as columns (numpy arrays), so a tick
costs a fixed number of array operations whatever the number of agents. A model
is a row of parameters, not a class; the kinds (`MODELS`) differ only in those
parameters:

- ``scientist``: the built-in Scientist, calibrated on this machine (`calibration`):
  sieves consecutive segments of `segment_size` numbers and claims the primes found
  in each (units = li(hi) − li(lo), the logarithmic integral standing in for the
  exact count); bids like `agents.scientist.ValueBidder`.
- ``miner``: the built-in Miner: burns every core it gets, frees
  `churn_bytes_per_s` while it runs, proves nothing, bids a fixed price.
- ``worker``: a useful worker: `value_rate` verifiable units per CPU-second,
  claimed every `claim_cpu_s`; a value bidder.
- ``parasite``: burns CPU, claims nothing, fixed bid.
- ``liar``: a worker that claims `lie_factor` × what it did.
- ``bursty``: a worker whose demand is on for `burst_duty` of every
  `burst_period_s` (phase drawn from the seed).
- ``slow_start``: a worker whose first proof needs `first_proof_cpu_s` of CPU.
- ``churner``: a worker that frees `churn_bytes_per_cpu_s` per CPU-second.

Bidding mirrors the built-in agents: a *value bidder* (Scientist) bids
`initial_bid` until its first verdict, then `margin` × bounty × verified units per
CPU-second of judged claims, never more than its balance pays for its slots over
one tick; a *fixed bidder* (Miner) re-sends its `bid` every tick. Pure numpy and
the seeded generator passed in; no I/O, no clock.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import numpy.typing as npt
from scipy.special import expi

from maxwell.agents.builtin import OPTIONS as BUILTIN_OPTIONS
from maxwell.agents.builtin import Option

FloatArray = npt.NDArray[np.float64]
IntArray = npt.NDArray[np.int64]
BoolArray = npt.NDArray[np.bool_]

MiB = 1 << 20

# Work kinds: nothing verifiable, primes in segments, a fixed rate of units.
KIND_NONE, KIND_PRIMES, KIND_RATE = 0, 1, 2
# Bidding strategies.
BID_FIXED, BID_VALUE = 0, 1


def _opt(default: float | int | bool, lo: float, hi: float, text: str) -> Option:
    return Option(type(default), default, lo, hi, text)


_COMMON: dict[str, Option] = {
    "slots": _opt(0, 0, 1024, "slot-units to bid for (0: one per worker)"),
    "startup_s": _opt(0.35, 0, 600, "seconds from spawn to hello (its first bid)"),
    "startup_cpu_s": _opt(0.3, 0, 600, "CPU-seconds spent starting up before any work"),
}
_VALUE_BID: dict[str, Option] = {
    "initial_bid": _opt(0.5, 0, 1e12, "credits per core-second bid until the first verdict"),
    "margin": _opt(0.8, 0.01, 10, "fraction of its measured value per core-second it bids"),
}
_WORKER: dict[str, Option] = {
    **_COMMON,
    **_VALUE_BID,
    "value_rate": _opt(1e6, 0, 1e15, "verifiable units per CPU-second"),
    "claim_cpu_s": _opt(0.1, 1e-4, 3600, "CPU-seconds of work per claim"),
    "ceiling_ratio": _opt(2.0, 1.0, 1e6,
                          "claims above this × the honest units are rejected outright"),
}
_FIXED_BID: dict[str, Option] = {
    **_COMMON,
    "bid": _opt(2.0, 0, 1e12, "fixed bid, credits per core-second"),
}

MODEL_OPTIONS: dict[str, dict[str, Option]] = {
    "scientist": {
        **_COMMON,
        **{k: BUILTIN_OPTIONS["scientist"][k] for k in ("initial_bid", "margin", "segment_size",
                                                         "start")},
    },
    "miner": {
        **_FIXED_BID,
        "bid": BUILTIN_OPTIONS["miner"]["bid"],
        "churn_bytes_per_s": BUILTIN_OPTIONS["miner"]["churn_bytes_per_s"],
    },
    "worker": dict(_WORKER),
    "parasite": {**_FIXED_BID, "churn_bytes_per_s": _opt(0, 0, 1 << 40, "bytes freed per second")},
    "liar": {**_WORKER, "lie_factor": _opt(1.5, 1.0, 1e6, "claimed ÷ true units")},
    "bursty": {
        **_WORKER,
        "burst_period_s": _opt(10.0, 0.01, 1e6, "seconds per on/off cycle"),
        "burst_duty": _opt(0.5, 0.0, 1.0, "fraction of each cycle it wants CPU"),
    },
    "slow_start": {**_WORKER, "first_proof_cpu_s": _opt(5.0, 0, 1e6,
                                                        "CPU-seconds before the first proof")},
    "churner": {**_WORKER, "churn_bytes_per_cpu_s": _opt(64 * MiB, 0, 1 << 40,
                                                          "bytes freed per CPU-second")},
}
MODELS = tuple(MODEL_OPTIONS)


class ModelOptionError(ValueError):
    """A model option that is unknown or out of range (the message names the key)."""


def check_model_options(model: str, options: Mapping[str, object]) -> dict[str, float]:
    """Validated options of one model (given keys only), as floats."""
    spec = MODEL_OPTIONS.get(model)
    if spec is None:
        raise ModelOptionError(f"unknown model {model!r}: use one of {', '.join(MODELS)}")
    out: dict[str, float] = {}
    for key, value in options.items():
        opt = spec.get(key)
        if opt is None:
            raise ModelOptionError(f"unknown option {key!r} for model {model!r}: accepted keys "
                                   f"are {', '.join(spec)}")
        if isinstance(value, bool) or not isinstance(value, int | float):
            raise ModelOptionError(f"option {key!r} of model {model!r} must be a number, "
                                   f"not {value!r}")
        if not (math.isfinite(value) and opt.lo <= value <= opt.hi):
            raise ModelOptionError(f"option {key!r} of model {model!r} must be in "
                                   f"[{opt.lo:g}, {opt.hi:g}], not {value!r}")
        out[key] = float(value)
    return out


def model_default(model: str, key: str) -> float:
    return float(MODEL_OPTIONS[model][key].default)


@dataclass(frozen=True)
class Calibration:
    """Machine figures the Scientist and Miner models take from measurements.

    sieve_numbers_per_cpu_s: numbers sieved per CPU-second of the Scientist's whole
    process tree (workers, main process, pipes); worker_cpu_fraction: the part of
    that CPU its workers report with their claims (what its bidder divides by);
    cpu_efficiency: CPU-seconds used per core-second granted (a value below 1 is
    time the agent waits on pipes or its supervisor); startup_s: spawn → hello (its
    first bid); startup_cpu_s: CPU its start-up costs before any work.
    sieve_speed: work per CPU-second relative to those rates (1: as measured); a
    replay sets it from its live run (`calibration.sieve_speed`), since this
    machine's speed per CPU-second drifts with other tenants' load.
    source: how the figures were obtained (a path and date, or "defaults").
    """

    sieve_numbers_per_cpu_s: float = 5.6e8  # at 2^33
    # (x, numbers per CPU-second) measured at several magnitudes; the cost per number
    # is interpolated in ln x between them (empty: sieve_numbers_per_cpu_s everywhere).
    sieve_rate_points: tuple[tuple[float, float], ...] = ((2.0**27, 9.7e8), (2.0**30, 5.8e8),
                                                          (2.0**33, 5.6e8), (2.0**36, 4.8e8))
    worker_cpu_fraction: float = 0.9
    sieve_speed: float = 1.0
    scientist_cpu_efficiency: float = 1.0
    scientist_startup_s: float = 0.35
    scientist_startup_cpu_s: float = 0.3
    miner_cpu_efficiency: float = 1.0
    miner_startup_s: float = 0.2
    miner_startup_cpu_s: float = 0.2
    # The share of the Miner's churn_bytes_per_s the live memory tracer counts (so the
    # live economy taxes): about 1/2 with the page-level tracer, whose counts exclude
    # madvise on the Miner's shared mapping.
    miner_churn_traced: float = 1.0
    source: str = "defaults (uncalibrated)"
    measured: dict[str, Any] = field(default_factory=dict)

    def sieve_curve(self) -> tuple[FloatArray, FloatArray]:
        """(ln x, CPU-seconds per number) at the measured points, ascending in x, at
        `sieve_speed`: the cost is interpolated between them and held flat beyond them."""
        pts = sorted((x, r) for x, r in self.sieve_rate_points if x > 1 and r > 0)
        if not pts:
            pts = [(2.0**33, self.sieve_numbers_per_cpu_s)]
        return (np.log(np.array([x for x, _ in pts], dtype=np.float64)),
                1.0 / (self.sieve_speed * np.array([r for _, r in pts], dtype=np.float64)))


def li(x: FloatArray) -> FloatArray:
    """The logarithmic integral li(x) = Ei(ln x), the prime counting estimate (x ≥ 2)."""
    return np.asarray(expi(np.log(np.maximum(x, 2.0))), dtype=np.float64)


def segment_cpu_s(lo: FloatArray, segment: FloatArray | float,
                  curve: tuple[FloatArray, FloatArray]) -> FloatArray:
    """CPU-seconds the Scientist model charges for sieving [lo, lo + segment): more per
    number as numbers grow (more base primes), interpolated in ln x between the
    calibration's points (`Calibration.sieve_curve`)."""
    lx, cpn = curve
    return segment * np.interp(np.log(np.maximum(lo, 2.0)), lx, cpn)


def _primes_between(lo: FloatArray, hi: FloatArray) -> FloatArray:
    # li(x) − li(2) ≈ π(x) within 0.1 % at the demo's magnitudes (10⁸–10¹¹); exact small
    # counts matter nowhere here. Below 2 there are no primes.
    return np.where(hi > lo, li(hi) - li(np.maximum(lo, 2.0)), 0.0)


@dataclass
class Population:
    """Every simulated agent as columns (parameters, then state). Index = agent order."""

    names: tuple[str, ...]
    models: tuple[str, ...]
    # parameters
    workers: FloatArray  # cores it can use at most
    slots: IntArray  # slot-units it bids for
    startup_s: FloatArray
    startup_cpu_s: FloatArray
    efficiency: FloatArray
    kind: IntArray
    claim_cpu_s: FloatArray  # tree CPU per claim
    report_fraction: FloatArray  # CPU per claim the agent reports (its bidder's divisor)
    value_rate: FloatArray  # units per CPU-second (rate kind)
    segment: FloatArray  # numbers per claim (primes kind)
    sieve_curve: tuple[FloatArray, FloatArray]  # primes kind: (ln x, CPU-s per number)
    start: FloatArray  # first number (primes kind)
    ceiling: FloatArray  # rate kind: ceiling ratio; primes kind: Brun–Titchmarsh (computed)
    lie: FloatArray
    first_proof_cpu_s: FloatArray
    burst_period_s: FloatArray
    burst_duty: FloatArray
    burst_phase: FloatArray
    churn_per_s: FloatArray
    churn_per_cpu_s: FloatArray
    strategy: IntArray
    fixed_bid: FloatArray
    initial_bid: FloatArray
    margin: FloatArray
    # state
    cpu_s: FloatArray = field(init=False)
    work_cpu_s: FloatArray = field(init=False)  # CPU since spawn (start-up included)
    proof_carry: FloatArray = field(init=False)  # CPU spent on the claim under way
    claims: IntArray = field(init=False)  # claims finished (honest count of segments)
    true_units: FloatArray = field(init=False)
    # Units actually done in the claims that were accepted (a liar's paid claims hold
    # fewer than they claimed): what the work was worth, for the experiments.
    true_accepted: FloatArray = field(init=False)
    bytes_freed: IntArray = field(init=False)
    churn_carry: FloatArray = field(init=False)  # fractional bytes not yet freed
    verified: IntArray = field(init=False)  # the agent's own ledger of accepted units
    judged_cpu_s: FloatArray = field(init=False)
    hello: BoolArray = field(init=False)

    def __post_init__(self) -> None:
        n = len(self.names)
        self.cpu_s = np.zeros(n)
        self.work_cpu_s = np.zeros(n)
        self.proof_carry = np.zeros(n)
        self.claims = np.zeros(n, dtype=np.int64)
        self.true_units = np.zeros(n)
        self.true_accepted = np.zeros(n)
        self.bytes_freed = np.zeros(n, dtype=np.int64)
        self.churn_carry = np.zeros(n)
        self.verified = np.zeros(n, dtype=np.int64)
        self.judged_cpu_s = np.zeros(n)
        self.hello = np.zeros(n, dtype=np.bool_)

    @property
    def n(self) -> int:
        return len(self.names)

    def demand(self, t0_s: float, t1_s: float, who: IntArray | None = None) -> FloatArray:
        """Cores each agent (of `who`, default all) would use over [t0, t1) if nothing
        held it back."""
        dt = max(t1_s - t0_s, 1e-12)
        idx = np.arange(self.n) if who is None else who
        # From spawn on (t = 0) every worker wants a core; the first startup_cpu_s
        # of it is start-up (imports, worker processes), not work.
        d = self.workers[idx]
        duty = self.burst_duty[idx]
        bursty = duty < 1.0
        if bursty.any():
            # Fraction of [t0, t1) inside the "on" part of each cycle, exact.
            b = idx[bursty]
            p = self.burst_period_s[b]
            on = duty[bursty] * p
            ph = self.burst_phase[b] * p
            d[bursty] *= (_on_time(t1_s + ph, p, on) - _on_time(t0_s + ph, p, on)) / dt
        return d

    def run(self, cpu_s: FloatArray, t0_s: float, t1_s: float, running: BoolArray
            ) -> tuple[IntArray, FloatArray, FloatArray]:
        """Use `cpu_s` CPU-seconds each over [t0, t1): the work done and memory freed.

        Returns (new claims, their true units, the CPU they report) per agent. Only the
        agents that got CPU are touched (most of 10⁵ agents wait paused).
        """
        n = self.n
        new_all = np.zeros(n, dtype=np.int64)
        units_all = np.zeros(n)
        report_all = np.zeros(n)
        a = np.flatnonzero(cpu_s > 0)
        if a.size == 0:
            return new_all, units_all, report_all
        c = cpu_s[a]
        self.cpu_s[a] += c
        before = self.work_cpu_s[a]
        after = before + c
        self.work_cpu_s[a] = after
        kind = self.kind[a]
        # CPU past start-up and the first-proof delay goes to proofs, in whole claims;
        # the part of a claim not finished carries over.
        pre = self.startup_cpu_s[a] + self.first_proof_cpu_s[a]
        to_proof = np.maximum(after - pre, 0.0) - np.maximum(before - pre, 0.0)
        avail = self.proof_carry[a] + np.where(kind != KIND_NONE, to_proof, 0.0)
        cost = self.claim_cpu_s[a]
        primes = kind == KIND_PRIMES
        if primes.any():
            p = a[primes]
            lo = self.start[p] + self.claims[p] * self.segment[p]
            cost = cost.copy()
            cost[primes] = segment_cpu_s(lo, self.segment[p], self.sieve_curve)
        new = np.where(kind != KIND_NONE, np.floor(avail / cost), 0.0).astype(np.int64)
        self.proof_carry[a] = avail - new * cost
        units = np.zeros(a.size)
        rate = kind == KIND_RATE
        r = a[rate]
        units[rate] = new[rate] * self.claim_cpu_s[r] * self.value_rate[r]
        primes &= new > 0
        if primes.any():
            p = a[primes]
            lo = self.start[p] + self.claims[p] * self.segment[p]
            hi = lo + new[primes] * self.segment[p]
            units[primes] = _primes_between(lo, hi)
        self.claims[a] += new
        self.true_units[a] += units
        # Memory: per second while it runs, and per CPU-second.
        dt = t1_s - t0_s
        # Churn per second starts once start-up is over (the part of the interval after
        # it, assuming CPU came evenly), and only while the agent runs.
        started = np.clip((after - self.startup_cpu_s[a]) / c, 0.0, 1.0)
        freed = self.churn_carry[a] + self.churn_per_cpu_s[a] * c + np.where(
            running[a], self.churn_per_s[a] * dt * started, 0.0)
        whole = np.floor(freed)
        self.churn_carry[a] = freed - whole
        self.bytes_freed[a] += whole.astype(np.int64)
        new_all[a] = new
        units_all[a] = units
        report_all[a] = new * cost * self.report_fraction[a]
        return new_all, units_all, report_all

    def bids(self, balances: FloatArray | None, tick_s: float, bounty_per_unit: float,
             who: IntArray | None = None) -> tuple[FloatArray, IntArray]:
        """Each agent's bid for the next interval (price per core-second, slot-units);
        with `who`, only those agents' (the arrays are then aligned with `who`)."""
        idx = np.arange(self.n) if who is None else who
        price = self.fixed_bid[idx].copy()
        value = self.strategy[idx] == BID_VALUE
        if value.any():
            v = idx[value]
            judged = self.judged_cpu_s[v]
            with np.errstate(divide="ignore", invalid="ignore"):
                worth = bounty_per_unit * self.verified[v] / judged * self.margin[v]
            vp = np.where(judged > 0, worth, self.initial_bid[v])
            if balances is not None:
                cap = np.maximum(balances[v], 0.0) / (np.maximum(self.slots[v], 1) * tick_s)
                vp = np.minimum(vp, cap)
            price[value] = np.maximum(vp, 0.0)
        return price, self.slots[idx].copy()


def _on_time(t: float | FloatArray, period: FloatArray, on: FloatArray) -> FloatArray:
    """Time spent 'on' in [0, t) for cycles of `period` that are on for their first `on`."""
    cycles = np.floor(t / period)
    return np.asarray(cycles * on + np.minimum(t - cycles * period, on), dtype=np.float64)


def fair_share(caps: FloatArray, capacity: float, weights: FloatArray | None = None
               ) -> FloatArray:
    """CPU each group gets when groups with these caps share `capacity` cores fairly.

    Max-min fairness (what CFS gives cgroups of equal weight): every group gets
    min(cap, λ) with λ the level at which the capacity is used up. With `weights`
    (cgroup cpu.shares / cpu.weight, relative) each gets min(cap, λ·wᵢ): weighted
    max-min, CFS's long-run split between groups of unequal weight. O(n log n)
    only when the groups want more than there is.
    """
    total = float(caps.sum())
    if total <= capacity:
        return caps.copy()
    if capacity <= 0:
        return np.zeros_like(caps)
    if weights is not None and not np.all(weights == weights.flat[0]):
        return _weighted_share(caps, capacity, np.maximum(weights, 1e-12))
    want = caps > 0
    s = np.sort(caps[want])
    m = s.size
    before = np.concatenate(([0.0], np.cumsum(s)[:-1]))
    level = (capacity - before) / (m - np.arange(m))
    lam = float(level[int(np.argmax(level <= s))])
    return np.minimum(caps, lam)


def _weighted_share(caps: FloatArray, capacity: float, w: FloatArray) -> FloatArray:
    idx = np.flatnonzero(caps > 0)
    ratio = caps[idx] / w[idx]
    order = idx[np.argsort(ratio, kind="stable")]
    r_s, c_s, w_s = caps[order] / w[order], caps[order], w[order]
    before = np.concatenate(([0.0], np.cumsum(c_s)[:-1]))
    rest = float(w_s.sum()) - np.concatenate(([0.0], np.cumsum(w_s)[:-1]))
    level = (capacity - before) / np.maximum(rest, 1e-300)
    k = int(np.argmax(level <= r_s)) if np.any(level <= r_s) else len(order) - 1
    return np.asarray(np.minimum(caps, float(level[k]) * w), dtype=np.float64)


@dataclass(frozen=True)
class AgentModel:
    """One simulated agent as configured: name, model kind, workers, options."""

    name: str
    model: str
    workers: int
    options: Mapping[str, float]


def build_population(agents: Sequence[AgentModel], calibration: Calibration,
                     rng: np.random.Generator) -> Population:
    """Columns for `agents` (options already validated with `check_model_options`)."""
    from maxwell.agents.sieve import interval_count_bound

    cols: dict[str, list[float]] = {k: [] for k in (
        "workers", "slots", "startup_s", "startup_cpu_s", "efficiency", "kind", "claim_cpu_s",
        "report_fraction",
        "value_rate", "segment", "start", "ceiling", "lie", "first_proof_cpu_s",
        "burst_period_s", "burst_duty", "churn_per_s", "churn_per_cpu_s", "strategy",
        "fixed_bid", "initial_bid", "margin")}
    cal = calibration
    for a in agents:
        o = {k: float(v.default) for k, v in MODEL_OPTIONS[a.model].items()}
        o.update(a.options)
        row = dict.fromkeys(cols, 0.0)
        row.update(workers=float(a.workers), slots=o["slots"] or float(a.workers),
                   startup_s=o["startup_s"], startup_cpu_s=o["startup_cpu_s"], efficiency=1.0,
                   lie=1.0, burst_period_s=1.0, burst_duty=1.0, claim_cpu_s=1.0,
                   report_fraction=1.0, ceiling=2.0)
        if a.model == "scientist":
            seg = o["segment_size"]
            row.update(kind=KIND_PRIMES, segment=seg, start=o["start"],
                       claim_cpu_s=seg / (cal.sieve_numbers_per_cpu_s * cal.sieve_speed),
                       report_fraction=cal.worker_cpu_fraction,
                       efficiency=cal.scientist_cpu_efficiency, strategy=BID_VALUE,
                       initial_bid=o["initial_bid"], margin=o["margin"])
            if "startup_s" not in a.options:
                row["startup_s"] = cal.scientist_startup_s
            if "startup_cpu_s" not in a.options:
                row["startup_cpu_s"] = cal.scientist_startup_cpu_s
            row["ceiling"] = float(interval_count_bound(0, int(seg)))
        elif a.model in ("miner", "parasite"):
            row.update(kind=KIND_NONE, strategy=BID_FIXED, fixed_bid=o["bid"],
                       churn_per_s=o["churn_bytes_per_s"])
            if a.model == "miner":
                row["efficiency"] = cal.miner_cpu_efficiency
                row["churn_per_s"] = o["churn_bytes_per_s"] * cal.miner_churn_traced
                if "startup_s" not in a.options:
                    row["startup_s"] = cal.miner_startup_s
                if "startup_cpu_s" not in a.options:
                    row["startup_cpu_s"] = cal.miner_startup_cpu_s
        else:
            row.update(kind=KIND_RATE, value_rate=o["value_rate"], claim_cpu_s=o["claim_cpu_s"],
                       ceiling=o["ceiling_ratio"], strategy=BID_VALUE,
                       initial_bid=o["initial_bid"], margin=o["margin"],
                       lie=o.get("lie_factor", 1.0),
                       first_proof_cpu_s=o.get("first_proof_cpu_s", 0.0),
                       burst_period_s=o.get("burst_period_s", 1.0),
                       burst_duty=o.get("burst_duty", 1.0),
                       churn_per_cpu_s=o.get("churn_bytes_per_cpu_s", 0.0))
        for k in cols:
            cols[k].append(float(row[k]))
    n = len(agents)

    def f(k: str) -> FloatArray:
        return np.asarray(cols[k], dtype=np.float64).reshape(n)

    def i(k: str) -> IntArray:
        return np.asarray(cols[k], dtype=np.float64).reshape(n).astype(np.int64)

    return Population(
        names=tuple(a.name for a in agents),
        models=tuple(a.model for a in agents),
        workers=f("workers"), slots=i("slots"), startup_s=f("startup_s"),
        startup_cpu_s=f("startup_cpu_s"),
        efficiency=f("efficiency"), kind=i("kind"), claim_cpu_s=f("claim_cpu_s"),
        report_fraction=f("report_fraction"), value_rate=f("value_rate"), segment=f("segment"),
        sieve_curve=cal.sieve_curve(),
        start=f("start"), ceiling=f("ceiling"), lie=f("lie"),
        first_proof_cpu_s=f("first_proof_cpu_s"), burst_period_s=f("burst_period_s"),
        burst_duty=f("burst_duty"), burst_phase=rng.random(n),
        churn_per_s=f("churn_per_s"), churn_per_cpu_s=f("churn_per_cpu_s"),
        strategy=i("strategy"), fixed_bid=f("fixed_bid"), initial_bid=f("initial_bid"),
        margin=f("margin"),
    )
