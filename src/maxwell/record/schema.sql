-- Maxwell run database, schema_version 3 (2 added runs.jail_level; 3 added the ticks
-- columns foreign_cpu_s, foreign_energy_j, capacity_cores; older versions read the same,
-- missing columns as 0). One file per run (WAL mode).
-- Credits are stored as REAL credits (the ledger keeps integer micro-credits;
-- values here are those divided by 1e6). Times t_s are seconds since run start.

CREATE TABLE IF NOT EXISTS runs (
    id INTEGER PRIMARY KEY,
    started_at TEXT NOT NULL,          -- ISO 8601, UTC
    ended_at TEXT,                     -- NULL while the run is live
    policy TEXT NOT NULL,              -- 'cfs' (shadow) or 'maxwell' (enforced)
    duration_s REAL NOT NULL,          -- requested duration
    tick_s REAL NOT NULL,
    config TEXT NOT NULL,              -- JSON: the validated experiment config
    host TEXT NOT NULL,                -- JSON: machine facts and supervisor overhead
    energy_source TEXT NOT NULL,
    energy_measured INTEGER NOT NULL,  -- 1 measured, 0 modelled
    temp_source TEXT NOT NULL,
    temp_measured INTEGER NOT NULL,
    memtrace_source TEXT NOT NULL,
    memtrace_exact INTEGER NOT NULL,   -- 1 exact count, 0 estimate (lower bound)
    membrane_backend TEXT NOT NULL,
    gains TEXT NOT NULL,               -- JSON: PID gains and where they came from
    setpoint_c REAL NOT NULL,
    landauer_lambda REAL NOT NULL,
    schema_version INTEGER NOT NULL,
    jail_level TEXT                    -- bwrap | drop | user | off (see maxwell doctor); NULL: unknown
);

CREATE TABLE IF NOT EXISTS ticks (
    run_id INTEGER NOT NULL REFERENCES runs(id),
    t_s REAL NOT NULL,
    temp_c REAL NOT NULL,
    power_w REAL NOT NULL,
    energy_j REAL NOT NULL,            -- cumulative
    idle_energy_j REAL NOT NULL,       -- cumulative: idle power and the run's own overhead (neither agents' nor foreign)
    price REAL NOT NULL,               -- reserve price, credits per core-second
    busy_cores REAL NOT NULL,
    pid_p REAL NOT NULL,
    pid_i REAL NOT NULL,
    pid_d REAL NOT NULL,
    foreign_cpu_s REAL NOT NULL DEFAULT 0,     -- cumulative CPU of processes outside the run
    foreign_energy_j REAL NOT NULL DEFAULT 0,  -- cumulative, their share of energy_j (never billed)
    capacity_cores REAL NOT NULL DEFAULT 0     -- cores offered for sale next interval
);

CREATE TABLE IF NOT EXISTS agent_ticks (
    run_id INTEGER NOT NULL REFERENCES runs(id),
    t_s REAL NOT NULL,
    agent TEXT NOT NULL,
    state TEXT NOT NULL,               -- running | paused | dead
    cpu_s REAL NOT NULL,               -- cumulative CPU seconds of the agent's whole tree
    slots INTEGER NOT NULL,            -- slot-units won for the next interval
    bid REAL NOT NULL,                 -- credits per core-second
    rent REAL NOT NULL,                -- credits this tick
    tax REAL NOT NULL,                 -- credits this tick (Landauer)
    reward REAL NOT NULL,              -- credits this tick (bounties)
    fine REAL NOT NULL,                -- credits this tick
    balance REAL NOT NULL,             -- credits after this tick
    bytes_freed INTEGER NOT NULL,      -- cumulative
    work_units INTEGER NOT NULL,       -- cumulative, verified
    energy_j REAL NOT NULL             -- cumulative, attributed
);

CREATE TABLE IF NOT EXISTS events (
    run_id INTEGER NOT NULL REFERENCES runs(id),
    t_s REAL NOT NULL,
    kind TEXT NOT NULL,                -- spawn, pause, resume, apoptosis, strike, fraud, exit, error, ...
    agent TEXT,
    detail TEXT NOT NULL               -- JSON
);

CREATE TABLE IF NOT EXISTS transfers (
    run_id INTEGER NOT NULL REFERENCES runs(id),
    t_s REAL NOT NULL,
    src TEXT NOT NULL,
    dst TEXT NOT NULL,
    amount REAL NOT NULL,              -- credits
    reason TEXT NOT NULL               -- grant, rent, landauer_tax, bounty, fine
);

CREATE INDEX IF NOT EXISTS ticks_t ON ticks(run_id, t_s);
CREATE INDEX IF NOT EXISTS agent_ticks_t ON agent_ticks(run_id, t_s, agent);
CREATE INDEX IF NOT EXISTS events_t ON events(run_id, t_s);
CREATE INDEX IF NOT EXISTS transfers_t ON transfers(run_id, t_s);
