"""A minimal synchronous QMP client: QEMU's machine protocol is newline-delimited JSON.

Why not the `qemu.qmp` library (PyPI `qemu-qmp`, the maintained client): it is
asyncio-only, so every pause would need an event loop turn in the supervisor's
pausing thread, it adds a dependency for three commands, and it is GPL-2.0
while Maxwell is MIT. QMP itself is a greeting, `qmp_capabilities`, then one
`{"execute": ...}` per line answered by `{"return": ...}` or `{"error": ...}`,
with asynchronous `{"event": ...}` lines in between (docs/interop/qmp-spec).

Touches only the socket it is given.
"""

from __future__ import annotations

import contextlib
import json
import socket
import time
from typing import Any

from maxwell.membrane._types import MembraneError


class QMP:
    """One QMP connection (already accepted or connected); not thread-safe."""

    def __init__(self, sock: socket.socket, timeout_s: float = 10.0) -> None:
        self.sock = sock
        self.timeout_s = timeout_s
        self.events: list[dict[str, Any]] = []
        self._buf = bytearray()
        sock.setblocking(True)
        greeting = self._next()
        if "QMP" not in greeting:
            raise MembraneError(f"not a QMP greeting: {greeting!r:.200}")
        self.version = greeting["QMP"].get("version", {}).get("qemu", {})
        self.execute("qmp_capabilities")

    def _next(self) -> dict[str, Any]:
        deadline = time.monotonic() + self.timeout_s
        while b"\n" not in self._buf:
            left = deadline - time.monotonic()
            if left <= 0:
                raise MembraneError(f"QMP: no reply in {self.timeout_s} s")
            self.sock.settimeout(left)
            try:
                chunk = self.sock.recv(65536)
            except TimeoutError:
                continue
            except OSError as err:
                raise MembraneError(f"QMP connection failed: {err}") from err
            if not chunk:
                raise MembraneError("QMP connection closed by QEMU")
            self._buf += chunk
        line, _, rest = bytes(self._buf).partition(b"\n")
        self._buf = bytearray(rest)
        obj = json.loads(line)
        if not isinstance(obj, dict):
            raise MembraneError(f"QMP: unexpected line {line!r:.200}")
        return obj

    def execute(self, command: str, **arguments: Any) -> Any:
        msg: dict[str, Any] = {"execute": command}
        if arguments:
            msg["arguments"] = arguments
        try:
            self.sock.sendall(json.dumps(msg).encode() + b"\n")
        except OSError as err:
            raise MembraneError(f"QMP {command}: {err}") from err
        while True:
            obj = self._next()
            if "event" in obj:
                self.events.append(obj)
                del self.events[:-64]  # keep the last few for diagnostics
                continue
            if "error" in obj:
                raise MembraneError(f"QMP {command}: {obj['error'].get('desc', obj['error'])}")
            if "return" in obj:
                return obj["return"]

    def close(self) -> None:
        with contextlib.suppress(OSError):
            self.sock.close()
