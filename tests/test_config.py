"""Configuration: the built-in file is valid; bad files get one line naming the key."""

from __future__ import annotations

import tomllib
from pathlib import Path

import pytest

from maxwell.config import ConfigError, default_config, default_text, load, validate


def _default() -> dict:  # type: ignore[type-arg]
    return tomllib.loads(default_text())


def test_default_is_valid_and_has_the_cast() -> None:
    cfg = default_config()
    assert {a.builtin for a in cfg.agents} == {"scientist", "miner"}
    funds = {a.funds for a in cfg.agents}
    assert len(funds) == 1, "the demo gives every agent equal funding"
    assert cfg.slots() >= 1


@pytest.mark.parametrize(
    ("mutate", "expected"),
    [
        (lambda d: d["run"].update(polcy="cfs"), "unknown key 'run.polcy'"),
        (lambda d: d["agents"][1].update(funds=-5.0), "agents[1].funds"),
        (lambda d: d["agents"][0].pop("builtin"), "agents[0]: give exactly one of"),
        (lambda d: d["agents"][0].update(cmd=["/nonexistent/prog"]), "agents[0]: give exactly"),
        (lambda d: d["market"].update(r_min=9.0, r_max=1.0), "r_min"),
        (lambda d: d["run"].update(policy="fifo"), "run.policy"),
        (lambda d: d["agents"][1].update(name="scientist"), "unique"),
        (lambda d: d.update(agents=[]), "agents"),
    ],
)
def test_invalid_configs_name_the_key(mutate, expected) -> None:  # type: ignore[no-untyped-def]
    data = _default()
    mutate(data)
    with pytest.raises(ConfigError) as info:
        validate(data)
    msg = str(info.value)
    assert expected in msg
    assert "\n" not in msg


def test_missing_command_is_refused(tmp_path: Path) -> None:
    f = tmp_path / "x.toml"
    f.write_text('[[agents]]\nname = "x"\ncmd = ["/nonexistent/prog", "-v"]\nfunds = 1.0\n')
    with pytest.raises(ConfigError, match=r"agents\[0\]\.cmd: program '/nonexistent/prog'"):
        load(f)


def test_unreadable_and_malformed_files(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="cannot read"):
        load(tmp_path / "absent.toml")
    bad = tmp_path / "bad.toml"
    bad.write_text("[run\n")
    with pytest.raises(ConfigError, match="not valid TOML"):
        load(bad)


def test_with_run_revalidates() -> None:
    cfg = default_config().with_run(policy="cfs", duration_s=5.0)
    assert cfg.run.policy == "cfs" and cfg.run.duration_s == 5.0
    with pytest.raises(ConfigError):
        default_config().with_run(duration_s=-1.0)
