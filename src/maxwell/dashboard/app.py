"""The Textual app: follows a live run's database or replays a finished one.

The app owns one `RunFeed` (the only reader of the database) and the display
position (which tick, which agent, paused or not); on every change it builds one
`Snapshot` and hands it to the panels. Following a live run polls the database
about twice per tick (WAL: the reader never blocks the writer, so the UI cannot
delay a tick). Replay steps through the recorded ticks at a chosen speed.
Touches the run database (read-only) and the terminal.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import ClassVar, TypeVar

from textual.app import App, ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal
from textual.screen import ModalScreen
from textual.timer import Timer
from textual.widget import Widget
from textual.widgets import Footer, Static

from maxwell.dashboard.model import RunFeed, Snapshot
from maxwell.dashboard.widgets import (
    AgentsTable,
    ApoptosisBanner,
    DetailPanel,
    EventsPanel,
    MarketPanel,
    StatusBar,
    ThermalPanel,
    WalletsPanel,
)

__all__ = ["DashboardApp", "HelpScreen"]

W = TypeVar("W", bound=Widget)

HELP = """\
[b]Maxwell dashboard[/b]

  q          quit
  p          pause / resume (live: freeze; replay: stop / play)
  ?          this help
  ↑ ↓        pick an agent for the detail panel
  ← →        one tick back / forward (pauses)
  home end   first / last tick (end resumes following)
  + -        replay speed ×2 / ÷2

Thermal: die temperature vs setpoint, power (measured or modelled).
Market: reserve price set by the PID on temperature, cr per core-s.
Agents: this tick's bid, slots won, CPU, bills, wallet.
Wallets: balances and trend; the ledger's last transfers.
Events: pauses, strikes, fraud; apoptosis (bankruptcy) in red.

