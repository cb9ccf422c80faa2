"""Experiment configuration: one TOML file, validated on load.

Every error names the key and the fix in one line (`ConfigError`), and nothing
is started before the whole file is valid. The built-in demo configuration is
`default.toml` beside this module (`maxwell config --print-default`). pydantic
does the type checking; this module turns its errors into one-line messages.
"""

from __future__ import annotations

import itertools
import os
import shutil
import tomllib
from collections import Counter
from importlib import resources
from pathlib import Path
from typing import Any, Literal, get_args

from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from maxwell import defaults as D
from maxwell.common import UsageError

POLICIES = ("cfs", "maxwell")
# Simulated agent models (`maxwell sim` only); their options are checked by
# `maxwell.sim.models` when a simulation is built.
ModelName = Literal["scientist", "miner", "worker", "parasite", "liar", "bursty", "slow_start",
                    "churner"]
MODELS: tuple[str, ...] = get_args(ModelName)


class ConfigError(UsageError, ValueError):
    """An invalid configuration; the message is one line naming the key (exit code 2)."""


class _Section(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class RunSection(_Section):
    policy: Literal["cfs", "maxwell"] = "maxwell"
    duration_s: float = Field(D.DURATION_S, gt=0)
    tick_s: float = Field(D.TICK_S, ge=0.05, le=60)
    seed: int = D.SEED
    # An agent is never frozen before it has said hello or this many seconds have
    # passed since every agent was started and since the last hello (at most four
    # times this): a loser frozen before it connects could never bid.
    startup_grace_s: float = Field(D.STARTUP_GRACE_S, ge=0)


class PhysicsSection(_Section):
    hw_class: Literal["laptop", "desktop", "server"] = D.HW_CLASS  # type: ignore[assignment]
    setpoint_c: float = Field(D.SETPOINT_C, gt=0, lt=150)
    energy_source: Literal["auto", "powercap", "msr", "hwmon", "model"] = "auto"
    temp_source: Literal["auto", "msr", "hwmon", "thermal_zone", "model"] = "auto"
    # What drives the virtual plant: "run" = this run's CPU only (agents, supervisor), so
    # other programs on the host neither heat the modelled die nor enter its energy;
    # "machine" = all busy CPUs. Measured sensors see everything either way.
    model_load: Literal["run", "machine"] = "run"


class ControlSection(_Section):
    profile: str = "auto"  # "auto", "default", or a path to a profile TOML
    kp: float | None = Field(None, ge=0)
    ki: float | None = Field(None, ge=0)
    kd: float | None = Field(None, ge=0)


class MarketSection(_Section):
    slots: int = Field(0, ge=0)
    slot_weights: list[float] = Field(default_factory=list)
    r_min: float = Field(D.R_MIN, ge=0)
    r_max: float = Field(D.R_MAX, gt=0)
    energy_price_per_j: float = Field(D.ENERGY_PRICE_PER_J, ge=0)
    landauer_lambda: float = Field(D.LANDAUER_LAMBDA, ge=0)
    bounty_per_unit: float = Field(D.BOUNTY_PER_UNIT, ge=0)
    fine_per_fraud: float = Field(D.FINE_PER_FRAUD, ge=0)
    bounty_pool: float = Field(D.BOUNTY_POOL, ge=0)
    resieve_probability: float = Field(D.RESIEVE_PROBABILITY, ge=0, le=1)
    block_audit_probability: float = Field(D.BLOCK_AUDIT_PROBABILITY, gt=0, le=1)
    probation_claims: int = Field(D.PROBATION_CLAIMS, ge=0)
    trial_share: float = Field(D.TRIAL_SHARE, ge=0, le=1)
    trial_cpu_s: float = Field(D.TRIAL_CPU_S, ge=0)
    wake_every_s: float = Field(D.WAKE_EVERY_S, gt=0)

    @model_validator(mode="after")
    def _check(self) -> MarketSection:
        if self.r_min > self.r_max:
            raise ValueError(f"r_min ({self.r_min}) must not exceed r_max ({self.r_max})")
        w = self.slot_weights
        if any(x <= 0 for x in w) or any(a < b for a, b in itertools.pairwise(w)):
            raise ValueError("slot_weights must be positive and non-increasing")
        return self


class MembraneSection(_Section):
    backend: Literal["auto", "cgroup2", "hybrid", "cgroup1", "signals", "microvm"] = "auto"
    pids_max: int | None = Field(512, ge=1)
    memory_max_mb: float | None = Field(2048, gt=0)


class MicrovmSection(_Section):
    """The microVM tier (`[membrane] backend = "microvm"` or an agent's isolation = "microvm")."""

    accel: Literal["auto", "kvm", "tcg"] = "auto"  # auto: KVM only if a canary boots
    vmm: Literal["auto", "qemu", "firecracker"] = "auto"
    memory_mb: int = Field(256, ge=64, le=65536)  # guest RAM per agent
    pause: Literal["auto", "freeze", "qmp"] = "auto"  # auto: the cgroup freeze
    inner: Literal["auto", "cgroup2", "hybrid", "cgroup1", "signals"] = "auto"
    image_dir: str | None = None  # default: ~/.cache/maxwell/image
    boot_timeout_s: float = Field(120.0, gt=0)
    jail_vmm: bool = True  # the VMM runs under the agent's [jail]: its own uid, no capabilities


class MemtraceSection(_Section):
    backend: Literal["auto", "ebpf", "rss"] = "auto"


class JailSection(_Section):
    """Each agent as its own uid in its own namespaces (see maxwell.membrane._jail).

    mode: auto = the best this machine allows (bwrap when root and bubblewrap
    exist, else the same drop without namespaces when root, else the invoking
    user with no_new_privs + seccomp + rlimits); or force one of bwrap, drop,
    user; off = no jail.
    """

    mode: Literal["auto", "bwrap", "drop", "user", "off"] = "auto"
    # The uid/gid block agents are given uids from (default: the top 64 Ki of
    # systemd's container range); reserved with one lock file per uid in lock_dir.
    uid_base: int = Field(1_878_982_656, ge=1, lt=2**32 - 2)
    uid_count: int = Field(65_536, ge=1)
    lock_dir: str = "/run/maxwell/uids"
    host_net: bool = False  # true: agents share the host's network (default: loopback only)
    tmp_size_mb: int = Field(256, ge=1)  # the private /tmp tmpfs (bwrap level)
    ro_binds: list[str] = Field(default_factory=list)  # more host paths shown read-only
    env: list[str] = Field(default_factory=list)  # more variables passed from the supervisor
    nofile: int = Field(1024, ge=16)  # RLIMIT_NOFILE
    fsize_mb: int = Field(1024, ge=1)  # RLIMIT_FSIZE: the largest file an agent can write
    seccomp: bool = True

    @model_validator(mode="after")
    def _check(self) -> JailSection:
        if self.uid_base + self.uid_count > 2**32 - 2:
            raise ValueError("uid_base + uid_count must stay below 4294967294")
        if self.uid_base < 65_536:
            raise ValueError("uid_base must be >= 65536 (keep agents out of the host's users)")
        for p in self.ro_binds:
            if not os.path.isabs(p):
                raise ValueError(f"ro_binds entries must be absolute paths (got {p!r})")
        return self


class AgentSection(_Section):
    name: str = Field(min_length=1, max_length=64, pattern=r"^[A-Za-z0-9_.-]+$")
    builtin: Literal["scientist", "miner"] | None = None
    cmd: list[str] | None = None
    # A simulated model instead of a program (see MODELS): only `maxwell sim` runs it.
    model: ModelName | None = None
    funds: float = Field(ge=0)
    workers: int = Field(1, ge=1, le=64)
    # The bid that stands until the agent bids itself (and forever for a program that
    # never speaks): credits per core-second and slot-units. None: a built-in agent's
    # own opening bid from its options; 0 and 1 for any other program.
    default_bid: float | None = Field(None, ge=0)
    default_slots: int | None = Field(None, ge=0)
    # A sponsor's payment for output Maxwell cannot verify (credits per second, from
    # the bounty pool, booked as "grant"): how a config says "this agent is paid".
    income_per_s: float = Field(0.0, ge=0)
    options: dict[str, Any] = Field(default_factory=dict)  # passed to the builtin agent
    # "microvm": this agent runs in its own VM whatever [membrane] backend says;
    # "process": a plain process even under backend = "microvm". None: the backend's way.
    isolation: Literal["process", "microvm"] | None = None

    def argv(self) -> list[str]:
        """The command that starts this agent (a built-in's options are checked here)."""
        if self.cmd is not None:
            return list(self.cmd)
        if self.model is not None:
            raise ConfigError(f"agent {self.name!r} is a simulated model ({self.model}): "
                              "run this config with `maxwell sim`")
        from maxwell.agents import builtin_argv

        assert self.builtin is not None
        return builtin_argv(self.builtin, {"workers": self.workers, **self.options})

    def standing_bid(self) -> tuple[float, int]:
        """(price, slots) used until the agent bids: see default_bid."""
        price, slots = 0.0, 1
        if self.builtin is not None:
            from maxwell.agents import OPTIONS

            opts = OPTIONS[self.builtin]
            key = "initial_bid" if "initial_bid" in opts else "bid"
            price = float(self.options.get(key, opts[key].default))
            slots = int(self.options.get("slots", 0) or self.workers)
        elif self.model is not None:
            price = float(self.options.get("initial_bid", self.options.get("bid", price)))
            slots = int(self.options.get("slots", 0) or self.workers)
        if self.default_bid is not None:
            price = self.default_bid
        if self.default_slots is not None:
            slots = self.default_slots
        return price, slots

    @model_validator(mode="after")
    def _check(self) -> AgentSection:
        if sum(x is not None for x in (self.builtin, self.cmd, self.model)) != 1:
            raise ValueError("give exactly one of builtin = \"scientist\"|\"miner\", cmd = [...] "
                             "or model = \"...\" (simulated)")
        if self.cmd is not None and not self.cmd:
            raise ValueError("cmd must name a program")
        return self


class Config(_Section):
    run: RunSection = RunSection()
    physics: PhysicsSection = PhysicsSection()
    control: ControlSection = ControlSection()
    market: MarketSection = MarketSection()
    membrane: MembraneSection = MembraneSection()
    memtrace: MemtraceSection = MemtraceSection()
    jail: JailSection = JailSection()
    microvm: MicrovmSection = MicrovmSection()
    agents: list[AgentSection] = Field(min_length=1)

    @model_validator(mode="after")
    def _check(self) -> Config:
        counts = Counter(a.name for a in self.agents)  # linear: simulations have 10⁵ agents
        dup = {n for n, c in counts.items() if c > 1}
        if dup:
            raise ValueError(f"agent names must be unique (repeated: {', '.join(sorted(dup))})")
        return self

    def slots(self) -> int:
        return self.market.slots or (os.cpu_count() or 1)

    def with_run(self, **changes: Any) -> Config:
        """A copy with [run] keys replaced (e.g. policy, duration_s), validated again.

        Only the [run] section is re-validated (the rest is unchanged and was valid):
        a simulated config of 10⁵ agents would otherwise be validated twice."""
        run = {**self.run.model_dump(), **{k: v for k, v in changes.items() if v is not None}}
        try:
            section = RunSection.model_validate(run)
        except ValidationError:
            data = self.model_dump()
            data["run"] = run
            return validate(data)  # the same one-line error, naming the key
        return self.model_copy(update={"run": section})


def _loc(loc: tuple[int | str, ...]) -> str:
    out = ""
    for part in loc:
        out += f"[{part}]" if isinstance(part, int) else (f".{part}" if out else str(part))
    return out or "(top level)"


def validate(data: dict[str, Any], source: str = "config") -> Config:
    """Validate a parsed TOML document; raise ConfigError naming the first bad key."""
    try:
        cfg = Config.model_validate(data)
    except ValidationError as err:
        e = err.errors()[0]
        where = _loc(tuple(e["loc"]))
        if e["type"] == "extra_forbidden":
            raise ConfigError(f"{source}: unknown key '{where}' (check the spelling; "
                              "`maxwell config --print-default` lists the keys)") from None
        if e["type"] == "missing":
            raise ConfigError(f"{source}: missing key '{where}'") from None
        msg = str(e["msg"]).removeprefix("Value error, ")
        got = e.get("input")
        shown = "" if isinstance(got, dict | list) or got is None else f" (got {got!r})"
        raise ConfigError(f"{source}: {where}: {msg}{shown}") from None
    _check_programs(cfg, source)
    return cfg


def _check_programs(cfg: Config, source: str) -> None:
    for i, agent in enumerate(cfg.agents):
        if agent.cmd is not None:
            prog = agent.cmd[0]
            found = shutil.which(prog) if os.sep not in prog else (
                prog if os.access(prog, os.X_OK) else None
            )
            if found is None:
                raise ConfigError(
                    f"{source}: agents[{i}].cmd: program {prog!r} not found or not executable"
                )
        elif agent.builtin is not None:
            try:
                agent.argv()
            except (ValueError, TypeError) as err:
                raise ConfigError(f"{source}: agents[{i}].options: {err}") from None


def default_text() -> str:
    return resources.files("maxwell").joinpath("default.toml").read_text()


def default_config() -> Config:
    return validate(tomllib.loads(default_text()), "built-in config")


def load(path: str | Path) -> Config:
    p = Path(path)
    try:
        text = p.read_text()
    except OSError as err:
        raise ConfigError(f"{p}: cannot read: {err.strerror}") from None
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as err:
        raise ConfigError(f"{p}: not valid TOML: {err}") from None
    return validate(data, str(p))
