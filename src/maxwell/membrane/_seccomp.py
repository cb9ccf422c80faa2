"""The jail's seccomp filter: the system calls an agent never needs, denied with EPERM.

Built once per supervisor with a maintained libseccomp binding (Debian's
`python3-seccomp` module `seccomp`, or `pyseccomp` from PyPI, which wraps the
same C library through ctypes) and exported as a classic BPF program. The bytes
are then either handed to bubblewrap (`--seccomp FD`, a fresh pipe per spawn)
or installed by the forked child itself with one `prctl(PR_SET_SECCOMP)` (no
libseccomp call, no allocation between fork and exec). Touches nothing.

Everything not listed is allowed: the filter closes the kernel surfaces that
let a process step outside the economy or attack its neighbours, not a
least-privilege profile of each agent. Foreign architectures (i386 `int 0x80`,
x32) are killed by libseccomp's default bad-arch action, so the list cannot be
bypassed through another syscall table.
"""

from __future__ import annotations

import contextlib
import ctypes
import errno
import functools
import os
import tempfile
from typing import Any, NamedTuple

from maxwell.common import Availability

CLONE_NEWUSER = 0x10000000
TIOCSTI = 0x5412
TIOCLINUX = 0x541C

# Each entry: (syscall, why an agent must not have it). One line each.
DENY: tuple[tuple[str, str], ...] = (
    ("io_uring_setup", "io_uring ops (e.g. IORING_OP_MADVISE) bypass the traced syscalls"),
    ("io_uring_enter", "io_uring: same"),
    ("io_uring_register", "io_uring: same"),
    ("bpf", "would open the memory tracer's maps or load programs"),
    ("perf_event_open", "kernel profiling: side channels and a large attack surface"),
    ("userfaultfd", "stalls the kernel at chosen faults: a classic exploit primitive"),
    ("add_key", "kernel keyrings are not namespaced: keys leak across uids/runs"),
    ("request_key", "keyrings: same"),
    ("keyctl", "keyrings: same"),
    ("mount", "remounting would undo the read-only binds"),
    ("umount2", "unmounting would uncover what the jail hides"),
    ("pivot_root", "changes the jail's root"),
    ("open_tree", "new mount API: clones mounts"),
    ("move_mount", "new mount API: attaches mounts"),
    ("fsopen", "new mount API: creates filesystems"),
    ("fsconfig", "new mount API: configures them"),
    ("fsmount", "new mount API: mounts them"),
    ("fspick", "new mount API: reconfigures existing ones"),
    ("mount_setattr", "new mount API: could clear read-only flags"),
    ("setns", "joining another namespace (the supervisor's, a sibling's)"),
    ("ptrace", "reading or steering another process"),
    ("process_vm_readv", "reading another process's memory"),
    ("process_vm_writev", "writing another process's memory"),
    ("kexec_load", "replacing the running kernel"),
    ("kexec_file_load", "replacing the running kernel"),
    ("init_module", "loading kernel code"),
    ("finit_module", "loading kernel code"),
    ("delete_module", "unloading kernel code"),
    ("clock_settime", "setting the clock would skew every tick and meter"),
    ("clock_adjtime", "clock: same"),
    ("settimeofday", "clock: same"),
    ("adjtimex", "clock: same"),
    ("open_by_handle_at", "opens files by handle, past the binds (the 'shocker' escape)"),
    ("name_to_handle_at", "the other half of open_by_handle_at"),
    ("reboot", "host power state"),
    ("swapon", "host memory configuration"),
    ("swapoff", "host memory configuration"),
    ("acct", "process accounting is host-wide"),
    ("iopl", "raw port I/O"),
    ("ioperm", "raw port I/O"),
)
# Rules on arguments, each with its reason.
CONDITIONAL: tuple[tuple[str, str], ...] = (
    ("unshare(CLONE_NEWUSER)", "a user namespace hands out capabilities and kernel surface"),
    ("clone(CLONE_NEWUSER)", "same, through clone"),
    ("clone3", "flags hide behind a pointer seccomp cannot read: ENOSYS, libc falls back to "
     "clone (as Docker's default profile does)"),
    ("ioctl(TIOCSTI)", "pushes keystrokes into a terminal's input (a shell's, the supervisor's)"),
    ("ioctl(TIOCLINUX)", "the console's paste buffer does the same"),
)

