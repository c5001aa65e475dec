-- Memora initial schema.
--
-- Conventions:
-- * Every identifier column is `text COLLATE "C"`: ids are compared and
--   ordered byte-wise, exactly like Rust's `String` ordering, so keyset
--   pagination and tie-breaks (leaderboards, question order) agree with the
--   in-memory reference adapter whatever the database's default collation.
-- * Large learner tables (memory_tracker, review_log) are LIST-partitioned by
--   season and carry the season in every primary / unique key (a partitioned
--   table can only enforce uniqueness on keys containing the partition
--   column). There is deliberately NO default partition: a row for a season
--   without a partition fails with "no partition of relation … found for
--   row", which the adapter reports as `Rejected` instead of silently
--   routing it somewhere.
-- * Few foreign keys: the core validates references before writing, and the
--   catalog import upserts entities in any order. Uniqueness and state rules
--   that protect integrity under concurrency ARE enforced here.

-- ───────────────────────── users and credentials ─────────────────────────

CREATE TABLE users (
    id          text COLLATE "C" PRIMARY KEY,
    full_name   text    NOT NULL,
    -- Role names as the core spells them ("Student", "System Manager").
    roles       text[]  NOT NULL DEFAULT '{}',
    enabled     boolean NOT NULL DEFAULT true,
    created_at  timestamptz NOT NULL DEFAULT now()
);

CREATE TABLE password_hashes (
    user_id     text COLLATE "C" PRIMARY KEY,
    hash        text NOT NULL,
    updated_at  timestamptz NOT NULL DEFAULT now()
);

-- Login sessions are stored under the hash of the session id, never the id.
CREATE TABLE login_sessions (
    sid_hash    text PRIMARY KEY,
    user_id     text COLLATE "C" NOT NULL,
    expires_at  timestamptz NOT NULL
);
CREATE INDEX login_sessions_user_idx ON login_sessions (user_id);

CREATE TABLE api_keys (
    key          text PRIMARY KEY,
    user_id      text COLLATE "C" NOT NULL,
    secret_hash  text NOT NULL
);
CREATE INDEX api_keys_user_idx ON api_keys (user_id);

-- ───────────────────────── academic structure ─────────────────────────

CREATE TABLE grades (
    id             text COLLATE "C" PRIMARY KEY,
    name           text NOT NULL,
    valid_streams  text[] NOT NULL DEFAULT '{}'
);

CREATE TABLE streams (
    id    text COLLATE "C" PRIMARY KEY,
    name  text NOT NULL
);

CREATE TABLE academic_plans (
    id         text COLLATE "C" PRIMARY KEY,
    title      text NOT NULL,
    grade_id   text COLLATE "C" NOT NULL,
    stream_id  text COLLATE "C",
    season_id  text COLLATE "C" NOT NULL,
    -- Bumped by every import so clients can cache plan JSON by version.
    version    bigint NOT NULL DEFAULT 0
);

CREATE TABLE plan_subjects (
    plan_id       text COLLATE "C" NOT NULL REFERENCES academic_plans (id) ON DELETE CASCADE,
    position      integer NOT NULL,
    subject_id    text COLLATE "C" NOT NULL,
    display_name  text,
    is_mandatory  boolean NOT NULL,
    -- UnitSelection in the core's content format (all_units / specific_units).
    selection     jsonb NOT NULL,
    PRIMARY KEY (plan_id, position),
    UNIQUE (plan_id, subject_id)
);

-- ───────────────────────── content ─────────────────────────

CREATE TABLE subjects (
    id            text COLLATE "C" PRIMARY KEY,
    title         text NOT NULL,
    icon          text,
    is_published  boolean NOT NULL,
    is_paid       boolean NOT NULL
);

CREATE TABLE tracks (
    id                  text COLLATE "C" PRIMARY KEY,
    subject_id          text COLLATE "C" NOT NULL,
    name                text NOT NULL,
    is_default          boolean NOT NULL,
    unlock_level        bigint  NOT NULL,
    icon                text,
    description         text,
    is_linear           boolean NOT NULL,
    is_published        boolean NOT NULL,
    is_paid             boolean NOT NULL,
    is_sold_separately  boolean NOT NULL
);

CREATE TABLE units (
    id                text COLLATE "C" PRIMARY KEY,
    subject_id        text COLLATE "C" NOT NULL,
    track_id          text COLLATE "C" NOT NULL,
    title             text NOT NULL,
    ord               integer NOT NULL,
    structure         text NOT NULL CHECK (structure IN ('topic_based', 'lesson_based')),
    is_linear_topics  boolean NOT NULL,
    is_free_preview   boolean NOT NULL,
    is_published      boolean NOT NULL
);

