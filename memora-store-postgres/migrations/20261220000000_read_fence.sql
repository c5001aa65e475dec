-- Memora: per-learner write fence for reads served by a streaming replica.
--
-- Additive only (a new table); earlier migrations are never edited.
--
-- When a read replica is configured (MEMORA_DATABASE_READ_URL), a learner's
-- own reads may be answered by a replica that has not replayed their latest
-- write yet. Every write of a learner's trackers / review log
-- (`persist_batch`) and of their XP (`record_session`) bumps `seq` in the
-- SAME statement as the write, so the bump and the data become visible
-- together — on the primary at commit, on a replica when it replays that
-- commit. A learner-scoped read on the replica returns the replica's `seq`
-- for the learner from the same statement (one snapshot); the adapter
-- compares it with the primary's (a primary-key lookup run concurrently)
-- and re-reads from the primary when the replica is behind. A learner
-- without a row has seq 0 (never written).
--
-- One small row per learner who ever wrote; keyed by the learner, like
-- every other per-learner table (the future distribution column).
CREATE TABLE learner_fence (
    user_id text COLLATE "C" PRIMARY KEY,
    seq     bigint NOT NULL CHECK (seq > 0)
);
