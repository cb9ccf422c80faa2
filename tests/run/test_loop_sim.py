"""The same tick loop over the simulator's parts (maxwell.sim) and a virtual clock.

The built-in demo cast, simulated: the loop, the policy and the recorder are the
live ones; only the parts differ. Simulated seconds cost microseconds here.
"""

from __future__ import annotations

import time

from maxwell.config import default_config
from maxwell.sim.run import SimOptions, SimRun


def _run(policy: str, duration_s: float = 100.0) -> SimRun:
    r = SimRun(default_config(), SimOptions(out_dir=None, policy=policy, duration_s=duration_s))
    r.run()
    return r


def test_a_hundred_simulated_demo_ticks_take_well_under_a_second() -> None:
    t0 = time.perf_counter()
    r = _run("maxwell")
    assert time.perf_counter() - t0 < 1.0
    assert r.loop is not None and r.loop.ticks == 100


def test_the_same_loop_enforces_under_maxwell_and_only_books_under_cfs() -> None:
    from maxwell.run.parts import DEAD

    mx, cfs = _run("maxwell", 30.0), _run("cfs", 30.0)
    assert mx.loop is not None and cfs.loop is not None
    assert (mx.loop.state == DEAD).any(), "someone went bankrupt under Maxwell"
    assert not (cfs.loop.state == DEAD).any(), "nobody is killed under the fair scheduler"
    assert mx.loop.lateness_s and max(mx.loop.lateness_s) == 0.0
