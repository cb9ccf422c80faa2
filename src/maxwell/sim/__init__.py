"""The simulator: the live tick loop with simulated parts, at any scale.

`run_sim(config, SimOptions(out_dir=...))` runs `maxwell.run.loop.Loop` — the
loop every live run uses, with the same `economy.step` — over vectorized agent
models (`models`), a modelled host whose cores they share and whose virtual plant
they heat (`world`), the parts that connect them to the loop (`parts`) and a
virtual clock, and writes the same run database as a live run, labelled
simulated. `calibration` measures the built-in agents on this machine so their
models behave like them. The split follows SimPy's: one model and event core,
two clocks (`simpy.Environment` jumps, `simpy.rt.RealtimeEnvironment` paces
simulated time to the wall clock by a `factor`); here one loop, a live clock and
`VirtualClock`. May import the run shell and everything below it.
"""

from maxwell.sim.calibration import CalibrationError, default_path, load, measure, save
from maxwell.sim.models import MODEL_OPTIONS, MODELS, AgentModel, Calibration, Population
from maxwell.sim.run import SimOptions, SimRun, run_sim

__all__ = [
    "MODELS",
    "MODEL_OPTIONS",
    "AgentModel",
    "Calibration",
    "CalibrationError",
    "Population",
    "SimOptions",
    "SimRun",
    "default_path",
    "load",
    "measure",
    "run_sim",
    "save",
]
