"""`maxwell doctor`'s eBPF lines say what the tracer needs and how to get it."""

from __future__ import annotations

import os
from pathlib import Path

from maxwell.memtrace import doctor_checks


def test_prerequisites_are_reported_with_their_state() -> None:
    checks = {c.check: c for c in doctor_checks()}
    for name in ("memory-free tracing", "eBPF BTF", "eBPF privileges", "eBPF memcg tracepoints",
                 "memory cgroup controller", "eBPF build tools", "eBPF object"):
        assert name in checks
    assert checks["eBPF BTF"].ok == Path("/sys/kernel/btf/vmlinux").is_file()
    assert checks["eBPF privileges"].ok == (os.geteuid() == 0)
