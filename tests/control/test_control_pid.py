"""The price PID: exact P, I, D step responses, anti-windup, the derivative filter,
bumpless retuning, and the vectorized path against the scalar one."""

from __future__ import annotations

import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from maxwell.control import PID, PIDGains, PIDLimits, PIDState, pid_step
from maxwell.control.pid import derivative_alpha, last_output, retune

WIDE = PIDLimits(-1e9, 1e9)


def run(gains: PIDGains, limits: PIDLimits, sp: float, meas: list[float], dt: float):
    state = PIDState.zeros(1)
    outs = []
    for m in meas:
        state, out = pid_step(gains, limits, sp, state, m, dt)
        outs.append(out)
    return state, outs


def test_p_alone_is_kp_times_error_every_step() -> None:
    g = PIDGains(kp=2.5, ki=0.0, kd=0.0, d_filter_s=0.0)
    _, outs = run(g, WIDE, 60.0, [60.0, 63.0, 63.0, 58.0], 1.0)
    assert [o.u.item() for o in outs] == [0.0, 7.5, 7.5, -5.0]
    assert all(o.i.item() == 0.0 and o.d.item() == 0.0 for o in outs)


def test_i_alone_is_a_ramp_of_ki_error_dt() -> None:
    g = PIDGains(kp=0.0, ki=0.2, kd=0.0, d_filter_s=0.0)
    _, outs = run(g, WIDE, 60.0, [62.0] * 5, 0.5)
    # Backward Euler: the n-th step includes its own error: I_n = ki·e·dt·n.
    expected = [0.2 * 2.0 * 0.5 * n for n in range(1, 6)]
    assert [o.u.item() for o in outs] == pytest.approx(expected, rel=1e-12)
    assert [o.i.item() for o in outs] == pytest.approx(expected, rel=1e-12)


def test_d_alone_on_a_ramp_rises_as_the_filter_predicts() -> None:
    tau_f, dt, slope, kd = 2.0, 0.5, 0.8, 3.0
    g = PIDGains(kp=0.0, ki=0.0, kd=kd, d_filter_s=tau_f)
    meas = [50.0 + slope * dt * n for n in range(12)]
    _, outs = run(g, WIDE, 50.0, meas, dt)
    alpha = 1.0 - math.exp(-dt / tau_f)
    # No rate on the first sample; then a first-order rise toward kd·slope.
    expected = [0.0] + [kd * slope * (1.0 - (1.0 - alpha) ** n) for n in range(1, 12)]
    assert [o.d.item() for o in outs] == pytest.approx(expected, rel=1e-12, abs=1e-12)


def test_unfiltered_d_is_the_difference_quotient_and_ignores_setpoint_steps() -> None:
    g = PIDGains(kp=0.0, ki=0.0, kd=2.0, d_filter_s=0.0)
    state = PIDState.zeros(1)
    state, _ = pid_step(g, WIDE, 60.0, state, 61.0, 1.0)
    state, out = pid_step(g, WIDE, 60.0, state, 64.0, 1.0)
    assert out.d.item() == pytest.approx(6.0)
    # Setpoint moves, temperature does not: no derivative kick.
    state, out = pid_step(g, WIDE, 40.0, state, 64.0, 1.0)
    assert out.d.item() == 0.0


def test_output_is_clamped_and_integral_stops_growing_while_clamped() -> None:
    g = PIDGains(kp=1.0, ki=0.5, kd=0.0, d_filter_s=0.0)
    lim = PIDLimits(0.0, 5.0)
    state = PIDState.zeros(1)
    integrals = []
    for _ in range(50):  # far too hot for a long time
        state, out = pid_step(g, lim, 60.0, state, 70.0, 1.0)
        assert out.u.item() == 5.0
        integrals.append(out.i.item())
    # Integral rises only until the output hits the clamp, then freezes.
    assert integrals[-1] == integrals[-30]
    assert integrals[-1] <= lim.r_max
    # Cool down below the setpoint: the output leaves the clamp on the very next step.
    state, out = pid_step(g, lim, 60.0, state, 58.0, 1.0)
    assert out.u.item() < 5.0


def test_windup_free_recovery_has_no_overshoot_spike() -> None:
    """A long saturation followed by the disturbance going away: with conditional
    integration the price comes back down without a long excursion at r_max."""
    g = PIDGains(kp=1.0, ki=0.3, kd=0.0, d_filter_s=0.0)
    lim = PIDLimits(0.0, 4.0)

    def loop(anti_windup: bool) -> list[float]:
        # A static plant: temp = 50 + 5·(demand − price). Demand 10 for 100 s
        # (unreachable setpoint: price saturates), then 2.
        state = PIDState.zeros(1)
        integral_naive = 0.0
        price, temps = 0.0, []
        for t in range(200):
            demand = 10.0 if t < 100 else 2.0
            temp = 50.0 + 5.0 * max(demand - price, 0.0)
            temps.append(temp)
            if anti_windup:
                state, out = pid_step(g, lim, 60.0, state, temp, 1.0)
                price = out.u.item()
            else:
                e = temp - 60.0
                integral_naive += g.ki * e
                price = min(max(g.kp * e + integral_naive, lim.r_min), lim.r_max)
        return temps

    good, naive = loop(True), loop(False)
    # After the disturbance ends both end up below setpoint (demand 2 < what 60 °C
    # allows); the price must come off the clamp at once rather than after the wound
    # integral unwinds, so the time spent below 55 °C (overcorrection) is short.
    assert sum(1 for x in good[100:] if x < 55.0) < sum(1 for x in naive[100:] if x < 55.0)
    assert sum(1 for x in good[100:] if x < 55.0) <= 2


