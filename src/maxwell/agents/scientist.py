"""The Scientist: finds primes, proves it, and bids what its work is worth.

``python -m maxwell.agents.scientist [--workers N] ...`` (options: builtin.OPTIONS).
Worker processes sieve consecutive segments [lo, hi) of `segment_size` numbers
(worker i takes segments i, i+N, i+2N, ...) with the numpy segmented sieve and
hand each result, with the CPU seconds it took, to the main process, which
claims it as work of kind ``primes``: units = primes found, evidence = the
segment and an evenly spread sample of its primes.

Each claim also commits to the count of every 1/64 of its segment, so an audit
re-sieves one block, not the whole segment (agents/verify.py).

Bidding (`ValueBidder`): its value per core-second is bounty_per_unit (from the
`welcome`) × verified units per CPU-second (accepted verdicts only, over all CPU
spent on claimed segments); it bids that × `margin`, never more than its balance
can pay for its slots over one tick. Until the first verdict it bids
`initial_bid`. It re-bids after every tick.

Frozen (SIGSTOP/cgroup freeze) it simply resumes: nothing here depends on wall
time. It exits when the supervisor hangs up, or after `stop` if one is set.
Without MAXWELL_ENDPOINT it runs stand-alone and prints one JSON line per segment.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from multiprocessing.connection import Connection
from typing import Any

from maxwell.agents._proc import die_with_parent, start_workers, stop_workers, wait_ready
from maxwell.agents.builtin import add_arguments
from maxwell.agents.client import Agent, NotUnderMaxwell, Rejected, connect
from maxwell.agents.protocol import Tick, VerdictMessage
from maxwell.agents.verify import DEFAULT_MAX_HI

AUDIT_BLOCKS = 64  # blocks per segment in a claim's per-block counts


class ValueBidder:
    """The Scientist's bidding rule, separated from I/O so it can be tested alone."""

    def __init__(self, initial_bid: float, margin: float, slots: int) -> None:
        self.initial_bid = initial_bid
        self.margin = margin
        self.slots = max(slots, 1)
        self.bounty_per_unit: float | None = None
        self.tick_s = 1.0
        self.verified_units = 0
        self.claimed_cpu_s = 0.0

    def judged(self, accepted: bool, units: int, cpu_s: float) -> None:
        """Learn from one verdict: rejected work still cost its CPU."""
        self.claimed_cpu_s += max(cpu_s, 0.0)
        if accepted:
            self.verified_units += max(units, 0)

    def value_per_core_s(self) -> float | None:
        if self.bounty_per_unit is None or self.claimed_cpu_s <= 0.0:
            return None
        return self.bounty_per_unit * self.verified_units / self.claimed_cpu_s

    def price(self, balance: float | None) -> float:
        value = self.value_per_core_s()
        price = self.initial_bid if value is None else value * self.margin
        if balance is not None:
            # winners prepay price × slots × tick: never promise more than the wallet holds
            price = min(price, max(balance, 0.0) / (self.slots * self.tick_s))
        return max(price, 0.0)


def _worker(conn: Connection, parent_pid: int, index: int, stride: int, start: int, stop: int,
            segment: int, sample_size: int) -> None:
    die_with_parent(parent_pid)
    import numpy as np

    from maxwell.agents.sieve import evidence_sample, sieve_segment

    i = index
    try:
        while True:
            lo = start + i * segment
            hi = lo + segment
            if stop:
                hi = min(hi, stop)
            hi = min(hi, DEFAULT_MAX_HI)
            if lo >= hi:
                break
            t0 = time.process_time()
            primes = sieve_segment(lo, hi)
            # Per-block counts commit the claim block by block, so an audit re-sieves
            # one block instead of the whole segment (agents/verify.py).
            block = max(segment // AUDIT_BLOCKS, 1)
            n_blocks = -(-(hi - lo) // block)
            blocks = np.bincount((primes - lo) // block, minlength=n_blocks).tolist()
            cpu_s = time.process_time() - t0
            conn.send((lo, hi, int(primes.size), evidence_sample(primes, sample_size), cpu_s,
                       block, blocks))
            i += stride
        conn.send(None)
    except (BrokenPipeError, EOFError, OSError, KeyboardInterrupt):
        pass
    finally:
        conn.close()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m maxwell.agents.scientist",
                                     description="Maxwell's Scientist agent: verified primes.")
    add_arguments(parser, "scientist")
    args = parser.parse_args(argv)
    slots = args.slots or args.workers

    conns, procs = start_workers(  # before connecting: workers must not inherit the socket
        _worker, [(i, args.workers, args.start, args.stop, args.segment_size, args.sample_size)
                  for i in range(args.workers)])

    agent: Agent | None
    try:
        agent = connect()
    except NotUnderMaxwell:
        agent = None
    except (OSError, Rejected) as err:
        print(f"scientist: cannot join the supervisor: {err}", file=sys.stderr)
        stop_workers(procs)
        return 1
    try:
        return _loop(agent, conns, args, slots)
    finally:
        if agent is not None:
            agent.close()
        stop_workers(procs)


def _loop(agent: Agent | None, conns: list[Connection], args: Any, slots: int) -> int:
    bidder = ValueBidder(args.initial_bid, args.margin, slots)
    pending: dict[str | int, float] = {}  # claim id -> CPU seconds it cost
    if agent is not None:
        bidder.bounty_per_unit = agent.welcome.bounty_per_unit
        bidder.tick_s = agent.welcome.tick_s or 1.0
        agent.bid(bidder.price(None), slots)
    live = list(conns)
    while live:
        for ready in wait_ready(live, agent):
            if agent is not None and isinstance(ready, int):
                try:
                    msgs = agent.receive(0.0)
                except ConnectionResetError:
                    return 0  # the supervisor hung up: our work can no longer be paid
                balance = None
                for m in msgs:
                    if isinstance(m, VerdictMessage):
                        cpu_s = pending.pop(m.claim_id, 0.0) if m.claim_id is not None else 0.0
                        bidder.judged(m.accepted, m.units, cpu_s)
                    elif isinstance(m, Tick):
                        balance = m.balance
                if balance is not None:
                    agent.bid(bidder.price(balance), slots)
                continue
            assert isinstance(ready, Connection)
            try:
                result = ready.recv()
            except (EOFError, OSError):
                result = None
            if result is None:
                live.remove(ready)
                continue
            lo, hi, count, sample, cpu_s, block, blocks = result
            if agent is None:
                print(json.dumps({"lo": lo, "hi": hi, "count": count, "cpu_s": cpu_s}), flush=True)
                continue
            try:
                cid = agent.report_work("primes", count, {"lo": lo, "hi": hi, "sample": sample,
                                                          "block": block, "blocks": blocks})
            except OSError:
                return 0
            pending[cid] = cpu_s
            if len(pending) > 4096:  # verdicts that never came: forget the oldest
                pending.pop(next(iter(pending)))
    return 0


if __name__ == "__main__":
    sys.exit(main())
