"""A minimal ctypes binding to libbpf.so.1: open, load and attach a BPF object, and map ops.

Only the calls the memory tracer needs. libbpf 1.x conventions: functions that
return pointers give NULL and set errno on failure; low-level map calls return
a negative errno. Every failure becomes `LibbpfError` carrying libbpf's own
log lines (captured through `libbpf_set_print`), so callers can explain it.
Touches nothing but the BPF syscall (through libbpf) and, when libbpf needs
them, /sys/kernel/btf and tracefs.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import os
import threading
from pathlib import Path

LIBBPF_NAMES = ("libbpf.so.1", "libbpf.so")

BPF_ANY = 0
BPF_NOEXIST = 1


class LibbpfError(OSError):
    """A libbpf call failed; `str()` names the call, the errno and libbpf's log."""


_print_lock = threading.Lock()
_log: list[str] = []
_PRINT_FN = ctypes.CFUNCTYPE(ctypes.c_int, ctypes.c_int, ctypes.c_char_p, ctypes.c_void_p)
_libc = ctypes.CDLL(None, use_errno=True)
_libc.vsnprintf.argtypes = [ctypes.c_char_p, ctypes.c_size_t, ctypes.c_char_p, ctypes.c_void_p]
_libc.vsnprintf.restype = ctypes.c_int


def _on_print(level: int, fmt: bytes | None, ap: int | None) -> int:
    # On x86_64 a va_list is passed as a pointer, which vsnprintf accepts as is.
    buf = ctypes.create_string_buffer(1024)
    _libc.vsnprintf(buf, len(buf), fmt, ap)
    line = buf.value.decode(errors="replace").rstrip()
    if line and level <= 1:  # LIBBPF_WARN, LIBBPF_INFO; debug lines would bury the cause
        _log.append(line)
        del _log[:-40]  # keep the tail: the lines that explain a failure come last
    return 0


_print_cb = _PRINT_FN(_on_print)  # kept alive for as long as the library is loaded


def _load() -> ctypes.CDLL:
    last: OSError | None = None
    for name in LIBBPF_NAMES:
        try:
            lib = ctypes.CDLL(name, use_errno=True)
            break
        except OSError as err:
            last = err
    else:
        found = ctypes.util.find_library("bpf")
        if found is None:
            raise LibbpfError(f"libbpf not found ({last}); install libbpf1 (apt) or libbpf")
        lib = ctypes.CDLL(found, use_errno=True)
    vp, ci, cp = ctypes.c_void_p, ctypes.c_int, ctypes.c_char_p
    sigs: dict[str, tuple[list[type], type | None]] = {
        "bpf_object__open_file": ([cp, vp], vp),
        "bpf_object__load": ([vp], ci),
        "bpf_object__close": ([vp], None),
        "bpf_object__find_program_by_name": ([vp, cp], vp),
        "bpf_object__find_map_by_name": ([vp, cp], vp),
        "bpf_program__set_autoload": ([vp, ctypes.c_bool], ci),
        "bpf_program__attach": ([vp], vp),
        "bpf_link__destroy": ([vp], ci),
        "bpf_map__fd": ([vp], ci),
        "bpf_map_update_elem": ([ci, vp, vp, ctypes.c_uint64], ci),
        "bpf_map_lookup_elem": ([ci, vp, vp], ci),
        "bpf_map_delete_elem": ([ci, vp], ci),
        "bpf_map_get_next_key": ([ci, vp, vp], ci),
        "bpf_map_lookup_batch": ([ci, vp, vp, vp, vp, ctypes.POINTER(ctypes.c_uint32), vp], ci),
        "libbpf_num_possible_cpus": ([], ci),
        "libbpf_set_print": ([_PRINT_FN], vp),
    }
    for fn, (argtypes, restype) in sigs.items():
        f = getattr(lib, fn)
        f.argtypes = argtypes
        f.restype = restype
    lib.libbpf_set_print(_print_cb)
    return lib


_lib: ctypes.CDLL | None = None


def lib() -> ctypes.CDLL:
    """The loaded library (loaded once); raises LibbpfError if it is not installed."""
    global _lib
    if _lib is None:
        _lib = _load()
    return _lib


def _fail(call: str, err: int) -> LibbpfError:
    with _print_lock:
        tail = [ln for ln in _log[-6:] if ln]
        _log.clear()
    detail = f": {' | '.join(tail)}" if tail else ""
    return LibbpfError(err, f"{call}: {os.strerror(err)}{detail}")


def _check(call: str, rc: int) -> int:
    if rc < 0:
        raise _fail(call, -rc)
    return rc


