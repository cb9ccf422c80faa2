"""A dishonest agent for the tests: sieves honestly, then inflates its counts.

python liar_agent.py CLAIMS SEGMENT INFLATE — claims CLAIMS consecutive segments
of SEGMENT numbers, each with count + INFLATE and genuine evidence primes, waits
for the verdicts, prints a JSON summary and exits.

python liar_agent.py twin FACTOR [SEGMENT] — runs like a one-worker Scientist until
the supervisor hangs up: sieves consecutive segments, claims each with per-block
counts (64 blocks) multiplied by FACTOR (1.0: the honest twin), bids 1.0 for one slot.
"""

from __future__ import annotations

import json
import sys

import numpy as np

from maxwell.agent import VerdictMessage, connect
from maxwell.agents.sieve import evidence_sample, sieve_segment


def twin(factor: float, segment: int) -> None:
    block = max(segment // 64, 1)
    with connect() as agent:
        agent.bid(1.0, 1)
        i = 0
        try:
            while True:
                lo, hi = i * segment, (i + 1) * segment
                primes = sieve_segment(lo, hi)
                blocks = np.bincount((primes - lo) // block, minlength=-(-segment // block))
                claimed = [round(c * factor) for c in blocks.tolist()]
                agent.report_work("primes", sum(claimed), {
                    "lo": lo, "hi": hi, "sample": evidence_sample(primes, 4),
                    "block": block, "blocks": claimed})
                agent.receive(0.0)
                agent.bid(1.0, 1)
                i += 1
        except (OSError, ConnectionError):
            return  # the supervisor hung up


def batch(claims: int, segment: int, inflate: int) -> None:
    with connect() as agent:
        agent.bid(1.0, 1)
        for i in range(claims):
            lo, hi = i * segment, (i + 1) * segment
            primes = sieve_segment(lo, hi)
            agent.report_work(
                "primes",
                int(primes.size) + inflate,
                {"lo": lo, "hi": hi, "sample": evidence_sample(primes, 4)},
            )
            if i % 32 == 31:  # stay under the endpoint's per-tick claim limit
                while len(agent.verdicts) < i + 1 - 32:
                    agent.receive(None)
        while len(agent.verdicts) < claims:
            agent.receive(None)
        verdicts: list[VerdictMessage] = list(agent.verdicts)
        print(
            json.dumps(
                {
                    "claims": claims,
                    "fraud": sum(v.fraud for v in verdicts),
                    "accepted": sum(v.accepted for v in verdicts),
                }
            ),
            flush=True,
        )


if sys.argv[1] == "twin":
    twin(float(sys.argv[2]), int(sys.argv[3]) if len(sys.argv) > 3 else 1 << 20)
else:
    batch(*(int(a) for a in sys.argv[1:4]))
