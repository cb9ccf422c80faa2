"""`maxwell experiment compare`: one scenario × policies × seeds, reduced to intervals.

Runs every (policy, seed) pair — simulated here, live through `maxwell.experiments.live`
— and reduces the per-run figures to medians with bootstrap 95 % intervals
(`maxwell.experiments.stats`). The ratio to the oracle is paired by seed: for seed s,
value per Joule of the policy over the oracle's in the same seed, then the median
and interval of those ratios. `beats` says, for each baseline, whether Maxwell's
value-per-Joule interval lies wholly above it (the strict, unpaired test) and gives
the paired ratio maxwell / baseline with its interval.

Live repetitions interleave the policies (seed 1: A B C …, seed 2: A B C …) so a
drift of the machine hits every policy alike.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import numpy as np

from maxwell.experiments.metrics import RunResult
from maxwell.experiments.stats import median_ci, paired_ratio_ci

METRICS = (
    "value_per_j",
    "false_kills",
    "parasite_energy_share",
    "time_above_setpoint_s",
    "mechanism_cpu_s",
)

Progress = Callable[[int, int, str], None]
RECORD_MAX_AGENTS = 1000


def run_order(policies: Sequence[str], seeds: Sequence[int]) -> list[tuple[str, int]]:
    """(policy, seed) pairs, policies interleaved within each seed (ABAB…)."""
    return [(p, s) for s in seeds for p in policies]


def summarize(
    scenario: str, mode: str, policies: Sequence[str], seeds: Sequence[int],
    runs: Sequence[RunResult], extra: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """The compare JSON object from the runs (see the module doc)."""
    by: dict[str, dict[int, RunResult]] = {p: {} for p in policies}
    for r in runs:
        by.setdefault(r.policy, {})[r.seed] = r

    def series(p: str, key: str) -> np.ndarray:
        return np.array([float(getattr(by[p][s], key)) if s in by[p] else np.nan
                         for s in seeds])

    oracle = series("oracle", "value_per_j") if "oracle" in by else None
    out_p: dict[str, Any] = {}
    for i, p in enumerate(policies):
        entry: dict[str, Any] = {}
        for j, key in enumerate(METRICS):
            entry[key] = median_ci(series(p, key), seed=1000 * i + j).as_dict()
        entry["false_kills"]["total"] = int(np.nansum(series(p, "false_kills")))
        if oracle is not None:
            entry["oracle_fraction"] = paired_ratio_ci(
                series(p, "value_per_j"), oracle, seed=1000 * i + 99).as_dict()
        else:
            entry["oracle_fraction"] = {"median": None, "ci95": [None, None], "n": 0,
                                        "note": "oracle not run"}
        entry["runs"] = len(by[p])
        out_p[p] = entry

    beats: dict[str, Any] = {}
    if "maxwell" in by:
        mx = median_ci(series("maxwell", "value_per_j"), seed=7)
        for i, p in enumerate(policies):
            if p == "maxwell":
                continue
            other = median_ci(series(p, "value_per_j"), seed=1000 * i)
            ratio = paired_ratio_ci(series("maxwell", "value_per_j"),
                                    series(p, "value_per_j"), seed=500 + i)
            beats[p] = {
                "maxwell_above": mx.above(other),
                "maxwell_below": other.above(mx),
                "paired_ratio": ratio.as_dict(),
            }
    return {
        "scenario": scenario,
        "mode": mode,
        "seeds": len(seeds),
        "seed_list": list(seeds),
        "labels": {
            "runs": "simulated" if mode == "sim" else "live",
            "energy": "modelled" if mode == "sim" else "see each run's energy_source",
            "temperature": "modelled" if mode == "sim" else "see each run's temp_source",
            "interval": "median over seeds, percentile bootstrap 95 % (2000 resamples)",
            "oracle_fraction": "value_per_j / oracle's value_per_j, paired by seed",
            "parasite_energy_share": "parasites' share of the energy attributed to agents",
            "time_above_setpoint_s": "seconds with the die > setpoint + 1 °C",
            "mechanism_cpu_s": "CPU seconds of the policy's own decisions (measured)",
        },
        "policies": out_p,
        "beats": beats,
        **(extra or {}),
        "runs": [r.metrics() | {"mechanism_cpu_s": r.mechanism_cpu_s, **r.extra} for r in runs],
    }


def compare_sim(
    scenario: Any, policies: Sequence[str], seeds: Sequence[int],
    progress: Progress | None = None, record_dir: Any = None,
) -> dict[str, Any]:
    """Simulate every (policy, seed) in-process and summarize. With `record_dir`, the
    first seed of each policy is also written as a run database there (casts of at
    most `RECORD_MAX_AGENTS` agents)."""
    from maxwell.experiments.simrun import simulate

    order = run_order(policies, seeds)
    runs = []
    small = scenario.cast().n <= RECORD_MAX_AGENTS
    for k, (p, s) in enumerate(order):
        rec = None
        if record_dir is not None and s == seeds[0] and small:
            rec = record_dir / "runs" / f"{p.replace(':', '-')}-seed{s}"
        runs.append(simulate(scenario, p, s, record=rec))
        if progress is not None:
            progress(k + 1, len(order), f"{p} seed {s}")
    return summarize(scenario.name, "sim", policies, seeds, runs)
