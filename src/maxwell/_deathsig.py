"""Dying with the parent: the one PR_SET_PDEATHSIG helper every child of Maxwell uses.

Agents (armed in the membrane's pre-exec step), the built-in agents' workers and
the calibration burners ask the kernel for SIGKILL when their parent dies, so a
killed supervisor or agent never leaves processes burning CPU outside the
economy. The signal fires when the parent *thread* exits, and there is a race
between fork and prctl, so the caller passes the parent's pid taken before the
fork and the child exits at once if it was already orphaned. The prctl binding
is made once at import, so the call is safe in a pre-exec step (no allocation
of new ctypes objects after fork). Linux only: elsewhere arming reports False.
Stdlib only.
"""

from __future__ import annotations

import ctypes
import os
import signal
from typing import Any

PR_SET_PDEATHSIG = 1

prctl: Any = None  # int prctl(int option, unsigned long arg2, ...), or None off Linux
try:
    prctl = ctypes.CDLL(None, use_errno=True).prctl
    prctl.argtypes = [ctypes.c_int, ctypes.c_ulong, ctypes.c_ulong, ctypes.c_ulong,
                      ctypes.c_ulong]
    prctl.restype = ctypes.c_int
except (OSError, AttributeError):  # not Linux (or no libc symbol): nothing to arm
    prctl = None


def die_with_parent(parent_pid: int, sig: int = signal.SIGKILL, *,
                    orphan_status: int = 0) -> bool:
    """Ask for `sig` when the parent exits; exit now (`orphan_status`) if it already has.

    Returns False when the kernel refused (or there is no prctl): the caller decides
    whether running without the lifeline is acceptable.
    """
    if prctl is None or prctl(PR_SET_PDEATHSIG, sig, 0, 0, 0) != 0:
        return False
    if os.getppid() != parent_pid:  # the parent died before prctl took effect
        os._exit(orphan_status)
    return True
