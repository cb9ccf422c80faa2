"""The real eBPF program on this machine: exact counts per agent, by cgroup and by pid."""

from __future__ import annotations

import threading
from collections.abc import Callable

from maxwell.memtrace import _cgroup, _ebpf
from maxwell.memtrace._bench import Workload, page_round

# Some sizes are not page multiples: munmap/madvise act on whole pages, and so does the count.
SIZES = (1, 4095, 4096, 4097, 5000, 65536, (1 << 20) + 3)
MADV_WILLNEED = 3
MADV_DONTNEED = 4
MADV_FREE = 8
MADV_REMOVE = 9
MADV_PAGEOUT = 21


def _sizes(sizes: tuple[int, ...] = SIZES) -> str:
    return " ".join(str(s) for s in sizes)


def _in_cgroup(
    cgroups: _cgroup.TempCgroups, make: Callable[[], Workload], name: str
) -> tuple[Workload, int]:
    w = make()
    leaf = cgroups.make(name)
    cgroups.move(leaf, w.pid)
    return w, _cgroup.cgroup_id(leaf)


def _warm_threads(w: Workload, k: int) -> None:
    """Let glibc make its per-thread malloc arenas before measuring.

    A new arena is a 128 MiB reservation trimmed to alignment with munmap (64 MiB
    released per arena): real frees, correctly counted, but not the test's.
    Exited threads leave their arenas for reuse by the next ones.
    """
    w.cmd(f"threads {k} 4096")
    w.cmd("release")


def _delta(tracer: _ebpf.EbpfTracer, name: str, w: Workload, command: str) -> int:
    pids = {name: [w.pid]}
    before = tracer.read(pids)[name]
    w.cmd(command)
    return tracer.read(pids)[name] - before


def test_munmap_of_odd_sizes_is_counted_in_whole_pages(ebpf_tracer, cgroups, workloads):
    w, cg = _in_cgroup(cgroups, workloads, "a")
    ebpf_tracer.add("a", cg, w.pid)
    got = _delta(ebpf_tracer, "a", w, f"munmap {_sizes()}")
    assert got == sum(page_round(s) for s in SIZES)
    assert got == 4096 + 4096 + 4096 + 8192 + 8192 + 65536 + (1 << 20) + 4096


def test_madvise_dontneed_remove_count_at_once_free_when_reclaimed(
    ebpf_tracer, cgroups, workloads
):
    w, cg = _in_cgroup(cgroups, workloads, "a")
    ebpf_tracer.add("a", cg, w.pid)
    expected = sum(page_round(s) for s in SIZES)
    for advice in (MADV_DONTNEED, MADV_REMOVE):
        assert _delta(ebpf_tracer, "a", w, f"madvise {advice} {_sizes()}") == expected, advice
    # MADV_FREE is lazy: the pages stay until reclaim takes them, and a page written again
    # is kept (each size here rewrites the pages of the one before). Reclaim now, asked with
    # MADV_PAGEOUT: what is left lazily freed, the largest range, is counted then, once.
    assert _delta(ebpf_tracer, "a", w, f"madvise {MADV_FREE} {_sizes()}") == 0
    assert _delta(ebpf_tracer, "a", w, f"madvise {MADV_PAGEOUT} {max(SIZES)}") == page_round(
        max(SIZES)
    )
    assert _delta(ebpf_tracer, "a", w, f"madvise {MADV_WILLNEED} {_sizes()}") == 0


def test_failed_calls_are_not_counted(ebpf_tracer, cgroups, workloads):
    w, cg = _in_cgroup(cgroups, workloads, "a")
    ebpf_tracer.add("a", cg, w.pid)
    pids = {"a": [w.pid]}
    before = ebpf_tracer.read(pids)["a"]
    calls_before = ebpf_tracer.read_calls()["a"]
    w.cmd("einval")  # four rejected calls, then one successful 4 KiB munmap
    assert ebpf_tracer.read(pids)["a"] - before == 4096
    assert ebpf_tracer.read_calls()["a"] - calls_before == 1


def test_threads_and_forked_child_are_credited_to_the_agent(ebpf_tracer, cgroups, workloads):
    w, cg = _in_cgroup(cgroups, workloads, "a")
    ebpf_tracer.add("a", cg, w.pid)
    one = sum(page_round(s) for s in SIZES)
    _warm_threads(w, 3)
    # Threads and the child stay alive until `release`, so no thread-stack free lands here.
    assert _delta(ebpf_tracer, "a", w, f"threads 3 {_sizes()}") == 3 * one
    assert _delta(ebpf_tracer, "a", w, f"fork {_sizes()}") == one
    w.cmd("release")


