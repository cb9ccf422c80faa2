"""Detection and choice of a tier on fake cgroup mounts (layouts this machine lacks) and here."""

from __future__ import annotations

import time
from pathlib import Path

import pytest
from membrane_backends import CGROUP_ROOT

from maxwell.membrane import (
    AgentSpec,
    MembraneError,
    available_backends,
    doctor_checks,
    select_backend,
)
from maxwell.membrane._cgroup import _kernel_at_least, discover


def _touch(d: Path, *files: str, text: str = "") -> None:
    d.mkdir(parents=True, exist_ok=True)
    for f in files:
        (d / f).write_text(text)


def fake_hybrid(root: Path) -> Path:
    _touch(root / "unified", "cgroup.procs")
    (root / "unified" / "cgroup.controllers").write_text("hugetlb\n")
    _touch(root / "cpu", "cpu.cfs_quota_us", "cpu.cfs_period_us", "tasks", "cgroup.procs")
    _touch(root / "cpuacct", "cpuacct.usage", "tasks", "cgroup.procs")
    _touch(root / "freezer", "tasks", "cgroup.procs")
    _touch(root / "pids", "tasks", "cgroup.procs")
    return root


def fake_pure_v2(root: Path, controllers: str) -> Path:
    _touch(root, "cgroup.procs", "cgroup.subtree_control")
    (root / "cgroup.controllers").write_text(controllers + "\n")
    return root


def test_an_empty_root_offers_only_signals(tmp_path: Path) -> None:
    avail = available_backends(tmp_path)
    # (microvm does not depend on the cgroup root; `auto` never picks it)
    assert [n for n, a in avail.items() if a.ok and n != "microvm"] == ["signals"]
    assert "no cgroup v2 tree" in avail["cgroup2"].reason
    assert "not mounted" in avail["cgroup1"].reason
    b = select_backend("auto", tmp_path)
    try:
        assert b.name == "signals"
        assert "not cgroup2" in b.reason  # says why the better tiers were passed over
    finally:
        b.close()


def test_a_forced_but_missing_tier_is_refused_with_the_reason(tmp_path: Path) -> None:
    with pytest.raises(MembraneError, match="cgroup1 unavailable: v1"):
        select_backend("cgroup1", tmp_path)
    with pytest.raises(MembraneError, match="unknown membrane backend"):
        select_backend("lxc", tmp_path)


def test_a_hybrid_layout_is_recognised(tmp_path: Path) -> None:
    avail = available_backends(fake_hybrid(tmp_path))
    assert not avail["cgroup2"].ok and "no cpu controller" in avail["cgroup2"].reason
    assert avail["hybrid"].ok and "pids" in avail["hybrid"].reason
    assert avail["cgroup1"].ok


def test_a_pure_v2_layout_with_cpu_is_cgroup2(tmp_path: Path) -> None:
    root = fake_pure_v2(tmp_path, "cpu memory pids")
    h = discover(root)
    assert h.v2 == root and h.v1 == {}
    avail = available_backends(root)
    assert avail["cgroup2"].ok == _kernel_at_least(5, 2)
    assert not avail["hybrid"].ok and "pure v2" in avail["hybrid"].reason


def test_co_mounted_cpu_and_cpuacct_count_once(tmp_path: Path) -> None:
    fake_hybrid(tmp_path)
    both = tmp_path / "cpu,cpuacct"
    _touch(both, "cpu.cfs_quota_us", "cpuacct.usage", "tasks")
    for name in ("cpu", "cpuacct"):
        for f in (tmp_path / name).iterdir():
            f.unlink()
        (tmp_path / name).rmdir()
        (tmp_path / name).symlink_to(both.name)
    h = discover(tmp_path)
    assert set(h.v1) >= {"cpu", "cpuacct"}
    assert len(h.all_paths()) == 4  # unified, cpu,cpuacct (once), freezer, pids


def test_this_machine_picks_its_best_tier() -> None:
    avail = available_backends(CGROUP_ROOT)
    best = next(n for n in ("cgroup2", "hybrid", "cgroup1", "signals") if avail[n].ok)
    b = select_backend("auto", CGROUP_ROOT)
    try:
        assert b.name == best
        assert b.reason.startswith("best available")
    finally:
        b.close()


def test_doctor_names_every_tier_and_the_choice() -> None:
    checks = {c.check: c for c in doctor_checks(CGROUP_ROOT)}
    for name in ("cgroup2", "hybrid", "cgroup1", "signals"):
        assert f"membrane {name}" in checks
    assert checks["membrane backend"].ok
    assert checks["membrane backend"].detail.startswith("auto selects ")


def test_agent_names_must_be_safe_directory_names() -> None:
    for bad in ("", "../x", "a/b", ".", "..", "x y", "x" * 65):
        with pytest.raises(ValueError):
            AgentSpec(bad, ["true"])
    with pytest.raises(ValueError):
        AgentSpec("ok", [])
    AgentSpec("miner-1.a_b", ["true"])
    AgentSpec("_x", ["true"])  # what the config accepts, the membrane accepts


