"""Plant identification and tuning: FOPDT least-squares fit, SIMC and reference gains.

The plant identified is *busy cores → die temperature*, fitted as first order plus
dead time, T(t) = c + k·[1/(τs+1)]·u(t−θ), by least squares over the whole record
(the measured input, not an idealised step, because other processes share the
CPU). For each (τ, θ) on a grid the model is linear in (c, k), so those are solved
exactly; the grid is refined twice around the best point.

Gains follow SIMC (Skogestad, J. Process Control 13, 2003): K_c = τ/(k(τ_c+θ)),
τ_I = min(τ, 4(τ_c+θ)), PI only (k_d = 0). Here θ is the fitted dead time plus the
loop's own delay: the price set at a tick acts over the *next* interval and is held
for it (one tick plus half a tick of zero-order hold). τ_c = max(θ, floor) with the
floor stated in `SimcRule`.

SIMC gives K_c in cores per °C. The price loop needs credits per core-second per °C,
so every gain is multiplied by ``price_per_core`` — credits per core-second of
reserve price that shed one busy core of load (default 1.0: raising the reserve by
one credit per core-second idles one core). It is a property of the agents'
demand, not of the plant; the benchmark models demand with the same figure.

Pure numpy; no I/O.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import NamedTuple

import numpy as np
import numpy.typing as npt

from maxwell.control.pid import PIDGains
from maxwell.control.plant import RCParams

DEFAULT_PRICE_PER_CORE = 1.0  # credits per core-second of reserve per core of load shed
DEFAULT_TICK_S = 1.0

FloatArray = npt.NDArray[np.float64]


@dataclass(frozen=True)
class FOPDTFit:
    """A fitted k·e^(−θs)/(τs+1) model: °C per core, seconds, seconds, °C offset."""

    gain_c_per_core: float
    tau_s: float
    theta_s: float
    offset_c: float
    rmse_c: float
    n_samples: int
    fast_fraction: float = 0.0
    tau_fast_s: float = 0.0
    free_start: bool = False  # the record did not start at steady state

    @property
    def fast_gain_c_per_core(self) -> float:
        """The part of the gain that appears within one sample (°C per core)."""
        return self.gain_c_per_core * self.fast_fraction

    def as_dict(self) -> dict[str, float | int]:
        return {
            "gain_c_per_core": self.gain_c_per_core,
            "tau_s": self.tau_s,
            "theta_s": self.theta_s,
            "offset_c": self.offset_c,
            "rmse_c": self.rmse_c,
            "n_samples": self.n_samples,
            "fast_fraction": self.fast_fraction,
            "tau_fast_s": self.tau_fast_s,
            "free_start": float(self.free_start),
        }


def _delayed_inputs(t_s: FloatArray, u: FloatArray, thetas: FloatArray) -> FloatArray:
    """u(t_n − θ) under zero-order hold, for each θ (rows); before the record: u[0]."""
    out = np.empty((thetas.size, t_s.size))
    for i, theta in enumerate(thetas):
        idx = np.searchsorted(t_s, t_s - theta, side="right") - 1
        out[i] = u[np.clip(idx, 0, None)]
    return out


def _filtered(t_s: FloatArray, u_del: FloatArray, taus: FloatArray) -> FloatArray:
    """First-order responses (unit gain, zero initial state) of each delayed input row to
    each τ, under zero-order hold: shape (θ, τ, n). τ = 0 passes the input through."""
    dt = np.diff(t_s)
    safe = np.where(taus > 0, taus, 1.0)
    a = np.where(taus[None, :] > 0, np.exp(-dt[:, None] / safe[None, :]), 0.0)  # (n-1, τ)
    x = np.zeros((u_del.shape[0], taus.size, t_s.size))
    for n in range(t_s.size - 1):
        x[:, :, n + 1] = a[n] * x[:, :, n] + (1.0 - a[n]) * u_del[:, n, None]
    direct = taus == 0
    if np.any(direct):
        # The held input itself (the response completes within the sample).
        x[:, direct, :] = u_del[:, None, :]
    return x


class _GridFit(NamedTuple):
    sse: float
    k_slow: float
    k_fast: float
    offset: float
    tau_slow: float
    tau_fast: float  # NaN: single mode
    theta: float


def _solve_subsets(
    gram: FloatArray, rhs: FloatArray, syy: float, idx: npt.NDArray[np.intp]
) -> tuple[FloatArray, FloatArray]:
    """Least squares on column subsets: `idx` (P, q) picks q regressors per candidate.

    Returns (coef (θ, P, q), sse (θ, P)) from the Gram matrix (θ, r, r) and the
    right-hand side (θ, r); a tiny ridge keeps all-zero columns harmless.
    """
    g = gram[:, idx[:, :, None], idx[:, None, :]]  # (θ, P, q, q)
    b = rhs[:, idx]  # (θ, P, q)
    diag = np.einsum("apqq->apq", g)
    ridge = 1e-10 * np.maximum(diag.max(axis=-1, keepdims=True), 1.0)
    g = g + np.eye(idx.shape[1]) * ridge[..., None]
    coef = np.linalg.solve(g, b[..., None])[..., 0]
    sse = syy - np.einsum("apq,apq->ap", coef, b)
    return coef, sse


def _fit_grid(
    t_s: FloatArray,
    u: FloatArray,
    y: FloatArray,
    taus: FloatArray,
    thetas: FloatArray,
    two_modes: bool,
    free_start: bool,
) -> _GridFit:
    """Best fit over a grid of
    y = c + Σ_modes [k_m·F_τm(u(t−θ)) + s_m·e^(−t/τm)],
    one mode or two (τ_a > τ_b). With `free_start` the decay terms absorb a plant
    that was not at steady state when the record began (other load on the machine,
    a warm die); without, s_m = 0.

    Every (θ, τ_a[, τ_b]) combination is scored at once from one Gram matrix per θ;
    negative gains k_m are not physical and such points are not eligible.
    """
    u_del = _delayed_inputs(t_s, u - u[0], thetas)  # deviation from the initial input
    x = _filtered(t_s, u_del, taus)  # (θ, τ, n)
    t0 = t_s - t_s[0]
    safe = np.where(taus > 0, taus, 1.0)
    decay = np.where(taus[:, None] > 0, np.exp(-t0[None, :] / safe[:, None]), 0.0)  # (τ, n)
    n_th, m, n = x.shape
    if not free_start:
        decay = np.zeros_like(decay)  # the ridge then pins those coefficients at 0
    # Regressor columns: 0 = constant, 1..m = responses, m+1..2m = decays; each scaled
    # to unit norm (and y centred) so the normal equations stay well conditioned.
    cols = np.empty((n_th, 1 + 2 * m, n))
    cols[:, 0] = 1.0
    cols[:, 1 : m + 1] = x
    cols[:, m + 1 :] = decay[None]
    norms = np.sqrt(np.einsum("arn,arn->ar", cols, cols))
    norms = np.where(norms > 0, norms, 1.0)
    cols /= norms[..., None]
    y_mean = float(y.mean())
    yc = y - y_mean
    gram = np.einsum("arn,asn->ars", cols, cols)
    rhs = cols @ yc
    syy = float(yc @ yc)

    one = np.arange(m)
    idx1 = np.stack([np.zeros(m, dtype=np.intp), 1 + one, 1 + m + one], axis=1)
    coef1, sse1 = _solve_subsets(gram, rhs, syy, idx1)
    coef1 = coef1 / norms[:, idx1]  # back to physical units
    sse1 = np.where(np.isfinite(sse1) & (coef1[..., 1] >= 0), sse1, np.inf)
    i, j = np.unravel_index(int(np.argmin(sse1)), sse1.shape)
    best = _GridFit(
        float(sse1[i, j]), float(coef1[i, j, 1]), 0.0, float(coef1[i, j, 0]) + y_mean,
        float(taus[j]), math.nan, float(thetas[i]),
    )
    if not two_modes:
        return best
    a_idx, b_idx = np.nonzero(taus[:, None] > taus[None, :])  # τ_a > τ_b
    if a_idx.size == 0:
        return best
    idx2 = np.stack(
        [np.zeros_like(a_idx), 1 + a_idx, 1 + b_idx, 1 + m + a_idx, 1 + m + b_idx], axis=1
    ).astype(np.intp)
    coef2, sse2 = _solve_subsets(gram, rhs, syy, idx2)
    coef2 = coef2 / norms[:, idx2]
    ok = np.isfinite(sse2) & (coef2[..., 1] >= 0) & (coef2[..., 2] >= 0)
    sse2 = np.where(ok, sse2, np.inf)
    i, p = np.unravel_index(int(np.argmin(sse2)), sse2.shape)
    if float(sse2[i, p]) < best.sse:
        best = _GridFit(
            float(sse2[i, p]), float(coef2[i, p, 1]), float(coef2[i, p, 2]),
            float(coef2[i, p, 0]) + y_mean, float(taus[a_idx[p]]), float(taus[b_idx[p]]),
            float(thetas[i]),
        )
    return best


MAX_FIT_SAMPLES = 1200
FREE_START_SSE_RATIO = 0.5


def _decimate(
    t: FloatArray, u: FloatArray, y: FloatArray
) -> tuple[FloatArray, FloatArray, FloatArray]:
    """Average consecutive samples down to at most MAX_FIT_SAMPLES (keeps the fit cheap)."""
    m = -(-t.size // MAX_FIT_SAMPLES)
    if m <= 1:
        return t, u, y
    n = t.size // m * m
    return (
        t[:n].reshape(-1, m).mean(axis=1),
        u[:n].reshape(-1, m).mean(axis=1),
        y[:n].reshape(-1, m).mean(axis=1),
    )


def fit_fopdt(
    t_s: npt.ArrayLike,
    u_cores: npt.ArrayLike,
    temp_c: npt.ArrayLike,
    *,
    fast_part: bool = True,
    free_start: bool | None = None,
) -> FOPDTFit:
    """Fit k (°C per core), τ (s) and θ (s) to a record of busy cores and temperature.

    ``u_cores[n]`` is the load held from ``t_s[n]`` to ``t_s[n+1]`` and ``temp_c[n]``
    the temperature at ``t_s[n]``. The record must contain a clear change of input
    (a step test); samples need not be evenly spaced.

    ``free_start``: whether the plant may start away from steady state (each mode
    gets a free initial deviation decaying as e^(−t/τ)). None (default) fits both
    ways and keeps the free start only if it at least halves the squared error.

    With ``fast_part`` (the default) the model has a second, faster mode sharing the
    dead time — the die over the heatsink:
    T = c + k_slow·u(t−θ)/(τs+1) + k_fast·u(t−θ)/(τ_f s+1), τ_f ≥ 0 (0: faster than
    the sampling); k = k_slow + k_fast is reported with `fast_fraction` = k_fast/k and
    `tau_fast_s`. Without it (or when the fast mode does not help) it is the plain
    FOPDT. Fitted on grids over (θ, τ, τ_f), the linear parameters exact at each point.
    """
    t = np.asarray(t_s, dtype=np.float64)
    u = np.asarray(u_cores, dtype=np.float64)
    y = np.asarray(temp_c, dtype=np.float64)
    if not (t.shape == u.shape == y.shape) or t.ndim != 1:
        raise ValueError("t_s, u_cores and temp_c must be 1-D arrays of equal length")
    if t.size < 8:
        raise ValueError(f"need at least 8 samples to fit a plant, got {t.size}")
    if np.any(np.diff(t) <= 0):
        raise ValueError("sample times must be strictly increasing")
    if not (np.all(np.isfinite(u)) and np.all(np.isfinite(y))):
        raise ValueError("the record contains non-finite samples")
    if float(np.ptp(u)) < 0.05:
        raise ValueError("the input barely changed (busy cores range < 0.05): nothing to identify")
    t, u, y = _decimate(t - t[0], u, y)
    best = _search(t, u, y, fast_part, free_start=bool(free_start))
    started_free = bool(free_start)
    if free_start is None:
        # Free initial state only when it explains the record much better (it can
        # also mimic part of a slow step response, so it must earn its place).
        free = _search(t, u, y, fast_part, free_start=True)
        if free.sse < FREE_START_SSE_RATIO * best.sse:
            best, started_free = free, True
    two = not math.isnan(best.tau_fast)
    k_slow, k_fast = best.k_slow, best.k_fast if two else 0.0
    k = k_slow + k_fast
    return FOPDTFit(
        gain_c_per_core=k,
        tau_s=best.tau_slow,
        theta_s=best.theta,
        offset_c=best.offset,
        rmse_c=math.sqrt(max(best.sse, 0.0) / t.size),
        n_samples=int(t.size),
        fast_fraction=k_fast / k if k > 0 else 0.0,
        tau_fast_s=best.tau_fast if two else 0.0,
        free_start=started_free,
    )


def _search(
    t: FloatArray, u: FloatArray, y: FloatArray, fast_part: bool, free_start: bool
) -> _GridFit:
    """Coarse grid over (θ, τ[, τ_f]), then three finer grids around the best point."""
    span = float(t[-1])
    dt_min = float(np.min(np.diff(t)))
    taus = np.concatenate([[0.0], np.geomspace(dt_min / 4, span * 10, 48)])
    thetas = np.linspace(0.0, span / 4, 21)
    best = _fit_grid(t, u, y, taus, thetas, fast_part, free_start)
    d_theta = float(thetas[1] - thetas[0])
    ratio = 1.5
    for _ in range(3):
        centres = [c for c in (best.tau_slow, best.tau_fast) if c > 0]  # NaN, 0: none
        local = [np.geomspace(max(c / ratio, dt_min / 8), c * ratio, 11) for c in centres]
        taus = np.unique(np.concatenate([[0.0], *local]))
        thetas = np.linspace(max(best.theta - 2 * d_theta, 0.0), best.theta + 2 * d_theta, 9)
        d_theta = float(thetas[1] - thetas[0])
        ratio = ratio**0.5
        candidate = _fit_grid(t, u, y, taus, thetas, fast_part, free_start)
        if candidate.sse <= best.sse:
            best = candidate
    return best


@dataclass(frozen=True)
class SimcRule:
    """How SIMC is applied.

    tick_s: controller interval; the loop adds 1.5·tick_s of delay (decision acts on
    the next interval, held for it). tau_c_floor_s: smallest closed-loop time
    constant allowed, as a multiple of the plant τ (``tau_c_floor_frac``) or of the
    tick, whichever is larger; it keeps the loop from being tuned tighter than a
    sampled controller and an imperfect first-order model can support.
    """

    tick_s: float = DEFAULT_TICK_S
    tau_c_floor_frac: float = 0.0
    tau_c_floor_ticks: float = 1.0
    d_filter_s: float = 0.0


@dataclass(frozen=True)
class SimcResult:
    """SIMC tuning in the plant's units plus the price gains derived from it."""

    kc_cores_per_c: float
    tau_i_s: float
    tau_c_s: float
    theta_total_s: float
    price_per_core: float
    gains: PIDGains

    def as_dict(self) -> dict[str, float]:
        return {
            "kc_cores_per_c": self.kc_cores_per_c,
            "tau_i_s": self.tau_i_s,
            "tau_c_s": self.tau_c_s,
            "theta_total_s": self.theta_total_s,
            "price_per_core": self.price_per_core,
        }


