-- jamgen schema 2: the quota ledger, ETA statistics, and job bookkeeping columns.

ALTER TABLE jobs ADD COLUMN extra TEXT NOT NULL DEFAULT '{}' CHECK (json_valid(extra));
ALTER TABLE jobs ADD COLUMN outputs_cleared_at TEXT;

-- Every debit, refund, grant and reset is one row. Amounts are milliseconds of audio:
-- debits negative, everything else positive. A member's balance for a UTC day is
-- budget + SUM(amount_ms) over that day's rows (see docs/STORE.md).
CREATE TABLE quota_ledger (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    user_id INTEGER NOT NULL,
    guild_id INTEGER NOT NULL,                      -- 0 for direct messages
    day TEXT NOT NULL CHECK (length(day) = 10),     -- UTC day YYYY-MM-DD the row counts against
    kind TEXT NOT NULL CHECK (kind IN ('debit', 'refund', 'grant', 'reset')),
    amount_ms INTEGER NOT NULL,
    job_id TEXT REFERENCES jobs (id),
    actor_id INTEGER,
    note TEXT,
    created_at TEXT NOT NULL,
    CHECK ((kind = 'debit') = (amount_ms < 0) OR amount_ms = 0),
    CHECK ((kind IN ('debit', 'refund')) = (job_id IS NOT NULL))
);

-- One debit and at most one refund per job: no job is charged twice, refunds are idempotent.
CREATE UNIQUE INDEX quota_ledger_once_per_job ON quota_ledger (job_id, kind) WHERE job_id IS NOT NULL;
CREATE INDEX quota_ledger_by_member_day ON quota_ledger (user_id, guild_id, day);

-- Exponential moving average of seconds per generation step, per model and batch size.
CREATE TABLE eta_stats (
    model TEXT NOT NULL,
    batch_size INTEGER NOT NULL CHECK (batch_size >= 1),
    seconds_per_step REAL NOT NULL CHECK (seconds_per_step >= 0),
    samples INTEGER NOT NULL DEFAULT 1,
    updated_at TEXT NOT NULL,
    PRIMARY KEY (model, batch_size)
);

CREATE INDEX jobs_by_rendered ON jobs (rendered_at) WHERE outputs <> '[]';
