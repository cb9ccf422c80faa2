"""The price of anarchy of the auction as Maxwell deploys it: identical slots (α = 1),
bidders wanting several units, and budgets; welfare measured as *liquid welfare*.

An instance is n agents on K identical slots (one core each). Agent i values a core-second
at v_i ~ U[0, 1], wants up to q_i ~ U{1…K} units, and holds a budget B_i ~ U[0.2, 1]·q_i·v_i
per interval (what its wallet can pay: a payment above it is bankruptcy, so no strategy
may risk it). Its utility is v_i·x_i − p_i when p_i ≤ B_i, −∞ otherwise.

Liquid welfare (Dobzinski & Paes Leme, ICALP 2014, arXiv 1304.7048) caps each agent's
contribution at what it can pay: LW = Σ_i min(v_i·x_i, B_i). Its optimum is a greedy
allocation by marginal liquid value (separable and concave in x_i), which this module
computes exactly.

Equilibria: each agent chooses a bid b on a grid of G levels in [0, v_i] (no
overbidding) and a quantity m ∈ {1…q_i} (asking for less than it wants is allowed: a
budget can make it pay). Every profile of the joint grid is cleared with the
deployed rule (`auction.gsp`'s: each unit pays the rival unit it displaced, or the
reserve; ties by agent index here, a fixed order, so the enumeration is deterministic)
and every pure Nash equilibrium of the grid game is found exhaustively. The ratio is
OPT_LW / LW(worst pure equilibrium). Also reported: everyone bidding its value for all
it wants (the truthful profile, which may be budget-infeasible for some agents: their
allocations then count in LW but their utility is −∞) — as a reference, not an
equilibrium.

Known results are for other mechanisms: for pure equilibria of simultaneous
first-price item auctions with additive budgeted buyers the liquid PoA is at most 2
(Azar, Feldman, Gravin & Roytman, SAGT 2017, arXiv 1511.01132), and 2 bounds a class of
item-by-item auctions (Voudouris, arXiv 2007.14274). Maxwell's rule is not in that class
(one bid prices all of an agent's units, and a unit's price is a rival unit's bid), so
none of these bounds is claimed for it. Pure numpy; randomness from the
generator passed in; no I/O.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import numpy as np
import numpy.typing as npt

FloatArray = npt.NDArray[np.float64]
IntArray = npt.NDArray[np.int64]

MAX_PROFILES = 200_000


def clear_identical(
    bids: FloatArray, qty: IntArray, slots: int, reserve: float = 0.0
) -> tuple[IntArray, FloatArray]:
    """(units won, payment) per agent for a batch of profiles (P, n), α = 1.

    The deployed rule: agents ranked by bid (ties: lower index first), blocks of
    min(q, K) units; the j-th unit of an agent's block pays the j-th unit ranked after
    the block (a rival's), or the reserve. Bids below the reserve win nothing.
    """
    p_n, n = bids.shape
    k = slots
    q = np.where(bids >= reserve, np.minimum(qty, k), 0)
    order = np.lexsort((np.broadcast_to(np.arange(n), (p_n, n)), -bids), axis=-1)
    b_o = np.take_along_axis(bids, order, axis=1)
    q_o = np.take_along_axis(q, order, axis=1)
    end = np.cumsum(q_o, axis=1)  # exclusive end rank of each block
    start = end - q_o
    won_o = np.clip(k - start, 0, q_o)
    # Unit bids in rank order, padded with the reserve: U[p, t] for t < n·K + K.
    width = n * k + k + 1
    t = np.arange(width)
    owner_pos = (t[None, :, None] >= end[:, None, :]).sum(axis=2)  # block index of unit t
    valid = owner_pos < n
    u = np.where(valid, np.take_along_axis(b_o, np.minimum(owner_pos, n - 1), axis=1), reserve)
    u = np.maximum(u, reserve)
    c = np.concatenate([np.zeros((p_n, 1)), np.cumsum(u, axis=1)], axis=1)
    lo = np.minimum(end, width)
    hi = np.minimum(end + won_o, width)
    pay_o = np.take_along_axis(c, hi, axis=1) - np.take_along_axis(c, lo, axis=1)
    pay_o = np.where(won_o > 0, pay_o, 0.0)
    won = np.zeros_like(won_o)
    pay = np.zeros_like(pay_o)
    np.put_along_axis(won, order, won_o, axis=1)
    np.put_along_axis(pay, order, pay_o, axis=1)
    return won.astype(np.int64), pay


def optimal_liquid_welfare(v: FloatArray, q: IntArray, budget: FloatArray, slots: int) -> float:
    """max Σ min(v_i x_i, B_i) over integer x with Σ x ≤ K, x_i ≤ q_i (greedy is exact)."""
    marginal = []
    for vi, qi, bi in zip(v.tolist(), q.tolist(), budget.tolist(), strict=True):
        for j in range(int(qi)):
            marginal.append(max(min(vi, bi - vi * j), 0.0))
    marginal.sort(reverse=True)
    return float(sum(marginal[:slots]))


@dataclass(frozen=True)
class DeployedPoA:
    slots: int
    agents: int
    grid: int
    seed: int
    ratios: FloatArray  # OPT_LW / LW(worst pure NE), NaN where the grid game has none
    truthful_ratios: FloatArray  # OPT_LW / LW(everyone bids its value for all it wants)
    equilibria: IntArray  # pure equilibria found per instance
    budget_bound: FloatArray  # share of instances whose worst NE has a budget-capped agent
    budgets: bool = True

    def summary(self) -> dict[str, Any]:
        r = self.ratios[np.isfinite(self.ratios)]
        tr = self.truthful_ratios
        return {
            "setting": "deployed: alpha = 1, multi-unit demand, "
            + ("budgets, liquid welfare" if self.budgets else "no budgets, welfare"),
            "budgets": self.budgets,
            "instances": int(self.ratios.size),
            "with_pure_equilibrium": int(r.size),
            "slots": self.slots,
            "agents": self.agents,
            "grid": self.grid,
            "seed": self.seed,
            "max_ratio": float(np.max(r)) if r.size else math.nan,
            "p50_ratio": float(np.percentile(r, 50)) if r.size else math.nan,
            "p99_ratio": float(np.percentile(r, 99)) if r.size else math.nan,
            "inefficient_share": float(np.mean(r > 1 + 1e-9)) if r.size else math.nan,
            "mean_equilibria": float(np.mean(self.equilibria)),
            "truthful_max_ratio": float(np.max(tr)),
            "truthful_p50_ratio": float(np.percentile(tr, 50)),
            "method": (
                f"pure Nash exhaustively over a grid of {self.grid} bids in [0, v] × "
                f"quantities 1..q per agent, cleared with the deployed rule (alpha = 1); "
                f"v ~ U[0,1], q ~ U{{1..K}}, budget ~ U[0.2,1]·q·v; liquid welfare "
                f"(Dobzinski & Paes Leme 2014)"
            ),
        }


def _strategies(v: float, q: int, grid: int) -> tuple[FloatArray, IntArray]:
    levels = v * np.linspace(0.0, 1.0, grid)
    b = np.repeat(levels, q)
    m = np.tile(np.arange(1, q + 1), grid)
    return b, m.astype(np.int64)


def run_deployed_poa(
    instances: int = 300, slots: int = 2, agents: int = 3, grid: int = 9, seed: int = 0,
    budgets: bool = True,
) -> DeployedPoA:
    """The whole study (see the module doc); deterministic for a given seed."""
    if instances < 1 or slots < 1 or agents < 2 or grid < 2:
        raise ValueError("need instances >= 1, slots >= 1, agents >= 2, grid >= 2")
    if (grid * slots) ** agents > MAX_PROFILES:
        raise ValueError(
            f"{(grid * slots) ** agents} profiles per instance is too many "
            f"(limit {MAX_PROFILES}): lower --grid, --slots or --agents")
    rng = np.random.default_rng(seed)
    ratios = np.full(instances, np.nan)
    truthful = np.zeros(instances)
    counts = np.zeros(instances, dtype=np.int64)
    capped = np.zeros(instances)
    for it in range(instances):
        v = rng.random(agents)
        q = rng.integers(1, slots + 1, agents)
        budget = rng.uniform(0.2, 1.0, agents) * q * v
        if not budgets:  # the same draws, budgets lifted: liquid welfare is welfare
            budget = np.full(agents, np.inf)
        opt = optimal_liquid_welfare(v, q, budget, slots)
        strats = [_strategies(float(v[i]), int(q[i]), grid) for i in range(agents)]
        sizes = [s[0].size for s in strats]
        grids = np.meshgrid(*[np.arange(s) for s in sizes], indexing="ij")
        idx = [g.ravel() for g in grids]
        bids = np.stack([strats[i][0][idx[i]] for i in range(agents)], axis=1)
        qty = np.stack([strats[i][1][idx[i]] for i in range(agents)], axis=1)
        won, pay = clear_identical(bids, qty, slots)
        util = np.where(pay <= budget[None, :] + 1e-12, v[None, :] * won - pay, -np.inf)
        lw = np.minimum(v[None, :] * won, budget[None, :]).sum(axis=1)
        ne = np.ones(bids.shape[0], dtype=bool)
        for i in range(agents):
            u_i = util[:, i].reshape(sizes)
            best = u_i.max(axis=i, keepdims=True)
            ne &= (u_i >= best - 1e-12).ravel() & np.isfinite(u_i).ravel()
        counts[it] = int(ne.sum())
        if counts[it]:
            worst = int(np.flatnonzero(ne)[np.argmin(lw[ne])])
            ratios[it] = opt / lw[worst] if lw[worst] > 0 else np.inf
            capped[it] = float(np.any(v * won[worst] > budget + 1e-12))
        tw, _ = clear_identical(v[None, :], q[None, :], slots)
        t_lw = float(np.minimum(v * tw[0], budget).sum())
        truthful[it] = opt / t_lw if t_lw > 0 else np.inf
    return DeployedPoA(slots, agents, grid, seed, ratios, truthful, counts, capped, budgets)
