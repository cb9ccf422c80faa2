"""The weights baseline's membrane operation on a real cgroup (skipped without one)."""

import pytest

from maxwell import membrane


def _backend():
    for name in ("hybrid", "cgroup2", "cgroup1"):
        try:
            return membrane.select_backend(name)
        except membrane.MembraneError:
            continue
    pytest.skip("no cgroup tier with a cpu controller here (needs root and cgroups)")


def test_set_cpu_weight_writes_the_agent_cgroups_share():
    backend = _backend()
    try:
        h = backend.spawn(membrane.AgentSpec(name="weighed", argv=["sleep", "30"]))
        try:
            assert membrane.set_cpu_weight(h, 0.5) is None
            cpu_v1 = getattr(h, "_cpu", None)
            if cpu_v1 is not None:
                assert (cpu_v1 / "cpu.shares").read_text().strip() == "512"
            else:
                assert (h._v2 / "cpu.weight").read_text().strip() == "50"
            assert membrane.set_cpu_weight(h, 0.0) is not None  # refused, not raised
        finally:
            h.kill()
    finally:
        backend.close()
