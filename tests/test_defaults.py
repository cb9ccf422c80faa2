"""One set of defaults: the TOML schema, the built-in demo file, EconomyParams and
docs/api.md all say what maxwell.defaults says."""

from __future__ import annotations

import re
import tomllib
from pathlib import Path

import pytest

from maxwell import defaults as D
from maxwell.config import Config, default_text
from maxwell.economy import EconomyParams

DOCS = Path(__file__).resolve().parents[1] / "docs"


def _get(data: object, dotted: str) -> object:
    for part in dotted.split("."):
        data = getattr(data, part) if not isinstance(data, dict) else data[part]
    return data


@pytest.mark.parametrize("key", sorted(D.TOML_KEYS))
def test_builtin_toml_states_the_default(key: str) -> None:
    assert _get(tomllib.loads(default_text()), key) == D.TOML_KEYS[key]


@pytest.mark.parametrize("key", sorted(D.TOML_KEYS))
def test_config_schema_default_is_the_default(key: str) -> None:
    cfg = Config.model_validate({"agents": [{"name": "a", "builtin": "miner", "funds": 1}]})
    assert _get(cfg, key) == D.TOML_KEYS[key]


def test_economy_params_defaults() -> None:
    p = EconomyParams(agents=("a",), initial_funds=(1.0,), slots=1)
    assert p.setpoint_c == D.SETPOINT_C
    assert (p.limits.r_min, p.limits.r_max) == (D.R_MIN, D.R_MAX)
    assert p.energy_price_per_j == D.ENERGY_PRICE_PER_J
    assert p.landauer_lambda == D.LANDAUER_LAMBDA
    assert p.bounty_per_unit == D.BOUNTY_PER_UNIT
    assert p.fine_per_fraud == D.FINE_PER_FRAUD
    assert p.bounty_pool == D.BOUNTY_POOL


def test_api_docs_table_states_the_defaults() -> None:
    text = (DOCS / "api.md").read_text()
    want = {
        "setpoint_c": D.SETPOINT_C,
        "energy_price_per_j": D.ENERGY_PRICE_PER_J,
        "landauer_lambda": D.LANDAUER_LAMBDA,
        "bounty_per_unit": D.BOUNTY_PER_UNIT,
        "fine_per_fraud": D.FINE_PER_FRAUD,
        "bounty_pool": D.BOUNTY_POOL,
    }
    for name, value in want.items():
        m = re.search(rf"^\| `{name}` \| ([^|]+) \|", text, re.MULTILINE)
        assert m, f"docs/api.md has no row for {name}"
        assert float(m.group(1).strip()) == value, f"docs/api.md: {name}"
    m = re.search(r"^\| `limits` \| `PIDLimits\(([^,]+), ([^)]+)\)`", text, re.MULTILINE)
    assert m and (float(m.group(1)), float(m.group(2))) == (D.R_MIN, D.R_MAX)


def test_literal_copies_in_the_pure_packages() -> None:
    from maxwell.agents.verify import (
        DEFAULT_BLOCK_AUDIT_PROBABILITY,
        DEFAULT_PROBATION_CLAIMS,
        DEFAULT_RESIEVE_PROBABILITY,
    )
    from maxwell.control.tuning import DEFAULT_PRICE_PER_CORE, DEFAULT_TICK_S

    assert DEFAULT_RESIEVE_PROBABILITY == D.RESIEVE_PROBABILITY
    assert DEFAULT_BLOCK_AUDIT_PROBABILITY == D.BLOCK_AUDIT_PROBABILITY
    assert DEFAULT_PROBATION_CLAIMS == D.PROBATION_CLAIMS
    assert DEFAULT_PRICE_PER_CORE == D.PRICE_PER_CORE
    assert DEFAULT_TICK_S == D.TICK_S
