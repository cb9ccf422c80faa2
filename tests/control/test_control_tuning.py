"""Plant identification and tuning: the fit recovers known plants, SIMC and the
power_allocator reference follow their published formulas."""

from __future__ import annotations

import math

import numpy as np
import pytest

from maxwell.control.calibrate import SimRig, calibrate, step_test
from maxwell.control.plant import HW_CLASSES, FOPDTPlant, RCPlant, class_plant, hw_params
from maxwell.control.tuning import (
    FOPDTFit,
    SimcRule,
    fit_fopdt,
    power_allocator_gains,
    relay_zn_gains,
    simc_gains,
)


@pytest.mark.parametrize("hw_class", sorted(HW_CLASSES))
def test_calibration_on_the_virtual_plant_recovers_gain_and_tau(hw_class: str) -> None:
    """The physics package's virtual plant (or the same RC model): its steady-state
    gain and slow time constant are known in closed form."""
    params = hw_params(hw_class)
    plant, _ = class_plant(hw_class, 0.0)
    rec = step_test(SimRig(plant, float(params.cores)), idle_s=5.0, load_s=600.0, sample_s=0.5)
    fit = fit_fopdt(*rec.arrays())
    tau_slow = RCPlant(params).time_constants_s[1]
    assert fit.gain_c_per_core == pytest.approx(params.gain_c_per_core, rel=0.10)
    assert fit.tau_s == pytest.approx(tau_slow, rel=0.10)
    assert 0.0 < fit.fast_fraction < 1.0


def test_fit_recovers_a_known_fopdt_with_dead_time_and_noise() -> None:
    plant = FOPDTPlant(gain_c_per_core=3.0, tau_s=40.0, theta_s=4.0, base_c=45.0)
    rng = np.random.default_rng(3)
    t, u, y = [0.0], [], [plant.temp_c]
    for i in range(800):
        load = 0.0 if i < 20 else 2.0
        u.append(load)
        y.append(plant.step(load, 0.5) + rng.normal(0.0, 0.05))
        t.append((i + 1) * 0.5)
    u.append(u[-1])
    fit = fit_fopdt(t, u, y)
    assert fit.gain_c_per_core == pytest.approx(3.0, rel=0.05)
    assert fit.tau_s == pytest.approx(40.0, rel=0.10)
    assert fit.theta_s == pytest.approx(4.0, abs=0.75)
    assert fit.rmse_c == pytest.approx(0.05, rel=0.3)


def test_fit_refuses_records_without_a_step() -> None:
    t = np.arange(20.0)
    with pytest.raises(ValueError, match="barely changed"):
        fit_fopdt(t, np.ones(20), 50.0 + np.zeros(20))
    with pytest.raises(ValueError, match="increasing"):
        fit_fopdt(np.zeros(20), np.arange(20.0), np.zeros(20))


def test_simc_is_the_published_rule_for_a_plain_fopdt() -> None:
    fit = FOPDTFit(gain_c_per_core=2.0, tau_s=100.0, theta_s=2.5, offset_c=40.0,
                   rmse_c=0.0, n_samples=100)
    res = simc_gains(fit, SimcRule(tick_s=1.0), price_per_core=3.0)
    theta = 2.5 + 1.5  # fitted dead time + the loop's own 1.5 ticks
    tau_c = theta
    kc = 100.0 / (2.0 * (tau_c + theta))
    tau_i = min(100.0, 4.0 * (tau_c + theta))
    assert res.kc_cores_per_c == pytest.approx(kc)
    assert res.tau_i_s == pytest.approx(tau_i)
    assert res.gains.kp == pytest.approx(3.0 * kc)
    assert res.gains.ki == pytest.approx(3.0 * kc / tau_i)
    assert res.gains.kd == 0.0


def test_simc_uses_the_gentler_design_when_a_fast_mode_exists() -> None:
    slow = FOPDTFit(2.0, 100.0, 0.0, 40.0, 0.0, 100)
    fast = FOPDTFit(2.0, 100.0, 0.0, 40.0, 0.0, 100, fast_fraction=0.5, tau_fast_s=3.0)
    a, b = simc_gains(slow), simc_gains(fast)
    # Fast mode k_f = 1 °C/core, τ_f = 3 s, θ = 1.5 s: K_c = 3/(1·3) = 1, τ_I = 3 s.
    assert b.gains.kp == pytest.approx(min(a.gains.kp, 1.0))
    assert b.gains.ki == pytest.approx(min(a.gains.ki, 1.0 / 3.0))


