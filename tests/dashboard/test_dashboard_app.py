"""The dashboard driven headless with Pilot over recorded runs.

Every panel is compared, at chosen ticks, with what `RunReader` returns for that
tick. The recorded runs are a real `maxwell demo` (the `demo_runs` session
fixture) and the fixed fixture run written with the real Recorder.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import pytest
from dashboard_fixture import _start, region_text, tick_rows, write_run
from textual.pilot import Pilot
from textual.widgets import Sparkline

from maxwell.dashboard import make_app
from maxwell.dashboard.app import DashboardApp, HelpScreen
from maxwell.dashboard.widgets import AgentsTable
from maxwell.record import AgentTickRow, Recorder, RunReader

SIZE = (160, 48)
pytestmark = pytest.mark.timeout(120)


@pytest.fixture(params=["demo-maxwell", "demo-cfs", "fixture"])
def recorded(request: pytest.FixtureRequest, tmp_path: Path) -> Path:
    """A finished run database: the fixture and the demo's maxwell run hold an apoptosis;
    the demo's cfs run (shadow bills, nobody killed) holds none."""
    if request.param == "fixture":
        return write_run(tmp_path / "run.db")
    demo = request.getfixturevalue("demo_runs")  # a real `maxwell demo` (tests/conftest.py)
    return Path(demo) / str(request.param).removeprefix("demo-") / "run.db"


def drive(
    app: DashboardApp,
    script: Callable[[Pilot[None]], Awaitable[None]],
    size: tuple[int, int] = SIZE,
) -> None:
    async def main() -> None:
        async with app.run_test(size=size) as pilot:
            await pilot.pause()
            await script(pilot)

    asyncio.run(main())


def expected_agents(reader: RunReader, t_s: float) -> dict[str, AgentTickRow]:
    """Each agent's last row at or before t_s, straight from the database."""
    rows: dict[str, AgentTickRow] = {}
    for r in reader.agent_ticks():
        if r.t_s <= t_s:
            rows[r.agent] = r
    return rows


def apoptosis_tick(reader: RunReader) -> int | None:
    """The index of the first tick at or after the first apoptosis (None: nobody died)."""
    deaths = [e for e in reader.events() if e.kind == "apoptosis"]
    if not deaths:
        assert reader.run().policy == "cfs", "the enforced run recorded no apoptosis"
        return None
    times = [t.t_s for t in reader.ticks()]
    return next(i for i, t in enumerate(times) if t >= deaths[0].t_s)


async def check_tick(pilot: Pilot[Any], reader: RunReader, index: int) -> None:
    app = pilot.app
    assert isinstance(app, DashboardApp)
    app.show_tick(index)
    await pilot.pause()
    ticks = reader.ticks()
    tick = ticks[index]
    run = reader.run()

    status = region_text(app, "#status")
    assert f"t {tick.t_s:.1f}/" in status and f"tick {index + 1}/{len(ticks)}" in status

    thermal = region_text(app, "#thermal")
    assert f"T {tick.temp_c:.1f} °C" in thermal
    assert ("measured" if run.temp_measured else "modelled") in thermal
    assert f"setpoint {run.setpoint_c:.1f} °C" in thermal
    assert f"P {tick.power_w:.1f} W" in thermal
    assert app.query_one("#temp-spark", Sparkline).data[-1] == tick.temp_c  # type: ignore[index]

    market = region_text(app, "#market")
    assert f"reserve {tick.price:.4f}" in market
    assert app.query_one("#price-spark", Sparkline).data[-1] == tick.price  # type: ignore[index]

    agents = expected_agents(reader, tick.t_s)
    table = app.query_one(AgentsTable)
    table_text = region_text(app, "#agents")
    wallets = region_text(app, "#wallets")
    died = {e.agent for e in reader.events() if e.kind == "apoptosis" and e.t_s <= tick.t_s}
    for name, row in agents.items():
        cells = [str(c) for c in table.get_row(name)]
        assert cells[0] == name
        assert cells[2] == f"{row.balance:.2f}" and cells[3] == f"{row.bid:.3f}"
        assert cells[4] == str(row.slots) and cells[7] == str(row.work_units)
        state = "DEAD" if name in died else row.state
        assert state in cells[1]
        line = next(ln for ln in table_text.splitlines() if f" {name} " in ln)
        assert f"{row.balance:.2f}" in line and state in line
        wline = next(ln for ln in wallets.splitlines() if ln.strip("│ ").startswith(name))
        assert f"{row.balance:.2f}" in wline
    transfers = [x for x in reader.transfers() if x.t_s <= tick.t_s]
    last_transfer = transfers[-1]
    assert f"{last_transfer.src}→{last_transfer.dst} {last_transfer.amount:.3f}" in wallets
    # As many of the last transfers as fit (up to 12) are listed.
    fits = app.query_one("#wallets").content_region.height - len(agents) - 1
    shown = [ln for ln in wallets.splitlines() if "→" in ln]
    assert len(shown) == min(12, len(transfers), fits)

    events = region_text(app, "#events")
    last_event = [e for e in reader.events() if e.t_s <= tick.t_s][-1]
    kind = "APOPTOSIS" if last_event.kind == "apoptosis" else last_event.kind
    assert f"{last_event.t_s:6.1f} " in events and kind in events

    assert app.selected is not None
    detail = region_text(app, "#detail")
    sel = agents[app.selected]
    assert app.selected in detail and f"balance {sel.balance:.2f} cr" in detail


