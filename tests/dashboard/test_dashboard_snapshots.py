"""The dashboard's layout at 80×24 and 160×48, guarded by SVG snapshots.

These tests need a screen that is the same on every run, so they read a small
database written with the real Recorder from fixed values (dashboard_fixture.py),
not a live demo. Regenerate with `pytest tests/dashboard --snapshot-update` after
an intended layout change, and look at the SVGs before committing them.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from dashboard_fixture import DEATH_TICK, write_run
from textual.pilot import Pilot

from maxwell.dashboard import make_app
from maxwell.dashboard.app import DashboardApp

SnapCompare = Callable[..., bool]


@pytest.fixture()
def fixture_db(tmp_path: Path) -> Path:
    return write_run(tmp_path / "run.db")


def test_last_tick_80x24(snap_compare: SnapCompare, fixture_db: Path) -> None:
    """The end of the fixture run in the smallest supported terminal."""
    assert snap_compare(make_app(fixture_db), terminal_size=(80, 24))


def test_last_tick_160x48(snap_compare: SnapCompare, fixture_db: Path) -> None:
    """The end of the fixture run in a large terminal."""
    assert snap_compare(make_app(fixture_db), terminal_size=(160, 48))


def test_apoptosis_tick_with_the_victim_selected_160x48(
    snap_compare: SnapCompare, fixture_db: Path
) -> None:
    """The tick the miner dies, miner selected: banner, red event, DEAD state and detail."""

    async def at_death(pilot: Pilot[Any]) -> None:
        app = pilot.app
        assert isinstance(app, DashboardApp)
        app.show_tick(DEATH_TICK - 1)
        await pilot.press("down")

    assert snap_compare(make_app(fixture_db), terminal_size=(160, 48), run_before=at_death)


def test_help_80x24(snap_compare: SnapCompare, fixture_db: Path) -> None:
    """The help screen over the dashboard."""
    assert snap_compare(make_app(fixture_db), terminal_size=(80, 24), press=["question_mark"])
