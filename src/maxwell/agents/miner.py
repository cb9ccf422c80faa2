"""The Miner: burns CPU, churns memory, proves nothing, and bids high.

``python -m maxwell.agents.miner [--workers N] [--bid PRICE] ...`` (options:
builtin.OPTIONS). Each worker process hashes (SHA-256 over a 64 KiB buffer) and,
at `churn_bytes_per_s / workers`, releases memory in `chunk_bytes` pieces,
alternating the two ways the memory tracer sees: madvise(MADV_DONTNEED) on a
touched, persistent mapping, and munmap of a fresh, touched mapping. Each cycle
releases exactly `chunk_bytes` of address range, so the traced bytes freed
match the configured rate while the Miner runs. After being frozen it does not
try to catch up (the churn schedule restarts from now).

Strategy: a fixed `bid` for `slots` slot-units, re-sent every tick, whatever its
balance: it spends until it is bankrupt. With `claim_hashes` it reports its hash
count each tick as work of kind ``hash``; the supervisor cannot verify hashes, so
these claims are rejected without a bounty (and without a fine: unverifiable is
not false). It exits when the supervisor hangs up.
"""

from __future__ import annotations

import argparse
import hashlib
import mmap
import os
import sys
import time
from multiprocessing.connection import Connection

from maxwell.agents._proc import die_with_parent, start_workers, stop_workers, wait_ready
from maxwell.agents.builtin import add_arguments
from maxwell.agents.client import Agent, NotUnderMaxwell, Rejected, connect
from maxwell.agents.protocol import Tick

_PAGE = mmap.PAGESIZE
_REPORT_S = 0.25  # how often a worker tells the main process its hash count


def _touch(m: mmap.mmap, size: int) -> None:
    # one write per page makes the kernel back it with memory (so RSS shows the churn)
    m[0:size:_PAGE] = b"\x01" * len(range(0, size, _PAGE))


def _worker(conn: Connection, parent_pid: int, churn_bytes_per_s: float, chunk_bytes: int) -> None:
    die_with_parent(parent_pid)
    block = os.urandom(1 << 16)
    digest = hashlib.sha256()
    hashes = 0
    persistent = mmap.mmap(-1, chunk_bytes) if churn_bytes_per_s > 0 else None
    cycle = 0
    interval_s = chunk_bytes / churn_bytes_per_s if churn_bytes_per_s > 0 else 0.0
    now = time.monotonic()
    next_churn = now
    next_report = now + _REPORT_S
    try:
        while True:
            for _ in range(16):
                digest.update(block)
            hashes += 16
            now = time.monotonic()
            if persistent is not None and now >= next_churn:
                if cycle % 2 == 0:
                    _touch(persistent, chunk_bytes)
                    persistent.madvise(mmap.MADV_DONTNEED)
                else:
                    fresh = mmap.mmap(-1, chunk_bytes)
                    _touch(fresh, chunk_bytes)
                    fresh.close()  # munmap
                cycle += 1
                next_churn += interval_s
                if next_churn < now - 1.0:
                    next_churn = now  # we were frozen: do not make up for lost time
            if now >= next_report:
                conn.send(hashes)
                hashes = 0
                next_report = now + _REPORT_S
    except (BrokenPipeError, EOFError, OSError, KeyboardInterrupt):
        pass


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m maxwell.agents.miner",
                                     description="Maxwell's Miner agent: unverifiable busywork.")
    add_arguments(parser, "miner")
    args = parser.parse_args(argv)
    slots = args.slots or args.workers

    conns, procs = start_workers(  # before connecting: workers must not inherit the socket
        _worker, [(args.churn_bytes_per_s / args.workers, args.chunk_bytes)] * args.workers)

    agent: Agent | None
    try:
        agent = connect()
    except NotUnderMaxwell:
        agent = None
    except (OSError, Rejected) as err:
        print(f"miner: cannot join the supervisor: {err}", file=sys.stderr)
        agent = None  # keep burning: the membrane still meters and bills us
    try:
        return _loop(agent, conns, args.bid, slots, args.claim_hashes)
    finally:
        if agent is not None:
            agent.close()
        stop_workers(procs)


def _loop(agent: Agent | None, conns: list[Connection], bid: float, slots: int,
          claim_hashes: bool) -> int:
    if agent is not None:
        agent.bid(bid, slots)
    hashes = 0
    live = list(conns)
    while live:
        for ready in wait_ready(live, agent):
            if agent is not None and isinstance(ready, int):
                try:
                    msgs = agent.receive(0.0)
                except ConnectionResetError:
                    return 0
                if any(isinstance(m, Tick) for m in msgs):
                    try:
                        agent.bid(bid, slots)
                        if claim_hashes and hashes:
                            agent.report_work("hash", hashes, {"algorithm": "sha256",
                                                              "block_bytes": 1 << 16})
                            hashes = 0
                    except OSError:
                        return 0
                continue
            assert isinstance(ready, Connection)
            try:
                hashes += int(ready.recv())
            except (EOFError, OSError):
                live.remove(ready)
    return 0


if __name__ == "__main__":
    sys.exit(main())
