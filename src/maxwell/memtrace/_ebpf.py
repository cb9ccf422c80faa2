"""The exact backend: the eBPF program in bpf/memtrace.bpf.c, loaded through libbpf.

Agents are registered by v2 cgroup id (every thread and child of the agent is
in it) or, for agents outside cgroups, by process id (children inherit the
registration at fork, in the kernel). Counters are per-CPU, one slot per
agent, read in one batch syscall per tick. Touches the BPF syscall, the
object file next to the C source, tracefs (for the "tp" attachment) and
/proc (to prune exited pids from the pid map).
"""

from __future__ import annotations

import os
import struct
from collections.abc import Mapping, Sequence
from pathlib import Path

from maxwell.availability import Availability
from maxwell.memtrace import _libbpf

BPF_DIR = Path(__file__).resolve().parent / "bpf"
OBJECT_PATH = BPF_DIR / "memtrace.bpf.o"
BTF_PATH = Path("/sys/kernel/btf/vmlinux")
TRACEFS_EVENTS = (Path("/sys/kernel/tracing/events"), Path("/sys/kernel/debug/tracing/events"))

# Must match bpf/memtrace.bpf.c.
MAX_SLOTS = 256
MAX_CGROUPS = 1024
MAX_PIDS = 8192
_FREED = struct.Struct("QQ")  # bytes, calls

# Attachments of the same counting logic; see the C source for the trade-off.
DESIGNS = {
    "tp": ("tp_exit_munmap", "tp_exit_madvise"),
    "raw": ("raw_exit",),
}
_ALL_PROGRAMS = ("tp_exit_munmap", "tp_exit_madvise", "raw_exit", "inherit_on_fork")

# Capability bits (include/uapi/linux/capability.h).
_CAP_SYS_ADMIN = 21
_CAP_PERFMON = 38
_CAP_BPF = 39


def _cap_eff(procfs: Path = Path("/proc")) -> int:
    try:
        for line in (procfs / "self" / "status").read_text().splitlines():
            if line.startswith("CapEff:"):
                return int(line.split()[1], 16)
    except (OSError, ValueError):
        pass
    return 0


def tracefs_ready() -> bool:
    return any((p / "syscalls" / "sys_exit_munmap" / "id").exists() for p in TRACEFS_EVENTS)


def default_design() -> str:
    """The attachment to use: "raw".

    Measured here (2-vCPU Firecracker guest, C workload, CPU time, medians of 31
    alternating pairs, `maxwell bench memtrace`): "raw" adds ~130-230 ns per traced
    call and ~140 ns to every other syscall; "tp" adds ~280-400 ns per traced call
    (perf buffer per event, plus two helpers to reach the registers) and ~90 ns to
    other syscalls. An empty program costs about as much as this one in either
    attachment: the price is the tracepoint machinery, not the counting. "raw" also
    needs no tracefs. Pass design="tp" to trade per-call cost for system-wide cost.
    """
    return "raw"


def available(object_path: Path = OBJECT_PATH) -> Availability:
    """Cheap checks, no side effects: object built, BTF present, libbpf loadable, privileges."""
    if not object_path.exists():
        return Availability(
            False,
            f"{object_path.name} not built "
            "(run `make bpf`; needs clang, llvm, libbpf-dev, bpftool)",
        )
    if not BTF_PATH.exists():
        return Availability(
            False, f"{BTF_PATH} missing: kernel built without BTF (CONFIG_DEBUG_INFO_BTF)"
        )
    try:
        _libbpf.lib()
    except OSError as err:
        return Availability(False, str(err))
    caps = _cap_eff()
    has_admin = bool(caps >> _CAP_SYS_ADMIN & 1)
    has_bpf = bool(caps >> _CAP_BPF & 1) and bool(caps >> _CAP_PERFMON & 1)
    if not (has_admin or has_bpf):
        return Availability(
            False,
            f"not privileged (uid {os.geteuid()}, needs CAP_BPF+CAP_PERFMON "
            "or CAP_SYS_ADMIN; run as root)",
        )
    return Availability(True, "BPF object built, BTF present, libbpf loadable, privileged")


