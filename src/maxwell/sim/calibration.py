"""Calibrating the Scientist and Miner models from measurements on this machine.

`measure()` runs the real built-in Scientist stand-alone (no supervisor: it prints
one JSON line per sieved segment) twice: once with almost nothing to do, which
gives the CPU its start-up costs (interpreter, imports, forking workers); once on
`segments` segments of the demo's size at a magnitude the demo reaches (2^33),
which gives the numbers sieved per CPU-second of the whole process tree and the
share of that CPU its workers report with their claims (what its bidder divides
by). CPU is counted from the kernel's rusage of the reaped tree, so other load on
the machine does not bias it (wall-clock figures would be). Live runs, when given
(`from_runs`), add what only a supervisor sees: each agent's spawn → hello delay.

The result is one JSON file (`default_path()`: ``~/.config/maxwell/sim-calibration.json``
by platformdirs, or a path of one's choice) that `maxwell sim` reads; without one
the models use round defaults and every run says "uncalibrated". Runs real
processes; no network.
"""

from __future__ import annotations

import itertools
import json
import math
import os
import resource
import statistics
import subprocess
import sys
import time
from dataclasses import asdict, fields
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np

from maxwell.sim.models import Calibration

CALIBRATION_NAME = "sim-calibration.json"
_START = 1 << 33  # a magnitude the 60 s demo's Scientist sieves through
# Magnitudes the rate is measured at: a demo's Scientist starts at 0 and reaches
# ~10^9 in 15 s on a loaded machine, ~5·10^10 in 60 s on an idle one.
_STARTS = (1 << 27, 1 << 31, 1 << 35)


class CalibrationError(ValueError):
    """A calibration file that cannot be read (the message names the file)."""


def default_path() -> Path:
    from platformdirs import user_config_path

    return user_config_path("maxwell") / CALIBRATION_NAME


def _children_cpu_s() -> float:
    ru = resource.getrusage(resource.RUSAGE_CHILDREN)
    return ru.ru_utime + ru.ru_stime


def _run_scientist(workers: int, segment: int, start: int, stop: int) -> tuple[float, float,
                                                                             list[dict[str, Any]]]:
    """(tree CPU-seconds, wall seconds, its JSON lines) of one stand-alone Scientist."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("MAXWELL_")}
    argv = [sys.executable, "-m", "maxwell.agents.scientist", "--workers", str(workers),
            "--segment-size", str(segment), "--start", str(start), "--stop", str(stop)]
    c0, t0 = _children_cpu_s(), time.monotonic()
    proc = subprocess.run(argv, env=env, capture_output=True, text=True, timeout=120, check=False)
    wall, cpu = time.monotonic() - t0, _children_cpu_s() - c0
    if proc.returncode != 0:
        raise RuntimeError(f"the Scientist exited with {proc.returncode}: {proc.stderr[-300:]}")
    lines = [json.loads(x) for x in proc.stdout.splitlines() if x.startswith("{")]
    return cpu, wall, lines


def measure(*, workers: int = 2, segment_size: int = 1 << 24, segments: int = 16,
            repeats: int = 1, starts: tuple[int, ...] = _STARTS) -> Calibration:
    """Measure the Scientist's start-up CPU and sieving rate here (a few seconds)."""
    startup = []
    for _ in range(repeats):
        cpu, _wall, _ = _run_scientist(workers, segment_size, _START, _START + 1000)
        startup.append(cpu)
    startup_cpu = statistics.median(startup)
    # Rounds over the magnitudes, not repeats of one: a drift of the machine's speed
    # (other tenants' load) then shifts every point alike instead of bending the curve.
    rates: dict[int, list[float]] = {start: [] for start in starts}
    fractions = []
    for _ in range(repeats):
        for start in starts:
            cpu, _wall, lines = _run_scientist(workers, segment_size, start,
                                               start + segments * segment_size)
            work_cpu = max(cpu - startup_cpu, 1e-9)
            numbers = sum(int(x["hi"]) - int(x["lo"]) for x in lines)
            rates[start].append(numbers / work_cpu)
            fractions.append(min(sum(float(x["cpu_s"]) for x in lines) / work_cpu, 1.0))
    points = _monotone([(float(s), statistics.median(r)) for s, r in sorted(rates.items())])
    cal = Calibration(
        sieve_rate_points=tuple(points),
        worker_cpu_fraction=statistics.median(fractions),
        scientist_startup_cpu_s=startup_cpu,
        source=f"measured {datetime.now(UTC).isoformat(timespec='seconds')} "
               f"on {os.uname().nodename}",
        measured={
            "workers": workers, "segment_size": segment_size, "segments": segments,
            "repeats": repeats,
            "worker_cpu_fraction_runs": [round(f, 4) for f in fractions],
            "startup_cpu_s_runs": [round(s, 4) for s in startup],
            "load_avg_1min": round(os.getloadavg()[0], 2),
        },
    )
    lx, cpn = cal.sieve_curve()
    ref = 1.0 / float(np.interp(math.log(_START), lx, cpn))
    return Calibration(**{**asdict(cal), "sieve_numbers_per_cpu_s": ref})


