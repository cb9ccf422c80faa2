"""Plant models the controller is tuned and benchmarked against, in simulated time.

The price loop's plant, as calibration identifies it, is *busy cores → die
temperature*. Anything that answers `step(load_cores, dt_s) -> temp_c` is a `Plant`:

- `RCPlant`: the one virtual plant, `maxwell.physics.plant` (P = P_idle + P_core·busy
  cores into its exact two-node RC network), seen through busy cores;
- `FOPDTPlant`: k·e^(−θs)/(τs+1) exactly, for tests with a known answer.

`HW_CLASSES` holds each hardware class's parameters in the controller's terms: the
physics package's figures (`maxwell.physics.plant.HW_CLASSES`, where each one is
justified) plus the core count the class is sized for. They are stated engineering
estimates, not measurements of any machine, which is why gains must come from
identifying the plant rather than from a table. No I/O.
"""

from __future__ import annotations

import math
from collections import deque
from dataclasses import asdict, dataclass
from typing import Protocol

from maxwell.physics import plant as physics_plant


class Plant(Protocol):
    """A thermal plant stepped in simulated time."""

    def step(self, load_cores: float, dt_s: float) -> float:
        """Hold `load_cores` busy cores for `dt_s` seconds; return the die temperature (°C)."""
        ...

    @property
    def temp_c(self) -> float:
        """Current die temperature (°C)."""
        ...


@dataclass(frozen=True)
class RCParams:
    """Two-node thermal network of one hardware class (SI units)."""

    hw_class: str
    cores: int
    p_idle_w: float  # package power with no busy core
    p_core_w: float  # added power per fully busy core
    r_die_sink_k_per_w: float  # die → heatsink
    c_die_j_per_k: float
    r_sink_amb_k_per_w: float  # heatsink → ambient
    c_sink_j_per_k: float
    t_amb_c: float = 25.0

    @property
    def gain_c_per_core(self) -> float:
        """Steady-state die temperature rise per busy core (°C per core)."""
        return self.p_core_w * (self.r_die_sink_k_per_w + self.r_sink_amb_k_per_w)

    def steady_temp_c(self, load_cores: float) -> float:
        """Steady-state die temperature at a constant load."""
        power_w = self.p_idle_w + self.p_core_w * load_cores
        return self.t_amb_c + power_w * (self.r_die_sink_k_per_w + self.r_sink_amb_k_per_w)

    def load_for_temp(self, temp_c: float) -> float:
        """Busy cores that hold the die at `temp_c` in steady state."""
        r_total = self.r_die_sink_k_per_w + self.r_sink_amb_k_per_w
        return ((temp_c - self.t_amb_c) / r_total - self.p_idle_w) / self.p_core_w

    def sustainable_power_w(self, temp_c: float) -> float:
        """Power the package can dissipate indefinitely at `temp_c` (power_allocator's SP)."""
        return (temp_c - self.t_amb_c) / (self.r_die_sink_k_per_w + self.r_sink_amb_k_per_w)

    def as_dict(self) -> dict[str, float | int | str]:
        return asdict(self)


# Cores each class is sized for; every other figure is the physics package's.
CLASS_CORES = {"laptop": 4, "desktop": 8, "server": 64}


def _from_physics(hw_class: str, cores: int) -> RCParams:
    p = physics_plant.plant_params(hw_class)
    return RCParams(hw_class, cores, p.idle_power_w, p.core_power_w, p.r_die_sink_k_per_w,
                    p.c_die_j_per_k, p.r_sink_amb_k_per_w, p.c_sink_j_per_k, p.ambient_c)


HW_CLASSES: dict[str, RCParams] = {n: _from_physics(n, c) for n, c in CLASS_CORES.items()}


def hw_params(hw_class: str) -> RCParams:
    """The RC parameters of a hardware class; ValueError names the known classes."""
    try:
        return HW_CLASSES[hw_class]
    except KeyError:
        known = ", ".join(sorted(HW_CLASSES))
        raise ValueError(f"unknown hardware class {hw_class!r} (known: {known})") from None


class RCPlant:
    """The virtual plant (`maxwell.physics.plant.ThermalPlant`) driven by busy cores:
    P = P_idle + P_core·clip(load, 0, cores), exact for a load held over each step."""

    def __init__(self, params: RCParams, load_cores: float = 0.0) -> None:
        self.params = params
        self.physics_params = physics_plant.PlantParams(
            hw_class=params.hw_class, idle_power_w=params.p_idle_w,
            core_power_w=params.p_core_w, ambient_c=params.t_amb_c,
            r_die_sink_k_per_w=params.r_die_sink_k_per_w, c_die_j_per_k=params.c_die_j_per_k,
            r_sink_amb_k_per_w=params.r_sink_amb_k_per_w, c_sink_j_per_k=params.c_sink_j_per_k)
        die_c, sink_c = self.physics_params.steady_state_c(self._power_w(load_cores))
        self._plant = physics_plant.ThermalPlant(self.physics_params, die_c, sink_c)

    @property
    def time_constants_s(self) -> tuple[float, float]:
        """(fast, slow) time constants of the network, seconds."""
        return self.physics_params.modes_s()

    def _power_w(self, load_cores: float) -> float:
        load = min(max(load_cores, 0.0), float(self.params.cores))
        return self.params.p_idle_w + self.params.p_core_w * load

    def step(self, load_cores: float, dt_s: float) -> float:
        return float(self._plant.step(self._power_w(load_cores), dt_s))

    @property
    def temp_c(self) -> float:
        return float(self._plant.die_c)


def class_plant(hw_class: str, load_cores: float = 0.0) -> tuple[Plant, str]:
    """The virtual plant of a hardware class, at steady state under `load_cores`, and
    its name (for reports)."""
    return RCPlant(hw_params(hw_class), load_cores), "maxwell.physics.plant"


class FOPDTPlant:
    """Exact first-order-plus-dead-time plant: T = T0 + k·u(t−θ) through 1/(τs+1).

    Dead time is realized on the step grid (θ rounded to whole steps of the dt in use).
    """

    def __init__(
        self, gain_c_per_core: float, tau_s: float, theta_s: float = 0.0, base_c: float = 40.0
    ) -> None:
        self.gain_c_per_core = gain_c_per_core
        self.tau_s = tau_s
        self.theta_s = theta_s
        self.base_c = base_c
        self._y = 0.0
        self._queue: deque[float] = deque()
        self._delay_steps = -1

    def step(self, load_cores: float, dt_s: float) -> float:
        if self._delay_steps < 0:
            self._delay_steps = round(self.theta_s / dt_s)
            self._queue.extend([0.0] * self._delay_steps)
        self._queue.append(load_cores)
        u = self._queue.popleft()
        a = math.exp(-dt_s / self.tau_s)
        self._y = a * self._y + (1.0 - a) * self.gain_c_per_core * u
        return self.temp_c

    @property
    def temp_c(self) -> float:
        return self.base_c + self._y
