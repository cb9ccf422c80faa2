"""The exact backend: the eBPF program in bpf/memtrace.bpf.c, loaded through libbpf.

It counts pages where the kernel accounts for them (memory cgroup statistics:
an anonymous page unmapped for the last time, a shmem page removed, a lazily
freed page reclaimed), keyed by the agent's memory cgroup, which the membrane
gives every agent (v1 `memory` on a hybrid host, v2 otherwise). Agents whose
memory cgroup is shared fall back to the current task's v2 cgroup id, then to
the process id (children inherit the registration at fork, in the kernel).
Counters are per-CPU, one slot per agent, read in one batch syscall per tick.
Uses BTF raw tracepoints only, so no tracefs. Touches the BPF syscall, the
object file next to the C source, /sys/kernel/btf, /proc (memory cgroup of
an agent, pruning exited pids) and /proc/cgroups.
"""

from __future__ import annotations

import functools
import os
import struct
from collections.abc import Mapping, Sequence
from pathlib import Path

from maxwell.common import Availability
from maxwell.memtrace import _cgroup, _libbpf

BPF_DIR = Path(__file__).resolve().parent / "bpf"
OBJECT_PATH = BPF_DIR / "memtrace.bpf.o"
BTF_PATH = Path("/sys/kernel/btf/vmlinux")
PROCFS = Path("/proc")

# Must match bpf/memtrace.bpf.c.
MAX_SLOTS = 256
MAX_CGROUPS = 1024
MAX_PIDS = 8192
_FREED = struct.Struct("QQq")  # bytes, calls, kernel_pages (signed)
PAGE_BYTES = 4096  # the unit of the memcg page statistics on x86_64
_CONFIG_CGROUP_KEYS = 1
_CONFIG_PID_KEYS = 2

# "page": the counting programs; "empty": programs that return at once on the same
# hooks (the benchmark's floor: what the tracepoint dispatch alone costs).
DESIGNS = {
    "page": ("page_unmapped", "inherit_on_fork"),
    "empty": ("empty_lruvec",),
}
_ALL_PROGRAMS = tuple(dict.fromkeys(p for progs in DESIGNS.values() for p in progs))
# The kernel's tracepoints the programs attach to (BTF names, `btf_trace_<name>`).
TRACEPOINTS = ("mod_memcg_lruvec_state", "sched_process_fork")

# Capability bits (include/uapi/linux/capability.h).
_CAP_SYS_ADMIN = 21
_CAP_PERFMON = 38
_CAP_BPF = 39


def _cap_eff(procfs: Path = PROCFS) -> int:
    try:
        for line in (procfs / "self" / "status").read_text().splitlines():
            if line.startswith("CapEff:"):
                return int(line.split()[1], 16)
    except (OSError, ValueError):
        pass
    return 0


@functools.lru_cache(maxsize=4)
def missing_tracepoints(btf_path: Path = BTF_PATH) -> tuple[str, ...]:
    """Tracepoints the program needs that this kernel's BTF does not describe."""
    try:
        blob = btf_path.read_bytes()  # ~5 MB; sysfs files cannot be mmapped
    except OSError:
        return TRACEPOINTS
    return tuple(t for t in TRACEPOINTS if blob.find(b"btf_trace_" + t.encode() + b"\0") < 0)


def memory_controller_enabled(procfs: Path = PROCFS) -> bool:
    """True if the kernel runs the memory controller (not booted with cgroup_disable=memory)."""
    try:
        for line in (procfs / "cgroups").read_text().splitlines():
            f = line.split()
            if f and f[0] == "memory":
                return len(f) >= 4 and f[3] == "1"
    except OSError:
        pass
    return False


def is_elf(path: Path) -> bool:
    """True for a real object file (an empty or foreign file in its place is "not built")."""
    try:
        with open(path, "rb") as f:
            return f.read(4) == b"\x7fELF"
    except OSError:
        return False


def default_design() -> str:
    """The counting programs ("page"); "empty" exists only to measure the floor."""
    return "page"


