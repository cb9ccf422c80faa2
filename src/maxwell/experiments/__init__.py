"""Experiments: scenarios, the baseline ladder, seeds with intervals, distributed sweeps.

`scenario` loads the shipped casts (package data) and user files; `policies` holds
the ladder (cfs, nice, weights, watchdog, thermal-cap, oracle, maxwell and its
ablations); `world` runs a cast under a policy in the simulated world; `compare`
repeats that over seeds and reduces it to medians with bootstrap intervals
(`stats`), paired by seed against the oracle; `sweep` fans runs out over a Dask
cluster. May import the economy, physics (the model plant), record and report.
"""