def _monotone(points: list[tuple[float, float]]) -> list[tuple[float, float]]:
    """The rates with the sieve's cost per number made non-decreasing in x (pooling
    adjacent points that break it): larger numbers have more base primes to strike
    with, so a rate that rises with x is measurement noise."""
    blocks: list[list[float]] = []  # [cost sum, count, first index]
    cost = [1.0 / r for _, r in points]
    for i, c in enumerate(cost):
        blocks.append([c, 1, i])
        while len(blocks) > 1 and blocks[-2][0] / blocks[-2][1] > blocks[-1][0] / blocks[-1][1]:
            last = blocks.pop()
            blocks[-1][0] += last[0]
            blocks[-1][1] += last[1]
    out = []
    for total, n, first in blocks:
        for j in range(int(first), int(first + n)):
            out.append((points[j][0], n / total))
    return out


def from_runs(cal: Calibration, run_dirs: list[Path]) -> Calibration:
    """What only live runs show: each built-in's spawn → hello delay, and the share
    of the Miner's configured churn the run's memory tracer counted (the tracer's
    view is what the live economy taxes: the page-level tracer sees its munmap half,
    not madvise on a shared mapping; RSS sampling sees less). Medians over the runs."""
    from maxwell.record import RunReader

    hello: dict[str, list[float]] = {"scientist": [], "miner": []}
    churn: list[float] = []
    for d in run_dirs:
        with RunReader(d) as r:
            cfg = r.config()
            builtin = {a["name"]: a.get("builtin") for a in cfg.get("agents", [])}
            if r.host().get("simulated"):
                raise CalibrationError(f"{d}: a simulated run cannot calibrate the simulator")
            for ev in r.events():
                kind = builtin.get(ev.agent or "")
                if ev.kind == "hello" and kind in hello:
                    hello[kind].append(float(ev.t_s))
            rows: dict[str, list[Any]] = {}
            for a in r.agent_ticks():
                rows.setdefault(a.agent, []).append(a)
            tick_s = float(cfg["run"]["tick_s"])
            for agent in cfg.get("agents", []):
                if agent.get("builtin") != "miner":
                    continue
                rate = agent.get("options", {}).get("churn_bytes_per_s")
                mine = rows.get(agent["name"], [])
                # Bytes over the intervals it ran through, after its first (start-up)
                # interval and before its death (an exit frees its whole heap at once).
                freed = [cur.bytes_freed - prev.bytes_freed
                         for prev, cur in itertools.pairwise(mine)
                         if cur.state == "running" and cur.cpu_s > prev.cpu_s]
                if rate and freed:
                    churn.append(statistics.median(freed) / tick_s / float(rate))
    changes: dict[str, Any] = {}
    if hello["scientist"]:
        changes["scientist_startup_s"] = statistics.median(hello["scientist"])
    if hello["miner"]:
        changes["miner_startup_s"] = statistics.median(hello["miner"])
    if churn:
        changes["miner_churn_traced"] = statistics.median(churn)
    measured = {**cal.measured, "hello_s_from_runs": {k: v for k, v in hello.items() if v},
                "miner_churn_traced_runs": [round(c, 4) for c in churn],
                "runs": [str(d) for d in run_dirs]}
    return Calibration(**{**asdict(cal), **changes, "measured": measured})


def save(cal: Calibration, path: Path | None = None) -> Path:
    p = path or default_path()
    p.parent.mkdir(parents=True, exist_ok=True)
    p.write_text(json.dumps(asdict(cal), indent=2, sort_keys=True) + "\n")
    return p


def load(path: Path | None = None) -> Calibration:
    """The calibration at `path` (default: the user's, if any; else the defaults)."""
    p = path or default_path()
    if path is None and not p.exists():
        return Calibration()
    try:
        data = json.loads(p.read_text())
    except OSError as err:
        raise CalibrationError(f"{p}: cannot read: {err.strerror}") from None
    except json.JSONDecodeError as err:
        raise CalibrationError(f"{p}: not a calibration file: {err}") from None
    known = {f.name for f in fields(Calibration)}
    if not isinstance(data, dict) or set(data) - known:
        raise CalibrationError(f"{p}: not a calibration file (unknown keys "
                               f"{sorted(set(data) - known) if isinstance(data, dict) else ''})")
    if "sieve_rate_points" in data:
        data["sieve_rate_points"] = tuple(tuple(map(float, p)) for p in data["sieve_rate_points"])
    try:
        return Calibration(**data)
    except (TypeError, ValueError) as err:
        raise CalibrationError(f"{p}: {err}") from None


