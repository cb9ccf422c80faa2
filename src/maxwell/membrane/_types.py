"""Records of the membrane: what an agent is, what it used, what a cleanup did.

Plain frozen dataclasses and NamedTuples shared by every backend; no I/O here.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, NamedTuple

if TYPE_CHECKING:
    from maxwell.membrane._jail import JailRequest

# Agent names become cgroup directory names and environment tags, so they are
# restricted to characters that are safe in both.
_NAME_RE = re.compile(r"^(?!\.\.?$)[A-Za-z0-9_.-]{1,64}$")


class MembraneError(RuntimeError):
    """A containment operation failed (the message names the file or process)."""


@dataclass(frozen=True)
class AgentSpec:
    """How to start one agent. `env` is added to the supervisor's environment
    (jailed: to an allow-listed subset of it, see `_jail.Jail`)."""

    name: str
    argv: Sequence[str]
    env: Mapping[str, str] = field(default_factory=dict)
    cwd: Path | None = None
    pids_max: int | None = None
    memory_max_bytes: int | None = None
    log_path: Path | None = None
    # Run the agent jailed (its own uid, namespaces, seccomp: see `_jail`); None: as is.
    jail: JailRequest | None = None
    # CPUs the agent may use at once (its workers/slots): a microVM's -smp.
    cpus: int | None = None
    # "process" or "microvm"; None: the backend's default (microvm tier only).
    isolation: str | None = None

    def __post_init__(self) -> None:
        if not _NAME_RE.match(self.name):
            raise ValueError(
                f"agent name {self.name!r} must match {_NAME_RE.pattern} "
                "(it names a cgroup directory)"
            )
        if not self.argv:
            raise ValueError(f"agent {self.name!r}: argv is empty")
        if self.pids_max is not None and self.pids_max < 1:
            raise ValueError(f"agent {self.name!r}: pids_max must be >= 1")
        if self.cpus is not None and self.cpus < 1:
            raise ValueError(f"agent {self.name!r}: cpus must be >= 1")
        if self.isolation not in (None, "process", "microvm"):
            raise ValueError(f"agent {self.name!r}: isolation must be process or microvm")
        if self.memory_max_bytes is not None and self.memory_max_bytes < 4096:
            raise ValueError(f"agent {self.name!r}: memory_max_bytes must be >= 4096")


class Usage(NamedTuple):
    """Cumulative CPU seconds of the agent's whole tree, its current RSS and process count."""

    cpu_s: float
    rss_bytes: int
    nprocs: int


@dataclass
class CleanupReport:
    """What `cleanup_stale` found and did (JSON-able via `to_dict`)."""

    removed_supervisors: list[str] = field(default_factory=list)
    live_supervisors: list[str] = field(default_factory=list)
    killed_pids: list[int] = field(default_factory=list)
    removed_cgroups: list[str] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        return {
            "removed_supervisors": sorted(self.removed_supervisors),
            "live_supervisors": sorted(self.live_supervisors),
            "killed_pids": sorted(self.killed_pids),
            "removed_cgroups": sorted(self.removed_cgroups),
            "errors": list(self.errors),
        }

    def _asdict(self) -> dict[str, Any]:
        """Same as `to_dict` (the NamedTuple spelling, for callers that expect it)."""
        return self.to_dict()
