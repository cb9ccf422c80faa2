"""builtin_argv: the command lines the supervisor hands to the membrane."""

from __future__ import annotations

import subprocess
import sys

import pytest

from maxwell.agents import AgentOptionError, builtin_argv
from maxwell.agents.builtin import OPTIONS


def test_argv_shape() -> None:
    argv = builtin_argv("scientist", {"workers": 2, "margin": 0.5})
    assert argv == [sys.executable, "-m", "maxwell.agents.scientist",
                    "--workers", "2", "--margin", "0.5"]
    assert builtin_argv("miner", {"claim_hashes": False, "bid": 3})[-3:] == [
        "--no-claim-hashes", "--bid", "3.0"]


@pytest.mark.parametrize(("kind", "options", "needle"), [
    ("scientist", {"wokers": 2}, "'wokers'"),
    ("miner", {"margin": 0.5}, "'margin'"),
    ("scientist", {"workers": 1.5}, "integer"),
    ("scientist", {"workers": True}, "number"),
    ("scientist", {"workers": 0}, "[1, 64]"),
    ("miner", {"bid": float("nan")}, "'bid'"),
    ("miner", {"claim_hashes": 1}, "true or false"),
    ("wizard", {}, "unknown builtin"),
])
def test_bad_options_name_the_key(kind: str, options: dict[str, object], needle: str) -> None:
    with pytest.raises(AgentOptionError) as err:
        builtin_argv(kind, options)
    assert needle in str(err.value)


@pytest.mark.parametrize("kind", sorted(OPTIONS))
def test_every_option_parses_in_the_agent(kind: str) -> None:
    options = {k: o.default for k, o in OPTIONS[kind].items()}
    argv = builtin_argv(kind, options)
    # every option builtin_argv can emit is a flag of the agent's own parser
    proc = subprocess.run([*argv, "--help"], capture_output=True, text=True, timeout=60)
    assert proc.returncode == 0
    for key in options:
        assert "--" + key.replace("_", "-") in proc.stdout
