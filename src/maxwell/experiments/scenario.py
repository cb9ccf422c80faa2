"""Scenario files: a cast of agent models (and, where it exists, a live cast) in TOML.

A scenario is a Maxwell config whose `[[agents]]` list is replaced by `[[cast]]`
groups. The sections a config has (`[run]`, `[physics]`, `[market]`, …) mean what
they mean there and are validated by the same models (`maxwell.config`), so a
scenario has no second set of defaults. `[scenario]` names it and sets what only
experiments need (simulated CPUs, the live duration). Each `[[cast]]` group is
`count` identical agents of one `model`:

- `useful`: verifiable work at `units_per_core_s`, claimed every `claim_cpu_s`
  core-seconds of CPU; bids `margin` × its measured value per core-second
  (the Scientist's rule), `bid` until its first verdict;
- `bursty`: a useful agent that has work only part of the time (on/off phases with
  exponential lengths of mean `burst_on_s` / `burst_off_s`);
- `slow`: a useful agent whose first proof needs `first_proof_cpu_s` core-seconds;
- `churner`: a useful agent that frees `churn_bytes_per_core_s` bytes per core-second;
- `liar`: does real work but claims `inflation` × its true units;
- `parasite`: burns `workers` cores, proves nothing, bids a fixed `bid`.

Value is verified true units × `value_per_unit`. `declared_value` (value per
core-second an agent *says* it is worth; default its true value) feeds the
`weights` baseline and `nice` (a nice level) the `nice` baseline: what an
operator would be told, true or not. `live` (optional) is the `[[agents]]`
entry that runs the group on the real machine (`builtin` or `cmd`, `options`);
a scenario is live-capable when every group has one.

Loading is pure (no processes, no files written); bad input raises `ConfigError`
naming the key. The shipped scenarios are package data beside this module.
"""

from __future__ import annotations

import math
import sys
import tomllib
from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from typing import Any, Literal

import numpy as np
from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from maxwell.config import (
    ConfigError,
    ControlSection,
    MarketSection,
    MembraneSection,
    MemtraceSection,
    PhysicsSection,
    RunSection,
)

MODELS = ("useful", "bursty", "slow", "churner", "liar", "parasite")
USEFUL_MODELS = ("useful", "bursty", "slow", "churner")
MAX_AGENTS = 100_000


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class ScenarioSection(_Strict):
    name: str = Field(min_length=1, pattern=r"^[a-z0-9][a-z0-9-]*$")
    description: str = ""
    # "default": sections the scenario leaves out come from the built-in demo config
    # (`maxwell config --print-default`), so scenarios follow its tuned market.
    base: Literal["default", "none"] = "default"
    cpus: int = Field(2, ge=1, le=4096)  # simulated CPUs (a live run has the machine's)
    # True: the setpoint is a hard budget, so the oracle's static shares hold it at
    # steady state; False: the oracle ignores temperature (as cfs does).
    oracle_holds_setpoint: bool = False
    live_duration_s: float | None = Field(None, gt=0)  # live quick mode (default run.duration_s)


class LiveSection(_Strict):
    builtin: Literal["scientist", "miner"] | None = None
    cmd: list[str] | None = None
    options: dict[str, Any] = Field(default_factory=dict)
    default_bid: float | None = Field(None, ge=0)
    default_slots: int | None = Field(None, ge=0)