def test_every_panel_shows_the_database_values(recorded: Path) -> None:
    reader = RunReader(recorded)
    n = len(reader.ticks())
    death = apoptosis_tick(reader)
    chosen = sorted({0, n // 3, n - 1} | ({death} if death is not None else set()))

    async def script(pilot: Pilot[None]) -> None:
        for i in chosen:
            await check_tick(pilot, reader, i)
        await pilot.press("down")  # another agent's detail, same checks
        for i in chosen:
            await check_tick(pilot, reader, i)

    drive(make_app(recorded), script)
    reader.close()


def test_apoptosis_is_unmissable(recorded: Path) -> None:
    reader = RunReader(recorded)
    k = apoptosis_tick(reader)
    if k is None:  # the shadow run: no banner, nobody dead

        last = expected_agents(reader, reader.ticks()[-1].t_s)
        exited = any(r.state == "dead" for r in last.values())  # exited by itself, not killed

        async def nobody_died(pilot: Pilot[None]) -> None:
            assert not pilot.app.query_one("#banner").display
            assert ("DEAD" in region_text(pilot.app, "#agents")) == exited

        drive(make_app(recorded), nobody_died)
        reader.close()
        return
    victim = next(e.agent for e in reader.events() if e.kind == "apoptosis")
    assert victim is not None

    async def script(pilot: Pilot[None]) -> None:
        app = pilot.app
        assert isinstance(app, DashboardApp)
        if k > 0:
            app.show_tick(k - 1)
            await pilot.pause()
            assert not app.query_one("#banner").display
        app.show_tick(k)
        app.selected = victim
        app.refresh_view()
        await pilot.pause()
        banner = app.query_one("#banner")
        assert banner.display and banner.region.height >= 1
        assert f"APOPTOSIS: {victim} killed" in region_text(app, "#banner")
        assert "☠ APOPTOSIS" in region_text(app, "#events")
        assert "DEAD" in str(app.query_one(AgentsTable).get_row(victim)[1])
        assert "DEAD" in region_text(app, "#detail")
        assert app.query_one("#detail").has_class("-dead")

    drive(make_app(recorded), script)
    reader.close()


def test_key_bindings(recorded: Path) -> None:
    reader = RunReader(recorded)
    n = len(reader.ticks())
    names = reader.agents()

    async def script(pilot: Pilot[None]) -> None:
        app = pilot.app
        assert isinstance(app, DashboardApp)
        assert app.snapshot is not None and app.snapshot.index == n - 1
        first = app.selected
        assert first == names[0]
        await pilot.press("down")
        assert app.selected == names[1 % len(names)]
        assert names[1 % len(names)] in region_text(app, "#detail")
        await pilot.press("up")
        assert app.selected == first
        await pilot.press("up")  # wraps to the last agent
        assert app.selected == names[-1]

        await pilot.press("left", "left")
        assert app.snapshot.index == n - 3 and app.paused
        assert "PAUSED" in region_text(app, "#status")
        await pilot.press("right")
        assert app.snapshot.index == n - 2
        await pilot.press("home")
        assert app.snapshot.index == 0
        await pilot.press("end")
        assert app.snapshot.index == n - 1

        await pilot.press("p")
        assert not app.paused and "PAUSED" not in region_text(app, "#status")
        await pilot.press("p")
        assert app.paused and "PAUSED" in region_text(app, "#status")

        await pilot.press("plus")
        assert app.speed == 2.0 and "×2" in region_text(app, "#status")
        await pilot.press("minus", "minus")
        assert app.speed == 0.5

        await pilot.press("question_mark")
        assert isinstance(app.screen, HelpScreen)
        await pilot.press("x")
        assert not isinstance(app.screen, HelpScreen)

        await pilot.press("q")
        await pilot.pause()
        assert not app.is_running

    drive(make_app(recorded), script)
    reader.close()


def test_replay_plays_forward_from_the_first_tick(tmp_path: Path) -> None:
    db = write_run(tmp_path / "run.db", n_ticks=5)

    async def script(pilot: Pilot[None]) -> None:
        app = pilot.app
        assert isinstance(app, DashboardApp)
        assert app.snapshot is not None and app.snapshot.index == 0
        for expect in (1, 2, 3, 4, 4):  # stops at the end
            app._advance()  # what the replay timer calls each tick_s / speed
            assert app.snapshot.index == expect
        await pilot.press("p")  # pause stops the replay
        app.show_tick(1)
        app._advance()
        assert app.snapshot.index == 1

    drive(make_app(db, speed=1e-3), script)  # a timer that never fires during the test


def test_follow_shows_each_new_tick_and_pause_freezes_it(tmp_path: Path) -> None:
    async def script(pilot: Pilot[None]) -> None:
        app = pilot.app
        assert isinstance(app, DashboardApp)
        assert app.feed is None and "waiting for a run" in region_text(app, "#status")
        rec = Recorder(tmp_path / "run.db")
        _start(rec, 1.0, 10)
        app._poll_open()
        assert app.feed is not None
        await pilot.pause()
        assert "waiting for the first tick" in region_text(app, "#status")
        for i in range(1, 5):
            rec.write_tick(*tick_rows(i, 1.0))
            app.poll()
            await pilot.pause()
            assert f"tick {i}/{i}" in region_text(app, "#status")
            assert "LIVE" in region_text(app, "#status")
        await pilot.press("p")
        rec.write_tick(*tick_rows(5, 1.0))
        app.poll()
        await pilot.pause()
        assert "tick 4/4" in region_text(app, "#status")  # frozen while paused
        await pilot.press("p")
        await pilot.pause()
        assert "tick 5/5" in region_text(app, "#status")  # back to the newest tick
        rec.finish("2026-01-01T00:00:05+00:00")
        app.poll()
        await pilot.pause()
        assert "ENDED" in region_text(app, "#status")
        rec.close()

    drive(make_app(tmp_path, follow=True, poll_s=3600), script)


def test_follow_exits_after_the_in_process_run_is_done(tmp_path: Path) -> None:
    """`done` (the writer thread has finished) makes a following app show the last tick
    and exit on its own: what `run_with_dashboard` relies on."""
    db = write_run(tmp_path / "run.db", n_ticks=3)
    calls = [0]

    def done() -> bool:
        calls[0] += 1
        return calls[0] >= 3  # the writer finishes after the app has polled twice

    app = make_app(db, follow=True, poll_s=0.01, done=done, hold_s=0.0)

    async def main() -> None:
        await asyncio.wait_for(app.run_async(headless=True, size=(80, 24)), timeout=60)

    asyncio.run(main())
    assert calls[0] >= 3 and app.return_code == 0
    assert app.snapshot is not None and app.snapshot.is_last and app.snapshot.index == 2
