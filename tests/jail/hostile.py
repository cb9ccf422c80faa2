"""A hostile agent: each attack is a real attempt; it prints one JSON line saying whether it got in.

Run jailed by the tests as `python3 hostile.py ATTACK [ARGS...]`; stdlib only (it
runs under the system's Python, which a jailed uid can reach). `escaped` is true
when the attack achieved what it tried; `detail` says what the kernel answered.
"""

from __future__ import annotations

import ctypes
import json
import os
import signal
import socket
import sys
import time

libc = ctypes.CDLL(None, use_errno=True)
libc.syscall.restype = ctypes.c_long


def report(escaped: bool, detail: object) -> None:
    print(json.dumps({"escaped": bool(escaped), "detail": detail}), flush=True)


def try_write(path: str, text: str) -> str | None:
    """None if the write went through, else the error."""
    try:
        fd = os.open(path, os.O_WRONLY)
        try:
            os.write(fd, text.encode())
        finally:
            os.close(fd)
        return None
    except OSError as err:
        return f"{path}: {err.strerror}"


def writes(paths: list[str], text: str) -> None:
    errors, ok = [], []
    for p in paths:
        e = try_write(p, text)
        (errors if e else ok).append(e or p)
    report(bool(ok), {"wrote": ok, "refused": errors})


def syscall_fd(nr: int, *args: int) -> tuple[int, int]:
    r = libc.syscall(nr, *[ctypes.c_long(a) for a in args])
    return int(r), ctypes.get_errno()


