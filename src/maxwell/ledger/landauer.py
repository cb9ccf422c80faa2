"""Landauer's tax: the minimum energy of erasing the bits an agent frees, priced.

Erasing one bit at absolute temperature T dissipates at least k_B·T·ln 2 Joules
(Landauer 1961; measured by Bérut et al., Nature 483, 2012). Freeing `bytes` bytes
at die temperature T is taxed ``bytes · 8 · k_B · T[K] · ln 2`` Joules, converted to
credits at the energy price and multiplied by λ. The physical figure alone is tiny
(≈ 2.5·10⁻¹¹ J per GiB at 300 K), so λ is large and every report states it.

Pure arithmetic on numpy arrays; no I/O.
"""

from __future__ import annotations

import math

import numpy as np
import numpy.typing as npt

from maxwell.ledger.book import UCR_PER_CREDIT, IntArray, to_ucr

FloatArray = npt.NDArray[np.float64]

K_B_J_PER_K = 1.380649e-23  # exact since the 2019 SI redefinition
ZERO_C_IN_K = 273.15
LN2 = math.log(2.0)


def landauer_energy_j(bytes_freed: npt.ArrayLike, temp_c: float | npt.ArrayLike) -> FloatArray:
    """Landauer's bound for erasing `bytes_freed` bytes at `temp_c` °C, in Joules."""
    nbytes = np.asarray(bytes_freed, dtype=np.float64)
    temp_k = np.asarray(temp_c, dtype=np.float64) + ZERO_C_IN_K
    if np.any(nbytes < 0):
        raise ValueError("bytes_freed must be >= 0")
    if np.any(~np.isfinite(temp_k)) or np.any(temp_k <= 0):
        raise ValueError("temperature must be finite and above absolute zero")
    return np.asarray(nbytes * 8.0 * K_B_J_PER_K * temp_k * LN2, dtype=np.float64)


def landauer_tax_ucr(
    bytes_freed: npt.ArrayLike,
    temp_c: float | npt.ArrayLike,
    energy_price_per_j: float,
    landauer_lambda: float,
) -> IntArray:
    """The tax in micro-credits: energy_j · energy_price_per_j · λ, rounded to the nearest µcr."""
    if not (math.isfinite(energy_price_per_j) and energy_price_per_j >= 0):
        raise ValueError("energy_price_per_j must be finite and >= 0")
    if not (math.isfinite(landauer_lambda) and landauer_lambda >= 0):
        raise ValueError("landauer_lambda must be finite and >= 0")
    credits = landauer_energy_j(bytes_freed, temp_c) * energy_price_per_j * landauer_lambda
    return to_ucr(credits)


def landauer_tax_credits(
    bytes_freed: npt.ArrayLike,
    temp_c: float | npt.ArrayLike,
    energy_price_per_j: float,
    landauer_lambda: float,
) -> FloatArray:
    """The same tax in credits (after rounding to micro-credits)."""
    ucr = landauer_tax_ucr(bytes_freed, temp_c, energy_price_per_j, landauer_lambda)
    return np.asarray(ucr, dtype=np.float64) / UCR_PER_CREDIT
