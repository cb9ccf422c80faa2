"""The price of anarchy of GSP, measured on random instances.

An instance is n unit-demand bidders with values v_i per core-second drawn uniform
on [0, 1] and K slot weights with α₁ = 1 and the rest uniform on [0, 1], sorted
down. For each instance:

* Pure Nash equilibria, exhaustively: a ranking of the bidders (the K slot holders,
  then the highest loser) is an equilibrium outcome iff some bid vector ranks them
  that way, overbids nobody (0 ≤ b_i ≤ v_i, the assumption under which the proven
  bounds hold), and leaves no bidder a profitable deviation: the winner of slot k,
  paying b_(k+1), must not prefer slot j < k at price b_(j), slot j > k at price
  b_(j+1), or nothing; a loser must not prefer any slot at its price. Without
  overbidding the slot holders must be the K highest values, so the K! orders of
  those are all the rankings there are (argument in `worst_pure_nash`). The
  conditions are linear in the bids, so each ranking is one feasibility LP (scipy
  HiGHS; all rankings of many instances are solved as one block LP whose per-block
  slack is zero exactly for the feasible blocks). The worst equilibrium is the
  feasible ranking of least welfare; the ratio is OPT / W(worst).
* No-regret learning: every bidder runs full-information Hedge (multiplicative
  weights) over a grid of bids in [0, v_i] for a number of rounds; the ratio is OPT
  over the average realized welfare (the empirical play approaches a coarse
  correlated equilibrium, Roughgarden, Syrgkanis & Tardos, JAIR 2017).

Known bounds (no overbidding): pure Nash ≤ 1.618 (Paes Leme & Tardos, FOCS 2010),
≤ 1.282 (Caragiannis et al., EC 2011), with instances reaching 1.259 for 3 slots;
coarse-correlated ≤ 2.310 (Caragiannis et al. 2011). A measured pure-Nash ratio above
1.282 would be a bug here, not a finding.

Pure: numpy and scipy only, randomness from the generator passed in, no I/O.
"""

from __future__ import annotations

import itertools
import math
from dataclasses import dataclass
from typing import Any

import numpy as np
import numpy.typing as npt

FloatArray = npt.NDArray[np.float64]
IntArray = npt.NDArray[np.int64]
BoolArray = npt.NDArray[np.bool_]

BOUNDS = {
    "pure_nash_upper_paes_leme_tardos_2010": 1.618,
    "pure_nash_upper_caragiannis_2011": 1.282,
    "pure_nash_lower_3_slots": 1.259,
    "coarse_correlated_upper_caragiannis_2011": 2.310,
}
FEASIBLE_TOL = 1e-9
MAX_ASSIGNMENTS = 5040  # K ≤ 7


@dataclass(frozen=True)
class PoAResult:
    """Per-instance ratios and the settings that produced them."""

    slots: int
    agents: int
    seed: int
    rounds: int
    grid: int
    values: FloatArray  # (I, n)
    weights: FloatArray  # (I, K)
    ratios: FloatArray  # OPT / W(worst pure NE) per instance
    equilibria: IntArray  # equilibrium rankings per instance (of K!)
    worst_bids: FloatArray  # (I, n) bids of the worst equilibrium found
    worst_order: IntArray  # (I, m) its ranking: slot holders, then the top loser
    learning_ratios: FloatArray  # OPT / mean welfare under Hedge bidders

    @property
    def instances(self) -> int:
        return int(self.ratios.size)

    @property
    def method(self) -> str:
        return (
            f"pure Nash: exhaustive over the {n_assignments(self.agents, self.slots)} "
            f"rankings of the K highest values per instance (no overbidding admits no "
            f"other winners), each checked for equilibrium bids by an LP (scipy "
            f"HiGHS); learning: full-information Hedge over {self.grid} bids "
            f"in [0, v] for {self.rounds} rounds; values U[0,1], α₁=1, α_k sorted U[0,1]"
        )

    def summary(self) -> dict[str, Any]:
        """The JSON object of `maxwell experiment poa --json`."""
        r = self.ratios
        lr = self.learning_ratios
        return {
            "instances": self.instances,
            "slots": self.slots,
            "agents": self.agents,
            "seed": self.seed,
            "max_ratio": float(np.max(r)),
            "p50_ratio": float(np.percentile(r, 50)),
            "p99_ratio": float(np.percentile(r, 99)),
            "mean_equilibria": float(np.mean(self.equilibria)),
            "inefficient_share": float(np.mean(r > 1.0 + 1e-9)),
            "learning_max_ratio": float(np.max(lr)),
            "learning_p50_ratio": float(np.percentile(lr, 50)),
            "rounds": self.rounds,
            "bounds": dict(BOUNDS),
            "within_proven_bound": bool(
                np.max(r) <= BOUNDS["pure_nash_upper_caragiannis_2011"] + 1e-9
            ),
            "method": self.method,
        }


