"""The tick loop: sense → step → enforce → record, over the parts it is given.

Each tick it senses (physics sample, every agent's CPU time from the membrane,
bytes freed from the tracer, verified work and bids gathered from the channel
since the last tick), asks the policy to decide (`economy.step`, enforcing or in
a shadow ledger), applies the decision through the membrane (apoptosis, pause,
resume, CPU quota, weight, nice), then records the tick to the sinks and tells
each agent its price, balance and slots. Between ticks it only services the
channel. The loop owns no resource: whoever built the parts closes them
(`maxwell.run.build` for live runs). Every per-agent quantity is an array, so
the loop's own cost does not grow with a Python loop over agents.
"""

from __future__ import annotations

import json
import math
import time
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np

from maxwell import economy
from maxwell.physics import PhysicsSample
from maxwell.record import EventRow, TickRow
from maxwell.run._energy import EnergyBook
from maxwell.run.parts import (
    DEAD,
    PAUSED,
    RUNNING,
    AgentColumns,
    Decision,
    Note,
    Parts,
    Plan,
    TickRecord,
    transfer_rows,
)
from maxwell.run.policy import tie_notes

# Between ticks the loop waits until an agent writes, then services the channel at
# most this often, so claims are verified as they arrive (not in one burst at the
# tick) without waking once per line.
POLL_INTERVAL_S = 0.1
# How long a stop request may wait to be noticed between ticks.
STOP_CHECK_S = 0.25
# The start-up grace lasts while agents keep saying hello, up to this many graces.
GRACE_MAX_FACTOR = 4


# One encoder for every event (json.dumps with options builds a new one per call).
_ENCODE = json.JSONEncoder(default=str).encode


