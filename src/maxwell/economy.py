"""The economy's pure core: one tick of price → auction → settlement → decisions.

`step(state, obs, params, rng)` joins the three pure packages: the PID turns the die
temperature into the reserve price (`maxwell.control`), the GSP auction sells the
next interval's CPU slots at or above it (`maxwell.market`), and the ledger books
every credit that moves (`maxwell.ledger`). The live supervisor and a simulator call
the same function; it does no I/O, reads no clock and draws randomness only from the
generator passed in (auction tie-breaks), so the same inputs and seed give the same
outputs.

Money: one credit is abstract, anchored by the energy price. With the defaults
(`energy_price_per_j` = 0.01) one credit buys 100 J, about ten seconds of one busy
desktop core; the reserve price moves between 0.05 and 5 credits per core-second.
Balances are integer micro-credits (1 credit = 10⁶ µcr).

Accounts: one wallet per agent, then `treasury` (collects rent, funds the initial
grants), `tax_authority` (collects Landauer's tax) and `bounty_pool` (pays bounties
and sponsors' income, and receives fines so that fraud funds honest work). The sum
of all accounts never changes; it is checked every step and a difference raises
`ConservationError`.

The thermal loop's actuator is the capacity for sale: the PID sets the reserve r, and
only c = K − (r − r_min)/price_per_core cores are sold (`capacity_for_sale`; whole
slots while they fit, then part of the next, `sale_weights`), so heat withdraws CPU
whatever the bids are, and the marginal winner runs on a fraction of a core.

Trials (value discovery). A value bidder learns what its work is worth only from
verdicts on work it did, and bids only while it runs (a paused agent is frozen), so
one that never ran keeps its opening bid, and one whose verdicts reached it frozen
cannot bid on them: where the capacity fits one agent, whoever first measured its
value can hold the CPU for good and rivals worth more are never tried. So a share
`trial_share` of the cores held by *proven* winners (agents with verified work whose
bid could reflect it) is lent each tick to bidders without such a bid (no verified
work yet, or verdicts that arrived while they were frozen) that bid at least the
reserve and win nothing: at most `trial_share` of a core each, until each has had
`trial_cpu_s` core-seconds of trials; they pay the reserve for it. The share is taken
from proven winners in proportion to the cores they hold (each pays its price for
what it keeps). Trials are allocated without looking at bids above the reserve (the
agent furthest into its trial first, then seeded draws made before the auction),
because a mechanism that learns values and stays truthful must keep exploration
apart from exploitation (Babaioff, Sharma & Slivkins, "Characterizing truthful
multi-armed bandit mechanisms", EC 2009): no bid buys a trial, and a trial's price
is the reserve, not a bid. Lying gains nothing here: trials are bounded per agent
and priced, a false claim made in one is fined like any other and ends no trial, and
verified work makes the agent a bidder like the rest. Unproven winners lend nothing:
an agent without verified income that holds cores is being tried already, at its
own expense (rent from a finite wallet), and the auction moves on when its money
runs out. (Lending from them too would discover useful agents sooner, e.g. the
built-in demo's Scientist ~10 s before the Miner goes bankrupt, and would end the
demo's Miner by starvation instead of bankruptcy; not done.)

Wakes. A paused agent is frozen and cannot send a new bid: its last bid stands. One
whose standing bid can never win (0 slots, or a price below r_min) would stay frozen
for good, so once it has slept `wake_every_s` it runs one interval on `WAKE_CORES`,
billed at the reserve, and may bid again (if it can pay for that: a wake never
empties a wallet). Wakes come out of the capacity for sale before the auction, at
most `WAKE_SHARE` of it in one interval (at least one agent while the capacity is
twice WAKE_CORES or more): the longest asleep first, equal ones by seeded draws.
Otherwise agents that all fell asleep together would all wake in the same interval,
on top of what the thermal loop allows, and a crowd of agents bidding for nothing
could take the winners' CPU at the reserve every `wake_every_s` (10⁴ of them: 500
cores). A hostile agent gains nothing by a wake: WAKE_CORES, at most once per
`wake_every_s`, at the reserve, the least any winner pays.

Order of settlement within a tick, for what happened over the last interval:
rewards (bounties for verified units, then sponsored income), fines, Landauer's tax;
then the price and the auction for the next interval, whose winners prepay their
rent at the auction's prices (each unit pays the rival bid it displaced, or r; see
`maxwell.market.auction`) for Δt, the observed tick length. Income comes
first so an agent that earns its keep is never killed by the order of bookings.
No charge takes more than the wallet holds: the rest is unpaid and the agent is
bankrupt, as is one whose wallet a charge empties. Bankruptcy is permanent: the
agent leaves the economy (its slots are forfeited, its wallet stays at zero, it
earns and pays nothing more), `kill` asks the supervisor for apoptosis and an
`Obituary` names the cause (``fines``, ``tax`` or ``rent``: the first bill that
emptied the wallet) with the balance history. In shadow mode (`enforce=False`,
policy "cfs") every bill is computed and booked the same way, but every living
agent runs and nobody is killed. Nothing here looks at an agent's name or kind.
"""

