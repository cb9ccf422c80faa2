"""`build_run`: probe this machine, choose the real parts and run the loop over them.

It opens every resource a live run needs (sensors, membrane backend, memory
tracer, the agents' socket, recorder, optional exporter) and releases them
whatever way the run ends (normal end, exception, Ctrl-C, SIGTERM): agents are
killed and reaped, none is left frozen, their cgroups are removed, and the
supervisor's own scheduling priority (raised for the run) is restored. The run
record gets the host facts, the parts chosen and why, and the supervisor's own
overhead (CPU, tick lateness). May touch everything.
"""

from __future__ import annotations

import dataclasses
import logging
import os
import platform
import resource
import shutil
import signal
import tempfile
import threading
from collections.abc import Callable, Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np

from maxwell import economy, membrane, memtrace, physics
from maxwell.agents import Endpoint, Verifier
from maxwell.config import Config, ConfigError
from maxwell.record import Recorder
from maxwell.run.clock import LiveClock
from maxwell.run.live import (
    ExporterSink,
    LiveChannel,
    LiveMembrane,
    LiveTracer,
    ProgressSink,
    RecorderSink,
)
from maxwell.run.loop import Loop
from maxwell.run.parts import Parts, Plan, Sink
from maxwell.run.policy import EconomyPolicy

log = logging.getLogger(__name__)


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


def _cpu_s() -> float:
    ru = resource.getrusage(resource.RUSAGE_SELF)
    return ru.ru_utime + ru.ru_stime


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
        trial_share=m.trial_share,
        trial_cpu_s=m.trial_cpu_s,
        wake_every_s=m.wake_every_s,
    )


def plan_for(cfg: Config, stop: threading.Event | None = None) -> Plan:
    """The loop's plan from a config (the simulator uses it too)."""
    bids = [a.standing_bid() for a in cfg.agents]
    return Plan(
        names=tuple(a.name for a in cfg.agents),
        funds=tuple(a.funds for a in cfg.agents),
        default_bid=tuple(float(b[0]) for b in bids),
        default_slots=tuple(int(b[1]) for b in bids),
        tick_s=cfg.run.tick_s,
        duration_s=cfg.run.duration_s,
        setpoint_c=cfg.physics.setpoint_c,
        startup_grace_s=cfg.run.startup_grace_s,
        stop=stop,
    )


def _percentile_ms(xs: list[float], q: float) -> float | None:
    return round(1000.0 * float(np.percentile(xs, q)), 3) if xs else None


