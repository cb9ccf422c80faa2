"""A deterministic run database written with the real Recorder, for the dashboard's tests.

The values are fixed (no supervisor, no sensors) so snapshot tests of the screen
are reproducible; behavioural tests use a real demo run instead. Run as a script,
it writes the same run in real time, one tick every --tick-s seconds, standing in
for a live `maxwell run` when one is not available:

    python tests/dashboard/dashboard_fixture.py OUT_DIR --live --tick-s 0.5
"""

from __future__ import annotations

import argparse
import io
import json
import math
import sys
import time
from pathlib import Path
from typing import Any

from rich.console import Console
from textual.app import App

from maxwell.record import AgentTickRow, EventRow, Recorder, TickRow, TransferRow

AGENTS = ("scientist", "miner", "idler")
N_TICKS = 30
DEATH_TICK = 18  # the miner's wallet reaches zero here


def _start(rec: Recorder, tick_s: float, n_ticks: int) -> None:
    rec.start_run(
        started_at="2026-01-01T00:00:00+00:00",
        policy="maxwell",
        duration_s=n_ticks * tick_s,
        tick_s=tick_s,
        config={"run": {"policy": "maxwell"}},
        host={"cores": 2},
        energy_source="model:desktop",
        energy_measured=False,
        temp_source="model:desktop",
        temp_measured=False,
        memtrace_source="rss-sampling",
        memtrace_exact=False,
        membrane_backend="cgroup-v2",
        gains={"kp": 0.05, "ki": 0.01, "kd": 0.0},
        setpoint_c=65.0,
        landauer_lambda=1e12,
    )


def tick_rows(
    i: int, tick_s: float
) -> tuple[TickRow, list[AgentTickRow], list[EventRow], list[TransferRow]]:
    """Everything recorded at tick i (1-based), a pure function of i."""
    t = i * tick_s
    temp = 45.0 + 22.0 * (1 - math.exp(-i / 8)) + 0.5 * math.sin(i)
    power = 20.0 + 30.0 * (1.0 if i < DEATH_TICK else 0.6) + math.cos(i)
    price = round(0.2 + 0.02 * i, 4)
    tick = TickRow(t, round(temp, 3), round(power, 3), round(power * t, 3), 10.0 * t, price,
                   1.8 if i < DEATH_TICK else 1.1, 0.01 * i, 0.005 * i, 0.0)
    dead = i >= DEATH_TICK
    miner_balance = max(0.0, round(40.0 - 40.0 * i / DEATH_TICK, 3))
    agents = [
        AgentTickRow(t, "scientist", "running", round(0.9 * t, 3), 1, 1.2, round(price * 0.9, 4),
                     0.001 * i, 0.5, 0.0, round(50.0 + 0.3 * i, 3), 4096 * i, 10 * i, 9.0 * t),
        AgentTickRow(t, "miner", "dead" if dead else "running",
                     round(0.8 * min(t, DEATH_TICK * tick_s), 3), 0 if dead else 1,
                     0.0 if dead else 0.9, 0.0 if dead else round(price * 0.8, 4),
                     0.0 if dead else 0.4, 0.0, 0.0 if i != 7 else 1.0, miner_balance,
                     1 << 20, 0, 8.0 * min(t, DEATH_TICK * tick_s)),
        AgentTickRow(t, "idler", "paused" if i % 5 == 0 else "running", round(0.05 * t, 3), 0,
                     0.1, 0.0, 0.0, 0.0, 0.0, 20.0, 0, 0, 0.5 * t),
    ]
    events: list[EventRow] = []
    transfers = [
        TransferRow(t, "scientist", "treasury", round(price * 0.9, 4), "rent"),
        TransferRow(t, "bounty_pool", "scientist", 0.5, "bounty"),
    ]
    if i == 1:
        events += [EventRow(0.0, "spawn", a, json.dumps({"pid": 100 + k}))
                   for k, a in enumerate(AGENTS)]
        transfers = [TransferRow(0.0, "treasury", a, f, "grant")
                     for a, f in zip(AGENTS, (50.0, 40.0, 20.0), strict=True)] + transfers
    if not dead:
        transfers.append(TransferRow(t, "miner", "treasury", round(price * 0.8, 4), "rent"))
        transfers.append(TransferRow(t, "miner", "tax_authority", 0.4, "landauer_tax"))
    if i == 7:
        events.append(EventRow(t, "fraud", "miner", json.dumps({"claimed": 5, "reason": "sieve"})))
        transfers.append(TransferRow(t, "miner", "bounty_pool", 1.0, "fine"))
    if i % 5 == 0:
        events.append(EventRow(t, "pause", "idler", json.dumps({"reason": "outbid"})))
    if i % 5 == 1 and i > 1:
        events.append(EventRow(t, "resume", "idler", "{}"))
    if i == DEATH_TICK:
        events.append(EventRow(t, "apoptosis", "miner",
                               json.dumps({"cause": "bankrupt", "balance": 0.0})))
    return tick, agents, events, transfers


def write_run(path: Path, *, n_ticks: int = N_TICKS, tick_s: float = 1.0,
              live: bool = False, finish: bool = True) -> Path:
    """Write the fixed run to path (a run.db); with live=True, one tick every tick_s."""
    rec = Recorder(path)
    _start(rec, tick_s, n_ticks)
    for i in range(1, n_ticks + 1):
        if live:
            time.sleep(tick_s)
        rec.write_tick(*tick_rows(i, tick_s))
    if finish:
        rec.finish("2026-01-01T00:00:30+00:00")
    rec.close()
    return path


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__)
    p.add_argument("out", type=Path, help="run directory to write run.db into")
    p.add_argument("--live", action="store_true", help="write one tick every --tick-s seconds")
    p.add_argument("--tick-s", type=float, default=1.0)
    p.add_argument("--ticks", type=int, default=N_TICKS)
    a = p.parse_args(argv)
    write_run(a.out / "run.db", n_ticks=a.ticks, tick_s=a.tick_s, live=a.live)
    return 0


if __name__ == "__main__":
    sys.exit(main())


def screen_lines(app: App[Any]) -> list[str]:
    """The text on the app's screen, one string per terminal line (as a terminal shows it)."""
    width, height = app.size
    console = Console(width=width, height=height, file=io.StringIO(), force_terminal=True,
                      color_system="truecolor", record=True, legacy_windows=False,
                      safe_box=False)
    console.print(app.screen._compositor.render_update(
        full=True, screen_stack=app._background_screens))
    return console.export_text().splitlines()


def region_text(app: App[Any], selector: str) -> str:
    """The screen text inside one widget's region."""
    region = app.query_one(selector).region
    lines = screen_lines(app)[region.y : region.y + region.height]
    return "\n".join(line[region.x : region.x + region.width] for line in lines)