def simc_gains(
    fit: FOPDTFit,
    rule: SimcRule | None = None,
    price_per_core: float = DEFAULT_PRICE_PER_CORE,
) -> SimcResult:
    """SIMC PI gains for a fitted plant, converted to price gains."""
    rule = rule or SimcRule()
    k = fit.gain_c_per_core
    if not (k > 0 and math.isfinite(k)):
        raise ValueError(
            f"fitted plant gain {k!r} °C per core is not positive: the step test did not heat"
            " the die (is the load reaching the CPU?)"
        )
    if price_per_core <= 0:
        raise ValueError(f"price_per_core must be > 0, got {price_per_core}")
    theta = fit.theta_s + 1.5 * rule.tick_s
    tau_c = max(theta, rule.tau_c_floor_frac * fit.tau_s, rule.tau_c_floor_ticks * rule.tick_s)
    kc = fit.tau_s / (k * (tau_c + theta))
    tau_i = min(fit.tau_s, 4.0 * (tau_c + theta))
    # τ → 0 (a static plant): SIMC's limit is pure integral action 1/(k(τ_c+θ)).
    ki = kc / tau_i if tau_i > 0 else 1.0 / (k * (tau_c + theta))
    k_fast = fit.fast_gain_c_per_core
    if k_fast > 0:
        # The fast mode reaches the die within a few ticks, so near the loop's
        # crossover the plant looks like k_fast·e^(−θs)/(τ_f s+1). SIMC on that mode
        # too, and keep the gentler P and I of the two designs. For τ_f → 0 it is
        # pure integral action, k_i = 1/(k_fast(τ_c+θ)).
        kc_fast = fit.tau_fast_s / (k_fast * (tau_c + theta))
        ki_fast = 1.0 / (k_fast * (tau_c + theta))
        if fit.tau_fast_s > 0:
            ki_fast = kc_fast / min(fit.tau_fast_s, 4.0 * (tau_c + theta))
        kc = min(kc, kc_fast)
        ki = min(ki, ki_fast)
        tau_i = kc / ki if ki > 0 else math.inf
    kp = kc * price_per_core
    gains = PIDGains(kp=kp, ki=ki * price_per_core, kd=0.0, d_filter_s=rule.d_filter_s)
    return SimcResult(
        kc_cores_per_c=kc,
        tau_i_s=tau_i,
        tau_c_s=tau_c,
        theta_total_s=theta,
        price_per_core=price_per_core,
        gains=gains,
    )


