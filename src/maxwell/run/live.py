"""The real parts of a live run, behind the loop's protocols (`maxwell.run.parts`).

Each adapter turns one package's per-agent API into the loop's array-shaped
calls: `LiveMembrane` over a membrane backend and its handles, `LiveTracer` over
a memory tracer, `LiveChannel` over the agents' Unix-socket endpoint and the
claim verifier, and the sinks over the recorder, the Prometheus exporter and a
progress callback. These are the only places of a live run that loop over
agents in Python. They touch what their packages touch (processes, cgroups,
the socket, the database).
"""

from __future__ import annotations

import dataclasses
import os
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from concurrent.futures import FIRST_COMPLETED, ThreadPoolExecutor, wait
from typing import Any

import numpy as np

from maxwell import membrane, memtrace
from maxwell.agents import Bid, Endpoint, Gone, Hello, Strike, Verifier, WorkClaim
from maxwell.record import Recorder
from maxwell.run.parts import (
    BoolArray,
    FloatArray,
    Inbox,
    IntArray,
    Metering,
    Note,
    Spawned,
    TickRecord,
)

# Tiers whose spawn may run in several threads at once (the microVM tier boots its
# VMs in parallel itself); how many at once; how often the channel is answered then.
PARALLEL_SPAWN_TIERS = frozenset({"cgroup2", "hybrid", "cgroup1", "signals"})
SPAWN_THREADS = 8
SPAWN_SERVICE_S = 0.05


