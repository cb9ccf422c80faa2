"""What a run database says, reduced to the numbers and series a report needs.

Reads one run through `maxwell.record.RunReader` (read-only, so it is safe on a
live run) and returns plain frozen records: a `RunSummary` (the figures of the
comparison table, with the measured/modelled label of every physical quantity)
and a `RunData` (the same plus numpy series for the plots). No files are
written here.
"""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from maxwell.defaults import PRICE_PER_CORE
from maxwell.record import AgentTickRow, RunReader, event_detail, find_db


def source_label(measured: bool | int, source: str) -> str:
    """'measured (powercap)' or 'modelled (model:desktop)': the words every figure carries."""
    return f"{'measured' if measured else 'modelled'} ({source})"


@dataclass(frozen=True)
class AgentSummary:
    """One agent at the end of a run (cumulative columns: their last value)."""

    name: str
    cpu_s: float
    work_units: int
    energy_j: float  # attributed dynamic energy
    balance: float  # credits after the last recorded tick
    state: str  # last recorded state: running | paused | dead
    death_t_s: float | None  # apoptosis/exit event, else the first tick recorded dead
    death_cause: str | None
    bytes_freed: int
    rent: float  # credits, summed over the run
    tax: float
    reward: float
    fine: float

    @property
    def work_per_j(self) -> float | None:
        return self.work_units / self.energy_j if self.energy_j > 0 else None


@dataclass(frozen=True)
class RunSummary:
    """The comparison-table figures of one run."""

    label: str
    db: Path
    policy: str
    started_at: str
    ended_at: str | None
    duration_s: float  # observed: time of the last tick
    tick_count: int
    work_units: int  # verified, all agents
    energy_j: float  # whole machine (cumulative at the last tick)
    idle_energy_j: float
    energy_source: str
    energy_measured: bool
    temp_source: str
    temp_measured: bool
    memtrace_source: str
    memtrace_exact: bool
    membrane_backend: str
    peak_temp_c: float | None
    mean_price: float | None  # reserve, credits per core-second
    setpoint_c: float
    landauer_lambda: float
    gains: dict[str, Any]
    agents: tuple[AgentSummary, ...]
    jail_level: str | None = None  # bwrap | drop | user | off; None: recorded before the jail
    # Processes outside the run: their CPU, their share of energy_j (never billed, not
    # in work per Joule), and their CPU as a share of the machine's (cpus × duration).
    foreign_cpu_s: float = 0.0
    foreign_energy_j: float = 0.0
    foreign_cpu_share: float = 0.0
    kernel: str = ""
    # The thermal loop and the demo's story, from the ticks (see `thermal_story`).
    story: dict[str, Any] = field(default_factory=dict)

    @property
    def scheduler_name(self) -> str:
        """The baseline scheduler of the kernel the run ran on (see fair_scheduler_name)."""
        return fair_scheduler_name(self.kernel)

    @property
    def run_energy_j(self) -> float:
        """The run's own energy: the machine's, less what foreign processes caused."""
        return max(self.energy_j - self.foreign_energy_j, 0.0)

    @property
    def work_per_j(self) -> float | None:
        e = self.run_energy_j
        return self.work_units / e if e > 0 else None

    @property
    def energy_label(self) -> str:
        return source_label(self.energy_measured, self.energy_source)

    @property
    def temp_label(self) -> str:
        return source_label(self.temp_measured, self.temp_source)

    @property
    def memtrace_label(self) -> str:
        kind = "exact" if self.memtrace_exact else "estimate (lower bound)"
        return f"{kind}, {self.memtrace_source}"

    @property
    def attributed_energy_j(self) -> float:
        return float(sum(a.energy_j for a in self.agents))


@dataclass(frozen=True)
class AgentSeries:
    """Per-tick series of one agent (its own time axis: agents may stop being recorded)."""

    t_s: np.ndarray
    state: tuple[str, ...]
    cpu_s: np.ndarray
    slots: np.ndarray
    balance: np.ndarray
    bytes_freed: np.ndarray
    work_units: np.ndarray
    energy_j: np.ndarray
    tax: np.ndarray


@dataclass(frozen=True)
class RunData:
    """A run's summary and the series the plots draw."""

    summary: RunSummary
    t_s: np.ndarray
    temp_c: np.ndarray
    power_w: np.ndarray
    energy_j: np.ndarray
    idle_energy_j: np.ndarray
    price: np.ndarray
    busy_cores: np.ndarray
    agents: dict[str, AgentSeries] = field(default_factory=dict)
    capacity_cores: np.ndarray = field(default_factory=lambda: np.zeros(0))  # cores for sale


