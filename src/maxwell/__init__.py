"""Maxwell: a resource economy for autonomous agents on a Linux host.

Heat sets the price of CPU, agents buy CPU slots in an auction, freeing memory
is taxed at Landauer's bound, verified work earns bounties and the bankrupt die.
"""

__version__ = "0.1.0"
