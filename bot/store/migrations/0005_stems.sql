-- jamgen schema 5: stems. A stems job (jobs.mode = 'stems') splits one take, or an attachment, into
-- drums, bass, other and vocals; its files are its outputs like any job's, and each stem gets a row here
-- with where it came from, so a second request for the same take's stems is answered from these rows.

CREATE TABLE stems (
    job_id TEXT NOT NULL REFERENCES jobs (id),      -- the stems job that made it
    stem TEXT NOT NULL,                             -- 'drums', 'bass', 'other' or 'vocals'
    position INTEGER NOT NULL CHECK (position >= 0),-- its place among the job's outputs
    source_job_id TEXT REFERENCES jobs (id),        -- the take it was split from (NULL for an attachment)
    source_take INTEGER NOT NULL DEFAULT 0 CHECK (source_take >= 0),
    path TEXT NOT NULL,
    created_at TEXT NOT NULL,
    PRIMARY KEY (job_id, stem)
);

CREATE INDEX stems_by_source ON stems (source_job_id, source_take);