def power_allocator_gains(
    params: RCParams,
    setpoint_c: float,
    switch_on_c: float | None = None,
    tick_s: float = DEFAULT_TICK_S,
    price_per_core: float = DEFAULT_PRICE_PER_CORE,
) -> PIDGains:
    """Linux power_allocator's default gains, translated to the price loop.

    Documentation/driver-api/thermal/power_allocator.rst: k_pu = 2·SP/(T_set − T_on),
    k_i = k_pu/10 per polling period, k_d = 0, with SP the sustainable power. Watts
    become cores through P_core, cores become price through ``price_per_core``; the
    per-period k_i becomes per-second by dividing by the tick. T_on defaults to
    T_set − 20 °C (a typical first passive trip below the control trip).
    """
    t_on = setpoint_c - 20.0 if switch_on_c is None else switch_on_c
    if setpoint_c <= t_on:
        raise ValueError("switch-on temperature must be below the setpoint")
    sp_w = params.sustainable_power_w(setpoint_c)
    k_pu_w_per_c = 2.0 * sp_w / (setpoint_c - t_on)
    kp = k_pu_w_per_c / params.p_core_w * price_per_core
    return PIDGains(kp=kp, ki=kp / 10.0 / tick_s, kd=0.0, d_filter_s=0.0)


def relay_zn_gains(
    relay_amplitude_cores: float,
    osc_amplitude_c: float,
    period_s: float,
    price_per_core: float = DEFAULT_PRICE_PER_CORE,
) -> PIDGains:
    """Åström–Hägglund relay estimate, K_u = 4d/(πa), and Ziegler–Nichols PID from it
    (K_p = 0.6K_u, T_i = T_u/2, T_d = T_u/8), in price units."""
    if osc_amplitude_c <= 0 or period_s <= 0:
        raise ValueError("relay test produced no oscillation to measure")
    ku = 4.0 * relay_amplitude_cores / (math.pi * osc_amplitude_c)
    kp = 0.6 * ku * price_per_core
    return PIDGains(
        kp=kp, ki=kp / (period_s / 2.0), kd=kp * period_s / 8.0, d_filter_s=period_s / 80.0
    )