def n_assignments(agents: int, slots: int) -> int:
    """Rankings examined per instance: the K! orders of the K highest values in the
    slots (all n! orders if n ≤ K); see `worst_pure_nash` for why that is all."""
    return math.factorial(min(slots, agents))


def random_instances(
    rng: np.random.Generator, instances: int, agents: int, slots: int
) -> tuple[FloatArray, FloatArray]:
    """(values (I, n), weights (I, K)) as described in the module doc."""
    values = rng.random((instances, agents))
    rest = -np.sort(-rng.random((instances, slots - 1)), axis=1)
    weights = np.concatenate([np.ones((instances, 1)), rest], axis=1)
    return values, weights


def optimal_welfare_batch(values: FloatArray, weights: FloatArray) -> FloatArray:
    """OPT per instance: the K highest values in the K slots, in order."""
    k = weights.shape[1]
    top = -np.sort(-values, axis=1)[:, :k]
    return np.asarray(np.sum(top * weights[:, : top.shape[1]], axis=1), dtype=np.float64)


def _assignments(agents: int, slots: int) -> IntArray:
    """Rankings by value rank (0 = highest value): the slot holders, then the top loser."""
    winners = min(slots, agents)
    tail = [winners] if agents > winners else []
    return np.array(
        [[*p, *tail] for p in itertools.permutations(range(winners))], dtype=np.int64
    )


def _block_lp(
    values: FloatArray, weights: FloatArray, perms: IntArray
) -> tuple[FloatArray, FloatArray]:
    """Slack per (instance, assignment) of the equilibrium LP, and the bids found.

    Returns (slack (B, A), bids (B, A, m)) with bids by position 0 … m−1.
    """
    from scipy.optimize import linprog
    from scipy.sparse import coo_matrix

    b_n, n = values.shape
    k = weights.shape[1]
    a_n, m = perms.shape  # m = K+1 positions with variables (or n if n ≤ K)
    vpos = values[:, perms]  # (B, A, m)
    alpha = np.zeros((b_n, m + 1))
    kk = min(k, m)
    alpha[:, :kk] = weights[:, :kk]
    winners = min(k, m)
    in_top = np.zeros((a_n, n), dtype=bool)
    np.put_along_axis(in_top, perms[:, :winners], True, axis=1)
    loser_vals = np.where(in_top[None, :, :], -np.inf, values[:, None, :])
    loser_max = loser_vals.max(axis=2)  # (B, A); -inf if no loser

    rows: list[tuple[int, int, FloatArray, FloatArray, FloatArray]] = []
    one = np.ones((b_n, a_n))
    zero = np.zeros((b_n, a_n))
    for pos in range(winners):
        a_k = alpha[:, pos][:, None] * one
        v_k = vpos[:, :, pos]
        nxt = pos + 1 if pos + 1 < m else -1
        for j in range(winners):
            if j == pos:
                continue
            a_j = alpha[:, j][:, None] * one
            target = j if j < pos else j + 1  # the bid the deviator would pay
            var_t = target if target < m else -1
            rhs = (a_k - a_j) * v_k
            # α_k·b_(k+1) − α_j·b_target ≤ (α_k − α_j)·v_k (absent bids are 0)
            if nxt >= 0 and var_t >= 0:
                rows.append((nxt, var_t, a_k, -a_j, rhs))
            elif nxt >= 0:
                rows.append((nxt, -1, a_k, zero, rhs))
            elif var_t >= 0:
                rows.append((var_t, -1, -a_j, zero, rhs))
            else:
                rows.append((-1, -1, zero, zero, rhs))
        if nxt >= 0:  # staying beats leaving: b_(k+1) ≤ v_k
            rows.append((nxt, -1, one, zero, v_k))
    if winners < n:  # no loser wants the last slot at its price: b_(K) ≥ max loser value
        rows.append((winners - 1, -1, -one, zero, -np.where(np.isfinite(loser_max), loser_max, 0)))
    for pos in range(m - 1):  # the ranking: b_(p+1) ≤ b_(p)
        rows.append((pos + 1, pos, one, -one, zero))

    r_n = len(rows)
    blocks = b_n * a_n
    n_bid_vars = blocks * m
    block_id = np.arange(blocks).reshape(b_n, a_n)
    ri, ci, vals, rhs_all = [], [], [], []
    for r, (va, vb, ca, cb, rhs) in enumerate(rows):
        row_idx = (block_id * r_n + r).ravel()
        if va >= 0:
            ri.append(row_idx)
            ci.append((block_id * m + va).ravel())
            vals.append(ca.ravel())
        if vb >= 0:
            ri.append(row_idx)
            ci.append((block_id * m + vb).ravel())
            vals.append(cb.ravel())
        ri.append(row_idx)
        ci.append(n_bid_vars + block_id.ravel())
        vals.append(-np.ones(blocks))
        rhs_all.append((row_idx, rhs.ravel()))
    b_ub = np.zeros(blocks * r_n)
    for idx, rhs in rhs_all:
        b_ub[idx] = rhs
    a_ub = coo_matrix(
        (np.concatenate(vals), (np.concatenate(ri), np.concatenate(ci))),
        shape=(blocks * r_n, n_bid_vars + blocks),
    ).tocsr()
    c = np.concatenate([np.zeros(n_bid_vars), np.ones(blocks)])
    lower = np.zeros(n_bid_vars + blocks)
    upper = np.concatenate([vpos.reshape(-1), np.full(blocks, np.inf)])
    res = linprog(
        c, A_ub=a_ub, b_ub=b_ub, bounds=np.stack([lower, upper], axis=1), method="highs"
    )
    if res.status != 0:
        raise RuntimeError(f"equilibrium LP failed: {res.message}")
    x = np.asarray(res.x, dtype=np.float64)
    slack = x[n_bid_vars:].reshape(b_n, a_n)
    bids = x[:n_bid_vars].reshape(b_n, a_n, m)
    return slack, bids


