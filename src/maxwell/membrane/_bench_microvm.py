"""`maxwell bench membrane --backend microvm`: boot time, pause/resume by cgroup freeze
and by QMP, and the membrane's cost per tick for a VM, on real QEMU.

The guest runs a counter that prints a line every few thousand increments to its
console (a file on the host). `pause_*`: request -> confirmed (the cgroup reports
`frozen 1`, or QMP `stop` has returned: QEMU answers once every vCPU has left
guest code); every `verify_every`-th cycle the console must then stay still for
a window (`moved_after_confirm` counts the cycles where it did not).
`resume_*`: request -> returned; `resume_seen_*`: request -> the console grows
again (includes the guest's print interval and the serial device, an upper bound).
`tick_us`: alive() + usage() + set_cpu() as the supervisor calls them each tick,
for the VM and for a plain process in the same tier. `idle_vmm_cpu_pct`: the
VMM's CPU while its guest agent sleeps (TCG's timer and device emulation).
Touches only the VMs, processes and cgroups it creates.
"""

from __future__ import annotations

import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from maxwell.membrane._bench import _pct
from maxwell.membrane._microvm import MicrovmBackend, MicrovmHandle, MicrovmOptions
from maxwell.membrane._types import AgentSpec, MembraneError

COUNTER = (
    "import sys\n"
    "i = 0\n"
    "while True:\n"
    "    i += 1\n"
    "    if i % 2000 == 0:\n"
    "        sys.stdout.write(f'{i}\\n'); sys.stdout.flush()\n"
)
SLEEPER = "import time\ntime.sleep(3600)\n"
STILL_WINDOW_S = 0.03
RUN_BETWEEN_S = 0.002
SEEN_TIMEOUT_S = 5.0


def _size(p: Path) -> int:
    try:
        return p.stat().st_size
    except OSError:
        return 0


def _stats(xs: list[float]) -> dict[str, float]:
    s = sorted(xs)
    return {"p50_us": round(_pct(s, 0.5), 1), "p99_us": round(_pct(s, 0.99), 1),
            "max_us": round(s[-1], 1)}  # fmt: skip


def _cycles(h: MicrovmHandle, log: Path, method: str, cycles: int,
            verify_every: int) -> dict[str, Any]:  # fmt: skip
    h.pause_method = method
    pause_us: list[float] = []
    resume_us: list[float] = []
    seen_us: list[float] = []
    moved = 0
    clock = time.perf_counter_ns
    for i in range(cycles):
        verify = i % verify_every == 0
        t0 = clock()
        h.pause()
        pause_us.append((clock() - t0) / 1e3)
        if verify:
            time.sleep(0.005)  # a console write already in flight may still land
            before = _size(log)
            time.sleep(STILL_WINDOW_S)
            if _size(log) != before:
                moved += 1
            base = _size(log)
        t0 = clock()
        h.resume()
        resume_us.append((clock() - t0) / 1e3)
        if verify:
            deadline = time.monotonic() + SEEN_TIMEOUT_S
            while _size(log) == base:
                if time.monotonic() > deadline:
                    raise MembraneError(f"{method}: the guest did not run again after resume")
                time.sleep(0.0002)
            seen_us.append((clock() - t0) / 1e3)
        time.sleep(RUN_BETWEEN_S)
    out: dict[str, Any] = {"cycles": cycles, "verified": len(seen_us),
                           "moved_after_confirm": moved}  # fmt: skip
    for key, xs in (("pause", pause_us), ("resume", resume_us), ("resume_seen", seen_us)):
        out.update({f"{key}_{k}": v for k, v in _stats(xs).items()})
    return out


def _tick_cost(h: Any, n: int = 300) -> dict[str, float]:
    xs = []
    for _ in range(n):
        t0 = time.perf_counter_ns()
        h.alive()
        h.usage()
        h.set_cpu(1.0)
        xs.append((time.perf_counter_ns() - t0) / 1e3)
    return _stats(xs)


def _renice(h: Any, nice: int) -> None:
    """Every thread of the VM's processes at `nice` (as --agent-nice does for a process)."""
    for pid in h.pids():
        try:
            tids = [int(t) for t in os.listdir(f"/proc/{pid}/task")]
        except OSError:
            continue
        for tid in tids:
            try:
                os.setpriority(os.PRIO_PROCESS, tid, nice)
            except OSError:  # the thread exited meanwhile
                continue


def run(cycles: int, priority: bool, *, boots: int = 3, verify_every: int = 10,
        options: MicrovmOptions | None = None, agent_nice: int = 0) -> dict[str, Any]:  # fmt: skip
    from maxwell.membrane import raise_priority

    prio = raise_priority() if priority else "unchanged"
    load_before = os.getloadavg()[0]
    backend = MicrovmBackend(options or MicrovmOptions())
    burner = None
    try:
        with tempfile.TemporaryDirectory(prefix="maxwell-vmbench-") as t:
            tmp = Path(t)
            boot_s = []
            idle_pct = None
            for k in range(boots):
                h = backend.spawn(AgentSpec(f"boot{k}", [sys.executable, "-c", SLEEPER],
                                            log_path=tmp / f"boot{k}.log"))  # fmt: skip
                assert isinstance(h, MicrovmHandle)
                boot_s.append(round(h.wait_ready(), 3))
                if k == 0:
                    time.sleep(2.0)  # the agent's Python start-up, then it sleeps
                    c0, w0 = h.usage().cpu_s, time.monotonic()
                    time.sleep(5.0)
                    idle_pct = round(100 * (h.usage().cpu_s - c0) / (time.monotonic() - w0), 1)
                h.kill()
            log = tmp / "counter.log"
            h = backend.spawn(AgentSpec("counter", [sys.executable, "-c", COUNTER], log_path=log))
            assert isinstance(h, MicrovmHandle)
            h.wait_ready()
            if agent_nice:
                _renice(h, agent_nice)
            deadline = time.monotonic() + 60
            while _size(log) < 4096:
                if time.monotonic() > deadline:
                    raise MembraneError("bench guest printed nothing in 60 s")
                time.sleep(0.05)
            # As in the process tiers' bench: the other core is loaded too.
            burner = subprocess.Popen([sys.executable, "-c", "while True: pass"],
                                      stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                                      stderr=subprocess.DEVNULL)  # fmt: skip
            methods = {m: _cycles(h, log, m, cycles, verify_every) for m in ("freeze", "qmp")}
            proc = backend.inner.spawn(AgentSpec("proc", [sys.executable, "-c", SLEEPER]))
            tick = {"microvm": _tick_cost(h), "process": _tick_cost(proc)}
            proc.kill()
            h.kill()
    finally:
        if burner is not None:
            burner.kill()
            burner.wait()
        backend.close()
    best = min(methods, key=lambda m: methods[m]["pause_p99_us"])
    return {
        "accel": backend.accel, "reason": backend.reason, "inner": backend.inner.name,
        "boot_s": boot_s, "boot_median_s": sorted(boot_s)[len(boot_s) // 2],
        "idle_vmm_cpu_pct": idle_pct, "pause": methods, "faster_p99": best,
        "default_pause": backend.pause_method, "tick_us": tick, "priority": prio,
        "load": "1 burner during the pause cycles", "agent_nice": agent_nice,
        "loadavg_1m": [round(load_before, 2), round(os.getloadavg()[0], 2)],
        "cpus": os.cpu_count(),
    }  # fmt: skip