from __future__ import annotations

import functools
import itertools
import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import NamedTuple

import numpy as np
import numpy.typing as npt

from maxwell import defaults as D
from maxwell.control import PIDGains, PIDLimits, PIDState, default_gains, pid_step
from maxwell.ledger import (
    UCR_PER_CREDIT,
    ConservationError,
    Ledger,
    Transfer,
    landauer_tax_ucr,
    to_ucr,
)
from maxwell.market import Allocation, gsp

IntArray = npt.NDArray[np.int64]
FloatArray = npt.NDArray[np.float64]
BoolArray = npt.NDArray[np.bool_]

TREASURY = "treasury"
TAX_AUTHORITY = "tax_authority"
BOUNTY_POOL = "bounty_pool"
SYSTEM_ACCOUNTS = (TREASURY, TAX_AUTHORITY, BOUNTY_POOL)
CAUSES = ("fines", "tax", "rent")

__all__ = [
    "BOUNTY_POOL",
    "SYSTEM_ACCOUNTS",
    "TAX_AUTHORITY",
    "TREASURY",
    "ConservationError",
    "Decisions",
    "EconomyParams",
    "EconomyState",
    "Obituary",
    "Observation",
    "PIDTerms",
    "Transfer",
    "initial_state",
    "step",
    "trial_grants",
    "wake_grants",
]


def _default_gains() -> PIDGains:
    # SIMC gains of the desktop class's model plant; a calibrated machine passes its own.
    return default_gains(D.HW_CLASS)


def _default_limits() -> PIDLimits:
    return PIDLimits(r_min=D.R_MIN, r_max=D.R_MAX)


