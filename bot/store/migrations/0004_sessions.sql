-- jamgen schema 4: jam sessions (a thread per jam with shared tempo, key and meter) and reactions on their takes.
-- A take belongs to a session through jobs.session_id (a column since schema 1).

CREATE TABLE sessions (
    id TEXT PRIMARY KEY CHECK (length(id) = 8),
    guild_id INTEGER,                               -- NULL would be a DM (jams need a server; kept for symmetry)
    channel_id INTEGER NOT NULL,                    -- the text channel the jam was started in
    thread_id INTEGER NOT NULL UNIQUE,              -- the jam's thread: takes made in it belong to the session
    owner_id INTEGER NOT NULL,                      -- who started it (may end it and set its budget)
    theme TEXT NOT NULL,
    bpm INTEGER CHECK (bpm IS NULL OR bpm BETWEEN 20 AND 400),
    musical_key TEXT,                               -- e.g. 'A minor'
    time_signature TEXT,                            -- e.g. '4/4'
    model TEXT,                                     -- default model of takes made in the thread
    budget_ms INTEGER CHECK (budget_ms IS NULL OR budget_ms >= 0),
    state TEXT NOT NULL DEFAULT 'open' CHECK (state IN ('open', 'ended')),
    header_message_id INTEGER,                      -- the pinned header in the thread
    extra TEXT NOT NULL DEFAULT '{}' CHECK (json_valid(extra)),
    created_at TEXT NOT NULL,
    ended_at TEXT
);

CREATE INDEX sessions_by_guild ON sessions (guild_id, state);
CREATE INDEX jobs_by_session ON jobs (session_id, seq);

-- One row per (message, member, emoji) on a delivered session take; counted for the jam's "most-reacted".
CREATE TABLE take_reactions (
    message_id INTEGER NOT NULL,
    user_id INTEGER NOT NULL,
    emoji TEXT NOT NULL,
    job_id TEXT NOT NULL REFERENCES jobs (id),
    created_at TEXT NOT NULL,
    PRIMARY KEY (message_id, user_id, emoji)
);

CREATE INDEX take_reactions_by_job ON take_reactions (job_id);
