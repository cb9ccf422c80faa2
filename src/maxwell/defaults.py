"""The one set of defaults: every default a run depends on, defined once.

`config.py` (the TOML schema), `default.toml` (the built-in demo, which states
every value so users can read and edit it), `economy.EconomyParams` and the docs
(docs/api.md) all take their values from here or are checked against it by
tests/test_defaults.py (the pure packages below the economy keep a literal copy,
checked there too, so they import nothing of the project's). Change a value here
and the test names every place that still says otherwise. Plain constants.
"""

from __future__ import annotations

# [run]
DURATION_S = 60.0
TICK_S = 1.0
SEED = 1
STARTUP_GRACE_S = 5.0  # no agent is frozen before its hello or this many seconds

# [physics]
HW_CLASS = "desktop"
SETPOINT_C = 70.0  # die temperature the reserve price defends (°C)

# [market]: prices in credits per core-second, money in credits
R_MIN = 0.05
R_MAX = 5.0
ENERGY_PRICE_PER_J = 0.01  # one credit buys 100 J
LANDAUER_LAMBDA = 1e14  # multiplier on Landauer's bound (stated in every report)
BOUNTY_PER_UNIT = 5e-6  # credits per verified unit (scientist: per prime)
FINE_PER_FRAUD = 20.0  # credits per false claim, on top of the claim-scaled part
BOUNTY_POOL = 1e6
RESIEVE_PROBABILITY = 0.02  # chance a claim without block counts is re-sieved in full
BLOCK_AUDIT_PROBABILITY = 0.05  # chance one block of a block-committed claim is re-sieved
PROBATION_CLAIMS = 200  # claims audited with certainty after a fraud is caught
# The capacity for sale falls by one core per this many credits per core-second of
# reserve above R_MIN (the thermal loop's actuator; see economy.capacity_for_sale).
PRICE_PER_CORE = 1.0
# Value discovery (economy: "Trials"): the share of a proven winner's cores lent to
# unproven bidders, and the core-seconds of trial an agent gets before its first
# verified work (a Python agent's start-up plus a first claim fit in one).
TRIAL_SHARE = 0.1
TRIAL_CPU_S = 1.0
# An agent whose standing bid can never win (0 slots, or below r_min) is frozen and
# could never bid again: every this many seconds it is thawed for one tick on a small
# quota (economy.WAKE_CORES), billed at the reserve, to re-bid.
WAKE_EVERY_S = 10.0

# The values above by the key that carries them in the TOML file ("section.key").
TOML_KEYS: dict[str, float | int | str] = {
    "run.duration_s": DURATION_S,
    "run.tick_s": TICK_S,
    "run.seed": SEED,
    "run.startup_grace_s": STARTUP_GRACE_S,
    "physics.hw_class": HW_CLASS,
    "physics.setpoint_c": SETPOINT_C,
    "market.r_min": R_MIN,
    "market.r_max": R_MAX,
    "market.energy_price_per_j": ENERGY_PRICE_PER_J,
    "market.landauer_lambda": LANDAUER_LAMBDA,
    "market.bounty_per_unit": BOUNTY_PER_UNIT,
    "market.fine_per_fraud": FINE_PER_FRAUD,
    "market.bounty_pool": BOUNTY_POOL,
    "market.resieve_probability": RESIEVE_PROBABILITY,
    "market.block_audit_probability": BLOCK_AUDIT_PROBABILITY,
    "market.probation_claims": PROBATION_CLAIMS,
    "market.trial_share": TRIAL_SHARE,
    "market.trial_cpu_s": TRIAL_CPU_S,
    "market.wake_every_s": WAKE_EVERY_S,
}