CREATE TABLE topics (
    id               text COLLATE "C" PRIMARY KEY,
    unit_id          text COLLATE "C" NOT NULL,
    title            text NOT NULL,
    description      text,
    ord              integer NOT NULL,
    is_linear        boolean NOT NULL,
    is_free_preview  boolean NOT NULL,
    is_published     boolean NOT NULL
);

CREATE TABLE lessons (
    id            text COLLATE "C" PRIMARY KEY,
    title         text NOT NULL,
    unit_id       text COLLATE "C" NOT NULL,
    topic_id      text COLLATE "C",
    xp_reward     bigint  NOT NULL,
    ord           integer NOT NULL,
    is_published  boolean NOT NULL
);

-- Stage configs are a content format owned by the core (serde): stored as
-- JSONB ({"type": …, "config": …}) rather than one table per stage type.
CREATE TABLE stages (
    id         text COLLATE "C" PRIMARY KEY,
    lesson_id  text COLLATE "C" NOT NULL REFERENCES lessons (id) ON DELETE CASCADE,
    position   integer NOT NULL,
    title      text NOT NULL,
    config     jsonb NOT NULL
);
CREATE INDEX stages_lesson_idx ON stages (lesson_id, position);

-- ───────────────────────── seasons ─────────────────────────

CREATE TABLE seasons (
    id                 text COLLATE "C" PRIMARY KEY,
    title              text NOT NULL,
    start_date         date NOT NULL,
    end_date           date NOT NULL,
    is_active          boolean NOT NULL,
    auto_archive       boolean NOT NULL,
    enable_cache       boolean NOT NULL,
    scheduler          text NOT NULL CHECK (scheduler IN ('ladder', 'fsrs6')),
    desired_retention  double precision NOT NULL,
    archived           boolean NOT NULL,
    CHECK (end_date >= start_date)
);

-- ───────────────────────── commerce ─────────────────────────

CREATE TABLE sales_items (
    id                text COLLATE "C" PRIMARY KEY,
    name              text NOT NULL,
    description       text,
    price             bigint NOT NULL,
    discounted_price  bigint,
    image             text,
    sku               text,
    season_id         text COLLATE "C" NOT NULL,
    target_grade      text COLLATE "C",
    target_streams    text[] NOT NULL DEFAULT '{}'
);
CREATE INDEX sales_items_price_idx ON sales_items (price, id);

-- What a bundle opens, in order: kind is 'subject' or 'track'.
CREATE TABLE sales_item_contents (
    item_id    text COLLATE "C" NOT NULL REFERENCES sales_items (id) ON DELETE CASCADE,
    position   integer NOT NULL,
    kind       text NOT NULL CHECK (kind IN ('subject', 'track')),
    target_id  text COLLATE "C" NOT NULL,
    PRIMARY KEY (item_id, position)
);

CREATE TABLE purchase_requests (
    id              text COLLATE "C" PRIMARY KEY,
    user_id         text COLLATE "C" NOT NULL,
    item_id         text COLLATE "C" NOT NULL,
    status          text NOT NULL CHECK (status IN ('Pending', 'Approved', 'Rejected')),
    price           bigint NOT NULL,
    payment_method  text,
    transaction_id  text,
    created_at      timestamptz NOT NULL,
    decided_at      timestamptz,
    decided_by      text COLLATE "C"
);
-- At most one pending request per (user, item): the database, not a
-- check-then-insert in the service, guarantees it under concurrency.
CREATE UNIQUE INDEX purchase_requests_one_pending
    ON purchase_requests (user_id, item_id) WHERE status = 'Pending';
CREATE INDEX purchase_requests_user_idx ON purchase_requests (user_id, created_at DESC);
CREATE INDEX purchase_requests_created_idx ON purchase_requests (created_at DESC, id DESC);

CREATE TABLE subscriptions (
    id              text COLLATE "C" PRIMARY KEY,
    user_id         text COLLATE "C" NOT NULL,
    season_id       text COLLATE "C" NOT NULL,
    kind            text NOT NULL CHECK (kind IN ('global', 'specific')),
    status          text NOT NULL CHECK (status IN ('active', 'suspended', 'expired')),
    -- One subscription per purchase request (double approval impossible).
    source_request  text COLLATE "C" UNIQUE,
    created_at      timestamptz NOT NULL
);
CREATE INDEX subscriptions_user_idx ON subscriptions (user_id);

