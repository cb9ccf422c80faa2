"""Small agent programs (Python source) for the membrane tests, plus helpers to wait on them."""

from __future__ import annotations

import mmap
import os
import struct
import sys
import time
from pathlib import Path

PY = sys.executable

# Parent increments slot 0 and a forked child slot 1 of a shared 16-byte file.
TWO_COUNTERS = """
import mmap, os, struct, sys
fd = os.open(sys.argv[1], os.O_RDWR)
m = mmap.mmap(fd, 16)
slot = 8 if os.fork() == 0 else 0
i = 0
while True:
    i += 1
    struct.pack_into("Q", m, slot, i)
"""

# Double-forks a grandchild that leaves the session (setsid), writes its pid to
# argv[1] and burns CPU; the agent itself then sleeps.
DOUBLE_FORK = """
import os, sys, time
if os.fork() == 0:
    os.setsid()
    if os.fork() == 0:
        with open(sys.argv[1] + ".tmp", "w") as f:
            f.write(str(os.getpid()))
        os.rename(sys.argv[1] + ".tmp", sys.argv[1])
        while True:
            pass
    os._exit(0)
os.wait()
while True:
    time.sleep(1)
"""

# A child burns argv[2] seconds of its own CPU, writes argv[1], then sleeps.
CHILD_BURNS = """
import os, sys, time
target = float(sys.argv[2])
if os.fork() == 0:
    while time.process_time() < target:
        pass
    open(sys.argv[1], "w").write("done")
    while True:
        time.sleep(1)
while True:
    time.sleep(1)
"""

BURNER = "while True: pass"

# Tries to fork argv[2] sleeping children; writes how many forks succeeded.
FORK_BOMB = """
import os, sys, time
ok = 0
for _ in range(int(sys.argv[2])):
    try:
        if os.fork() == 0:
            time.sleep(1000)
            os._exit(0)
        ok += 1
    except OSError:
        pass
open(sys.argv[1] + ".tmp", "w").write(str(ok))
os.rename(sys.argv[1] + ".tmp", sys.argv[1])
try:
    time.sleep(1000)
finally:
    b.close()
"""

# Touches argv[1] MiB of memory, then sleeps.
MEMORY_BOMB = """
import sys, time
b = bytearray(int(sys.argv[1]) * 1024 * 1024)
for i in range(0, len(b), 4096):
    b[i] = 1
try:
    time.sleep(1000)
finally:
    b.close()
"""


class Counters:
    """Reads the two counters TWO_COUNTERS writes."""

    def __init__(self, path: Path) -> None:
        path.write_bytes(b"\0" * 16)
        fd = os.open(path, os.O_RDWR)
        self._m = mmap.mmap(fd, 16)
        os.close(fd)

    def read(self) -> tuple[int, int]:
        a, b = struct.unpack_from("QQ", self._m, 0)
        return int(a), int(b)


def wait_for(cond, timeout_s: float = 20.0, what: str = "condition") -> None:  # type: ignore[no-untyped-def]
    deadline = time.monotonic() + timeout_s
    while not cond():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.01)


def wait_file(path: Path, timeout_s: float = 20.0) -> str:
    wait_for(path.exists, timeout_s, str(path))
    return path.read_text()


def exists(pid: int) -> bool:
    """True if /proc still has the pid (alive or zombie)."""
    return os.path.exists(f"/proc/{pid}")

# A supervisor that spawns two agents (each with a double-forked grandchild),
# optionally freezes them, prints what it made as one JSON line, and waits to be
# killed. argv: tier, "run"|"frozen"|"sigterm", scratch dir, agent program.
# "sigterm": the usual supervisor pattern, SIGTERM -> SystemExit -> close().
SUPERVISOR = """
import json, os, signal, sys, time
from pathlib import Path
from maxwell.membrane import AgentSpec
from maxwell.membrane._cgroup import CgroupBackend
from maxwell.membrane._signals import SignalsBackend
tier, mode, tmp = sys.argv[1], sys.argv[2], Path(sys.argv[3])
if tier == "signals":
    b = SignalsBackend()
elif tier == "cgroup2-freeze":
    b = CgroupBackend("cgroup2", Path("/sys/fs/cgroup"), allow_no_cpu=True)
else:
    b = CgroupBackend(tier, Path("/sys/fs/cgroup"))
prog = sys.argv[4]
handles = [b.spawn(AgentSpec(f"a{i}", [sys.executable, "-c", prog, str(tmp / f"gc{i}")]))
           for i in range(2)]
grandchildren = []
for i in range(2):
    p = tmp / f"gc{i}"
    while not p.exists():
        time.sleep(0.01)
    grandchildren.append(int(p.read_text()))
if mode in ("frozen", "sigterm"):
    for h in handles:
        h.pause()
if mode == "sigterm":
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
pids = sorted({pid for h in handles for pid in h.pids()} | set(grandchildren))
dirs = [str(d) for d in getattr(b, "sup_dirs", {}).values()]
print(json.dumps({"sup": b.supervisor_id, "pids": pids, "dirs": dirs}), flush=True)
try:
    time.sleep(1000)
finally:
    b.close()
"""
