"""Live versions of the bursty and slow-to-first-proof models: a real sieving agent.

``python -m maxwell.experiments.agent --mode bursty|slow [options]`` is an SDK agent
(one process, one core) that finds primes like the Scientist and is paid for them,
with one of two habits the watchdog baseline misreads:

- `bursty`: work comes in phases: it sieves for an exponential time of mean
  `--on-s`, then waits (as for input) for one of mean `--off-s`. Phases run on the
  wall clock, seeded by the agent's name. It keeps bidding for its slot while it
  waits: an agent frozen for want of a slot cannot send a new bid, so one that
  asked for no slot while idle would never be thawed again.
- `slow`: it claims nothing until `--first-proof-cpu-s` CPU seconds of sieving are
  done, then claims all those segments at once and every segment from then on.

It bids like the Scientist: `--initial-bid` until a verdict arrives, then `--margin`
× bounty × verified units per CPU second spent on claimed work, never more than
its balance pays for one tick. It exits when the supervisor hangs up.
"""

from __future__ import annotations

import argparse
import random
import sys
import time
import zlib
from typing import Any


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="maxwell.experiments.agent")
    ap.add_argument("--mode", choices=("bursty", "slow", "useful"), required=True)
    ap.add_argument("--on-s", type=float, default=6.0)
    ap.add_argument("--off-s", type=float, default=14.0)
    ap.add_argument("--first-proof-cpu-s", type=float, default=15.0)
    ap.add_argument("--initial-bid", type=float, default=3.0)
    ap.add_argument("--margin", type=float, default=0.8)
    ap.add_argument("--segment-size", type=int, default=1 << 22)
    args = ap.parse_args(argv)

    from maxwell.agent import connect
    from maxwell.agents.protocol import Tick, VerdictMessage
    from maxwell.agents.sieve import sieve_segment

    with connect() as agent:
        name = agent.welcome.agent
        rng = random.Random(zlib.crc32(name.encode()))
        bounty = agent.welcome.bounty_per_unit or 0.0
        tick_s = agent.welcome.tick_s or 1.0
        # Agents of one group sieve different ranges (the verifier checks each segment).
        lo = (zlib.crc32(name.encode()) % 512) * (1 << 30)  # below the verifier's 2^40
        verified, claimed_cpu = 0, 0.0
        cpu_of: dict[Any, float] = {}
        pending: list[tuple[int, int, Any, float]] = []
        pending_cpu = 0.0
        proved = False
        balance: float | None = None
        on = True
        phase_end = time.monotonic() + rng.expovariate(1.0 / args.on_s)

        def rebid() -> None:
            price = args.initial_bid
            if claimed_cpu > 0 and verified > 0:
                price = args.margin * bounty * verified / claimed_cpu
            if balance is not None:
                price = min(price, max(balance, 0.0) / tick_s)
            agent.bid(price=max(price, 0.0), slots=1)

        rebid()
        while True:
            try:
                msgs = agent.receive(0.0)
            except ConnectionResetError:
                return 0
            for m in msgs:
                if isinstance(m, Tick):
                    balance = m.balance
                    rebid()
                elif isinstance(m, VerdictMessage):
                    claimed_cpu += cpu_of.pop(m.claim_id, 0.0)
                    if m.accepted:
                        verified += int(m.units)
            if msgs:
                continue  # drain everything before working again
            if args.mode == "bursty":
                now = time.monotonic()
                if now >= phase_end:
                    on = not on
                    phase_end = now + rng.expovariate(1.0 / (args.on_s if on else args.off_s))
                    rebid()
                if not on:
                    # Wait for input or the phase's end; the next pass reads what came.
                    import select

                    select.select([agent.fileno()], [], [], min(0.2, max(phase_end - now, 0.0)))
                    continue
            c0 = time.process_time()
            hi = lo + args.segment_size
            primes = sieve_segment(lo, hi)
            cpu = time.process_time() - c0
            if args.mode == "slow" and not proved:
                pending.append((lo, hi, primes, cpu))
                pending_cpu += cpu
                if pending_cpu >= args.first_proof_cpu_s:
                    for plo, phi, pp, pc in pending:
                        cpu_of[agent.report_primes(plo, phi, pp)] = pc
                    pending, proved = [], True
            else:
                cpu_of[agent.report_primes(lo, hi, primes)] = cpu
            lo = hi


if __name__ == "__main__":
    sys.exit(main())
