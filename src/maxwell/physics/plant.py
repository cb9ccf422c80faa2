"""The virtual plant: host power and a two-node RC thermal model (die, heatsink).

Used when the hardware hides the physics (VMs, locked-down hosts) and by the
simulator. Power is `P = P_idle + P_core · busy_cores`; heat flows die → heatsink →
ambient through two resistances, and each node stores heat in a capacitance:

    C_d · dT_d/dt = P − (T_d − T_s)/R_ds
    C_s · dT_s/dt = (T_d − T_s)/R_ds − (T_s − T_amb)/R_sa

For power held constant over a step (zero-order hold, which is what a tick is) the
solution is exact: x(t+Δt) = x_ss + e^{AΔt}·(x(t) − x_ss), with x the rise above
ambient, x_ss the steady state for P and e^{AΔt} in closed form from the two real,
negative eigenvalues of A (Sylvester's formula written with plain exponentials, so
it neither overflows nor goes unstable for any Δt ≥ 0, from 1 ms to hours). Pure
arithmetic on floats or numpy arrays (vectorized over hosts for the simulator); no
I/O.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass
from typing import TypeAlias

import numpy as np

# Scalars for one host, arrays for many (the simulator vectorizes over hosts).
Num: TypeAlias = float | np.ndarray


@dataclass(frozen=True)
class PlantParams:
    """Parameters of the virtual plant for one hardware class (units in the names)."""

    hw_class: str
    idle_power_w: float  # package power with nothing running
    core_power_w: float  # extra power per fully busy core
    ambient_c: float  # air at the heatsink (inside the case)
    r_die_sink_k_per_w: float  # die (+ spreader) → heatsink
    c_die_j_per_k: float  # die + integrated heat spreader
    r_sink_amb_k_per_w: float  # heatsink → air
    c_sink_j_per_k: float  # heatsink (+ heat pipes)

    @property
    def tau_die_s(self) -> float:
        """Nominal die time constant R_ds·C_d (the fast mode is a little faster)."""
        return self.r_die_sink_k_per_w * self.c_die_j_per_k

    @property
    def tau_sink_s(self) -> float:
        """Nominal heatsink time constant R_sa·C_s (the slow mode is a little slower)."""
        return self.r_sink_amb_k_per_w * self.c_sink_j_per_k

    def power_w(self, busy_cores: float) -> float:
        return self.idle_power_w + self.core_power_w * busy_cores

    def steady_state_c(self, power_w: float) -> tuple[float, float]:
        """(die, heatsink) temperatures held at constant power forever."""
        sink = self.ambient_c + power_w * self.r_sink_amb_k_per_w
        return sink + power_w * self.r_die_sink_k_per_w, sink

    def modes_s(self) -> tuple[float, float]:
        """The exact time constants (fast, slow) of the network: −1/λ of A."""
        lam1, lam2, _ = _eigen(self)
        return -1.0 / lam2, -1.0 / lam1

    def as_dict(self) -> dict[str, object]:
        d: dict[str, object] = asdict(self)
        fast, slow = self.modes_s()
        d.update(
            tau_die_s=round(self.tau_die_s, 3),
            tau_sink_s=round(self.tau_sink_s, 3),
            mode_fast_s=round(fast, 3),
            mode_slow_s=round(slow, 3),
            idle_die_c=round(self.steady_state_c(self.idle_power_w)[0], 3),
        )
        return d


# Hardware classes. No published table fits a given host (the controller is tuned
# by `maxwell calibrate` on the real plant), so these are round, defensible values
# that keep the model's orders of magnitude right. Only the HotSpot figures below
# are a cited source; the cooler, power and R_ds figures are typical orders of
# magnitude for the named kind of part, i.e. modelling choices, not measurements:
#
# - Heatsink time constants of minutes: HotSpot's compact model (UVA) defaults to
#   a convection resistance of 1.042 K/W and 140.4 J/K (τ ≈ 146 s) with 45 °C
#   ambient; our heatsinks are 120 s (laptop), 150 s (desktop), 225 s (server).
#   Tower desktop coolers are specified around 0.2–0.3 K/W (0.25 here, 600 J/K ≈
#   0.65 kg of aluminium at 0.9 J/(g·K)); thin laptop heat-pipe coolers around
#   1.5 K/W; a 2U server heatsink with forced air about 0.15 K/W.
# - The "die" node lumps die and integrated heat spreader, so its time constant is
#   seconds rather than the silicon's milliseconds (DESIGN.md: die ms to ~1 s);
#   a 1 Hz tick cannot see faster dynamics anyway. R_ds is an *effective*
#   resistance for power concentrated in a few cores: whole-package θ_jc is
#   0.1–0.3 K/W, but one or two loaded cores heat their hot spot 20–30 K above the
#   heatsink within seconds, which is what a temperature-priced market reacts to.
# - Power: desktop ≈ an 8-core 105 W-TDP part (package power tracking limit
#   142 W): (142 − 12) W / 8 cores ≈ 16 W per fully busy core (15 W here), 12 W
#   package idle; laptop ≈ a 15–28 W 4-core part: 8 W per core, 4 W idle;
#   server ≈ a 64-core 280 W part: 60 W idle (uncore, I/O), (280 − 60)/64 ≈
#   3.5 W per core (4 W here).
#
# The desktop class is chosen so that on this project's 2-core test machine a
# fully busy host is clearly hotter than an idle one within tens of seconds:
# idle die ≈ 48.8 °C; two busy cores (42 W) → ≈ 76 °C after ~20 s (die τ 4.5 s)
# creeping to 83.3 °C as the heatsink warms (τ 150 s); one busy core (27 W) →
# ≈ 62 °C quickly, 66 °C at steady state. A set point of 60–65 °C therefore lies
# between idle and two busy cores (at steady state 60 °C holds P = 21.7 W, about
# 0.65 busy cores), so a temperature-priced market has something to ration. On the
# server class two busy cores move the package by only ~1–2 K, as on a real
# 64-core socket.
HW_CLASSES: dict[str, PlantParams] = {
    "laptop": PlantParams(
        hw_class="laptop",
        idle_power_w=4.0,
        core_power_w=8.0,
        ambient_c=30.0,
        r_die_sink_k_per_w=1.5,
        c_die_j_per_k=2.0,  # τ_die 3 s
        r_sink_amb_k_per_w=1.5,
        c_sink_j_per_k=80.0,  # τ_sink 120 s
    ),
    "desktop": PlantParams(
        hw_class="desktop",
        idle_power_w=12.0,
        core_power_w=15.0,
        ambient_c=35.0,
        r_die_sink_k_per_w=0.9,
        c_die_j_per_k=5.0,  # τ_die 4.5 s
        r_sink_amb_k_per_w=0.25,
        c_sink_j_per_k=600.0,  # τ_sink 150 s
    ),
    "server": PlantParams(
        hw_class="server",
        idle_power_w=60.0,
        core_power_w=4.0,
        ambient_c=30.0,
        r_die_sink_k_per_w=0.15,
        c_die_j_per_k=30.0,  # τ_die 4.5 s
        r_sink_amb_k_per_w=0.15,
        c_sink_j_per_k=1500.0,  # τ_sink 225 s
    ),
}


def plant_params(hw_class: str) -> PlantParams:
    """The parameters of a hardware class; ValueError naming the valid classes."""
    try:
        return HW_CLASSES[hw_class]
    except KeyError:
        raise ValueError(
            f"unknown hardware class {hw_class!r}: choose one of {', '.join(HW_CLASSES)}"
        ) from None


def _eigen(p: PlantParams) -> tuple[float, float, tuple[float, float, float, float]]:
    """Eigenvalues (λ1 > λ2, both < 0) and the entries (a, b, c, d) of A."""
    a = -1.0 / (p.r_die_sink_k_per_w * p.c_die_j_per_k)
    b = -a
    c = 1.0 / (p.r_die_sink_k_per_w * p.c_sink_j_per_k)
    d = -(1.0 / p.r_die_sink_k_per_w + 1.0 / p.r_sink_amb_k_per_w) / p.c_sink_j_per_k
    m = 0.5 * (a + d)
    # b·c > 0, so the discriminant is positive: two distinct real eigenvalues.
    q = math.sqrt(0.25 * (a - d) ** 2 + b * c)
    return m + q, m - q, (a, b, c, d)


def transition(p: PlantParams, dt_s: Num) -> tuple[Num, Num, Num, Num]:
    """e^{AΔt} as (φ11, φ12, φ21, φ22), exact for any Δt ≥ 0 (scalar or array)."""
    lam1, lam2, (a, b, c, d) = _eigen(p)
    m = 0.5 * (a + d)
    q = 0.5 * (lam1 - lam2)
    e1: Num
    e2: Num
    if isinstance(dt_s, np.ndarray):
        e1, e2 = np.exp(lam1 * dt_s), np.exp(lam2 * dt_s)
    else:
        e1, e2 = math.exp(lam1 * dt_s), math.exp(lam2 * dt_s)
    # e^{AΔt} = e^{mΔt}(cosh(qΔt)·I + sinh(qΔt)/q·(A − mI)), with the hyperbolic
    # functions written as sums of decaying exponentials (no overflow).
    ch = 0.5 * (e1 + e2)
    shq = 0.5 * (e1 - e2) / q
    return ch + shq * (a - m), shq * b, shq * c, ch + shq * (d - m)


def rc_step(p: PlantParams, die_c: Num, sink_c: Num, power_w: Num, dt_s: Num) -> tuple[Num, Num]:
    """Advance (die, heatsink) temperatures by Δt at constant power (exact)."""
    f11, f12, f21, f22 = transition(p, dt_s)
    ss_sink = power_w * p.r_sink_amb_k_per_w
    ss_die = ss_sink + power_w * p.r_die_sink_k_per_w
    x1 = die_c - p.ambient_c - ss_die
    x2 = sink_c - p.ambient_c - ss_sink
    return (
        p.ambient_c + ss_die + f11 * x1 + f12 * x2,
        p.ambient_c + ss_sink + f21 * x1 + f22 * x2,
    )


class ThermalPlant:
    """Stateful scalar plant: starts at the idle steady state unless told otherwise."""

    def __init__(
        self, params: PlantParams, die_c: float | None = None, sink_c: float | None = None
    ) -> None:
        self.params = params
        idle_die, idle_sink = params.steady_state_c(params.idle_power_w)
        self.die_c = idle_die if die_c is None else die_c
        self.sink_c = idle_sink if sink_c is None else sink_c

    def step(self, power_w: float, dt_s: float) -> float:
        """Hold `power_w` for `dt_s` seconds; return the new die temperature."""
        if dt_s > 0:
            die_c, sink_c = rc_step(self.params, self.die_c, self.sink_c, power_w, dt_s)
            self.die_c, self.sink_c = float(die_c), float(sink_c)
        return self.die_c
