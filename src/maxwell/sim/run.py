"""`SimRun`: the live tick loop over simulated parts and a virtual clock.

Builds the same `maxwell.run.loop.Loop` a live run uses, with the same plan, the
same `EconomyPolicy` (so the same `economy.step`: one auction, one ledger, one
controller) and the same recorder sink, and swaps in the simulator's parts
(`maxwell.sim.parts`) and `VirtualClock`. The run database has the live schema and
says it is simulated: `runs.membrane_backend` and `memtrace_source` are
"simulated", the host facts carry ``"simulated": true`` with the calibration used,
and energy and temperature are labelled modelled. Deterministic: the config's seed
drives the auction's tie-breaks ([seed]), verification draws ([seed, 1]) and the
models' phases ([seed, 2]), as in a live run; nothing reads the wall clock except
the `started_at`/`ended_at` stamps of the `runs` row. Writes only `out_dir/run.db`.
"""

from __future__ import annotations

import dataclasses
import platform
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np

from maxwell.config import AgentSection, Config, ConfigError
from maxwell.physics import Roots, plant_params
from maxwell.record import Recorder
from maxwell.run.build import _gains, economy_params, plan_for
from maxwell.run.clock import VirtualClock
from maxwell.run.live import RecorderSink
from maxwell.run.loop import Loop
from maxwell.run.parts import Parts, Sink, TickRecord
from maxwell.run.policy import EconomyPolicy
from maxwell.sim.models import (
    BID_VALUE,
    MODEL_OPTIONS,
    AgentModel,
    Calibration,
    ModelOptionError,
    build_population,
    check_model_options,
)
from maxwell.sim.parts import SimChannel, SimMembrane, SimSampler, SimTracer, parts_facts
from maxwell.sim.world import World


@dataclass(frozen=True)
class SimOptions:
    """How to simulate a config. None: the config's own value."""

    out_dir: Path | None
    policy: str | None = None
    duration_s: float | None = None
    calibration: Calibration = field(default_factory=Calibration)
    cpus: float | None = None  # cores of the simulated host (None: the config's slots)
    foreign_cores: float = 0.0  # constant load outside the run (takes cores, no energy)
    overhead_cores: float = 0.0  # the run's own overhead (the supervisor's CPU)
    # Or per-tick series (a live run's, replayed: `calibration.load_series`).
    foreign_series: Sequence[float] | None = None
    overhead_series: Sequence[float] | None = None
    # "all": every table in full; "ticks": the ticks table and events only (large N).
    record: str = "all"
    sinks: Sequence[Sink] = ()  # more sinks (a progress bar, the bench's timer)


def agent_model(i: int, a: AgentSection) -> AgentModel:
    """The model an [[agents]] entry names (a built-in maps to its calibrated model)."""
    if a.cmd is not None:
        raise ConfigError(f"agents[{i}].cmd: a program cannot be simulated; name a model "
                          "(model = \"worker\", \"parasite\", ...) or a builtin")
    kind = a.model or a.builtin
    assert kind is not None
    known = MODEL_OPTIONS[kind]
    # A built-in's options that change nothing the model sees (sample_size, stop,
    # chunk_bytes, claim_hashes) are accepted and ignored, so the demo config runs as is.
    opts = {k: v for k, v in a.options.items() if a.model is not None or k in known}
    try:
        checked = check_model_options(kind, opts)
    except ModelOptionError as err:
        raise ConfigError(f"agents[{i}].options: {err}") from None
    return AgentModel(a.name, kind, a.workers, checked)


def build_world(cfg: Config, opts: SimOptions) -> World:
    """The simulated host for `cfg` (raises ConfigError naming a bad key)."""
    models = [agent_model(i, a) for i, a in enumerate(cfg.agents)]
    pop = build_population(models, opts.calibration, np.random.default_rng([cfg.run.seed, 2]))
    cpus = float(opts.cpus if opts.cpus is not None else cfg.slots())
    def series(x: Sequence[float] | None) -> Any:
        return None if x is None else np.asarray(x, dtype=np.float64)

    m = cfg.market
    return World(pop, plant_params(cfg.physics.hw_class), cpus=cpus,
                 foreign_cores=opts.foreign_cores, overhead_cores=opts.overhead_cores,
                 foreign_series=series(opts.foreign_series),
                 overhead_series=series(opts.overhead_series), series_tick_s=cfg.run.tick_s,
                 resieve_probability=m.resieve_probability,
                 block_audit_probability=m.block_audit_probability,
                 probation_claims=m.probation_claims, model_load=cfg.physics.model_load,
                 rng=np.random.default_rng([cfg.run.seed, 1]))


