"""The Verifier on honest, false, malformed and hostile claims."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from maxwell.agents.protocol import WorkClaim
from maxwell.agents.sieve import evidence_sample, interval_count_bound, sieve_segment
from maxwell.agents.verify import Verifier


def claim(lo: int, hi: int, units: int | None = None, sample: list[int] | None = None,
          agent: str = "a") -> WorkClaim:
    primes = sieve_segment(lo, hi)
    return WorkClaim(agent, "primes", int(primes.size) if units is None else units,
                     {"lo": lo, "hi": hi,
                      "sample": evidence_sample(primes, 8) if sample is None else sample})


def verifier(p: float = 1.0, **kw: int) -> Verifier:
    return Verifier(p, np.random.default_rng(0), **kw)


def test_honest_claim_accepted_and_resieved() -> None:
    v = verifier(1.0).verify(claim(10**6, 2 * 10**6))
    assert v.accepted and v.units == 70435 and not v.fraud and "re-sieved" in v.reason


def test_inflated_count_caught_by_resieve() -> None:
    v = verifier(1.0).verify(claim(0, 10**6, units=78499))
    assert not v.accepted and v.fraud and v.units == 0 and "78498" in v.reason


def test_inflated_count_passes_without_resieve() -> None:
    # p = 0: only the deterministic checks run, and a small lie slips through them
    assert verifier(0.0).verify(claim(0, 10**6, units=78499)).accepted


def test_absurd_count_caught_without_resieve() -> None:
    bound = interval_count_bound(0, 10**6)
    v = verifier(0.0).verify(claim(0, 10**6, units=bound + 1))
    assert v.fraud and "Brun" in v.reason


@pytest.mark.parametrize(("sample", "why"), [
    ([99], "composite"),
    ([3_215_031_751], "outside"),
    ([101, 103, 97], "out of order"),
    ([101, 101], "out of order"),
])
def test_bad_evidence_is_fraud(sample: list[int], why: str) -> None:
    v = verifier(0.0).verify(claim(90, 200, sample=sample))
    assert v.fraud and not v.accepted and why in v.reason


def test_composite_strong_pseudoprime_evidence_is_fraud() -> None:
    n = 3_215_031_751  # strong pseudoprime to bases 2, 3, 5, 7
    lo = n - 1000
    v = verifier(0.0).verify(claim(lo, lo + 2000, sample=[n]))
    assert v.fraud and "composite" in v.reason


def test_double_claim_is_fraud_but_adjacent_is_fine() -> None:
    ver = verifier(0.0)
    assert ver.verify(claim(0, 1000)).accepted
    assert ver.verify(claim(1000, 2000)).accepted
    assert ver.verify(claim(500, 1500)).fraud
    assert ver.verify(claim(1999, 2500)).fraud
    assert ver.verify(claim(0, 1000, agent="b")).accepted  # per agent


def test_rejected_claim_does_not_block_an_honest_retry() -> None:
    ver = verifier(1.0)
    assert ver.verify(claim(0, 1000, units=999 // 5)).fraud
    assert ver.verify(claim(0, 1000)).accepted


@pytest.mark.parametrize("evidence", [
    {}, {"lo": "0", "hi": 10}, {"lo": 0, "hi": 10, "sample": "2,3"}, {"lo": 10, "hi": 5},
    {"lo": -5, "hi": 5}, {"lo": 0, "hi": 2**41}, {"lo": 0, "hi": 2**25},
    {"lo": 0, "hi": 1000, "sample": list(range(100))}, {"lo": 0, "hi": 100, "sample": [2.0]},
])
def test_malformed_is_rejected_not_fraud(evidence: dict[str, object]) -> None:
    v = verifier(1.0).verify(WorkClaim("a", "primes", 5, evidence))
    assert not v.accepted and not v.fraud and v.units == 0


def test_unverifiable_kind_earns_nothing_and_is_not_fraud() -> None:
    v = verifier().verify(WorkClaim("m", "hash", 10**6, {"algorithm": "sha256"}))
    assert (v.accepted, v.units, v.fraud) == (False, 0, False)
    assert "not verifiable" in v.reason


@settings(max_examples=150, deadline=None)
@given(st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=5),
    lambda kids: st.lists(kids, max_size=4)
    | st.dictionaries(st.text(max_size=5), kids, max_size=4),
    max_leaves=20,
), st.integers(-(2**70), 2**70))
def test_never_raises_on_hostile_evidence(junk: object, units: int) -> None:
    ev = junk if isinstance(junk, dict) else {"lo": junk, "hi": junk, "sample": junk}
    v = verifier(1.0).verify(WorkClaim("x", "primes", units, ev))
    assert not v.accepted or v.units == units


def test_detection_rate_matches_p() -> None:
    """A liar inflating every count by one is caught on each claim with probability p."""
    p = 0.05
    ver = Verifier(p, np.random.default_rng(12345), probation_claims=0)
    n = 2000
    caught = 0
    for i in range(n):
        lo, hi = i * 200, (i + 1) * 200
        honest = sieve_segment(lo, hi)
        v = ver.verify(WorkClaim("liar", "primes", int(honest.size) + 1,
                                 {"lo": lo, "hi": hi, "sample": evidence_sample(honest, 4)}))
        caught += v.fraud
    rate = caught / n
    sigma = (p * (1 - p) / n) ** 0.5
    assert abs(rate - p) < 4 * sigma, rate


def _blocked_claim(lo: int, hi: int, block: int, inflate_block: int | None = None,
                   by: int = 0, agent: str = "a") -> WorkClaim:
    primes = sieve_segment(lo, hi)
    counts = np.bincount((primes - lo) // block, minlength=-(-(hi - lo) // block)).tolist()
    if inflate_block is not None:
        counts[inflate_block] += by
    return WorkClaim(agent, "primes", int(sum(counts)),
                     {"lo": lo, "hi": hi, "sample": evidence_sample(primes, 4),
                      "block": block, "blocks": counts})


def test_honest_block_commitment_is_accepted_and_one_block_audited() -> None:
    ver = Verifier(0.0, np.random.default_rng(0), block_audit_probability=1.0)
    v = ver.verify(_blocked_claim(10**6, 2 * 10**6, 1 << 14))
    assert v.accepted and v.units == 70435 and "block" in v.reason
    assert ver.block_audits == 1 and ver.numbers_sieved == 1 << 14


def test_a_lie_in_one_block_is_caught_when_that_block_is_drawn_and_fined_to_deter() -> None:
    block, lo, hi = 1 << 12, 0, 1 << 16  # 16 blocks
    caught = []
    for seed in range(200):
        ver = Verifier(0.0, np.random.default_rng(seed), block_audit_probability=0.5)
        v = ver.verify(_blocked_claim(lo, hi, block, inflate_block=3, by=5))
        if v.fraud:
            caught.append(v)
    rate = len(caught) / 200
    assert 0.5 / 16 * 0.3 < rate < 0.5 / 16 * 2.5  # q = p / n_blocks
    claimed = caught[0].fine_units * 0.5 / 16
    assert claimed == sum(np.bincount(sieve_segment(lo, hi) // block).tolist()) + 5
    # Expected fine q·(claimed/q)·b = claimed·b: more than the lie's gain (5·b).
    assert caught[0].fine_units * (0.5 / 16) >= 5


def test_block_counts_that_do_not_add_up_are_fraud() -> None:
    c = _blocked_claim(0, 1 << 16, 1 << 12)
    bad = WorkClaim("a", "primes", c.units + 1, {**c.evidence})
    v = Verifier(0.0, np.random.default_rng(0)).verify(bad)
    assert v.fraud and v.fine_units == c.units + 1


def test_after_a_catch_every_claim_is_audited_for_a_while() -> None:
    ver = Verifier(1.0, np.random.default_rng(0), probation_claims=3)
    assert ver.verify(claim(0, 10**4, units=1230)).fraud  # true count 1229
    ver.resieve_probability = 0.0
    agent = claim(0, 10).agent
    assert ver.on_probation(agent)
    for i in range(3):
        v = ver.verify(claim(10**4 * (i + 1), 10**4 * (i + 2)))
        assert v.accepted and "re-sieved" in v.reason
    assert not ver.on_probation(agent)
    assert "spot-checked" in ver.verify(claim(10**5, 2 * 10**5)).reason


def test_full_resieve_fraud_is_fined_claimed_over_p() -> None:
    v = Verifier(0.25, np.random.default_rng(1), probation_claims=0)
    for i in range(100):
        lo, hi = i * 10**4, (i + 1) * 10**4
        claimed = int(sieve_segment(lo, hi).size) + 1
        r = v.verify(claim(lo, hi, units=claimed))
        if r.fraud:
            assert r.fine_units == pytest.approx(claimed / 0.25)
            return
    raise AssertionError("never audited")
