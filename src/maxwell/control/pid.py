"""The temperature → reserve-price PID controller, pure and vectorized over hosts.

The reserve price of one core-second is r = clamp(P + I + D, r_min, r_max) with the
error e = T − T_set (hot → expensive), so every gain is positive and in credits per
core-second per °C (ki per °C·s, kd per °C/s). Design choices, all standard
(Åström & Murray, *Feedback Systems*, ch. 10; simple-pid):

- Derivative on measurement, through a first-order low-pass of time constant
  ``d_filter_s`` discretized exactly (``α = 1 − exp(−dt/τ_f)``): a setpoint step gives
  no derivative kick and sensor noise is attenuated (variance ratio α²/(2−α) for
  white noise, versus the raw difference quotient).
- The integral is kept in price units (already multiplied by ki), so changing ki does
  not bump the output, and it is integrated conditionally: it does not move while the
  output is clamped and the error pushes further into the clamp (no windup), and it
  never leaves [r_min, r_max] on its own.
- `retune` re-seats the integral when gains or limits change so the output continues
  from where it was (bumpless transfer).
- ``dt_s`` is always passed in; nothing here reads a clock.

This module is pure: numpy arrays in, new arrays out, no I/O.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import NamedTuple

import numpy as np
import numpy.typing as npt

FloatArray = npt.NDArray[np.float64]
BoolArray = npt.NDArray[np.bool_]


@dataclass(frozen=True)
class PIDGains:
    """Gains of the price controller.

    kp: credits per core-second per °C of error; ki: the same per °C·s; kd: the same
    per °C/s of measured temperature rate; d_filter_s: time constant (s) of the
    first-order filter on the derivative (0 = unfiltered). Calibration produces them
    from SIMC's gain in cores per °C times ``price_per_core`` (credits per core-second
    of reserve that shed one busy core; see `maxwell.control.tuning`).
    """

    kp: float
    ki: float
    kd: float
    d_filter_s: float

    def __post_init__(self) -> None:
        for name in ("kp", "ki", "kd", "d_filter_s"):
            value = getattr(self, name)
            if not math.isfinite(value) or value < 0:
                raise ValueError(f"PIDGains.{name} must be a finite number >= 0, got {value!r}")

    def as_dict(self) -> dict[str, float]:
        """JSON/TOML-able form (for run records and profiles)."""
        return {"kp": self.kp, "ki": self.ki, "kd": self.kd, "d_filter_s": self.d_filter_s}


@dataclass(frozen=True)
class PIDLimits:
    """Bounds of the reserve price, credits per core-second (r_min ≤ r_max)."""

    r_min: float
    r_max: float

    def __post_init__(self) -> None:
        if not (math.isfinite(self.r_min) and math.isfinite(self.r_max)):
            raise ValueError(f"PIDLimits must be finite, got {self.r_min!r}, {self.r_max!r}")
        if self.r_min > self.r_max:
            raise ValueError(f"PIDLimits.r_min ({self.r_min}) exceeds r_max ({self.r_max})")


@dataclass(frozen=True)
class PIDState:
    """Controller memory, one entry per host.

    integral: the I term in price units (credits per core-second); last_meas: the
    previous temperature (°C); d_filtered: the filtered temperature rate (°C/s);
    initialized: whether a measurement has been seen (the first step has no rate).
    """

    integral: FloatArray
    last_meas: FloatArray
    d_filtered: FloatArray
    initialized: BoolArray

    @classmethod
    def zeros(cls, n: int = 1, integral: float = 0.0) -> PIDState:
        """A fresh state for n hosts; `integral` seeds the I term (e.g. a starting price)."""
        if n < 1:
            raise ValueError(f"PIDState needs at least one host, got n={n}")
        return cls(
            integral=np.full(n, float(integral), dtype=np.float64),
            last_meas=np.zeros(n, dtype=np.float64),
            d_filtered=np.zeros(n, dtype=np.float64),
            initialized=np.zeros(n, dtype=np.bool_),
        )

    @property
    def n(self) -> int:
        """Number of hosts."""
        return int(self.integral.shape[0])


class PIDOutput(NamedTuple):
    """One step's result per host: the clamped price u and its P, I, D parts (unclamped)."""

    u: FloatArray
    p: FloatArray
    i: FloatArray
    d: FloatArray


def _as_hosts(x: float | npt.ArrayLike, n: int, name: str) -> FloatArray:
    arr = np.asarray(x, dtype=np.float64)
    if arr.ndim == 0:
        return np.full(n, float(arr), dtype=np.float64)
    if arr.shape != (n,):
        raise ValueError(f"{name} has shape {arr.shape}, expected ({n},) or a scalar")
    return arr


def derivative_alpha(d_filter_s: float, dt_s: float) -> float:
    """Smoothing factor of the exactly discretized first-order derivative filter."""
    if d_filter_s <= 0:
        return 1.0
    return 1.0 - math.exp(-dt_s / d_filter_s)


