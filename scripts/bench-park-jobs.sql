-- Keeps the heavy scheduled jobs (the nightly FSRS re-fit, reconciliation,
-- auto-archive, retention flagging) out of a benchmark: records them as
-- having just run and finished, so that no server started within their
-- period (a day or more) runs them. Without this a server that lives over
-- a minute starts whichever is due, in the middle of the load: on a fresh
-- bench database that is the re-fit of every learner. Bench databases
-- only. Tokens move past any recorded run, so the next real run numbers
-- its `job_runs` row after them. scripts/bench-submit.sh REFIT=1 measures a
-- load during the re-fit instead.
INSERT INTO job_leases (job, holder, token, expires_at, last_started_at, finished)
SELECT j, 'bench-parked', COALESCE((SELECT max(token) FROM job_runs r WHERE r.job = j), 0) + 1,
       now(), now(), true
FROM unnest(ARRAY['fsrs_refit', 'reconcile', 'auto_archive', 'retention']) AS j
ON CONFLICT (job) DO UPDATE
SET holder = excluded.holder, token = GREATEST(job_leases.token, excluded.token), expires_at = now(),
    last_started_at = now(), finished = true;
