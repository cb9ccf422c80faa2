"""Build a tick loop from the in-process doubles (tests/run/run_doubles.py) and a config text."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
from run_doubles import (
    ListSink,
    ModelAgent,
    ModelMembrane,
    ModelPlant,
    ModelTracer,
    ScriptChannel,
)

from maxwell import control
from maxwell.config import Config, validate
from maxwell.run.build import economy_params, plan_for
from maxwell.run.clock import VirtualClock
from maxwell.run.loop import Loop
from maxwell.run.parts import Parts
from maxwell.run.policy import EconomyPolicy


@dataclass
class World:
    loop: Loop
    clock: VirtualClock
    membrane: ModelMembrane
    channel: ScriptChannel
    sink: ListSink
    cfg: Config


def config(agents: Sequence[dict[str, object]], **sections: dict[str, object]) -> Config:
    data: dict[str, object] = {"agents": [{"cmd": ["true"], **a} for a in agents]}
    data.update(sections)
    return validate(data)


def make_world(cfg: Config, models: Sequence[ModelAgent], *, policy: str = "maxwell",
               duration_s: float | None = None, cores: float = 2.0,
               spawn_s: float = 0.0) -> World:
    cfg = cfg.with_run(policy=policy, duration_s=duration_s or cfg.run.duration_s)
    clock = VirtualClock(1000.0)
    membrane = ModelMembrane(clock, models, cores=cores, spawn_s=spawn_s)
    channel = ScriptChannel(clock, membrane)
    sink = ListSink()
    params = economy_params(cfg, control.default_gains(cfg.physics.hw_class))
    parts = Parts(clock=clock, sampler=ModelPlant(clock, membrane), membrane=membrane,
                  tracer=ModelTracer(membrane), channel=channel,
                  policy=EconomyPolicy(params, np.random.default_rng(cfg.run.seed)),
                  sinks=[sink])
    return World(Loop(plan_for(cfg), parts), clock, membrane, channel, sink, cfg)

