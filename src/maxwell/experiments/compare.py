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


def result_runs(result: dict[str, Any]) -> list[RunResult]:
    """The per-run figures of a compare result, as RunResult again."""
    import math

    def num(v: Any) -> float:
        return math.nan if v is None else float(v)

    keys = set(RunResult.__dataclass_fields__) - {"extra", "duration_s"}
    out = []
    for x in result["runs"]:
        extra = {k: v for k, v in x.items() if k not in keys}
        out.append(RunResult(
            scenario=x["scenario"], policy=x["policy"], seed=int(x["seed"]),
            duration_s=float(result.get("duration_s") or 0.0), value=float(x["value"]),
            energy_j=float(x["energy_j"]), value_per_j=float(x["value_per_j"]),
            false_kills=int(x["false_kills"]), kills=int(x["kills"]),
            parasite_energy_share=float(x["parasite_energy_share"]),
            time_above_setpoint_s=float(x["time_above_setpoint_s"]),
            peak_temp_c=num(x.get("peak_temp_c")), mean_price=num(x.get("mean_price")),
            mechanism_cpu_s=float(x.get("mechanism_cpu_s") or 0.0), extra=extra))
    return out


def merge_results(base: dict[str, Any], redo: dict[str, Any]) -> dict[str, Any]:
    """`base` with every policy that `redo` ran replaced by `redo`'s runs (same scenario,
    mode and seeds), summarized again; the result says which policies were re-run."""
    from maxwell.common import UsageError
    from maxwell.experiments.policies import LADDER

    for key in ("scenario", "mode", "seed_list"):
        if base.get(key) != redo.get(key):
            raise UsageError(f"merge: the two results differ in {key}: "
                             f"{base.get(key)!r} vs {redo.get(key)!r}")
    again = list(redo["policies"])
    runs = [r for r in result_runs(base) if r.policy not in again] + result_runs(redo)
    names = list(base["policies"]) + [p for p in again if p not in base["policies"]]
    order = sorted(names, key=lambda p: LADDER.index(p) if p in LADDER else len(LADDER))
    skip = {"scenario", "mode", "seeds", "seed_list", "labels", "policies", "beats", "runs"}
    extra = {k: v for k, v in base.items() if k not in skip}
    extra["rerun_policies"] = again
    if "disturbed_runs" in base:
        extra["disturbed_runs"] = sum(1 for r in runs if r.extra.get("disturbed"))
    out = summarize(base["scenario"], base["mode"], order, base["seed_list"], runs, extra=extra)
    out["labels"] = base["labels"]
    return out