def worst_pure_nash(
    values: FloatArray, weights: FloatArray, batch: int = 64
) -> tuple[FloatArray, IntArray, FloatArray, IntArray]:
    """Welfare of the worst pure Nash equilibrium per instance (no overbidding).

    Returns (welfare (I,), number of equilibrium rankings (I,), bids (I, n),
    ranking (I, m): the agents in slots 1…K and the highest loser, in that order;
    agents not listed bid 0).

    Without overbidding the slot holders are the K highest values: a loser must not
    want slot K at its price b_(K), so b_(K) ≥ v_loser, while every holder bids at
    least b_(K) and at most its own value. And of the losers, the one with the highest
    value is the best candidate for the rank just below the slots (it allows the
    largest b_(K+1); every other constraint is the same). So the K! orders of the K
    highest values, with the highest loser next, are every pure equilibrium outcome
    there is. An instance without an equilibrium ranking (it cannot happen: the
    Edelman–Ostrovsky–Schwarz / Varian equilibrium is efficient and does not
    overbid) would get welfare NaN.
    """
    i_n, n = values.shape
    k = weights.shape[1]
    if n_assignments(n, k) > MAX_ASSIGNMENTS:
        raise ValueError(
            f"{n_assignments(n, k)} rankings per instance is too many to enumerate "
            f"(limit {MAX_ASSIGNMENTS}): use fewer slots"
        )
    # Work in value-rank space: agent r is the r-th highest value of its instance.
    by_value = np.argsort(-values, axis=1, kind="stable")
    ranked_values = np.take_along_axis(values, by_value, axis=1)
    perms = _assignments(n, k)
    winners = min(k, perms.shape[1])
    out_w = np.full(i_n, np.nan)
    out_count = np.zeros(i_n, dtype=np.int64)
    out_bids = np.zeros((i_n, n))
    out_order = np.zeros((i_n, perms.shape[1]), dtype=np.int64)
    for start in range(0, i_n, batch):
        stop = min(start + batch, i_n)
        v = ranked_values[start:stop]
        w = weights[start:stop]
        slack, bids = _block_lp(v, w, perms)
        welfare = np.sum(v[:, perms[:, :winners]] * w[:, None, :winners], axis=2)
        feasible = slack <= FEASIBLE_TOL
        masked = np.where(feasible, welfare, np.inf)
        worst = np.argmin(masked, axis=1)
        rows = np.arange(stop - start)
        ok = feasible.any(axis=1)
        out_w[start:stop] = np.where(ok, masked[rows, worst], np.nan)
        out_count[start:stop] = feasible.sum(axis=1)
        chosen = np.take_along_axis(by_value[start:stop], perms[worst], axis=1)  # agents
        eq_bids = np.zeros((stop - start, n))
        np.put_along_axis(eq_bids, chosen, bids[rows, worst], axis=1)
        out_bids[start:stop] = eq_bids
        out_order[start:stop] = chosen
    return out_w, out_count, out_bids, out_order