@dataclass(frozen=True)
class EconomyParams:
    """Everything fixed for a run. Per-agent tuples are in the order of `agents`.

    agents: unique account names (not "treasury", "tax_authority", "bounty_pool").
    initial_funds: credits granted to each agent from the treasury at the start.
    slots: K, CPU slots sold per tick; slot_weights: α₁ ≥ … ≥ α_K in cores (None = 1).
    enforce: False is policy "cfs": the same bills, booked in a shadow ledger, but
    nobody is paused or killed.
    setpoint_c, gains, limits: the price controller (reserve in credits per core-second).
    energy_price_per_j: credits per Joule (converts Landauer's Joules to credits).
    landauer_lambda: multiplier λ on Landauer's bound (the physical cost alone is
    ≈ 2.5·10⁻¹¹ J per GiB at 300 K; the default 10¹⁴ makes one GiB freed at 70 °C
    cost ≈ 28 credits).
    bounty_per_unit: credits per verified work unit (booked rounded to a whole
    micro-credit per unit, so below 5·10⁻⁷ it pays nothing); fine_per_fraud: credits
    per rejected claim (plus `Observation.fraud_units` × bounty_per_unit); bounty_pool:
    credits in the pool at the start. price_per_core: credits per core-second of reserve
    above r_min per core withheld from sale (the loop's actuator).
    income_per_s: per agent, credits per second a sponsor pays a living agent out of
    the bounty pool (booked as "grant"); None = nobody.
    history_ticks: how many end-of-tick balances an obituary carries.
    trial_share, trial_cpu_s: value discovery (module doc, "Trials"); trial_share 0
    turns trials off. wake_every_s: how often an agent whose bid can never win is
    thawed for one interval to re-bid (module doc, "Wakes").
    """

    agents: tuple[str, ...]
    initial_funds: tuple[float, ...]
    slots: int
    slot_weights: tuple[float, ...] | None = None
    enforce: bool = True
    setpoint_c: float = D.SETPOINT_C
    gains: PIDGains = field(default_factory=_default_gains)
    limits: PIDLimits = field(default_factory=_default_limits)
    energy_price_per_j: float = D.ENERGY_PRICE_PER_J
    landauer_lambda: float = D.LANDAUER_LAMBDA
    bounty_per_unit: float = D.BOUNTY_PER_UNIT
    fine_per_fraud: float = D.FINE_PER_FRAUD
    bounty_pool: float = D.BOUNTY_POOL
    price_per_core: float = D.PRICE_PER_CORE
    income_per_s: tuple[float, ...] | None = None
    history_ticks: int = 60
    trial_share: float = D.TRIAL_SHARE
    trial_cpu_s: float = D.TRIAL_CPU_S
    wake_every_s: float = D.WAKE_EVERY_S

    def __post_init__(self) -> None:
        n = len(self.agents)
        if len(set(self.agents)) != n:
            raise ValueError("EconomyParams.agents: names must be unique")
        clash = set(self.agents) & set(SYSTEM_ACCOUNTS)
        if clash:
            raise ValueError(f"EconomyParams.agents: {sorted(clash)} is reserved for the ledger")
        if len(self.initial_funds) != n:
            raise ValueError("EconomyParams.initial_funds: one amount per agent")
        if any(not math.isfinite(f) or f < 0 for f in self.initial_funds):
            raise ValueError("EconomyParams.initial_funds: amounts must be finite and >= 0")
        if self.slots < 1:
            raise ValueError("EconomyParams.slots: need at least one slot")
        if self.slot_weights is not None:
            w = self.slot_weights
            if len(w) != self.slots:
                raise ValueError("EconomyParams.slot_weights: one weight per slot")
            if any(not math.isfinite(x) or x <= 0 for x in w) or any(
                a < b for a, b in itertools.pairwise(w)
            ):
                raise ValueError("EconomyParams.slot_weights: positive and non-increasing")
        if self.income_per_s is not None and (
            len(self.income_per_s) != n
            or any(not math.isfinite(x) or x < 0 for x in self.income_per_s)
        ):
            raise ValueError("EconomyParams.income_per_s: one finite rate >= 0 per agent")
        for name in (
            "setpoint_c",
            "energy_price_per_j",
            "landauer_lambda",
            "bounty_per_unit",
            "fine_per_fraud",
            "bounty_pool",
            "price_per_core",
        ):
            value = getattr(self, name)
            if not math.isfinite(value) or (name != "setpoint_c" and value < 0):
                raise ValueError(f"EconomyParams.{name}: must be finite and >= 0")
        if self.history_ticks < 1:
            raise ValueError("EconomyParams.history_ticks: at least 1")
        if self.price_per_core <= 0:
            raise ValueError("EconomyParams.price_per_core: must be > 0")
        if not (0.0 <= self.trial_share <= 1.0):
            raise ValueError("EconomyParams.trial_share: must be in [0, 1]")
        if not (math.isfinite(self.trial_cpu_s) and self.trial_cpu_s >= 0):
            raise ValueError("EconomyParams.trial_cpu_s: must be finite and >= 0")
        if not (math.isfinite(self.wake_every_s) and self.wake_every_s > 0):
            raise ValueError("EconomyParams.wake_every_s: must be finite and > 0")

    @property
    def n_agents(self) -> int:
        return len(self.agents)

    @functools.cached_property
    def income_array(self) -> FloatArray:
        """`income_per_s` as an array (converted once: 10⁵ floats cost ms a tick)."""
        rates = self.income_per_s if self.income_per_s is not None else (0.0,) * self.n_agents
        return np.asarray(rates, dtype=np.float64)

    @functools.cached_property
    def accounts(self) -> tuple[str, ...]:
        """Ledger accounts: the agents' wallets, then the system accounts."""
        return (*self.agents, *SYSTEM_ACCOUNTS)

    @property
    def total_cores(self) -> float:
        """Σ α: the cores the slots hold when all are for sale."""
        return float(self.weights.sum())

    @property
    def control_limits(self) -> PIDLimits:
        """The reserve range the controller works in: `limits`, with the top cut to
        where the capacity for sale reaches zero (r_min + Σα·price_per_core), so the
        integrator never winds up where a higher price changes nothing."""
        top = self.limits.r_min + self.total_cores * self.price_per_core
        return PIDLimits(self.limits.r_min, max(self.limits.r_min, min(self.limits.r_max, top)))

    @property
    def weights(self) -> FloatArray:
        """α as an array (all ones when `slot_weights` is None)."""
        if self.slot_weights is None:
            return np.ones(self.slots, dtype=np.float64)
        return np.asarray(self.slot_weights, dtype=np.float64)