class Map:
    """A BPF map by file descriptor, with fixed-size keys and values as bytes."""

    def __init__(self, fd: int, key_size: int, value_size: int) -> None:
        self.fd = fd
        self.key_size = key_size
        self.value_size = value_size

    def update(self, key: bytes, value: bytes, flags: int = BPF_ANY) -> bool:
        """Insert or replace; False when BPF_NOEXIST found the key present."""
        rc = lib().bpf_map_update_elem(self.fd, key, value, flags)
        if rc == -17 and flags == BPF_NOEXIST:  # EEXIST
            return False
        _check("bpf_map_update_elem", rc)
        return True

    def lookup(self, key: bytes) -> bytes | None:
        buf = ctypes.create_string_buffer(self.value_size)
        rc = lib().bpf_map_lookup_elem(self.fd, key, buf)
        if rc == -2:  # ENOENT
            return None
        _check("bpf_map_lookup_elem", rc)
        return buf.raw

    def delete(self, key: bytes) -> None:
        rc = lib().bpf_map_delete_elem(self.fd, key)
        if rc != -2:
            _check("bpf_map_delete_elem", rc)

    def keys(self) -> list[bytes]:
        out: list[bytes] = []
        cur = None
        nxt = ctypes.create_string_buffer(self.key_size)
        while True:
            rc = lib().bpf_map_get_next_key(self.fd, cur, nxt)
            if rc == -2:
                return out
            _check("bpf_map_get_next_key", rc)
            out.append(nxt.raw)
            cur = ctypes.create_string_buffer(nxt.raw, self.key_size)

    def lookup_batch(self, max_entries: int) -> bytes | None:
        """All values of an array map in one syscall (None if the kernel lacks batch ops)."""
        keys = ctypes.create_string_buffer(self.key_size * max_entries)
        values = ctypes.create_string_buffer(self.value_size * max_entries)
        out_batch = ctypes.create_string_buffer(self.key_size)
        count = ctypes.c_uint32(max_entries)
        rc = lib().bpf_map_lookup_batch(
            self.fd, None, out_batch, keys, values, ctypes.byref(count), None
        )
        # ENOENT here means "no more after this batch", with `count` entries filled.
        if rc < 0 and rc != -2:
            if rc in (-22, -95, -524):  # EINVAL, EOPNOTSUPP, ENOTSUPP: old kernel
                return None
            _check("bpf_map_lookup_batch", rc)
        if count.value != max_entries:
            return None
        return values.raw


class BpfObject:
    """An opened, loaded BPF object file with some of its programs attached."""

    def __init__(self, path: Path, programs: dict[str, bool]) -> None:
        """Open `path`, load the programs named True in `programs` (others skipped), attach them."""
        self._lib = lib()
        self._links: list[int] = []
        self._progs: dict[str, int] = {}
        ctypes.set_errno(0)
        obj = self._lib.bpf_object__open_file(str(path).encode(), None)
        if not obj:
            raise _fail(f"bpf_object__open_file({path})", ctypes.get_errno() or 22)
        self._obj: int | None = obj
        try:
            progs = {}
            for name, wanted in programs.items():
                prog = self._lib.bpf_object__find_program_by_name(obj, name.encode())
                if not prog:
                    raise LibbpfError(2, f"program {name} not in {path}; rebuild it (make bpf)")
                rc = self._lib.bpf_program__set_autoload(prog, wanted)
                _check("bpf_program__set_autoload", rc)
                if wanted:
                    progs[name] = prog
            _check("bpf_object__load", self._lib.bpf_object__load(obj))
            self._progs = progs
            self.attach()
        except BaseException:
            self.close()
            raise

    def attach(self) -> None:
        """Attach every loaded program (after `detach`; the maps keep their contents)."""
        if self._links:
            return
        for name, prog in self._progs.items():
            ctypes.set_errno(0)
            link = self._lib.bpf_program__attach(prog)
            if not link:
                err = _fail(f"bpf_program__attach({name})", ctypes.get_errno() or 22)
                self.detach()
                raise err
            self._links.append(link)

    def detach(self) -> None:
        """Detach the programs but keep them loaded (benchmarks compare with and without)."""
        for link in self._links:
            self._lib.bpf_link__destroy(link)
        self._links.clear()

    def map(self, name: str, key_size: int, value_size: int) -> Map:
        if self._obj is None:
            raise LibbpfError(9, "BPF object is closed")
        m = self._lib.bpf_object__find_map_by_name(self._obj, name.encode())
        if not m:
            raise LibbpfError(2, f"map {name} not in the BPF object")
        return Map(_check("bpf_map__fd", self._lib.bpf_map__fd(m)), key_size, value_size)

    def close(self) -> None:
        """Detach every program and free the object (idempotent)."""
        self.detach()
        self._progs = {}
        if self._obj is not None:
            self._lib.bpf_object__close(self._obj)
            self._obj = None


def num_possible_cpus() -> int:
    return _check("libbpf_num_possible_cpus", lib().libbpf_num_possible_cpus())
