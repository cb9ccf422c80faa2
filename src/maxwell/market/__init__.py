"""The CPU market: GSP auction with a reserve price, the VCG reference, welfare, and
the price-of-anarchy experiment.

Public API (see docs/api.md): `gsp`, `vcg`, `Allocation`, `welfare`,
`optimal_welfare`; `maxwell.market.poa` holds the experiment. Pure: no I/O, no clock,
randomness only from a passed `np.random.Generator`.
"""

from maxwell.market.auction import Allocation, gsp, optimal_welfare, vcg, welfare

__all__ = ["Allocation", "gsp", "optimal_welfare", "vcg", "welfare"]