@dataclass(frozen=True)
class EconomyState:
    """The economy between ticks (treat as immutable: `step` never changes it).

    balances_ucr: every account in `EconomyParams.accounts` order (int64 µcr);
    total_ucr: their sum, fixed at the start. alive: the agent's process was alive at
    the last observation and has not been killed; bankrupt: out of the economy for
    good. slots: slot-units held for the current interval. pid, price: controller
    memory and the current reserve (credits per core-second). history_ucr: the
    last h end-of-tick wallet arrays (n each), oldest first, shared between states.
    unpaid_ucr: charges never paid, per agent; shortfall_ucr: rewards the pool could
    not pay. proven: the agent has had verified work; trial_s: core-seconds of trials
    it was granted; asleep_s: seconds since it last ran; news: verdicts arrived since
    it last ran (None: all zero / False).
    """

    tick: int
    balances_ucr: IntArray
    total_ucr: int
    alive: BoolArray
    bankrupt: BoolArray
    slots: IntArray
    pid: PIDState
    price: float
    history_ucr: tuple[IntArray, ...]
    unpaid_ucr: IntArray
    shortfall_ucr: int = 0
    proven: BoolArray | None = None
    trial_s: FloatArray | None = None
    asleep_s: FloatArray | None = None
    news: BoolArray | None = None

    def balance(self, account: str, params: EconomyParams) -> float:
        """One account's balance in credits."""
        return int(self.balances_ucr[params.accounts.index(account)]) / UCR_PER_CREDIT


@dataclass(frozen=True)
class Observation:
    """What the supervisor measured over the interval that just ended (arrays per agent).

    t_s: time at the end of the interval; dt_s: its length (also the length the next
    interval's rent is prepaid for); temp_c: die temperature now; power_w, energy_j:
    host power and energy of the interval (recorded context, not billed here).
    alive: the agent's process tree still exists; cpu_s: CPU seconds used;
    bytes_freed: bytes released (taxed); work_units: verified units (rewarded);
    frauds: rejected claims (fined); bid_price: credits per core-second;
    bid_slots: slot-units wanted for the next interval. fraud_units: per agent, Σ over
    this interval's rejected claims of claimed units ÷ the probability that such a lie
    is detected (the verifier states it per claim); fined at `bounty_per_unit` each
    on top of `fine_per_fraud` per claim, so a lie never pays in expectation (None: 0).
    """

    t_s: float
    dt_s: float
    temp_c: float
    power_w: float
    energy_j: float
    alive: BoolArray
    cpu_s: FloatArray
    bytes_freed: IntArray
    work_units: IntArray
    frauds: IntArray
    bid_price: FloatArray
    bid_slots: IntArray
    fraud_units: FloatArray | None = None


class PIDTerms(NamedTuple):
    """The controller's P, I and D parts behind this tick's price (credits per core-s)."""

    p: float
    i: float
    d: float


class Obituary(NamedTuple):
    """Why an agent went bankrupt: cause is "fines", "tax" or "rent" (the first bill
    that emptied its wallet); balance_history: its last end-of-tick balances in credits,
    oldest first, ending with the zero; unpaid: credits it could not pay this tick."""

    agent: str
    cause: str
    balance_history: tuple[float, ...]
    tick: int = 0
    unpaid: float = 0.0


@dataclass(frozen=True)
class Decisions:
    """What the supervisor enforces for the next interval and records for this tick.

    price: reserve (credits per core-second); pid: its P, I, D parts. slots: slot-units
    won for the next interval; cores: Σ α of those slots (the CPU quota); run: whether
    the agent runs next interval (every living agent in shadow mode); kill: apoptosis
    now (never in shadow mode). rent, tax, reward, fine: credits moved this tick per
    agent (reward = bounties + sponsored income); balances: wallets after the tick;
    bankrupt: out of the economy. transfers: every ledger movement of the tick;
    obituaries: agents that went bankrupt this tick. unpaid: credits charged but not
    paid this tick; shortfall: credits of rewards the pool could not pay this tick.
    allocation: the auction's full result (ranking and the tie-break draws).
    capacity: cores offered for sale this interval (the thermal loop's actuator).
    trial: cores granted as trials (module doc, "Trials"; included in `cores`);
    wake: agents thawed for this interval to re-bid (module doc, "Wakes").
    """

    tick: int
    price: float
    pid: PIDTerms
    slots: IntArray
    cores: FloatArray
    run: BoolArray
    kill: BoolArray
    rent: FloatArray
    tax: FloatArray
    reward: FloatArray
    fine: FloatArray
    balances: FloatArray
    bankrupt: BoolArray
    transfers: Sequence[Transfer]
    obituaries: tuple[Obituary, ...]
    unpaid: FloatArray
    shortfall: float
    allocation: Allocation
    capacity: float = 0.0
    trial: FloatArray | None = None
    wake: BoolArray | None = None

    @property
    def pid_p(self) -> float:
        return self.pid.p

    @property
    def pid_i(self) -> float:
        return self.pid.i

    @property
    def pid_d(self) -> float:
        return self.pid.d