class LiveMembrane:
    """The run's agents as real process trees in a membrane backend (cgroups or signals)."""

    def __init__(self, backend: membrane.Backend, specs: Sequence[membrane.AgentSpec]) -> None:
        self.backend = backend
        self.specs = list(specs)
        self.handles: list[membrane.Handle] = []
        n = len(self.specs)
        self._dead = np.zeros(n, dtype=bool)
        self._cpu_s = np.zeros(n)
        self._read_frozen = np.zeros(n, dtype=bool)
        self._pool: ThreadPoolExecutor | None = None

    def spawn(self, credentials: Sequence[Mapping[str, str]],
              service: Callable[[], None] | None = None) -> list[Spawned]:
        specs = [dataclasses.replace(spec, env={**os.environ, **spec.env, **cred,
                                                "PYTHONUNBUFFERED": "1"})
                 for spec, cred in zip(self.specs, credentials, strict=True)]
        if self.backend.name in PARALLEL_SPAWN_TIERS and len(specs) > 1:
            self.handles = self._spawn_parallel(specs, service)
        else:
            for spec in specs:
                self.handles.append(self.backend.spawn(spec))
                if service is not None:  # answer the hellos of those already started
                    service()
        wait_ready = getattr(self.backend, "wait_ready", None)
        if callable(wait_ready):  # microVMs boot in parallel, before the first tick
            wait_ready()
        return [Spawned(h.pid, h.cgroup_id, tuple(spec.argv), tuple(h.unenforced))
                for h, spec in zip(self.handles, specs, strict=True)]

    def _spawn_parallel(self, specs: list[membrane.AgentSpec],
                        service: Callable[[], None] | None) -> list[membrane.Handle]:
        """Start the agents a few at a time, answering the channel meanwhile.

        Each spawn waits until its child has joined its cgroups and reached exec; on
        a busy machine that wait is the child's turn for a CPU (0.2-0.6 s measured
        here with 64 agents starting), so waiting for several at once divides the
        start-up. The spawning threads live until `close()`: an agent's death signal
        (PR_SET_PDEATHSIG) fires when the thread that forked it exits.
        """
        self._pool = ThreadPoolExecutor(max_workers=SPAWN_THREADS,
                                        thread_name_prefix="maxwell-spawn")
        futures = [self._pool.submit(self.backend.spawn, spec) for spec in specs]
        pending = set(futures)
        while pending:
            _, pending = wait(pending, timeout=SPAWN_SERVICE_S, return_when=FIRST_COMPLETED)
            if service is not None:
                service()
        return [f.result() for f in futures]  # the first failure is raised here

    def usage(self) -> Metering:
        exits: dict[int, int | None] = {}
        for i, h in enumerate(self.handles):
            if self._dead[i]:
                continue
            if not h.alive():
                self._dead[i] = True
                exits[i] = h.exit_status
                continue
            # A frozen tree uses no CPU: read it once after the freeze (what it used
            # before stopping), then not again until it is thawed.
            if h.paused and self._read_frozen[i]:
                continue
            self._cpu_s[i] = max(h.usage().cpu_s, self._cpu_s[i])
            self._read_frozen[i] = h.paused
        return Metering(~self._dead, self._cpu_s.copy(), exits)

    def pause(self, agents: IntArray) -> None:
        # Ask every tree to stop first, then confirm each: a task stops only once it
        # runs again, so confirming one agent at a time would add up those waits
        # (measured: 62 agents paused at once took 5.3 s one by one on a busy machine).
        idx = agents.tolist()
        for i in idx:
            self.handles[i].pause(wait=False)
        for i in idx:
            self.handles[i].pause()

    def resume(self, agents: IntArray) -> None:
        for i in agents.tolist():
            self.handles[i].resume()

    def set_cpu(self, agents: IntArray, cores: FloatArray) -> None:
        for i, c in zip(agents.tolist(), cores.tolist(), strict=True):
            self.handles[i].set_cpu(None if c == float("inf") else c)

    def set_weight(self, agents: IntArray, weight: FloatArray) -> list[Note]:
        notes = []
        for i, w in zip(agents.tolist(), weight.tolist(), strict=True):
            why = membrane.set_cpu_weight(self.handles[i], w)
            if why is not None:
                notes.append(Note("unenforced", self.handles[i].name,
                                  {"control": "cpu_weight", "value": w, "reason": why}))
        return notes

    def set_nice(self, agents: IntArray, nice: IntArray) -> list[Note]:
        notes = []
        for i, value in zip(agents.tolist(), nice.tolist(), strict=True):
            h = self.handles[i]
            for pid in h.pids():
                try:
                    os.setpriority(os.PRIO_PROCESS, pid, int(value))
                except ProcessLookupError:
                    continue
                except OSError as err:
                    notes.append(Note("unenforced", h.name, {"control": "nice", "value": value,
                                                             "pid": pid, "error": err.strerror}))
        return notes

    def kill(self, agents: IntArray) -> None:
        for i in agents.tolist():
            self.handles[i].kill()
            self._dead[i] = True

    def recheck(self, state: IntArray, cores: FloatArray) -> list[Note]:
        # Each handle re-reads what it enforces (frozen state, quota) and restores any
        # drift; an agent jailed as its own uid cannot cause one, so a note means a hole.
        notes = []
        for i, h in enumerate(self.handles):
            if self._dead[i]:
                continue
            drift = h.verify()
            notes += [Note("tamper", h.name, {"drift": d}) for d in drift]
            if drift:  # a frozen tree that ran anyway is metered again (and billed)
                self._read_frozen[i] = False
            boot = getattr(h, "boot_note", None)  # microVMs: boot time, accelerator, once
            if callable(boot) and (detail := boot()):
                notes.append(Note("boot", h.name, detail))
        return notes

    def close(self) -> None:
        try:
            self.backend.close()
        finally:
            if self._pool is not None:  # only now: the agents are dead
                self._pool.shutdown(wait=True)
                self._pool = None


class _LazyPids(Mapping[str, Sequence[int]]):
    """Each agent's pids, listed only if the tracer asks (eBPF keyed by cgroup never does)."""

    def __init__(self, handles: dict[str, membrane.Handle]) -> None:
        self._handles = handles

    def __getitem__(self, name: str) -> Sequence[int]:
        return self._handles[name].pids()

    def __iter__(self) -> Iterator[str]:
        return iter(self._handles)

    def __len__(self) -> int:
        return len(self._handles)


class LiveTracer:
    """A memory tracer (eBPF or RSS sampling) reading the live membrane's agents."""

    def __init__(self, tracer: memtrace.Tracer, live: LiveMembrane) -> None:
        self.tracer = tracer
        self._live = live
        self._names = [s.name for s in live.specs]
        self._index = {name: i for i, name in enumerate(self._names)}
        self._freed = np.zeros(len(self._names), dtype=np.int64)

    def track(self, spawned: Sequence[Spawned]) -> None:
        for name, s in zip(self._names, spawned, strict=True):
            self.tracer.add(name, s.cgroup_id, s.pid)

    def read(self, alive: BoolArray) -> IntArray:
        handles = self._live.handles
        freed = self.tracer.read(_LazyPids(
            {handles[i].name: handles[i] for i in np.flatnonzero(alive).tolist()}))
        for name, total in freed.items():
            i = self._index.get(name)
            if i is not None:
                self._freed[i] = max(int(total), int(self._freed[i]))
        return self._freed.copy()


