"""The parts the tick loop is built from, as typed protocols, and the records they pass.

The loop (`maxwell.run.loop`) touches the world only through these: a `Clock`
(what time it is, and waiting for a deadline while the agents' channel is
serviced), a `Sampler` (the host's physics), a `Membrane` (start, meter, pause,
resume, cap, kill the agents), a `Tracer` (bytes freed per agent), a `Channel`
(hellos, bids and verified work in; ticks out), `Sink`s (recorder, exporter,
progress) and a `Policy` (decide one tick). `maxwell.run.build` chooses the real
parts for this machine; the simulator passes modelled ones and a virtual clock.

Every per-agent quantity crosses these interfaces as one numpy array indexed by
the agent's position in the config (agent i is row i everywhere), so a part for
10⁵ modelled agents does its work vectorized; only live parts loop over agents.
Imports nothing that does I/O.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from functools import cached_property
from typing import Any, NamedTuple, Protocol, overload

import numpy as np
import numpy.typing as npt

from maxwell.economy import Decisions, Observation
from maxwell.ledger import UCR_PER_CREDIT, Transfer
from maxwell.physics import PhysicsSample
from maxwell.record import AgentTickRow, EventRow, TickRow, TransferRow

FloatArray = npt.NDArray[np.float64]
IntArray = npt.NDArray[np.int64]
BoolArray = npt.NDArray[np.bool_]

# An agent's state as the loop keeps it (the `state` column of agent_ticks).
RUNNING, PAUSED, DEAD = 0, 1, 2
STATE_NAMES = ("running", "paused", "dead")


class Note(NamedTuple):
    """Something for the run's events table; the loop stamps it with the time."""

    kind: str
    agent: str | None
    detail: Mapping[str, Any]


class Spawned(NamedTuple):
    """What starting one agent produced (recorded in its `spawn` event)."""

    pid: int
    cgroup_id: int | None  # the eBPF tracer's key, when the membrane has v2 cgroups
    argv: tuple[str, ...]
    unenforced: tuple[str, ...] = ()  # limits of the spec this membrane could not apply


class Metering(NamedTuple):
    """One reading of every agent's process tree."""

    alive: BoolArray  # [n] the tree still has a live process
    cpu_s: FloatArray  # [n] cumulative CPU seconds of the whole tree
    # Exit status of agents found dead by this reading (index -> status; negative:
    # killed by that signal; None: unknown).
    exit_status: Mapping[int, int | None]


@dataclass
class Inbox:
    """What the agents said since the last poll, already verified."""

    bid_price: FloatArray  # [n] credits per core-second; NaN: no new bid
    bid_slots: IntArray  # [n] slot-units wanted (with bid_price)
    work_units: IntArray  # [n] verified, accepted work units
    frauds: IntArray  # [n] claims found false
    hello: BoolArray  # [n] said hello in this poll
    notes: list[Note] = field(default_factory=list)  # hello, strike, fraud, disconnect
    # [n] Σ of the frauds' claimed units ÷ their chance of being caught (fined at the
    # bounty rate: economy.Observation.fraud_units); None: 0.
    fraud_units: FloatArray | None = None

    @classmethod
    def empty(cls, n: int) -> Inbox:
        return cls(np.full(n, np.nan), np.zeros(n, np.int64), np.zeros(n, np.int64),
                   np.zeros(n, np.int64), np.zeros(n, bool), fraud_units=np.zeros(n))


class Clock(Protocol):
    """Time for the loop. The live clock sleeps; a virtual one jumps (SimPy's two
    environments, which differ only in how they advance)."""

    def now(self) -> float:
        """Seconds on a monotonic scale (the origin is the clock's own)."""
        ...

    def wait_until(self, deadline: float, channel: Channel | None) -> bool:
        """Return when `now() >= deadline`, or earlier (True) when `channel` has input."""
        ...


class Sampler(Protocol):
    """The host's physics: cumulative energy, die temperature, busy cores."""

    idle_power_w: float  # the share of power nobody is billed for

    def sample(self, now_s: float) -> PhysicsSample: ...