def initial_state(params: EconomyParams) -> tuple[EconomyState, Sequence[Transfer]]:
    """The state before the first tick: the treasury grants each agent its funds
    (tick 0 transfers, reason "grant"); the pool holds `bounty_pool`."""
    n = params.n_agents
    funds = to_ucr(np.asarray(params.initial_funds, dtype=np.float64).reshape(n))
    balances = np.zeros(n + len(SYSTEM_ACCOUNTS), dtype=np.int64)
    accounts = params.accounts
    balances[accounts.index(TREASURY)] = int(funds.sum())
    balances[accounts.index(BOUNTY_POOL)] = int(to_ucr(params.bounty_pool))
    ledger = Ledger(accounts, balances)
    ledger.pay_many(accounts.index(TREASURY), np.arange(n), funds, "grant", 0)
    ledger.check()
    start_price = params.limits.r_min
    state = EconomyState(
        tick=0,
        balances_ucr=ledger.balances_ucr,
        total_ucr=ledger.total_ucr,
        alive=np.ones(n, dtype=np.bool_),
        bankrupt=np.zeros(n, dtype=np.bool_),
        slots=np.zeros(n, dtype=np.int64),
        pid=PIDState.zeros(1, integral=start_price),
        price=float(start_price),
        history_ucr=(ledger.balances_ucr[:n],),
        unpaid_ucr=np.zeros(n, dtype=np.int64),
        proven=np.zeros(n, dtype=np.bool_),
        trial_s=np.zeros(n, dtype=np.float64),
        asleep_s=np.zeros(n, dtype=np.float64),
        news=np.zeros(n, dtype=np.bool_),
    )
    return state, ledger.drain()


MIN_CAPACITY_CORES = 0.01  # the smallest CPU quota a cgroup enforces (1 ms per 100 ms)
WAKE_CORES = 0.05  # a woken agent's quota: enough for a Python agent to read its ticks and bid
WAKE_SHARE = 0.05  # of the capacity for sale: the most that wakes take in one interval


def trial_grants(
    eligible: BoolArray,
    trial_s: FloatArray,
    lendable: float,
    each_cores: float,
    budget_s: float,
    dt_s: float,
    keys: FloatArray,
) -> FloatArray:
    """Cores of trial per agent for the next interval (module doc, "Trials").

    Up to `lendable` cores go to the `eligible` agents, at most `each_cores` each and
    never past `budget_s` core-seconds of trials in all (`trial_s` granted so far):
    the agent furthest into its trial first (so trials finish rather than spread
    thin), equal ones in the order of `keys` (per agent: seeded draws, lower first).
    Bids play no part.
    """
    n = eligible.size
    out = np.zeros(n, dtype=np.float64)
    idx = np.flatnonzero(eligible)
    if idx.size == 0 or lendable <= 0:
        return out
    room = np.minimum(each_cores, np.maximum(budget_s - trial_s[idx], 0.0) / dt_s)
    order = np.lexsort((keys[idx], -trial_s[idx]))
    room = room[order]
    # Fill in order: each takes its room while the lendable cores last.
    before = np.concatenate(([0.0], np.cumsum(room)[:-1]))
    got = np.clip(lendable - before, 0.0, room)
    out[idx[order]] = got
    return out


def wake_grants(due: BoolArray, asleep_s: FloatArray, capacity: float,
                rng: np.random.Generator) -> BoolArray:
    """The agents woken for the next interval (module doc, "Wakes") among those `due`.

    At most WAKE_SHARE of `capacity` in WAKE_CORES each (one agent while the capacity
    is at least 2·WAKE_CORES), the longest asleep first; equal ones in the order of
    seeded draws, made only when not every due agent fits.
    """
    out = np.zeros(due.size, dtype=np.bool_)
    idx = np.flatnonzero(due)
    if idx.size == 0 or capacity < 2 * WAKE_CORES - 1e-12:
        return out
    room = max(1, math.floor(WAKE_SHARE * capacity / WAKE_CORES + 1e-9))
    if idx.size <= room:
        out[idx] = True
        return out
    order = np.lexsort((rng.random(idx.size), -asleep_s[idx]))
    out[idx[order[:room]]] = True
    return out


def capacity_for_sale(price: float, params: EconomyParams) -> float:
    """Cores offered for the next interval at reserve `price`: all of them at r_min,
    one core fewer per `price_per_core` above it, never below MIN_CAPACITY_CORES."""
    withheld = (price - params.limits.r_min) / params.price_per_core
    return float(min(max(params.total_cores - withheld, MIN_CAPACITY_CORES), params.total_cores))


