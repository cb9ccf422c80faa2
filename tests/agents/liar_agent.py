"""A dishonest agent for the tests: sieves honestly, then inflates every count.

python liar_agent.py CLAIMS SEGMENT INFLATE — claims CLAIMS consecutive segments
of SEGMENT numbers, each with count + INFLATE and genuine evidence primes, waits
for the verdicts, prints a JSON summary and exits.
"""

from __future__ import annotations

import json
import sys

from maxwell.agent import VerdictMessage, connect
from maxwell.agents.sieve import evidence_sample, sieve_segment

claims, segment, inflate = (int(a) for a in sys.argv[1:4])
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
