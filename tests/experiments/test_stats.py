import math

import numpy as np
import pytest

from maxwell.experiments.stats import Interval, median_ci, paired_ratio_ci


def test_median_ci_brackets_the_median_and_is_reproducible():
    x = np.random.default_rng(0).normal(10.0, 1.0, 30)
    a = median_ci(x, seed=3)
    b = median_ci(x, seed=3)
    assert a == b
    assert a.lo <= a.median <= a.hi
    assert a.median == pytest.approx(float(np.median(x)))
    assert 9.0 < a.lo < a.hi < 11.0
    assert a.n == 30


def test_constant_and_empty_samples():
    assert median_ci([2.0] * 5) == Interval(2.0, 2.0, 2.0, 5)
    e = median_ci([])
    assert e.n == 0 and math.isnan(e.median)
    assert e.as_dict()["median"] is None


def test_paired_ratio_is_taken_per_seed():
    base = np.array([1.0, 2.0, 4.0, 8.0, 16.0])
    iv = paired_ratio_ci(base * 1.5, base)
    assert iv == Interval(1.5, 1.5, 1.5, 5)  # the spread between seeds cancels
    with pytest.raises(ValueError):
        paired_ratio_ci([1.0], [1.0, 2.0])


def test_above_means_no_overlap():
    assert Interval(5, 4, 6, 3).above(Interval(2, 1, 3.9, 3))
    assert not Interval(5, 4, 6, 3).above(Interval(2, 1, 4.0, 3))