def hedge_welfare(
    values: FloatArray,
    weights: FloatArray,
    rng: np.random.Generator,
    rounds: int = 300,
    grid: int = 21,
) -> FloatArray:
    """Mean realized welfare per instance when every bidder runs Hedge.

    Each round every bidder draws a bid from its weights over ``v_i·{0, 1/(G−1), …, 1}``,
    GSP is cleared (ties by a fresh random priority), and every bidder is told the
    utility each grid bid would have earned against the others' bids that round.
    """
    i_n, n = values.shape
    k = weights.shape[1]
    eta = math.sqrt(8.0 * math.log(grid) / rounds)
    levels = np.linspace(0.0, 1.0, grid)
    grid_bids = values[:, :, None] * levels  # (I, n, G)
    alpha_ext = np.concatenate([weights, np.zeros((i_n, max(0, n - k) + 1))], axis=1)
    cum_u = np.zeros((i_n, n, grid))
    total_w = np.zeros(i_n)
    rows = np.arange(i_n)[:, None]
    for _ in range(rounds):
        logits = eta * (cum_u - cum_u.max(axis=2, keepdims=True))
        p = np.exp(logits)
        cdf = np.cumsum(p, axis=2)
        cdf /= cdf[:, :, -1:]
        u = rng.random((i_n, n, 1))
        choice = np.minimum((cdf < u).sum(axis=2), grid - 1)
        bids = np.take_along_axis(grid_bids, choice[:, :, None], axis=2)[:, :, 0]
        prio = rng.random((i_n, n))
        order = np.lexsort((-prio, -bids), axis=-1)
        total_w += np.sum(values[rows, order[:, :k]] * weights[:, : min(k, n)], axis=1)

        # Counterfactual: bidder i bids grid value x against the others' actual bids.
        # One rival j at a time: reductions over a short last axis are slow in numpy.
        pos = np.zeros((i_n, n, grid), dtype=np.int64)
        price = np.zeros((i_n, n, grid))
        for j in range(n):
            bj = bids[:, j][:, None, None]
            tie_win = (prio[:, j][:, None] > prio)[:, :, None]
            above = (bj > grid_bids) | ((bj == grid_bids) & tie_win)
            above[:, j, :] = False
            pos += above
            below = ~above
            below[:, j, :] = False
            np.maximum(price, np.where(below, bj, 0.0), out=price)
        a_pos = np.take_along_axis(alpha_ext[:, None, :], pos.reshape(i_n, 1, -1), axis=2)
        a_pos = a_pos.reshape(i_n, n, grid)
        cum_u += a_pos * (values[:, :, None] - price)
    return total_w / rounds


def run_poa(
    instances: int = 2000,
    slots: int = 3,
    agents: int | None = None,
    seed: int = 0,
    rounds: int = 300,
    grid: int = 21,
) -> PoAResult:
    """The whole experiment (see the module doc); deterministic for a given seed."""
    if instances < 1:
        raise ValueError("instances must be >= 1")
    if slots < 1:
        raise ValueError("slots must be >= 1")
    n = slots + 1 if agents is None else agents
    if n < 2:
        raise ValueError("need at least 2 agents")
    if rounds < 1 or grid < 2:
        raise ValueError("rounds must be >= 1 and grid >= 2")
    rng = np.random.default_rng(seed)
    values, weights = random_instances(rng, instances, n, slots)
    opt = optimal_welfare_batch(values, weights)
    worst, count, bids, order = worst_pure_nash(values, weights)
    learned = hedge_welfare(values, weights, rng, rounds=rounds, grid=grid)
    return PoAResult(
        slots=slots,
        agents=n,
        seed=seed,
        rounds=rounds,
        grid=grid,
        values=values,
        weights=weights,
        ratios=opt / worst,
        equilibria=count,
        worst_bids=bids,
        worst_order=order,
        learning_ratios=opt / learned,
    )