class Membrane(Protocol):
    """Containment and enforcement for the run's n agents, addressed by index.

    `agents` arguments are int64 index arrays; a call with an empty array does
    nothing. Pausing and killing act on an agent's whole process tree.
    """

    def spawn(self, credentials: Sequence[Mapping[str, str]],
              service: Callable[[], None] | None = None) -> list[Spawned]:
        """Start every agent (its channel credentials go into its environment).

        A membrane whose spawns take real time calls `service` between them, so the
        agents started first are heard (hello, bids) while the rest start.
        """
        ...

    def usage(self) -> Metering: ...

    def pause(self, agents: IntArray) -> None: ...

    def resume(self, agents: IntArray) -> None: ...

    def set_cpu(self, agents: IntArray, cores: FloatArray) -> None:
        """Cap each agent at `cores` CPUs (a quota; inf: no cap)."""
        ...

    def set_weight(self, agents: IntArray, weight: FloatArray) -> list[Note]:
        """Relative CPU weight (1.0 = the default share); notes say what could not apply."""
        ...

    def set_nice(self, agents: IntArray, nice: IntArray) -> list[Note]:
        """Nice value of every process of each agent; notes say what could not apply."""
        ...

    def kill(self, agents: IntArray) -> None: ...

    def recheck(self, state: IntArray, cores: FloatArray) -> list[Note]:
        """Each tick after enforcing: re-apply what should hold (paused agents frozen,
        running ones capped at `cores`) and report any drift found as `tamper` notes."""
        ...

    def close(self) -> None:
        """Kill and reap every agent (none left frozen) and release the containment."""
        ...


class Tracer(Protocol):
    """Bytes each agent gave back to the kernel."""

    def track(self, spawned: Sequence[Spawned]) -> None: ...

    def read(self, alive: BoolArray) -> IntArray:
        """[n] cumulative bytes freed (an agent without a fresh reading keeps its last)."""
        ...


class Channel(Protocol):
    """The agents' wire: hellos, bids and work claims in; ticks and verdicts out."""

    def register(self, names: Sequence[str]) -> list[Mapping[str, str]]:
        """Credentials for each agent (environment variables for its process)."""
        ...

    def wait(self, timeout_s: float) -> bool:
        """Block up to `timeout_s` for input; True if `poll()` has something to do."""
        ...

    def poll(self, alive: BoolArray) -> Inbox:
        """Read, parse and verify everything available now (claims of dead agents are
        not verified); never blocks, never raises on agent input."""
        ...

    def send_ticks(self, t_s: float, price: float, balances: FloatArray, slots: IntArray,
                   to: BoolArray) -> None:
        """Tell each agent in `to` the tick's price, its balance and its slots."""
        ...


class AgentColumns(NamedTuple):
    """The agent_ticks columns of one tick, one array each, in config order."""

    state: IntArray  # RUNNING / PAUSED / DEAD
    cpu_s: FloatArray
    slots: IntArray
    bid: FloatArray
    rent: FloatArray
    tax: FloatArray
    reward: FloatArray
    fine: FloatArray
    balance: FloatArray
    bytes_freed: IntArray
    work_units: IntArray
    energy_j: FloatArray


@dataclass(frozen=True)
class TickRecord:
    """Everything one tick adds to the run's record. `tick` and `agents` are None for
    the records written before the first tick and after the last (events only)."""

    t_s: float
    names: tuple[str, ...]
    tick: TickRow | None = None
    agents: AgentColumns | None = None
    events: tuple[EventRow, ...] = ()
    transfers: Sequence[TransferRow] = ()

    @cached_property
    def rows(self) -> list[AgentTickRow]:
        """The agent columns as agent_ticks rows (computed once, for every sink)."""
        c = self.agents
        if c is None:
            return []
        t = round(self.t_s, 6)
        return [
            AgentTickRow(t, name, STATE_NAMES[int(st)], float(cpu), int(sl), float(bid),
                         float(rent), float(tax), float(rw), float(fine), float(bal),
                         int(bf), int(wu), float(ej))
            for name, st, cpu, sl, bid, rent, tax, rw, fine, bal, bf, wu, ej in zip(
                self.names, *(col.tolist() for col in c), strict=True)
        ]


