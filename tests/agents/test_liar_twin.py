"""Fraud never pays: a liar beside its honest twin, 45 s on equal terms, ends poorer.

Both run tests/agents/liar_agent.py in twin mode — same program, same funds, same bid
(1.0 for one slot each on two slots, so neither displaces the other), same per-block
commitments; the liar multiplies every block count by 1.5, below the Brun–Titchmarsh
ceiling, so only an audit can catch it. The setpoint is out of reach so the thermal
loop never rations the two. Shipped audit and fine defaults.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from maxwell.record import RunReader

LIAR = Path(__file__).with_name("liar_agent.py")
CONFIG = """
[run]
policy = "maxwell"
seed = 3

[physics]
setpoint_c = 140.0

[market]
slots = 2

[[agents]]
name = "{a}"
cmd = ["{py}", "{liar}", "twin", "{fa}", "4194304"]
funds = 20.0
default_bid = 1.0
default_slots = 1

[[agents]]
name = "{b}"
cmd = ["{py}", "{liar}", "twin", "{fb}", "4194304"]
funds = 20.0
default_bid = 1.0
default_slots = 1
"""


@pytest.mark.slow
def test_the_liar_ends_poorer_than_its_honest_twin(tmp_path: Path) -> None:
    cfg = tmp_path / "twins.toml"
    cfg.write_text(CONFIG.format(a="liar", b="twin", fa="1.5", fb="1.0", py=sys.executable,
                                 liar=LIAR))
    out = tmp_path / "run"
    p = subprocess.run([sys.executable, "-m", "maxwell.cli", "run", "--config", str(cfg),
                        "--duration", "45", "--out", str(out)],
                       capture_output=True, text=True, timeout=150)
    assert p.returncode == 0, p.stderr
    with RunReader(out) as r:
        events = list(r.events())
        rows = list(r.agent_ticks())
    last = {row.agent: row for row in rows}
    frauds = [e for e in events if e.kind == "fraud"]
    assert frauds and {e.agent for e in frauds} == {"liar"}
    assert last["twin"].work_units > 0
    assert last["liar"].balance < last["twin"].balance
    fined = sum(row.fine for row in rows if row.agent == "liar")
    # Every catch costs more than everything the lie could have gained.
    assert fined > sum(row.reward for row in rows if row.agent == "liar") * 0.5
