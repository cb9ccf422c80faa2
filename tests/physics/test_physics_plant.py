"""The virtual plant: exact integration against scipy's matrix exponential, step response,
cooling, stability for any Δt, and the hardware classes' documented behaviour."""

from __future__ import annotations

import itertools
import math

import numpy as np
import pytest
import scipy.linalg
from hypothesis import given, settings
from hypothesis import strategies as st

from maxwell.physics import HW_CLASSES, PlantParams, ThermalPlant, plant_params, rc_step
from maxwell.physics.plant import transition


def _a_matrix(p: PlantParams) -> np.ndarray:
    rds, rsa, cd, cs = p.r_die_sink_k_per_w, p.r_sink_amb_k_per_w, p.c_die_j_per_k, p.c_sink_j_per_k
    return np.array(
        [[-1 / (rds * cd), 1 / (rds * cd)], [1 / (rds * cs), -(1 / rds + 1 / rsa) / cs]]
    )


def _reference(p: PlantParams, die_c: float, sink_c: float, power_w: float, t_s: float):
    """Exact solution from scipy's expm of the augmented system (input held constant)."""
    a = _a_matrix(p)
    m = np.zeros((4, 4))
    m[:2, :2] = a
    m[0, 2] = 1 / p.c_die_j_per_k  # power → die
    m[1, 3] = 1 / (p.r_sink_amb_k_per_w * p.c_sink_j_per_k)  # ambient → heatsink
    m[0, 3] = 0.0
    x = np.array([die_c, sink_c, power_w, p.ambient_c])
    # the die equation has no ambient term; the heatsink's is (T_amb − T_s)/(R_sa·C_s)
    return scipy.linalg.expm(m * t_s) @ x


@pytest.mark.parametrize("hw_class", sorted(HW_CLASSES))
@pytest.mark.parametrize("dt_s", [1e-3, 0.5, 1.0, 10.0, 300.0, 1e5])
def test_transition_matches_scipy_expm(hw_class: str, dt_s: float) -> None:
    p = plant_params(hw_class)
    expected = scipy.linalg.expm(_a_matrix(p) * dt_s)
    got = np.array(transition(p, dt_s)).reshape(2, 2)
    np.testing.assert_allclose(got, expected, rtol=1e-9, atol=1e-12)


@pytest.mark.parametrize("hw_class", sorted(HW_CLASSES))
def test_step_response_matches_analytic_solution(hw_class: str) -> None:
    p = plant_params(hw_class)
    plant = ThermalPlant(p)
    die0, sink0 = plant.die_c, plant.sink_c
    power_w = p.power_w(2.0)
    for k in range(1, 121):  # 120 one-second ticks at two busy cores
        plant.step(power_w, 1.0)
        if k % 10 == 0:
            ref = _reference(p, die0, sink0, power_w, float(k))
            assert plant.die_c == pytest.approx(ref[0], abs=1e-9)
            assert plant.sink_c == pytest.approx(ref[1], abs=1e-9)


def test_cooling_after_load_stops_returns_to_idle() -> None:
    p = plant_params("desktop")
    plant = ThermalPlant(p)
    idle_die, _ = p.steady_state_c(p.idle_power_w)
    for _ in range(60):
        plant.step(p.power_w(2.0), 1.0)
    hot = plant.die_c
    temps = [plant.step(p.power_w(0.0), 1.0) for _ in range(1200)]
    assert temps[0] < hot
    assert all(b <= a + 1e-12 for a, b in itertools.pairwise(temps))  # monotone
    assert temps[-1] == pytest.approx(idle_die, abs=0.05)
    assert min(temps) >= idle_die - 1e-9  # never undershoots the idle steady state


@pytest.mark.parametrize("dt_s", [10.0, 60.0, 1e4, 1e9])
def test_large_steps_are_stable_and_exact(dt_s: float) -> None:
    p = plant_params("laptop")
    coarse = ThermalPlant(p)
    coarse.step(p.power_w(2.0), dt_s)
    assert math.isfinite(coarse.die_c) and math.isfinite(coarse.sink_c)
    steady_die, steady_sink = p.steady_state_c(p.power_w(2.0))
    assert coarse.die_c <= steady_die + 1e-9
    if dt_s >= 1e4:
        assert coarse.die_c == pytest.approx(steady_die)
        assert coarse.sink_c == pytest.approx(steady_sink)
    if dt_s == 10.0:  # one 10 s step equals 10 000 steps of 1 ms
        fine = ThermalPlant(p)
        for _ in range(10_000):
            fine.step(p.power_w(2.0), 1e-3)
        assert fine.die_c == pytest.approx(coarse.die_c, abs=1e-8)


@settings(max_examples=100, deadline=None)
@given(
    dt1=st.floats(0.0, 1e4),
    dt2=st.floats(0.0, 1e4),
    power_w=st.floats(0.0, 500.0),
    die_c=st.floats(0.0, 120.0),
    sink_c=st.floats(0.0, 120.0),
    hw_class=st.sampled_from(sorted(HW_CLASSES)),
)
def test_steps_compose(dt1, dt2, power_w, die_c, sink_c, hw_class) -> None:
    """Exactness: two steps at constant power equal one step of the summed length."""
    p = plant_params(hw_class)
    a = rc_step(p, *rc_step(p, die_c, sink_c, power_w, dt1), power_w, dt2)
    b = rc_step(p, die_c, sink_c, power_w, dt1 + dt2)
    assert a[0] == pytest.approx(b[0], abs=1e-7)
    assert a[1] == pytest.approx(b[1], abs=1e-7)


def test_vectorized_over_hosts() -> None:
    p = plant_params("server")
    die = np.array([50.0, 60.0, 70.0])
    sink = np.array([40.0, 45.0, 50.0])
    power = np.array([60.0, 100.0, 300.0])
    dt = np.array([1.0, 1.0, 1.0])
    vd, vs = rc_step(p, die, sink, power, dt)
    for i in range(3):
        sd, ss = rc_step(p, float(die[i]), float(sink[i]), float(power[i]), 1.0)
        assert vd[i] == pytest.approx(sd) and vs[i] == pytest.approx(ss)


def test_desktop_class_heats_visibly_within_tens_of_seconds() -> None:
    """The documented design point: on 2 cores, a busy host is far hotter within ~30 s."""
    p = plant_params("desktop")
    fast, slow = p.modes_s()
    assert 2.0 <= fast <= 10.0 and 60.0 <= slow <= 600.0
    plant = ThermalPlant(p)
    idle = plant.die_c
    for _ in range(30):
        plant.step(p.power_w(2.0), 1.0)
    assert plant.die_c - idle > 20.0
    assert idle < 60.0 and plant.die_c > 65.0  # set points of 60–65 °C lie between


def test_unknown_class_names_the_choices() -> None:
    with pytest.raises(ValueError, match="laptop, desktop, server"):
        plant_params("toaster")
