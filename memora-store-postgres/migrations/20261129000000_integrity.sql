-- Memora: answer integrity (served-set binding) and deferred time-zone changes.
--
-- Applied after 20250101000000_initial_schema.sql, which is never edited.
-- Everything here is additive: new nullable columns (a metadata-only change,
-- no table rewrite) and a new table, so existing rows and readers are
-- unaffected.

-- ───────────────────────── pending time-zone change ─────────────────────────

-- The core's `PlayerProfile::pending_zone`: a time zone / rollover change
-- that takes effect at `pending_zone_at` (the start of the learner's next
-- day under the zone in force when it was requested), so a zone switch can
-- never yield a second "today". The three columns are NULL together (no
-- change pending) or set together; the CHECKs below make a half-written
-- change impossible. Validating them scans player_profiles once, which is
-- cheap: every row is NULL in the new columns.
ALTER TABLE player_profiles
    ADD COLUMN pending_time_zone     text,
    ADD COLUMN pending_rollover_hour smallint
        CHECK (pending_rollover_hour BETWEEN 0 AND 23),
    ADD COLUMN pending_zone_at       timestamptz,
    ADD CONSTRAINT player_profiles_pending_zone_whole
        CHECK (num_nulls(pending_time_zone, pending_rollover_hour, pending_zone_at) IN (0, 3));

-- ───────────────────────── served-set ledger ─────────────────────────

-- What the server served to a learner and how it was answered: the durable
-- `ServedLedger` (the core falls back to it when Redis is down, so binding
-- answers to what was served holds in safe mode and across processes). One
-- row per (player, season, item); the item key is the core's (`q:<question>`
-- or `l:<lesson>`). The adapter only stores and compares; every rule (what
-- may be answered, what earns XP) lives in the core.
--
-- The player and season lead the primary key, as on every learner table,
-- so the table can later be partitioned or distributed by them. It is not
-- partitioned now: rows are short-lived (deleted once past retain_until by
-- the hourly purge) and every access is a primary-key probe.
CREATE TABLE served_items (
    user_id           text COLLATE "C" NOT NULL,
    season            text COLLATE "C" NOT NULL,
    item              text COLLATE "C" NOT NULL,
    -- When the item was last served: also the compare-and-set token of
    -- `commit` (microseconds, exactly as the core truncates them).
    served_at         timestamptz NOT NULL,
    -- An answer is accepted until then.
    answerable_until  timestamptz NOT NULL,
    -- The row is forgotten after this (lookups ignore it, the purge deletes it).
    retain_until      timestamptz NOT NULL,
    -- The current serving has been answered (reset by every re-serving).
    answered          boolean NOT NULL DEFAULT false,
    -- The most recent accepted answer (`AnswerReceipt`), kept across
    -- re-servings so a replayed review id is recognised. All four columns
    -- are NULL (no receipt) or all are set.
    review_id         text COLLATE "C",
    job_id            text COLLATE "C",
    xp                bigint,
    answered_at       timestamptz,
    -- Learner day on which the item last earned XP.
    xp_day            date,
    PRIMARY KEY (user_id, season, item),
    CONSTRAINT served_items_receipt_whole
        CHECK (num_nulls(review_id, job_id, xp, answered_at) IN (0, 4))
);
-- The hourly purge deletes by retain_until.
CREATE INDEX served_items_retain_idx ON served_items (retain_until);
