"""A stand-in supervisor for writing agents: an Endpoint, a Verifier and a tick loop, no economy.

``python -m maxwell.agents.devserver [--dir DIR] [--agent NAME ...] [--tick-s 1]``
writes the environment each agent needs (MAXWELL_ENDPOINT, MAXWELL_TOKEN,
MAXWELL_AGENT) to DIR/NAME.env for `source`, then every tick: polls, verifies
work claims, answers with verdicts and sends ticks with a fixed price and a
play balance (bounty paid in, rent at the agent's bid charged out). Every
record is printed as one line, so a newcomer can drive it by hand with socat
(docs/protocol.md). Not used by `maxwell run`; touches only its socket
directory (the socket and one NAME.env file per agent).
"""

from __future__ import annotations

import argparse
import contextlib
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

from maxwell.agents.endpoint import Endpoint
from maxwell.agents.protocol import Bid, WorkClaim
from maxwell.agents.verify import DEFAULT_RESIEVE_PROBABILITY, Verifier


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m maxwell.agents.devserver",
                                     description=__doc__.split("\n")[0] if __doc__ else None)
    parser.add_argument("--dir", type=Path, default=None, help="socket directory (default: temp)")
    parser.add_argument("--agent", action="append", default=None, help="agent name (repeatable)")
    parser.add_argument("--tick-s", type=float, default=1.0)
    parser.add_argument("--price", type=float, default=0.1, help="reserve price sent in ticks")
    parser.add_argument("--bounty", type=float, default=1e-3, help="credits per verified unit")
    parser.add_argument("--funds", type=float, default=100.0, help="each agent's play balance")
    parser.add_argument("--resieve-p", type=float, default=DEFAULT_RESIEVE_PROBABILITY)
    parser.add_argument("--ticks", type=int, default=0, help="stop after N ticks (0: never)")
    args = parser.parse_args(argv)
    directory = args.dir or Path(tempfile.mkdtemp(prefix="maxwell-dev-"))
    names = args.agent or ["agent"]
    ep = Endpoint(directory, welcome_extra={"bounty_per_unit": args.bounty,
                                            "tick_s": args.tick_s})
    verifier = Verifier(args.resieve_p, np.random.default_rng())
    balance = {n: args.funds for n in names}
    bids = {n: (0.0, 0) for n in names}
    for n in names:
        env = ep.register(n)
        env_file = directory / f"{n}.env"
        env_file.write_text("".join(f"export {k}={v}\n" for k, v in env.items()))
        print(f"# agent {n}: source {env_file}", flush=True)
    t0 = time.monotonic()
    tick = 0
    try:
        while not args.ticks or tick < args.ticks:
            time.sleep(args.tick_s)
            tick += 1
            for rec in ep.poll():
                print(rec, flush=True)
                if isinstance(rec, Bid):
                    bids[rec.agent] = (rec.price, rec.slots)
                elif isinstance(rec, WorkClaim):
                    v = verifier.verify(rec)
                    print("  ->", v, flush=True)
                    balance[rec.agent] += v.units * args.bounty
                    ep.send_verdict(rec.agent, v.accepted, v.units, v.reason, fraud=v.fraud)
            for n in names:
                price, slots = bids[n]
                won = slots if price >= args.price else 0
                balance[n] = max(balance[n] - args.price * won * args.tick_s, 0.0)
                ep.send_tick(n, time.monotonic() - t0, args.price, balance[n], won)
    except KeyboardInterrupt:
        pass
    finally:
        ep.close()
        for n in names:
            with contextlib.suppress(OSError):
                (directory / f"{n}.env").unlink()
        if args.dir is None:
            with contextlib.suppress(OSError):
                directory.rmdir()
    return 0


if __name__ == "__main__":
    sys.exit(main())
