"""`maxwell experiment sweep`: scenario × parameter values × policies × seeds, distributed.

The engine is Dask (`dask.distributed`), not Ray. Why: a sweep's unit of work is a
pure function of (scenario document, overrides, policy, seed) returning a small
dict, so all it needs is a task scheduler; Dask's is pure Python (a few MB of
wheels, next to Ray's ~100 MB with its own object store and raylet daemons),
starts a two-process local cluster in about a second on a 2-core machine shared
with other work, and runs across machines the ordinary way (`dask scheduler` on
one, `dask worker tcp://HOST:8786` on the others, then `--cluster tcp://HOST:8786`).

Each task receives the scenario as its parsed TOML document and rebuilds it, so
workers need Maxwell installed but nothing else; a run's numbers depend only on
its inputs, so a cluster gives the same results as this process (tested; the
mechanism's CPU time, measured, is reported apart and not compared).
"""

from __future__ import annotations

import itertools
import time
from collections.abc import Callable, Sequence
from typing import Any

from maxwell.common import UsageError
from maxwell.experiments.scenario import Scenario, _parse_value, validate
from maxwell.experiments.stats import median_ci

ENGINE = "dask"


def parse_sets(items: Sequence[str]) -> dict[str, list[Any]]:
    """`KEY=V1,V2` strings → {KEY: [V1, V2]} (UsageError naming a malformed one)."""
    out: dict[str, list[Any]] = {}
    for item in items:
        key, eq, values = item.partition("=")
        key = key.strip()
        if not eq or not key or not values.strip():
            raise UsageError(f"--set {item!r}: expected KEY=V1,V2,...")
        out[key] = [_parse_value(v.strip()) for v in values.split(",") if v.strip()]
    return out


def grid(sets: dict[str, list[Any]]) -> list[dict[str, Any]]:
    keys = list(sets)
    return [dict(zip(keys, combo, strict=True)) for combo in itertools.product(
        *(sets[k] for k in keys))] or [{}]


def run_one(data: dict[str, Any], source: str, changes: dict[str, Any], policy: str,
            seed: int) -> dict[str, Any]:
    """One simulated run from plain inputs (what a worker executes)."""
    from maxwell.experiments.simrun import simulate

    scn = validate(data, source).with_overrides(changes) if changes else validate(data, source)
    r = simulate(scn, policy, seed)
    return {"set": changes, **r.metrics(), "mechanism_cpu_s": r.mechanism_cpu_s}


def _check(scn: Scenario, combos: list[dict[str, Any]]) -> None:
    for c in combos:
        scn.with_overrides(c)  # bad keys or values fail here, before any run


def sweep(
    scn: Scenario, sets: dict[str, list[Any]], policies: Sequence[str], seeds: Sequence[int],
    cluster: str | None = None, workers: int = 2,
    progress: Callable[[int, int, str], None] | None = None,
) -> dict[str, Any]:
    """Run the grid; `cluster` None: in this process; "local": a local Dask cluster of
    `workers` processes started and stopped here; else a scheduler address."""
    combos = grid(sets)
    _check(scn, combos)
    tasks = [(c, p, s) for c in combos for s in seeds for p in policies]
    t0 = time.monotonic()
    if cluster is None:
        engine = "in-process"
        results = []
        for k, (c, p, s) in enumerate(tasks):
            results.append(run_one(scn.data, scn.source, c, p, s))
            if progress:
                progress(k + 1, len(tasks), f"{p} seed {s}")
    else:
        results, engine = _on_dask(scn, tasks, cluster, workers, progress)
    wall = time.monotonic() - t0
    groups = []
    for c in combos:
        for p in policies:
            rows = [r for r in results if r["set"] == c and r["policy"] == p]
            groups.append({
                "set": c,
                "policy": p,
                "seeds": len(rows),
                "value_per_j": median_ci([r["value_per_j"] for r in rows]).as_dict(),
                "false_kills": median_ci([r["false_kills"] for r in rows]).as_dict(),
                "parasite_energy_share": median_ci(
                    [r["parasite_energy_share"] for r in rows]).as_dict(),
                "time_above_setpoint_s": median_ci(
                    [r["time_above_setpoint_s"] for r in rows]).as_dict(),
            })
    return {
        "scenario": scn.name,
        "mode": "sim",
        "runs": len(results),
        "engine": engine,
        "wall_s": wall,
        "sets": sets,
        "policies": list(policies),
        "seeds": len(seeds),
        "groups": groups,
        "results": results,
    }


def _on_dask(
    scn: Scenario, tasks: list[tuple[dict[str, Any], str, int]], cluster: str, workers: int,
    progress: Callable[[int, int, str], None] | None,
) -> tuple[list[dict[str, Any]], str]:
    try:
        import distributed
    except ImportError:
        raise UsageError(
            "--cluster needs Dask: pip install 'dask[distributed]' (or pip install -e '.[cluster]')"
        ) from None
    # distributed's API is untyped; keep it behind Any.
    dd: Any = distributed
    Client, LocalCluster, as_completed = dd.Client, dd.LocalCluster, dd.as_completed
    local = None
    if cluster == "local":
        # Processes, one thread each: the runs are CPU-bound numpy/Python.
        local = LocalCluster(n_workers=workers, threads_per_worker=1, processes=True,
                             dashboard_address=None, silence_logs=40)
        client = Client(local)
        engine = f"dask LocalCluster ({workers} worker processes)"
    else:
        try:
            client = Client(cluster, timeout=10)
        except (OSError, TimeoutError) as err:
            raise UsageError(f"--cluster {cluster}: cannot reach a Dask scheduler: {err}") from None
        engine = f"dask {cluster} ({len(client.scheduler_info()['workers'])} workers)"
    try:
        data = client.scatter(scn.data, broadcast=True)
        futures = [client.submit(run_one, data, scn.source, c, p, s, pure=False)
                   for c, p, s in tasks]
        index = {f.key: k for k, f in enumerate(futures)}
        results: list[dict[str, Any] | None] = [None] * len(futures)
        for done, fut in enumerate(as_completed(futures), start=1):
            results[index[fut.key]] = fut.result()
            if progress:
                progress(done, len(futures), "dask")
    finally:
        client.close()
        if local is not None:
            local.close()
    return [r for r in results if r is not None], engine


def same_numbers(a: dict[str, Any], b: dict[str, Any]) -> bool:
    """Whether two sweeps of one grid produced identical figures, run by run (exact
    equality; the measured mechanism CPU time is left out)."""
    import json

    def rows(r: dict[str, Any]) -> list[str]:
        return sorted(json.dumps({k: v for k, v in x.items() if k != "mechanism_cpu_s"},
                                 sort_keys=True) for x in r["results"])

    return rows(a) == rows(b) and len(a["results"]) == len(b["results"])
