"""Small file readers for sysfs/procfs attributes, turning OS errors into SensorError.

Every reader in the package reads through here so an unreadable, missing or garbled
file becomes one exception type with the path and the cause in its message. Touches
only the paths it is given.
"""

from __future__ import annotations

import errno
from pathlib import Path

from maxwell.physics._records import SensorError


def read_text(path: Path) -> str:
    try:
        with open(path, encoding="ascii", errors="replace") as f:
            return f.read().strip()
    except OSError as err:
        raise SensorError(f"{path}: {describe_oserror(err)}") from err


def read_int(path: Path) -> int:
    text = read_text(path)
    try:
        return int(text)
    except ValueError as err:
        raise SensorError(f"{path}: not an integer: {text[:40]!r}") from err


def describe_oserror(err: OSError) -> str:
    """A short cause: 'permission denied', 'missing', or the OS message."""
    if err.errno in (errno.EACCES, errno.EPERM):
        return "permission denied"
    if err.errno == errno.ENOENT:
        return "missing"
    return err.strerror or type(err).__name__


def is_permission_error(err: BaseException) -> bool:
    cause = err.__cause__
    return isinstance(cause, OSError) and cause.errno in (errno.EACCES, errno.EPERM)


def sorted_numeric(paths: list[Path], prefix: str) -> list[Path]:
    """Sort `prefix<N>…` names by N (hwmon10 after hwmon9), unparsable names last."""

    def key(p: Path) -> tuple[int, str]:
        digits = ""
        for ch in p.name[len(prefix) :]:
            if not ch.isdigit():
                break
            digits += ch
        return (int(digits) if digits else 1 << 30, p.name)

    return sorted(paths, key=key)
