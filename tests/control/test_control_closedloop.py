"""Closed-loop simulation and step metrics on traces with known answers."""

from __future__ import annotations

import math

import numpy as np
import pytest

from maxwell.control import PIDGains, PIDLimits
from maxwell.control.closedloop import Trace, simulate, step_metrics
from maxwell.control.plant import FOPDTPlant


def trace(temps: list[float], setpoint: list[float]) -> Trace:
    n = len(temps)
    z = np.zeros(n)
    return Trace(np.arange(1.0, n + 1), np.array(temps), np.array(setpoint), z, z, z)


def test_setpoint_step_metrics_by_hand() -> None:
    # Setpoint 60 → 50 at t = 2; the response undershoots to 49 then settles at 50.
    temps = [60, 60, 55, 49, 50.5, 50.1, 50, 50, 50, 50]
    sps = [60, 60] + [50] * 8
    m = step_metrics(trace(temps, sps), t_step_s=2.0, step_c=-10.0, start_c=60.0)
    assert m.overshoot_pct == pytest.approx(10.0)  # 1 °C past 50, of a 10 °C step
    assert m.settling_s == pytest.approx(4.0)  # last outside ±0.2 °C at t = 5 → in from t = 6
    assert m.iae_c_s == pytest.approx(5 + 1 + 0.5 + 0.1)
    assert m.steady_state_error_c == 0.0


def test_load_step_overshoot_is_the_excursion_past_the_setpoint() -> None:
    temps = [65, 65, 70, 68, 64, 65, 65, 65, 65, 65]
    m = step_metrics(trace(temps, [65.0] * 10), t_step_s=2.0, step_c=20.0, start_c=65.0)
    assert m.overshoot_pct == pytest.approx(5.0)  # 1 °C below, of 20 °C open-loop
    assert m.settling_s == pytest.approx(4.0)


def test_never_settling_is_infinite() -> None:
    temps = [60, 61, 59, 61, 59, 61, 59, 61]
    m = step_metrics(trace(temps, [60.0] * 8), 1.0, 5.0, 60.0)
    assert math.isinf(m.settling_s)


def test_integral_loop_on_a_known_plant_removes_the_error() -> None:
    plant = FOPDTPlant(gain_c_per_core=2.0, tau_s=20.0, theta_s=0.0, base_c=40.0)
    g = PIDGains(kp=0.2, ki=0.05, kd=0.0, d_filter_s=0.0)
    tr = simulate(
        plant, g, PIDLimits(0.0, 20.0), cores=8.0, duration_s=600.0,
        setpoint_c=lambda t: 50.0, demand_cores=lambda t: 8.0,
    )
    assert tr.temp_c[-1] == pytest.approx(50.0, abs=1e-3)
    # 5 cores hold 50 °C: the price settles where demand 8 − price/1 = 5.
    assert tr.load_cores[-1] == pytest.approx(5.0, abs=1e-3)
    assert tr.price[-1] == pytest.approx(3.0, abs=1e-3)