def test_filter_attenuates_noise_by_the_predicted_variance_ratio() -> None:
    # 200 hosts of independent white noise, stepped together (the vectorized path).
    rng = np.random.default_rng(7)
    noise = 60.0 + rng.normal(0.0, 0.5, (300, 200))
    dt, tau_f = 1.0, 3.0

    def d_terms(d_filter_s: float) -> np.ndarray:
        g = PIDGains(0.0, 0.0, 1.0, d_filter_s)
        state = PIDState.zeros(200)
        rows = []
        for row in noise:
            state, out = pid_step(g, WIDE, 60.0, state, row, dt)
            rows.append(out.d)
        return np.array(rows[20:])  # past the filter's start-up

    ratio = float(np.var(d_terms(tau_f)) / np.var(d_terms(0.0)))
    alpha = derivative_alpha(tau_f, dt)
    assert ratio == pytest.approx(alpha**2 / (2.0 - alpha), rel=0.1)
    assert ratio < 0.1


def test_changing_gains_or_limits_is_bumpless() -> None:
    pid = PID(PIDGains(1.0, 0.1, 0.5, 1.0), PIDLimits(0.0, 100.0), 60.0)
    for temp in (61.0, 62.5, 63.0, 63.2):
        price = pid(temp, 1.0)
    pid.gains = PIDGains(4.0, 0.5, 2.0, 1.0)
    assert last_output(pid.gains, pid.limits, 60.0, pid.state).item() == pytest.approx(price)
    # The next step moves only by what the new gains do with the new sample.
    nxt = pid(63.2, 1.0)
    assert abs(nxt - price) < 2.0
    pid.limits = PIDLimits(0.0, 3.0)
    again = last_output(pid.gains, pid.limits, 60.0, pid.state).item()
    assert again == pytest.approx(min(nxt, 3.0))


def test_retune_before_any_measurement_keeps_the_seed_price() -> None:
    state = PIDState.zeros(2, integral=2.0)
    g = PIDGains(1.0, 0.1, 0.0, 0.0)
    new = retune(state, 60.0, g, PIDLimits(0, 10), g, PIDLimits(0, 1.5))
    assert new.integral.tolist() == [1.5, 1.5]


def test_bad_inputs_are_refused() -> None:
    with pytest.raises(ValueError, match="kp"):
        PIDGains(-1.0, 0.0, 0.0, 0.0)
    with pytest.raises(ValueError, match="r_min"):
        PIDLimits(2.0, 1.0)
    with pytest.raises(ValueError, match="dt_s"):
        pid_step(PIDGains(1, 0, 0, 0), WIDE, 60.0, PIDState.zeros(1), 60.0, 0.0)
    with pytest.raises(ValueError, match="non-finite"):
        pid_step(PIDGains(1, 0, 0, 0), WIDE, 60.0, PIDState.zeros(1), math.nan, 1.0)
    with pytest.raises(ValueError, match="shape"):
        pid_step(PIDGains(1, 0, 0, 0), WIDE, 60.0, PIDState.zeros(3), [1.0, 2.0], 1.0)


gain = st.floats(0.0, 10.0)


@settings(max_examples=60, deadline=None)
@given(
    kp=gain,
    ki=gain,
    kd=gain,
    tau_f=st.floats(0.0, 5.0),
    dt=st.floats(0.05, 5.0),
    temps=st.lists(
        st.lists(st.floats(20.0, 100.0), min_size=3, max_size=3), min_size=1, max_size=25
    ),
    setpoints=st.lists(st.floats(40.0, 80.0), min_size=3, max_size=3),
)
def test_vectorized_equals_scalar(
    kp: float,
    ki: float,
    kd: float,
    tau_f: float,
    dt: float,
    temps: list[list[float]],
    setpoints: list[float],
) -> None:
    g = PIDGains(kp, ki, kd, tau_f)
    lim = PIDLimits(0.0, 20.0)
    vec = PIDState.zeros(3)
    scalars = [PID(g, lim, sp) for sp in setpoints]
    for row in temps:
        vec, out = pid_step(g, lim, np.array(setpoints), vec, np.array(row), dt)
        assert np.all((out.u >= lim.r_min) & (out.u <= lim.r_max))
        for h, pid in enumerate(scalars):
            assert pid(row[h], dt) == out.u[h]
            assert pid.components == (out.p[h], out.i[h], out.d[h])
