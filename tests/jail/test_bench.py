"""The spawn figure of `maxwell bench membrane`: it runs and reports both sides (no timing)."""

from __future__ import annotations

from pathlib import Path

from maxwell.membrane import _spawnbench
from maxwell.membrane._jail import JailConfig, best_level


def test_spawn_figure_reports_bare_and_jailed() -> None:
    r = _spawnbench.run("auto", 2, Path("/sys/fs/cgroup"))
    assert r["samples"] == 2 and r["jail_level"] == best_level(JailConfig())[0]
    for key in ("bare_median_ms", "jail_median_ms", "jail_p90_ms", "jail_max_ms"):
        assert r[key] > 0
