"""Calibration: a step test (and optionally a relay test) on a rig, then fit and tune.

A `Rig` is the plant as calibration drives it: switch the load on or off, let time
pass, read (t, busy cores, die temperature). Two rigs:

- `SimRig`: a model plant in simulated time (tests, `default_gains`, `--simulate`).
- `BurnerRig`: this machine — one CPU-burning process per allowed core, paused and
  resumed with SIGSTOP/SIGCONT, read through `maxwell.physics` sensors (real
  thermometers where present, else the virtual plant driven by real /proc/stat).
  It sleeps on the wall clock; it is the imperative shell of calibration.

`step_test` records idle, then load; `relay_test` switches the load on below and off
above the mid temperature (Åström & Hägglund 1984) and measures the oscillation.
`calibrate` runs them, fits the plant (`tuning.fit_fopdt`, on the *measured* busy
cores, since other processes share the CPU) and tunes it (`tuning.simc_gains`).
The burner rig starts and kills its own processes only.
"""

from __future__ import annotations

import contextlib
import math
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Protocol

import numpy as np
import numpy.typing as npt

from maxwell.control.plant import Plant
from maxwell.control.tuning import (
    DEFAULT_PRICE_PER_CORE,
    DEFAULT_TICK_S,
    FOPDTFit,
    SimcResult,
    SimcRule,
    fit_fopdt,
    relay_zn_gains,
    simc_gains,
)

FloatArray = npt.NDArray[np.float64]


class Rig(Protocol):
    """The plant as calibration sees it."""

    cores: float  # load when on (cores the burner may use)

    def set_load(self, on: bool) -> None: ...

    def wait(self, dt_s: float) -> None: ...

    def read(self) -> tuple[float, float, float]:
        """(t_s, busy cores over the interval since the last read, die temperature °C)."""
        ...


class SimRig:
    """A model plant stepped in simulated time."""

    def __init__(self, plant: Plant, cores: float) -> None:
        self.plant = plant
        self.cores = cores
        self._on = False
        self._t_s = 0.0

    def set_load(self, on: bool) -> None:
        self._on = on

    def wait(self, dt_s: float) -> None:
        self.plant.step(self.cores if self._on else 0.0, dt_s)
        self._t_s += dt_s

    def read(self) -> tuple[float, float, float]:
        return self._t_s, self.cores if self._on else 0.0, self.plant.temp_c


# A burner dies with its parent (maxwell._deathsig: PR_SET_PDEATHSIG, exiting if it
# was orphaned before that took effect), stops itself, and spins once resumed.
_BURN = """import os, signal, sys
from maxwell._deathsig import die_with_parent
die_with_parent(int(sys.argv[1]))
os.kill(os.getpid(), signal.SIGSTOP)
while True:
    pass
"""


