"""Raising the supervisor's scheduling priority (who gets a CPU first sets the pause tail).

Touches only the calling thread's scheduling policy or the process's nice value.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Iterator
from contextlib import contextmanager

log = logging.getLogger(__name__)

RT_PRIORITY = 10  # low among RT priorities: above every CFS task, below kernel RT threads
NICE = -10


def raise_priority(rt_priority: int = RT_PRIORITY, nice: int = NICE) -> str:
    """Try SCHED_FIFO (reset on fork, so agents never inherit it), else nice; say what happened.

    SCHED_FIFO applies to the calling thread: call it from the thread that pauses.
    The kernel's RT throttling (sched_rt_runtime_us) bounds what a runaway
    FIFO thread can take.
    """
    fifo_err = "unsupported"
    try:
        policy = os.SCHED_FIFO | getattr(os, "SCHED_RESET_ON_FORK", 0)
        os.sched_setscheduler(0, policy, os.sched_param(rt_priority))
        return f"SCHED_FIFO {rt_priority}"
    except (OSError, AttributeError) as err:
        fifo_err = getattr(err, "strerror", None) or str(err)
    try:
        current = os.getpriority(os.PRIO_PROCESS, 0)
        if current <= nice:
            return f"nice {current} (SCHED_FIFO not permitted: {fifo_err})"
        os.setpriority(os.PRIO_PROCESS, 0, nice)
        return f"nice {nice} (SCHED_FIFO not permitted: {fifo_err})"
    except OSError as err:
        return f"not permitted: SCHED_FIFO ({fifo_err}), nice ({err.strerror})"


@contextmanager
def priority_restored() -> Iterator[None]:
    """Undo, after the block, what it did to this thread's scheduling policy and nice.

    Both are per thread on Linux: a raised priority left in place would keep
    whatever the process does next (reports, plots, the next test) ahead of
    every other task.
    """
    try:
        policy, param = os.sched_getscheduler(0), os.sched_getparam(0)
    except (OSError, AttributeError):
        policy, param = None, None
    nice = os.getpriority(os.PRIO_PROCESS, 0)
    try:
        yield
    finally:
        try:
            if policy is not None and param is not None:
                os.sched_setscheduler(0, policy, param)
            if os.getpriority(os.PRIO_PROCESS, 0) != nice:
                os.setpriority(os.PRIO_PROCESS, 0, nice)
        except OSError as err:
            log.warning("could not restore this thread's priority: %s", err)


@contextmanager
def raised_priority(rt_priority: int = RT_PRIORITY, nice: int = NICE) -> Iterator[str]:
    """`raise_priority()` for the block only; yields what it did."""
    with priority_restored():
        yield raise_priority(rt_priority, nice)
