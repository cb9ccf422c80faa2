"""Bytes freed per agent, for Landauer's tax: exact with eBPF, a labelled lower bound without.

`open_tracer()` picks the best backend that works here and says why in
`Tracer.reason`: the eBPF program (munmap and madvise DONTNEED/FREE/REMOVE,
counted in the kernel on successful return, keyed by the agent's v2 cgroup id
or by pid), else RSS-decrease sampling labelled "estimate (lower bound)".
The supervisor registers each agent with `add()` and calls `read()` about once
a tick; values are cumulative, so deltas give a tick's `bytes_freed`.
Detection never raises; it explains. May touch the BPF syscall, tracefs,
/sys/kernel/btf and /proc.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Protocol

from maxwell.availability import Availability, Check

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
    cannot load) or "rss". design: eBPF attachment, "auto", "raw" or "tp" (see bpf/).
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
    built = _ebpf.OBJECT_PATH.exists()
    checks.append(
        Check(
            "eBPF object",
            built,
            str(_ebpf.OBJECT_PATH) if built else "not built: `make bpf` (needs clang, bpftool)",
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
    tracefs = next((p for p in (Path("/sys/kernel/tracing"), Path("/sys/kernel/debug/tracing"))
                    if (p / "events" / "syscalls").is_dir()), None)
    checks.append(Check(
        "eBPF syscall tracepoints", True,
        f"syscalls tracepoints at {tracefs} (--design tp usable)" if tracefs else
        "tracefs not mounted: the default raw sys_exit tracepoint works without it; "
        "for --design tp: `mount -t tracefs nodev /sys/kernel/tracing`"))
    tools = {t: shutil.which(t) for t in ("clang", "bpftool")}
    missing = [t for t, where in tools.items() if where is None]
    checks.append(Check(
        "eBPF build tools", not missing,
        "clang and bpftool found" if not missing else
        f"missing {', '.join(missing)}: `sudo apt-get install clang llvm libbpf-dev bpftool`"))
    return checks
