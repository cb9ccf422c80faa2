"""An agent's relative CPU weight: cgroup v1 `cpu.shares` or v2 `cpu.weight`.

The `weights` baseline of the experiments gives each agent a static share of
contended CPU. Weight 1.0 is the default share (v1 cpu.shares 1024, v2 cpu.weight
100); the kernel's bounds are applied (shares ≥ 2; weight 1…10000). A tier without
a cpu controller (signals) cannot weigh agents: the reason is returned, nothing
raised. Touches only the agent's own cgroup.
"""

from __future__ import annotations

import os
from pathlib import Path

from maxwell.membrane._base import Handle

V1_DEFAULT_SHARES = 1024
V2_DEFAULT_WEIGHT = 100


def _write(path: Path, text: str) -> None:
    fd = os.open(path, os.O_WRONLY | os.O_TRUNC)
    try:
        os.write(fd, text.encode())
    finally:
        os.close(fd)


def set_cpu_weight(handle: Handle, weight: float) -> str | None:
    """Apply `weight` to the agent's cgroup; None when applied, else why not."""
    if not weight > 0:
        return f"weight must be > 0, got {weight!r}"
    cpu_v1: Path | None = getattr(handle, "_cpu", None)
    v2: Path | None = getattr(handle, "_v2", None)
    plan = getattr(handle, "_plan", None)
    try:
        if cpu_v1 is not None:
            _write(cpu_v1 / "cpu.shares", str(max(2, round(V1_DEFAULT_SHARES * weight))))
            return None
        if v2 is not None and getattr(plan, "v2_cpu", False):
            w = min(max(1, round(V2_DEFAULT_WEIGHT * weight)), 10_000)
            _write(v2 / "cpu.weight", str(w))
            return None
    except OSError as err:
        return f"cannot write the cpu weight: {err.strerror}"
    return "this membrane tier has no cpu controller to weigh agents"