@dataclass(frozen=True)
class Parasite:
    """The agent with the least verified work per attributed Joule, and its energy share."""

    agent: str
    work_per_j: float
    energy_j: float
    share_of_attributed: float  # of the energy attributed to agents
    share_of_total: float  # of the whole machine's energy, idle included


def parasite(summary: RunSummary) -> Parasite | None:
    """Find the parasite by its numbers, never by its name.

    Among agents that were attributed any energy, the one with the least verified
    work per Joule; ties go to the one that took more energy. None if no agent
    used energy.
    """
    used = [a for a in summary.agents if a.energy_j > 0]
    if not used:
        return None
    worst = min(used, key=lambda a: (a.work_units / a.energy_j, -a.energy_j))
    attributed = summary.attributed_energy_j
    return Parasite(
        agent=worst.name,
        work_per_j=worst.work_units / worst.energy_j,
        energy_j=worst.energy_j,
        share_of_attributed=worst.energy_j / attributed if attributed > 0 else 0.0,
        share_of_total=worst.energy_j / summary.energy_j if summary.energy_j > 0 else 0.0,
    )


def _agent_summary(
    name: str, rows: Sequence[AgentTickRow], death: tuple[float, str] | None
) -> AgentSummary:
    last = rows[-1]
    # The death event (apoptosis or exit) is when the process tree was actually
    # killed or gone; the tick that first records the agent dead may precede it
    # (the kill decision) and is only used when no event was recorded.
    dead_t = next((r.t_s for r in rows if r.state == "dead"), None)
    cause: str | None = None if dead_t is None else "died"
    if death is not None:
        dead_t, cause = death
    return AgentSummary(
        name=name,
        cpu_s=float(last.cpu_s),
        work_units=int(last.work_units),
        energy_j=float(last.energy_j),
        balance=float(last.balance),
        state=last.state,
        death_t_s=dead_t,
        death_cause=cause,
        bytes_freed=int(last.bytes_freed),
        rent=float(sum(r.rent for r in rows)),
        tax=float(sum(r.tax for r in rows)),
        reward=float(sum(r.reward for r in rows)),
        fine=float(sum(r.fine for r in rows)),
    )


def _deaths(reader: RunReader) -> dict[str, tuple[float, str]]:
    """First death event per agent: apoptosis (with its cause) or the process exiting."""
    out: dict[str, tuple[float, str]] = {}
    for ev in reader.events():
        if ev.kind not in ("apoptosis", "exit") or ev.agent is None or ev.agent in out:
            continue
        if ev.kind == "exit":
            out[ev.agent] = (float(ev.t_s), "exited")
            continue
        cause = event_detail(ev).get("cause")
        out[ev.agent] = (float(ev.t_s), f"apoptosis: {cause}" if cause else "apoptosis")
    return out


