"""Every way of giving memory back is counted: 64 MiB freed by each, in its own real agent.

Each agent is free_ways.c (compiled here), in a cgroup of its own (v2, and v1 memory
where memory is a v1 controller), registered with the tracer the way the supervisor
registers agents. It writes 64 MiB (every page), the test reads the counter, it frees
them by one way, the test reads again. 64 MiB is a page multiple, so the count is exact
in whole pages; the bound is 5 % either way because an exiting process also returns its
stack, heap and libc pages, and forked children their copied pages.
"""

from __future__ import annotations

import shutil
import subprocess
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from maxwell.memtrace import _cgroup, _ebpf, _rss

MIB = 1 << 20
FREED = 64 * MIB
SOURCE = Path(__file__).with_name("free_ways.c")

# way -> how free_ways.c gives the 64 MiB back
WAYS = {
    "munmap": "munmap(2)",
    "madv_dontneed": "madvise(MADV_DONTNEED)",
    "madv_dontneed_locked": "madvise(MADV_DONTNEED_LOCKED) (mlocked where the rlimit allows)",
    "madv_remove": "madvise(MADV_REMOVE) of a shared anonymous mapping (shmem)",
    "madv_free": "madvise(MADV_FREE), then MADV_PAGEOUT so reclaim takes the pages now",
    "process_madvise": "process_madvise(pidfd of itself, MADV_DONTNEED)",
    "io_uring": "IORING_OP_MADVISE(MADV_DONTNEED) through io_uring (an io-wq worker runs it)",
    "brk": "brk() grown by 64 MiB, written, shrunk back",
    "mremap": "mremap() of a 64 MiB + 1 page mapping down to 1 page",
    "map_fixed": "mmap(MAP_FIXED) of a fresh mapping over the written one",
    "int80": "munmap through the 32-bit int 0x80 entry (i386 __NR_munmap 91)",
    "memfd": "64 MiB written to a memfd with write(), then ftruncate(0)",
    "exit": "the agent process exits",
    "forkexit": "8 children each write 8 MiB and exit (a parasite that churns by forking)",
    "thp": "a MADV_HUGEPAGE region (2 MiB folios) unmapped",
}


@pytest.fixture(scope="module")
def free_ways(tmp_path_factory: pytest.TempPathFactory) -> Path:
    cc = next((c for c in ("cc", "gcc", "clang") if shutil.which(c)), None)
    if cc is None:
        pytest.skip("no C compiler for the free_ways helper (`sudo apt-get install gcc`)")
    out = tmp_path_factory.mktemp("free_ways") / "free_ways"
    subprocess.run([cc, "-O2", "-o", str(out), str(SOURCE)], check=True, timeout=60)
    return out


@pytest.fixture(scope="module")
def tracer() -> Iterator[_ebpf.EbpfTracer]:
    """One loaded program for the module (each agent gets its own slot)."""
    why = _ebpf.available()
    if not why.ok:
        pytest.skip(f"eBPF tracer unavailable here: {why.reason}")
    t = _ebpf.EbpfTracer()
    yield t
    t.close()


class Agent:
    """free_ways WAY N, stepped line by line."""

    def __init__(self, exe: Path, way: str, n: int = FREED) -> None:
        self.proc = subprocess.Popen(
            [str(exe), way, str(n)], stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True
        )
        self.pid = self.proc.pid
        assert self._line() == f"ready {self.pid}"

    def _line(self) -> str:
        assert self.proc.stdout is not None
        return self.proc.stdout.readline().strip()

    def step(self) -> str:
        assert self.proc.stdin is not None
        self.proc.stdin.write("go\n")
        self.proc.stdin.flush()
        return self._line()

    def close(self) -> None:
        if self.proc.poll() is None:
            self.proc.kill()
        self.proc.wait()
        for f in (self.proc.stdin, self.proc.stdout):
            if f is not None:
                f.close()


@pytest.fixture
def agents(free_ways: Path) -> Iterator[Callable[[str], Agent]]:
    made: list[Agent] = []

    def start(way: str) -> Agent:
        a = Agent(free_ways, way)
        made.append(a)
        return a

    yield start
    for a in made:
        a.close()


def _free_by(way: str, agent: Agent, read: Callable[[], int]) -> int:
    """Bytes counted while the agent frees its 64 MiB by `way`."""
    assert agent.step() == "touched"
    before = read()
    if way == "exit":
        agent.step()
        assert agent.proc.wait(timeout=30) == 0
    else:
        assert agent.step() == "freed"
    return read() - before


