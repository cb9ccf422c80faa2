"""build_run's own housekeeping: the supervisor's priority is raised for the run only."""

from __future__ import annotations

import os

import pytest

from maxwell.run.build import raised_priority


def test_the_supervisors_priority_is_restored_when_the_run_ends() -> None:
    before = (os.sched_getscheduler(0), os.sched_getparam(0).sched_priority,
              os.getpriority(os.PRIO_PROCESS, 0))
    with raised_priority() as what:
        during = (os.sched_getscheduler(0), os.sched_getparam(0).sched_priority,
                  os.getpriority(os.PRIO_PROCESS, 0))
        if what.startswith("SCHED_FIFO"):
            assert during != before, what
    after = (os.sched_getscheduler(0), os.sched_getparam(0).sched_priority,
             os.getpriority(os.PRIO_PROCESS, 0))
    assert after == before


def test_the_priority_is_restored_when_the_run_fails() -> None:
    before = (os.sched_getscheduler(0), os.getpriority(os.PRIO_PROCESS, 0))
    with pytest.raises(RuntimeError), raised_priority():
        raise RuntimeError("the run failed")
    assert (os.sched_getscheduler(0), os.getpriority(os.PRIO_PROCESS, 0)) == before