class TicksOnlySink:
    """Records the ticks table and events; per-agent rows and transfers are skipped
    (a run of 10⁵ agents would write 10⁵ rows a tick)."""

    def __init__(self, recorder: Recorder) -> None:
        self.recorder = recorder

    def write(self, record: TickRecord) -> None:
        self.recorder.write_tick(record.tick, (), record.events, ())


class SimRun:
    """One simulated run. `run()` returns the database path (None: nothing recorded)."""

    def __init__(self, cfg: Config, opts: SimOptions) -> None:
        self.cfg = cfg.with_run(policy=opts.policy, duration_s=opts.duration_s)
        self.opts = opts
        self.world = build_world(self.cfg, opts)  # validates before anything is created
        self.loop: Loop | None = None
        # Called when the loop starts ticking (after spawning); the bench times from here.
        self.on_start: Callable[[], None] | None = None

    def parts(self, sinks: Sequence[Sink]) -> tuple[Parts, dict[str, Any]]:
        cfg, world = self.cfg, self.world
        clock = VirtualClock()
        sampler = SimSampler(world, clock.now)
        gains, gains_doc = _gains(cfg, sampler, Roots())  # type: ignore[arg-type]
        params = economy_params(cfg, gains)
        parts = Parts(
            clock=clock, sampler=sampler, membrane=SimMembrane(world, clock.now),
            tracer=SimTracer(world, clock.now),
            channel=SimChannel(world, clock.now, tick_s=cfg.run.tick_s,
                               bounty_per_unit=cfg.market.bounty_per_unit),
            policy=EconomyPolicy(params, np.random.default_rng(cfg.run.seed)),
            sinks=sinks,
        )
        return parts, gains_doc

    def plan(self) -> Any:
        pop = self.world.pop
        opening = np.where(pop.strategy == BID_VALUE, pop.initial_bid, pop.fixed_bid)
        return dataclasses.replace(
            plan_for(self.cfg),
            default_bid=tuple(float(x) for x in opening),
            default_slots=tuple(int(x) for x in pop.slots),
            on_start=self.on_start,
        )

    def run(self) -> Path | None:
        cfg, opts = self.cfg, self.opts
        if opts.out_dir is None:
            parts, _ = self.parts(list(opts.sinks))
            self.loop = Loop(self.plan(), parts)
            self.loop.run()
            return None
        db = opts.out_dir / "run.db"
        if db.exists():
            raise ConfigError(f"{db} exists: choose another --out directory")
        opts.out_dir.mkdir(parents=True, exist_ok=True)
        rec = Recorder(db)
        try:
            sink: Sink = RecorderSink(rec) if opts.record == "all" else TicksOnlySink(rec)
            parts, gains_doc = self.parts([sink, *opts.sinks])
            sampler = parts.sampler
            assert isinstance(sampler, SimSampler)
            host = {
                **parts_facts(self.world, opts.calibration),
                "python": platform.python_version(),
                "physics": sampler.describe(),
                "membrane_reason": SimMembrane.reason,
                "membrane_capabilities": sorted(SimMembrane.capabilities),
                "memtrace_reason": SimTracer.reason,
                "memtrace_label": SimTracer.label,
                "record": opts.record,
            }
            rec.start_run(
                started_at=_now_iso(), policy=cfg.run.policy, duration_s=cfg.run.duration_s,
                tick_s=cfg.run.tick_s, config=cfg.model_dump(), host=host,
                energy_source=sampler.energy_source, energy_measured=False,
                temp_source=sampler.temp_source, temp_measured=False,
                memtrace_source=SimTracer.source, memtrace_exact=True,
                membrane_backend=SimMembrane.name, gains=gains_doc,
                setpoint_c=cfg.physics.setpoint_c, landauer_lambda=cfg.market.landauer_lambda,
            )
            self.loop = Loop(self.plan(), parts)
            outcome = "completed"
            try:
                self.loop.run()
            except BaseException as err:
                outcome = f"error: {err!r}"
                raise
            finally:
                parts.membrane.close()
                host["outcome"] = outcome
                host["simulated_s"] = round(self.loop.t(), 6)
                self.loop.finish(outcome)
                rec.finish(_now_iso(), host)
        finally:
            rec.close()
        return db


def _now_iso() -> str:
    return datetime.now(UTC).isoformat(timespec="seconds")


def run_sim(cfg: Config, opts: SimOptions) -> Path | None:
    """Simulate `cfg`; returns the run database (see `SimRun`)."""
    return SimRun(cfg, opts).run()