class LiveRun:
    """One live run. `run()` blocks for the duration and returns the database path."""

    def __init__(self, cfg: Config, opts: RunOptions) -> None:
        self.cfg = cfg.with_run(policy=opts.policy, duration_s=opts.duration_s)
        self.opts = opts
        self.db_path = opts.out_dir / "run.db"
        self.loop: Loop | None = None

    def run(self) -> Path:
        self.opts.out_dir.mkdir(parents=True, exist_ok=True)
        if self.db_path.exists():
            raise FileExistsError(f"{self.db_path} exists; choose another --out directory")
        cpu0_s = _cpu_s()
        with ExitStack() as stack:
            stack.enter_context(_sigterm_raises())
            priority = stack.enter_context(membrane.raised_priority())
            loop, rec, host = self._build(stack, priority)
            live_membrane = loop.parts.membrane
            outcome = "completed"
            try:
                loop.run()
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
                live_membrane.close()
                self._finish(loop, rec, host, outcome, cpu0_s)
        return self.db_path

    def _build(self, stack: ExitStack, priority: str) -> tuple[Loop, Recorder, dict[str, Any]]:
        cfg, opts = self.cfg, self.opts
        try:
            sensors = physics.probe(
                opts.roots,
                hw_class=cfg.physics.hw_class,
                force_energy=None if cfg.physics.energy_source == "auto"
                else cfg.physics.energy_source,
                force_temp=None if cfg.physics.temp_source == "auto"
                else cfg.physics.temp_source,
            )
        except physics.SensorUnavailable as err:
            raise ConfigError(f"physics: a forced source does not work here: {err}") from None
        stack.callback(sensors.close)
        sensors.model_load = cfg.physics.model_load
        try:
            # Selecting a backend first cleans up what dead supervisors left behind.
            backend = membrane.select_backend(cfg.membrane.backend,
                                              microvm=membrane.microvm_options(cfg))
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
        # Jailed agents are other uids: they may pass through (not list) the directory;
        # SO_PEERCRED and the token decide who is accepted.
        os.chmod(sock_dir, 0o711)
        endpoint = Endpoint(sock_dir, welcome_extra={
            "bounty_per_unit": cfg.market.bounty_per_unit,
            "tick_s": cfg.run.tick_s,
            "policy": cfg.run.policy,
        }, max_connections=max(64, 2 * len(cfg.agents) + 16))  # room for reconnects
        stack.callback(endpoint.close)
        try:
            jail = membrane.Jail(membrane.JailConfig.from_section(cfg.jail),
                                 hide=[opts.out_dir.absolute()])
        except membrane.MembraneError as err:
            raise ConfigError(f"jail.mode: {err}") from None
        stack.callback(jail.close)
        for a in cfg.agents:  # uids first: the endpoint accepts each agent from its own only
            try:
                jail.reserve(a.name, a.argv())
            except membrane.MembraneError as err:
                raise ConfigError(f"jail: {err}") from None
        gains, gains_doc = _gains(cfg, sensors, opts.roots)
        params = economy_params(cfg, gains)
        rng = np.random.default_rng(cfg.run.seed)
        verifier = Verifier(cfg.market.resieve_probability,
                            np.random.default_rng([cfg.run.seed, 1]),
                            block_audit_probability=cfg.market.block_audit_probability,
                            probation_claims=cfg.market.probation_claims)
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
            "jail": jail.describe(),
            "stale_cleanup": backend.cleanup_report.to_dict()
            if backend.cleanup_report is not None else None,
        }
        names = [a.name for a in cfg.agents]
        sinks: list[Sink] = []
        if opts.prometheus_port is not None:
            from maxwell.record.prometheus import MetricsExporter

            try:
                exporter = MetricsExporter(
                    opts.prometheus_port, names,
                    "measured" if sensors.energy_measured else "modelled",
                    "measured" if sensors.temp_measured else "modelled",
                )
            except OSError as err:
                raise ConfigError(f"--prometheus-port {opts.prometheus_port}: {err}") from None
            stack.callback(exporter.close)
            sinks.append(ExporterSink(exporter))
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
            jail_level=jail.level,
            gains=gains_doc,
            setpoint_c=cfg.physics.setpoint_c,
            landauer_lambda=cfg.market.landauer_lambda,
        )
        sinks.insert(0, RecorderSink(rec))
        if opts.on_tick is not None:
            sinks.append(ProgressSink(opts.on_tick, cfg.run.duration_s))
        logs = opts.out_dir / "agents"
        logs.mkdir(exist_ok=True)
        specs = [
            membrane.AgentSpec(
                name=a.name,
                argv=a.argv(),
                pids_max=cfg.membrane.pids_max,
                memory_max_bytes=int(cfg.membrane.memory_max_mb * 2**20)
                if cfg.membrane.memory_max_mb else None,
                log_path=logs / f"{a.name}.log",
                jail=jail.request(rw=[endpoint.path]),
                cpus=a.workers,
                isolation=a.isolation,
            )
            for a in cfg.agents
        ]
        live = LiveMembrane(backend, specs)
        parts = Parts(
            clock=LiveClock(), sampler=sensors, membrane=live, tracer=LiveTracer(tracer, live),
            # A microVM guest connects through its VMM, which runs as the agent's uid
            # unless [microvm] jail_vmm = false.
            channel=LiveChannel(endpoint, verifier, names, uid_of=jail.uid_of
                                if backend.name != "microvm" or cfg.microvm.jail_vmm else None),
            policy=EconomyPolicy(params, rng),
            sinks=sinks,
        )
        plan = plan_for(cfg, opts.stop)
        self._loop_start: tuple[float, float] | None = None

        def on_start() -> None:
            # The steady-state overhead excludes start-up (imports, probing, spawning).
            self._loop_start = (_cpu_s(), parts.clock.now())

        self.loop = Loop(dataclasses.replace(plan, on_start=on_start), parts)
        return self.loop, rec, host

    def _finish(self, loop: Loop, rec: Recorder, host: dict[str, Any], outcome: str,
                cpu0_s: float) -> None:
        """Write the stop events and the supervisor's own overhead into the run record."""
        cpu1_s = _cpu_s()
        elapsed = max(loop.t() if loop.t0 is not None else 0.0, 1e-9)
        cpu_s = cpu1_s - cpu0_s
        verify_cpu_s = getattr(loop.parts.channel, "verify_cpu_s", 0.0)
        host["outcome"] = outcome
        host["supervisor_cpu_s"] = round(cpu_s, 4)
        host["supervisor_cpu_pct_of_core"] = round(100.0 * cpu_s / elapsed, 3)
        host["supervisor_peak_rss_mb"] = round(
            resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0, 1)
        if self._loop_start is not None:
            loop_cpu_s = cpu1_s - self._loop_start[0]
            loop_s = max(loop.parts.clock.now() - self._loop_start[1], 1e-9)
            host["supervisor_loop_cpu_pct_of_core"] = round(100 * loop_cpu_s / loop_s, 3)
            host["supervisor_loop_cpu_pct_of_core_excl_verify"] = round(
                100 * max(loop_cpu_s - verify_cpu_s, 0.0) / loop_s, 3)
        host["supervisor_verify_cpu_s"] = round(verify_cpu_s, 4)
        energy = getattr(loop, "energy", None)  # absent when the loop never started
        foreign_cpu_s = float(energy.foreign_cpu_s) if energy is not None else 0.0
        host["foreign_cpu_s"] = round(foreign_cpu_s, 3)
        host["foreign_cpu_share"] = round(foreign_cpu_s / ((os.cpu_count() or 1) * elapsed), 4)
        host["tick_late_p50_ms"] = _percentile_ms(loop.lateness_s, 50)
        host["tick_late_p99_ms"] = _percentile_ms(loop.lateness_s, 99)
        host["tick_late_max_ms"] = _percentile_ms(loop.lateness_s, 100)
        host["elapsed_s"] = round(elapsed, 3)
        describe = getattr(getattr(loop.parts.membrane, "backend", None), "describe", None)
        if callable(describe):  # the microVM tier: accelerator, boot time per agent
            host["membrane_detail"] = describe()
        try:
            loop.finish(outcome)
            rec.finish(_now_iso(), host)
        except Exception:  # recording must never mask the original error
            log.exception("could not finish the run record")


def build_run(config: Config, options: RunOptions) -> LiveRun:
    """A live run of `config` on this machine's real parts (chosen when it starts)."""
    return LiveRun(config, options)
