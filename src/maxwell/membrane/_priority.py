"""Raising the supervisor's scheduling priority (who gets a CPU first sets the pause tail).

Touches only the calling thread's scheduling policy or the process's nice value.
"""

from __future__ import annotations

import os

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
