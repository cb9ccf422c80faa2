"""The sieve and Miller–Rabin against known values of π(x) and brute force."""

from __future__ import annotations

import itertools
import math

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from maxwell.agents.sieve import (
    count_primes,
    evidence_sample,
    interval_count_bound,
    is_prime,
    sieve_segment,
)


def _brute(lo: int, hi: int) -> list[int]:
    return [n for n in range(max(lo, 2), hi) if all(n % d for d in range(2, math.isqrt(n) + 1))]


@pytest.mark.parametrize(("x", "pi"), [(10, 4), (100, 25), (10**6, 78498), (10**7, 664579)])
def test_pi_of_x(x: int, pi: int) -> None:
    assert count_primes(0, x + 1) == pi


def test_segments_add_up_to_pi() -> None:
    # π(10^7) − π(10^6) = 586081, in uneven segments
    edges = [10**6, 1_234_567, 3_000_001, 3_000_002, 9_999_999, 10**7]
    assert sum(count_primes(a, b) for a, b in itertools.pairwise(edges)) == 586081


@settings(max_examples=200, deadline=None)
@given(st.integers(0, 20_000), st.integers(0, 3000))
def test_segment_matches_brute_force(lo: int, length: int) -> None:
    assert sieve_segment(lo, lo + length).tolist() == _brute(lo, lo + length)


def test_large_segment_matches_miller_rabin() -> None:
    lo = 2**40 - 30_000
    assert sieve_segment(lo, 2**40).tolist() == [n for n in range(lo, 2**40) if is_prime(n)]


@pytest.mark.parametrize("n", [
    2047, 1_373_653, 25_326_001, 3_215_031_751, 2_152_302_898_747, 3_474_749_660_383,
    341_550_071_728_321, 3_825_123_056_546_413_051, 561, 1105, 2**64 - 1, 2**62 + 1,
])
def test_strong_pseudoprimes_are_composite(n: int) -> None:
    assert not is_prime(n)


@pytest.mark.parametrize("n", [2, 3, 5, 97, 2**31 - 1, 2**61 - 1, 18446744073709551557])
def test_primes_are_prime(n: int) -> None:
    assert is_prime(n)


def test_is_prime_matches_sieve_below_100k() -> None:
    assert [n for n in range(100_000) if is_prime(n)] == sieve_segment(0, 100_000).tolist()


def test_evidence_sample_spreads_and_bounds() -> None:
    primes = sieve_segment(0, 10**5)
    s = evidence_sample(primes, 8)
    assert len(s) == 8 and s[0] == 2 and s[-1] == int(primes[-1])
    assert s == sorted(set(s))
    assert evidence_sample(primes[:3], 8) == [2, 3, 5]


@settings(max_examples=100, deadline=None)
@given(st.integers(0, 10**9), st.integers(0, 5000))
def test_brun_titchmarsh_bound_holds(lo: int, length: int) -> None:
    assert count_primes(lo, lo + length) <= interval_count_bound(lo, lo + length)


def test_bound_holds_on_dense_starts() -> None:
    for lo in range(0, 50):
        for length in (1, 2, 3, 5, 10, 30, 100):
            assert count_primes(lo, lo + length) <= interval_count_bound(lo, lo + length)
