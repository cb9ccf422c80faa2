"""`maxwell bench membrane`: pause/resume latency of each tier, confirmed by the agent itself.

Starts, per available tier, a busy agent that increments a counter in a shared
file it mmaps, and a burner outside the membrane that loads the other core.
`pause_*`: request → confirmed stopped (pause() returns after the kernel's
confirmation, and the counter then stays still for a verification window; if it
still moved, the stop time is when it last moved). `stop_*`: the same request
without waiting for the kernel (pause(wait=False)); the counter alone tells when
the agent stopped. `resume_*`: request → the counter moves again. The agent runs jailed at the
level `--jail` gives (default: the best here), and `spawn` times spawn() up to
the agent's first write, bare and jailed. `--jail-pair` adds, per tier, a bare and
a jailed agent measured in alternating blocks of cycles (the one not measured
stays frozen), so both sides of the comparison see the same machine load.
Touches only the processes and cgroups it creates.
"""

from __future__ import annotations

import math
import mmap
import os
import struct
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from maxwell.membrane._types import AgentSpec, MembraneError

AGENT_CODE = """
import mmap, os, struct, sys
if int(sys.argv[2]):
    os.setpriority(os.PRIO_PROCESS, 0, int(sys.argv[2]))
fd = os.open(sys.argv[1], os.O_RDWR)
m = mmap.mmap(fd, 8)
pack = struct.pack_into
i = 0
while True:
    i += 1
    pack("Q", m, 0, i)
"""

VERIFY_WINDOW_NS = 2_000_000  # a stopped counter must stay still this long
RUN_BETWEEN_NS = 1_000_000  # let the agent run this long between cycles
RESUME_TIMEOUT_NS = 2_000_000_000
NAP_S = 0.00005
# Resume wakes the agent on the waker's CPU (wake-affine): spinning here would
# keep it off that CPU, so the bench naps from the start.
SPIN_NS = 0
SPIN_STOP_NS = 100_000
PAIR_BLOCK = 10  # `--jail-pair`: bare and jailed cycles alternate in blocks of this many


def _pct(sorted_us: list[float], q: float) -> float:
    idx = max(0, math.ceil(q * len(sorted_us)) - 1)
    return sorted_us[idx]


def _summary(
    pause_us: list[float], resume_us: list[float], stop_us: list[float]
) -> dict[str, Any]:
    p, r, s = sorted(pause_us), sorted(resume_us), sorted(stop_us)
    return {
        "stop_p50_us": round(_pct(s, 0.5), 1),
        "stop_p99_us": round(_pct(s, 0.99), 1),
        "stop_max_us": round(s[-1], 1),
        "pause_p50_us": round(_pct(p, 0.5), 1),
        "pause_p99_us": round(_pct(p, 0.99), 1),
        "pause_max_us": round(p[-1], 1),
        "resume_p50_us": round(_pct(r, 0.5), 1),
        "resume_p99_us": round(_pct(r, 0.99), 1),
        "resume_max_us": round(r[-1], 1),
        "cycles": len(p),
    }


def _settle(
    read: Callable[[], int], clock: Callable[[], int], t1: int, spin_ns: int
) -> tuple[int, int]:
    """Watch the counter until it has not moved for the verification window.

    Returns its final value and when it was first seen (t1 if it never moved
    after the pause request returned). Spins for `spin_ns` (to time a stop that
    is still in flight finely), then naps: if the agent were still running on
    our CPU, spinning would hide it.
    """
    v = read()
    stopped_at = last_change = t1
    while True:
        x = read()
        now = clock()
        if x != v:
            v, stopped_at, last_change = x, now, now
        elif now - last_change >= VERIFY_WINDOW_NS:
            return v, stopped_at
        if now - t1 > spin_ns:
            time.sleep(NAP_S)