SECCOMP_MODE_FILTER = 2
PR_SET_SECCOMP = 22
PR_SET_NO_NEW_PRIVS = 38


class _SockFprog(ctypes.Structure):
    _fields_ = [("len", ctypes.c_ushort), ("filter", ctypes.c_void_p)]


class Binding(NamedTuple):
    module: Any
    name: str


def _binding() -> Binding | None:
    for name in ("seccomp", "pyseccomp"):
        try:
            mod = __import__(name)
        except (ImportError, OSError):
            continue
        if hasattr(mod, "SyscallFilter"):
            return Binding(mod, name)
    return None


def availability() -> Availability:
    b = _binding()
    if b is None:
        return Availability(
            False,
            "no libseccomp binding: pip install pyseccomp (in pyproject.toml) or "
            "sudo apt-get install python3-seccomp, plus libseccomp2",
        )
    try:
        program()
    except Exception as err:  # libseccomp missing or too old: explain, never raise
        return Availability(False, f"{b.name} cannot build the filter: {err}")
    return Availability(True, f"libseccomp via {b.name}: {len(DENY) + len(CONDITIONAL)} rules")


@functools.lru_cache(maxsize=1)
def program() -> bytes:
    """The filter as classic BPF (struct sock_filter[]), built once."""
    b = _binding()
    if b is None:
        raise RuntimeError("no libseccomp binding (pip install pyseccomp)")
    sc = b.module
    f = sc.SyscallFilter(sc.ALLOW)
    eperm = sc.ERRNO(errno.EPERM)
    for name, _why in DENY:
        try:
            f.add_rule(eperm, name)
        except (RuntimeError, ValueError, OSError):
            continue  # a syscall this libseccomp does not know cannot be called by name either
    f.add_rule(eperm, "unshare", sc.Arg(0, sc.MASKED_EQ, CLONE_NEWUSER, CLONE_NEWUSER))
    f.add_rule(eperm, "clone", sc.Arg(0, sc.MASKED_EQ, CLONE_NEWUSER, CLONE_NEWUSER))
    with contextlib.suppress(RuntimeError, ValueError, OSError):
        f.add_rule(sc.ERRNO(errno.ENOSYS), "clone3")
    f.add_rule(eperm, "ioctl", sc.Arg(1, sc.MASKED_EQ, 0xFFFFFFFF, TIOCSTI))
    f.add_rule(eperm, "ioctl", sc.Arg(1, sc.MASKED_EQ, 0xFFFFFFFF, TIOCLINUX))
    with tempfile.TemporaryFile() as tmp:
        f.export_bpf(tmp)
        tmp.seek(0)
        data = tmp.read()
    if not data or len(data) % 8:
        raise RuntimeError(f"libseccomp exported {len(data)} bytes, not a BPF program")
    return bytes(data)


def pipe_fd() -> int:
    """A fresh read end holding the program, for `bwrap --seccomp FD` (which reads it to EOF)."""
    data = program()
    r, w = os.pipe()
    try:
        # The program is a few hundred bytes: far below a pipe's buffer, never blocks.
        os.write(w, data)
    finally:
        os.close(w)
    return r


class Installer:
    """Installs the program in the calling process with prctl only (safe after fork)."""

    def __init__(self, data: bytes) -> None:
        self._buf = ctypes.create_string_buffer(data, len(data))
        self._prog = _SockFprog(len(data) // 8, ctypes.addressof(self._buf))
        libc = ctypes.CDLL(None, use_errno=True)
        self._prctl = libc.prctl
        self._prctl.argtypes = [ctypes.c_int, ctypes.c_ulong, ctypes.c_void_p,
                                ctypes.c_ulong, ctypes.c_ulong]
        self._prctl.restype = ctypes.c_int
        self._ptr = ctypes.addressof(self._prog)

    def install(self) -> int:
        """Sets no_new_privs then the filter; 0 on success, else the errno."""
        if self._prctl(PR_SET_NO_NEW_PRIVS, 1, None, 0, 0) != 0:
            return ctypes.get_errno() or 1
        if self._prctl(PR_SET_SECCOMP, SECCOMP_MODE_FILTER, self._ptr, 0, 0) != 0:
            return ctypes.get_errno() or 1
        return 0


def explain() -> list[tuple[str, str]]:
    """Every rule with its one-line reason (docs, doctor, tests)."""
    return list(DENY) + list(CONDITIONAL)