class EbpfTracer:
    """Exact bytes freed per agent, counted in the kernel."""

    source = "ebpf"
    exact = True
    label = "measured (eBPF, exact)"

    def __init__(
        self, design: str = "auto", object_path: Path = OBJECT_PATH, reason: str = ""
    ) -> None:
        if design == "auto":
            design = default_design()
        if design not in DESIGNS:
            raise ValueError(f"unknown eBPF design {design!r}; choose one of {sorted(DESIGNS)}")
        if design == "tp" and not tracefs_ready():
            raise _libbpf.LibbpfError(
                2,
                "design tp needs tracefs for the syscalls:* event ids; mount it "
                "(mount -t tracefs nodev /sys/kernel/tracing) or use design raw",
            )
        self.design = design
        wanted = set(DESIGNS[design]) | {"inherit_on_fork"}
        self._obj = _libbpf.BpfObject(object_path, {p: p in wanted for p in _ALL_PROGRAMS})
        try:
            self._ncpus = _libbpf.num_possible_cpus()
            self._cgroups = self._obj.map("cgroup_slots", 8, 4)
            self._pids = self._obj.map("pid_slots", 4, 4)
            self._freed = self._obj.map("freed", 4, _FREED.size * self._ncpus)
        except OSError:
            self._obj.close()
            raise
        self._slots: dict[str, int] = {}
        self._pid_agents: set[str] = set()
        self._leaders: dict[str, int] = {}
        self._batch_ok = True
        self.reason = reason or f"eBPF program attached ({design}: {', '.join(DESIGNS[design])})"

    # -- registration -------------------------------------------------------------------------

    def add(self, name: str, cgroup_id: int | None, pid: int) -> None:
        """Credit frees in `cgroup_id` (v2 cgroup inode) to `name`, or by `pid` and its children."""
        slot = self._slots.get(name)
        if slot is None:
            if len(self._slots) >= MAX_SLOTS:
                raise ValueError(f"at most {MAX_SLOTS} agents per tracer")
            slot = len(self._slots)
            self._slots[name] = slot
        value = struct.pack("I", slot)
        self._leaders[name] = pid
        if cgroup_id is not None:
            self._cgroups.update(struct.pack("Q", cgroup_id), value)
        else:
            self._pid_agents.add(name)
            self._pids.update(struct.pack("I", pid), value)

    # -- reading --------------------------------------------------------------------------------

    def _values(self) -> list[tuple[int, int]]:
        """(bytes, calls) per slot, summed over CPUs."""
        n = len(self._slots)
        stride = _FREED.size * self._ncpus
        raw: bytes | None = None
        if self._batch_ok:
            raw = self._freed.lookup_batch(MAX_SLOTS)
            self._batch_ok = raw is not None
        out: list[tuple[int, int]] = []
        for slot in range(n):
            if raw is not None:
                chunk = raw[slot * stride : (slot + 1) * stride]
            else:
                got = self._freed.lookup(struct.pack("I", slot))
                chunk = got if got is not None else bytes(stride)
            b = c = 0
            for cpu in range(self._ncpus):
                vb, vc = _FREED.unpack_from(chunk, cpu * _FREED.size)
                b += vb
                c += vc
            out.append((b, c))
        return out

    def read(self, pids: Mapping[str, Sequence[int]]) -> dict[str, int]:
        """Cumulative bytes freed per registered agent; keeps the pid map current and bounded."""
        if self._pid_agents:
            self._sync_pids(pids)
        values = self._values()
        return {name: values[slot][0] for name, slot in self._slots.items()}

    def read_calls(self) -> dict[str, int]:
        """Cumulative number of counted calls per agent (for benchmarks and diagnostics)."""
        values = self._values()
        return {name: values[slot][1] for name, slot in self._slots.items()}

    def attach(self) -> None:
        """Re-attach after `detach` (counters and registrations are kept)."""
        self._obj.attach()

    def detach(self) -> None:
        """Stop counting without unloading (benchmarks: with vs without, same everything else)."""
        self._obj.detach()

    def pid_map_size(self) -> int:
        return len(self._pids.keys())

    def _sync_pids(self, pids: Mapping[str, Sequence[int]]) -> None:
        """Register the agents' current processes; drop entries of processes that exited."""
        live: set[int] = set()
        for name in self._pid_agents:
            value = struct.pack("I", self._slots[name])
            for pid in pids.get(name, (self._leaders[name],)):
                live.add(pid)
                self._pids.update(struct.pack("I", pid), value, _libbpf.BPF_NOEXIST)
        for key in self._pids.keys():  # noqa: SIM118 (a BPF map, not a dict)
            (pid,) = struct.unpack("I", key)
            if pid not in live and not _is_process(pid):
                self._pids.delete(key)

    def close(self) -> None:
        self._obj.close()


def _is_process(pid: int) -> bool:
    """True if `pid` is a live thread-group leader (a thread id, or a zombie, is not)."""
    try:
        with open(f"/proc/{pid}/status", "rb") as f:
            state = tgid = None
            for line in f:
                if line.startswith(b"State:"):
                    state = line.split()[1]
                elif line.startswith(b"Tgid:"):
                    tgid = int(line.split()[1])
                    break
    except (OSError, ValueError):
        return False
    return tgid == pid and state not in (b"Z", b"X")
