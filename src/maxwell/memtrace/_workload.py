"""A child process that frees exactly known byte counts on command (benchmark and tests).

Run as `python -m maxwell.memtrace._workload`; it prints `ready <pid>` and then
obeys one command per line on stdin, answering one line on stdout when the
work is done (nothing is freed between commands, so a tracer read before and
after a command sees exactly that command's frees):

  munmap SIZE...           mmap, write, then munmap each size          -> done
  madvise ADVICE SIZE...   madvise(ADVICE) a range of each size,       -> done
                           written first if ADVICE frees (DONTNEED, FREE, REMOVE,
                           DONTNEED_LOCKED); MADV_REMOVE on a shared mapping, others private
  einval                   munmap/madvise calls the kernel rejects,    -> done
                           then one written page unmapped
  threads K SIZE...        K threads each munmap every size            -> done
  fork SIZE...             a forked child munmaps every size           -> done
  forkmany K               fork K children that exit at once (reaped)  -> done
  release                  let threads and forked children exit        -> released
  bench N SIZE...          N × (mmap+munmap, madvise DONTNEED)         -> done <cpu_ns>
  fault N SIZE...          N × (mmap, write), all kept                 -> done <cpu_ns>
  free                     munmap what `fault` mapped                  -> done <cpu_ns>
  syscalls N               N getppid() calls, nothing freed            -> done <cpu_ns>
  touch SIZE               map SIZE bytes and write every page         -> done
  untouch                  munmap what `touch` mapped                  -> done
  quit

Every page is written before it is freed: a page never written is never
resident, so giving it back frees nothing and is not counted.
Threads and forked children stay alive until `release`, because glibc gives a
finished thread's stack back with madvise(MADV_DONTNEED), a real free that
would otherwise land inside the measured window. Timings are this thread's CPU
time (the BPF program runs in the caller's context, so it is included), which
other processes competing for the CPUs do not inflate the way wall time is.
Touches only its own memory.
"""

from __future__ import annotations

import ctypes
import os
import sys
import threading
import time

PROT_RW = 0x1 | 0x2
MAP_PRIVATE_ANON = 0x02 | 0x20
MAP_SHARED_ANON = 0x01 | 0x20  # shmem-backed: the only kind MADV_REMOVE accepts
MADV_REMOVE = 9
MADV_DONTNEED = 4
FREEING_ADVICE = (4, 8, 9, 24)  # DONTNEED, FREE, REMOVE, DONTNEED_LOCKED
REGION_BYTES = 64 << 20  # madvise target, mapped once at start so madvise needs no new mapping

_libc = ctypes.CDLL(None, use_errno=True)
_mmap = _libc.mmap
_mmap.restype = ctypes.c_void_p
_mmap.argtypes = [
    ctypes.c_void_p,
    ctypes.c_size_t,
    ctypes.c_int,
    ctypes.c_int,
    ctypes.c_int,
    ctypes.c_long,
]
_munmap = _libc.munmap
_munmap.restype = ctypes.c_int
_munmap.argtypes = [ctypes.c_void_p, ctypes.c_size_t]
_madvise = _libc.madvise
_madvise.restype = ctypes.c_int
_madvise.argtypes = [ctypes.c_void_p, ctypes.c_size_t, ctypes.c_int]


def _map(size: int, flags: int = MAP_PRIVATE_ANON) -> int:
    addr = _mmap(None, size, PROT_RW, flags, -1, 0)
    if addr is None or addr == ctypes.c_void_p(-1).value:
        raise OSError(ctypes.get_errno(), "mmap failed")
    return int(addr)


def _touch(addr: int, size: int) -> None:
    """Write every page of [addr, addr+size): make it resident, charged to our cgroup."""
    ctypes.memset(addr, 1, size)


def _free(size: int) -> None:
    addr = _map(size)
    _touch(addr, size)
    if _munmap(addr, size) != 0:
        raise OSError(ctypes.get_errno(), "munmap failed")


