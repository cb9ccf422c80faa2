"""The dashboard's panels: each renders a `Snapshot` and holds no other state.

Every panel has `show(snapshot, selected)`; the app calls it when the shown tick
or the selected agent changes. Nothing here reads the database, a sensor or a
clock. Touches nothing outside the terminal.
"""

from __future__ import annotations

from collections.abc import Sequence

from rich.text import Text
from textual.app import ComposeResult
from textual.containers import Vertical
from textual.widget import Widget
from textual.widgets import DataTable, Sparkline, Static

from maxwell.dashboard.model import AgentSnapshot, Snapshot, event_detail

__all__ = [
    "AgentsTable",
    "ApoptosisBanner",
    "DetailPanel",
    "EventsPanel",
    "MarketPanel",
    "StatusBar",
    "ThermalPanel",
    "WalletsPanel",
    "fmt_bytes",
    "spark",
]

DEATH_STYLE = "bold white on red"
STATE_STYLE = {"running": "green", "paused": "yellow", "dead": DEATH_STYLE}
EVENT_STYLE = {
    "apoptosis": DEATH_STYLE,
    "fraud": "bold magenta",
    "strike": "magenta",
    "error": "bold red",
    "pause": "yellow",
    "resume": "green",
    "spawn": "cyan",
    "exit": "dim",
}
BLOCKS = "▁▂▃▄▅▆▇█"


def fmt_bytes(n: int) -> str:
    """Bytes with a binary unit: 0 B, 512 B, 4.0 KiB, 1.0 MiB, 2.5 GiB."""
    value = float(n)
    for unit in ("B", "KiB", "MiB", "GiB", "TiB"):
        if abs(value) < 1024 or unit == "TiB":
            return f"{int(value)} {unit}" if unit == "B" else f"{value:.1f} {unit}"
        value /= 1024
    raise AssertionError("unreachable")


def spark(values: Sequence[float], width: int) -> str:
    """The last `width` values as block characters, scaled between their min and max."""
    vals = list(values)[-width:] if width > 0 else []
    if not vals:
        return ""
    lo, hi = min(vals), max(vals)
    if hi <= lo:
        return BLOCKS[0] * len(vals)
    top = len(BLOCKS) - 1
    return "".join(BLOCKS[round((v - lo) / (hi - lo) * top)] for v in vals)


def span(values: Sequence[float], unit: str, fmt: str = ".1f") -> str:
    """The range a sparkline is scaled to (it spans min..max of its data, not 0..max)."""
    if not values:
        return ""
    u = f" {unit}" if unit else ""
    return f"{min(values):{fmt}}–{max(values):{fmt}}{u}"


def short(value: object, width: int = 24) -> str:
    """An event detail value cut to `width` characters (argv lists, balance histories)."""
    text = str(value)
    return text if len(text) <= width else text[: width - 1] + "…"


def measured(is_measured: bool) -> str:
    return "measured" if is_measured else "modelled"


def state_text(agent: AgentSnapshot) -> Text:
    if agent.state == "dead":
        return Text(" ☠ DEAD ", style=DEATH_STYLE)
    return Text(agent.state, style=STATE_STYLE.get(agent.state, ""))


class StatusBar(Static):
    """One line: run, mode, time and a position slider over the recorded ticks."""

    def show(self, snap: Snapshot | None, *, mode: str, paused: bool, waiting: str = "") -> None:
        if snap is None:
            self.update(Text(f" MAXWELL  {waiting or 'waiting for the first tick…'}"))
            return
        run = snap.run
        t = Text(" MAXWELL ", style="bold")
        t.append(f" {run.policy} ", style="reverse")
        state = "LIVE" if run.live else "ENDED"
        t.append(f"  {mode} · {state}")
        t.append(f"  t {snap.t_s:.1f}/{run.duration_s:.0f} s")
        t.append(f"  tick {snap.index + 1}/{snap.n_ticks} ")
        width = max(5, min(30, (self.content_region.width or 80) - len(t.plain) - 12))
        pos = 0 if snap.n_ticks <= 1 else round(snap.index / (snap.n_ticks - 1) * (width - 1))
        t.append("━" * pos, style="cyan")
        t.append("●", style="bold cyan")
        t.append("─" * (width - 1 - pos), style="dim")
        if paused:
            t.append("  ⏸ PAUSED", style="bold yellow")
        self.update(t)


class ApoptosisBanner(Static):
    """Shown (red, full width) as soon as any agent has been killed by bankruptcy."""

    def show(self, snap: Snapshot | None) -> None:
        if snap is None or not snap.apoptoses:
            self.set_class(False, "-on")
            self.update("")
            return
        t = Text()
        for k, e in enumerate(snap.apoptoses):
            if k:
                t.append("   ")
            t.append(f"☠ APOPTOSIS: {e.agent} killed at t={e.t_s:.1f} s")
            agent = snap.agent(e.agent) if e.agent else None
            if agent is not None and agent.death_cause:
                t.append(f" ({agent.death_cause})")
        self.set_class(True, "-on")
        self.update(t)