class CastSection(_Strict):
    name: str = Field(min_length=1, max_length=48, pattern=r"^[A-Za-z0-9_.-]+$")
    model: Literal["useful", "bursty", "slow", "churner", "liar", "parasite"]
    count: int = Field(1, ge=1, le=MAX_AGENTS)
    workers: int = Field(1, ge=1, le=64)  # cores the agent can use at once
    funds: float = Field(30.0, ge=0)
    bid: float = Field(1.0, ge=0)  # parasite: fixed bid; others: bid before the first verdict
    margin: float = Field(0.8, gt=0, le=10)
    units_per_core_s: float = Field(0.0, ge=0)
    value_per_unit: float = Field(1.0, ge=0)
    declared_value: float | None = Field(None, ge=0)  # credits per core-second claimed
    nice: int = Field(0, ge=-20, le=19)
    claim_cpu_s: float = Field(0.5, gt=0)
    first_proof_cpu_s: float = Field(0.0, ge=0)  # slow: CPU before the first proof
    # Simulation: CPU seconds an agent spends starting up before any work (None: the
    # simulator's default, a Python process's start-up).
    startup_cpu_s: float | None = Field(None, ge=0)
    # True: simulate this group with the calibrated model of its live builtin
    # (`maxwell sim --calibrate`), not with units_per_core_s.
    calibrated: bool = False
    inflation: float = Field(1.0, ge=1.0, le=100.0)
    burst_on_s: float = Field(0.0, ge=0)
    burst_off_s: float = Field(0.0, ge=0)
    churn_bytes_per_core_s: float = Field(0.0, ge=0)
    jitter: float = Field(0.1, ge=0, le=1)  # per-seed spread of units_per_core_s (lognormal σ)
    live: LiveSection | None = None

    @model_validator(mode="after")
    def _check(self) -> CastSection:
        if self.model == "parasite" and self.units_per_core_s > 0:
            raise ValueError("a parasite proves nothing: units_per_core_s must be 0")
        if self.model != "parasite" and self.units_per_core_s <= 0:
            raise ValueError(f"model {self.model!r} needs units_per_core_s > 0")
        if self.model == "bursty" and (self.burst_on_s <= 0 or self.burst_off_s <= 0):
            raise ValueError("model 'bursty' needs burst_on_s > 0 and burst_off_s > 0")
        if self.model == "liar" and self.inflation <= 1.0:
            raise ValueError("model 'liar' needs inflation > 1")
        if self.model == "slow" and self.first_proof_cpu_s <= 0:
            raise ValueError("model 'slow' needs first_proof_cpu_s > 0")
        if self.calibrated and (self.live is None or self.live.builtin is None):
            raise ValueError("calibrated = true needs a live builtin (live.builtin)")
        if self.model == "churner" and self.churn_bytes_per_core_s <= 0:
            raise ValueError("model 'churner' needs churn_bytes_per_core_s > 0")
        return self


class ScenarioDoc(_Strict):
    scenario: ScenarioSection
    run: RunSection = RunSection()
    physics: PhysicsSection = PhysicsSection()
    control: ControlSection = ControlSection()
    market: MarketSection = MarketSection()
    membrane: MembraneSection = MembraneSection()
    memtrace: MemtraceSection = MemtraceSection()
    cast: list[CastSection] = Field(min_length=1)

    @model_validator(mode="after")
    def _check(self) -> ScenarioDoc:
        names = [c.name for c in self.cast]
        dup = sorted({n for n in names if names.count(n) > 1})
        if dup:
            raise ValueError(f"cast names must be unique (repeated: {', '.join(dup)})")
        total = sum(c.count for c in self.cast)
        if total > MAX_AGENTS:
            raise ValueError(f"at most {MAX_AGENTS} agents in all (got {total})")
        return self


@dataclass(frozen=True)
class Cast:
    """The cast expanded to one entry per agent (arrays of length n, in group order)."""

    names: tuple[str, ...]
    group: np.ndarray  # int: index into ScenarioDoc.cast
    model: tuple[str, ...]  # per group
    workers: np.ndarray
    funds: np.ndarray
    bid: np.ndarray
    margin: np.ndarray
    units_per_core_s: np.ndarray
    value_per_unit: np.ndarray
    declared_value: np.ndarray
    nice: np.ndarray
    claim_cpu_s: np.ndarray
    first_proof_cpu_s: np.ndarray
    inflation: np.ndarray
    burst_on_s: np.ndarray
    burst_off_s: np.ndarray
    churn_bytes_per_core_s: np.ndarray
    jitter: np.ndarray
    useful: np.ndarray  # bool: honest agents whose work has value
    parasite: np.ndarray  # bool

    @property
    def n(self) -> int:
        return len(self.names)