def main() -> int:
    region = _map(REGION_BYTES)
    shared = _map(REGION_BYTES, MAP_SHARED_ANON)
    release = threading.Event()
    waiters: list[threading.Thread] = []
    forked: list[int] = []
    touched: list[tuple[int, int]] = []
    held: list[tuple[int, int]] = []
    out = sys.stdout
    out.write(f"ready {os.getpid()}\n")
    out.flush()
    for line in sys.stdin:
        cmd, *rest = line.split()
        args = [int(a) for a in rest]
        reply = "done"
        if cmd == "munmap":
            for size in args:
                _free(size)
        elif cmd == "madvise":
            advice, sizes = args[0], args[1:]
            target = shared if advice == MADV_REMOVE else region
            for size in sizes:
                if advice in FREEING_ADVICE:  # (PAGEOUT must find lazily freed pages as they are)
                    _touch(target, size)
                if _madvise(target, size, advice) != 0:
                    raise OSError(ctypes.get_errno(), "madvise failed")
        elif cmd == "einval":
            page = _map(4096)
            _touch(page, 4096)
            assert _munmap(page + 1, 4096) == -1  # unaligned address
            assert _munmap(page, 0) == -1  # zero length
            assert _madvise(region + 1, 4096, MADV_DONTNEED) == -1  # unaligned address
            assert _madvise(region, 4096, 12345) == -1  # no such advice
            _munmap(page, 4096)  # (not measured: the caller reads before `einval` is sent)
            reply = "done"
        elif cmd == "threads":
            k, sizes = args[0], args[1:]
            done = threading.Barrier(k + 1)

            def work(sizes: list[int] = sizes, done: threading.Barrier = done) -> None:
                for size in sizes:
                    _free(size)
                done.wait()
                release.wait()

            for _ in range(k):
                t = threading.Thread(target=work)
                t.start()
                waiters.append(t)
            done.wait()
        elif cmd == "fork":
            r, w = os.pipe()
            rel_r, rel_w = os.pipe()
            pid = os.fork()
            if pid == 0:
                for size in args:
                    _free(size)
                os.write(w, b"x")
                os.read(rel_r, 1)  # stay until released
                os._exit(0)
            os.read(r, 1)
            os.close(r)
            os.close(w)
            forked.append(rel_w)
            forked.append(pid)
        elif cmd == "forkmany":
            for _ in range(args[0]):
                pid = os.fork()
                if pid == 0:
                    os._exit(0)
                os.waitpid(pid, 0)
        elif cmd == "release":
            release.set()
            for t in waiters:
                t.join()
            waiters.clear()
            # join() returns before the OS thread has finished exiting, and glibc frees
            # the stack (madvise) on the way out: wait until only this thread is left.
            while len(os.listdir("/proc/self/task")) > 1:
                time.sleep(0.001)
            while forked:
                pid, rel_w = forked.pop(), forked.pop()
                os.write(rel_w, b"x")
                os.close(rel_w)
                os.waitpid(pid, 0)
            release.clear()
            reply = "released"
        elif cmd == "bench":
            n, sizes = args[0], args[1:]
            m = len(sizes)
            t0 = time.thread_time_ns()
            for i in range(n):
                size = sizes[i % m]
                a = _mmap(None, size, PROT_RW, MAP_PRIVATE_ANON, -1, 0)
                _touch(a, size)
                _munmap(a, size)
                _touch(region, size)
                _madvise(region, size, MADV_DONTNEED)
            reply = f"done {time.thread_time_ns() - t0}"
        elif cmd == "fault":
            n, sizes = args[0], args[1:]
            t0 = time.thread_time_ns()
            for i in range(n):
                size = sizes[i % len(sizes)]
                a = _map(size)
                _touch(a, size)
                held.append((a, size))
            reply = f"done {time.thread_time_ns() - t0}"
        elif cmd == "free":
            t0 = time.thread_time_ns()
            for a, size in held:
                _munmap(a, size)
            held.clear()
            reply = f"done {time.thread_time_ns() - t0}"
        elif cmd == "syscalls":
            getppid = os.getppid
            t0 = time.thread_time_ns()
            for _ in range(args[0]):
                getppid()
            reply = f"done {time.thread_time_ns() - t0}"
        elif cmd == "touch":
            addr = _map(args[0])
            ctypes.memset(addr, 1, args[0])
            touched.append((addr, args[0]))
        elif cmd == "untouch":
            while touched:
                addr, size = touched.pop()
                _munmap(addr, size)
        elif cmd == "quit":
            break
        else:
            reply = f"error unknown command {cmd}"
        out.write(reply + "\n")
        out.flush()
    return 0


if __name__ == "__main__":
    sys.exit(main())
