"""Foreign load: CPU and energy of processes outside the run, split off and never billed."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from physics_fakes import make_roots, set_stat

from maxwell.physics import probe, split_foreign


def test_split_gives_agents_only_their_share() -> None:
    # 40 J dynamic over 4 busy CPU-s: agents used 1 + 1, foreign 1.5, the run's overhead 0.5.
    agents, foreign_j = split_foreign(50.0, 10.0, np.array([1.0, 1.0]), 4.0, 1.5)
    assert agents.tolist() == [10.0, 10.0]
    assert foreign_j == pytest.approx(15.0)
    # A model driven by the run alone holds no foreign energy: the run's CPU is all there is.
    agents, foreign_j = split_foreign(35.0, 10.0, np.array([1.0, 1.0]), 4.0, 1.5,
                                      foreign_in_energy=False)
    assert foreign_j == 0.0 and agents.tolist() == pytest.approx([10.0, 10.0])


def test_sensors_tell_foreign_cores_and_the_model_sees_only_the_run(tmp_path: Path) -> None:
    roots = make_roots(tmp_path)  # no sensors: energy and temperature are modelled
    s = probe(roots, "desktop")
    assert not s.energy_measured and s.model_load == "run" and not s.foreign_in_energy
    set_stat(roots, busy=0, idle=0)
    s.set_run_cpu_s(0.0)
    s.sample(0.0)
    # 10 s at 2 CPUs (100 jiffies/s): both busy, of which the run used 5 CPU-seconds.
    set_stat(roots, busy=2000, idle=0)
    s.set_run_cpu_s(5.0)
    x = s.sample(10.0)
    assert x.busy_cores == pytest.approx(2.0)
    assert x.foreign_cores == pytest.approx(1.5)
    p = s.params
    assert x.energy_j == pytest.approx(10.0 * p.power_w(0.5))  # the run's 0.5 cores only
    s.close()
    # "machine": the model sees everything, and the energy then includes the foreign part.
    s = probe(roots, "desktop")
    s.model_load = "machine"
    assert s.foreign_in_energy
    s.close()
