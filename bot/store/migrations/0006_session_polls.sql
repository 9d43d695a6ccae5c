-- jamgen schema 6: best-take polls of a jam. `/session vote` posts a Discord poll of the jam's takes; its
-- message is stored here with the takes in answer order, and when it closes the final counts and the winner.
-- The winner is copied into sessions.extra ('best_take') in the same transaction, for the tree and the summary.

CREATE TABLE session_polls (
    message_id INTEGER PRIMARY KEY,                 -- the poll's message in the jam's thread
    session_id TEXT NOT NULL REFERENCES sessions (id),
    channel_id INTEGER NOT NULL,                    -- where the poll was posted (the thread)
    job_ids TEXT NOT NULL CHECK (json_valid(job_ids)),  -- the takes in answer order (answer n is job_ids[n - 1])
    ends_at TEXT NOT NULL,                          -- the poll's expiry as Discord gave it
    state TEXT NOT NULL DEFAULT 'open' CHECK (state IN ('open', 'closed')),
    counts TEXT CHECK (counts IS NULL OR json_valid(counts)),  -- final votes per job id
    winner_job_id TEXT REFERENCES jobs (id),        -- NULL when closed without votes
    winner_votes INTEGER NOT NULL DEFAULT 0 CHECK (winner_votes >= 0),
    announced_message_id INTEGER,                   -- the 🏆 announcement
    created_at TEXT NOT NULL,
    closed_at TEXT
);

-- At most one open poll per jam, whoever asks at the same time.
CREATE UNIQUE INDEX session_polls_one_open ON session_polls (session_id) WHERE state = 'open';
CREATE INDEX session_polls_by_state ON session_polls (state, ends_at);
