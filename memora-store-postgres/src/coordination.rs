//! State shared by every server process: the invalidation log, the
//! safe-mode budget, the schedules that missed cache writes, and the leases
//! of scheduled jobs (migration `20261230000000_coordination.sql`).

use std::time::Duration;

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use memora_core::error::PortResult;
use memora_core::ids::{SeasonId, UserId};
use memora_core::ports::{
    Coordination, Invalidation, InvalidationBatch, InvalidationCursor, JobLease, JobLock, JobRun,
    StaleMark,
};
use memora_core::safe_mode::{Admission, DenyReason, SafeModeLimits};

use crate::error::port;
use crate::rows::id;
use crate::{PgStore, PgStoreError, Result};

fn millis(d: Duration) -> i64 {
    i64::try_from(d.as_millis()).unwrap_or(i64::MAX)
}

fn seq(v: i64) -> Result<u64> {
    u64::try_from(v).map_err(|_| PgStoreError::Corrupt(format!("sequence out of range: {v}")))
}

fn encode(what: &Invalidation) -> (&'static str, &str) {
    match what {
        Invalidation::Catalog => ("catalog", ""),
        Invalidation::Seasons => ("seasons", ""),
        Invalidation::Session(hash) => ("session", hash.as_str()),
        Invalidation::User(user) => ("user", user.as_str()),
    }
}

fn decode(kind: &str, subject: &str) -> Result<Invalidation> {
    Ok(match kind {
        "catalog" => Invalidation::Catalog,
        "seasons" => Invalidation::Seasons,
        "session" => Invalidation::Session(subject.to_owned()),
        "user" => Invalidation::User(id(subject, UserId::new)?),
        other => {
            return Err(PgStoreError::Corrupt(format!(
                "unknown invalidation kind '{other}'"
            )));
        }
    })
}

fn split(keys: &[(UserId, SeasonId)]) -> (Vec<String>, Vec<String>) {
    keys.iter()
        .map(|(u, s)| (u.as_str().to_owned(), s.as_str().to_owned()))
        .unzip()
}

#[async_trait]
impl Coordination for PgStore {
    async fn publish(&self, what: &Invalidation) -> PortResult<()> {
        let (kind, subject) = encode(what);
        sqlx::query("INSERT INTO invalidations (kind, subject) VALUES ($1, $2)")
            .bind(kind)
            .bind(subject)
            .execute(crate::trips::one(self.pool()))
            .await
            .map_err(port)?;
        Ok(())
    }

    async fn invalidations_since(
        &self,
        cursor: Option<InvalidationCursor>,
    ) -> PortResult<InvalidationBatch> {
        // The snapshot's xmin is read by the same statement as the rows: a
        // transaction not visible to it has an xid ≥ that xmin, so the next
        // read (from this xmin) sees it once it commits.
        let (seq_from, xid_from) = match cursor {
            Some(c) => (
                i64::try_from(c.seq).unwrap_or(i64::MAX),
                c.horizon.to_string(),
            ),
            // Start: no rows, only the position.
            None => (i64::MAX, u64::MAX.to_string()),
        };
        let rows: Vec<(String, Option<i64>, Option<String>, Option<String>, i64)> = sqlx::query_as(
            "WITH h AS (SELECT pg_snapshot_xmin(pg_current_snapshot())::text AS xmin, \
                      (SELECT coalesce(max(seq), 0) FROM invalidations) AS last) \
                 SELECT h.xmin, i.seq, i.kind, i.subject, h.last FROM h \
                 LEFT JOIN invalidations i ON (i.seq > $1 OR i.xid >= $2::text::xid8) \
                 ORDER BY i.seq",
        )
        .bind(seq_from)
        .bind(xid_from)
        .fetch_all(crate::trips::one(self.pool()))
        .await
        .map_err(port)?;
        let mut batch = InvalidationBatch::default();
        for (xmin, s, kind, subject, last) in rows {
            let horizon: u64 = xmin
                .parse()
                .map_err(|_| PgStoreError::Corrupt(format!("snapshot xmin '{xmin}'")))?;
            batch.cursor = InvalidationCursor {
                seq: match cursor {
                    Some(c) => c.seq,
                    None => seq(last)?,
                },
                horizon,
            };
            if let (Some(s), Some(kind), Some(subject)) = (s, kind, subject) {
                let s = seq(s)?;
                batch.cursor.seq = batch.cursor.seq.max(s);
                batch.entries.push((s, decode(&kind, &subject)?));
            }
        }
        // Rows come in seq order, so the cursor already holds the highest.
        if let Some((last, _)) = batch.entries.last() {
            batch.cursor.seq = batch.cursor.seq.max(*last);
        }
        Ok(batch)
    }

