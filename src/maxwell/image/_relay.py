"""The guest side of a microVM agent: PID 1 after /init, run by the host's Python over 9p.

Runs with `python -S -I` (stdlib only, no site, no maxwell imports) so it
starts quickly under emulation. It reads the agent's spec (argv, environment
with its MAXWELL_TOKEN, cwd, uid) as one JSON line from the `maxwell.ctl`
virtio-serial port — the token never appears on the host's command line —,
listens on a Unix socket inside the guest and points MAXWELL_ENDPOINT at it,
starts the agent as an unprivileged guest user (own session, no_new_privs),
and copies bytes between that socket and the `maxwell.ch` port, whose host
end QEMU connects to the supervisor's endpoint. It reports `ready` (with the
guest's uptime: the boot time) and the agent's `exit` status on the control
port, reaps orphans (it is init), and reboots the VM when the agent is gone
(QEMU runs with -no-reboot, so the VM then ends).

It touches only the guest: its tmpfs, its virtio ports, its processes.
"""

from __future__ import annotations

import contextlib
import errno
import json
import os
import select
import socket
import sys
import time

PORTS = "/sys/class/virtio-ports"
SOCK_DIR = "/tmp/.maxwell"  # guest tmpfs (a jailed VMM's view may have no /run)
SOCK_PATH = SOCK_DIR + "/agent.sock"
MAX_BUFFER = 1 << 20  # bytes held for a side that is not reading (then dropped)
PR_SET_NO_NEW_PRIVS = 38
PR_CAPBSET_DROP = 24
PR_SET_SECUREBITS = 28
PR_CAP_AMBIENT = 47
PR_CAP_AMBIENT_CLEAR_ALL = 4
# SECBIT_NOROOT | _LOCKED | SECBIT_NO_SETUID_FIXUP | _LOCKED | SECBIT_KEEP_CAPS_LOCKED:
# uid 0 gains no capabilities at execve, and that cannot be undone.
SECUREBITS = 0x01 | 0x02 | 0x04 | 0x08 | 0x20
CAPSET = 126  # x86_64 syscall number
LINUX_CAPABILITY_VERSION_3 = 0x20080522


def _drop_capabilities() -> None:
    """Leave uid 0 with an empty capability set, for good (bounding, ambient, securebits).

    The agent keeps root's *ownership* — it can read root-owned host files
    through the read-only share, such as the project's Python under /root — but
    no privilege: it cannot unmount the guest's /proc over the host's, mount,
    load modules or change uid.
    """
    import ctypes

    libc = ctypes.CDLL(None, use_errno=True)
    libc.prctl.argtypes = [ctypes.c_int, ctypes.c_ulong, ctypes.c_ulong, ctypes.c_ulong,
                           ctypes.c_ulong]
    if libc.prctl(PR_SET_SECUREBITS, SECUREBITS, 0, 0, 0) != 0:
        raise OSError(ctypes.get_errno(), "PR_SET_SECUREBITS")
    cap = 0
    while libc.prctl(PR_CAPBSET_DROP, cap, 0, 0, 0) == 0:
        cap += 1
    libc.prctl(PR_CAP_AMBIENT, PR_CAP_AMBIENT_CLEAR_ALL, 0, 0, 0)
    header = (ctypes.c_uint32 * 2)(LINUX_CAPABILITY_VERSION_3, 0)
    data = (ctypes.c_uint32 * 6)()  # effective, permitted, inheritable x 2 words: all empty
    if libc.syscall(CAPSET, header, data) != 0:
        raise OSError(ctypes.get_errno(), "capset")
    if libc.prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) != 0:
        raise OSError(ctypes.get_errno(), "PR_SET_NO_NEW_PRIVS")


def _ports() -> dict[str, str]:
    out = {name: os.environ[var] for name, var in (("maxwell.ctl", "MAXWELL_PORT_CTL"),
                                                   ("maxwell.ch", "MAXWELL_PORT_CH"))
           if os.environ.get(var)}
    if len(out) == 2 or not os.path.isdir(PORTS):
        return out
    for d in os.listdir(PORTS):
        try:
            with open(f"{PORTS}/{d}/name") as f:
                out[f.read().strip()] = f"/dev/{d}"
        except OSError:
            continue
    return out


def _uptime_s() -> float:
    with open("/proc/uptime") as f:
        return float(f.read().split()[0])


def _report(ctl: int, **msg: object) -> None:
    data = (json.dumps(msg) + "\n").encode()
    with contextlib.suppress(OSError):
        while data:
            data = data[os.write(ctl, data) :]


def _read_spec(ctl: int) -> dict[str, object]:
    buf = b""
    while b"\n" not in buf:
        chunk = os.read(ctl, 65536)
        if not chunk:
            time.sleep(0.01)  # the host end is not connected yet
            continue
        buf += chunk
        if len(buf) > (8 << 20):
            raise ValueError("spec line too long")
    spec = json.loads(buf.split(b"\n", 1)[0])
    if not isinstance(spec, dict):
        raise ValueError("spec is not an object")
    return spec


