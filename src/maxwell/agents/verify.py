"""Verification of work claims before any bounty is paid.

Work of kind ``primes`` is the only verifiable kind: a claim says "[lo, hi) holds
`units` primes" and carries a sample of them as evidence, and may commit to per-block
counts (``"block": B, "blocks": [c_0, c_1, …]``, the primes in each consecutive block
of B numbers; they must sum to `units`). The Verifier checks, in order of cost:

1. shape: integers, ``0 <= lo < hi <= max_hi``, ``hi - lo <= max_segment``,
   at most ``max_sample`` evidence primes, a well-formed block list (a malformed
   claim is rejected, unpaid, but not fraud);
2. no overlap with a segment this agent was already paid for (fraud: paid twice);
3. evidence strictly increasing, inside [lo, hi), no more than `units` of them,
   and a random `primality_checks` of them prime by deterministic Miller–Rabin
   (fraud otherwise, fined as caught with probability checks/len(sample));
4. `units` (and every block count) at most the Brun–Titchmarsh bound 2y/ln y for an
   interval of length y (Montgomery & Vaughan 1973), a deterministic ceiling;
5. an audit: a claim with block counts, with probability `block_audit_probability`,
   has one block drawn uniformly re-sieved and its count compared exactly; a claim
   without them, with probability `resieve_probability`, has the whole segment
   re-sieved. After a catch, the agent's next `probation_claims` claims are all
   audited (probability 1).

Deterrence (docs/protocol.md, "Why fraud does not pay"): a lie below the ceiling in
(4) is caught with probability at least q = p (whole segment) or p/n_blocks (a block
commitment: the lie sits in at least one of the n blocks). A fraud verdict carries
``fine_units`` = claimed units / q (claimed units for the deterministic checks), which
the economy fines at the bounty rate on top of the fixed fine; the liar also forfeits
the claim. Expected gain of a lie inflating a true count t to c, per claim:
(1−q)·c·b − q·(c·b/q) − t·b = −q·c·b − t·b < 0, for every c, whatever q is. Cost:
evidence checks are microseconds; a block audit sieves B numbers (1/n of a segment).

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

# Literal copies of maxwell.defaults (checked by tests/test_defaults.py).
DEFAULT_RESIEVE_PROBABILITY = 0.02
DEFAULT_BLOCK_AUDIT_PROBABILITY = 0.05
DEFAULT_PROBATION_CLAIMS = 200
DEFAULT_PRIMALITY_CHECKS = 16  # sample primes tested per claim (Miller–Rabin)
MAX_BLOCKS = 256

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
        block_audit_probability: float = DEFAULT_BLOCK_AUDIT_PROBABILITY,
        probation_claims: int = DEFAULT_PROBATION_CLAIMS,
        primality_checks: int = DEFAULT_PRIMALITY_CHECKS,
        max_segment: int = DEFAULT_MAX_SEGMENT,
        max_hi: int = DEFAULT_MAX_HI,
        max_sample: int = DEFAULT_MAX_SAMPLE,
    ) -> None:
        if not 0.0 <= resieve_probability <= 1.0:
            raise ValueError("resieve_probability must be in [0, 1]")
        if not 0.0 < block_audit_probability <= 1.0:
            raise ValueError("block_audit_probability must be in (0, 1]")
        if probation_claims < 0:
            raise ValueError("probation_claims must be >= 0")
        self.resieve_probability = resieve_probability
        self.block_audit_probability = block_audit_probability
        self.probation_claims = probation_claims
        self.primality_checks = max(int(primality_checks), 1)
        self.rng = rng if rng is not None else np.random.default_rng()
        self.max_segment = max_segment
        self.max_hi = max_hi
        self.max_sample = max_sample
        self._paid: dict[str, _Intervals] = {}
        self._probation: dict[str, int] = {}  # agent -> claims still audited at p = 1
        self.resieves = 0  # how many claims were re-sieved in full (for the run record)
        self.block_audits = 0  # how many claims had one block re-sieved
        self.numbers_sieved = 0  # numbers re-sieved by audits (their CPU cost)

    def verify(self, claim: WorkClaim) -> Verdict:
        """Judge one claim. Never raises on agent-supplied content."""
        if claim.kind not in VERIFIABLE_KINDS:
            return Verdict(False, 0, f"work of kind {claim.kind!r} is not verifiable: no bounty")
        try:
            verdict = self._primes(claim)
        except Exception as err:  # defensive: evidence is hostile input
            return Verdict(False, 0, f"malformed evidence ({type(err).__name__})")
        if verdict.fraud:
            self._probation[claim.agent] = self.probation_claims
        return verdict

    def on_probation(self, agent: str) -> bool:
        """Whether the agent's next claim is audited with certainty."""
        return self._probation.get(agent, 0) > 0

    def _audit_draw(self, agent: str, p: float) -> tuple[bool, float]:
        """(audit this claim?, the probability used), probation first."""
        left = self._probation.get(agent, 0)
        if left > 0:
            self._probation[agent] = left - 1
            return True, 1.0
        return bool(self.rng.random() < p), p

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
        blocks = self._blocks(ev, lo, hi)
        if isinstance(blocks, str):
            return Verdict(False, 0, blocks)
        units = claim.units
        sure = float(max(units, 0))  # fine units of a lie caught with certainty
        count = ev.get("count", units)
        if count != units:
            return Verdict(False, 0, f"units {units} differ from evidence count", fraud=True,
                           fine_units=sure)
        paid = self._paid.setdefault(claim.agent, _Intervals())
        if paid.overlaps(lo, hi):
            return Verdict(False, 0, f"[{lo}, {hi}) overlaps work already paid for", fraud=True,
                           fine_units=sure)
        if len(sample) > units:
            return Verdict(False, 0, "more evidence primes than the claimed count", fraud=True,
                           fine_units=sure)
        if units > 0 and not sample:
            return Verdict(False, 0, "a nonzero count needs at least one evidence prime")
        prev = lo - 1
        for p in sample:
            if not prev < p < hi:
                return Verdict(False, 0, f"evidence {p} out of order or outside [{lo}, {hi})",
                               fraud=True, fine_units=sure)
            prev = p
        # Miller–Rabin on a random subset of the sample (the count itself is what audits
        # check): a composite among them is caught with probability >= k/len(sample),
        # and fined as such (claimed units / that probability).
        k = min(len(sample), self.primality_checks)
        picks = sample if k == len(sample) else [
            sample[int(i)] for i in self.rng.choice(len(sample), k, replace=False)]
        for p in picks:
            if not is_prime(p):
                return Verdict(False, 0, f"evidence {p} is composite", fraud=True,
                               fine_units=sure * len(sample) / k)
        bound = interval_count_bound(lo, hi)
        if units > bound:
            return Verdict(False, 0, f"{units} primes cannot fit in [{lo}, {hi}) "
                           f"(Brun–Titchmarsh bound {bound})", fraud=True, fine_units=sure)
        if blocks is not None:
            verdict, how = self._block_audit(claim.agent, lo, hi, units, *blocks)
        else:
            verdict, how = self._full_audit(claim.agent, lo, hi, units)
        if verdict is not None:
            return verdict
        paid.add(lo, hi)
        return Verdict(True, units, f"{units} primes in [{lo}, {hi}) {how}")

    def _blocks(
        self, ev: Mapping[str, Any], lo: int, hi: int
    ) -> tuple[int, list[int]] | str | None:
        """(block size, counts) of a block commitment, None without one, or why it is
        malformed."""
        if "blocks" not in ev:
            return None
        size, counts = ev.get("block"), ev.get("blocks")
        if not (_is_int(size) and isinstance(size, int) and size > 0):
            return 'evidence "block" must be a positive integer'
        if not isinstance(counts, list) or not all(_is_int(c) and c >= 0 for c in counts):
            return 'evidence "blocks" must be a list of integers >= 0'
        n = -(-(hi - lo) // size)
        if len(counts) != n or n > MAX_BLOCKS:
            return f'evidence "blocks" needs {n} counts (at most {MAX_BLOCKS})'
        return size, [int(c) for c in counts]

    def _block_audit(self, agent: str, lo: int, hi: int, units: int, size: int,
                     counts: list[int]) -> tuple[Verdict | None, str]:
        n = len(counts)
        if sum(counts) != units:
            return Verdict(False, 0, f"block counts sum to {sum(counts)}, not {units}",
                           fraud=True, fine_units=float(units)), ""
        for j, c in enumerate(counts):
            b_lo = lo + j * size
            if c > interval_count_bound(b_lo, min(b_lo + size, hi)):
                return Verdict(False, 0, f"block {j}: {c} primes cannot fit (Brun–Titchmarsh)",
                               fraud=True, fine_units=float(units)), ""
        audit, p = self._audit_draw(agent, self.block_audit_probability)
        if not audit:
            return None, "spot-checked"
        j = int(self.rng.integers(n))
        b_lo = lo + j * size
        b_hi = min(b_lo + size, hi)
        self.block_audits += 1
        self.numbers_sieved += b_hi - b_lo
        true_count = count_primes(b_lo, b_hi)
        if true_count != counts[j]:
            return Verdict(False, 0, f"re-sieved block [{b_lo}, {b_hi}): {true_count} primes, "
                           f"not {counts[j]}", fraud=True, fine_units=units * n / p), ""
        return None, f"spot-checked, block {j} re-sieved"

    def _full_audit(
        self, agent: str, lo: int, hi: int, units: int
    ) -> tuple[Verdict | None, str]:
        audit, p = self._audit_draw(agent, self.resieve_probability)
        if not audit:
            return None, "spot-checked"
        self.resieves += 1
        self.numbers_sieved += hi - lo
        true_count = count_primes(lo, hi)
        if true_count != units:
            # p > 0 here: an audit happened with it.
            return Verdict(False, 0, f"re-sieved [{lo}, {hi}): {true_count} primes, "
                           f"not {units}", fraud=True, fine_units=units / p), ""
        return None, "re-sieved"


def _is_int(x: object) -> bool:
    return isinstance(x, int) and not isinstance(x, bool)
