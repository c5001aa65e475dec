-- Memora: a lesson play and its tracker updates as one outcome.
--
-- Additive only (a new table); earlier migrations are never edited.
--
-- `submit_session` writes a play's gameplay session (XP, subject score) and
-- the tracker batch of its interactions in ONE transaction: the session row
-- and a row here. The batch stays here, "pending", until it has been handed
-- to the durable write queue (or persisted directly), then the row is
-- deleted. A crash between the two steps therefore leaves a pending row
-- that a retry of the play, or the server's recovery job, hands over —
-- never a play with XP but no trackers, or trackers with no play.
--
-- `records` is the batch in the adapter's own JSON encoding (see
-- `rows::encode_records`); it is read back whole, never queried into.
CREATE TABLE pending_tracker_batches (
    job_id       text COLLATE "C" PRIMARY KEY,
    -- The gameplay session the batch belongs to (same transaction).
    session_id   text COLLATE "C" NOT NULL,
    user_id      text COLLATE "C" NOT NULL,
    -- The session's created_at: the recovery job picks batches older than
    -- a grace period, oldest first.
    recorded_at  timestamptz NOT NULL,
    records      jsonb NOT NULL
);
CREATE INDEX pending_tracker_batches_recorded_idx
    ON pending_tracker_batches (recorded_at, job_id);