def load_series(run_dir: Path) -> tuple[list[float], list[float]]:
    """(foreign, overhead): cores a live run's host spent outside its agents, per tick.

    Everything but the agents is busy cores (from /proc/stat) minus the agents' CPU
    over the interval. Of that, `foreign` is what the live sampler attributed to
    processes outside the run (ticks.foreign_cpu_s, schema 2; nothing before it) and
    `overhead` the rest — the supervisor and its verification, the run's own, which
    drives the plant. A simulated run replaying both shares the same remaining cores
    between its models and heats the same plant.
    """
    from maxwell.record import RunReader

    with RunReader(run_dir) as r:
        ticks = r.ticks()
        cpu: dict[float, float] = {}
        for a in r.agent_ticks():
            cpu[a.t_s] = cpu.get(a.t_s, 0.0) + a.cpu_s
    foreign, overhead = [], []
    last_t, last_cpu, last_foreign = 0.0, 0.0, 0.0
    for t in ticks:
        agents_cpu = cpu.get(t.t_s, last_cpu)
        dt = max(t.t_s - last_t, 1e-9)
        others = max(t.busy_cores - (agents_cpu - last_cpu) / dt, 0.0)
        f = min(max((t.foreign_cpu_s - last_foreign) / dt, 0.0), others)
        foreign.append(f)
        overhead.append(others - f)
        last_t, last_cpu, last_foreign = t.t_s, agents_cpu, t.foreign_cpu_s
    return foreign, overhead


def _sieve_cpu_s(units: float, start: float, segment: float,
                 curve: tuple[np.ndarray, np.ndarray]) -> float:
    """CPU-seconds the Scientist model spends on its first `units` primes from `start`
    (segment by segment, as `models.Population.run` charges them)."""
    from maxwell.sim.models import li, segment_cpu_s

    cpu, done, lo, batch = 0.0, 0.0, float(start), 4096
    while True:
        los = lo + segment * np.arange(batch, dtype=np.float64)
        u = li(los + segment) - li(np.maximum(los, 2.0))
        cost = segment_cpu_s(los, segment, curve)
        cum = done + np.cumsum(u)
        k = int(np.searchsorted(cum, units))
        if k < batch:
            before = float(cum[k - 1]) if k else done
            part = (units - before) / float(u[k]) if u[k] > 0 else 0.0
            return cpu + float(cost[:k].sum()) + part * float(cost[k])
        cpu, done, lo = cpu + float(cost.sum()), float(cum[-1]), lo + segment * batch


def sieve_speed(run_dir: Path, cal: Calibration) -> float | None:
    """How fast a live run's built-in Scientists sieved, relative to `cal`'s rates.

    The CPU the model needs for the units they had verified by the end, divided by
    the CPU they used after start-up (their whole trees, from the run's last tick).
    1.0: as calibrated. On a machine shared with other tenants this drifts by tens of
    per cent from minute to minute (caches and memory bandwidth are shared, and a
    stand-alone calibration takes a few seconds), so a replay runs at its live run's
    speed, as it runs with its foreign load. None: no Scientist did verified work.
    """
    from maxwell.record import RunReader

    with RunReader(run_dir) as r:
        cfg = r.config()
        last: dict[str, Any] = {}
        for tick_row in r.agent_ticks():
            last[tick_row.agent] = tick_row
    model_cpu = live_cpu = 0.0
    curve = cal.sieve_curve()
    for agent in cfg.get("agents", []):
        row = last.get(agent.get("name"))
        if agent.get("builtin") != "scientist" or row is None or row.work_units <= 0:
            continue
        opts = agent.get("options", {})
        from maxwell.sim.models import model_default

        segment = float(opts.get("segment_size", model_default("scientist", "segment_size")))
        start = float(opts.get("start", model_default("scientist", "start")))
        model_cpu += _sieve_cpu_s(float(row.work_units), start, segment, curve)
        live_cpu += max(float(row.cpu_s) - cal.scientist_startup_cpu_s, 0.0)
    if model_cpu <= 0 or live_cpu <= 0:
        return None
    return model_cpu / live_cpu * cal.sieve_speed
