"""Shared fixtures: one real, short demo (both policies) recorded once per test session."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

# Seconds per policy for the shared demo: long enough for the bankrupt agent to die
# and be recorded, short enough to keep `make test` within its budget.
DEMO_S = float(os.environ.get("MAXWELL_TEST_DEMO_S", "20"))


@pytest.fixture(scope="session")
def demo_runs(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A real `maxwell demo` (cfs then maxwell) with the built-in config.

    Returns a directory `d` holding `d/"cfs"/"run.db"` and `d/"maxwell"/"run.db"`;
    `d/"demo.json"` holds the demo's JSON result.
    """
    import json

    from maxwell.config import default_config
    from maxwell.run._cli import run_demo

    out = tmp_path_factory.mktemp("demo")
    result = run_demo(default_config(), DEMO_S, out)
    (out / "demo.json").write_text(json.dumps(result))
    return out