def available(object_path: Path = OBJECT_PATH, procfs: Path = PROCFS) -> Availability:
    """Cheap checks, no side effects: object, BTF and tracepoints, memcg, libbpf, privileges.

    Every missing prerequisite is named (joined by "; "), each with its fix.
    """
    why: list[str] = []
    if not is_elf(object_path):
        why.append(
            f"{object_path.name} not built "
            "(run `make bpf`; needs clang, llvm, libbpf-dev, bpftool: "
            "`sudo apt-get install clang llvm libbpf-dev bpftool`)"
        )
    if not BTF_PATH.exists():
        why.append(f"{BTF_PATH} missing: kernel built without BTF (CONFIG_DEBUG_INFO_BTF)")
    else:
        missing = missing_tracepoints()
        if missing:
            why.append(
                f"kernel lacks the tracepoint(s) {', '.join(missing)} (a kernel with the "
                "memcg tracepoints of include/trace/events/memcg.h is needed)"
            )
    if not memory_controller_enabled(procfs):
        why.append("memory cgroup controller disabled (cgroup_disable=memory): no page accounting")
    try:
        _libbpf.lib()
    except OSError as err:
        why.append(str(err))
    caps = _cap_eff(procfs)
    has_admin = bool(caps >> _CAP_SYS_ADMIN & 1)
    has_bpf = bool(caps >> _CAP_BPF & 1) and bool(caps >> _CAP_PERFMON & 1)
    if not (has_admin or has_bpf):
        why.append(
            f"not privileged (uid {os.geteuid()}, needs CAP_BPF+CAP_PERFMON "
            "or CAP_SYS_ADMIN; run as root)"
        )
    if why:
        return Availability(False, "; ".join(why))
    return Availability(
        True, "BPF object built, BTF and memcg tracepoints present, libbpf loadable, privileged"
    )