def sale_weights(alpha: FloatArray, capacity: float) -> FloatArray:
    """The slot weights on sale when only `capacity` cores are: whole slots in order
    while they fit, then the part of the next one that does (the marginal winner's
    CPU quota), so supply is divisible and the loop need not jump a whole core."""
    cum = np.cumsum(alpha)
    whole = int(np.searchsorted(cum, capacity + 1e-9, side="right"))
    taken = float(cum[whole - 1]) if whole else 0.0
    rest = capacity - taken
    if whole < alpha.size and rest > 1e-6:
        return np.append(alpha[:whole], min(rest, float(alpha[whole])))
    if whole == 0:
        return np.array([max(capacity, MIN_CAPACITY_CORES)])
    return np.asarray(alpha[:whole], dtype=np.float64)


def _per_agent(name: str, x: npt.ArrayLike, n: int, kind: type) -> npt.NDArray[np.generic]:
    arr = np.asarray(x)
    if arr.shape != (n,):
        raise ValueError(f"Observation.{name} has shape {arr.shape}, expected ({n},)")
    if kind is bool:
        return arr.astype(np.bool_)
    if kind is int:
        if arr.size and not (np.issubdtype(arr.dtype, np.integer) or arr.dtype == np.bool_):
            raise ValueError(f"Observation.{name} must hold integers")
        out = arr.astype(np.int64)
        if np.any(out < 0):
            raise ValueError(f"Observation.{name} must be >= 0")
        return out
    out_f = arr.astype(np.float64)
    if not np.all(np.isfinite(out_f)) or np.any(out_f < 0):
        raise ValueError(f"Observation.{name} must be finite and >= 0")
    return out_f


