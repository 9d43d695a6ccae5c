-- jamgen schema 1: jobs, per-server settings, role tiers, per-member quota settings, block list.
-- Each migration runs in one transaction together with `PRAGMA user_version = <its number>`.

CREATE TABLE jobs (
    seq INTEGER PRIMARY KEY AUTOINCREMENT,          -- queue order; never reused
    id TEXT NOT NULL UNIQUE CHECK (length(id) = 8),
    user_id INTEGER NOT NULL,
    guild_id INTEGER,                               -- NULL in direct messages
    channel_id INTEGER NOT NULL,
    interaction_id INTEGER,                         -- ids only: interaction tokens never reach the disk
    request_message_id INTEGER,
    reply_to_message_id INTEGER,
    progress_message_id INTEGER,
    delivered_message_ids TEXT NOT NULL DEFAULT '[]' CHECK (json_valid(delivered_message_ids)),
    mode TEXT NOT NULL,
    model TEXT NOT NULL,
    prompt TEXT NOT NULL DEFAULT '',
    params TEXT NOT NULL DEFAULT '{}' CHECK (json_valid(params)),
    takes INTEGER NOT NULL DEFAULT 1 CHECK (takes >= 1),
    seed INTEGER,
    parent_id TEXT REFERENCES jobs (id),
    session_id TEXT,                                -- jam sessions (a later migration adds their table)
    state TEXT NOT NULL DEFAULT 'queued'
        CHECK (state IN ('queued', 'running', 'rendered', 'delivered', 'failed', 'cancelled')),
    attempts INTEGER NOT NULL DEFAULT 0 CHECK (attempts >= 0),
    error TEXT,                                     -- user-facing sentence
    outputs TEXT NOT NULL DEFAULT '[]' CHECK (json_valid(outputs)),
    cost_ms INTEGER NOT NULL DEFAULT 0 CHECK (cost_ms >= 0),
    priority INTEGER NOT NULL DEFAULT 0,
    created_at TEXT NOT NULL,                       -- ISO 8601, UTC
    started_at TEXT,
    rendered_at TEXT,
    delivered_at TEXT,
    finished_at TEXT
);

CREATE INDEX jobs_by_state ON jobs (state, seq);
CREATE INDEX jobs_by_user ON jobs (user_id, seq);
CREATE INDEX jobs_by_guild_state ON jobs (guild_id, state);
CREATE INDEX jobs_by_parent ON jobs (parent_id);

CREATE TABLE guild_settings (
    guild_id INTEGER PRIMARY KEY,
    allowed_channel_ids TEXT NOT NULL DEFAULT '[]' CHECK (json_valid(allowed_channel_ids)),
    default_model TEXT,
    enabled_models TEXT NOT NULL DEFAULT '[]' CHECK (json_valid(enabled_models)),
    max_duration INTEGER CHECK (max_duration IS NULL OR max_duration > 0),
    max_takes INTEGER CHECK (max_takes IS NULL OR max_takes > 0),
    remix_by_reply INTEGER NOT NULL DEFAULT 1 CHECK (remix_by_reply IN (0, 1)),
    default_budget_ms INTEGER CHECK (default_budget_ms IS NULL OR default_budget_ms >= 0),
    updated_at TEXT NOT NULL
);

CREATE TABLE role_tiers (
    guild_id INTEGER NOT NULL,
    role_id INTEGER NOT NULL,
    budget_ms INTEGER NOT NULL CHECK (budget_ms >= 0),
    PRIMARY KEY (guild_id, role_id)
);

-- Quota settings per member and server; guild_id 0 stands for direct messages.
CREATE TABLE member_quota (
    user_id INTEGER NOT NULL,
    guild_id INTEGER NOT NULL,
    budget_ms INTEGER CHECK (budget_ms IS NULL OR budget_ms >= 0),
    unlimited INTEGER NOT NULL DEFAULT 0 CHECK (unlimited IN (0, 1)),
    PRIMARY KEY (user_id, guild_id)
);

CREATE TABLE blocks (
    kind TEXT NOT NULL CHECK (kind IN ('user', 'guild')),
    target_id INTEGER NOT NULL,
    reason TEXT NOT NULL DEFAULT '',
    created_at TEXT NOT NULL,
    PRIMARY KEY (kind, target_id)
);