class ThermalPanel(Vertical):
    """Die temperature against the setpoint and power, with their recent history."""

    def compose(self) -> ComposeResult:
        yield Static(id="temp-text")
        yield Sparkline([], id="temp-spark")
        yield Static(id="power-text")
        yield Sparkline([], id="power-spark")

    def show(self, snap: Snapshot) -> None:
        run = snap.run
        err = snap.temp_c - run.setpoint_c
        t = Text(no_wrap=True, overflow="ellipsis")
        t.append(f"T {snap.temp_c:.1f} °C", style="bold red" if err > 0 else "bold green")
        t.append(f" {measured(run.temp_measured)}", style="italic")
        t.append(f"  setpoint {run.setpoint_c:.1f} °C ({err:+.1f})  ")
        t.append(run.temp_source, style="dim")
        t.append(f"  graph {span(snap.temp_history, '°C')}", style="dim")
        self.query_one("#temp-text", Static).update(t)
        self.query_one("#temp-spark", Sparkline).data = list(snap.temp_history)
        p = Text(no_wrap=True, overflow="ellipsis")
        p.append(f"P {snap.power_w:.1f} W", style="bold")
        p.append(f" {measured(run.energy_measured)}", style="italic")
        p.append(f"  busy {snap.busy_cores:.2f} cores  E {snap.energy_j:.0f} J  ")
        p.append(run.energy_source, style="dim")
        p.append(f"  graph {span(snap.power_history, 'W')}", style="dim")
        self.query_one("#power-text", Static).update(p)
        self.query_one("#power-spark", Sparkline).data = list(snap.power_history)


class MarketPanel(Vertical):
    """The reserve price (PID output) and its history."""

    def compose(self) -> ComposeResult:
        yield Static(id="price-text")
        yield Sparkline([], id="price-spark")
        yield Static(id="pid-text")

    def show(self, snap: Snapshot) -> None:
        t = Text(no_wrap=True, overflow="ellipsis")
        t.append(f"reserve {snap.price:.4f}", style="bold")
        t.append(" cr/core·s")
        slots = sum(a.slots for a in snap.agents)
        t.append(f"  slots won {slots}", style="dim")
        t.append(f"  graph {span(snap.price_history, '', '.3f')}", style="dim")
        self.query_one("#price-text", Static).update(t)
        self.query_one("#price-spark", Sparkline).data = list(snap.price_history)
        self.query_one("#pid-text", Static).update(
            Text(f"PID p {snap.pid_p:+.3f} i {snap.pid_i:+.3f} d {snap.pid_d:+.3f}"
                 f"  λ {snap.run.landauer_lambda:.3g}", style="dim", no_wrap=True,
                 overflow="ellipsis")
        )


# Most telling first: a narrow terminal cuts the columns on the right (the detail panel has them).
COLUMNS = (
    ("agent", "agent"),
    ("state", "state"),
    ("balance", "balance"),
    ("bid", "bid"),
    ("slots", "slots"),
    ("cpu", "cpu"),
    ("share", "share"),
    ("work", "work"),
    ("freed", "freed"),
    ("rent", "rent"),
    ("tax", "tax"),
    ("bounty", "reward"),
    ("fine", "fine"),
)


def agent_cells(a: AgentSnapshot) -> tuple[object, ...]:
    """The table row of one agent, in COLUMNS order."""
    return (
        Text(a.name, style="bold"),
        state_text(a),
        f"{a.balance:.2f}",
        f"{a.bid:.3f}",
        str(a.slots),
        f"{a.cpu_cores:.2f}",
        f"{a.cpu_share * 100:.0f}%",
        str(a.work_units),
        fmt_bytes(a.bytes_freed),
        f"{a.rent:.3f}",
        f"{a.tax:.3f}",
        f"{a.reward:.3f}",
        f"{a.fine:.3f}",
    )


class AgentsTable(DataTable[object]):
    """This tick's bids, allocations, bills and wallets per agent; updated in place."""

    can_focus = False

    def on_mount(self) -> None:
        self.cursor_type = "row"
        self.zebra_stripes = True
        for label, key in COLUMNS:
            self.add_column(label, key=key)

    def show(self, snap: Snapshot, selected: str | None) -> None:
        names = [a.name for a in snap.agents]
        if [k.value for k in self.rows] != names:
            self.clear()
            for a in snap.agents:
                self.add_row(*agent_cells(a), key=a.name)
        else:
            for a in snap.agents:
                for (_, key), cell in zip(COLUMNS, agent_cells(a), strict=True):
                    self.update_cell(a.name, key, cell)
        if selected in names:
            self.move_cursor(row=names.index(selected), animate=False)