def step(
    state: EconomyState, obs: Observation, params: EconomyParams, rng: np.random.Generator
) -> tuple[EconomyState, Decisions]:
    """Settle the interval that just ended and decide the next one (see the module doc)."""
    n = params.n_agents
    if not (math.isfinite(obs.dt_s) and obs.dt_s > 0):
        raise ValueError(f"Observation.dt_s must be a positive number of seconds, got {obs.dt_s!r}")
    if not math.isfinite(obs.temp_c):
        raise ValueError("Observation.temp_c is not finite: hold the last reading instead")
    obs_alive = _per_agent("alive", obs.alive, n, bool).astype(np.bool_)
    bytes_freed = _per_agent("bytes_freed", obs.bytes_freed, n, int).astype(np.int64)
    work_units = _per_agent("work_units", obs.work_units, n, int).astype(np.int64)
    frauds = _per_agent("frauds", obs.frauds, n, int).astype(np.int64)
    bid_price = _per_agent("bid_price", obs.bid_price, n, float).astype(np.float64)
    bid_slots = _per_agent("bid_slots", obs.bid_slots, n, int).astype(np.int64)

    tick = state.tick + 1
    accounts = params.accounts
    # The accounts are unique by construction (EconomyParams checks) and balances are
    # never negative (the ledger checks every step): skip the O(n) re-validation.
    ledger = Ledger.of(accounts, state.balances_ucr)
    if ledger.total_ucr != state.total_ucr:
        raise ConservationError(
            f"state holds {ledger.total_ucr} µcr in total, expected {state.total_ucr} µcr"
        )
    # System accounts follow the n wallets (EconomyParams.accounts).
    treasury = n + SYSTEM_ACCOUNTS.index(TREASURY)
    tax_authority = n + SYSTEM_ACCOUNTS.index(TAX_AUTHORITY)
    pool = n + SYSTEM_ACCOUNTS.index(BOUNTY_POOL)

    alive = state.alive & obs_alive
    member = ~state.bankrupt  # still in the economy (living or not)
    members = np.flatnonzero(member)
    zeros_i = np.zeros(n, dtype=np.int64)

    # Rewards first: bounties for verified units, then sponsored income of the living.
    # Payments and bills touch only the agents that have something to pay or receive
    # (a zero moves nothing and books nothing), so a tick of 10⁵ agents costs what its
    # few payers cost.
    bounty_want = np.where(member, work_units * int(to_ucr(params.bounty_per_unit)), 0)
    payees = np.flatnonzero(bounty_want > 0)
    bounty_paid, bounty_short = ledger.pay_many(
        pool, payees, bounty_want[payees], "bounty", tick
    )
    reward_ucr = zeros_i.copy()
    reward_ucr[payees] += bounty_paid
    shortfall_ucr = int(bounty_short.sum())
    if params.income_per_s is not None:
        rate = params.income_array
        income_want = np.where(member & alive, to_ucr(rate * obs.dt_s), 0)
        payees = np.flatnonzero(income_want > 0)
        income_paid, income_short = ledger.pay_many(
            pool, payees, income_want[payees], "grant", tick
        )
        reward_ucr[payees] += income_paid
        shortfall_ucr += int(income_short.sum())

    # Bills for the interval, in order; the first one that empties a wallet is the cause.
    # cause: 0 solvent, else 1 + the index in CAUSES of the first bill that emptied it.
    cause = np.zeros(n, dtype=np.int8)
    unpaid = zeros_i.copy()

    def bill(want: IntArray, dst: int, reason: str, label: str) -> IntArray:
        # A wallet emptied by an earlier bill still owes this one (recorded as unpaid).
        active = members[want[members] > 0]
        want_a = want[active]
        paid_a, unpaid_a = ledger.charge_many(active, dst, want_a, reason, tick)
        paid = zeros_i.copy()
        paid[active] = paid_a
        unpaid[active] += unpaid_a
        emptied = active[ledger.balances_view[active] == 0]
        cause[emptied[cause[emptied] == 0]] = 1 + CAUSES.index(label)
        return paid

    fine_want = frauds * int(to_ucr(params.fine_per_fraud))
    if obs.fraud_units is not None:
        fraud_units = _per_agent("fraud_units", obs.fraud_units, n, float).astype(np.float64)
        fined = np.flatnonzero(fraud_units)  # converting only the nonzero: 10⁵ agents
        fine_want[fined] += to_ucr(fraud_units[fined] * params.bounty_per_unit)
    fine_ucr = bill(fine_want, pool, "fine", "fines")
    tax_want = np.zeros(n, dtype=np.int64)
    freed = np.flatnonzero(bytes_freed)
    tax_want[freed] = landauer_tax_ucr(
        bytes_freed[freed], obs.temp_c, params.energy_price_per_j, params.landauer_lambda
    )
    tax_ucr = bill(tax_want, tax_authority, "landauer_tax", "tax")

    # Price for the next interval, then the auction among solvent living agents.
    pid_state, pid_out = pid_step(
        params.gains,
        params.control_limits,
        params.setpoint_c,
        state.pid,
        np.array([obs.temp_c]),
        obs.dt_s,
    )
    price = float(pid_out.u[0])
    capacity = capacity_for_sale(price, params)
    bidders = member & alive & (cause == 0)
    proven = (state.proven if state.proven is not None else np.zeros(n, dtype=np.bool_)) | (
        work_units > 0
    )
    # Verdicts the agent has not read yet: it reads them in the next interval it runs.
    news = (state.news if state.news is not None else np.zeros(n, dtype=np.bool_)) | (
        (work_units > 0) | (frauds > 0)
    )
    trial_s = state.trial_s if state.trial_s is not None else np.zeros(n, dtype=np.float64)
    # Trial candidates, and their order's draws, before the auction: the draws must
    # not depend on how many ties the bids made the auction break.
    candidate = np.zeros(n, dtype=np.bool_)
    trial_keys = np.zeros(0)
    if params.trial_share > 0 and params.trial_cpu_s > 0 and bool((proven & bidders).any()):
        candidate = (bidders & (~proven | news) & (trial_s < params.trial_cpu_s - 1e-12)
                     & (bid_slots > 0) & (bid_price >= price))
        if candidate.any():
            trial_keys = rng.random(int(candidate.sum()))
    # Wakes (module doc): a paused agent whose standing bid can never win (so it wins
    # nothing in this auction either), asleep for wake_every_s, runs one interval on
    # WAKE_CORES to bid again, out of the capacity for sale. Only one that can pay for
    # it: a wake must never be what empties a wallet.
    asleep_s = state.asleep_s if state.asleep_s is not None else np.zeros(n, dtype=np.float64)
    wake = np.zeros(n, dtype=np.bool_)
    if params.enforce:
        never = (bid_slots <= 0) | (bid_price < params.limits.r_min)
        due = bidders & never & (asleep_s + obs.dt_s >= params.wake_every_s - 1e-9)
        if due.any():
            due &= ledger.balances_view[:n] > to_ucr(WAKE_CORES * price * obs.dt_s)
            wake = wake_grants(due, asleep_s, capacity, rng)
    woken_cores = WAKE_CORES * float(np.count_nonzero(wake))
    alloc = gsp(
        bid_price,
        np.where(bidders, bid_slots, 0),
        price,
        sale_weights(params.weights, capacity - woken_cores),
        rng,
        dt_s=obs.dt_s,
    )
    won_cores = np.asarray(alloc.cores, dtype=np.float64)
    payment = np.asarray(alloc.payment, dtype=np.float64)
    trial = np.zeros(n, dtype=np.float64)
    if trial_keys.size:
        keys = np.zeros(n)
        keys[candidate] = trial_keys
        eligible = candidate & (alloc.slots == 0)
        lender = bidders & proven & (alloc.slots > 0)
        held = float(won_cores[lender].sum())
        if held > 0 and eligible.any():
            trial = trial_grants(eligible, trial_s,
                                 params.trial_share * min(capacity - woken_cores, held),
                                 params.trial_share * float(params.weights[0]),
                                 params.trial_cpu_s, obs.dt_s, keys)
            lent = float(trial.sum())
            if lent > 0:
                # Proven winners keep (1 − lent/held) of their cores and pay their
                # price for what they keep.
                keep = np.where(lender, 1.0 - lent / held, 1.0)
                won_cores = won_cores * keep
                payment = payment * keep
                payment = payment + trial * price * obs.dt_s
    if wake.any():
        payment = payment + np.where(wake, WAKE_CORES * price * obs.dt_s, 0.0)
    rent_want = np.zeros(n, dtype=np.int64)
    payers = np.flatnonzero(payment > 0)
    rent_want[payers] = to_ucr(payment[payers])
    rent_ucr = bill(rent_want, treasury, "rent", "rent")

    newly_bankrupt = cause != 0
    bankrupt = state.bankrupt | newly_bankrupt
    # A bankrupt winner forfeits its slots (and what it paid): nobody runs on credit.
    out = bankrupt | ~alive
    slots = np.where(out, 0, alloc.slots).astype(np.int64)
    trial = np.where(out, 0.0, trial)
    wake = wake & ~out
    cores = np.where(slots > 0, won_cores, 0.0) + trial + np.where(wake, WAKE_CORES, 0.0)
    if params.enforce:
        kill = newly_bankrupt & alive
        run = alive & ~bankrupt & (cores > 0)
        alive_next = alive & ~newly_bankrupt
    else:
        kill = np.zeros(n, dtype=np.bool_)
        run = alive.copy()
        alive_next = alive

    ledger.check()
    balances_ucr = ledger.balances_ucr
    wallets = balances_ucr[:n]
    # The last h wallet arrays, shared between states (never modified): a tick appends
    # a reference instead of copying an (h, n) matrix.
    history = (*state.history_ucr, wallets)[-params.history_ticks :]
    dead = np.flatnonzero(newly_bankrupt)
    # (k, h) balance histories of the k newly bankrupt, in credits, in one gather.
    dead_history = (np.stack([h[dead] for h in history], axis=1) / UCR_PER_CREDIT).tolist() \
        if dead.size else []
    obituaries = tuple(
        Obituary(
            agent=params.agents[i],
            cause=CAUSES[int(cause[i]) - 1],
            balance_history=tuple(hist),
            tick=tick,
            unpaid=float(unpaid[i]) / UCR_PER_CREDIT,
        )
        for i, hist in zip(dead.tolist(), dead_history, strict=True)
    )
    new_state = EconomyState(
        tick=tick,
        balances_ucr=balances_ucr,
        total_ucr=state.total_ucr,
        alive=alive_next,
        bankrupt=bankrupt,
        slots=slots,
        pid=pid_state,
        price=price,
        history_ucr=history,
        unpaid_ucr=state.unpaid_ucr + unpaid,
        shortfall_ucr=state.shortfall_ucr + shortfall_ucr,
        proven=proven,
        trial_s=trial_s + trial * obs.dt_s,
        asleep_s=np.where(run, 0.0, asleep_s + obs.dt_s),
        news=news & ~run,
    )

    def credits(x: IntArray) -> FloatArray:
        return np.asarray(x, dtype=np.float64) / UCR_PER_CREDIT

    decisions = Decisions(
        tick=tick,
        price=price,
        pid=PIDTerms(float(pid_out.p[0]), float(pid_out.i[0]), float(pid_out.d[0])),
        slots=slots,
        cores=cores.astype(np.float64),
        run=run,
        kill=kill,
        rent=credits(rent_ucr),
        tax=credits(tax_ucr),
        reward=credits(reward_ucr),
        fine=credits(fine_ucr),
        balances=credits(wallets),
        bankrupt=bankrupt,
        transfers=ledger.drain(),
        obituaries=obituaries,
        unpaid=credits(unpaid),
        shortfall=shortfall_ucr / UCR_PER_CREDIT,
        allocation=alloc,
        capacity=capacity,
        trial=trial,
        wake=wake,
    )
    return new_state, decisions