    async fn prune_invalidations(&self, before: DateTime<Utc>) -> PortResult<u64> {
        let done = sqlx::query("DELETE FROM invalidations WHERE at < $1")
            .bind(before)
            .execute(crate::trips::one(self.pool()))
            .await
            .map_err(port)?;
        Ok(done.rows_affected())
    }

    async fn admit_safe_mode(
        &self,
        user: &UserId,
        now: DateTime<Utc>,
        limits: &SafeModeLimits,
    ) -> PortResult<Admission> {
        let (admitted, retry_ms, reason): (bool, i64, String) = sqlx::query_as(
            "SELECT admitted, retry_after_ms, reason FROM memora_safe_mode_admit($1, $2, $3, $4, $5)",
        )
        .bind(user.as_str())
        .bind(now)
        .bind(i32::try_from(limits.global_per_window).unwrap_or(i32::MAX))
        .bind(millis(limits.global_window))
        .bind(millis(limits.per_user_interval))
        .fetch_one(crate::trips::one(self.pool()))
        .await
        .map_err(port)?;
        if admitted {
            return Ok(Admission::Allowed);
        }
        let retry_after =
            Duration::from_millis(u64::try_from(retry_ms).unwrap_or(0)).max(Duration::from_secs(1));
        Ok(Admission::Denied {
            retry_after,
            reason: if reason == "global" {
                DenyReason::Global
            } else {
                DenyReason::PerUser
            },
        })
    }

    async fn mark_stale(&self, keys: &[(UserId, SeasonId)]) -> PortResult<()> {
        let (users, seasons) = split(keys);
        sqlx::query(
            "INSERT INTO stale_schedules AS s (user_id, season_id) \
             SELECT * FROM unnest($1::text[], $2::text[]) \
             ON CONFLICT (user_id, season_id) DO UPDATE \
             SET mark = s.mark + 1, marked_at = now()",
        )
        .bind(users)
        .bind(seasons)
        .execute(crate::trips::one(self.pool()))
        .await
        .map_err(port)?;
        Ok(())
    }

    async fn stale_schedules(&self, limit: usize) -> PortResult<Vec<StaleMark>> {
        let rows: Vec<(String, String, i64)> = sqlx::query_as(
            "SELECT user_id, season_id, mark FROM stale_schedules \
             ORDER BY marked_at, user_id LIMIT $1",
        )
        .bind(i64::try_from(limit).unwrap_or(i64::MAX))
        .fetch_all(crate::trips::one(self.pool()))
        .await
        .map_err(port)?;
        let mut out = Vec::with_capacity(rows.len());
        for (u, s, mark) in rows {
            out.push(StaleMark {
                user: id(&u, UserId::new)?,
                season: id(&s, SeasonId::new)?,
                mark: seq(mark)?,
            });
        }
        Ok(out)
    }

    async fn clear_stale(&self, marks: &[StaleMark]) -> PortResult<()> {
        let users: Vec<&str> = marks.iter().map(|m| m.user.as_str()).collect();
        let seasons: Vec<&str> = marks.iter().map(|m| m.season.as_str()).collect();
        let versions: Vec<i64> = marks
            .iter()
            .map(|m| i64::try_from(m.mark).unwrap_or(i64::MAX))
            .collect();
        sqlx::query(
            "DELETE FROM stale_schedules s \
             USING unnest($1::text[], $2::text[], $3::int8[]) AS k(u, se, m) \
             WHERE s.user_id = k.u AND s.season_id = k.se AND s.mark = k.m",
        )
        .bind(users)
        .bind(seasons)
        .bind(versions)
        .execute(crate::trips::one(self.pool()))
        .await
        .map_err(port)?;
        Ok(())
    }
}

fn token(v: i64) -> Result<u64> {
    u64::try_from(v).map_err(|_| PgStoreError::Corrupt(format!("lease token out of range: {v}")))
}