def pid_step(
    gains: PIDGains,
    limits: PIDLimits,
    setpoint_c: float | npt.ArrayLike,
    state: PIDState,
    meas: float | npt.ArrayLike,
    dt_s: float,
) -> tuple[PIDState, PIDOutput]:
    """Advance every host's controller by one interval of `dt_s` seconds.

    `meas` is the temperature (°C) observed at the end of the interval. Returns the
    new state and the price to charge for the next interval (credits per
    core-second), with its P, I and D parts. Non-finite measurements are rejected:
    a missing reading must be handled by the caller (hold the last price).
    """
    if not (dt_s > 0 and math.isfinite(dt_s)):
        raise ValueError(f"dt_s must be a positive finite number of seconds, got {dt_s!r}")
    n = state.n
    y = _as_hosts(meas, n, "meas")
    sp = _as_hosts(setpoint_c, n, "setpoint_c")
    if not np.all(np.isfinite(y)):
        raise ValueError("meas contains a non-finite temperature")

    e = y - sp
    p = gains.kp * e

    # Derivative on measurement: a setpoint change moves e but not dT/dt.
    rate = np.where(state.initialized, (y - state.last_meas) / dt_s, 0.0)
    alpha = derivative_alpha(gains.d_filter_s, dt_s)
    d_filtered = np.where(
        state.initialized, state.d_filtered + alpha * (rate - state.d_filtered), 0.0
    )
    d = gains.kd * d_filtered

    # Conditional integration: take the step only if it does not drive an already
    # clamped output further into its clamp; the I term alone stays within limits.
    candidate = state.integral + gains.ki * e * dt_s
    unclamped = p + candidate + d
    winding_up = (unclamped > limits.r_max) & (e > 0)
    winding_down = (unclamped < limits.r_min) & (e < 0)
    integral = np.where(winding_up | winding_down, state.integral, candidate)
    # Integration never carries the I term out of [r_min, r_max]; a value already
    # outside (re-seated by `retune` for a bumpless transfer) is left where it is.
    integral = np.clip(
        integral,
        np.minimum(limits.r_min, state.integral),
        np.maximum(limits.r_max, state.integral),
    )

    u = np.clip(p + integral + d, limits.r_min, limits.r_max)
    new_state = PIDState(
        integral=integral,
        last_meas=y.copy(),
        d_filtered=d_filtered,
        initialized=np.ones(n, dtype=np.bool_),
    )
    return new_state, PIDOutput(u=u, p=p, i=integral.copy(), d=d)


def last_output(
    gains: PIDGains, limits: PIDLimits, setpoint_c: float | npt.ArrayLike, state: PIDState
) -> FloatArray:
    """The price the state's last step produced (recomputed exactly from the state)."""
    sp = _as_hosts(setpoint_c, state.n, "setpoint_c")
    p = gains.kp * (state.last_meas - sp)
    d = gains.kd * state.d_filtered
    u = np.clip(p + state.integral + d, limits.r_min, limits.r_max)
    # Before the first measurement the only memory is the seeded integral.
    return np.where(state.initialized, u, np.clip(state.integral, limits.r_min, limits.r_max))


def retune(
    state: PIDState,
    setpoint_c: float | npt.ArrayLike,
    old_gains: PIDGains,
    old_limits: PIDLimits,
    new_gains: PIDGains,
    new_limits: PIDLimits,
) -> PIDState:
    """Bumpless transfer: re-seat the integral so the new gains and limits reproduce the
    last price (clamped into the new limits) at the last measurement."""
    u_prev = np.clip(
        last_output(old_gains, old_limits, setpoint_c, state), new_limits.r_min, new_limits.r_max
    )
    sp = _as_hosts(setpoint_c, state.n, "setpoint_c")
    p_new = new_gains.kp * (state.last_meas - sp)
    d_new = new_gains.kd * state.d_filtered
    integral = np.where(state.initialized, u_prev - p_new - d_new, u_prev)
    return PIDState(
        integral=integral.astype(np.float64),
        last_meas=state.last_meas.copy(),
        d_filtered=state.d_filtered.copy(),
        initialized=state.initialized.copy(),
    )


class PID:
    """A stateful scalar controller over `pid_step`, for notebooks and tests.

    `pid(meas, dt_s)` returns the price; `components` holds the last (p, i, d).
    Setting `gains` or `limits` is bumpless.
    """

    def __init__(
        self,
        gains: PIDGains,
        limits: PIDLimits,
        setpoint_c: float,
        *,
        initial_price: float | None = None,
    ) -> None:
        self._gains = gains
        self._limits = limits
        self.setpoint_c = setpoint_c
        start = limits.r_min if initial_price is None else initial_price
        self.state = PIDState.zeros(1, integral=min(max(start, limits.r_min), limits.r_max))
        self.components: tuple[float, float, float] = (0.0, self.state.integral.item(), 0.0)
        self.last_price: float = self.state.integral.item()

    @property
    def gains(self) -> PIDGains:
        return self._gains

    @gains.setter
    def gains(self, new: PIDGains) -> None:
        self.state = retune(
            self.state, self.setpoint_c, self._gains, self._limits, new, self._limits
        )
        self._gains = new

    @property
    def limits(self) -> PIDLimits:
        return self._limits

    @limits.setter
    def limits(self, new: PIDLimits) -> None:
        self.state = retune(
            self.state, self.setpoint_c, self._gains, self._limits, self._gains, new
        )
        self._limits = new

    def __call__(self, meas_c: float, dt_s: float) -> float:
        self.state, out = pid_step(
            self._gains, self._limits, self.setpoint_c, self.state, meas_c, dt_s
        )
        self.components = (out.p.item(), out.i.item(), out.d.item())
        self.last_price = out.u.item()
        return self.last_price
