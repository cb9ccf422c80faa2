"""Fixtures for the memtrace tests: the real eBPF tracer, temporary v2 cgroups, workloads."""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator

import pytest

from maxwell.memtrace import _cgroup, _ebpf
from maxwell.memtrace._bench import Workload


@pytest.fixture
def ebpf_tracer() -> Iterator[_ebpf.EbpfTracer]:
    """The real eBPF program, loaded and attached; skipped (with the reason) where it cannot be."""
    why = _ebpf.available()
    if not why.ok:
        pytest.skip(f"eBPF tracer unavailable here: {why.reason}")
    tracer = _ebpf.EbpfTracer()
    yield tracer
    tracer.close()


@pytest.fixture
def cgroups() -> Iterator[_cgroup.TempCgroups]:
    """A `maxwell/<pid>-<random>` directory in the v2 hierarchy, removed afterwards."""
    if os.geteuid() != 0 or not _cgroup.v2_available():
        pytest.skip("needs root and a writable cgroup v2 hierarchy at /sys/fs/cgroup/unified")
    cg = _cgroup.TempCgroups()
    yield cg
    cg.close()


@pytest.fixture
def workloads() -> Iterator[Callable[[], Workload]]:
    """Factory of workload children, all stopped at teardown."""
    made: list[Workload] = []

    def make() -> Workload:
        w = Workload()
        made.append(w)
        return w

    yield make
    for w in made:
        w.close()