class TransferRows(Sequence[TransferRow]):
    """Ledger transfers as rows of the transfers table (amounts in credits), built when
    first read: a tick of 10⁵ agents books 10⁵ transfers, and a sink that records no
    transfers (the simulator's bench) should not pay for their rows."""

    def __init__(self, t_s: float, transfers: Sequence[Transfer]) -> None:
        self._t_s = t_s
        self._transfers = transfers
        self._rows: tuple[TransferRow, ...] | None = None

    def _all(self) -> tuple[TransferRow, ...]:
        if self._rows is None:
            t = self._t_s
            self._rows = tuple(TransferRow(t, str(tr.src), str(tr.dst),
                                           float(tr.amount_ucr) / UCR_PER_CREDIT, str(tr.reason))
                               for tr in self._transfers)
        return self._rows

    def __len__(self) -> int:
        return len(self._transfers)

    @overload
    def __getitem__(self, i: int) -> TransferRow: ...
    @overload
    def __getitem__(self, i: slice) -> tuple[TransferRow, ...]: ...
    def __getitem__(self, i: int | slice) -> TransferRow | tuple[TransferRow, ...]:
        return self._all()[i]

    def __iter__(self) -> Iterator[TransferRow]:
        return iter(self._all())


def transfer_rows(t_s: float, transfers: Sequence[Transfer]) -> TransferRows:
    """Ledger transfers as rows of the transfers table (amounts in credits), lazily."""
    return TransferRows(t_s, transfers)


class Sink(Protocol):
    """Where each tick goes: the run database, the Prometheus exporter, a progress bar."""

    def write(self, record: TickRecord) -> None: ...


@dataclass(frozen=True)
class Decision:
    """One tick's decision: the economy's accounts and what to apply to each agent.

    `economy` is always a full `economy.Decisions` (price, bills, balances,
    transfers, obituaries), booked for real or in a shadow ledger. The arrays say
    what the membrane should apply; None means "leave it as it is".
    """

    economy: Decisions
    kill: BoolArray  # [n] apoptosis (applied under every policy)
    run: BoolArray | None = None  # [n] True: runs this tick; False: paused
    cores: FloatArray | None = None  # [n] CPU quota in cores for running agents (inf: none)
    weight: FloatArray | None = None  # [n] relative CPU weight
    nice: IntArray | None = None  # [n] nice value


class Policy(Protocol):
    """Decides one tick from its state and the tick's observation (pure: no I/O).

    `maxwell` is `economy.step` enforcing; `cfs` books the same bills in a shadow
    ledger and applies nothing; baselines set `run`/`cores`/`weight`/`nice` from
    their own rule while keeping the economy's books for comparison.
    """

    name: str

    def initial(self) -> tuple[Any, Sequence[Transfer]]:
        """The state before the first tick and the transfers that created it."""
        ...

    def decide(self, state: Any, obs: Observation) -> tuple[Any, Decision]: ...


@dataclass(frozen=True)
class Plan:
    """What the loop runs: the agents (config order), their standing bids, the timing."""

    names: tuple[str, ...]
    funds: tuple[float, ...]
    default_bid: tuple[float, ...]
    default_slots: tuple[int, ...]
    tick_s: float
    duration_s: float
    setpoint_c: float  # the temperature assumed until a thermometer reads one
    # No agent is paused before it has said hello or this long after all are started.
    startup_grace_s: float = 0.0
    # Set from another thread to end the run as Ctrl-C would.
    stop: threading.Event | None = None
    # Called once the agents are started, when the steady-state loop begins.
    on_start: Callable[[], None] | None = None


@dataclass
class Parts:
    """Everything the loop touches, chosen by whoever builds the run."""

    clock: Clock
    sampler: Sampler
    membrane: Membrane
    tracer: Tracer
    channel: Channel
    policy: Policy
    sinks: Sequence[Sink]
