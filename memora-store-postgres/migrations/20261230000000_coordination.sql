-- Memora: state shared by every server process (issue "scale-out").
--
-- Additive only; earlier migrations are never edited.

-- Invalidation log. A process that changes something other processes cache
-- (content, seasons, a login session, a user's credentials) appends one row;
-- every process polls the rows after its cursor a few times a second and
-- drops what it cached. Rows are pruned after an hour.
--
-- A row whose `seq` was taken before one already read may commit after
-- it: readers re-read every row whose transaction (`xid`) is not older
-- than the oldest transaction running at their previous read (the
-- snapshot's xmin), so no row is skipped, whatever the clocks say.
CREATE TABLE invalidations (
    seq      bigserial PRIMARY KEY,
    kind     text NOT NULL CHECK (kind IN ('catalog', 'seasons', 'session', 'user')),
    subject  text NOT NULL DEFAULT '',
    xid      xid8 NOT NULL DEFAULT pg_current_xact_id(),
    at       timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX invalidations_at ON invalidations (at);
CREATE INDEX invalidations_xid ON invalidations (xid);

-- Safe-mode admissions across processes: one row per admitted request
-- (pruned as it leaves the sliding window) and each learner's last one.
CREATE TABLE safe_mode_admissions (
    seq      bigserial PRIMARY KEY,
    at       timestamptz NOT NULL,
    user_id  text NOT NULL
);
CREATE INDEX safe_mode_admissions_at ON safe_mode_admissions (at);

CREATE TABLE safe_mode_learners (
    user_id  text PRIMARY KEY,
    last_at  timestamptz NOT NULL
);

-- Decides one safe-mode request in one round trip: serialised by a
-- transaction-level advisory lock, so concurrent processes never admit more
-- than `cap` requests in any window of `window_ms`, nor two requests of one
-- learner less than `interval_ms` apart. Returns (admitted, retry_after_ms,
-- reason) where reason is 'global' or 'learner' when denied.
CREATE FUNCTION memora_safe_mode_admit(
    p_user text, p_now timestamptz, p_cap integer, p_window_ms bigint, p_interval_ms bigint,
    OUT admitted boolean, OUT retry_after_ms bigint, OUT reason text)
LANGUAGE plpgsql AS $$
DECLARE
    w interval := make_interval(secs => p_window_ms / 1000.0);
    i interval := make_interval(secs => p_interval_ms / 1000.0);
    n integer;
    oldest timestamptz;
    last timestamptz;
BEGIN
    PERFORM pg_advisory_xact_lock(hashtext(current_schema() || ':memora_safe_mode'));
    DELETE FROM safe_mode_admissions WHERE at <= p_now - w;
    SELECT count(*), min(at) INTO n, oldest FROM safe_mode_admissions;
    IF n >= p_cap THEN
        admitted := false;
        reason := 'global';
        retry_after_ms := greatest(0, (extract(epoch FROM (oldest + w - p_now)) * 1000)::bigint);
        RETURN;
    END IF;
    SELECT l.last_at INTO last FROM safe_mode_learners l WHERE l.user_id = p_user;
    IF last IS NOT NULL AND last + i > p_now THEN
        admitted := false;
        reason := 'learner';
        retry_after_ms := greatest(0, (extract(epoch FROM (last + i - p_now)) * 1000)::bigint);
        RETURN;
    END IF;
    INSERT INTO safe_mode_admissions (at, user_id) VALUES (p_now, p_user);
    INSERT INTO safe_mode_learners (user_id, last_at) VALUES (p_user, p_now)
        ON CONFLICT (user_id) DO UPDATE SET last_at = excluded.last_at;
    -- Learners whose interval has passed no longer affect a decision.
    IF random() < 0.01 THEN
        DELETE FROM safe_mode_learners WHERE last_at + i <= p_now;
    END IF;
    admitted := true;
    reason := '';
    retry_after_ms := 0;
END;
$$;

-- Schedules (learner, season) whose cached copy missed writes while the
-- cache was unreachable. Every process drops them from the cache before it
-- leaves safe mode (and at start-up), so the set survives restarts.
-- `mark` grows each time a schedule is marked again, so a drain forgets
-- only the marks it read (not one made while it ran).
CREATE TABLE stale_schedules (
    user_id    text NOT NULL,
    season_id  text NOT NULL,
    mark       bigint NOT NULL DEFAULT 1,
    marked_at  timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (user_id, season_id)
);

-- Scheduled-job leases: at most one holder per job at a time, with an
-- expiry and a fencing token that grows with every acquisition. A job is
-- acquired at most once per interval (`last_started_at`).
--
-- `finished` (the run of `token` ended and was recorded) lives in this row,
-- not only in `job_runs`: a taker blocked on this row's lock re-checks its
-- WHERE against the row's newest version, while a subquery on another
-- table would still see the snapshot taken before the release committed.
CREATE TABLE job_leases (
    job              text PRIMARY KEY,
    holder           text NOT NULL,
    token            bigint NOT NULL,
    expires_at       timestamptz NOT NULL,
    last_started_at  timestamptz NOT NULL,
    finished         boolean NOT NULL DEFAULT false
);

-- One row per run of a scheduled job (who, which token, when, outcome).
CREATE TABLE job_runs (
    job          text NOT NULL,
    token        bigint NOT NULL,
    holder       text NOT NULL,
    started_at   timestamptz NOT NULL,
    finished_at  timestamptz,
    outcome      text,
    PRIMARY KEY (job, token)
);
