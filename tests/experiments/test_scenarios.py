import subprocess
import sys

import pytest

from maxwell.config import ConfigError, validate
from maxwell.experiments.scenario import MODELS, list_scenarios, load_scenario, scenario_text

SHIPPED = list_scenarios()


def test_every_required_cast_is_shipped():
    for name in ("demo", "mixed-value", "thermal-budget", "liars", "bursty", "slow-proof",
                 "memory-hogs", "floor-parasites", "crowd", "swarm"):
        assert name in SHIPPED
    models = {c.model for n in SHIPPED for c in load_scenario(n).doc.cast}
    assert models == set(MODELS)
    sizes = [load_scenario(n).cast().n for n in SHIPPED]
    assert min(sizes) == 2 and max(sizes) >= 10_000


@pytest.mark.parametrize("name", SHIPPED)
def test_shipped_scenarios_load_and_live_casts_are_valid_configs(name):
    scn = load_scenario(name)
    assert scn.name == name
    assert "[scenario]" in scenario_text(name)
    if scn.live_capable:
        cfg = validate(scn.live_config_data(), name)
        assert len(cfg.agents) == scn.cast().n


def test_bad_keys_are_named(tmp_path):
    text = scenario_text("demo")
    bad = tmp_path / "bad.toml"
    bad.write_text(text.replace("workers = 2", "workers = 0", 1))
    with pytest.raises(ConfigError, match=r"cast\[0\]\.workers"):
        load_scenario(str(bad))
    bad.write_text(text + "\n[market]\nbogus = 1\n")
    with pytest.raises(ConfigError, match=r"market\.bogus"):
        load_scenario(str(bad))
    bad.write_text(text.replace('model = "parasite"', 'model = "useful"'))
    with pytest.raises(ConfigError, match="units_per_core_s"):
        load_scenario(str(bad))
    with pytest.raises(ConfigError, match="unknown scenario"):
        load_scenario("no-such-scenario")


def test_overrides_address_sections_and_cast_groups():
    scn = load_scenario("demo")
    s2 = scn.with_overrides({"market.landauer_lambda": "0", "cast.miner.funds": "10",
                             "cast.*.workers": 1})
    assert s2.doc.market.landauer_lambda == 0
    assert [c.funds for c in s2.doc.cast] == [30.0, 10.0]
    assert [c.workers for c in s2.doc.cast] == [1, 1]
    assert scn.doc.cast[1].funds == 30.0  # the original is untouched
    with pytest.raises(ConfigError, match="no cast group"):
        scn.with_overrides({"cast.nobody.funds": 1})


def test_cli_list_json_and_bad_input_exit_2(tmp_path):
    out = subprocess.run([sys.executable, "-m", "maxwell", "experiment", "list", "--json"],
                         capture_output=True, text=True, check=True)
    assert '"scenarios"' in out.stdout and '"demo"' in out.stdout
    r = subprocess.run([sys.executable, "-m", "maxwell", "experiment", "compare", "--scenario",
                        "demo", "--sim", "--policies", "cfs,bogus", "--out",
                        str(tmp_path / "o")], capture_output=True, text=True)
    assert r.returncode == 2 and "bogus" in r.stderr
    assert not (tmp_path / "o").exists()