@dataclass(frozen=True)
class Scenario:
    """A validated scenario: its document, where it came from, and the expanded cast."""

    doc: ScenarioDoc
    source: str
    data: dict[str, Any]  # the parsed TOML, for overrides (`with_overrides`)

    @property
    def name(self) -> str:
        return self.doc.scenario.name

    @property
    def live_capable(self) -> bool:
        return all(c.live is not None for c in self.doc.cast)

    def sim_config_data(self, rates: np.ndarray) -> dict[str, Any]:
        """The `maxwell sim` config of the cast: one `model` entry per agent, with each
        agent's work rate for this seed (`rates`, per agent in cast order)."""
        d = self.doc.model_dump(exclude={"scenario", "cast"}, exclude_none=True)
        if not d["market"].get("slots"):
            d["market"]["slots"] = self.doc.scenario.cpus
        agents: list[dict[str, Any]] = []
        k = 0
        for c, name_list in zip(self.doc.cast, group_names(self.doc), strict=True):
            for name in name_list:
                agents.append({"name": name, "funds": c.funds, "workers": c.workers,
                               **_sim_model(c, float(rates[k]))})
                k += 1
        d["agents"] = agents
        return d

    def cast(self) -> Cast:
        groups = self.doc.cast
        counts = np.array([c.count for c in groups], dtype=np.int64)
        gidx = np.repeat(np.arange(len(groups)), counts)

        def col(key: str, dtype: type = np.float64) -> np.ndarray:
            vals = []
            for c in groups:
                v = getattr(c, key)
                if key == "declared_value" and v is None:
                    v = c.units_per_core_s * c.value_per_unit
                vals.append(v)
            return np.repeat(np.asarray(vals, dtype=dtype), counts)

        names: list[str] = []
        for c in groups:
            names.extend([c.name] if c.count == 1 else [f"{c.name}-{i}" for i in range(c.count)])
        models = tuple(c.model for c in groups)
        useful_g = np.array([c.model in USEFUL_MODELS for c in groups])
        parasite_g = np.array([c.model == "parasite" for c in groups])
        return Cast(
            names=tuple(names),
            group=gidx,
            model=models,
            workers=col("workers"),
            funds=col("funds"),
            bid=col("bid"),
            margin=col("margin"),
            units_per_core_s=col("units_per_core_s"),
            value_per_unit=col("value_per_unit"),
            declared_value=col("declared_value"),
            nice=col("nice"),
            claim_cpu_s=col("claim_cpu_s"),
            first_proof_cpu_s=col("first_proof_cpu_s"),
            inflation=col("inflation"),
            burst_on_s=col("burst_on_s"),
            burst_off_s=col("burst_off_s"),
            churn_bytes_per_core_s=col("churn_bytes_per_core_s"),
            jitter=col("jitter"),
            useful=np.repeat(useful_g, counts),
            parasite=np.repeat(parasite_g, counts),
        )

    def with_overrides(self, changes: dict[str, Any]) -> Scenario:
        """A copy with dotted keys replaced (`market.landauer_lambda`, `cast.miner.funds`,
        `cast.*.funds` for every group), validated again."""
        import copy

        data = copy.deepcopy(self.data)
        for key, value in changes.items():
            _set(data, key, value)
        return validate(data, f"{self.source} (with --set)")

    def live_config_data(self) -> dict[str, Any]:
        """The `maxwell run` config of the live cast (ConfigError if a group has none)."""
        missing = [c.name for c in self.doc.cast if c.live is None]
        if missing:
            raise ConfigError(
                f"{self.source}: scenario {self.name!r} has no live cast for {', '.join(missing)}"
                " (add a [cast.live] table, or use --sim)"
            )
        d = self.doc.model_dump(exclude={"scenario", "cast"}, exclude_none=True)
        agents: list[dict[str, Any]] = []
        for c, name_list in zip(self.doc.cast, group_names(self.doc), strict=True):
            assert c.live is not None
            for name in name_list:
                entry: dict[str, Any] = {"name": name, "funds": c.funds, "workers": c.workers}
                live = c.live.model_dump(exclude_none=True)
                if not live.get("options"):
                    live.pop("options", None)
                entry.update(live)
                if "cmd" in entry:
                    # "{python}" is the interpreter running Maxwell (a venv's, say).
                    entry["cmd"] = [sys.executable if a == "{python}" else a
                                    for a in entry["cmd"]]
                agents.append(entry)
        d["agents"] = agents
        return d


def group_names(doc: ScenarioDoc) -> list[list[str]]:
    return [
        [c.name] if c.count == 1 else [f"{c.name}-{i}" for i in range(c.count)] for c in doc.cast
    ]


def _sim_model(c: CastSection, rate: float) -> dict[str, Any]:
    """A cast group as a `maxwell.sim` model entry (model name and options)."""
    out = _sim_model_only(c, rate)
    if c.startup_cpu_s is not None:
        out["options"]["startup_cpu_s"] = c.startup_cpu_s
    return out


def _sim_model_only(c: CastSection, rate: float) -> dict[str, Any]:
    if c.calibrated:
        assert c.live is not None and c.live.builtin is not None
        return {"model": c.live.builtin, "options": dict(c.live.options)}
    if c.model == "parasite":
        return {"model": "parasite", "options": {
            "bid": c.bid, "churn_bytes_per_s": round(c.churn_bytes_per_core_s * c.workers)}}
    opts: dict[str, Any] = {"value_rate": rate, "claim_cpu_s": c.claim_cpu_s,
                            "initial_bid": c.bid, "margin": c.margin}
    if c.model == "useful":
        return {"model": "worker", "options": opts}
    if c.model == "bursty":
        period = c.burst_on_s + c.burst_off_s
        opts.update(burst_period_s=period, burst_duty=c.burst_on_s / period)
        return {"model": "bursty", "options": opts}
    if c.model == "slow":
        opts.update(first_proof_cpu_s=c.first_proof_cpu_s)
        return {"model": "slow_start", "options": opts}
    if c.model == "churner":
        opts.update(churn_bytes_per_cpu_s=c.churn_bytes_per_core_s)
        return {"model": "churner", "options": opts}
    opts.update(lie_factor=c.inflation)
    return {"model": "liar", "options": opts}