def test_quota_and_limits_are_written_the_way_each_hierarchy_wants(tmp_path: Path) -> None:
    from maxwell.membrane._cgroup import _apply_limits, _plan, quota_us, write_quota

    assert quota_us(None) is None
    assert quota_us(0.2) == 20_000
    assert quota_us(0.0) == 1_000  # the kernel's minimum
    assert quota_us(1.5) == 150_000
    with pytest.raises(ValueError):
        quota_us(-1)

    v2 = tmp_path / "v2"
    _touch(v2, "cpu.max", "pids.max", "memory.max", "memory.swap.max")
    write_quota(None, v2, quota_us(0.5))
    assert (v2 / "cpu.max").read_text() == "50000 100000"
    write_quota(None, v2, None)
    assert (v2 / "cpu.max").read_text() == "max 100000"

    v1 = tmp_path / "v1"
    _touch(v1, "cpu.cfs_period_us", "cpu.cfs_quota_us")
    write_quota(v1, None, quota_us(0.2))
    assert (v1 / "cpu.cfs_quota_us").read_text() == "20000"
    assert (v1 / "cpu.cfs_period_us").read_text() == "100000"
    write_quota(v1, None, None)
    assert (v1 / "cpu.cfs_quota_us").read_text() == "-1"

    # A pure v2 host with every controller: limits land in the v2 cgroup.
    root = fake_pure_v2(tmp_path / "pure", "cpu memory pids")
    plan = _plan("cgroup2", discover(root))
    assert plan.v2_cpu and plan.v2_pids and plan.v2_memory
    spec = AgentSpec("a", ["true"], pids_max=7, memory_max_bytes=1 << 20)
    assert _apply_limits(spec, {root: v2}, plan) == ()
    assert (v2 / "pids.max").read_text() == "7"
    assert (v2 / "memory.max").read_text() == str(1 << 20)
    assert (v2 / "memory.swap.max").read_text() == "0"

    # Hybrid: v1 pids and memory (memsw too, so swap is no way out).
    h_root = fake_hybrid(tmp_path / "hy")
    _touch(h_root / "memory", "memory.limit_in_bytes", "tasks")
    h = discover(h_root)
    plan = _plan("hybrid", h)
    dirs = {m: tmp_path / "agent" / m.name for m in plan.members}
    for d in dirs.values():
        _touch(d, "pids.max", "memory.limit_in_bytes", "memory.memsw.limit_in_bytes")
    assert _apply_limits(spec, dirs, plan) == ()
    assert (dirs[h.v1["pids"]] / "pids.max").read_text() == "7"
    assert (dirs[h.v1["memory"]] / "memory.memsw.limit_in_bytes").read_text() == str(1 << 20)

    # No pids/memory controller at all: named as unenforced, not silently dropped.
    bare = fake_pure_v2(tmp_path / "bare", "cpu")
    plan = _plan("cgroup2", discover(bare))
    assert _apply_limits(spec, {bare: v2}, plan) == ("pids_max", "memory_max_bytes")


class _StickyFreezer:
    """A v1 freezer.state that stays FREEZING for the first `stuck` freeze attempts."""

    def __init__(self, stuck: int) -> None:
        self.stuck = stuck
        self.writes: list[bytes] = []
        self.state = b"THAWED\n"

    def write(self, data: bytes) -> None:
        self.writes.append(data)
        if data == b"THAWED":
            self.state = b"THAWED\n"
        elif self.writes.count(b"FROZEN") > self.stuck:
            self.state = b"FROZEN\n"
        else:
            self.state = b"FREEZING\n"

    def read(self) -> bytes:
        return self.state


def test_a_v1_freeze_stuck_in_freezing_is_thawed_and_retried() -> None:
    from maxwell.membrane._freezer import freeze_v1

    f = _StickyFreezer(stuck=2)
    freeze_v1(f.write, f.read, "fake")
    assert f.writes == [b"FROZEN", b"THAWED", b"FROZEN", b"THAWED", b"FROZEN"]
    assert f.state == b"FROZEN\n"


class _SlowFreezer(_StickyFreezer):
    """A v1 freezer.state that reaches FROZEN once `need_s` have passed since the last
    FROZEN write (its tasks wait for a CPU on a loaded machine; a thaw starts over)."""

    def __init__(self, need_s: float) -> None:
        super().__init__(stuck=0)
        self.need_s = need_s
        self.since = 0.0

    def write(self, data: bytes) -> None:
        self.writes.append(data)
        self.since = time.monotonic()
        self.state = b"FREEZING\n" if data == b"FROZEN" else b"THAWED\n"

    def read(self) -> bytes:
        if self.state == b"FREEZING\n" and time.monotonic() - self.since >= self.need_s:
            self.state = b"FROZEN\n"
        return self.state


def test_a_slow_v1_freeze_gets_longer_tries_until_it_completes() -> None:
    from maxwell.membrane._freezer import freeze_v1

    f = _SlowFreezer(need_s=0.3)  # more than a fixed 50 ms window ever waits
    freeze_v1(f.write, f.read, "fake")
    assert f.state == b"FROZEN\n"
    assert f.writes.count(b"FROZEN") <= 4  # 0.05, 0.1, 0.2, then 0.4 s


def test_a_v1_freeze_that_never_completes_is_left_thawed() -> None:
    from maxwell.membrane._freezer import V1_FREEZING_RETRIES, freeze_v1

    f = _StickyFreezer(stuck=1000)
    with pytest.raises(MembraneError, match="stuck in FREEZING"):
        freeze_v1(f.write, f.read, "fake")
    assert f.writes.count(b"FROZEN") == V1_FREEZING_RETRIES
    assert f.writes[-1] == b"THAWED" and f.state == b"THAWED\n"