def _start_agent(spec: dict[str, object]) -> int:
    argv = [str(a) for a in spec["argv"]]  # type: ignore[attr-defined]
    env = {str(k): str(v) for k, v in dict(spec.get("env") or {}).items()}  # type: ignore[call-overload]
    env["MAXWELL_ENDPOINT"] = SOCK_PATH
    uid = int(spec.get("uid", 0))  # type: ignore[call-overload]
    gid = int(spec.get("gid", uid))  # type: ignore[call-overload]
    if uid != 0:
        env["HOME"] = "/tmp"
    cwd = str(spec.get("cwd") or "/")
    pid = os.fork()
    if pid == 0:  # the agent
        try:
            os.setsid()
            os.setgroups([])
            if uid != 0:
                os.setgid(gid)
                os.setuid(uid)
            _drop_capabilities()
            os.chdir(cwd)
            os.execvpe(argv[0], argv, env)
        except BaseException as err:
            print(f"maxwell-guest: cannot start {argv[0]}: {err}", file=sys.stderr, flush=True)
        os._exit(127)
    return pid


class _Pipe:
    """Bytes waiting to be written to one fd (bounded: a side that never reads loses data)."""

    def __init__(self) -> None:
        self.buf = bytearray()

    def add(self, data: bytes) -> None:
        if len(self.buf) + len(data) <= MAX_BUFFER:
            self.buf += data

    def flush(self, fd: int) -> None:
        while self.buf:
            try:
                n = os.write(fd, self.buf)
            except BlockingIOError:
                return
            except OSError as err:
                if err.errno in (errno.EPIPE, errno.ECONNRESET, errno.ENXIO):
                    self.buf.clear()  # the reader is gone
                    return
                raise
            del self.buf[:n]


def main() -> int:
    ports = _ports()
    ctl = os.open(ports["maxwell.ctl"], os.O_RDWR)
    try:
        spec = _read_spec(ctl)
        ch = os.open(ports["maxwell.ch"], os.O_RDWR | os.O_NONBLOCK)
        os.makedirs(SOCK_DIR, mode=0o755, exist_ok=True)
        lst = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        lst.bind(SOCK_PATH)
        os.chmod(SOCK_PATH, 0o777)
        lst.listen(4)
        lst.setblocking(False)
        agent = _start_agent(spec)
    except Exception as err:
        _report(ctl, type="error", reason=f"{type(err).__name__}: {err}")
        return 1
    _report(ctl, type="ready", uptime_s=_uptime_s(), pid=agent)
    conn: socket.socket | None = None
    to_agent, to_host = _Pipe(), _Pipe()
    host_hup_until = 0.0
    status: int | None = None
    while status is None:
        rlist: list[socket.socket | int] = [lst]
        if conn is not None:
            rlist.append(conn)
        now = time.monotonic()
        if now >= host_hup_until:
            rlist.append(ch)
        wlist: list[socket.socket | int] = []
        if to_host.buf and now >= host_hup_until:
            wlist.append(ch)
        if to_agent.buf and conn is not None:
            wlist.append(conn)
        r, _w, _ = select.select(rlist, wlist, [], 0.2)
        if lst in r:
            with contextlib.suppress(BlockingIOError):
                new, _ = lst.accept()
                new.setblocking(False)
                if conn is not None:
                    conn.close()  # one agent, one stream: the newest connection wins
                conn = new
        if conn is not None and conn in r:
            try:
                data = conn.recv(65536)
            except BlockingIOError:
                data = None
            except OSError:
                data = b""
            if data:
                to_host.add(data)
            elif data == b"":
                conn.close()
                conn = None
        if ch in r:
            try:
                data = os.read(ch, 65536)
            except BlockingIOError:
                data = None
            except OSError:
                data = b""
            if data:
                to_agent.add(data)
            elif data == b"":
                host_hup_until = time.monotonic() + 0.2  # host end not connected: wait
        if to_host.buf and now >= host_hup_until:
            try:
                to_host.flush(ch)
            except OSError:
                host_hup_until = time.monotonic() + 0.2
        if conn is not None and to_agent.buf:
            try:
                to_agent.flush(conn.fileno())
            except OSError:
                conn.close()
                conn = None
        while True:  # reap: the agent and any orphan (this is init)
            try:
                pid, st = os.waitpid(-1, os.WNOHANG)
            except ChildProcessError:
                break
            if pid == 0:
                break
            if pid == agent:
                status = os.waitstatus_to_exitcode(st)
    if conn is not None:
        to_host.flush(ch)  # the agent's last words
    _report(ctl, type="exit", status=status)
    return 0


if __name__ == "__main__":
    try:
        main()
    finally:
        # PID 1 must not exit: reboot, which ends the VM (QEMU runs with -no-reboot).
        with contextlib.suppress(OSError), open("/proc/sysrq-trigger", "w") as f:
            f.write("b")
        time.sleep(5)