class _Agent:
    """One busy bench agent and the counter it bumps (a shared mmap'ed file)."""

    def __init__(self, backend: Any, name: str, tmp: Path, nice: int, jail: Any) -> None:
        path = tmp / f"{name}.counter"
        path.write_bytes(b"\0" * 8)
        # A jailed agent is another uid: it passes through the directory to its counter.
        os.chmod(path, 0o666)
        fd = os.open(path, os.O_RDWR)
        self.m = mmap.mmap(fd, 8)
        os.close(fd)
        self.h = backend.spawn(
            AgentSpec(
                name,
                [sys.executable, "-c", AGENT_CODE, str(path), str(nice)],
                jail=jail.request(rw=[path]) if jail is not None else None,
            )
        )

    def read(self) -> int:
        return int(struct.unpack_from("Q", self.m, 0)[0])

    def wait_started(self, what: str) -> None:
        deadline = time.monotonic() + 20
        while self.read() == 0:
            if time.monotonic() > deadline or not self.h.alive():
                raise MembraneError(f"{what}: bench agent did not start")
            time.sleep(0.01)

    def close(self) -> None:
        self.m.close()


class _Samples:
    def __init__(self) -> None:
        self.pause_us: list[float] = []
        self.resume_us: list[float] = []
        self.stop_us: list[float] = []

    def summary(self) -> dict[str, Any]:
        return _summary(self.pause_us, self.resume_us, self.stop_us)


def _cycles(a: _Agent, n: int, out: _Samples, what: str) -> None:
    """`n` pause/resume pairs; even ones confirmed by the kernel, odd ones by the counter."""
    h, read = a.h, a.read
    clock = time.perf_counter_ns
    for i in range(2 * n):
        # Even cycles: pause() waits for the kernel's confirmation.
        # Odd cycles: request only, and the counter alone says when the
        # agent really stopped (stop_*).
        confirm = i % 2 == 0
        t0 = clock()
        h.pause(wait=confirm)
        t1 = clock()
        v, stopped_at = _settle(read, clock, t1, spin_ns=0 if confirm else SPIN_STOP_NS)
        (out.pause_us if confirm else out.stop_us).append((stopped_at - t0) / 1e3)
        t0 = clock()
        h.resume()
        while read() == v:
            waited = clock() - t0
            if waited > RESUME_TIMEOUT_NS:
                raise MembraneError(f"{what}: agent did not resume")
            if waited > SPIN_NS:  # free our CPU for the agent (see _cgroup)
                time.sleep(NAP_S)
        if confirm:
            out.resume_us.append((clock() - t0) / 1e3)
        time.sleep(RUN_BETWEEN_NS / 1e9)


def bench_backend(
    name: str, cycles: int, cgroup_root: Path, agent_nice: int = 0, jail_mode: str = "off"
) -> dict[str, Any]:
    from maxwell.membrane import select_backend
    from maxwell.membrane._jail import Jail, JailConfig

    with tempfile.TemporaryDirectory(prefix="maxwell-bench-") as tmp:
        os.chmod(tmp, 0o711)
        jail = Jail(JailConfig(mode=jail_mode))
        backend = select_backend(name, cgroup_root)
        agent = None
        try:
            agent = _Agent(backend, "bench", Path(tmp), agent_nice,
                           jail if jail.level != "off" else None)
            agent.wait_started(name)
            out = _Samples()
            _cycles(agent, cycles, out, name)
            return {**out.summary(), "jail_level": jail.level}
        finally:
            backend.close()
            jail.close()
            if agent is not None:
                agent.close()


