"""Medians with bootstrap 95 % confidence intervals, paired by seed.

Repeated runs of one scenario differ (identical HPL runs spanned 61.2–77.4
Tflop/s, Hoefler & Belli SC 2015), so every figure is a median over seeds with a
percentile-bootstrap interval. A comparison between two policies is *paired*:
run s of policy A and run s of policy B share seed s (the same agent draws,
burst schedules and tie-break stream), so the ratio is taken per seed first and
the interval is of the median of those ratios. Resampling is seeded: the same
inputs give the same interval. Pure numpy/scipy; no I/O.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

RESAMPLES = 2000
CONFIDENCE = 0.95


@dataclass(frozen=True)
class Interval:
    """A median and its bootstrap interval [lo, hi] (all nan when there is no data)."""

    median: float
    lo: float
    hi: float
    n: int

    def as_dict(self) -> dict[str, object]:
        return {"median": _f(self.median), "ci95": [_f(self.lo), _f(self.hi)], "n": self.n}

    def above(self, other: Interval) -> bool:
        """True when this interval lies wholly above the other (no overlap)."""
        return self.lo > other.hi


def _f(x: float) -> float | None:
    return None if not math.isfinite(x) else float(x)


def median_ci(values: Sequence[float] | np.ndarray, seed: int = 0) -> Interval:
    """Median of `values` with a percentile-bootstrap 95 % interval (nan values dropped).

    Percentile rather than BCa: BCa's jackknife is undefined for the many
    degenerate samples experiments produce (a policy that kills nobody has false
    kills 0 in every seed), and the percentile interval of a constant is that
    constant.
    """
    x = np.asarray(values, dtype=np.float64)
    x = x[np.isfinite(x)]
    n = int(x.size)
    if n == 0:
        return Interval(math.nan, math.nan, math.nan, 0)
    med = float(np.median(x))
    if n == 1 or float(x.min()) == float(x.max()):
        return Interval(med, med, med, n)
    import inspect

    from scipy.stats import bootstrap

    # scipy ≥ 1.15 calls the generator `rng`; older releases `random_state`.
    key = "rng" if "rng" in inspect.signature(bootstrap).parameters else "random_state"
    res = bootstrap(
        (x,),
        np.median,
        n_resamples=RESAMPLES,
        confidence_level=CONFIDENCE,
        method="percentile",
        vectorized=True,
        **{key: np.random.default_rng(seed)},
    )
    lo, hi = float(res.confidence_interval.low), float(res.confidence_interval.high)
    return Interval(med, min(lo, med), max(hi, med), n)


def paired_ratio_ci(
    num: Sequence[float] | np.ndarray, den: Sequence[float] | np.ndarray, seed: int = 0
) -> Interval:
    """Median over seeds of num[s] / den[s] with its interval (seeds with den ≤ 0 dropped)."""
    a = np.asarray(num, dtype=np.float64)
    b = np.asarray(den, dtype=np.float64)
    if a.shape != b.shape:
        raise ValueError(f"paired samples differ in length: {a.shape} vs {b.shape}")
    ok = np.isfinite(a) & np.isfinite(b) & (b > 0)
    return median_ci(a[ok] / b[ok], seed)
