"""The live tick loop: the imperative shell around the pure `economy.step`.

Each tick it senses (physics sample, each agent's CPU time from the membrane,
bytes freed from the memory tracer, verified work from the agents' claims),
calls `economy.step` once, enforces the decisions through the membrane when the
policy is `maxwell` (pause, resume, CPU quota, apoptosis), records the tick to
the run database and tells each agent its price, balance and slots. Between
ticks it only drains the agents' endpoint and verifies their claims.

It owns every resource it starts and releases them whatever way it exits
(normal end, exception, Ctrl-C, SIGTERM): agents are killed and reaped, none is
left frozen, and their cgroups are removed. It may touch everything.
"""

from __future__ import annotations

import json
import logging
import math
import os
import platform
import resource
import shutil
import signal
import tempfile
import threading
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np

from maxwell import economy, membrane, memtrace, physics
from maxwell.agents import Bid, Endpoint, Gone, Hello, Strike, Verifier, WorkClaim
from maxwell.config import Config, ConfigError
from maxwell.record import AgentTickRow, EventRow, Recorder, TickRow, TransferRow

log = logging.getLogger(__name__)

UCR_PER_CREDIT = 1_000_000
# Between ticks the supervisor sleeps until an agent writes, then drains the
# endpoint at most this often, so claims are verified as they arrive (not in one
# burst at the tick) without waking once per line.
POLL_INTERVAL_S = 0.1
# How long a stop request may wait to be noticed between ticks.
STOP_CHECK_S = 0.25


class Terminated(Exception):
    """SIGTERM arrived: unwind like Ctrl-C so every agent is cleaned up."""


@dataclass(frozen=True)
class RunOptions:
    policy: str
    duration_s: float
    out_dir: Path
    roots: physics.Roots = field(default_factory=physics.Roots)
    prometheus_port: int | None = None
    # Called after every tick with (t_s, duration_s); progress bars hang here.
    on_tick: Callable[[float, float], None] | None = None
    # Set from another thread to end the run as Ctrl-C would (the run's own thread
    # cannot receive signals when a UI owns the main thread).
    stop: threading.Event | None = None


@dataclass
class _Agent:
    index: int
    name: str
    default_bid: float
    default_slots: int
    handle: membrane.Handle | None = None
    state: str = "running"
    cpu_s: float = 0.0
    bytes_freed: int = 0
    work_units: int = 0
    energy_j: float = 0.0
    pending_work: int = 0
    pending_frauds: int = 0
    bid: tuple[float, int] | None = None


def _now_iso() -> str:
    return datetime.now(UTC).isoformat(timespec="seconds")


def _cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown"


