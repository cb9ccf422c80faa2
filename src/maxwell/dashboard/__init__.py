"""The dashboard: a live terminal view of the auction, the thermals and the wallets.

A Textual app over one run database: it follows a run while the supervisor
writes it (`follow=True`) or replays a finished one. All data comes from
`maxwell.record.RunReader` through `RunFeed`, which builds frozen `Snapshot`s;
the widgets only render snapshots. Touches the run database (read-only) and the
terminal. Textual is imported lazily by `run_live` / `run_dashboard`, so
importing this package stays cheap.
"""

from __future__ import annotations

import sys
import threading
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, TypeVar

from maxwell.dashboard.model import AgentSnapshot, RunFeed, RunInfo, Snapshot, build_snapshot

if TYPE_CHECKING:
    from maxwell.dashboard.app import DashboardApp

__all__ = [
    "AgentSnapshot",
    "RunFeed",
    "RunInfo",
    "Snapshot",
    "build_snapshot",
    "make_app",
    "run_dashboard",
    "run_live",
    "run_with_dashboard",
    "save_screenshot",
]

T = TypeVar("T")


def make_app(
    source: str | Path, *, follow: bool = False, speed: float | None = None,
    poll_s: float | None = None, done: Callable[[], bool] | None = None, hold_s: float = 3.0,
) -> DashboardApp:
    """The app over a run directory or run.db (not started); see `DashboardApp`."""
    from maxwell.dashboard.app import DashboardApp

    return DashboardApp(source, follow=follow, speed=speed, poll_s=poll_s, done=done,
                        hold_s=hold_s)


def run_dashboard(source: str | Path, *, follow: bool = False, speed: float | None = None) -> None:
    """Run the dashboard in this terminal until the user presses q."""
    make_app(source, follow=follow, speed=speed).run()


def run_live(db_path: str | Path, *, poll_s: float | None = None) -> None:
    """Follow a run that another thread or process is writing, until the user presses q.

    Call it from the main thread (Textual installs signal handlers) while the
    supervisor ticks in a background thread or another process writing `db_path`
    (a run directory or run.db; it may not exist yet: the app waits for it). The
    app only reads the database, so it never delays a tick; quitting the app does
    not stop the run.
    """
    make_app(db_path, follow=True, poll_s=poll_s).run()


def save_screenshot(
    source: str | Path, out: str | Path, *, tick: int | None = None,
    size: tuple[int, int] = (160, 48), select: str | None = None,
) -> Path:
    """Render the dashboard headless at tick `tick` (0-based; default the last recorded)
    with agent `select` picked, and write it as an SVG file; return its path."""
    import asyncio

    from textual.pilot import Pilot

    app = make_app(source)
    out = Path(out)

    async def shoot(pilot: Pilot[object]) -> None:
        await pilot.pause()
        if tick is not None:
            app.show_tick(tick)
            app.paused = False  # a still picture: no "paused" mark
        if select is not None:
            app.selected = select
        app.refresh_view()
        await pilot.pause()
        out.parent.mkdir(parents=True, exist_ok=True)
        out.write_text(app.export_screenshot(simplify=True))
        app.exit()

    asyncio.run(app.run_async(headless=True, size=size, auto_pilot=shoot))
    return out


def run_with_dashboard(
    run: Callable[[], T],
    db_path: str | Path,
    *,
    hold_s: float = 3.0,
    on_interrupt: Callable[[], None] | None = None,
) -> T:
    """Call `run()` (a supervisor run writing `db_path`) in a background thread while the
    dashboard follows its database in this (main) thread; return what `run()` returns.

    The run never waits for the UI: the two share nothing but the database file. When
    the run ends the dashboard shows the final tick for `hold_s` seconds and closes (it
    stays open if the display is paused, until q). Quitting early does not stop the run:
    this waits for it to finish. An exception raised by `run()` is re-raised here.
    `run()` must not install signal handlers (only the main thread may) and should not
    write to the terminal while the dashboard owns it. On Ctrl-C, `on_interrupt()` asks
    the run to stop and this waits for it to clean up before re-raising, so the run's
    own cleanup (killing and reaping its agents) is never cut short.
    """
    result: list[T] = []
    error: list[BaseException] = []

    def target() -> None:
        try:
            result.append(run())
        except BaseException as err:  # re-raised in the caller's thread
            error.append(err)

    worker = threading.Thread(target=target, name="maxwell-run", daemon=True)
    worker.start()
    try:
        make_app(db_path, follow=True, done=lambda: not worker.is_alive(), hold_s=hold_s).run()
        if worker.is_alive():
            print("maxwell: dashboard closed; the run goes on until it ends", file=sys.stderr)
        worker.join()
    except KeyboardInterrupt:
        if on_interrupt is not None:
            on_interrupt()
            worker.join(timeout=60.0)
        raise
    if error:
        raise error[0]
    return result[0]
