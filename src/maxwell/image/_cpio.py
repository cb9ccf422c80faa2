"""A writer for the "newc" cpio format the Linux kernel unpacks as its initramfs.

Pure bytes in memory: no cpio binary, no root (device nodes are just headers),
deterministic output (mtime 0, inode numbers by order). Format: the kernel's
Documentation/driver-api/early-userspace/buffer-format.rst — a 110-byte ASCII
header ("070701" + 13 eight-digit hex fields), the NUL-terminated name, padding
to 4 bytes, the data, padding to 4 bytes; the archive ends with "TRAILER!!!".
"""

from __future__ import annotations

import stat
from dataclasses import dataclass

MAGIC = b"070701"
TRAILER = "TRAILER!!!"


@dataclass(frozen=True)
class Entry:
    name: str  # path inside the archive, without a leading "/"
    mode: int  # full st_mode (type bits included)
    data: bytes = b""
    rdev: tuple[int, int] = (0, 0)  # device major, minor for character/block nodes


def file(name: str, data: bytes, perm: int = 0o644) -> Entry:
    return Entry(name, stat.S_IFREG | perm, data)


def directory(name: str, perm: int = 0o755) -> Entry:
    return Entry(name, stat.S_IFDIR | perm)


def symlink(name: str, target: str) -> Entry:
    return Entry(name, stat.S_IFLNK | 0o777, target.encode())


def chardev(name: str, major: int, minor: int, perm: int = 0o600) -> Entry:
    return Entry(name, stat.S_IFCHR | perm, b"", (major, minor))


def _pad(n: int) -> bytes:
    return b"\0" * (-n % 4)


def _header(ino: int, e: Entry, name: bytes) -> bytes:
    fields = (
        ino, e.mode, 0, 0, 2 if stat.S_ISDIR(e.mode) else 1, 0, len(e.data),
        0, 0, e.rdev[0], e.rdev[1], len(name) + 1, 0,
    )  # fmt: skip
    return MAGIC + b"".join(b"%08X" % f for f in fields)


def archive(entries: list[Entry]) -> bytes:
    """The newc archive of `entries` in order (parents must come before children)."""
    out = bytearray()
    for ino, e in enumerate([*entries, Entry(TRAILER, 0)], start=1):
        name = e.name.lstrip("/").encode()
        head = _header(0 if e.name == TRAILER else ino, e, name) + name + b"\0"
        out += head + _pad(len(head)) + e.data + _pad(len(e.data))
    return bytes(out)


def read(data: bytes) -> list[Entry]:
    """Parse a newc archive (used by tests and `maxwell image` to show what is inside)."""
    entries: list[Entry] = []
    pos = 0
    while True:
        if data[pos : pos + 6] != MAGIC:
            raise ValueError(f"bad cpio magic at offset {pos}")
        f = [int(data[pos + 6 + 8 * i : pos + 14 + 8 * i], 16) for i in range(13)]
        namesize, filesize = f[11], f[6]
        start = pos + 110
        name = data[start : start + namesize - 1].decode()
        pos = start + namesize
        pos += -pos % 4
        body = data[pos : pos + filesize]
        pos += filesize
        pos += -pos % 4
        if name == TRAILER:
            return entries
        entries.append(Entry(name, f[1], bytes(body), (f[9], f[10])))
