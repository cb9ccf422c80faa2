"""The CPU auction: generalized second price (GSP) with a reserve, and the VCG reference.

K slots per interval carry weights α₁ ≥ … ≥ α_K (the share of a core a slot is worth).
Agent i bids ``b_i`` credits per core-second for up to ``q_i`` slot-units. Units are
ranked by bid (an agent's units are adjacent: ties between agents are broken by a draw
from the generator passed in, and the draw is kept in the result); units bidding at
least the reserve r take slots 1…K in rank order.

**Pricing: each unit pays the rival it displaced.** If agent i's units hold slots
s … s+m−1, then ranked after them come only rivals' units ρ₁ ≥ ρ₂ ≥ … (padded with r);
without i, ρ_j would hold slot s+j−1. So i's j-th unit pays ``max(ρ_j, r)·α_{s+j−1}·Δt``:
the bid it displaced from that slot, never a bid of i's own. For one-unit bidders this
is exactly GSP (the unit in slot k pays ``b_(k+1)``; Edelman, Ostrovsky & Schwarz, AER
2007; Varian, IJIO 2007), so the known GSP equilibrium and price-of-anarchy results
apply unchanged there. Alone, an agent pays the reserve on every unit; bidding 4 for
two slots against a rival's 3 for two, it pays 3 + 3.

Why this rule and what it promises a bidder that wants several units:

* *No agent sets its own price.* Given where its block ranks, an agent's payment is a
  function of the rivals' bids and the reserve only. The previous rule (each unit pays
  the next unit's bid, possibly the agent's own) charged a lone agent its own bid on all
  but its last unit and rewarded asking for fewer units than it needs (demand reduction,
  as in uniform-price auctions; Ausubel & Cramton 2002).
* *Asking for every unit it values is a best reply* (for a bidder whose value is flat,
  v per core-second up to q units — the bid language itself — and who does not overbid,
  b ≤ v). Raising q by one leaves its other units' slots and prices where they were and
  adds a unit at price ρ_{m+1} ≤ b ≤ v: utility never falls. So the quantity dimension
  is truthful; the price dimension is not (as in every GSP, shading can pay: bidding
  below a rival moves the block down to cheaper rivals).
* *Never below VCG.* For truthful bids every agent pays at least its VCG payment (the
  welfare its units cost the others, the seller's reserve included) and at most its
  bid: with ρ non-increasing and α non-increasing, VCG = Σ_j ρ_j(α_{s+j−1} − α_{s+m+j−1})
  ≤ Σ_{j≤m} ρ_j α_{s+j−1}. With identical slots (α = 1, what Maxwell deploys) the
  lowest-ranked winner pays exactly its VCG payment, and with two bidders both do.

VCG on the same ranking stays the welfare reference: the welfare-optimal allocation
and its payments; a reserve price is treated as a seller who values every slot at r.
`maxwell experiment poa` measures how far GSP's equilibria fall short of it, for
one-unit bidders on random α and for the deployed setting (α = 1, several units,
budgets; liquid welfare).

Pure and vectorized: numpy in, numpy out; no I/O, no clock; randomness only from the
``np.random.Generator`` passed in. Clearing touches only the agents that can reach the
first 2K+1 ranks (a partition, not a full sort), so a million bid-units clear in
milliseconds.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

FloatArray = npt.NDArray[np.float64]
IntArray = npt.NDArray[np.int64]

_CHUNK = 1 << 16  # bids per pre-selection chunk (fits in L2 with its temporaries)


@dataclass(frozen=True)
class Allocation:
    """The outcome of one auction (arrays per agent are indexed like the bids).

    reserve: the reserve price r (credits per core-second); dt_s: the interval paid for.
    order: agents whose units fill the first K+1 ranks, best first (ties already broken).
    tie_keys: the uniform draws that broke ties, aligned with ``order`` (lower wins).
    slot_agent: (K,) the agent holding slot k, or -1 if the slot stays empty.
    slot_price: (K,) price per core-second paid for slot k (0 for an empty slot).
    slot_weights: (K,) the weights α.
    slots: slot-units won per agent; cores: Σ α of the slots won per agent.
    payment: credits per agent for the interval (Σ price_k · α_k · dt_s).
    """

    reserve: float
    dt_s: float
    order: IntArray
    tie_keys: FloatArray
    slot_agent: IntArray
    slot_price: FloatArray
    slot_weights: FloatArray
    slots: IntArray
    cores: FloatArray
    payment: FloatArray

    @property
    def revenue(self) -> float:
        """Total credits paid by all agents."""
        return float(self.payment.sum())


def _check_inputs(
    bid_price: npt.ArrayLike,
    bid_slots: npt.ArrayLike,
    reserve: float,
    slot_weights: npt.ArrayLike,
    dt_s: float,
) -> tuple[FloatArray, IntArray, FloatArray]:
    b = np.asarray(bid_price, dtype=np.float64)
    q_raw = np.asarray(bid_slots)
    alpha = np.asarray(slot_weights, dtype=np.float64)
    if b.ndim != 1 or q_raw.shape != b.shape:
        raise ValueError(
            f"bid_price {b.shape} and bid_slots {q_raw.shape} must be equal 1-d shapes"
        )
    if q_raw.size and not np.issubdtype(q_raw.dtype, np.integer):
        raise ValueError("bid_slots must be integers (slot-units)")
    q = q_raw.astype(np.int64, copy=False)
    if alpha.ndim != 1 or alpha.size == 0:
        raise ValueError("slot_weights must be a non-empty 1-d array (one weight per slot)")
    if not np.all(np.isfinite(alpha)) or np.any(alpha <= 0) or np.any(np.diff(alpha) > 0):
        raise ValueError("slot_weights must be positive, finite and non-increasing")
    # min/max propagate NaN and need no temporaries: cheap on a million bids.
    if b.size and not (b.min() >= 0 and b.max() < np.inf):
        raise ValueError("bid_price must be finite and >= 0")
    if q.size and q.min() < 0:
        raise ValueError("bid_slots must be >= 0")
    if not (math.isfinite(reserve) and reserve >= 0):
        raise ValueError(f"reserve must be finite and >= 0, got {reserve!r}")
    if not (math.isfinite(dt_s) and dt_s > 0):
        raise ValueError(f"dt_s must be finite and > 0, got {dt_s!r}")
    return b, q, alpha


def _rank(
    b: FloatArray, q: IntArray, reserve: float, k_slots: int, rng: np.random.Generator
) -> tuple[IntArray, FloatArray]:
    """Agents (bid ≥ reserve, q > 0) that can reach the first 2K+1 ranks, in order.

    Every eligible agent holds at least one unit, so no agent outside the top 2K+1
    bids (counting ties at the boundary) can rank that high. GSP needs K+1 ranks and
    VCG 2K+1; both take the same candidates and draws, so on the same seed they
    break ties the same way.
    """
    units_needed = 2 * k_slots + 1
    if b.size >= 4 * _CHUNK and units_needed < _CHUNK // 4:
        # Pre-select chunk by chunk: each chunk's own top `units_needed` holds every
        # agent of the overall top, and small temporaries stay in cache instead of
        # page-faulting fresh megabytes (the result is the same set, in index order).
        parts = []
        for start in range(0, b.size, _CHUNK):
            bc = b[start : start + _CHUNK]
            idx = np.flatnonzero((q[start : start + _CHUNK] > 0) & (bc >= reserve))
            if idx.size > units_needed:
                vals = bc[idx]
                kth = idx.size - units_needed
                idx = idx[vals >= np.partition(vals, kth)[kth]]
            parts.append(idx + start)
        eligible = np.concatenate(parts)
    else:
        eligible = np.flatnonzero((q > 0) & (b >= reserve))
    if eligible.size > units_needed:
        eb = b[eligible]
        kth = eb.size - units_needed
        threshold = np.partition(eb, kth)[kth]
        eligible = eligible[eb >= threshold]
    keys = rng.random(eligible.size)
    # lexsort: last key is primary → by bid descending, then by the draw.
    idx = np.lexsort((keys, -b[eligible]))
    return eligible[idx].astype(np.int64, copy=False), keys[idx]


def _units(order: IntArray, q: IntArray, cap: int) -> IntArray:
    """The owner of each ranked unit, for the first `cap` units."""
    if order.size == 0:
        return np.zeros(0, dtype=np.int64)
    q_o = q[order]
    before = np.cumsum(q_o) - q_o
    take = np.clip(cap - before, 0, q_o)
    return np.repeat(order, take)


def _placement(
    winners: IntArray, alpha: FloatArray, n: int
) -> tuple[IntArray, IntArray, FloatArray]:
    """Who sits in each slot (-1: empty), and each agent's slot count and cores.

    `winners` are the owners of the first slots, best slot first.
    """
    slot_agent = np.full(alpha.size, -1, dtype=np.int64)
    slot_agent[: winners.size] = winners
    slots = np.bincount(winners, minlength=n).astype(np.int64, copy=False)
    cores = np.bincount(winners, weights=alpha[: winners.size], minlength=n)
    return slot_agent, slots, cores.astype(np.float64, copy=False)


def _rival_prices(owners: IntArray, unit_bid: FloatArray, n_win: int, reserve: float) -> FloatArray:
    """Per winning unit, the bid of the rival unit that would hold its slot if its agent
    were absent: unit j of an agent's block pays the j-th unit ranked after the block
    (all rivals: an agent's units are adjacent), or the reserve if there is none."""
    if n_win == 0:
        return np.zeros(0)
    n_units = owners.size
    rank = np.arange(n_units)
    new_block = np.ones(n_units, dtype=np.bool_)
    new_block[1:] = owners[1:] != owners[:-1]
    start = np.maximum.accumulate(np.where(new_block, rank, 0))
    end_flag = np.ones(n_units, dtype=np.bool_)
    end_flag[:-1] = new_block[1:]
    # The last rank of each unit's block: reverse running minimum of block ends.
    ends = np.where(end_flag, rank, n_units)
    end = np.minimum.accumulate(ends[::-1])[::-1]
    w = rank[:n_win]
    idx = end[:n_win] + 1 + (w - start[:n_win])
    padded = np.full(max(n_units, int(idx.max()) + 1), float(reserve))
    padded[:n_units] = unit_bid
    return np.asarray(np.maximum(padded[idx], reserve), dtype=np.float64)


def gsp(
    bid_price: npt.ArrayLike,
    bid_slots: npt.ArrayLike,
    reserve: float,
    slot_weights: npt.ArrayLike,
    rng: np.random.Generator,
    dt_s: float = 1.0,
) -> Allocation:
    """Clear one GSP auction with reserve `reserve` (credits per core-second).

    `bid_price[i]` is agent i's bid per core-second, `bid_slots[i]` the slot-units it
    wants (0 = not bidding). `slot_weights` are α₁ ≥ … ≥ α_K. Agents bidding below the
    reserve get nothing. Payments are for an interval of `dt_s` seconds.
    """
    b, q, alpha = _check_inputs(bid_price, bid_slots, reserve, slot_weights, dt_s)
    n, k_slots = b.size, alpha.size
    # No agent wins more than K units, and its units past the K-th never price anyone.
    q_cap = np.minimum(q, k_slots)
    order, keys = _rank(b, q_cap, reserve, k_slots, rng)
    # A winning block starts above rank K and spans at most K units, so its prices
    # read ranks up to 2K − 1: 2K + 1 ranked units are always enough.
    owners = _units(order, q_cap, 2 * k_slots + 1)
    n_win = min(owners.size, k_slots)
    price_won = _rival_prices(owners, b[owners], n_win, reserve)

    winners = owners[:n_win]
    slot_agent, slots, cores = _placement(winners, alpha, n)
    slot_price = np.zeros(k_slots)
    slot_price[:n_win] = price_won
    payment = np.bincount(winners, weights=price_won * alpha[:n_win] * dt_s, minlength=n)
    return Allocation(
        reserve=float(reserve),
        dt_s=float(dt_s),
        order=order,
        tie_keys=keys,
        slot_agent=slot_agent,
        slot_price=slot_price,
        slot_weights=alpha,
        slots=slots,
        cores=cores,
        payment=payment.astype(np.float64, copy=False),
    )


def vcg(
    bid_price: npt.ArrayLike,
    bid_slots: npt.ArrayLike,
    reserve: float,
    slot_weights: npt.ArrayLike,
    rng: np.random.Generator,
    dt_s: float = 1.0,
) -> Allocation:
    """The VCG outcome on the same bids, read as values per core-second.

    The allocation is the welfare-optimal one (the GSP ranking: with α non-increasing,
    giving the best slots to the highest values maximizes Σ α_k v_(k)); each winner pays
    the welfare its presence costs everyone else, the seller's reserve included. For
    unit demand this is Σ_{j≥k} (α_j − α_{j+1}) · v'_(j+1) for the winner of slot k,
    with v' the ranked bids padded by r. ``slot_price`` spreads an agent's payment
    uniformly over its slots (credits per core-second). Costs O(K²): a reference, not
    a fast path.
    """
    b, q, alpha = _check_inputs(bid_price, bid_slots, reserve, slot_weights, dt_s)
    n, k_slots = b.size, alpha.size
    # Removing a winner pulls up to K later units into the slots, so rank 2K units.
    # An agent never needs more than K units represented (K of them cover every slot).
    q_cap = np.minimum(q, k_slots)
    order, keys = _rank(b, q_cap, reserve, k_slots, rng)
    owners = _units(order, q_cap, 2 * k_slots + 1)
    values = np.full(2 * k_slots + 1, float(reserve))
    values[: owners.size] = b[owners]
    n_win = min(owners.size, k_slots)
    winners = owners[:n_win]

    payment = np.zeros(n)
    for agent in np.unique(winners):
        s = int(np.argmax(owners == agent))  # an agent's units are adjacent
        qa = int(q_cap[agent])
        # Others' welfare without the agent: the next units move up by qa ranks.
        without = float(np.dot(alpha[s:], values[s + qa : k_slots + qa]))
        # Others' welfare with the agent: the units after its block.
        with_ = 0.0
        if s + qa < k_slots:
            with_ = float(np.dot(alpha[s + qa :], values[s + qa : k_slots]))
        payment[agent] = (without - with_) * dt_s

    slot_agent, slots, cores = _placement(winners, alpha, n)
    slot_price = np.zeros(k_slots)
    if n_win:
        per_core_s = np.divide(payment, cores * dt_s, out=np.zeros(n), where=cores > 0)
        slot_price[:n_win] = per_core_s[winners]
    return Allocation(
        reserve=float(reserve),
        dt_s=float(dt_s),
        order=order,
        tie_keys=keys,
        slot_agent=slot_agent,
        slot_price=slot_price,
        slot_weights=alpha,
        slots=slots,
        cores=cores,
        payment=payment,
    )


def welfare(allocation: Allocation, values: npt.ArrayLike) -> float:
    """Σ α_k · v(agent in slot k): value per second created by an allocation.

    `values` are the agents' true values per core-second (the bids, if truthful).
    """
    v = np.asarray(values, dtype=np.float64)
    filled = allocation.slot_agent >= 0
    return float(np.dot(allocation.slot_weights[filled], v[allocation.slot_agent[filled]]))


def optimal_welfare(
    values: npt.ArrayLike, demand: npt.ArrayLike, slot_weights: npt.ArrayLike
) -> float:
    """The largest Σ α_k v_(k) any allocation of the slots can reach (no reserve)."""
    v = np.asarray(values, dtype=np.float64)
    q = np.asarray(demand, dtype=np.int64)
    alpha = np.asarray(slot_weights, dtype=np.float64)
    k_slots = alpha.size
    idx = np.argsort(-v, kind="stable")
    units = np.repeat(v[idx], np.minimum(q[idx], k_slots))[:k_slots]
    return float(np.dot(alpha[: units.size], units))
