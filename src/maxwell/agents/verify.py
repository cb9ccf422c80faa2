"""Verification of work claims before any bounty is paid.

Work of kind ``primes`` is the only verifiable kind: a claim says "[lo, hi) holds
`units` primes" and carries a sample of them as evidence. The Verifier checks,
in order of cost:

1. shape: integers, ``0 <= lo < hi <= max_hi``, ``hi - lo <= max_segment``,
   at most ``max_sample`` evidence primes (a malformed claim is rejected, unpaid,
   but not fraud);
2. no overlap with a segment this agent was already paid for (fraud: paid twice);
3. evidence strictly increasing, inside [lo, hi), no more than `units` of them,
   and every one prime by deterministic Miller–Rabin (fraud otherwise);
4. `units` at most the Brun–Titchmarsh bound 2y/ln y for a segment of length y
   (Montgomery & Vaughan 1973), a deterministic ceiling (fraud above it);
5. with probability `resieve_probability`, the whole segment re-sieved and the
   count compared exactly (fraud if different).

A liar who inflates a count by less than the bound in (4) is therefore caught
with probability p per claim; the chance it survives n such claims is (1-p)^n.
Cost per claim is bounded: evidence checks are microseconds, and a re-sieve costs
at most one sieve of `max_segment` numbers below `max_hi` (about 0.2-0.4 s for
2^24 numbers on the reference VM), paid with probability p.

Other kinds (e.g. the Miner's ``hash``) are unverifiable: rejected, no bounty, no
fine. Pure computation with the injected random generator; no I/O, no clock.
"""

from __future__ import annotations

import bisect
from collections.abc import Mapping
from typing import Any

import numpy as np

from maxwell.agents.protocol import Verdict, WorkClaim
from maxwell.agents.sieve import count_primes, interval_count_bound, is_prime

DEFAULT_RESIEVE_PROBABILITY = 0.02  # = maxwell.defaults.RESIEVE_PROBABILITY (tested)

DEFAULT_MAX_SEGMENT = 1 << 24
DEFAULT_MAX_HI = 1 << 40  # sieving needs base primes up to sqrt(hi): 2^20 here
DEFAULT_MAX_SAMPLE = 64
VERIFIABLE_KINDS = ("primes",)


class _Intervals:
    """Disjoint, merged half-open intervals with an overlap test (bisect)."""

    def __init__(self) -> None:
        self.starts: list[int] = []
        self.ends: list[int] = []

    def overlaps(self, lo: int, hi: int) -> bool:
        i = bisect.bisect_right(self.starts, lo) - 1
        if i >= 0 and self.ends[i] > lo:
            return True
        j = i + 1
        return j < len(self.starts) and self.starts[j] < hi

    def add(self, lo: int, hi: int) -> None:
        i = bisect.bisect_left(self.starts, lo)
        # merge with an adjacent predecessor / successor so the list stays short
        if i > 0 and self.ends[i - 1] == lo:
            i -= 1
            lo = self.starts[i]
            del self.starts[i], self.ends[i]
        if i < len(self.starts) and self.starts[i] == hi:
            hi = self.ends[i]
            del self.starts[i], self.ends[i]
        self.starts.insert(i, lo)
        self.ends.insert(i, hi)

    def __len__(self) -> int:
        return len(self.starts)


class Verifier:
    """Checks WorkClaims; remembers which segments each agent has been paid for."""

    def __init__(
        self,
        resieve_probability: float = DEFAULT_RESIEVE_PROBABILITY,
        rng: np.random.Generator | None = None,
        *,
        max_segment: int = DEFAULT_MAX_SEGMENT,
        max_hi: int = DEFAULT_MAX_HI,
        max_sample: int = DEFAULT_MAX_SAMPLE,
    ) -> None:
        if not 0.0 <= resieve_probability <= 1.0:
            raise ValueError("resieve_probability must be in [0, 1]")
        self.resieve_probability = resieve_probability
        self.rng = rng if rng is not None else np.random.default_rng()
        self.max_segment = max_segment
        self.max_hi = max_hi
        self.max_sample = max_sample
        self._paid: dict[str, _Intervals] = {}
        self.resieves = 0  # how many claims were re-sieved (for the run record)

    def verify(self, claim: WorkClaim) -> Verdict:
        """Judge one claim. Never raises on agent-supplied content."""
        if claim.kind not in VERIFIABLE_KINDS:
            return Verdict(False, 0, f"work of kind {claim.kind!r} is not verifiable: no bounty")
        try:
            return self._primes(claim)
        except Exception as err:  # defensive: evidence is hostile input
            return Verdict(False, 0, f"malformed evidence ({type(err).__name__})")

    def _primes(self, claim: WorkClaim) -> Verdict:
        ev: Mapping[str, Any] = claim.evidence
        lo, hi, sample = ev.get("lo"), ev.get("hi"), ev.get("sample", [])
        if not (_is_int(lo) and _is_int(hi)):
            return Verdict(False, 0, 'evidence needs integer "lo" and "hi"')
        assert isinstance(lo, int) and isinstance(hi, int)
        if not 0 <= lo < hi <= self.max_hi:
            return Verdict(False, 0, f"segment must satisfy 0 <= lo < hi <= {self.max_hi}")
        if hi - lo > self.max_segment:
            return Verdict(False, 0, f"segment longer than {self.max_segment}: split it")
        if not isinstance(sample, list) or not all(_is_int(x) for x in sample):
            return Verdict(False, 0, 'evidence "sample" must be a list of integers')
        if len(sample) > self.max_sample:
            return Verdict(False, 0, f"more than {self.max_sample} evidence primes")
        count = ev.get("count", claim.units)
        if count != claim.units:
            return Verdict(False, 0, f"units {claim.units} differ from evidence count", fraud=True)
        units = claim.units
        paid = self._paid.setdefault(claim.agent, _Intervals())
        if paid.overlaps(lo, hi):
            return Verdict(False, 0, f"[{lo}, {hi}) overlaps work already paid for", fraud=True)
        if len(sample) > units:
            return Verdict(False, 0, "more evidence primes than the claimed count", fraud=True)
        if units > 0 and not sample:
            return Verdict(False, 0, "a nonzero count needs at least one evidence prime")
        prev = lo - 1
        for p in sample:
            if not prev < p < hi:
                return Verdict(False, 0, f"evidence {p} out of order or outside [{lo}, {hi})",
                               fraud=True)
            if not is_prime(p):
                return Verdict(False, 0, f"evidence {p} is composite", fraud=True)
            prev = p
        bound = interval_count_bound(lo, hi)
        if units > bound:
            return Verdict(False, 0, f"{units} primes cannot fit in [{lo}, {hi}) "
                           f"(Brun–Titchmarsh bound {bound})", fraud=True)
        how = "spot-checked"
        if self.rng.random() < self.resieve_probability:
            self.resieves += 1
            true_count = count_primes(lo, hi)
            if true_count != units:
                return Verdict(False, 0, f"re-sieved [{lo}, {hi}): {true_count} primes, "
                               f"not {units}", fraud=True)
            how = "re-sieved"
        paid.add(lo, hi)
        return Verdict(True, units, f"{units} primes in [{lo}, {hi}) {how}")


def _is_int(x: object) -> bool:
    return isinstance(x, int) and not isinstance(x, bool)