class EbpfTracer:
    """Exact bytes freed per agent, counted in the kernel."""

    source = "ebpf"
    exact = True
    label = "measured (eBPF, exact)"

    def __init__(
        self,
        design: str = "auto",
        object_path: Path = OBJECT_PATH,
        reason: str = "",
        procfs: Path = PROCFS,
    ) -> None:
        if design == "auto":
            design = default_design()
        if design not in DESIGNS:
            raise ValueError(f"unknown eBPF design {design!r}; choose one of {sorted(DESIGNS)}")
        self.design = design
        self._procfs = procfs
        wanted = set(DESIGNS[design])
        self._obj = _libbpf.BpfObject(object_path, {p: p in wanted for p in _ALL_PROGRAMS})
        try:
            self._ncpus = _libbpf.num_possible_cpus()
            self._memcgs = self._obj.map("memcg_slots", 8, 4)
            self._cgroups = self._obj.map("cgroup_slots", 8, 4)
            self._pids = self._obj.map("pid_slots", 4, 4)
            self._freed = self._obj.map("freed", 4, _FREED.size * self._ncpus)
            self._settings = self._obj.map("settings", 4, 4)
        except OSError:
            self._obj.close()
            raise
        self._mounts = _cgroup.mounts(procfs)
        own = _cgroup.memcg_dir(os.getpid(), procfs, self._mounts)
        self._own_memcg = own
        self._slots: dict[str, int] = {}
        self._pid_agents: set[str] = set()
        self._leaders: dict[str, int] = {}
        self.keyed_by: dict[str, str] = {}  # agent -> "memcg" | "cgroup" | "pid"
        self._cgroup_ids: dict[str, int | None] = {}
        self._memcg_owner: dict[int, str] = {}  # memcg id -> agent ("" once shared)
        self._config = 0
        self._kernel_deficit: list[int] = []  # per slot: the largest kernel-context drop seen
        self._batch_ok = True
        self.reason = reason or (
            f"eBPF program attached ({design}: {', '.join(DESIGNS[design])}) on the memory "
            "cgroup page statistics; agents keyed by memory cgroup"
        )

    # -- registration -------------------------------------------------------------------------

    def _dedicated_memcg(self, pid: int) -> int | None:
        """The id of `pid`'s memory cgroup if it is its own (not ours, not a hierarchy root)."""
        d = _cgroup.memcg_dir(pid, self._procfs, self._mounts)
        if d is None or d == self._own_memcg or d in self._mounts:
            return None
        try:
            return _cgroup.cgroup_id(d)
        except OSError:
            return None

    def add(self, name: str, cgroup_id: int | None, pid: int) -> None:
        """Credit frees of pages charged to `pid`'s memory cgroup (when it is the agent's own)
        to `name`, and frees made from inside `cgroup_id` (v2) or by `pid` and its children."""
        slot = self._slots.get(name)
        if slot is None:
            if len(self._slots) >= MAX_SLOTS:
                raise ValueError(f"at most {MAX_SLOTS} agents per tracer")
            slot = len(self._slots)
            self._slots[name] = slot
        value = struct.pack("I", slot)
        self._leaders[name] = pid
        while len(self._kernel_deficit) <= slot:
            self._kernel_deficit.append(0)
        self._cgroup_ids[name] = cgroup_id
        memcg = self._dedicated_memcg(pid)
        owner = self._memcg_owner.get(memcg) if memcg is not None else None
        if memcg is not None and owner not in (None, name):
            # Two agents in one memory cgroup: its pages cannot tell them apart.
            self._memcgs.delete(struct.pack("Q", memcg))
            self._memcg_owner[memcg] = ""
            self._key_by_context(owner, self._cgroup_ids[owner], self._leaders[owner])
            memcg = None
        if memcg is not None and owner != "":
            # Its pages are charged there from before exec (the membrane joins it first).
            self._memcgs.update(struct.pack("Q", memcg), value)
            self._memcg_owner[memcg] = name
            self.keyed_by[name] = "memcg"
        else:
            self._key_by_context(name, cgroup_id, pid)

    def _key_by_context(self, name: str, cgroup_id: int | None, pid: int) -> None:
        """Credit `name` with frees made in its tasks' context (v2 cgroup id, else pid)."""
        value = struct.pack("I", self._slots[name])
        if cgroup_id is not None:
            self._cgroups.update(struct.pack("Q", cgroup_id), value)
            self._set_config(_CONFIG_CGROUP_KEYS)
            self.keyed_by[name] = "cgroup"
        else:
            self._pid_agents.add(name)
            self._pids.update(struct.pack("I", pid), value)
            self._set_config(_CONFIG_PID_KEYS)
            self.keyed_by[name] = "pid"

    def _set_config(self, bit: int) -> None:
        if not self._config & bit:
            self._config |= bit
            self._settings.update(struct.pack("I", 0), struct.pack("I", self._config))

    # -- reading --------------------------------------------------------------------------------

    def _values(self) -> list[tuple[int, int]]:
        """(bytes, calls) per slot, summed over CPUs, the kernel-context deficit included."""
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
            b = c = k = 0
            for cpu in range(self._ncpus):
                vb, vc, vk = _FREED.unpack_from(chunk, cpu * _FREED.size)
                b += vb
                c += vc
                k += vk
            # Anonymous pages the kernel dropped on its own (lazily freed pages reclaimed)
            # leave kernel_pages negative; migrations in flight are not taken back later.
            deficit = self._kernel_deficit[slot] = max(self._kernel_deficit[slot], -k)
            out.append((b + deficit * PAGE_BYTES, c))
        return out

    def read(self, pids: Mapping[str, Sequence[int]]) -> dict[str, int]:
        """Cumulative bytes freed per registered agent; keeps the pid map current and bounded."""
        if self._pid_agents:
            self._sync_pids(pids)
        values = self._values()
        return {name: values[slot][0] for name, slot in self._slots.items()}

    def read_calls(self) -> dict[str, int]:
        """Cumulative number of credited statistic updates per agent (one per folio unmapped
        or removed, at most a page table's worth; for tests and diagnostics)."""
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
