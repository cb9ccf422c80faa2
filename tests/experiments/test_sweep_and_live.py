import json
import os

import pytest

from maxwell.experiments.scenario import load_scenario
from maxwell.experiments.sweep import parse_sets, sweep


def _short(name: str = "demo"):
    return load_scenario(name).with_overrides({"run.duration_s": 15})


def test_parse_sets_and_grid_in_process():
    sets = parse_sets(["market.landauer_lambda=0,1e14", "cast.miner.funds=10"])
    assert sets == {"market.landauer_lambda": [0, 1e14], "cast.miner.funds": [10]}
    r = sweep(_short(), sets, ["maxwell"], [1, 2])
    assert r["runs"] == 4 and r["engine"] == "in-process"
    assert {json.dumps(g["set"], sort_keys=True) for g in r["groups"]} == {
        json.dumps({"market.landauer_lambda": v, "cast.miner.funds": 10}, sort_keys=True)
        for v in (0, 1e14)}


def test_a_local_dask_cluster_gives_the_in_process_numbers():
    pytest.importorskip("distributed", reason="needs Dask: pip install 'dask[distributed]'")
    scn = _short()
    sets = {"cast.miner.bid": [2.0, 4.0]}
    seeds = [1, 2, 3]
    here = sweep(scn, sets, ["maxwell", "watchdog:10"], seeds)
    there = sweep(scn, sets, ["maxwell", "watchdog:10"], seeds, cluster="local", workers=2)
    assert there["engine"].startswith("dask LocalCluster (2 worker")

    def key(r):
        return (json.dumps(r["set"], sort_keys=True), r["policy"], r["seed"])

    strip = [{k: v for k, v in r.items() if k != "mechanism_cpu_s"} for r in here["results"]]
    strip2 = [{k: v for k, v in r.items() if k != "mechanism_cpu_s"} for r in there["results"]]
    assert sorted(strip, key=key) == sorted(strip2, key=key)  # exactly, not approximately
    assert here["groups"] == there["groups"]


@pytest.mark.slow
def test_live_baselines_apply_through_the_membrane(tmp_path):
    from maxwell.experiments.live import run_live
    from maxwell.record import RunReader

    scn = load_scenario("demo")
    m = run_live(scn, "oracle", 1, 3.0, tmp_path / "oracle")
    assert m.parasite_energy_share < 0.5  # the miner was paused from the first tick
    assert 0.0 <= m.extra["foreign_cpu_share"] <= 1.0
    assert isinstance(m.extra["disturbed"], bool)
    with RunReader(m.extra["db"]) as r:
        assert r.host()["baseline"] == "oracle"
        kinds = {(e.kind, e.agent) for e in r.events()}
    assert ("pause", "miner") in kinds
    w = run_live(scn, "watchdog:1", 1, 3.0, tmp_path / "wd")
    assert w.kills >= 1  # the miner never proves anything
    assert os.path.exists(w.extra["db"])


def test_ladder_table_reads_compare_results(tmp_path):
    from maxwell.experiments.compare import compare_sim
    from maxwell.experiments.report import (
        ladder_by_policy,
        ladder_markdown,
        ladder_readme,
        markdown_table,
        write_report,
    )

    scn = _short()
    res = compare_sim(scn, ["cfs", "watchdog:10", "weights", "oracle", "maxwell",
                            "maxwell-lambda0"], [1, 2, 3])
    assert set(res["policies"]["maxwell"]) >= {"value_per_j", "oracle_fraction", "false_kills",
                                               "parasite_energy_share", "time_above_setpoint_s"}
    assert res["policies"]["oracle"]["oracle_fraction"]["median"] == 1.0
    assert res["labels"]["runs"] == "simulated" and res["labels"]["energy"] == "modelled"
    files = write_report(res, tmp_path)
    assert all(f.exists() and f.stat().st_size > 0 for f in files)
    assert "× oracle" in markdown_table(res)
    assert "| demo | simulated | 3 |" in ladder_markdown([res])
    mx = res["policies"]["maxwell"]
    by_policy = ladder_by_policy([res], "experiments/ladder")
    assert by_policy.splitlines()[0] == ("| scenario | cfs | watchdog:10 | weights | oracle"
                                         " | maxwell | maxwell-lambda0 |")
    row = by_policy.splitlines()[2]
    assert row.startswith("| [demo](experiments/ladder/demo/report.md) | ")
    assert (f"| {mx['oracle_fraction']['median']:.3g} / "
            f"{mx['time_above_setpoint_s']['median']:.3g} / {mx['false_kills']['total']} |") in row
    short = ladder_readme([res]).splitlines()
    assert "**maxwell**" in short[0] and short[2].startswith("| demo | ")
    assert (f"**{mx['oracle_fraction']['median']:.2f} "
            f"({mx['time_above_setpoint_s']['median']:.0f} s)**") in short[2]
    assert short[2].count("—") == 3  # thermal-cap, watchdog:30, no-reserve were not run


def test_merge_replaces_the_rerun_policies(tmp_path):
    from maxwell.experiments.compare import compare_sim, merge_results

    scn = _short()
    base = compare_sim(scn, ["cfs", "oracle", "maxwell"], [1, 2])
    redo = compare_sim(scn.with_overrides({"cast.miner.bid": 1.0}), ["maxwell"], [1, 2])
    m = merge_results(base, redo)
    assert list(m["policies"]) == ["cfs", "oracle", "maxwell"]
    assert m["rerun_policies"] == ["maxwell"]
    assert m["policies"]["maxwell"]["value_per_j"] == redo["policies"]["maxwell"]["value_per_j"]
    assert m["policies"]["cfs"] == base["policies"]["cfs"]
    redo["seed_list"] = [3]
    with pytest.raises(Exception, match="seed_list"):
        merge_results(base, redo)
