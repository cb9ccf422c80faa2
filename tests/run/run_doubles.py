"""Small, honest in-process implementations of the loop's parts, on a virtual clock.

Each agent is a modelled process: while it runs it uses `demand` cores (capped by
its quota), it can exit at a set time, and it says hello, bids and claims work at
scheduled instants. The plant turns busy cores into power and a first-order die
temperature. Nothing here sleeps or touches the host; a run of 100 ticks takes
milliseconds. These stand in until the simulator's parts (maxwell.sim) exist.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field

import numpy as np

from maxwell.physics import PhysicsSample
from maxwell.run.clock import VirtualClock
from maxwell.run.parts import (
    DEAD,
    PAUSED,
    BoolArray,
    FloatArray,
    Inbox,
    IntArray,
    Metering,
    Note,
    Spawned,
    TickRecord,
)


@dataclass
class ModelAgent:
    name: str
    demand: float = 1.0  # cores it would use if allowed
    exit_at_s: float | None = None  # exits by itself at this time (status 0)
    hello_at_s: float | None = 0.1  # None: never speaks the protocol
    bid: tuple[float, int] | None = None  # sent right after hello
    work_per_s: int = 0  # verified units claimed per second of CPU
    freed_per_cpu_s: int = 0  # bytes freed per CPU second


class ModelPlant:
    """P = idle + per-core · busy; die temperature relaxes to ambient + R·P with τ."""

    def __init__(self, clock: VirtualClock, membrane: ModelMembrane, idle_power_w: float = 10.0,
                 core_power_w: float = 15.0, ambient_c: float = 25.0, r_k_per_w: float = 0.5,
                 tau_s: float = 5.0) -> None:
        self.clock, self.membrane = clock, membrane
        self.idle_power_w, self.core_power_w = idle_power_w, core_power_w
        self.ambient_c, self.r, self.tau_s = ambient_c, r_k_per_w, tau_s
        self.energy_j = 0.0
        self.temp_c = ambient_c + r_k_per_w * idle_power_w
        self._last_t: float | None = None
        self._last_cpu = 0.0

    def sample(self, now_s: float) -> PhysicsSample:
        cpu = float(self.membrane.cpu_total_s())
        if self._last_t is None:
            self._last_t, self._last_cpu = now_s, cpu
            return PhysicsSample(now_s, 0.0, math.nan, self.temp_c, 0.0)
        dt = now_s - self._last_t
        busy = (cpu - self._last_cpu) / dt if dt > 0 else 0.0
        power = self.idle_power_w + self.core_power_w * busy
        self.energy_j += power * dt
        target = self.ambient_c + self.r * power
        self.temp_c = target + (self.temp_c - target) * math.exp(-dt / self.tau_s)
        self._last_t, self._last_cpu = now_s, cpu
        return PhysicsSample(now_s, self.energy_j, power, self.temp_c, busy)


class ModelMembrane:
    """Modelled process trees: CPU accrues on the virtual clock while an agent runs."""

    def __init__(self, clock: VirtualClock, agents: Sequence[ModelAgent], cores: float = 2.0,
                 paused_from_start: bool = False, spawn_s: float = 0.0) -> None:
        self.clock, self.agents, self.cores = clock, list(agents), cores
        self.spawn_s = spawn_s  # how long starting every agent takes (e.g. VM boots)
        n = len(agents)
        self.state = np.full(n, PAUSED if paused_from_start else 0, dtype=np.int64)
        self.quota = np.full(n, np.inf)
        self.cpu_s = np.zeros(n)
        self.exit_status: dict[int, int | None] = {}
        self.calls: list[tuple[str, list[int]]] = []
        self.credentials: list[Mapping[str, str]] = []
        self.spawned = False
        self.pause_s = 0.0
        self._t = clock.now()

    def _advance(self) -> None:
        now = self.clock.now()
        dt = now - self._t
        if dt <= 0:
            return
        for i, a in enumerate(self.agents):
            if self.state[i] == 0 and a.exit_at_s is not None and now >= a.exit_at_s:
                run_for = max(a.exit_at_s - self._t, 0.0)
                self.cpu_s[i] += min(a.demand, self.quota[i]) * run_for
                self.state[i] = DEAD
                self.exit_status[i] = 0
        running = self.state == 0
        want = np.where(running, np.minimum([a.demand for a in self.agents], self.quota), 0.0)
        total = float(want.sum())
        scale = min(1.0, self.cores / total) if total > 0 else 0.0
        self.cpu_s += want * scale * dt
        self._t = now

    def cpu_total_s(self) -> float:
        self._advance()
        return float(self.cpu_s.sum())

    def spawn(self, credentials: Sequence[Mapping[str, str]],
              service: Callable[[], None] | None = None) -> list[Spawned]:
        self.credentials = list(credentials)
        self.clock.advance(self.spawn_s)
        self.spawned = True
        self._t = self.clock.now()
        return [Spawned(1000 + i, None, ("model", a.name)) for i, a in enumerate(self.agents)]

    def usage(self) -> Metering:
        self._advance()
        exits = dict(self.exit_status)
        self.exit_status.clear()
        return Metering(self.state != DEAD, self.cpu_s.copy(), exits)

    def _act(self, what: str, agents: IntArray, new_state: int | None) -> None:
        self._advance()
        if agents.size:
            self.calls.append((what, agents.tolist()))
        if new_state is not None:
            self.state[agents] = new_state

    def pause(self, agents: IntArray) -> None:
        self._act("pause", agents, PAUSED)
        if agents.size and self.pause_s:  # a slow freeze takes the loop's time
            self.clock.advance(self.pause_s)

    def resume(self, agents: IntArray) -> None:
        self._act("resume", agents, 0)

    def set_cpu(self, agents: IntArray, cores: FloatArray) -> None:
        self._act("set_cpu", agents, None)
        self.quota[agents] = cores

    def set_weight(self, agents: IntArray, weight: FloatArray) -> list[Note]:
        self._act("set_weight", agents, None)
        return []

    def set_nice(self, agents: IntArray, nice: IntArray) -> list[Note]:
        self._act("set_nice", agents, None)
        return []

    def kill(self, agents: IntArray) -> None:
        self._act("kill", agents, DEAD)

    def recheck(self, state: IntArray, cores: FloatArray) -> list[Note]:
        # What the loop believes must be what this membrane holds: re-apply, report.
        self._advance()
        drift = np.flatnonzero((state != self.state) & (state != DEAD))
        notes = [Note("tamper", self.agents[i].name, {"loop": int(state[i]),
                                                      "membrane": int(self.state[i])})
                 for i in drift.tolist()]
        self.state[drift] = state[drift]
        return notes

    def close(self) -> None:
        self._act("close", np.flatnonzero(self.state != DEAD), DEAD)


class ModelTracer:
    def __init__(self, membrane: ModelMembrane) -> None:
        self.membrane = membrane
        self.tracked: list[Spawned] = []

    def track(self, spawned: Sequence[Spawned]) -> None:
        self.tracked = list(spawned)

    def read(self, alive: BoolArray) -> IntArray:
        rate = np.array([a.freed_per_cpu_s for a in self.membrane.agents], dtype=float)
        return (self.membrane.cpu_s * rate).astype(np.int64)


class ScriptChannel:
    """Agents speak at scheduled virtual instants; work claims arrive already verified."""

    def __init__(self, clock: VirtualClock, membrane: ModelMembrane) -> None:
        self.clock, self.membrane = clock, membrane
        self.agents = membrane.agents
        n = len(self.agents)
        self._inbox = Inbox.empty(n)
        self._ready = False
        self.ticks: list[tuple[float, float, list[int]]] = []  # (t, price, recipients)
        self._claimed_cpu = np.zeros(n)

    def register(self, names: Sequence[str]) -> list[Mapping[str, str]]:
        for i, a in enumerate(self.agents):
            if a.hello_at_s is not None:
                self.clock.schedule(self.clock.now() + a.hello_at_s, lambda i=i: self._hello(i))
        return [{"MAXWELL_AGENT": name} for name in names]

    def _hello(self, i: int) -> None:
        a = self.agents[i]
        if self.membrane.state[i] != 0:  # a paused or dead process cannot speak
            self.clock.schedule(self.clock.now() + 0.1, lambda: self._hello(i))
            return
        self._inbox.hello[i] = True
        self._inbox.notes.append(Note("hello", a.name, {}))
        if a.bid is not None:
            self._inbox.bid_price[i], self._inbox.bid_slots[i] = a.bid
        self._ready = True

    def wait(self, timeout_s: float) -> bool:
        return self._ready

    def poll(self, alive: BoolArray) -> Inbox:
        self.membrane.cpu_total_s()
        rate = np.array([a.work_per_s for a in self.agents], dtype=float)
        new_cpu = self.membrane.cpu_s - self._claimed_cpu
        work = np.where(alive, (new_cpu * rate).astype(np.int64), 0)
        self._claimed_cpu = self._claimed_cpu + np.where(work > 0, new_cpu, 0.0)
        inbox, self._inbox = self._inbox, Inbox.empty(len(self.agents))
        inbox.work_units = inbox.work_units + work
        self._ready = False
        return inbox

    def send_ticks(self, t_s: float, price: float, balances: FloatArray, slots: IntArray,
                   to: BoolArray) -> None:
        self.ticks.append((t_s, price, np.flatnonzero(to).tolist()))


@dataclass
class ListSink:
    records: list[TickRecord] = field(default_factory=list)

    def write(self, record: TickRecord) -> None:
        self.records.append(record)

    def events(self, kind: str | None = None) -> list[tuple[float, str, str | None]]:
        return [(e.t_s, e.kind, e.agent) for r in self.records for e in r.events
                if kind is None or e.kind == kind]
