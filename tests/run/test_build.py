"""The supervisor's priority is raised for the run only (membrane.raised_priority, used
by build_run), and the membrane bench leaves the calling process as it found it."""

from __future__ import annotations

import os

import pytest

from maxwell.membrane import raised_priority


def test_the_supervisors_priority_is_restored_when_the_run_ends() -> None:
    before = (os.sched_getscheduler(0), os.sched_getparam(0).sched_priority,
              os.getpriority(os.PRIO_PROCESS, 0))
    with raised_priority() as what:
        if what.startswith("SCHED_FIFO"):
            assert os.sched_getscheduler(0) & ~getattr(os, "SCHED_RESET_ON_FORK", 0) \
                == os.SCHED_FIFO, what
    after = (os.sched_getscheduler(0), os.sched_getparam(0).sched_priority,
             os.getpriority(os.PRIO_PROCESS, 0))
    assert after == before


def test_the_priority_is_restored_when_the_run_fails() -> None:
    before = (os.sched_getscheduler(0), os.getpriority(os.PRIO_PROCESS, 0))
    with pytest.raises(RuntimeError), raised_priority():
        raise RuntimeError("the run failed")
    assert (os.sched_getscheduler(0), os.getpriority(os.PRIO_PROCESS, 0)) == before


def test_bench_membrane_leaves_the_process_priority_as_it_found_it(
        capsys: pytest.CaptureFixture[str]) -> None:
    from maxwell.cli import main

    before = (os.sched_getscheduler(0), os.getpriority(os.PRIO_PROCESS, 0))
    assert main(["bench", "membrane", "--cycles", "3", "--backend", "signals",
                 "--spawn-samples", "0", "--json"]) == 0
    capsys.readouterr()
    assert (os.sched_getscheduler(0), os.getpriority(os.PRIO_PROCESS, 0)) == before