class BurnerRig:
    """Real CPU burners on this machine, measured through `maxwell.physics` sensors."""

    def __init__(
        self,
        sensors: Any,  # maxwell.physics.Sensors (typed loosely: physics is not strict)
        cores: int,
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        self.sensors = sensors
        self.cores = float(cores)
        self._clock = clock
        self._sleep = sleep
        self._procs: list[subprocess.Popen[bytes]] = []
        self._on = False
        allowed = sorted(os.sched_getaffinity(0))
        for i in range(cores):
            # Each burner stops itself at once and runs only when resumed; pinned to
            # one allowed CPU so the load is `cores` whole cores.
            proc = subprocess.Popen(
                [sys.executable, "-c", _BURN, str(os.getpid())],
                stdin=subprocess.DEVNULL,
                stdout=subprocess.DEVNULL,
                stderr=subprocess.DEVNULL,
                start_new_session=True,
            )
            self._procs.append(proc)
            with contextlib.suppress(OSError):
                os.sched_setaffinity(proc.pid, {allowed[i % len(allowed)]})
        self._wait_stopped()
        self.sensors.sample(self._clock())

    def _wait_stopped(self, timeout_s: float = 10.0) -> None:
        """Block until every burner has stopped itself, so SIGCONT is not lost."""
        deadline = time.monotonic() + timeout_s
        pending = list(self._procs)
        while pending and time.monotonic() < deadline:
            still = []
            for proc in pending:
                try:
                    stat = open(f"/proc/{proc.pid}/stat").read()  # noqa: SIM115
                except OSError:
                    continue
                if stat.rpartition(")")[2].split()[0] not in ("T", "t", "Z", "X"):
                    still.append(proc)
            pending = still
            if pending:
                time.sleep(0.01)
        if pending:
            self.close()
            raise RuntimeError("CPU burner processes did not start within 10 s")

    def set_load(self, on: bool) -> None:
        sig = signal.SIGCONT if on else signal.SIGSTOP
        for proc in self._procs:
            if proc.poll() is None:
                os.kill(proc.pid, sig)
        self._on = on

    def wait(self, dt_s: float) -> None:
        self._sleep(dt_s)

    def read(self) -> tuple[float, float, float]:
        s = self.sensors.sample(self._clock())
        return float(s.t_s), float(s.busy_cores), float(s.temp_c)

    def close(self) -> None:
        """Kill and reap every burner (idempotent)."""
        for proc in self._procs:
            if proc.poll() is None:
                proc.kill()  # SIGKILL also ends a stopped process
        for proc in self._procs:
            with contextlib.suppress(subprocess.TimeoutExpired):
                proc.wait(timeout=5)
        self._procs.clear()

    def __enter__(self) -> BurnerRig:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


@dataclass
class Record:
    """Samples of a test: u[n] is the busy cores held from t[n] to t[n+1]."""

    t_s: list[float] = field(default_factory=list)
    busy_cores: list[float] = field(default_factory=list)
    temp_c: list[float] = field(default_factory=list)
    load_on: list[bool] = field(default_factory=list)

    def arrays(self) -> tuple[FloatArray, FloatArray, FloatArray]:
        t = np.asarray(self.t_s, dtype=np.float64)
        y = np.asarray(self.temp_c, dtype=np.float64)
        # A reading's busy cores are the mean over the interval *before* it; the fit
        # wants the load held *after* each sample, so shift by one.
        b = np.asarray(self.busy_cores, dtype=np.float64)
        u = np.append(b[1:], b[-1]) if b.size else b
        keep = np.isfinite(t) & np.isfinite(u) & np.isfinite(y)
        return t[keep], u[keep], y[keep]


def _sample(rig: Rig, rec: Record, on: bool) -> float:
    t, busy, temp = rig.read()
    rec.t_s.append(t)
    rec.busy_cores.append(busy)
    rec.temp_c.append(temp)
    rec.load_on.append(on)
    return temp


def step_test(rig: Rig, idle_s: float, load_s: float, sample_s: float) -> Record:
    """Idle for `idle_s`, then load for `load_s`, reading every `sample_s`."""
    rec = Record()
    rig.set_load(False)
    _sample(rig, rec, False)
    for _ in range(max(1, round(idle_s / sample_s))):
        rig.wait(sample_s)
        _sample(rig, rec, False)
    rig.set_load(True)
    for _ in range(max(1, round(load_s / sample_s))):
        rig.wait(sample_s)
        _sample(rig, rec, True)
    return rec


@dataclass(frozen=True)
class RelayResult:
    """Relay-feedback figures: relay amplitude d (cores), oscillation amplitude a (°C),
    period T_u (s), ultimate gain K_u = 4d/(πa) (cores per °C)."""

    relay_amplitude_cores: float
    amplitude_c: float
    period_s: float
    ku_cores_per_c: float
    switches: int

    def as_dict(self) -> dict[str, float]:
        return {
            "relay_amplitude_cores": self.relay_amplitude_cores,
            "amplitude_c": self.amplitude_c,
            "period_s": self.period_s,
            "ku_cores_per_c": self.ku_cores_per_c,
            "switches": float(self.switches),
        }


def relay_test(rig: Rig, mid_c: float, duration_s: float, sample_s: float) -> RelayResult | None:
    """Load on below `mid_c`, off above it; None if fewer than two full cycles happened."""
    rec = Record()
    on = _sample(rig, rec, False) < mid_c
    rig.set_load(on)
    ups: list[float] = []
    for _ in range(max(1, round(duration_s / sample_s))):
        rig.wait(sample_s)
        temp = _sample(rig, rec, on)
        want = temp < mid_c
        if want != on:
            on = want
            rig.set_load(on)
            if on:
                ups.append(rec.t_s[-1])
    rig.set_load(False)
    if len(ups) < 3:
        return None
    # Measure over the last two full cycles (the first ones are transient).
    t0 = ups[-3]
    t = np.asarray(rec.t_s)
    y = np.asarray(rec.temp_c)
    window = y[t >= t0]
    amplitude = float(np.nanmax(window) - np.nanmin(window)) / 2.0
    period = (ups[-1] - ups[-3]) / 2.0
    d = rig.cores / 2.0
    ku = 4.0 * d / (math.pi * amplitude) if amplitude > 0 else math.inf
    return RelayResult(d, amplitude, period, ku, len(ups))


MIN_STEP_FRACTION = 0.25  # of the burner's cores


def check_step(rec: Record, cores: float) -> None:
    """Refuse a step test whose load barely changed busy cores (a busy machine)."""
    busy = np.asarray(rec.busy_cores, dtype=np.float64)
    on = np.asarray(rec.load_on, dtype=np.bool_)
    # busy_cores[n] covers the interval before sample n, so the first "on" sample
    # already reports loaded time; skip the very first sample (no interval yet).
    idle = busy[1:][~on[1:]]
    load = busy[1:][on[1:]]
    if idle.size == 0 or load.size == 0:
        raise ValueError("the step test needs samples both idle and under load")
    idle_c, load_c = float(np.nanmedian(idle)), float(np.nanmedian(load))
    if load_c - idle_c < MIN_STEP_FRACTION * cores:
        raise ValueError(
            f"the load raised busy cores only from {idle_c:.2f} to {load_c:.2f} (burner:"
            f" {cores:g} cores): other processes keep the CPU busy; calibrate when the"
            " machine is quiet, or use --simulate"
        )


@dataclass(frozen=True)
class Calibration:
    """Everything a calibration produced."""

    record: Record
    fit: FOPDTFit
    simc: SimcResult
    relay: RelayResult | None
    relay_gains: dict[str, float] | None


def calibrate(
    rig: Rig,
    *,
    idle_s: float,
    load_s: float,
    sample_s: float,
    tick_s: float = DEFAULT_TICK_S,
    price_per_core: float = DEFAULT_PRICE_PER_CORE,
    relay_s: float = 0.0,
) -> Calibration:
    """Step test → fit → SIMC gains; with `relay_s` > 0, also a relay test afterwards."""
    rec = step_test(rig, idle_s, load_s, sample_s)
    check_step(rec, rig.cores)
    t, u, y = rec.arrays()
    fit = fit_fopdt(t, u, y)
    tuning = simc_gains(fit, SimcRule(tick_s=tick_s), price_per_core)
    relay = None
    relay_gains = None
    if relay_s > 0:
        temps = np.asarray(rec.temp_c)
        mid_c = float(np.nanmin(temps) + np.nanmax(temps)) / 2.0
        # The relay switches once per controller tick, as the price would: with
        # faster switching the oscillation is set by the sampling, not the plant.
        relay = relay_test(rig, mid_c, relay_s, tick_s)
        if relay is not None and math.isfinite(relay.ku_cores_per_c):
            relay_gains = relay_zn_gains(
                relay.relay_amplitude_cores, relay.amplitude_c, relay.period_s, price_per_core
            ).as_dict()
    return Calibration(rec, fit, tuning, relay, relay_gains)
