"""The thermal loop holds its setpoint: the economy's capacity for sale against the
virtual plant, with modelled agents, in simulated time (no processes, no clock).

The modelled cast is the built-in demo's: a parasite that bids 4 for two slots and
frees 16 MiB/s, and a useful agent that opens at its initial bid (1.5) and, once it has
run, bids 0.8 of a value of 50 credits per core-second. Physics is the desktop
class's model plant (modelled, not measured), driven by the cores the economy sold.
"""

from __future__ import annotations

import numpy as np

from maxwell import defaults as D
from maxwell.economy import (
    EconomyParams,
    Observation,
    capacity_for_sale,
    initial_state,
    sale_weights,
    step,
)
from maxwell.physics.plant import ThermalPlant, plant_params


def _demo_model(duration_s: int = 90) -> dict[str, np.ndarray]:
    p = EconomyParams(agents=("useful", "parasite"), initial_funds=(30.0, 30.0), slots=2)
    plant_p = plant_params(D.HW_CLASS)
    plant = ThermalPlant(plant_p)
    state, _ = initial_state(p)
    rng = np.random.default_rng(1)
    cores = np.zeros(2)
    alive = np.ones(2, dtype=bool)
    has_run = False
    out: dict[str, list[float]] = {"temp": [], "price": [], "capacity": [], "useful": [],
                                   "parasite": [], "dead": []}
    for t in range(1, duration_s + 1):
        busy = float(cores.sum()) + 0.03  # the supervisor's own CPU
        temp = plant.step(plant_p.power_w(busy), 1.0)
        has_run = has_run or cores[0] > 0
        o = Observation(
            t_s=float(t), dt_s=1.0, temp_c=temp, power_w=0.0, energy_j=0.0, alive=alive,
            cpu_s=cores.copy(),
            bytes_freed=np.array([0, int((16 << 20) * cores[1] / 2)], dtype=np.int64),
            work_units=np.array([int(cores[0] * 1e7), 0], dtype=np.int64),
            frauds=np.zeros(2, dtype=np.int64),
            bid_price=np.array([40.0 if has_run else 1.5, 4.0]),
            bid_slots=np.array([2, 2], dtype=np.int64),
        )
        state, d = step(state, o, p, rng)
        alive = alive & ~d.kill
        cores = np.where(d.run, d.cores, 0.0)
        for k, v in (("temp", temp), ("price", d.price), ("capacity", d.capacity),
                     ("useful", cores[0]), ("parasite", cores[1]),
                     ("dead", float(state.bankrupt[1]))):
            out[k].append(v)
    return {k: np.asarray(v) for k, v in out.items()}


def test_setpoint_held_with_the_price_off_its_limits_after_the_parasite_dies() -> None:
    m = _demo_model()
    p = EconomyParams(agents=("a",), initial_funds=(1.0,), slots=2)
    assert m["dead"][-1] == 1.0
    death = int(np.argmax(m["dead"]))
    last = slice(60, 90)
    assert death < 60
    assert np.median(np.abs(m["temp"][last] - D.SETPOINT_C)) <= 1.0
    lim = p.control_limits
    at_limit = np.isclose(m["price"][last], lim.r_min) | np.isclose(m["price"][last], lim.r_max)
    assert at_limit.mean() <= 0.10
    # Divisible supply: the survivor is throttled to a fraction of a core, no limit cycle.
    frac = m["useful"][last] % 1.0
    assert np.all((frac > 0.02) & (frac < 0.98))
    assert np.ptp(m["useful"][last]) < 0.2


def test_the_parasite_heats_the_die_and_the_useful_agent_resumes_cheaper() -> None:
    m = _demo_model()
    death = int(np.argmax(m["dead"]))
    assert m["temp"][death - 1] > D.SETPOINT_C  # it ran the die past the setpoint
    assert m["price"][: death + 1].max() > 2 * D.R_MIN  # and the reserve rose while it lived
    assert m["useful"][:death].sum() == 0.0  # the useful agent was priced out meanwhile
    # Nobody ran in the interval after its death: the die cooled and the reserve fell,
    # and the useful agent resumed at a lower price than the parasite's peak.
    assert m["temp"][death + 1] < m["temp"][death] - 2.0
    resumed = death + int(np.argmax(m["useful"][death:] > 0))
    assert m["price"][resumed] < 0.5 * m["price"][: death + 1].max()
    # It runs on paying the reserve, below the useful agent's displaced bid (1.5 per
    # core-second) that the parasite paid while it lived.
    assert m["price"][resumed:].max() < 1.5


def test_capacity_falls_one_core_per_price_per_core() -> None:
    p = EconomyParams(agents=("a",), initial_funds=(1.0,), slots=2)
    assert capacity_for_sale(D.R_MIN, p) == 2.0
    assert capacity_for_sale(D.R_MIN + 0.5 * D.PRICE_PER_CORE, p) == 1.5
    assert capacity_for_sale(1e9, p) == 0.01
    assert p.control_limits.r_max == D.R_MIN + 2 * D.PRICE_PER_CORE


def test_sale_weights_sell_the_last_slot_in_part() -> None:
    ones = np.ones(3)
    assert sale_weights(ones, 3.0).tolist() == [1.0, 1.0, 1.0]
    assert np.allclose(sale_weights(ones, 1.37), [1.0, 0.37])
    assert np.allclose(sale_weights(ones, 0.2), [0.2])
    assert np.allclose(sale_weights(np.array([1.0, 0.5]), 1.2), [1.0, 0.2])
