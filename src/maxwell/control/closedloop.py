"""Closed-loop simulation of the price loop on a plant model, and its step metrics.

Loop, one tick of ``tick_s``: the plant runs the load decided at the previous tick;
the temperature at the end of the tick goes into `pid_step`; the new reserve price
sets the load of the next tick. The actuator is the economy's: the capacity for sale
is cores − (r − r_min)/price_per_core (`economy.capacity_for_sale`, clipped to
[0, cores]), the agents run min(demand, capacity), and ``foreign_cores`` of load from
outside the market (the disturbance no price reaches) comes on top:
load = min(demand, capacity) + foreign. `tuning.simc_gains` converts SIMC's cores per
°C with the same price_per_core, so the benchmark measures the tuning in the
actuator's own units.

Metrics (`step_metrics`): overshoot is the largest excursion past the final target
on the far side from where the response started, in % of the step; settling time
is the last time the temperature is outside a band of 2 % of the step around the
target, measured from the step; IAE is ∫|T − T_set| dt after the step; the
steady-state error is the mean of T − T_set over the last 10 % of the record. For a
load step (disturbance), "the step" is the open-loop temperature change the load
change would cause at steady state.

Pure numpy and the plant model; no I/O, no clock.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from maxwell.control.pid import PIDGains, PIDLimits, PIDState, pid_step
from maxwell.control.plant import Plant

FloatArray = npt.NDArray[np.float64]


@dataclass(frozen=True)
class Trace:
    """A simulated record at tick resolution."""

    t_s: FloatArray
    temp_c: FloatArray
    setpoint_c: FloatArray
    price: FloatArray
    load_cores: FloatArray
    demand_cores: FloatArray


def simulate(
    plant: Plant,
    gains: PIDGains,
    limits: PIDLimits,
    *,
    cores: float,
    duration_s: float,
    setpoint_c: Callable[[float], float],
    demand_cores: Callable[[float], float],
    tick_s: float = 1.0,
    price_per_core: float = 1.0,
    initial_price: float | None = None,
    foreign_cores: Callable[[float], float] | None = None,
) -> Trace:
    """Run the loop for `duration_s` of simulated time."""
    n = round(duration_s / tick_s)
    ts = np.arange(1, n + 1, dtype=np.float64) * tick_s
    temps = np.empty(n)
    sps = np.empty(n)
    prices = np.empty(n)
    loads = np.empty(n)
    demands = np.empty(n)
    price = limits.r_min if initial_price is None else initial_price
    state = PIDState.zeros(1, integral=price)
    t = 0.0
    for i in range(n):
        demand = demand_cores(t)
        capacity = min(max(cores - (price - limits.r_min) / price_per_core, 0.0), cores)
        foreign = foreign_cores(t) if foreign_cores is not None else 0.0
        load = min(min(demand, capacity) + foreign, cores)
        temp = plant.step(load, tick_s)
        t = float(ts[i])
        sp = setpoint_c(t)
        state, out = pid_step(gains, limits, sp, state, temp, tick_s)
        price = float(out.u[0])
        temps[i], sps[i], prices[i], loads[i], demands[i] = temp, sp, price, load, demand
    return Trace(ts, temps, sps, prices, loads, demands)


@dataclass(frozen=True)
class StepMetrics:
    """Response to one step (see module docstring for definitions)."""

    overshoot_pct: float
    settling_s: float
    iae_c_s: float
    steady_state_error_c: float

    def as_dict(self) -> dict[str, float]:
        return {
            "overshoot_pct": self.overshoot_pct,
            "settling_s": self.settling_s,
            "iae_c_s": self.iae_c_s,
            "steady_state_error_c": self.steady_state_error_c,
        }


def step_metrics(
    trace: Trace, t_step_s: float, step_c: float, start_c: float
) -> StepMetrics:
    """Metrics of the response after `t_step_s`.

    `step_c` is the signed size of the step in °C (setpoint change, or open-loop
    temperature change for a load step) and `start_c` is where the error starts
    relative to the target: for a setpoint step, the old setpoint; for a load step,
    the setpoint (the response leaves it and must come back).
    """
    after = trace.t_s > t_step_s
    t = trace.t_s[after]
    y = trace.temp_c[after]
    target = trace.setpoint_c[after]
    err = y - target
    size = abs(step_c)
    if size == 0 or t.size == 0:
        raise ValueError("step metrics need a non-zero step and samples after it")
    dt = float(np.median(np.diff(trace.t_s))) if trace.t_s.size > 1 else 1.0
    iae = float(np.sum(np.abs(err)) * dt)
    tail = err[int(0.9 * err.size) :]
    sse = float(np.mean(tail))
    # Which side of the target the response comes from: a setpoint step starts on
    # the old setpoint's side; a load step is pushed to the side of step_c and
    # overshoot is any excursion back past the setpoint on the other side.
    if start_c != float(target[0]):
        side = math.copysign(1.0, start_c - float(target[0]))
    else:
        side = math.copysign(1.0, step_c)
    far = np.maximum(-side * err, 0.0)
    overshoot = float(np.max(far)) / size * 100.0
    band = 0.02 * size
    outside = np.nonzero(np.abs(err) > band)[0]
    if outside.size == 0:
        settling = 0.0
    elif outside[-1] == err.size - 1:
        settling = math.inf
    else:
        settling = float(t[outside[-1] + 1] - t_step_s)
    return StepMetrics(overshoot, settling, iae, sse)