def test_two_agents_at_once_are_each_credited_only_their_own(ebpf_tracer, cgroups, workloads):
    a, cg_a = _in_cgroup(cgroups, workloads, "a")
    b, cg_b = _in_cgroup(cgroups, workloads, "b")
    ebpf_tracer.add("a", cg_a, a.pid)
    ebpf_tracer.add("b", cg_b, b.pid)
    _warm_threads(a, 2)
    pids = {"a": [a.pid], "b": [b.pid]}
    before = ebpf_tracer.read(pids)
    sizes_a = (4097,) * 50
    sizes_b = (1 << 16,) * 20 + (3,)
    ta = threading.Thread(target=a.cmd, args=(f"threads 2 {_sizes(sizes_a)}",))
    tb = threading.Thread(target=b.cmd, args=(f"fork {_sizes(sizes_b)}",))
    ta.start()
    tb.start()
    ta.join()
    tb.join()
    after = ebpf_tracer.read(pids)
    assert after["a"] - before["a"] == 2 * sum(page_round(s) for s in sizes_a)
    assert after["b"] - before["b"] == sum(page_round(s) for s in sizes_b)
    a.cmd("release")
    b.cmd("release")


def test_frees_outside_registered_agents_are_not_counted(ebpf_tracer, cgroups, workloads):
    w, cg = _in_cgroup(cgroups, workloads, "a")
    other = workloads()  # not registered, not in the agent's cgroup
    ebpf_tracer.add("a", cg, w.pid)
    pids = {"a": [w.pid]}
    before = ebpf_tracer.read(pids)["a"]
    other.cmd(f"munmap {_sizes()}")
    assert ebpf_tracer.read(pids)["a"] == before


def test_pid_fallback_follows_children_forked_after_registration(ebpf_tracer, workloads):
    w = workloads()
    ebpf_tracer.add("p", None, w.pid)
    one = sum(page_round(s) for s in SIZES)
    assert _delta(ebpf_tracer, "p", w, f"munmap {_sizes()}") == one
    assert _delta(ebpf_tracer, "p", w, f"fork {_sizes()}") == one
    w.cmd("release")


def test_pid_map_stays_bounded_as_children_come_and_go(ebpf_tracer, workloads):
    w = workloads()
    ebpf_tracer.add("p", None, w.pid)
    for _ in range(3):
        w.cmd("forkmany 200")
        # Each child was registered in the kernel at fork (inheritance), and has exited.
        assert ebpf_tracer.pid_map_size() >= 100
        ebpf_tracer.read({"p": [w.pid]})
        assert ebpf_tracer.pid_map_size() == 1  # only the living agent is left


def test_cgroup_and_pid_agents_coexist(ebpf_tracer, cgroups, workloads):
    a, cg_a = _in_cgroup(cgroups, workloads, "a")
    p = workloads()
    ebpf_tracer.add("a", cg_a, a.pid)
    ebpf_tracer.add("p", None, p.pid)
    pids = {"a": [a.pid], "p": [p.pid]}
    before = ebpf_tracer.read(pids)
    a.cmd("munmap 8192")
    p.cmd("munmap 12288")
    after = ebpf_tracer.read(pids)
    assert (after["a"] - before["a"], after["p"] - before["p"]) == (8192, 12288)


def test_agents_sharing_a_memory_cgroup_are_told_apart_by_their_own_cgroups(
    ebpf_tracer, cgroups, workloads
):
    a, cg_a = _in_cgroup(cgroups, workloads, "a")
    b, cg_b = _in_cgroup(cgroups, workloads, "b")
    mem_a = cgroups.memory_leaf(cgroups.base / "a")
    if mem_a is None:
        return  # memory is not a v1 controller here: the v2 cgroups are the memcgs
    (mem_a / "cgroup.procs").write_text(f"{b.pid}\n")  # b now charges a's memory cgroup
    ebpf_tracer.add("a", cg_a, a.pid)
    ebpf_tracer.add("b", cg_b, b.pid)
    assert (ebpf_tracer.keyed_by["a"], ebpf_tracer.keyed_by["b"]) == ("cgroup", "cgroup")
    pids = {"a": [a.pid], "b": [b.pid]}
    before = ebpf_tracer.read(pids)
    a.cmd("munmap 8192")
    b.cmd("munmap 12288")
    after = ebpf_tracer.read(pids)
    assert (after["a"] - before["a"], after["b"] - before["b"]) == (8192, 12288)
