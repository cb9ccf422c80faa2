"""Plant models the controller is tuned and benchmarked against, in simulated time.

The price loop's plant, as calibration identifies it, is *busy cores → die
temperature*. Anything that answers `step(load_cores, dt_s) -> temp_c` is a `Plant`:
the physics package's virtual plant (through `physics_plant`, when it is installed)
or the models here:

- `RCPlant`: P = P_idle + P_core·busy_cores into a two-node RC network (die, heatsink)
  to ambient, integrated exactly for a load held constant over dt (matrix exponential
  of the 2×2 system by eigendecomposition), so it is stable for any dt.
- `FOPDTPlant`: k·e^(−θs)/(τs+1) exactly, for tests with a known answer.

`HW_CLASSES` holds the RC parameters of the laptop, desktop and server classes.
They are stated engineering estimates, not measurements of any machine: the die
node responds in well under a second and the heatsink in minutes (HotSpot's
compact model gives 1.042 K/W and 140.4 J/K, τ ≈ 146 s, for a desktop heatsink),
which is why gains must come from identifying the plant rather than from a table.
This module touches nothing outside itself.
"""

from __future__ import annotations

import math
from collections import deque
from dataclasses import asdict, dataclass
from typing import Protocol

import numpy as np


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


# The same figures as the physics package's virtual plant (maxwell.physics.plant,
# where each is justified), plus the core count each class is sized for, so the
# benchmark can run with or without that package. HotSpot's compact model gives
# 1.042 K/W and 140.4 J/K (τ ≈ 146 s) for a heatsink; the "die" node lumps die and
# heat spreader (τ of seconds).
HW_CLASSES: dict[str, RCParams] = {
    # 4-core 15–28 W part: die τ 3 s, heatsink τ 120 s.
    "laptop": RCParams("laptop", 4, 4.0, 8.0, 1.5, 2.0, 1.5, 80.0, 30.0),
    # 8-core 105 W-TDP part: die τ 4.5 s, heatsink τ 150 s.
    "desktop": RCParams("desktop", 8, 12.0, 15.0, 0.9, 5.0, 0.25, 600.0, 35.0),
    # 64-core 280 W part: die τ 4.5 s, heatsink τ 225 s.
    "server": RCParams("server", 64, 60.0, 4.0, 0.15, 30.0, 0.15, 1500.0, 30.0),
}


def hw_params(hw_class: str) -> RCParams:
    """The RC parameters of a hardware class; ValueError names the known classes."""
    try:
        return HW_CLASSES[hw_class]
    except KeyError:
        known = ", ".join(sorted(HW_CLASSES))
        raise ValueError(f"unknown hardware class {hw_class!r} (known: {known})") from None


class RCPlant:
    """Two-node RC model, exact for a load held over each step."""

    def __init__(self, params: RCParams, load_cores: float = 0.0) -> None:
        self.params = params
        c_d, c_s = params.c_die_j_per_k, params.c_sink_j_per_k
        g_ds = 1.0 / params.r_die_sink_k_per_w
        g_sa = 1.0 / params.r_sink_amb_k_per_w
        # x = (T_die, T_sink) − T_amb; ẋ = A x + b·P
        self._a = np.array([[-g_ds / c_d, g_ds / c_d], [g_ds / c_s, -(g_ds + g_sa) / c_s]])
        self._b = np.array([1.0 / c_d, 0.0])
        eigvals, eigvecs = np.linalg.eig(self._a)
        self._eigvals = eigvals.real
        self._v = eigvecs.real
        self._v_inv = np.linalg.inv(self._v)
        self._a_inv = np.linalg.inv(self._a)
        self._x = self._steady_x(load_cores)
        self._phi_cache: dict[float, np.ndarray] = {}

    @property
    def time_constants_s(self) -> tuple[float, float]:
        """(fast, slow) time constants of the network, seconds."""
        taus = sorted(-1.0 / lam for lam in self._eigvals)
        return taus[0], taus[1]

    def _power_w(self, load_cores: float) -> float:
        load = min(max(load_cores, 0.0), float(self.params.cores))
        return self.params.p_idle_w + self.params.p_core_w * load

    def _steady_x(self, load_cores: float) -> np.ndarray:
        result: np.ndarray = -self._a_inv @ (self._b * self._power_w(load_cores))
        return result

    def _phi(self, dt_s: float) -> np.ndarray:
        phi = self._phi_cache.get(dt_s)
        if phi is None:
            phi = self._v @ np.diag(np.exp(self._eigvals * dt_s)) @ self._v_inv
            self._phi_cache[dt_s] = phi
        return phi

    def step(self, load_cores: float, dt_s: float) -> float:
        x_ss = self._steady_x(load_cores)
        self._x = x_ss + self._phi(dt_s) @ (self._x - x_ss)
        return self.temp_c

    @property
    def temp_c(self) -> float:
        return float(self._x[0]) + self.params.t_amb_c


class PhysicsPlant:
    """The physics package's virtual plant (`maxwell.physics.plant.ThermalPlant`) seen
    through busy cores: P = P_idle + P_core·clip(load, 0, cores)."""

    def __init__(self, hw_class: str, cores: int, load_cores: float = 0.0) -> None:
        from maxwell.physics import plant as physics_plant

        self._physics = physics_plant
        self.physics_params = physics_plant.plant_params(hw_class)
        self.cores = cores
        power_w = self._power_w(load_cores)
        die_c, sink_c = self.physics_params.steady_state_c(power_w)
        self._plant = physics_plant.ThermalPlant(self.physics_params, die_c, sink_c)

    def _power_w(self, load_cores: float) -> float:
        load = min(max(load_cores, 0.0), float(self.cores))
        return float(self.physics_params.power_w(load))

    def step(self, load_cores: float, dt_s: float) -> float:
        return float(self._plant.step(self._power_w(load_cores), dt_s))

    @property
    def temp_c(self) -> float:
        return float(self._plant.die_c)


def class_plant(hw_class: str, load_cores: float = 0.0) -> tuple[Plant, str]:
    """A plant for a hardware class, starting at steady state under `load_cores`, and
    which model it is: the physics package's virtual plant when it is importable,
    else this module's `RCPlant` with the same parameters."""
    params = hw_params(hw_class)
    try:
        return PhysicsPlant(hw_class, params.cores, load_cores), "maxwell.physics.plant"
    except (ImportError, AttributeError, ValueError):
        return RCPlant(params, load_cores), "maxwell.control.plant.RCPlant"


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