class Loop:
    """One run of the tick loop; `run()` returns when the duration is over or all are dead."""

    def __init__(self, plan: Plan, parts: Parts) -> None:
        self.plan, self.parts = plan, parts
        n = len(plan.names)
        self.state = np.full(n, RUNNING, dtype=np.int64)
        self.cpu_s = np.zeros(n)
        self.bytes_freed = np.zeros(n, dtype=np.int64)
        self.work_units = np.zeros(n, dtype=np.int64)
        self.bid_price = np.asarray(plan.default_bid, dtype=float).copy()
        self.bid_slots = np.asarray(plan.default_slots, dtype=np.int64).copy()
        self.said_hello = np.zeros(n, dtype=bool)
        self._started_s = self._last_hello_s = 0.0
        self._pending_work = np.zeros(n, dtype=np.int64)
        self._pending_frauds = np.zeros(n, dtype=np.int64)
        self._pending_fraud_units = np.zeros(n)
        self._applied: dict[str, Any] = {}  # weight / nice last applied
        self._events: list[EventRow] = []
        self.t0: float | None = None
        self.ticks = 0
        self.lateness_s: list[float] = []  # how late each tick came after its deadline

    # -- time and events -------------------------------------------------------------

    def t(self) -> float:
        return self.parts.clock.now() - (self.t0 if self.t0 is not None else 0.0)

    def note(self, kind: str, agent: str | None = None, **detail: Any) -> None:
        # An empty detail is most of the events of 10⁵ agents (hello): skip the encoder.
        self._events.append(EventRow(round(self.t(), 6), kind, agent,
                                     _ENCODE(detail) if detail else "{}"))

    def _notes(self, notes: Sequence[Note]) -> None:
        for n in notes:
            self.note(n.kind, n.agent, **n.detail)

    def _take_events(self) -> tuple[EventRow, ...]:
        events, self._events = tuple(self._events), []
        return events

    # -- the run ---------------------------------------------------------------------

    def run(self) -> None:
        p, clock = self.parts, self.parts.clock
        econ_state, grants = p.policy.initial()
        self.t0 = clock.now()
        first = p.sampler.sample(self.t0)
        self.energy = EnergyBook(len(self.plan.names), first, p.sampler.idle_power_w,
                                 bool(getattr(p.sampler, "foreign_in_energy", True)))
        self._last_temp_c = first.temp_c if math.isfinite(first.temp_c) else self.plan.setpoint_c
        self._start()
        self._write(TickRecord(0.0, self.plan.names, events=self._take_events(),
                               transfers=transfer_rows(0.0, grants)))
        if self.plan.on_start is not None:
            self.plan.on_start()
        # The tick grid starts once every agent is started (a slow spawn is start-up
        # time, reported apart, not lateness); times stay relative to t0. Each tick's
        # lateness is how long after its deadline it began.
        # The start-up grace runs from when the last agent was started (see _grace).
        self._started_s = clock.now() - self.t0
        deadline = clock.now() + self.plan.tick_s
        # The economy's first interval starts with the grid (rent is prepaid for one as
        # long as the last): start-up is metered in the first sample but not billed.
        last_t, last_sample_t = self._started_s, 0.0
        while True:
            self._wait(deadline)
            now = clock.now()
            self.lateness_s.append(max(now - deadline, 0.0))
            t_s = now - self.t0
            span_s = t_s - last_sample_t
            obs, sample = self._sense(now, t_s, t_s - last_t, span_s)
            last_t = last_sample_t = t_s
            econ_state, dec = p.policy.decide(econ_state, obs)
            self.energy.split(obs.energy_j, obs.cpu_s, sample, span_s)
            self._enforce(obs, dec)
            self._record(t_s, obs, sample, dec)
            self.ticks += 1
            # The run lasts `duration_s` of ticks, after start-up.
            if t_s - self._started_s >= self.plan.duration_s - 1e-6 or bool(
                    np.all(self.state == DEAD)):
                return
            # A tick that came more than a whole period late is recorded as late; the
            # grid then resumes from it instead of catching up with a burst of ticks.
            late = self.lateness_s[-1] > self.plan.tick_s
            deadline = (now if late else deadline) + self.plan.tick_s

    def finish(self, outcome: str) -> None:
        """Record that every agent still alive was stopped (the membrane's close kills)."""
        for i in np.flatnonzero(self.state != DEAD).tolist():
            self.note("stop", self.plan.names[i], reason=outcome)
        self._write(TickRecord(round(self.t(), 6), self.plan.names, events=self._take_events()))

    def _start(self) -> None:
        p, names = self.parts, self.plan.names
        spawned = p.membrane.spawn(p.channel.register(names), service=self._drain)
        p.tracer.track(spawned)
        for name, funds, s in zip(names, self.plan.funds, spawned, strict=True):
            self.note("spawn", name, pid=s.pid, argv=list(s.argv), funds=funds,
                      cgroup_id=s.cgroup_id, unenforced=list(s.unenforced))

    def _wait(self, deadline: float) -> None:
        clock, channel, stop = self.parts.clock, self.parts.channel, self.plan.stop
        while (now := clock.now()) < deadline:
            if stop is not None and stop.is_set():
                raise KeyboardInterrupt
            if clock.wait_until(min(deadline, now + STOP_CHECK_S), channel):
                self._drain()
                # Let a burst of claims gather rather than waking once per line.
                clock.wait_until(min(deadline, clock.now() + POLL_INTERVAL_S), None)
        self._drain()

    def _drain(self) -> None:
        inbox = self.parts.channel.poll(self.state != DEAD)
        new_bid = ~np.isnan(inbox.bid_price)
        self.bid_price[new_bid] = inbox.bid_price[new_bid]
        self.bid_slots[new_bid] = inbox.bid_slots[new_bid]
        self._pending_work += inbox.work_units
        self._pending_frauds += inbox.frauds
        if inbox.fraud_units is not None:
            self._pending_fraud_units += inbox.fraud_units
        if inbox.hello.any():
            self._last_hello_s = self.t()
        self.said_hello |= inbox.hello
        self._notes(inbox.notes)

    # -- sense → step → enforce → record ---------------------------------------------

    def _sense(self, now: float, t_s: float, dt_s: float,
               span_s: float) -> tuple[economy.Observation, PhysicsSample]:
        """dt_s: the economy's interval; span_s: time since the last physics sample (the
        first tick's also covers start-up)."""
        p = self.parts
        m = p.membrane.usage()
        set_run_cpu = getattr(p.sampler, "set_run_cpu_s", None)
        if set_run_cpu is not None:  # the run's own CPU, so the sampler can tell foreign
            set_run_cpu(float(np.sum(np.maximum(m.cpu_s, self.cpu_s))) + time.process_time())
        sample = p.sampler.sample(now)
        # Fail soft per reading: a thermometer that failed keeps the last good
        # temperature so the price controller never sees NaN (energy: EnergyBook.take).
        energy_j = self.energy.take(sample)
        if math.isfinite(sample.temp_c):
            self._last_temp_c = sample.temp_c
        power_w = sample.power_w if math.isfinite(sample.power_w) else (
            energy_j / span_s if span_s > 0 else 0.0)
        was = self.state != DEAD
        alive = was & m.alive
        for i in np.flatnonzero(was & ~m.alive).tolist():
            self.state[i] = DEAD
            self.note("exit", self.plan.names[i], status=m.exit_status.get(i))
        cpu_d = np.where(alive, np.maximum(m.cpu_s - self.cpu_s, 0.0), 0.0)
        self.cpu_s = np.where(alive, np.maximum(m.cpu_s, self.cpu_s), self.cpu_s)
        freed = p.tracer.read(alive)
        freed_d = np.maximum(freed - self.bytes_freed, 0).astype(np.int64)
        self.bytes_freed = np.maximum(freed, self.bytes_freed).astype(np.int64)
        work_d, frauds = self._pending_work, self._pending_frauds
        self.work_units = self.work_units + work_d
        self._pending_work = np.zeros_like(work_d)
        self._pending_frauds = np.zeros_like(frauds)
        fraud_units, self._pending_fraud_units = self._pending_fraud_units, np.zeros(len(frauds))
        obs = economy.Observation(
            t_s=t_s, dt_s=dt_s, temp_c=self._last_temp_c, power_w=power_w, energy_j=energy_j,
            alive=alive, cpu_s=cpu_d, bytes_freed=freed_d, work_units=work_d, frauds=frauds,
            bid_price=self.bid_price.copy(), bid_slots=self.bid_slots.copy(),
            fraud_units=fraud_units,
        )
        return obs, sample

    def _enforce(self, obs: economy.Observation, dec: Decision) -> None:
        mem, names, d = self.parts.membrane, self.plan.names, dec.economy
        self._notes(tie_notes(obs.bid_price, d.allocation, self.plan.names))
        live = self.state != DEAD
        kill = np.flatnonzero(live & dec.kill)
        mem.kill(kill)
        causes = {str(ob.agent): ob.cause for ob in d.obituaries}
        for i in kill.tolist():
            self.state[i] = DEAD
            self.note("apoptosis", names[i], cause=causes.get(names[i]),
                      balance=float(d.balances[i]), cpu_s=float(self.cpu_s[i]),
                      work_units=int(self.work_units[i]))
        live = self.state != DEAD
        if dec.run is not None and dec.cores is not None:
            go = live & dec.run & (dec.cores > 0)
            # Start-up grace: an agent that has not said hello yet is not frozen
            # (it could never connect and bid) until the grace is over.
            grace = ~self.said_hello & self._grace(obs.t_s)
            stop = np.flatnonzero(live & ~go & ~grace & (self.state == RUNNING))
            mem.pause(stop)
            self.state[stop] = PAUSED
            for i in stop.tolist():
                self.note("pause", names[i], bid=float(self.bid_price[i]), price=float(d.price))
            run = np.flatnonzero(go)
            mem.set_cpu(run, dec.cores[run].astype(float))
            wake = np.flatnonzero(go & (self.state == PAUSED))
            mem.resume(wake)
            self.state[wake] = RUNNING
            for i in wake.tolist():
                self.note("resume", names[i], slots=int(d.slots[i]), cores=float(dec.cores[i]))
        self._apply("weight", dec.weight, live, mem.set_weight)
        self._apply("nice", dec.nice, live, mem.set_nice)
        cores = dec.cores if dec.cores is not None else np.full(len(names), np.inf)
        self._notes(mem.recheck(self.state, cores))
        for ob in d.obituaries:
            self.note("obituary", str(ob.agent), cause=ob.cause,
                      balance_history=list(ob.balance_history)[-20:])

    def _grace(self, t_s: float) -> bool:
        """Start-up is over once `startup_grace_s` passed with no agent starting or saying
        hello (agents starting together on a busy machine connect over a while), and at
        the latest GRACE_MAX_FACTOR graces after the last start."""
        g = self.plan.startup_grace_s
        end = max(self._started_s, self._last_hello_s) + g
        return t_s < min(end, self._started_s + GRACE_MAX_FACTOR * g)

    def _apply(self, what: str, values: Any, live: Any,
               setter: Callable[[Any, Any], list[Note]]) -> None:
        """Apply a per-agent setting where it changed since it was last applied."""
        if values is None:
            return
        last = self._applied.get(what)
        changed = live if last is None else live & (values != last)
        idx = np.flatnonzero(changed)
        if idx.size:
            self._notes(setter(idx, values[idx]))
        self._applied[what] = np.array(values, copy=True)

    def _record(self, t_s: float, obs: economy.Observation, sample: PhysicsSample,
                dec: Decision) -> None:
        d = dec.economy
        self.parts.channel.send_ticks(t_s, float(d.price), d.balances, d.slots,
                                      self.state != DEAD)
        tick = TickRow(round(t_s, 6), float(self._last_temp_c), float(obs.power_w),
                       float(sample.energy_j - self.energy.energy0_j), self.energy.idle_j,
                       float(d.price), float(sample.busy_cores), float(d.pid_p),
                       float(d.pid_i), float(d.pid_d), self.energy.foreign_cpu_s,
                       self.energy.foreign_j, float(getattr(d, "capacity", 0.0)))
        cols = AgentColumns(self.state.copy(), self.cpu_s, d.slots, obs.bid_price, d.rent, d.tax,
                            d.reward, d.fine, d.balances, self.bytes_freed, self.work_units,
                            self.energy.agents_j)
        self._write(TickRecord(t_s, self.plan.names, tick, cols, self._take_events(),
                               transfer_rows(t_s, d.transfers)))

    def _write(self, record: TickRecord) -> None:
        for sink in self.parts.sinks:
            sink.write(record)
