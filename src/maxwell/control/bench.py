"""`maxwell bench control`: the calibrated price loop against power_allocator's gains.

For each hardware class: calibrate its model plant in simulated time
(`defaults.class_tuning`: step test, fit, SIMC), then run the closed loop
(`closedloop.simulate`) from steady state at the setpoint with the agents wanting
every core, through two scenarios:

- load step: at t = 100 s load from outside the market arrives (foreign, a quarter of
  the cores the market ran at steady state), which only less capacity can offset;
- setpoint step: at t = 100 s the setpoint drops by 5 °C;

and report overshoot, settling time (2 % band), IAE and steady-state error
(`closedloop.step_metrics`) for the calibrated gains and for Linux power_allocator's
default gains (`tuning.power_allocator_gains`) as the reference to beat. The plant
is the physics package's virtual plant when importable (`plant.class_plant`).
Simulated time only; no I/O.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any

from maxwell.control.closedloop import Trace, simulate, step_metrics
from maxwell.control.defaults import class_tuning, default_limits
from maxwell.control.pid import PIDGains
from maxwell.control.plant import HW_CLASSES, RCPlant, class_plant, hw_params
from maxwell.control.tuning import DEFAULT_PRICE_PER_CORE, DEFAULT_TICK_S, power_allocator_gains

STEP_AT_S = 100.0
RUN_S = 1500.0
SETPOINT_C = 65.0
SETPOINT_STEP_C = -5.0
LOAD_STEP_FRACTION = 0.25
OVERSHOOT_LIMIT_PCT = 10.0
SSE_LIMIT_C = 0.01  # "zero" steady-state error, with float noise


def _scenarios(
    hw_class: str, gains: PIDGains, tick_s: float, price_per_core: float
) -> dict[str, dict[str, float]]:
    params = hw_params(hw_class)
    cores = float(params.cores)
    limits = default_limits(cores, price_per_core)
    load0 = params.load_for_temp(SETPOINT_C)
    demand0 = cores
    price0 = limits.r_min + (demand0 - load0) * price_per_core
    out: dict[str, dict[str, float]] = {}

    def run(setpoint_c: Callable[[float], float], demand_cores: Callable[[float], float],
            foreign: Callable[[float], float] | None = None) -> Trace:
        plant, _ = class_plant(hw_class, load0)  # every scenario starts from the steady state
        return simulate(
            plant,
            gains,
            limits,
            cores=cores,
            duration_s=RUN_S,
            setpoint_c=setpoint_c,
            demand_cores=demand_cores,
            tick_s=tick_s,
            price_per_core=price_per_core,
            initial_price=price0,
            foreign_cores=foreign,
        )

    extra = LOAD_STEP_FRACTION * load0
    trace = run(lambda t: SETPOINT_C, lambda t: demand0,
                lambda t: extra if t >= STEP_AT_S else 0.0)
    open_loop_c = extra * params.gain_c_per_core
    out["load_step"] = step_metrics(trace, STEP_AT_S, open_loop_c, SETPOINT_C).as_dict()
    out["load_step"]["peak_c"] = float(trace.temp_c.max())

    trace = run(lambda t: SETPOINT_C + (SETPOINT_STEP_C if t >= STEP_AT_S else 0.0),
                lambda t: demand0)
    out["setpoint_step"] = step_metrics(trace, STEP_AT_S, SETPOINT_STEP_C, SETPOINT_C).as_dict()
    return out


def run_bench(
    classes: tuple[str, ...] = tuple(HW_CLASSES),
    tick_s: float = DEFAULT_TICK_S,
    price_per_core: float = DEFAULT_PRICE_PER_CORE,
) -> dict[str, Any]:
    """The benchmark as one JSON-able dict (see the module docstring)."""
    result: dict[str, Any] = {
        "setpoint_c": SETPOINT_C,
        "tick_s": tick_s,
        "price_per_core": price_per_core,
        "step_at_s": STEP_AT_S,
        "run_s": RUN_S,
        "scenarios": {
            "load_step": f"foreign load +{LOAD_STEP_FRACTION:.0%} of the steady market load"
            " (the actuator is the capacity for sale, gains in credits per core-second per"
            " °C = cores per °C x price_per_core); overshoot and band relative to the"
            " open-loop temperature change",
            "setpoint_step": f"setpoint {SETPOINT_STEP_C:+.0f} °C",
        },
        "criteria": {
            "overshoot_pct_max": OVERSHOOT_LIMIT_PCT,
            "steady_state_error_c_max": SSE_LIMIT_C,
            "settling": "no worse than the power_allocator reference",
        },
        "classes": {},
    }
    all_ok = True
    for hw_class in classes:
        params = hw_params(hw_class)
        fit, tuning = class_tuning(hw_class, tick_s, price_per_core)
        _, plant_source = class_plant(hw_class)
        ref = power_allocator_gains(
            params, SETPOINT_C, tick_s=tick_s, price_per_core=price_per_core
        )
        calibrated = _scenarios(hw_class, tuning.gains, tick_s, price_per_core)
        reference = _scenarios(hw_class, ref, tick_s, price_per_core)
        checks: dict[str, bool] = {}
        for name, m in calibrated.items():
            r = reference[name]
            checks[f"{name}.overshoot"] = m["overshoot_pct"] <= OVERSHOOT_LIMIT_PCT
            checks[f"{name}.steady_state_error"] = abs(m["steady_state_error_c"]) <= SSE_LIMIT_C
            checks[f"{name}.settling_vs_reference"] = m["settling_s"] <= r["settling_s"]
        ok = all(checks.values())
        all_ok = all_ok and ok
        result["classes"][hw_class] = {
            "plant": plant_source,
            "plant_params": params.as_dict(),
            "fit": fit.as_dict(),
            "fit_error": {
                "gain_pct": 100.0 * (fit.gain_c_per_core / params.gain_c_per_core - 1.0),
                "tau_pct": 100.0 * (fit.tau_s / RCPlant(params).time_constants_s[1] - 1.0),
            },
            "simc": tuning.as_dict(),
            "gains": tuning.gains.as_dict(),
            "reference_gains": ref.as_dict(),
            "calibrated": calibrated,
            "reference": reference,
            "checks": checks,
            "ok": ok,
        }
    result["ok"] = all_ok
    return result


def _fmt_s(x: float) -> str:
    return "never" if math.isinf(x) else f"{x:.0f}"


def format_bench(result: dict[str, Any]) -> str:
    """Human-readable table of `run_bench`'s result."""
    lines = [
        f"closed loop on the model plant, tick {result['tick_s']} s, setpoint"
        f" {result['setpoint_c']} °C, price_per_core {result['price_per_core']}",
        f"{'class':8} {'scenario':14} {'gains':11} {'overshoot%':>10} {'settle s':>9}"
        f" {'IAE °C·s':>9} {'ss err °C':>10}",
    ]
    for hw_class, c in result["classes"].items():
        for scen in ("load_step", "setpoint_step"):
            for label, key in (("calibrated", "calibrated"), ("reference", "reference")):
                m = c[key][scen]
                lines.append(
                    f"{hw_class:8} {scen:14} {label:11} {m['overshoot_pct']:10.2f}"
                    f" {_fmt_s(m['settling_s']):>9} {m['iae_c_s']:9.1f}"
                    f" {m['steady_state_error_c']:10.4f}"
                )
        g = c["gains"]
        lines.append(
            f"{hw_class:8} gains kp={g['kp']:.4g} ki={g['ki']:.4g} kd={g['kd']:.4g}"
            f"  fit k={c['fit']['gain_c_per_core']:.3g} °C/core τ={c['fit']['tau_s']:.1f} s"
            f" θ={c['fit']['theta_s']:.2f} s fast={c['fit']['fast_fraction']:.2f}"
            f" ({c['plant']})  {'ok' if c['ok'] else 'FAILS'}"
        )
    lines.append("all criteria met" if result["ok"] else "some criteria NOT met")
    return "\n".join(lines)