def bench_pair(
    name: str, cycles: int, cgroup_root: Path, agent_nice: int = 0, jail_mode: str = "auto",
    block: int = PAIR_BLOCK,
) -> dict[str, Any]:
    """The same cycles for a bare and a jailed agent, alternating every `block` cycles.

    Both agents live for the whole bench; the one not being measured stays frozen
    (it uses no CPU), so both see the same machine load in turn. The jailed agent is
    paused once before the first measured cycle (the first pause of a jailed agent
    moves its jail's helper processes out of its freezer cgroup, see _cgroup).
    """
    from maxwell.membrane import select_backend
    from maxwell.membrane._jail import Jail, JailConfig

    with tempfile.TemporaryDirectory(prefix="maxwell-bench-") as tmp:
        os.chmod(tmp, 0o711)
        jail = Jail(JailConfig(mode=jail_mode))
        backend = select_backend(name, cgroup_root)
        agents: list[_Agent] = []
        try:
            agents.append(_Agent(backend, "bench-bare", Path(tmp), agent_nice, None))
            agents.append(_Agent(backend, "bench-jail", Path(tmp), agent_nice,
                                 jail if jail.level != "off" else None))
            for a in agents:
                a.wait_started(name)
            bare, jailed = _Samples(), _Samples()
            agents[1].h.pause()
            done = 0
            while done < cycles:
                n = min(block, cycles - done)
                for a, out in zip(agents, (bare, jailed), strict=True):
                    v = a.read()
                    a.h.resume()
                    while a.read() == v:  # running again before its block starts
                        time.sleep(NAP_S)
                    time.sleep(RUN_BETWEEN_NS / 1e9)
                    _cycles(a, n, out, name)
                    a.h.pause()
                done += n
            return {"bare": bare.summary(), "jail": jailed.summary(),
                    "jail_level": jail.level, "block": block}
        finally:
            backend.close()
            jail.close()
            for a in agents:
                a.close()


def run(
    cycles: int,
    backends: list[str] | None,
    cgroup_root: Path,
    priority: bool,
    agent_nice: int = 0,
    jail_mode: str = "auto",
    spawn_samples: int = 20,
    jail_pair: bool = False,
) -> dict[str, Any]:
    """Benchmark each tier; `agent_nice` < 0 lets the agent beat other work to a CPU.

    `jail_pair`: also, per tier, a bare and a jailed agent in alternating blocks
    (`bench_pair`), for a comparison both sides of which saw the same load."""
    from maxwell.membrane import BACKEND_ORDER, available_backends, raise_priority

    avail = available_backends(cgroup_root)
    names = backends or [n for n in BACKEND_ORDER if avail[n].ok]
    skipped = {n: a.reason for n, a in avail.items() if n not in names and not a.ok}
    prio = raise_priority() if priority else "unchanged"
    # The other core: a burner outside the membrane, so the agent, the burner
    # and this process compete for the two CPUs.
    burner = subprocess.Popen(
        [sys.executable, "-c", "while True: pass"],
        stdin=subprocess.DEVNULL,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    out: dict[str, Any] = {}
    pair: dict[str, Any] = {}
    # Other work on the machine queues the agent behind it and sets the tail
    # (a task only freezes or stops once it runs): record how busy it was.
    load_before = os.getloadavg()[0]
    try:
        for n in names:
            out[n] = bench_backend(n, cycles, cgroup_root, agent_nice, jail_mode)
            if jail_pair:
                pair[n] = bench_pair(n, cycles, cgroup_root, agent_nice, jail_mode)
    finally:
        burner.kill()
        burner.wait()
    spawn = None
    if spawn_samples > 0 and names:
        from maxwell.membrane import _spawnbench

        # Without the burner: spawning is start-up work, not a race for a CPU.
        spawn = _spawnbench.run(names[0], spawn_samples, cgroup_root, jail_mode)
    return {
        "backends": out,
        # spawn() -> the agent's first write, bare and jailed (see _spawnbench).
        "spawn": spawn,
        # Only with jail_pair: {tier: {"bare": …, "jail": …}}, measured block-interleaved.
        "jail_pair": pair if jail_pair else None,
        "skipped": skipped,
        "priority": prio,
        "load": "1 burner",
        "agent_nice": agent_nice,
        "loadavg_1m": [round(load_before, 2), round(os.getloadavg()[0], 2)],
        "cpus": os.cpu_count(),
    }