class LiveChannel:
    """The agents' Unix-socket endpoint; work claims are verified as they are read."""

    def __init__(self, endpoint: Endpoint, verifier: Verifier, names: Sequence[str],
                 uid_of: Callable[[str], int | None] | None = None) -> None:
        self.endpoint = endpoint
        # A jailed agent's own uid: its hello is accepted from that uid only.
        self.uid_of = uid_of or (lambda name: None)
        self.verifier = verifier
        self.names = list(names)
        self._index = {name: i for i, name in enumerate(self.names)}
        # CPU seconds spent verifying claims: work done for the agents, reported apart
        # from the loop's own overhead.
        self.verify_cpu_s = 0.0

    def register(self, names: Sequence[str]) -> list[Mapping[str, str]]:
        return [self.endpoint.register(name, uid=self.uid_of(name)) for name in names]

    def wait(self, timeout_s: float) -> bool:
        return self.endpoint.wait(timeout_s)

    def poll(self, alive: BoolArray) -> Inbox:
        inbox = Inbox.empty(len(self.names))
        for msg in self.endpoint.poll():
            i = self._index.get(msg.agent) if msg.agent is not None else None
            if isinstance(msg, Bid):
                if i is not None:
                    inbox.bid_price[i] = float(msg.price)
                    inbox.bid_slots[i] = int(msg.slots)
            elif isinstance(msg, WorkClaim):
                if i is None or not alive[i]:
                    continue
                self._verify(msg, i, inbox)
            elif isinstance(msg, Strike):
                inbox.notes.append(Note("strike", msg.agent,
                                        {"reason": msg.reason, "closed": msg.closed}))
            elif isinstance(msg, Hello):
                if i is not None:
                    inbox.hello[i] = True
                inbox.notes.append(Note("hello", msg.agent, {}))
            elif isinstance(msg, Gone):
                inbox.notes.append(Note("disconnect", msg.agent, {}))
        return inbox

    def _verify(self, claim: WorkClaim, i: int, inbox: Inbox) -> None:
        c0 = time.process_time()
        verdict = self.verifier.verify(claim)
        self.verify_cpu_s += time.process_time() - c0
        self.endpoint.send_verdict(claim.agent, verdict.accepted, verdict.units, verdict.reason,
                                   fraud=verdict.fraud, claim_id=claim.claim_id)
        if verdict.accepted:
            inbox.work_units[i] += int(verdict.units)
        if verdict.fraud:
            inbox.frauds[i] += 1
            if inbox.fraud_units is not None:
                inbox.fraud_units[i] += verdict.fine_units
            inbox.notes.append(Note("fraud", claim.agent, {
                "reason": verdict.reason, "claimed": getattr(claim, "units", None)}))

    def send_ticks(self, t_s: float, price: float, balances: FloatArray, slots: IntArray,
                   to: BoolArray) -> None:
        for i in np.flatnonzero(to).tolist():
            self.endpoint.send_tick(self.names[i], t_s, price, float(balances[i]), int(slots[i]))


class RecorderSink:
    """Every record into the run database."""

    def __init__(self, recorder: Recorder) -> None:
        self.recorder = recorder

    def write(self, record: TickRecord) -> None:
        self.recorder.write_tick(record.tick, record.rows, record.events, record.transfers)


class ExporterSink:
    """Each tick's figures to the Prometheus exporter."""

    def __init__(self, exporter: Any) -> None:
        self.exporter = exporter

    def write(self, record: TickRecord) -> None:
        if record.tick is not None:
            self.exporter.update(record.tick, record.rows)


class ProgressSink:
    """Calls `on_tick(t_s, duration_s)` after every tick (progress bars hang here)."""

    def __init__(self, on_tick: Callable[[float, float], None], duration_s: float) -> None:
        self.on_tick = on_tick
        self.duration_s = duration_s

    def write(self, record: TickRecord) -> None:
        if record.tick is not None:
            self.on_tick(record.t_s, self.duration_s)

