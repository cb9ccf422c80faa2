"""One membrane backend per tier this machine has (shared by the fixtures and tests).

A module of its own, not conftest: test files import it by a name no other test
directory uses, so collection order cannot hand them another directory's conftest.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from maxwell.membrane import Backend, available_backends
from maxwell.membrane._cgroup import CgroupBackend
from maxwell.membrane._signals import SignalsBackend

CGROUP_ROOT = Path("/sys/fs/cgroup")
# "cgroup2-freeze": the pure v2 tier on a v2 tree without the cpu controller
# (this machine's): freeze, kill, cpu.stat and the cgroup id, no quota.
TIERS = ["cgroup2", "cgroup2-freeze", "hybrid", "cgroup1", "signals"]


def make_backend(tier: str) -> Backend:
    avail = available_backends(CGROUP_ROOT)
    if tier == "signals":
        return SignalsBackend()
    if tier == "cgroup2-freeze":
        from maxwell.membrane._cgroup import discover

        h = discover(CGROUP_ROOT)
        if h.v2 is None or "cpu" in h.v2_controllers:
            pytest.skip("needs a v2 tree without the cpu controller (else see cgroup2)")
        return CgroupBackend("cgroup2", CGROUP_ROOT, allow_no_cpu=True)
    if not avail[tier].ok:
        pytest.skip(f"{tier} not available here: {avail[tier].reason}")
    return CgroupBackend(tier, CGROUP_ROOT)
