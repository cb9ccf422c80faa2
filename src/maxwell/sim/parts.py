"""The simulator's parts for the tick loop: sampler, membrane, tracer and channel.

Each is a thin view of one `World` and satisfies the protocol of the same name in
`maxwell.run.parts`, so `maxwell.run.loop` runs a simulated run exactly as it runs
a live one (with `maxwell.run.clock.VirtualClock`). Every call first brings the
world up to the clock's time, which is how simulated time passes: the loop waits
on the virtual clock, then asks a part, and the part simulates the interval.
No I/O, no wall clock.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import Any

import numpy as np

from maxwell.physics import PhysicsSample
from maxwell.run.parts import Inbox, Metering, Note, Spawned
from maxwell.sim.models import BID_VALUE, BoolArray, FloatArray, IntArray
from maxwell.sim.world import World

SIM_BACKEND = "simulated"


class _View:
    def __init__(self, world: World, now: Callable[[], float]) -> None:
        self.world = world
        self._now = now

    def _sync(self) -> None:
        self.world.advance_to(self._now())


class SimSampler(_View):
    """The virtual plant on the simulated busy cores (agents' CPU + foreign load)."""

    energy_source = "model"
    temp_source = "model"
    energy_measured = False
    temp_measured = False

    def __init__(self, world: World, now: Callable[[], float]) -> None:
        super().__init__(world, now)
        self.idle_power_w = world.plant_params.idle_power_w
        self.model_load = world.model_load
        # Whether energy_j includes foreign load (the loop splits it off if so).
        self.foreign_in_energy = world.model_load != "run"

    def sample(self, now_s: float) -> PhysicsSample:
        w = self.world
        w.advance_to(now_s)
        return PhysicsSample(now_s, w.energy_j, w.power_w, w.plant.die_c, w.busy_cores,
                             foreign_cores=w.foreign_busy_cores)

    def describe(self) -> dict[str, object]:
        w = self.world
        return {
            "energy": {"source": "model", "measured": False, "simulated": True,
                       "detail": {"model": "P_idle + P_core * busy_cores (simulated cores)"}},
            "temperature": {"source": "model", "measured": False, "simulated": True,
                            "detail": {"model": "two-node RC (die, heatsink)"}},
            "hw_class": w.plant_params.hw_class,
            "idle_power_w": w.plant_params.idle_power_w,
            "plant": w.plant_params.as_dict(),
            "busy_cores_source": "simulated: agents' modelled CPU + overhead + foreign",
            "model_load": w.model_load,
            "cpus": w.cpus,
            "foreign_cores": w.foreign_cores,
            "overhead_cores": w.overhead_cores,
            "replayed_series": w.foreign_series is not None,
        }


class SimMembrane(_View):
    """Applies the loop's decisions to the modelled agents; meters their CPU."""

    _nice_noted = False

    name = SIM_BACKEND
    reason = "simulated agents (maxwell sim)"
    capabilities = frozenset({"pause", "quota", "weight", "kill", "usage"})

    def spawn(self, credentials: Sequence[Mapping[str, str]],
              service: Callable[[], None] | None = None) -> list[Spawned]:
        pop = self.world.pop
        return [Spawned(i + 1, None, (f"model:{m}",)) for i, m in enumerate(pop.models)]

    def usage(self) -> Metering:
        self._sync()
        return Metering(self.world.alive.copy(), self.world.pop.cpu_s.copy(), {})

    def pause(self, agents: IntArray) -> None:
        self._sync()
        self.world.paused[agents] = True

    def resume(self, agents: IntArray) -> None:
        self._sync()
        self.world.paused[agents] = False

    def set_cpu(self, agents: IntArray, cores: FloatArray) -> None:
        self._sync()
        self.world.quota[agents] = cores

    def set_weight(self, agents: IntArray, weight: FloatArray) -> list[Note]:
        # A cgroup's cpu.shares / cpu.weight: contended CPU is split by weight.
        self._sync()
        self.world.weight[agents] = weight
        return []

    def set_nice(self, agents: IntArray, nice: IntArray) -> list[Note]:
        # Nice orders threads inside one cgroup; between per-agent cgroups CFS shares
        # by the groups' weights, so live it changes nothing between agents: neither
        # here (modelled agents are whole cgroups). Said once, as a note.
        if len(agents) and np.any(nice != 0) and not self._nice_noted:
            self._nice_noted = True
            return [Note("unenforced", None, {
                "what": "nice", "why": "no effect between per-agent cgroups (as live)"})]
        return []

    def kill(self, agents: IntArray) -> None:
        self._sync()
        self.world.alive[agents] = False

    def recheck(self, state: IntArray, cores: FloatArray) -> list[Note]:
        return []  # a model cannot tamper with its own containment

    def close(self) -> None:
        self.world.alive[:] = False


class SimTracer(_View):
    """Bytes each model freed (exact: the model says what it released)."""

    source = "simulated"
    exact = True
    label = "exact (simulated)"
    reason = "simulated agents"

    def track(self, spawned: Sequence[Spawned]) -> None:
        pass

    def read(self, alive: BoolArray) -> IntArray:
        self._sync()
        return self.world.pop.bytes_freed.copy()

    def close(self) -> None:
        pass


class SimChannel(_View):
    """The models' hellos, bids and (judged) claims in; ticks out to their bidders."""

    def __init__(self, world: World, now: Callable[[], float], *, tick_s: float,
                 bounty_per_unit: float) -> None:
        super().__init__(world, now)
        n = world.pop.n
        self.tick_s = tick_s
        self.bounty_per_unit = bounty_per_unit
        self._bid_price = np.full(n, np.nan)
        self._bid_slots = np.zeros(n, dtype=np.int64)
        self._fraud_seen = 0
        self._all_hello = False

    def register(self, names: Sequence[str]) -> list[Mapping[str, str]]:
        return [{} for _ in names]

    def wait(self, timeout_s: float) -> bool:
        # Claims are judged as the world advances; nothing needs draining mid-interval.
        return False

    def poll(self, alive: BoolArray) -> Inbox:
        self._sync()
        w = self.world
        pop = w.pop
        now = self._now()
        inbox = Inbox.empty(pop.n)
        new_hello = inbox.hello
        if not self._all_hello:  # once all have said hello, nobody says it again
            new_hello = alive & ~pop.hello & (pop.startup_s <= now + 1e-9)
            self._all_hello = bool(np.all(pop.hello | new_hello | ~alive))
        if new_hello.any():
            pop.hello |= new_hello
            inbox.hello = new_hello
            # The opening bid is sent on connecting, before any verdict (ValueBidder's
            # initial_bid; a fixed bidder's bid).
            opening = np.where(pop.strategy == BID_VALUE, pop.initial_bid, pop.fixed_bid)
            self._bid_price[new_hello] = opening[new_hello]
            self._bid_slots[new_hello] = pop.slots[new_hello]
            inbox.notes.extend(Note("hello", pop.names[i], {}) for i in np.flatnonzero(new_hello))
        judged = w.drain()
        # Dead agents were never given CPU, so they have nothing to report.
        inbox.work_units = judged.units
        inbox.frauds = judged.frauds
        inbox.fraud_units = judged.fine_units
        for t_s, i, claimed, how in w.fraud_log[self._fraud_seen:]:
            if alive[i]:
                inbox.notes.append(Note("fraud", pop.names[i], {
                    "reason": f"claim {how} (simulated verification)",
                    "claimed": round(claimed), "at_s": round(t_s, 6)}))
        self._fraud_seen = len(w.fraud_log)
        # Bids gathered since the last poll (NaN: none); the buffers are handed over
        # and replaced rather than copied.
        inbox.bid_price, inbox.bid_slots = self._bid_price, self._bid_slots
        self._bid_price = np.full(pop.n, np.nan)
        self._bid_slots = np.zeros(pop.n, dtype=np.int64)
        return inbox

    def send_ticks(self, t_s: float, price: float, balances: FloatArray, slots: IntArray,
                   to: BoolArray) -> None:
        pop = self.world.pop
        # A frozen agent reads nothing; it answers the last tick once it is resumed.
        reply = to & pop.hello & ~self.world.paused & self.world.alive
        who = np.flatnonzero(reply)
        if who.size == 0:
            return
        bid_price, bid_slots = pop.bids(np.asarray(balances, dtype=np.float64), self.tick_s,
                                        self.bounty_per_unit, who)
        self._bid_price[who] = bid_price
        self._bid_slots[who] = bid_slots

    def close(self) -> None:
        pass


def parts_facts(world: World, calibration: Any) -> dict[str, Any]:
    """What a simulated run records about its "host" (labelled simulated everywhere)."""
    return {
        "simulated": True,
        "cpus": world.cpus,
        "foreign_cores": world.foreign_cores,
        "overhead_cores": world.overhead_cores,
        "calibration": {"source": calibration.source, **calibration.measured},
        "models": dict(zip(world.pop.names, world.pop.models, strict=True)),
    }
