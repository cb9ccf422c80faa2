"""`maxwell bench membrane`: pause/resume latency of each tier, confirmed by the agent itself.

Starts, per available tier, a busy agent that increments a counter in a shared
file it mmaps, and a burner outside the membrane that loads the other core.
`pause_*`: request → confirmed stopped (pause() returns after the kernel's
confirmation, and the counter then stays still for a verification window; if it
still moved, the stop time is when it last moved). `stop_*`: the same request
without waiting for the kernel (pause(wait=False)); the counter alone tells when
the agent stopped. `resume_*`: request → the counter moves again. The agent runs jailed at the
level `--jail` gives (default: the best here), and `spawn` times spawn() up to
the agent's first write, bare and jailed. Touches only the processes and
cgroups it creates.
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


def bench_backend(
    name: str, cycles: int, cgroup_root: Path, agent_nice: int = 0, jail_mode: str = "off"
) -> dict[str, Any]:
    from maxwell.membrane import select_backend
    from maxwell.membrane._jail import Jail, JailConfig

    with tempfile.TemporaryDirectory(prefix="maxwell-bench-") as tmp:
        counter_path = Path(tmp) / "counter"
        counter_path.write_bytes(b"\0" * 8)
        # A jailed agent is another uid: it passes through the directory to its counter.
        os.chmod(tmp, 0o711)
        os.chmod(counter_path, 0o666)
        jail = Jail(JailConfig(mode=jail_mode))
        fd = os.open(counter_path, os.O_RDWR)
        m = mmap.mmap(fd, 8)
        os.close(fd)
        unpack = struct.unpack_from

        def read() -> int:
            return int(unpack("Q", m, 0)[0])

        backend = select_backend(name, cgroup_root)
        try:
            h = backend.spawn(
                AgentSpec(
                    "bench",
                    [sys.executable, "-c", AGENT_CODE, str(counter_path), str(agent_nice)],
                    jail=jail.request(rw=[counter_path]) if jail.level != "off" else None,
                )
            )
            deadline = time.monotonic() + 20
            while read() == 0:
                if time.monotonic() > deadline or not h.alive():
                    raise MembraneError(f"{name}: bench agent did not start")
                time.sleep(0.01)
            pause_us: list[float] = []
            resume_us: list[float] = []
            clock = time.perf_counter_ns
            stop_us: list[float] = []
            for i in range(2 * cycles):
                # Even cycles: pause() waits for the kernel's confirmation.
                # Odd cycles: request only, and the counter alone says when the
                # agent really stopped (stop_*).
                confirm = i % 2 == 0
                t0 = clock()
                h.pause(wait=confirm)
                t1 = clock()
                v, stopped_at = _settle(read, clock, t1, spin_ns=0 if confirm else SPIN_STOP_NS)
                (pause_us if confirm else stop_us).append((stopped_at - t0) / 1e3)
                t0 = clock()
                h.resume()
                while read() == v:
                    waited = clock() - t0
                    if waited > RESUME_TIMEOUT_NS:
                        raise MembraneError(f"{name}: agent did not resume")
                    if waited > SPIN_NS:  # free our CPU for the agent (see _cgroup)
                        time.sleep(NAP_S)
                if confirm:
                    resume_us.append((clock() - t0) / 1e3)
                time.sleep(RUN_BETWEEN_NS / 1e9)
            return {**_summary(pause_us, resume_us, stop_us), "jail_level": jail.level}
        finally:
            backend.close()
            jail.close()
            m.close()


def run(
    cycles: int,
    backends: list[str] | None,
    cgroup_root: Path,
    priority: bool,
    agent_nice: int = 0,
    jail_mode: str = "auto",
    spawn_samples: int = 20,
) -> dict[str, Any]:
    """Benchmark each tier; `agent_nice` < 0 lets the agent beat other work to a CPU."""
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
    # Other work on the machine queues the agent behind it and sets the tail
    # (a task only freezes or stops once it runs): record how busy it was.
    load_before = os.getloadavg()[0]
    try:
        for n in names:
            out[n] = bench_backend(n, cycles, cgroup_root, agent_nice, jail_mode)
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
        "skipped": skipped,
        "priority": prio,
        "load": "1 burner",
        "agent_nice": agent_nice,
        "loadavg_1m": [round(load_before, 2), round(os.getloadavg()[0], 2)],
        "cpus": os.cpu_count(),
    }