-- Access rows of a subscription (kind 'subject' or 'track').
CREATE TABLE subscription_grants (
    subscription_id  text COLLATE "C" NOT NULL REFERENCES subscriptions (id) ON DELETE CASCADE,
    position         integer NOT NULL,
    kind             text NOT NULL CHECK (kind IN ('subject', 'track')),
    target_id        text COLLATE "C" NOT NULL,
    PRIMARY KEY (subscription_id, position)
);

-- ───────────────────────── players ─────────────────────────

CREATE TABLE player_profiles (
    user_id        text COLLATE "C" PRIMARY KEY,
    full_name      text NOT NULL,
    avatar         text,
    total_xp       bigint NOT NULL DEFAULT 0 CHECK (total_xp >= 0),
    gems           bigint NOT NULL DEFAULT 0,
    grade_id       text COLLATE "C",
    stream_id      text COLLATE "C",
    season_id      text COLLATE "C",
    time_zone      text NOT NULL DEFAULT 'UTC',
    rollover_hour  smallint NOT NULL DEFAULT 4 CHECK (rollover_hour BETWEEN 0 AND 23)
);
-- Global all-time leaderboard.
CREATE INDEX player_profiles_xp_idx ON player_profiles (total_xp DESC, user_id);

CREATE TABLE devices (
    user_id      text COLLATE "C" NOT NULL,
    device_id    text NOT NULL,
    name         text,
    last_active  timestamptz,
    PRIMARY KEY (user_id, device_id)
);

-- Subject leaderboard source (upserted atomically by record_session).
CREATE TABLE subject_scores (
    user_id     text COLLATE "C" NOT NULL,
    subject_id  text COLLATE "C" NOT NULL,
    total_xp    bigint NOT NULL DEFAULT 0,
    PRIMARY KEY (user_id, subject_id)
);
CREATE INDEX subject_scores_board_idx ON subject_scores (subject_id, total_xp DESC, user_id);

-- The activity ledger: streaks, weekly activity, period leaderboards,
-- quests and lesson completion are all derived from it.
CREATE TABLE gameplay_sessions (
    id          text COLLATE "C" PRIMARY KEY,
    user_id     text COLLATE "C" NOT NULL,
    kind        text NOT NULL CHECK (kind IN ('lesson', 'review', 'quest_reward')),
    lesson_id   text COLLATE "C",
    subject_id  text COLLATE "C",
    topic_id    text COLLATE "C",
    xp_earned   bigint NOT NULL CHECK (xp_earned >= 0),
    score       bigint NOT NULL,
    completed   boolean NOT NULL,
    created_at  timestamptz NOT NULL,
    -- The learner's local calendar day of created_at (computed by the core
    -- with the learner's time zone and rollover hour).
    local_day   date NOT NULL,
    raw_data    jsonb NOT NULL DEFAULT '{}'
);
CREATE INDEX gameplay_sessions_user_day_idx ON gameplay_sessions (user_id, local_day);
-- Period leaderboards scan a window of days.
CREATE INDEX gameplay_sessions_day_idx ON gameplay_sessions (local_day, user_id);
CREATE INDEX gameplay_sessions_completed_idx
    ON gameplay_sessions (user_id, lesson_id) WHERE completed;

CREATE TABLE fsrs_params (
    user_id            text COLLATE "C" PRIMARY KEY,
    params             double precision[] NOT NULL,
    fitted_on_reviews  bigint NOT NULL,
    updated_at         timestamptz NOT NULL DEFAULT now()
);

-- ───────────────────────── learner memory ─────────────────────────

-- One row per (season, player, question). Card state columns mirror the
-- core's CardState; `mastery` is the bucket code computed by the core at
-- write time (NULL = no bucket) so mastery counts are a plain GROUP BY.
CREATE TABLE memory_tracker (
    season          text COLLATE "C" NOT NULL,
    user_id         text COLLATE "C" NOT NULL,
    question_id     text COLLATE "C" NOT NULL,
    subject_id      text COLLATE "C",
    topic_id        text COLLATE "C",
    scheduler       text NOT NULL CHECK (scheduler IN ('ladder', 'fsrs6')),
    phase           smallint NOT NULL CHECK (phase BETWEEN 0 AND 3),
    step            bigint NOT NULL,
    stability       double precision NOT NULL,
    difficulty      double precision NOT NULL,
    reps            bigint NOT NULL,
    lapses          bigint NOT NULL,
    last_review     timestamptz,
    due             timestamptz NOT NULL,
    scheduled_days  bigint NOT NULL,
    mastery         smallint CHECK (mastery BETWEEN 0 AND 2),
    PRIMARY KEY (season, user_id, question_id)
) PARTITION BY LIST (season);
-- Safe-mode due query and every per-player read: (player, season, due).
CREATE INDEX memory_tracker_user_due_idx ON memory_tracker (user_id, season, due);