def test_simc_refuses_a_plant_that_did_not_heat() -> None:
    with pytest.raises(ValueError, match="did not heat"):
        simc_gains(FOPDTFit(-0.1, 10.0, 0.0, 40.0, 0.0, 10))


def test_power_allocator_reference_follows_the_kernel_formula() -> None:
    p = hw_params("desktop")
    g = power_allocator_gains(p, 65.0, switch_on_c=45.0, tick_s=0.5, price_per_core=2.0)
    sp_w = (65.0 - p.t_amb_c) / (p.r_die_sink_k_per_w + p.r_sink_amb_k_per_w)
    k_pu = 2.0 * sp_w / (65.0 - 45.0)  # W per °C
    assert g.kp == pytest.approx(k_pu / p.p_core_w * 2.0)
    assert g.ki == pytest.approx(g.kp / 10.0 / 0.5)
    assert g.kd == 0.0


def test_relay_ziegler_nichols() -> None:
    g = relay_zn_gains(1.0, 2.0, 8.0)
    ku = 4.0 / (math.pi * 2.0)
    assert g.kp == pytest.approx(0.6 * ku)
    assert g.ki == pytest.approx(0.6 * ku / 4.0)
    assert g.kd == pytest.approx(0.6 * ku)


def test_calibrate_on_a_sim_rig_with_relay() -> None:
    plant, _ = class_plant("laptop", 0.0)
    cal = calibrate(SimRig(plant, 4.0), idle_s=5.0, load_s=120.0, sample_s=0.25, relay_s=60.0)
    assert cal.simc.gains.kp > 0 and cal.simc.gains.ki > 0
    assert cal.relay is not None and cal.relay.period_s > 0
    assert cal.relay_gains is not None


def test_a_static_plant_fits_and_tunes_to_integral_action() -> None:
    # Responds within one sample: the best model is τ ≈ 0; SIMC's limit is pure I.
    t = np.arange(60.0)
    u = np.where(t < 10, 0.0, 2.0)
    y = 40.0 + 1.5 * np.concatenate([[0.0], u[:-1]])
    fit = fit_fopdt(t, u, y)
    assert fit.gain_c_per_core == pytest.approx(1.5, rel=0.05)
    res = simc_gains(fit)
    assert math.isfinite(res.gains.ki) and res.gains.ki > 0
    assert res.gains.ki == pytest.approx(1.0 / (1.5 * (res.tau_c_s + res.theta_total_s)), rel=0.1)


def test_fit_with_a_plant_not_at_steady_state_when_the_record_starts() -> None:
    """A warm plant cooling while the step test begins (as on a busy machine)."""
    params = hw_params("desktop")
    plant, _ = class_plant("desktop", 0.0)
    for _ in range(20):  # heat it for 20 s, then record idle → load
        plant.step(2.0, 1.0)
    rec = step_test(SimRig(plant, 2.0), idle_s=30.0, load_s=300.0, sample_s=0.5)
    fit = fit_fopdt(*rec.arrays())
    assert fit.free_start
    assert fit.gain_c_per_core == pytest.approx(params.gain_c_per_core, rel=0.10)
    plain = fit_fopdt(*rec.arrays(), free_start=False)
    assert plain.rmse_c > 2 * fit.rmse_c


def test_a_step_that_does_not_change_busy_cores_is_refused() -> None:
    from maxwell.control.calibrate import Record, check_step

    on = [False, False, True, True]
    rec = Record([0.0, 1.0, 2.0, 3.0], [2.0, 2.0, 1.95, 2.0], [50.0] * 4, on)
    with pytest.raises(ValueError, match="other processes keep the CPU busy"):
        check_step(rec, 2.0)
    rec.busy_cores = [0.1, 0.1, 2.0, 2.0]
    check_step(rec, 2.0)


@pytest.mark.parametrize("hw_class", sorted(HW_CLASSES))
def test_one_virtual_plant(hw_class: str) -> None:
    """control's plant is the physics package's: same figures, same integration."""
    from maxwell.physics.plant import ThermalPlant, plant_params

    params = hw_params(hw_class)
    ours = RCPlant(params, 0.0)
    theirs = ThermalPlant(plant_params(hw_class))
    assert ours.physics_params == plant_params(hw_class)
    assert ours.temp_c == pytest.approx(theirs.die_c, abs=1e-9)
    for load, dt in ((params.cores, 0.5), (params.cores, 30.0), (0.0, 2.0), (1.0, 300.0)):
        power = params.p_idle_w + params.p_core_w * load
        assert ours.step(load, dt) == pytest.approx(theirs.step(power, dt), abs=1e-9)