class WalletsPanel(Widget):
    """Balances as bars with their trend, then the ledger's last transfers (as many as fit).

    Drawn in `render()`, which knows the panel's current size, so the number of
    transfers follows the height without a second pass."""

    _shown: tuple[Snapshot, str | None] | None = None

    def show(self, snap: Snapshot, selected: str | None) -> None:
        self._shown = (snap, selected)
        self.refresh()

    def render(self) -> Text:
        if self._shown is None:
            return Text()
        snap, selected = self._shown
        width = max(20, self.content_region.width)
        name_w = max([len(a.name) for a in snap.agents] + [5])
        bar_w = max(4, min(24, (width - name_w - 12) // 2))
        top = max([max(a.balance_history, default=0.0) for a in snap.agents] + [1e-9])
        t = Text(no_wrap=True, overflow="ellipsis")
        for a in snap.agents:
            style = DEATH_STYLE if a.state == "dead" else ("bold" if a.name == selected else "")
            t.append(f"{a.name:<{name_w}}", style=style)
            t.append(" ")
            n = round(max(0.0, a.balance) / top * bar_w)
            t.append("█" * n, style="red" if a.state == "dead" else "green")
            t.append("░" * (bar_w - n), style="dim")
            t.append(f" {a.balance:9.2f} ")
            t.append(spark(a.balance_history, bar_w), style="cyan")
            t.append("\n")
        t.append("ledger", style="bold underline")
        lines = max(0, self.content_region.height - len(snap.agents) - 1)
        for x in snap.transfers[max(0, len(snap.transfers) - lines) :] if lines else ():
            t.append("\n")
            t.append(f"{x.t_s:6.1f} ", style="dim")
            t.append(f"{x.src}→{x.dst} ")
            t.append(f"{x.amount:.3f} ", style="bold")
            t.append(x.reason, style="magenta" if x.reason == "fine" else "dim")
        return t


class EventsPanel(Widget):
    """Pauses, strikes, fraud and deaths, newest last (as many as fit); apoptosis in white
    on red."""

    _shown: Snapshot | None = None

    def show(self, snap: Snapshot) -> None:
        self._shown = snap
        self.refresh()

    def render(self) -> Text:
        t = Text(no_wrap=True, overflow="ellipsis")
        snap = self._shown
        if snap is None:
            return t
        lines = max(1, self.content_region.height)
        events = snap.events[-lines:]
        for k, e in enumerate(events):
            if k:
                t.append("\n")
            style = EVENT_STYLE.get(e.kind, "")
            label = "☠ APOPTOSIS" if e.kind == "apoptosis" else e.kind
            t.append(f"{e.t_s:6.1f} ", style="dim")
            t.append(f"{label:<11}", style=style)
            t.append(" ")
            t.append(e.agent or "-", style=style if e.kind == "apoptosis" else "bold")
            d = event_detail(e)
            if d:
                t.append(" " + " ".join(f"{k2}={short(v)}" for k2, v in d.items()), style="dim")
        if not events:
            t.append("no events yet", style="dim")
        return t


class DetailPanel(Static):
    """Everything about the selected agent at this tick."""

    def show(self, snap: Snapshot, selected: str | None) -> None:
        a = snap.agent(selected) if selected else None
        if a is None:
            self.update(Text("↑/↓ pick an agent", style="dim"))
            return
        t = Text(no_wrap=True, overflow="ellipsis")
        t.append(f"{a.name} ", style="bold")
        t.append_text(state_text(a))
        if a.apoptosis_t_s is not None:
            cause = f" ({a.death_cause})" if a.death_cause else ""
            t.append(f" since t={a.apoptosis_t_s:.1f} s{cause}", style="bold red")
        t.append(" ")
        t.append(f" balance {a.balance:.2f} cr ")
        t.append(spark(a.balance_history, 30), style="cyan")
        t.append(f"\nbid {a.bid:.3f} cr/core·s  slots {a.slots}  cpu {a.cpu_cores:.2f} cores "
                 f"({a.cpu_share * 100:.0f}%)  cpu total {a.cpu_s:.1f} s  "
                 f"energy {a.energy_j:.1f} J")
        t.append(f"\nwork {a.work_units} units  freed {fmt_bytes(a.bytes_freed)}  this tick: "
                 f"rent {a.rent:.3f} tax {a.tax:.3f} bounty {a.reward:.3f} fine {a.fine:.3f}")
        self.update(t)