-- Append-only log, one row per answer. Unique per (season, review_id)
-- because a partitioned table cannot have a global unique index; global
-- idempotency is provided by review_ids below.
CREATE TABLE review_log (
    season          text COLLATE "C" NOT NULL,
    review_id       text COLLATE "C" NOT NULL,
    user_id         text COLLATE "C" NOT NULL,
    question_id     text COLLATE "C" NOT NULL,
    source          text NOT NULL CHECK (source IN ('review', 'lesson')),
    grade           smallint NOT NULL CHECK (grade BETWEEN 1 AND 4),
    is_correct      boolean NOT NULL,
    duration_ms     bigint NOT NULL,
    attempts        bigint NOT NULL,
    reviewed_at     timestamptz NOT NULL,
    elapsed_days    bigint NOT NULL,
    scheduler       text NOT NULL CHECK (scheduler IN ('ladder', 'fsrs6')),
    -- state after the answer
    s_kind          text NOT NULL CHECK (s_kind IN ('ladder', 'fsrs6')),
    s_phase         smallint NOT NULL,
    s_step          bigint NOT NULL,
    s_stability     double precision NOT NULL,
    s_difficulty    double precision NOT NULL,
    s_reps          bigint NOT NULL,
    s_lapses        bigint NOT NULL,
    s_last_review   timestamptz,
    s_due           timestamptz NOT NULL,
    s_scheduled_days bigint NOT NULL,
    PRIMARY KEY (season, review_id)
) PARTITION BY LIST (season);
CREATE INDEX review_log_user_idx ON review_log (user_id, reviewed_at, review_id);

-- Global idempotency key of the review log. Small and unpartitioned (one
-- short text per answer), it makes a review id unique across seasons and
-- answers has_review(review_id) with a single index probe. persist_batch
-- inserts here first and only logs the review ids it newly claimed.
CREATE TABLE review_ids (
    review_id  text COLLATE "C" PRIMARY KEY,
    season     text COLLATE "C" NOT NULL
);

-- Archived trackers (whole seasons moved out of memory_tracker).
CREATE TABLE archived_tracker (
    id                     bigserial PRIMARY KEY,
    season                 text COLLATE "C" NOT NULL,
    user_id                text COLLATE "C" NOT NULL,
    question_id            text COLLATE "C" NOT NULL,
    subject_id             text COLLATE "C",
    topic_id               text COLLATE "C",
    scheduler              text NOT NULL,
    phase                  smallint NOT NULL,
    step                   bigint NOT NULL,
    stability              double precision NOT NULL,
    difficulty             double precision NOT NULL,
    reps                   bigint NOT NULL,
    lapses                 bigint NOT NULL,
    last_review            timestamptz,
    due                    timestamptz NOT NULL,
    scheduled_days         bigint NOT NULL,
    mastery                smallint,
    archived_at            timestamptz NOT NULL,
    eligible_for_deletion  boolean NOT NULL DEFAULT false
);
CREATE INDEX archived_tracker_season_idx ON archived_tracker (season, eligible_for_deletion);
CREATE INDEX archived_tracker_unflagged_idx ON archived_tracker (archived_at)
    WHERE NOT eligible_for_deletion;

-- ───────────────────────── quests and audit ─────────────────────────

-- A quest is claimable once per learner day: the primary key is the guard.
CREATE TABLE quest_claims (
    user_id     text COLLATE "C" NOT NULL,
    day         date NOT NULL,
    quest_id    text COLLATE "C" NOT NULL,
    session_id  text COLLATE "C" NOT NULL,
    claimed_at  timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (user_id, day, quest_id)
);

CREATE TABLE audit_log (
    id      bigserial PRIMARY KEY,
    at      timestamptz NOT NULL,
    actor   text COLLATE "C",
    action  text NOT NULL,
    detail  jsonb NOT NULL
);
