"""CPU the supervisor spends verifying a Scientist's claims, per claim and as a share
of the claimant's own sieving CPU: python examples/verify_cost.py

Sieves 40 segments of 2^24 numbers (as the built-in Scientist claims them), then
verifies each claim 25 times with fresh draws: once without per-block counts (the
whole segment re-sieved with probability 0.02, every sample prime checked: the rule
before block commitments, approximated by checking all 64 sample primes) and once
with the shipped defaults (64 block counts, one block re-sieved with probability
0.05, 16 sample primes checked). CPU time (time.process_time), so neighbours on the
machine do not inflate it.
"""

from __future__ import annotations

import time

import numpy as np

from maxwell.agents.protocol import WorkClaim
from maxwell.agents.sieve import evidence_sample, sieve_segment
from maxwell.agents.verify import Verifier

SEG = 1 << 24
BLOCK = SEG // 64
full, blocked, sieve_cpu = [], [], 0.0
for i in range(40):
    lo, hi = (i + 8) * SEG, (i + 9) * SEG
    t = time.process_time()
    primes = sieve_segment(lo, hi)
    sieve_cpu += time.process_time() - t
    ev = {"lo": lo, "hi": hi, "sample": evidence_sample(primes, 64)}
    counts = np.bincount((primes - lo) // BLOCK, minlength=64).tolist()
    full.append(WorkClaim("a", "primes", int(primes.size), ev))
    blocked.append(WorkClaim("a", "primes", int(primes.size),
                             {**ev, "block": BLOCK, "blocks": counts}))
per_sieve = sieve_cpu / len(full)
cases = [
    ("whole-segment audits p=0.02, 64 sample primes", full,
     lambda: Verifier(0.02, np.random.default_rng(0), primality_checks=64)),
    ("block audits (shipped defaults)", blocked, lambda: Verifier(rng=np.random.default_rng(0))),
]
for name, claims, make in cases:
    cpu = 0.0
    for rep in range(25):
        v = make()
        v.rng = np.random.default_rng(rep)
        t = time.process_time()
        for c in claims:
            assert v.verify(c).accepted
        cpu += time.process_time() - t
    per = cpu / (25 * len(claims))
    print(f"{name}: {per * 1e3:.3f} ms CPU per claim = {100 * per / per_sieve:.2f} % of the "
          f"claimant's sieve CPU ({per_sieve * 1e3:.1f} ms per segment)")
