-- Memora: progress of background jobs (season cache rebuilds), shared by
-- every server process.
--
-- Additive only (a new table); earlier migrations are never edited.
--
-- Before this table a rebuild's progress lived in the memory of the process
-- running it: another process behind the same load balancer answered
-- "job not found", and a process that died mid-rebuild left nothing to
-- resume from. The record is written after every page of the rebuild (a
-- heartbeat: `updated_at`), so any process can report it, and the core calls
-- a `running` job whose heartbeat stopped "stale" and lets any process take
-- it over from `resume_after`. PostgreSQL rather than Redis: the record must
-- survive a restart of either, and rebuilds are exactly what runs after the
-- cache was lost.
CREATE TABLE job_progress (
    job_id        text COLLATE "C" PRIMARY KEY,
    season        text COLLATE "C" NOT NULL,
    estimated     bigint NOT NULL CHECK (estimated >= 0),
    processed     bigint NOT NULL CHECK (processed >= 0),
    users         bigint NOT NULL CHECK (users >= 0),
    -- `running`, `completed` or `failed: <reason>`.
    status        text NOT NULL CHECK (status <> ''),
    -- Resume point: the last (user, question) of the season whose user's
    -- schedule was fully written; both NULL before the first user, or both
    -- set (the season is the job's).
    resume_user     text COLLATE "C",
    resume_question text COLLATE "C",
    -- The process running the job (or that ran it last). Writes by any
    -- other process are refused (`save_progress` compares it), so a process
    -- thought dead cannot overwrite the progress of the one that took over.
    owner         text NOT NULL,
    started_at    timestamptz NOT NULL,
    -- Heartbeat: the last progress write. Also the compare-and-set token of
    -- a takeover (`claim_progress`).
    updated_at    timestamptz NOT NULL,
    CONSTRAINT job_progress_resume_whole
        CHECK (num_nulls(resume_user, resume_question) IN (0, 2))
);