def main() -> None:
    attack, args = sys.argv[1], sys.argv[2:]
    if os.environ.get("HOSTILE_PATHS"):  # paths it "found" (not named on its command line)
        args += os.environ["HOSTILE_PATHS"].split(":")
    if attack == "sleep":
        print("sleeping", flush=True)  # started: the interpreter has loaded what it needs
        time.sleep(float(args[0]) if args else 30)
        report(False, "slept")
    elif attack == "write":  # escape a cgroup, thaw itself, freeze a rival, lift a quota
        writes(args[1:], args[0])
    elif attack == "io_uring":
        buf = ctypes.create_string_buffer(120)  # struct io_uring_params
        r, e = syscall_fd(425, 8, ctypes.addressof(buf))
        report(r >= 0, f"io_uring_setup -> {r} ({os.strerror(e) if r < 0 else 'fd'})")
    elif attack == "bpf":
        # BPF_MAP_GET_NEXT_ID (12): walk the host's maps (the memory tracer's among them);
        # BPF_MAP_CREATE (0) would be the first step of loading a program.
        attr = ctypes.create_string_buffer(128)
        r1, e1 = syscall_fd(321, 12, ctypes.addressof(attr), 128)
        ctypes.memmove(attr, (ctypes.c_uint32 * 4)(2, 4, 4, 1), 16)  # array map, 1 entry
        r2, e2 = syscall_fd(321, 0, ctypes.addressof(attr), 128)
        pinned = os.listdir("/sys/fs/bpf") if os.path.isdir("/sys/fs/bpf") else []
        report(r1 >= 0 or r2 >= 0 or bool(pinned),
               f"get_next_id -> {r1} ({os.strerror(e1)}), map_create -> {r2} "
               f"({os.strerror(e2)}), pinned: {pinned}")
    elif attack == "perf":
        attr = ctypes.create_string_buffer(128)
        ctypes.memmove(attr, (ctypes.c_uint32 * 2)(1, 128), 8)  # PERF_TYPE_SOFTWARE
        r, e = syscall_fd(298, ctypes.addressof(attr), 0, -1, -1, 0)
        report(r >= 0, f"perf_event_open -> {r} ({os.strerror(e)})")
    elif attack == "userns":
        r = libc.unshare(0x10000000)
        e = ctypes.get_errno()
        report(r == 0, f"unshare(CLONE_NEWUSER) -> {r} ({os.strerror(e)})")
    elif attack == "signal":  # kill / ptrace the supervisor and a sibling
        got = []
        for spec in args:
            sig, pid = spec.split(":")
            try:
                os.kill(int(pid), int(sig))
                got.append(f"kill({pid}, {sig}) delivered")
            except OSError as err:
                got.append(f"kill({pid}, {sig}): {err.strerror}")
            r = libc.ptrace(16, int(pid), None, None)  # PTRACE_ATTACH
            e = ctypes.get_errno()
            got.append(f"ptrace({pid}) -> {r} ({os.strerror(e) if r else 'attached'})")
        report(any("delivered" in g or "attached" in g for g in got), got)
    elif attack == "priority":
        got = []
        for name, fn in (
            ("nice -10", lambda: os.setpriority(os.PRIO_PROCESS, 0, -10)),
            ("SCHED_FIFO", lambda: os.sched_setscheduler(0, os.SCHED_FIFO, os.sched_param(1))),
            ("setuid(0)", lambda: os.setuid(0)),
        ):
            try:
                fn()
                got.append(f"{name}: allowed")
            except OSError as err:
                got.append(f"{name}: {err.strerror}")
        report(any("allowed" in g for g in got), got)
    elif attack == "read":  # the run database, the host's files outside the binds
        got = []
        for p in args:
            try:
                with open(p, "rb") as f:
                    f.read(16)
                got.append(f"{p}: read")
            except OSError as err:
                got.append(f"{p}: {err.strerror}")
        report(any(g.endswith(": read") for g in got), got)
    elif attack == "append":
        got = []
        for p in args:
            try:
                with open(p, "ab") as f:
                    f.write(b"x")
                got.append(f"{p}: written")
            except OSError as err:
                got.append(f"{p}: {err.strerror}")
        report(any(g.endswith(": written") for g in got), got)
    elif attack == "environ":  # steal a rival's token from /proc
        try:
            with open(f"/proc/{args[0]}/environ", "rb") as f:
                env = f.read()
            toks = [x for x in env.split(b"\0") if x.startswith(b"MAXWELL_TOKEN=")]
            report(bool(toks), "read the environment" + (" and the token" if toks else ""))
        except OSError as err:
            report(False, f"/proc/{args[0]}/environ: {err.strerror}")
    elif attack == "impersonate":  # hello with a token (stolen, or read from /proc)
        path, token = args[0], args[1]
        if token.startswith("/proc/"):
            try:
                with open(token, "rb") as f:
                    env = f.read()
                token = next(x.split(b"=", 1)[1].decode() for x in env.split(b"\0")
                             if x.startswith(b"MAXWELL_TOKEN="))
            except (OSError, StopIteration) as err:
                report(False, f"could not steal the token: {err}")
                return
        s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        s.settimeout(10)
        try:
            s.connect(path)
        except OSError as err:
            report(False, f"connect: {err.strerror}")
            return
        s.sendall(json.dumps({"type": "hello", "token": token, "protocol": 1}).encode() + b"\n")
        s.sendall(b'{"type":"bid","price":0,"slots":0}\n')
        reply = s.makefile("rb").readline().decode()
        report('"welcome"' in reply, reply.strip()[:300])
    elif attack == "forkbomb":
        n = 0
        err = ""
        while n < 2000:
            try:
                pid = os.fork()
            except OSError as e:
                err = e.strerror or str(e)
                break
            if pid == 0:
                time.sleep(60)
                os._exit(0)
            n += 1
        report(n >= int(args[0]), f"forked {n} before: {err or 'no limit'}")
    elif attack == "fill":  # a disk fill: one file past RLIMIT_FSIZE, or a directory to ENOSPC
        path, limit_mb = args[0], float(args[1])
        signal.signal(signal.SIGXFSZ, signal.SIG_IGN)  # get EFBIG instead of dying
        written = 0
        chunk = b"\0" * (1 << 20)
        msg = "no limit"
        try:
            with open(path, "wb", buffering=0) as f:
                while written < (limit_mb + 64) * (1 << 20):
                    written += f.write(chunk)
        except OSError as err:
            msg = err.strerror or str(err)
        report(written > limit_mb * (1 << 20), f"wrote {written >> 20} MiB: {msg}")
    elif attack == "setuid":  # run a setuid-root binary; no_new_privs must neuter it
        import subprocess

        out = subprocess.run([args[0], "-u"], capture_output=True, text=True, check=False)
        report(out.stdout.strip() == "0", f"{args[0]} -u -> {out.stdout.strip()!r} "
               f"{out.stderr.strip()[:100]}")
    elif attack == "daemonize":  # setsid, double fork, clear the environment, outlive the run
        if os.fork() == 0:
            os.setsid()
            if os.fork() == 0:
                os.execve("/bin/sleep", ["sleep", "120"], {})
            os._exit(0)
        time.sleep(0.2)
        report(False, "left a daemon behind")
        if args and args[0] == "stay":  # and keep running until the run ends it
            time.sleep(600)
    elif attack == "connect":  # reach a service on the host's loopback
        try:
            socket.create_connection(("127.0.0.1", int(args[0])), timeout=5).close()
            report(True, f"connected to 127.0.0.1:{args[0]}")
        except OSError as err:
            report(False, f"127.0.0.1:{args[0]}: {err.strerror or err}")
    elif attack == "fds":
        report(False, sorted(int(x) for x in os.listdir("/proc/self/fd")))
    else:
        report(True, f"unknown attack {attack}")


if __name__ == "__main__":
    main()