@pytest.mark.parametrize("way", list(WAYS))
def test_each_way_of_freeing_is_counted(way, tracer, cgroups, agents):
    agent = agents(way)
    leaf = cgroups.make(way)
    cgroups.move(leaf, agent.pid)
    tracer.add(way, _cgroup.cgroup_id(leaf), agent.pid)
    if cgroups.memory_leaf(leaf) is not None:
        assert tracer.keyed_by[way] == "memcg"  # the production path: the page's own cgroup
    got = _free_by(way, agent, lambda: tracer.read({way: [agent.pid]})[way])
    assert 0.95 * FREED <= got <= 1.05 * FREED, f"{WAYS[way]}: {got / FREED:.2%} of 64 MiB"


def test_lazily_freed_pages_are_counted_when_reclaim_takes_them(tracer, cgroups, agents):
    """MADV_FREE, then pressure from the agent's own memory limit: reclaim runs in the
    writer's context (here the test), yet the pages are the agent's and counted as such."""
    agent = agents("madv_free_lazy")
    leaf = cgroups.make("lazy")
    mem = cgroups.memory_leaf(leaf)
    if mem is None:
        pytest.skip("memory is not a v1 controller here (the limit below is v1's)")
    cgroups.move(leaf, agent.pid)
    tracer.add("lazy", _cgroup.cgroup_id(leaf), agent.pid)

    def read() -> int:
        return tracer.read({"lazy": [agent.pid]})["lazy"]

    assert agent.step() == "touched"
    before = read()
    assert agent.step() == "freed"  # MADV_FREE only: nothing is given back yet
    assert read() - before == 0
    usage = int((mem / "memory.usage_in_bytes").read_text())
    (mem / "memory.limit_in_bytes").write_text(str(usage - FREED + MIB))
    (mem / "memory.limit_in_bytes").write_text("-1")
    got = read() - before
    assert 0.95 * (FREED - MIB) <= got <= 1.05 * FREED


def test_memory_never_written_or_written_again_is_not_counted(tracer, cgroups, workloads):
    """Freeing address space that was never resident erases nothing; nor does MADV_FREE
    of pages the agent writes again before reclaim comes."""
    w = workloads()
    leaf = cgroups.make("dodge")
    cgroups.move(leaf, w.pid)
    tracer.add("dodge", _cgroup.cgroup_id(leaf), w.pid)
    pids = {"dodge": [w.pid]}
    before = tracer.read(pids)["dodge"]
    w.cmd(f"madvise 8 {16 * MIB}")  # MADV_FREE of 16 MiB written first
    w.cmd(f"madvise 8 {16 * MIB}")  # written again (kept), freed lazily again
    assert tracer.read(pids)["dodge"] == before


@pytest.mark.parametrize("way", list(WAYS))
def test_rss_fallback_sees_the_ways_it_says_it_sees(way, agents):
    agent = agents(way)
    rss = _rss.RssTracer(reason="test")
    rss.add(way, None, agent.pid)
    got = _free_by(way, agent, lambda: rss.read({way: [agent.pid]})[way])
    if way in _rss.SEES:
        assert got >= 0.95 * FREED, f"{WAYS[way]}: {got / FREED:.2%}"
    else:
        assert got <= 0.05 * FREED, f"{WAYS[way]}: {got / FREED:.2%} (said unseen)"


def test_a_parasite_spawned_by_the_membrane_pays_for_its_children(tracer, free_ways, tmp_path):
    """The production path: the membrane puts the agent in its own memory cgroup before
    exec; its children inherit it, allocate 64 MiB between them and exit."""
    import os
    import time

    from maxwell import membrane
    from maxwell.membrane import AgentSpec, MembraneError

    try:
        backend = membrane.select_backend("hybrid", clean_first=False)
    except MembraneError as err:
        pytest.skip(f"hybrid membrane unavailable here: {err}")
    fifo = tmp_path / "steps"
    os.mkfifo(fifo)
    try:
        spec = AgentSpec(name="parasite", argv=[str(free_ways), "forkexit", str(FREED), str(fifo)],
                         log_path=tmp_path / "parasite.log")
        handle = backend.spawn(spec)
        tracer.add("parasite", handle.cgroup_id, handle.pid)
        assert tracer.keyed_by["parasite"] == "memcg"
        before = tracer.read({"parasite": handle.pids()})["parasite"]
        with open(fifo, "w") as steps:  # blocks until the agent opens its end
            steps.write("go\ngo\ngo\n")
        deadline = time.monotonic() + 30
        while handle.alive() and time.monotonic() < deadline:
            time.sleep(0.01)  # waiting for a real process to finish, not testing logic
        assert handle.exit_status == 0
        got = tracer.read({"parasite": []})["parasite"] - before
    finally:
        backend.close()
    assert 0.95 * FREED <= got <= 1.05 * FREED, f"{got / FREED:.2%} of 64 MiB"
