"""Kernel module dependencies from the modules themselves: what `depmod` reads, in Python.

`depmod` builds modules.dep from each module's `.modinfo` ELF section
(`depends=a,b`); a Debian kernel package ships no modules.dep (its postinst runs
depmod), and kmod is not needed on the host for a handful of modules. This reads
that section from the ELF64 section table and orders a closure so every module
comes after what it depends on (the order `modprobe` would insmod them).
"""

from __future__ import annotations

import struct
from collections.abc import Mapping


def modinfo(ko: bytes) -> dict[str, str]:
    """The key=value strings of a module's .modinfo section (last value wins)."""
    if ko[:4] != b"\x7fELF" or ko[4] != 2 or ko[5] != 1:
        raise ValueError("not a little-endian ELF64 kernel module")
    shoff = struct.unpack_from("<Q", ko, 0x28)[0]
    shentsize, shnum, shstrndx = struct.unpack_from("<HHH", ko, 0x3A)

    def section(i: int) -> tuple[int, int, int]:
        name, _type, _flags, _addr, off, size = struct.unpack_from(
            "<IIQQQQ", ko, shoff + i * shentsize
        )
        return name, off, size

    _, str_off, _ = section(shstrndx)
    for i in range(shnum):
        name_off, off, size = section(i)
        end = ko.index(b"\0", str_off + name_off)
        if ko[str_off + name_off : end] == b".modinfo":
            out: dict[str, str] = {}
            for item in ko[off : off + size].split(b"\0"):
                key, sep, val = item.partition(b"=")
                if sep:
                    out[key.decode()] = val.decode(errors="replace")
            return out
    raise ValueError("module has no .modinfo section")


def depends(ko: bytes) -> list[str]:
    return [d for d in modinfo(ko).get("depends", "").split(",") if d]


def load_order(wanted: list[str], deps: Mapping[str, list[str]]) -> list[str]:
    """`wanted` and everything they need, dependencies first (stable, deterministic).

    Module names use `_` (the kernel treats `-` and `_` alike in names).
    Raises KeyError naming a module that is needed but not in `deps`.
    """
    order: list[str] = []
    state: dict[str, int] = {}  # 1 visiting, 2 done

    def visit(name: str, chain: tuple[str, ...]) -> None:
        if state.get(name) == 2:
            return
        if state.get(name) == 1:
            raise ValueError("module dependency cycle: " + " -> ".join((*chain, name)))
        if name not in deps:
            raise KeyError(f"module {name} (needed by {' -> '.join(chain) or 'the guest'})"
                           " is not in the kernel package")
        state[name] = 1
        for d in deps[name]:
            visit(d.replace("-", "_"), (*chain, name))
        state[name] = 2
        order.append(name)

    for w in wanted:
        visit(w.replace("-", "_"), ())
    return order
