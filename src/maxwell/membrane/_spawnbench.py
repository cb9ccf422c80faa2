"""`maxwell bench membrane`'s spawn figure: spawn() → the agent's command runs, bare and jailed.

Each sample starts `/bin/sh -c 'echo > FIFO'` through the backend and times
from the spawn() call until the byte arrives on a FIFO this process holds open:
the whole path (uid reservation, mount list, seccomp program, fork, cgroup
writes, bwrap's namespaces, setpriv's drop, exec) up to the agent's first
write, and what CPU that costs (the supervisor's in spawn(), the agent tree's
from its cgroup), which unlike the wall time does not grow with the machine's
load. The same command without the jail gives the bare figure. Touches a
temporary directory, the agents and the cgroups it creates.
"""

from __future__ import annotations

import os
import select
import shutil
import statistics
import tempfile
import time
from pathlib import Path
from typing import Any

from maxwell.membrane._jail import Jail, JailConfig
from maxwell.membrane._types import AgentSpec, MembraneError

TIMEOUT_S = 10.0


def _one(backend: Any, name: str, fifo: Path, jail: Jail | None) -> tuple[float, float, float]:
    """(wall ms to the first write, supervisor CPU ms in spawn(), agent-tree CPU ms)."""
    rfd = os.open(fifo, os.O_RDONLY | os.O_NONBLOCK)
    try:
        sh = shutil.which("sh") or "/bin/sh"
        spec = AgentSpec(name, [sh, "-c", f"echo x > '{fifo}'"],
                         jail=jail.request(rw=[fifo]) if jail is not None else None)
        t0 = time.perf_counter()
        c0 = time.process_time()
        h = backend.spawn(spec)
        c1 = time.process_time()
        ready, _, _ = select.select([rfd], [], [], TIMEOUT_S)
        t1 = time.perf_counter()
        deadline = time.monotonic() + TIMEOUT_S
        while h.exit_status is None and time.monotonic() < deadline:
            time.sleep(0.001)
        # The whole tree's CPU (bwrap, setpriv, the shell) from the cgroup, once it exited.
        tree_cpu_s = h.usage().cpu_s
        h.kill()
        if not ready:
            raise MembraneError(f"spawn bench: {name} did not write within {TIMEOUT_S} s")
        return (t1 - t0) * 1000.0, (c1 - c0) * 1000.0, tree_cpu_s * 1000.0
    finally:
        os.close(rfd)
        if jail is not None:
            jail.release(name)


def run(backend_name: str, n: int, cgroup_root: Path, jail_mode: str = "auto") -> dict[str, Any]:
    from maxwell.membrane import select_backend

    backend = select_backend(backend_name, cgroup_root, clean_first=False)
    jail = Jail(JailConfig(mode=jail_mode))
    tmp = Path(tempfile.mkdtemp(prefix="maxwell-spawn-"))
    try:
        os.chmod(tmp, 0o711)  # the jailed uid passes through to the FIFO
        fifo = tmp / "fifo"
        os.mkfifo(fifo)
        os.chmod(fifo, 0o666)
        bare, jailed = [], []
        for i in range(n):  # interleaved, so load changes hit both alike
            bare.append(_one(backend, f"spawn-bare-{i}", fifo, None))
            jailed.append(_one(backend, f"spawn-jail-{i}", fifo, jail))
    finally:
        backend.close()
        jail.close()
        shutil.rmtree(tmp, ignore_errors=True)

    def med(xs: list[tuple[float, float, float]], k: int) -> float:
        return round(statistics.median(x[k] for x in xs), 2)

    wall_j = sorted(x[0] for x in jailed)
    return {
        "backend": backend.name,
        "jail_level": jail.level,
        "samples": n,
        # Wall time spawn() -> first write: what a run waits per agent; grows with load.
        "bare_median_ms": med(bare, 0),
        "bare_p90_ms": round(sorted(x[0] for x in bare)[int(0.9 * (n - 1))], 2),
        "jail_median_ms": med(jailed, 0),
        "jail_p90_ms": round(wall_j[int(0.9 * (n - 1))], 2),
        "jail_max_ms": round(wall_j[-1], 2),
        # CPU it costs (load-independent): the supervisor's inside spawn(), and the
        # agent tree's own (cgroup accounting; 0 where the tier has none).
        "bare_supervisor_cpu_ms": med(bare, 1),
        "jail_supervisor_cpu_ms": med(jailed, 1),
        "bare_tree_cpu_ms": med(bare, 2),
        "jail_tree_cpu_ms": med(jailed, 2),
        "loadavg_1m": round(os.getloadavg()[0], 2),
    }