@contextmanager
def _sigterm_raises() -> Iterator[None]:
    """Turn SIGTERM into an exception in the main thread (elsewhere: leave it alone)."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return

    def handler(signum: int, frame: object) -> None:
        raise Terminated()

    old = signal.signal(signal.SIGTERM, handler)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, old)


def _gains(
    cfg: Config, sensors: physics.Sensors, roots: physics.Roots
) -> tuple[Any, dict[str, Any]]:
    """PID gains: explicit config values > calibrated profile (auto or a path) > class defaults."""
    from maxwell import control

    machine = control.current_machine(roots.procfs, sensors.energy_source, sensors.temp_source)
    try:
        choice = control.choose_gains(
            cfg.control.profile, cfg.physics.hw_class, machine,
            kp=cfg.control.kp, ki=cfg.control.ki, kd=cfg.control.kd, tick_s=cfg.run.tick_s,
        )
    except (control.ProfileError, control.ProfileMismatch) as err:
        raise ConfigError(f"control.profile: {err}") from None
    return choice.gains, control.gains_record(choice)


def economy_params(cfg: Config, gains: Any) -> economy.EconomyParams:
    from maxwell import control

    m = cfg.market
    weights = tuple(m.slot_weights) if m.slot_weights else None
    return economy.EconomyParams(
        agents=tuple(a.name for a in cfg.agents),
        initial_funds=tuple(a.funds for a in cfg.agents),
        slots=cfg.slots(),
        slot_weights=weights,
        enforce=cfg.run.policy == "maxwell",
        setpoint_c=cfg.physics.setpoint_c,
        gains=gains,
        limits=control.PIDLimits(r_min=m.r_min, r_max=m.r_max),
        energy_price_per_j=m.energy_price_per_j,
        landauer_lambda=m.landauer_lambda,
        bounty_per_unit=m.bounty_per_unit,
        fine_per_fraud=m.fine_per_fraud,
        bounty_pool=m.bounty_pool,
        income_per_s=tuple(a.income_per_s for a in cfg.agents),
    )


def _credits(ucr: float) -> float:
    return float(ucr) / UCR_PER_CREDIT


def _transfer_rows(t_s: float, transfers: Any) -> list[TransferRow]:
    return [
        TransferRow(t_s, str(tr.src), str(tr.dst), _credits(tr.amount_ucr), str(tr.reason))
        for tr in transfers
    ]


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


class Supervisor:
    """One live run. `run()` blocks for the duration and returns the database path."""

    def __init__(
        self,
        cfg: Config,
        opts: RunOptions,
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        self.cfg = cfg.with_run(policy=opts.policy, duration_s=opts.duration_s)
        self.opts = opts
        self.clock = clock
        self.sleep = sleep
        self.enforce = self.cfg.run.policy == "maxwell"
        self.agents = [
            _Agent(i, a.name, *a.standing_bid()) for i, a in enumerate(self.cfg.agents)
        ]
        self.by_name = {a.name: a for a in self.agents}
        self.db_path = opts.out_dir / "run.db"
        self._events: list[EventRow] = []
        self._t0 = 0.0
        # (CPU seconds, clock) when the tick loop started: the steady-state overhead
        # excludes start-up (imports, probing, spawning).
        self._loop_start: tuple[float, float] | None = None
        # CPU seconds spent verifying claims: work done for the agents, reported apart
        # from the loop's own overhead.
        self._verify_cpu_s = 0.0

    # -- helpers ---------------------------------------------------------------------

    def _t(self) -> float:
        return self.clock() - self._t0

    def _event(self, kind: str, agent: str | None = None, **detail: Any) -> None:
        self._events.append(EventRow(round(self._t(), 6), kind, agent,
                                     json.dumps(detail, default=str)))

    # -- the run ---------------------------------------------------------------------

    def run(self) -> Path:
        self.opts.out_dir.mkdir(parents=True, exist_ok=True)
        if self.db_path.exists():
            raise FileExistsError(f"{self.db_path} exists; choose another --out directory")
        ru0 = resource.getrusage(resource.RUSAGE_SELF)
        with ExitStack() as stack:
            stack.enter_context(_sigterm_raises())
            cfg = self.cfg
            priority = membrane.raise_priority()
            try:
                sensors = physics.probe(
                    self.opts.roots,
                    hw_class=cfg.physics.hw_class,
                    force_energy=None if cfg.physics.energy_source == "auto"
                    else cfg.physics.energy_source,
                    force_temp=None if cfg.physics.temp_source == "auto"
                    else cfg.physics.temp_source,
                )
            except physics.SensorUnavailable as err:
                raise ConfigError(f"physics: a forced source does not work here: {err}") from None
            stack.callback(sensors.close)
            try:
                # Selecting a backend first cleans up what dead supervisors left behind.
                backend = membrane.select_backend(cfg.membrane.backend)
            except membrane.MembraneError as err:
                raise ConfigError(f"membrane.backend: {err}") from None
            stack.callback(backend.close)
            try:
                tracer = memtrace.open_tracer(cfg.memtrace.backend)
            except memtrace.MemtraceError as err:
                raise ConfigError(f"memtrace.backend: {err}") from None
            stack.callback(tracer.close)
            sock_dir = Path(tempfile.mkdtemp(prefix="maxwell-"))
            stack.callback(shutil.rmtree, sock_dir, True)
            endpoint = Endpoint(
                sock_dir,
                welcome_extra={
                    "bounty_per_unit": cfg.market.bounty_per_unit,
                    "tick_s": cfg.run.tick_s,
                    "policy": cfg.run.policy,
                },
            )
            stack.callback(endpoint.close)
            gains, gains_doc = _gains(cfg, sensors, self.opts.roots)
            params = economy_params(cfg, gains)
            rng = np.random.default_rng(cfg.run.seed)
            verifier = Verifier(cfg.market.resieve_probability, np.random.default_rng(
                [cfg.run.seed, 1]))
            host: dict[str, Any] = {
                "hostname": platform.node(),
                "kernel": platform.release(),
                "cpu_model": _cpu_model(),
                "cpus": os.cpu_count(),
                "python": platform.python_version(),
                "physics": sensors.describe(),
                "membrane_reason": backend.reason,
                "membrane_capabilities": sorted(backend.capabilities),
                "memtrace_reason": tracer.reason,
                "memtrace_label": tracer.label,
                "priority": priority,
                "stale_cleanup": backend.cleanup_report.to_dict()
                if backend.cleanup_report is not None else None,
            }
            exporter = None
            if self.opts.prometheus_port is not None:
                from maxwell.record.prometheus import MetricsExporter

                try:
                    exporter = MetricsExporter(
                        self.opts.prometheus_port,
                        [a.name for a in self.agents],
                        "measured" if sensors.energy_measured else "modelled",
                        "measured" if sensors.temp_measured else "modelled",
                    )
                except OSError as err:
                    raise ConfigError(f"--prometheus-port {self.opts.prometheus_port}: {err}") \
                        from None
                stack.callback(exporter.close)
            rec = Recorder(self.db_path)
            stack.callback(rec.close)
            rec.start_run(
                started_at=_now_iso(),
                policy=cfg.run.policy,
                duration_s=cfg.run.duration_s,
                tick_s=cfg.run.tick_s,
                config=cfg.model_dump(),
                host=host,
                energy_source=sensors.energy_source,
                energy_measured=sensors.energy_measured,
                temp_source=sensors.temp_source,
                temp_measured=sensors.temp_measured,
                memtrace_source=tracer.source,
                memtrace_exact=tracer.exact,
                membrane_backend=backend.name,
                gains=gains_doc,
                setpoint_c=cfg.physics.setpoint_c,
                landauer_lambda=cfg.market.landauer_lambda,
            )
            outcome = "completed"
            try:
                self._loop(cfg, params, rng, sensors, backend, tracer, endpoint, verifier,
                           rec, exporter)
            except KeyboardInterrupt:
                outcome = "interrupted"
                raise
            except Terminated:
                outcome = "terminated"
                raise
            except BaseException as err:
                outcome = f"error: {err!r}"
                raise
            finally:
                # Agents first (the ExitStack would too, but the record must say so).
                backend.close()
                for a in self.agents:
                    if a.state != "dead":
                        self._event("stop", a.name, reason=outcome)
                ru1 = resource.getrusage(resource.RUSAGE_SELF)
                elapsed = max(self._t(), 1e-9)
                cpu_s = (ru1.ru_utime - ru0.ru_utime) + (ru1.ru_stime - ru0.ru_stime)
                host["outcome"] = outcome
                host["supervisor_cpu_s"] = round(cpu_s, 4)
                host["supervisor_cpu_pct_of_core"] = round(100.0 * cpu_s / elapsed, 3)
                host["supervisor_peak_rss_mb"] = round(ru1.ru_maxrss / 1024.0, 1)
                if self._loop_start is not None:
                    loop_cpu_s = ru1.ru_utime + ru1.ru_stime - self._loop_start[0]
                    loop_s = max(self.clock() - self._loop_start[1], 1e-9)
                    host["supervisor_loop_cpu_pct_of_core"] = round(100 * loop_cpu_s / loop_s, 3)
                    host["supervisor_loop_cpu_pct_of_core_excl_verify"] = round(
                        100 * max(loop_cpu_s - self._verify_cpu_s, 0.0) / loop_s, 3)
                host["supervisor_verify_cpu_s"] = round(self._verify_cpu_s, 4)
                host["elapsed_s"] = round(elapsed, 3)
                try:
                    rec.write_tick(None, events=self._events)
                    self._events = []
                    rec.finish(_now_iso(), host)
                except Exception:  # recording must never mask the original error
                    log.exception("could not finish the run record")
        return self.db_path

    def _spawn_all(self, backend: Any, tracer: Any, endpoint: Endpoint, cfg: Config) -> None:
        logs = self.opts.out_dir / "agents"
        logs.mkdir(exist_ok=True)
        for a in self.agents:
            acfg = cfg.agents[a.index]
            env = {**os.environ, **endpoint.register(a.name), "PYTHONUNBUFFERED": "1"}
            spec = membrane.AgentSpec(
                name=a.name,
                argv=acfg.argv(),
                env=env,
                pids_max=cfg.membrane.pids_max,
                memory_max_bytes=int(cfg.membrane.memory_max_mb * 2**20)
                if cfg.membrane.memory_max_mb else None,
                log_path=logs / f"{a.name}.log",
            )
            a.handle = backend.spawn(spec)
            tracer.add(a.name, a.handle.cgroup_id, a.handle.pid)
            self._event("spawn", a.name, pid=a.handle.pid, argv=list(spec.argv),
                        funds=acfg.funds, cgroup_id=a.handle.cgroup_id,
                        unenforced=list(a.handle.unenforced))

    def _drain(self, endpoint: Endpoint, verifier: Verifier) -> None:
        for msg in endpoint.poll():
            if isinstance(msg, Bid):
                agent = self.by_name.get(msg.agent)
                if agent is not None:
                    agent.bid = (float(msg.price), int(msg.slots))
            elif isinstance(msg, WorkClaim):
                agent = self.by_name.get(msg.agent)
                if agent is None or agent.state == "dead":
                    continue
                c0 = time.process_time()
                verdict = verifier.verify(msg)
                self._verify_cpu_s += time.process_time() - c0
                endpoint.send_verdict(msg.agent, verdict.accepted, verdict.units, verdict.reason,
                                      fraud=verdict.fraud, claim_id=msg.claim_id)
                if verdict.accepted:
                    agent.pending_work += int(verdict.units)
                if verdict.fraud:
                    agent.pending_frauds += 1
                    self._event("fraud", msg.agent, reason=verdict.reason,
                                claimed=getattr(msg, "units", None))
            elif isinstance(msg, Strike):
                self._event("strike", msg.agent, reason=msg.reason, closed=msg.closed)
            elif isinstance(msg, Hello):
                self._event("hello", msg.agent)
            elif isinstance(msg, Gone):
                self._event("disconnect", msg.agent)

    def _loop(self, cfg: Config, params: Any, rng: np.random.Generator, sensors: Any,
              backend: Any, tracer: Any, endpoint: Endpoint, verifier: Verifier,
              rec: Recorder, exporter: Any) -> None:
        n = len(self.agents)
        tick_s = cfg.run.tick_s
        duration_s = cfg.run.duration_s
        state, grants = economy.initial_state(params)
        self._t0 = self.clock()
        first = sensors.sample(self._t0)
        last_energy_j = first.energy_j
        last_temp_c = first.temp_c if math.isfinite(first.temp_c) else cfg.physics.setpoint_c
        idle_energy_j = 0.0
        self._spawn_all(backend, tracer, endpoint, cfg)
        rec.write_tick(None, events=self._events, transfers=_transfer_rows(0.0, grants))
        self._events = []
        ru = resource.getrusage(resource.RUSAGE_SELF)
        self._loop_start = (ru.ru_utime + ru.ru_stime, self.clock())
        k = 1
        last_t = 0.0
        while True:
            deadline = self._t0 + k * tick_s
            while (remaining := deadline - self.clock()) > 0:
                if self.opts.stop is not None and self.opts.stop.is_set():
                    raise KeyboardInterrupt
                if endpoint.wait(min(remaining, STOP_CHECK_S)):
                    self._drain(endpoint, verifier)
                    # Let a burst of claims gather rather than waking once per line.
                    self.sleep(min(POLL_INTERVAL_S, max(deadline - self.clock(), 0.0)))
            self._drain(endpoint, verifier)
            now = self.clock()
            t_s = now - self._t0
            dt_s = t_s - last_t
            last_t = t_s
            sample = sensors.sample(now)
            # Fail soft per reading: a meter that failed this tick holds its energy (the
            # next good read covers the gap); a thermometer that failed keeps the last
            # good temperature so the price controller never sees NaN.
            tick_energy_j = max(sample.energy_j - last_energy_j, 0.0)
            last_energy_j = sample.energy_j
            if math.isfinite(sample.temp_c):
                last_temp_c = sample.temp_c
            power_w = sample.power_w if math.isfinite(sample.power_w) else (
                tick_energy_j / dt_s if dt_s > 0 else 0.0)

            cpu_d = np.zeros(n)
            alive = np.zeros(n, dtype=bool)
            for a in self.agents:
                h = a.handle
                if a.state == "dead" or h is None:
                    continue
                if not h.alive():
                    a.state = "dead"
                    self._event("exit", a.name, status=h.exit_status)
                    continue
                alive[a.index] = True
                cpu = h.usage().cpu_s
                cpu_d[a.index] = max(cpu - a.cpu_s, 0.0)
                a.cpu_s = max(cpu, a.cpu_s)
            freed_now = tracer.read(_LazyPids(
                {a.name: a.handle for a in self.agents
                 if a.handle is not None and a.state != "dead"}))
            freed_d = np.zeros(n, dtype=np.int64)
            for a in self.agents:
                total = int(freed_now.get(a.name, a.bytes_freed))
                freed_d[a.index] = max(total - a.bytes_freed, 0)
                a.bytes_freed = max(total, a.bytes_freed)
            work_d = np.array([a.pending_work for a in self.agents], dtype=np.int64)
            frauds = np.array([a.pending_frauds for a in self.agents], dtype=np.int64)
            for a in self.agents:
                a.work_units += a.pending_work
                a.pending_work = 0
                a.pending_frauds = 0
            bids = [a.bid if a.bid is not None else (a.default_bid, a.default_slots)
                    for a in self.agents]
            obs = economy.Observation(
                t_s=t_s,
                dt_s=dt_s,
                temp_c=last_temp_c,
                power_w=power_w,
                energy_j=tick_energy_j,
                alive=alive,
                cpu_s=cpu_d,
                bytes_freed=freed_d,
                work_units=work_d,
                frauds=frauds,
                bid_price=np.array([b[0] for b in bids], dtype=float),
                bid_slots=np.array([b[1] for b in bids], dtype=np.int64),
            )
            state, dec = economy.step(state, obs, params, rng)

            idle_j = min(sensors.idle_power_w * dt_s, tick_energy_j)
            share = physics.attribute(tick_energy_j, idle_j, cpu_d)
            idle_energy_j += tick_energy_j - float(np.sum(share))
            for a in self.agents:
                a.energy_j += float(share[a.index])

            self._record_ties(obs, dec)
            self._enforce(dec, t_s)
            for ob in dec.obituaries:
                self._event("obituary", str(ob.agent), cause=ob.cause,
                            balance_history=list(ob.balance_history)[-20:])

            tick_row = TickRow(
                round(t_s, 6), float(last_temp_c), float(power_w),
                float(sample.energy_j - first.energy_j), idle_energy_j, float(dec.price),
                float(sample.busy_cores), float(dec.pid_p), float(dec.pid_i), float(dec.pid_d),
            )
            rows = [
                AgentTickRow(
                    round(t_s, 6), a.name, a.state, a.cpu_s, int(dec.slots[a.index]),
                    float(bids[a.index][0]), float(dec.rent[a.index]), float(dec.tax[a.index]),
                    float(dec.reward[a.index]), float(dec.fine[a.index]),
                    float(dec.balances[a.index]), a.bytes_freed, a.work_units, a.energy_j,
                )
                for a in self.agents
            ]
            rec.write_tick(tick_row, rows, self._events, _transfer_rows(t_s, dec.transfers))
            self._events = []
            if exporter is not None:
                exporter.update(tick_row, rows)
            for a in self.agents:
                if a.state != "dead":
                    endpoint.send_tick(a.name, t_s, float(dec.price),
                                       float(dec.balances[a.index]), int(dec.slots[a.index]))
            if self.opts.on_tick is not None:
                self.opts.on_tick(t_s, duration_s)
            if t_s >= duration_s - 1e-6 or all(a.state == "dead" for a in self.agents):
                break
            # If a tick ran late by more than a whole period, do not try to catch up
            # with a burst of back-to-back ticks: resume the grid from now.
            k = max(k + 1, int((self.clock() - self._t0) / tick_s) + 1)

    def _record_ties(self, obs: Any, dec: Any) -> None:
        """Record the seeded draws whenever equal bids competed for the slots."""
        alloc = dec.allocation
        order = [int(i) for i in alloc.order]  # distinct agents, best first
        prices = [float(obs.bid_price[i]) for i in order]
        if len(set(prices)) < len(prices):
            self._event("tie", None, order=[self.agents[i].name for i in order],
                        bids=prices, draws=[float(x) for x in alloc.tie_keys])

    def _enforce(self, dec: Any, t_s: float) -> None:
        for a in self.agents:
            h = a.handle
            if h is None or a.state == "dead":
                continue
            i = a.index
            if bool(dec.kill[i]):
                h.kill()
                a.state = "dead"
                cause = next((ob.cause for ob in dec.obituaries if ob.agent == a.name), None)
                self._event("apoptosis", a.name, cause=cause, balance=float(dec.balances[i]),
                            cpu_s=a.cpu_s, work_units=a.work_units)
                continue
            if not self.enforce:
                continue
            cores = float(dec.cores[i])
            if bool(dec.run[i]) and cores > 0:
                h.set_cpu(cores)
                if a.state == "paused":
                    h.resume()
                    a.state = "running"
                    self._event("resume", a.name, slots=int(dec.slots[i]), cores=cores)
            elif a.state == "running":
                h.pause()
                a.state = "paused"
                self._event("pause", a.name, bid=a.bid[0] if a.bid else a.default_bid,
                            price=float(dec.price))