#[async_trait]
impl JobLock for PgStore {
    async fn try_acquire(
        &self,
        job: &str,
        holder: &str,
        now: DateTime<Utc>,
        ttl: Duration,
        every: Duration,
    ) -> PortResult<Option<JobLease>> {
        // One statement: the row lock of ON CONFLICT serialises concurrent
        // takers; the WHERE admits only a lapsed lease whose job last
        // started at least `every` ago, or whose run never finished (its
        // holder died: the job is retried once the lease lapses, not a
        // period later); the run is recorded with it.
        let row: Option<(i64, DateTime<Utc>)> = sqlx::query_as(
            "WITH taken AS ( \
                 INSERT INTO job_leases AS l (job, holder, token, expires_at, last_started_at) \
                 VALUES ($1, $2, 1, $3 + $4 * interval '1 millisecond', $3) \
                 ON CONFLICT (job) DO UPDATE SET holder = excluded.holder, token = l.token + 1, \
                     expires_at = excluded.expires_at, last_started_at = excluded.last_started_at, \
                     finished = false \
                 WHERE l.expires_at <= $3 AND (l.last_started_at + $5 * interval '1 millisecond' <= $3 \
                     OR NOT l.finished) \
                 RETURNING token, expires_at), \
             run AS ( \
                 INSERT INTO job_runs (job, token, holder, started_at) \
                 SELECT $1, token, $2, $3 FROM taken) \
             SELECT token, expires_at FROM taken",
        )
        .bind(job)
        .bind(holder)
        .bind(now)
        .bind(millis(ttl))
        .bind(millis(every))
        .fetch_optional(crate::trips::one(self.pool()))
        .await
        .map_err(port)?;
        match row {
            Some((t, expires_at)) => Ok(Some(JobLease {
                job: job.to_owned(),
                holder: holder.to_owned(),
                token: token(t)?,
                expires_at,
            })),
            None => Ok(None),
        }
    }

    async fn renew(
        &self,
        lease: &JobLease,
        now: DateTime<Utc>,
        ttl: Duration,
    ) -> PortResult<Option<JobLease>> {
        let expires: Option<DateTime<Utc>> = sqlx::query_scalar(
            "UPDATE job_leases SET expires_at = $3 + $4 * interval '1 millisecond' \
             WHERE job = $1 AND token = $2 AND expires_at > $3 RETURNING expires_at",
        )
        .bind(&lease.job)
        .bind(i64::try_from(lease.token).unwrap_or(i64::MAX))
        .bind(now)
        .bind(millis(ttl))
        .fetch_optional(crate::trips::one(self.pool()))
        .await
        .map_err(port)?;
        Ok(expires.map(|expires_at| JobLease {
            expires_at,
            ..lease.clone()
        }))
    }

    async fn release(
        &self,
        lease: &JobLease,
        now: DateTime<Utc>,
        outcome: &str,
    ) -> PortResult<bool> {
        let held: i64 = sqlx::query_scalar(
            "WITH l AS ( \
                 UPDATE job_leases SET expires_at = $3, finished = true \
                 WHERE job = $1 AND token = $2 RETURNING job), \
             r AS ( \
                 UPDATE job_runs SET finished_at = $3, outcome = $4 \
                 WHERE job = $1 AND token = $2 AND EXISTS (SELECT 1 FROM l)) \
             SELECT count(*) FROM l",
        )
        .bind(&lease.job)
        .bind(i64::try_from(lease.token).unwrap_or(i64::MAX))
        .bind(now)
        .bind(outcome)
        .fetch_one(crate::trips::one(self.pool()))
        .await
        .map_err(port)?;
        Ok(held > 0)
    }

    async fn runs(&self, job: &str, limit: usize) -> PortResult<Vec<JobRun>> {
        type Row = (
            String,
            i64,
            String,
            DateTime<Utc>,
            Option<DateTime<Utc>>,
            Option<String>,
        );
        let rows: Vec<Row> = sqlx::query_as(
            "SELECT job, token, holder, started_at, finished_at, outcome FROM job_runs \
             WHERE job = $1 ORDER BY token DESC LIMIT $2",
        )
        .bind(job)
        .bind(i64::try_from(limit).unwrap_or(i64::MAX))
        .fetch_all(crate::trips::one(self.pool()))
        .await
        .map_err(port)?;
        let mut out = Vec::with_capacity(rows.len());
        for (job, t, holder, started_at, finished_at, outcome) in rows {
            out.push(JobRun {
                job,
                token: token(t)?,
                holder,
                started_at,
                finished_at,
                outcome,
            });
        }
        Ok(out)
    }
}
