"""Process plumbing shared by the built-in agents: dying with the parent.

Worker processes of the Scientist and the Miner ask the kernel for SIGKILL when
their parent dies (prctl PR_SET_PDEATHSIG), so a killed agent never leaves
orphans burning CPU outside the economy. Linux only; elsewhere a no-op.
"""

from __future__ import annotations

import ctypes
import os
import signal

_PR_SET_PDEATHSIG = 1


def die_with_parent(parent_pid: int) -> None:
    """Ask for SIGKILL when the parent exits (and exit now if it already has).

    `parent_pid` is the parent's pid taken before the fork, to close the race
    where the parent dies between fork and prctl.
    """
    try:
        libc = ctypes.CDLL(None, use_errno=True)
        libc.prctl(_PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0)
    except (OSError, AttributeError):
        return
    if os.getppid() != parent_pid:  # the parent died before prctl took effect
        os._exit(0)