def _parse_value(text: str) -> Any:
    """A --set value: TOML's scalars (numbers, booleans, quoted strings), else the text."""
    try:
        return tomllib.loads(f"v = {text}")["v"]
    except tomllib.TOMLDecodeError:
        return text


def _set(data: dict[str, Any], key: str, value: Any) -> None:
    parts = key.split(".")
    if isinstance(value, str):
        value = _parse_value(value)
    if parts[0] == "cast":
        if len(parts) != 3:
            raise ConfigError(f"--set {key}: cast keys are cast.NAME.KEY or cast.*.KEY")
        targets = [c for c in data.get("cast", []) if parts[1] in ("*", c.get("name"))]
        if not targets:
            raise ConfigError(f"--set {key}: no cast group named {parts[1]!r}")
        for c in targets:
            c[parts[2]] = value
        return
    node = data
    for p in parts[:-1]:
        nxt = node.setdefault(p, {})
        if not isinstance(nxt, dict):
            raise ConfigError(f"--set {key}: {p!r} is not a table")
        node = nxt
    node[parts[-1]] = value


def _loc(loc: tuple[int | str, ...]) -> str:
    out = ""
    for part in loc:
        out += f"[{part}]" if isinstance(part, int) else (f".{part}" if out else str(part))
    return out or "(top level)"


_SECTIONS = ("run", "physics", "control", "market", "membrane", "memtrace")


def _with_base(data: dict[str, Any]) -> dict[str, Any]:
    base = (data.get("scenario") or {}).get("base", "default")
    if base != "default":
        return data
    from maxwell.config import default_text

    default = tomllib.loads(default_text())
    merged = dict(data)
    for sec in _SECTIONS:
        if sec in default:
            merged[sec] = {**default[sec], **(data.get(sec) or {})}
    return merged


def validate(data: dict[str, Any], source: str) -> Scenario:
    """Validate a parsed scenario document; ConfigError names the first bad key."""
    try:
        doc = ScenarioDoc.model_validate(_with_base(data))
    except ValidationError as err:
        e = err.errors()[0]
        where = _loc(tuple(e["loc"]))
        if e["type"] == "extra_forbidden":
            raise ConfigError(f"{source}: unknown key '{where}'") from None
        if e["type"] == "missing":
            raise ConfigError(f"{source}: missing key '{where}'") from None
        msg = str(e["msg"]).removeprefix("Value error, ")
        got = e.get("input")
        shown = "" if isinstance(got, dict | list) or got is None else f" (got {got!r})"
        raise ConfigError(f"{source}: {where}: {msg}{shown}") from None
    if not math.isfinite(doc.run.duration_s):
        raise ConfigError(f"{source}: run.duration_s must be finite")
    return Scenario(doc=doc, source=source, data=data)


def _shipped() -> dict[str, Any]:
    root = resources.files("maxwell.experiments").joinpath("scenarios")
    return {p.name.removesuffix(".toml"): p for p in root.iterdir() if p.name.endswith(".toml")}


def list_scenarios() -> list[str]:
    """Names of the shipped scenarios, sorted."""
    return sorted(_shipped())


def scenario_text(name: str) -> str:
    shipped = _shipped()
    if name not in shipped:
        raise ConfigError(
            f"--scenario: unknown scenario {name!r}: choose one of {', '.join(sorted(shipped))}"
            " or give a path to a .toml file"
        )
    return str(shipped[name].read_text())


def load_scenario(name_or_path: str) -> Scenario:
    """A shipped scenario by name, or a scenario file by path."""
    p = Path(name_or_path)
    if name_or_path.endswith(".toml") or p.exists():
        try:
            text = p.read_text()
        except OSError as err:
            raise ConfigError(f"{p}: cannot read: {err.strerror}") from None
        source = str(p)
    else:
        text = scenario_text(name_or_path)
        source = f"scenario {name_or_path}"
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as err:
        raise ConfigError(f"{source}: not valid TOML: {err}") from None
    return validate(data, source)