def thermal_story(t_s: np.ndarray, temp_c: np.ndarray, price: np.ndarray,
                  capacity: np.ndarray, setpoint_c: float, r_min: float, r_top: float,
                  agents: Sequence[AgentSummary], series: dict[str, Any]) -> dict[str, Any]:
    """What the run's ticks say about the thermal loop and about the first death: the
    last third's median |T − T_set| and share of ticks with the price at a limit
    (r_min, or r_top where nothing is left for sale), and around the first death the
    peak temperature and reserve before it, the temperature a few ticks after, and
    the reserve when another agent next ran."""
    n = len(t_s)
    out: dict[str, Any] = {}
    if n == 0:
        return out
    third = slice(2 * n // 3, n)
    at_limit = np.isclose(price[third], r_min) | np.isclose(price[third], r_top)
    out["last_third_median_abs_error_c"] = float(np.median(np.abs(temp_c[third] - setpoint_c)))
    out["last_third_price_at_limit_share"] = float(np.mean(at_limit))
    if capacity.size == n:
        out["last_third_median_capacity_cores"] = float(np.median(capacity[third]))
    dead = sorted((a.death_t_s, a.name, a.death_cause) for a in agents
                  if a.death_t_s is not None)
    if not dead:
        return out
    td, who, cause = dead[0]
    i = min(int(np.searchsorted(t_s, td, side="right")), n) or 1
    j = min(i + 3, n - 1)
    out.update(first_death={"agent": who, "t_s": float(td), "cause": cause},
               peak_temp_before_c=float(temp_c[:i].max()),
               peak_reserve_before=float(price[:i].max()),
               temp_at_death_c=float(temp_c[i - 1]), temp_3_ticks_later_c=float(temp_c[j]))
    for name, s in series.items():
        if name == who:
            continue
        ran = [k for k in range(1, len(s.t_s)) if s.t_s[k] > td and s.cpu_s[k] > s.cpu_s[k - 1]]
        if ran:
            k = int(np.searchsorted(t_s, s.t_s[ran[0]]))
            out.setdefault("resumed", []).append(
                {"agent": name, "t_s": float(s.t_s[ran[0]]),
                 "reserve": float(price[min(max(k - 1, 0), n - 1)])})
    return out


def load_run(path: str | Path, label: str | None = None) -> RunData:
    """Read a run directory or run.db into a `RunData` (label defaults to the policy)."""
    db = find_db(path)
    with RunReader(db) as reader:
        run = reader.run()
        ticks = reader.ticks()
        agent_rows = reader.agent_ticks()
        names = reader.agents()
        deaths = _deaths(reader)
        host_facts = reader.host()
        cpus = float(host_facts.get("cpus") or 1)
        config = reader.config()
        kernel = str(host_facts.get("kernel") or "")
    by_agent: dict[str, list[AgentTickRow]] = {n: [] for n in names}
    for r in agent_rows:
        by_agent.setdefault(r.agent, []).append(r)
    agents = tuple(_agent_summary(n, rows, deaths.get(n)) for n, rows in by_agent.items() if rows)
    cols = np.array([tuple(t) for t in ticks], dtype=float).reshape(len(ticks), -1)

    def col(i: int) -> np.ndarray:
        return cols[:, i] if len(ticks) else np.zeros(0)

    t_s, temp_c, power_w, energy_j, idle_j, price, busy = (col(i) for i in range(7))
    try:
        gains = json.loads(run.gains)
    except json.JSONDecodeError:
        gains = {}
    summary = RunSummary(
        label=label or run.policy,
        db=db,
        policy=run.policy,
        started_at=run.started_at,
        ended_at=run.ended_at,
        duration_s=float(t_s[-1]) if len(t_s) else 0.0,
        tick_count=len(ticks),
        work_units=sum(a.work_units for a in agents),
        energy_j=float(energy_j[-1]) if len(energy_j) else 0.0,
        idle_energy_j=float(idle_j[-1]) if len(idle_j) else 0.0,
        energy_source=run.energy_source,
        energy_measured=bool(run.energy_measured),
        temp_source=run.temp_source,
        temp_measured=bool(run.temp_measured),
        memtrace_source=run.memtrace_source,
        memtrace_exact=bool(run.memtrace_exact),
        membrane_backend=run.membrane_backend,
        jail_level=run.jail_level,
        peak_temp_c=float(temp_c.max()) if len(temp_c) else None,
        mean_price=float(price.mean()) if len(price) else None,
        setpoint_c=float(run.setpoint_c),
        landauer_lambda=float(run.landauer_lambda),
        gains=gains if isinstance(gains, dict) else {},
        agents=agents,
        kernel=kernel,
        foreign_cpu_s=float(ticks[-1].foreign_cpu_s) if ticks else 0.0,
        foreign_energy_j=float(ticks[-1].foreign_energy_j) if ticks else 0.0,
        foreign_cpu_share=(float(ticks[-1].foreign_cpu_s) / (cpus * float(t_s[-1]))
                           if ticks and t_s[-1] > 0 else 0.0),
    )
    series = {
        n: AgentSeries(
            t_s=np.array([r.t_s for r in rows], dtype=float),
            state=tuple(r.state for r in rows),
            cpu_s=np.array([r.cpu_s for r in rows], dtype=float),
            slots=np.array([r.slots for r in rows], dtype=float),
            balance=np.array([r.balance for r in rows], dtype=float),
            bytes_freed=np.array([r.bytes_freed for r in rows], dtype=float),
            work_units=np.array([r.work_units for r in rows], dtype=float),
            energy_j=np.array([r.energy_j for r in rows], dtype=float),
            tax=np.array([r.tax for r in rows], dtype=float),
        )
        for n, rows in by_agent.items()
        if rows
    }
    capacity = np.array([t.capacity_cores for t in ticks], dtype=float)
    if run.policy != "cfs":
        market = config.get("market", {}) if isinstance(config, dict) else {}
        slots = float(market.get("slots") or cpus)
        r_min = float(market.get("r_min", 0.0))
        r_top = min(float(market.get("r_max", r_min)), r_min + slots * PRICE_PER_CORE)
        summary = dataclasses.replace(summary, story=thermal_story(
            t_s, temp_c, price, capacity, float(run.setpoint_c), r_min, r_top,
            agents, series))
    return RunData(summary, t_s, temp_c, power_w, energy_j, idle_j, price, busy, series,
                   capacity)


def load_runs(paths: Sequence[str | Path]) -> list[RunData]:
    """Load several runs with labels that tell them apart (policy, else directory name)."""
    dbs = [find_db(p) for p in paths]
    with_policy = []
    for db in dbs:
        with RunReader(db) as r:
            with_policy.append(r.run().policy)
    labels = list(with_policy)
    if len(set(labels)) < len(labels):
        labels = [db.parent.name or str(db) for db in dbs]
    if len(set(labels)) < len(labels):
        labels = [f"{pol} #{i + 1}" for i, pol in enumerate(with_policy)]
    return [load_run(db, lab) for db, lab in zip(dbs, labels, strict=True)]


def run_json(path: str | Path) -> dict[str, Any]:
    """One run as the RUN object of `maxwell run --json` / `maxwell demo --json`.

    The same figures as the report (one computation, `load_run`), plus the
    supervisor's own overhead from the run's host facts.
    """
    s = load_run(path).summary
    with RunReader(s.db) as reader:
        host = reader.host()
    return {
        "policy": s.policy,
        "duration_s": s.duration_s,
        "work_units": s.work_units,
        "energy_j": s.energy_j,
        "idle_energy_j": s.idle_energy_j,
        "foreign_energy_j": s.foreign_energy_j,
        "foreign_cpu_s": s.foreign_cpu_s,
        "foreign_cpu_share": s.foreign_cpu_share,
        "story": s.story,
        "scheduler": s.scheduler_name if s.policy == "cfs" else "Maxwell market",
        "energy_source": "measured" if s.energy_measured else "modelled",
        "energy_source_name": s.energy_source,
        "temp_source": "measured" if s.temp_measured else "modelled",
        "temp_source_name": s.temp_source,
        "memtrace": s.memtrace_source,
        "memtrace_exact": s.memtrace_exact,
        "membrane": s.membrane_backend,
        "jail": s.jail_level,
        "work_per_j": s.work_per_j or 0.0,
        "peak_temp_c": s.peak_temp_c if s.peak_temp_c is not None else float("nan"),
        "mean_price": s.mean_price if s.mean_price is not None else float("nan"),
        "landauer_lambda": s.landauer_lambda,
        "supervisor_cpu_pct_of_core": host.get("supervisor_cpu_pct_of_core"),
        "supervisor_loop_cpu_pct_of_core_excl_verify": host.get(
            "supervisor_loop_cpu_pct_of_core_excl_verify"),
        "supervisor_peak_rss_mb": host.get("supervisor_peak_rss_mb"),
        "outcome": host.get("outcome"),
        "db": str(s.db),
        "agents": {
            a.name: {
                "work_units": a.work_units,
                "energy_j": a.energy_j,
                "cpu_s": a.cpu_s,
                "final_balance": a.balance,
                "bytes_freed": a.bytes_freed,
                "died_at_s": a.death_t_s,
                "death": a.death_cause,
            }
            for a in s.agents
        },
    }


def fair_scheduler_name(kernel: str | None = None) -> str:
    """What the `cfs` policy's baseline is called on `kernel` (default: this one):
    "Linux fair scheduler (EEVDF)" from Linux 6.6 on, "(CFS)" before. The policy keeps
    the name `cfs` for scripts."""
    import platform
    import re

    release = platform.release() if kernel is None else kernel
    m = re.match(r"(\d+)\.(\d+)", release or "")
    if m is None:
        return "Linux fair scheduler"
    eevdf = (int(m.group(1)), int(m.group(2))) >= (6, 6)
    return f"Linux fair scheduler ({'EEVDF' if eevdf else 'CFS'})"


FOREIGN_WARN_SHARE = 0.10  # foreign CPU above this share of the machine: say so


def foreign_warnings(runs: dict[str, dict[str, Any]]) -> list[str]:
    """One line per run whose foreign CPU exceeded FOREIGN_WARN_SHARE of the machine."""
    out = []
    for policy, r in runs.items():
        share = float(r.get("foreign_cpu_share") or 0.0)
        if share > FOREIGN_WARN_SHARE:
            out.append(
                f"warning: during the {policy} run, processes outside it used {share:.0%} of "
                f"the machine's CPU (> {FOREIGN_WARN_SHARE:.0%}); their energy is reported "
                "apart and never billed, but the agents got less CPU: compare on a quiet "
                "machine")
    return out


def gain(cfs: dict[str, Any], maxwell: dict[str, Any]) -> float:
    """Work per Joule under Maxwell over work per Joule under the Linux fair scheduler
    (policy `cfs`; nan if undefined)."""
    base = float(cfs["work_per_j"])
    return float(maxwell["work_per_j"]) / base if base > 0 else float("nan")
