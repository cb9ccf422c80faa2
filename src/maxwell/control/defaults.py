"""Gains and limits to use when this machine has no calibration profile.

`default_gains(hw_class)` is not a table: it runs the calibration procedure on the
hardware class's model plant in simulated time — idle at steady state, then every
core of the class busy for `STEP_TEST_S` seconds, sampled every `SAMPLE_S` — fits
the plant (`tuning.fit_fopdt`) and applies SIMC (`tuning.simc_gains`) with the
default tick and ``price_per_core``. The result is cached per process. A real
machine should be calibrated (`maxwell calibrate`), because its plant is not the
class's model. Pure computation; no I/O.
"""

from __future__ import annotations

from functools import cache

import numpy as np

from maxwell.control.pid import PIDGains, PIDLimits
from maxwell.control.plant import class_plant, hw_params
from maxwell.control.tuning import (
    DEFAULT_PRICE_PER_CORE,
    DEFAULT_TICK_S,
    FOPDTFit,
    SimcResult,
    SimcRule,
    fit_fopdt,
    simc_gains,
)

STEP_TEST_S = 600.0  # simulated seconds of load after the step (≈ 3–5 heatsink τ)
IDLE_S = 5.0
SAMPLE_S = 0.5


def simulated_step_test(
    hw_class: str, duration_s: float = STEP_TEST_S, sample_s: float = SAMPLE_S
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(t_s, busy_cores, temp_c) of a step test on the class's model plant."""
    params = hw_params(hw_class)
    plant, _ = class_plant(hw_class, 0.0)
    n = round((IDLE_S + duration_s) / sample_s)
    t = np.arange(n + 1, dtype=np.float64) * sample_s
    u = np.where(t < IDLE_S, 0.0, float(params.cores))
    y = np.empty(n + 1)
    y[0] = plant.temp_c
    for i in range(n):
        y[i + 1] = plant.step(float(u[i]), sample_s)
    return t, u, y


@cache
def class_tuning(
    hw_class: str,
    tick_s: float = DEFAULT_TICK_S,
    price_per_core: float = DEFAULT_PRICE_PER_CORE,
) -> tuple[FOPDTFit, SimcResult]:
    """The fit and SIMC tuning of a hardware class's model plant (cached)."""
    t, u, y = simulated_step_test(hw_class)
    fit = fit_fopdt(t, u, y, free_start=False)  # the model starts at steady state
    return fit, simc_gains(fit, SimcRule(tick_s=tick_s), price_per_core)


def default_gains(
    hw_class: str = "desktop",
    tick_s: float = DEFAULT_TICK_S,
    price_per_core: float = DEFAULT_PRICE_PER_CORE,
) -> PIDGains:
    """SIMC gains of the hardware class's model plant (see the module docstring)."""
    return class_tuning(hw_class, tick_s, price_per_core)[1].gains


def default_limits(cores: float, price_per_core: float = DEFAULT_PRICE_PER_CORE) -> PIDLimits:
    """Reserve price from 0 to 2·cores·price_per_core: at the top even a demand of
    twice the machine's cores is priced out entirely."""
    return PIDLimits(0.0, 2.0 * cores * price_per_core)
