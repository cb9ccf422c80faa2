"""Bytes freed per agent, for Landauer's tax: exact with eBPF, a labelled lower bound without.

What counts as freed is the kernel's answer, not a list of syscalls: a page
of memory the agent held, whose contents exist nowhere else, given back to
the kernel. The eBPF tracer (`_ebpf`, bpf/memtrace.bpf.c) counts it where the
kernel accounts for it, in the agent's memory cgroup statistics:

- counted: anonymous pages unmapped for the last time (no process maps them
  any more) and shmem/tmpfs/memfd pages removed from their file, in the
  agent's context — so munmap, madvise DONTNEED/DONTNEED_LOCKED/REMOVE,
  process_madvise, brk and mremap shrinking, mmap(MAP_FIXED) over written
  pages, the 32-bit int 0x80 entry, a memfd truncated, io_uring's madvise and
  process exit (a forked child's own pages too) are all one case; and pages
  given up with MADV_FREE, when reclaim discards them (MADV_FREE is lazy: a
  page written again before reclaim is kept, nothing is erased). Huge pages
  count their 512 base pages. Sizes are whole 4 KiB pages (the kernel's unit);
  address space never written was never resident and frees nothing.
- not counted, and why: pages the kernel moves on its own — migration,
  compaction, THP collapse, swap-out (the data survives: nothing erased);
  clean page cache dropped under pressure, or a file mapping unmapped (the
  data is still on disk or in the cache); kernel memory (page tables, slab,
  socket buffers: the kernel's own bookkeeping, not the agent's data); pages
  of a fork shared with the parent, when only the child's mapping goes (the
  parent still holds them). With swap, an anonymous page swapped out is
  counted when it leaves memory (and again if swapped in and freed); this
  host has none.
- counted although nothing is lost: pages an agent asks the kernel to replace
  by copies outside a page fault — madvise(MADV_COLLAPSE) into a huge page,
  move_pages/mbind migration on a multi-node host. The agent pays for its own
  request; it is never a way to pay less (subtracting them would be, since the
  kernel does not say how many small pages a collapse replaced).

For Landauer's bound what matters is logically irreversible erasure: the
kernel zeroes a freed page before anyone else gets it, and only the copy the
agent gave back is lost; moved or cached copies are not erasures. Attribution
is by the page's memory cgroup (right even when reclaim runs in kswapd or in
another process), so the membrane's per-agent memory cgroup is the key.

`open_tracer()` picks the best backend that works here and says why in
`Tracer.reason`: the eBPF program, else RSS-decrease sampling (`_rss`, which
states the ways it sees) labelled "estimate (lower bound)". The supervisor
registers each agent with `add()` and calls `read()` about once a tick;
values are cumulative, so deltas give a tick's `bytes_freed`. Detection never
raises; it explains. May touch the BPF syscall, /sys/kernel/btf, /proc and
(for tests and the benchmark) temporary cgroups of its own.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Protocol

from maxwell.common import Availability, Check

__all__ = ["MemtraceError", "Tracer", "available_backends", "doctor_checks", "open_tracer"]


class MemtraceError(RuntimeError):
    """The requested backend cannot run here (message says why and what to do)."""


class Tracer(Protocol):
    """Cumulative bytes freed per agent."""

    source: str  # "ebpf" | "rss-sampling"
    exact: bool  # True for eBPF; False = estimate (lower bound)
    label: str  # "measured (eBPF, exact)" | "estimate (lower bound)"
    reason: str  # why this backend (and why not the better one)

    def add(self, name: str, cgroup_id: int | None, pid: int) -> None: ...

    def read(self, pids: Mapping[str, Sequence[int]]) -> dict[str, int]: ...

    def close(self) -> None: ...


def available_backends() -> dict[str, Availability]:
    """Whether each backend can run here, without loading anything into the kernel."""
    from maxwell.memtrace import _ebpf

    return {
        "ebpf": _ebpf.available(),
        "rss": Availability(True, "RSS sampling through /proc works everywhere (lower bound)"),
    }


def open_tracer(
    prefer: str = "auto", design: str = "auto", object_path: Path | None = None
) -> Tracer:
    """The best tracer here: "ebpf" if it loads, else the "rss" fallback (reason says why).

    prefer: "auto" (fall back, explained in `reason`), "ebpf" (raise MemtraceError if it
    cannot load) or "rss". design: eBPF programs, "auto"/"page" (counting) or "empty"
    (the benchmark's floor, counts nothing).
    object_path: the compiled BPF object (default: bpf/memtrace.bpf.o next to the source).
    """
    from maxwell.memtrace import _ebpf, _libbpf, _rss

    if prefer not in ("auto", "ebpf", "rss"):
        raise ValueError(f"unknown memtrace backend {prefer!r}; choose auto, ebpf or rss")
    if prefer == "rss":
        return _rss.RssTracer(reason="RSS sampling requested")
    obj = object_path if object_path is not None else _ebpf.OBJECT_PATH
    why = _ebpf.available(obj)
    if why.ok:
        try:
            return _ebpf.EbpfTracer(design=design, object_path=obj)
        except (OSError, ValueError) as err:
            msg = str(err)
            if isinstance(err, _libbpf.LibbpfError) and err.errno in (1, 13):
                msg += " (not permitted: run as root or grant CAP_BPF+CAP_PERFMON)"
            why = Availability(False, f"eBPF program failed to load: {msg}")
    if prefer == "ebpf":
        raise MemtraceError(why.reason)
    return _rss.RssTracer(reason=f"eBPF unavailable: {why.reason}; sampling RSS decreases instead")


def doctor_checks() -> list[Check]:
    """`maxwell doctor` lines: which memory tracer a run would use, and why."""
    from maxwell.memtrace import _ebpf

    checks = []
    try:
        tracer = open_tracer("auto")
    except Exception as err:  # doctor must report, never crash
        return [Check("memory-free tracing", False, f"tracer failed: {err}")]
    try:
        checks.append(
            Check("memory-free tracing", tracer.exact, f"{tracer.label}: {tracer.reason}")
        )
    finally:
        tracer.close()
    checks += _prerequisite_checks()
    built = _ebpf.is_elf(_ebpf.OBJECT_PATH)
    checks.append(
        Check(
            "eBPF object",
            built,
            str(_ebpf.OBJECT_PATH) if built else "not built: `make bpf` (needs clang, bpftool: "
            "`sudo apt-get install clang llvm libbpf-dev bpftool`)",
        )
    )
    return checks


def _prerequisite_checks() -> list[Check]:
    """What the eBPF tracer needs from the kernel and the toolchain, each with its fix."""
    import os
    import shutil

    btf = Path("/sys/kernel/btf/vmlinux")
    checks = [
        Check("eBPF BTF", btf.is_file(),
              str(btf) if btf.is_file() else "no kernel BTF: a kernel built with "
              "CONFIG_DEBUG_INFO_BTF=y is needed for the CO-RE program (fallback: RSS sampling)"),
        Check("eBPF privileges", os.geteuid() == 0,
              "root" if os.geteuid() == 0 else "not root: loading BPF needs CAP_BPF and "
              "CAP_PERFMON (or root); without them Maxwell samples RSS instead"),
    ]
    from maxwell.memtrace import _ebpf

    missing = _ebpf.missing_tracepoints() if btf.is_file() else _ebpf.TRACEPOINTS
    checks.append(Check(
        "eBPF memcg tracepoints", not missing,
        f"{', '.join(_ebpf.TRACEPOINTS)} in BTF (raw tracepoints: no tracefs needed, "
        "no hook on any syscall)" if not missing else
        f"missing {', '.join(missing)}: a kernel with the memcg tracepoints is needed "
        "(fallback: RSS sampling)"))
    memcg = _ebpf.memory_controller_enabled()
    checks.append(Check(
        "memory cgroup controller", memcg,
        "enabled (frees are attributed to each agent's memory cgroup)" if memcg else
        "disabled (cgroup_disable=memory?): the eBPF tracer cannot count; RSS sampling instead"))
    tools = {t: shutil.which(t) for t in ("clang", "bpftool")}
    no_tools = [t for t, where in tools.items() if where is None]
    checks.append(Check(
        "eBPF build tools", not no_tools,
        "clang and bpftool found" if not no_tools else
        f"missing {', '.join(no_tools)}: `sudo apt-get install clang llvm libbpf-dev bpftool`"))
    return checks