[dim]press any key to close[/dim]"""


class HelpScreen(ModalScreen[None]):
    """The key bindings and what each panel shows."""

    DEFAULT_CSS = """
    HelpScreen { align: center middle; }
    HelpScreen > Static { width: auto; max-width: 90%; height: auto; max-height: 90%;
        border: round $accent; background: $surface; padding: 0 1; }
    """

    def compose(self) -> ComposeResult:
        yield Static(HELP, id="help-text")

    def on_key(self) -> None:
        self.dismiss()


class DashboardApp(App[None]):
    """The dashboard over one run database (a run directory or a run.db path)."""

    TITLE = "Maxwell"
    CSS = """
    Screen { layout: vertical; }
    StatusBar { height: 1; background: $primary-background; }
    ApoptosisBanner { display: none; height: auto; background: red; color: white;
        text-style: bold; padding: 0 1; }
    ApoptosisBanner.-on { display: block; }
    .row { height: 1fr; min-height: 4; }
    .panel { width: 1fr; height: 100%; border: round $secondary; border-title-color: $text;
        border-title-style: bold; padding: 0 1; }
    StatusBar, ApoptosisBanner, .panel Static, WalletsPanel, EventsPanel, DetailPanel {
        text-wrap: nowrap; text-overflow: ellipsis; }
    ThermalPanel Sparkline, MarketPanel Sparkline { height: 1fr; min-height: 1; }
    #temp-spark > .sparkline--max-color { color: red; }
    #temp-spark > .sparkline--min-color { color: yellow; }
    #power-spark > .sparkline--max-color { color: orange; }
    #power-spark > .sparkline--min-color { color: yellow 40%; }
    #price-spark > .sparkline--max-color { color: $accent; }
    AgentsTable { height: auto; max-height: 12; border: round $secondary;
        scrollbar-size-horizontal: 0; }
    DetailPanel { height: 5; border: round $secondary; padding: 0 1; }
    Screen.-short DetailPanel { height: 3; }
    Screen.-short .row { min-height: 6; }
    DetailPanel.-dead { border: heavy red; }
    """

    # Below 36 lines the detail panel shows only its first line.
    VERTICAL_BREAKPOINTS = [(0, "-short"), (36, "-tall")]  # noqa: RUF012 (App declares it so)

    BINDINGS: ClassVar[list[Binding | tuple[str, str] | tuple[str, str, str]]] = [
        Binding("q", "quit", "quit"),
        Binding("p", "toggle_pause", "pause"),
        Binding("question_mark", "help", "help", key_display="?"),
        Binding("up", "select(-1)", "agent", show=False, priority=True),
        Binding("down", "select(1)", "agent", show=False, priority=True),
        Binding("left", "step(-1)", "tick", show=False, priority=True),
        Binding("right", "step(1)", "tick", show=False, priority=True),
        Binding("home", "jump(0)", "first", show=False),
        Binding("end", "jump(-1)", "last", show=False),
        Binding("plus", "speed(2.0)", "faster", show=False),
        Binding("minus", "speed(0.5)", "slower", show=False),
    ]

    def __init__(
        self,
        source: str | Path,
        *,
        follow: bool = False,
        speed: float | None = None,
        poll_s: float | None = None,
        done: Callable[[], bool] | None = None,
        hold_s: float = 3.0,
    ) -> None:
        """follow: track the newest tick as the run writes it; speed: replay from the
        first tick at this multiple of real time (None: show the last tick, paused).
        poll_s overrides the polling period (default half a tick). done: when following
        an in-process run, tells that the writer has finished; the app then shows the
        last tick for hold_s seconds and exits (unless paused)."""
        super().__init__()
        self.source = Path(source)
        self.follow = follow
        self.speed = speed if speed is not None else 1.0
        self.playing = speed is not None and not follow
        self.poll_s = poll_s
        self.done = done
        self.hold_s = hold_s
        self._exit_scheduled = False
        self.feed: RunFeed | None = None
        self.index: int | None = None  # None: the newest tick
        self.paused = False
        self.selected: str | None = None
        self.snapshot: Snapshot | None = None
        self._poll_timer: Timer | None = None
        self._play_timer: Timer | None = None
        # Opened here, not in on_mount, so a missing or foreign database is reported to
        # the caller (FileNotFoundError, SchemaError) before the terminal is taken over.
        self._open()

    # ---- layout -------------------------------------------------------------------------

    def compose(self) -> ComposeResult:
        yield StatusBar(id="status")
        yield ApoptosisBanner(id="banner")
        with Horizontal(classes="row"):
            yield self._titled(ThermalPanel(id="thermal", classes="panel"), "thermal")
            yield self._titled(MarketPanel(id="market", classes="panel"), "market")
        yield self._titled(AgentsTable(id="agents"), "agents")
        with Horizontal(classes="row"):
            yield self._titled(WalletsPanel(id="wallets", classes="panel"), "wallets")
            yield self._titled(EventsPanel(id="events", classes="panel"), "events")
        yield self._titled(DetailPanel(id="detail"), "agent detail")
        yield Footer()

    @staticmethod
    def _titled(widget: W, title: str) -> W:
        widget.border_title = title
        return widget

    def on_mount(self) -> None:
        if self.feed is not None:
            self._start_timers()
        else:
            # Following a run that is still starting: retry until its database holds a run.
            self._poll_timer = self.set_interval(self.poll_s or 0.25, self._poll_open)
        self.refresh_view()

    def on_resize(self) -> None:
        # Wallets and events fit their line count to the panel height.
        self.call_after_refresh(self.refresh_view)

    # ---- data ---------------------------------------------------------------------------

    def _open(self) -> bool:
        if self.follow:
            self.feed = RunFeed.try_open(self.source)
        else:
            self.feed = RunFeed.open(self.source)
        if self.feed is not None and self.playing:
            self.index = 0
        return self.feed is not None

    def _poll_open(self) -> None:
        if self.done is not None and self.done() and not self._exit_scheduled:
            # The run ended without ever writing a run (it failed early): nothing to show.
            self._exit_scheduled = True
            self.set_timer(max(self.hold_s, 0.01), self.exit)
        if self._open():
            if self._poll_timer is not None:
                self._poll_timer.stop()
            self._start_timers()
            self.refresh_view()

    def _start_timers(self) -> None:
        assert self.feed is not None
        tick_s = self.feed.run.tick_s if self.feed.run.tick_s > 0 else 1.0
        if self.follow:
            self._poll_timer = self.set_interval(self.poll_s or tick_s / 2, self.poll)
        self._restart_play_timer()

    def _restart_play_timer(self) -> None:
        if self._play_timer is not None:
            self._play_timer.stop()
            self._play_timer = None
        if self.playing and self.feed is not None:
            tick_s = self.feed.run.tick_s if self.feed.run.tick_s > 0 else 1.0
            self._play_timer = self.set_interval(tick_s / self.speed, self._advance)

    def poll(self) -> None:
        """Read what the writer added; redraw when something is new."""
        finished = self.done is not None and self.done()  # before reading: no tick is missed
        if self.feed is not None and self.feed.poll() and not self.paused:
            self.refresh_view()
        if finished and not self._exit_scheduled:
            self._exit_scheduled = True
            # A timer, not call_later: a zero hold must still let this tick be drawn first.
            self.set_timer(max(self.hold_s, 0.01), self._close_if_running)

    def _close_if_running(self) -> None:
        if self.paused:
            self._exit_scheduled = False  # checked again at the next poll
            return
        self.exit()

    def _advance(self) -> None:
        if self.feed is None or self.paused:
            return
        last = self.feed.n_ticks - 1
        current = self._current_index()
        if current is None or current >= last:
            return
        self.index = current + 1
        self.refresh_view()

    def _current_index(self) -> int | None:
        if self.feed is None or self.feed.n_ticks == 0:
            return None
        last = self.feed.n_ticks - 1
        return last if self.index is None else min(self.index, last)

    # ---- rendering ----------------------------------------------------------------------

    def refresh_view(self) -> None:
        """Build the snapshot for the current position and hand it to every panel."""
        snap = None if self.feed is None else self.feed.snapshot(self._current_index())
        self.snapshot = snap
        if snap is not None and snap.agents and (
            self.selected is None or snap.agent(self.selected) is None
        ):
            self.selected = snap.agents[0].name
        mode = "FOLLOW" if self.follow else f"REPLAY ×{self.speed:g}"
        waiting = f"waiting for a run in {self.source}…" if self.feed is None else ""
        self.query_one(StatusBar).show(snap, mode=mode, paused=self.paused, waiting=waiting)
        self.query_one(ApoptosisBanner).show(snap)
        if snap is None:
            return
        self.query_one(ThermalPanel).show(snap)
        self.query_one(MarketPanel).show(snap)
        self.query_one(AgentsTable).show(snap, self.selected)
        self.query_one(WalletsPanel).show(snap, self.selected)
        self.query_one(EventsPanel).show(snap)
        detail = self.query_one(DetailPanel)
        detail.show(snap, self.selected)
        a = snap.agent(self.selected) if self.selected else None
        detail.set_class(a is not None and a.state == "dead", "-dead")

    # ---- actions ------------------------------------------------------------------------

    def action_toggle_pause(self) -> None:
        self.paused = not self.paused
        if not self.paused and self.follow:
            self.index = None  # resume following the newest tick
        if not self.paused and not self.follow and not self.playing:
            self.playing = True
            self._restart_play_timer()
        self.refresh_view()

    def action_help(self) -> None:
        self.push_screen(HelpScreen())

    def action_select(self, delta: int) -> None:
        snap = self.snapshot
        if snap is None or not snap.agents:
            return
        names = [a.name for a in snap.agents]
        k = names.index(self.selected) if self.selected in names else 0
        self.selected = names[(k + delta) % len(names)]
        self.refresh_view()

    def action_step(self, delta: int) -> None:
        current = self._current_index()
        if current is None or self.feed is None:
            return
        self.paused = True
        self.index = max(0, min(self.feed.n_ticks - 1, current + delta))
        self.refresh_view()

    def action_jump(self, where: int) -> None:
        if self.feed is None or self.feed.n_ticks == 0:
            return
        if where < 0:
            self.index = None if self.follow else self.feed.n_ticks - 1
            if self.follow:
                self.paused = False
        else:
            self.index = 0
            self.paused = True
        self.refresh_view()

    def action_speed(self, factor: float) -> None:
        self.speed = max(0.125, min(64.0, self.speed * factor))
        self._restart_play_timer()
        self.refresh_view()

    def show_tick(self, index: int) -> None:
        """Show tick `index` (0-based) and hold it there (used by tests and scripts)."""
        self.paused = True
        self.index = index
        self.refresh_view()
