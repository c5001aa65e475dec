//! State shared by every server process: the invalidation log, the
//! safe-mode budget, the schedules that missed cache writes, and the leases
//! of scheduled jobs (migration `20261230000000_coordination.sql`).

use std::time::Duration;

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use memora_core::error::PortResult;
use memora_core::ids::{SeasonId, UserId};
use memora_core::ports::{
    Coordination, Invalidation, InvalidationBatch, JobLease, JobLock, JobRun,
};
use memora_core::safe_mode::{Admission, DenyReason, SafeModeLimits};

use crate::error::port;
use crate::rows::id;
use crate::{PgStore, PgStoreError, Result};

/// Entries younger than this are delivered again by every read: a row
/// whose sequence number was taken before a row already read may commit
/// after it, and must not be skipped. Far longer than the single-statement
/// transaction that writes a row.
const REDELIVER: &str = "10 seconds";

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

    async fn invalidations_since(&self, cursor: Option<u64>) -> PortResult<InvalidationBatch> {
        let Some(cursor) = cursor else {
            let last: i64 = sqlx::query_scalar("SELECT coalesce(max(seq), 0) FROM invalidations")
                .fetch_one(crate::trips::one(self.pool()))
                .await
                .map_err(port)?;
            return Ok(InvalidationBatch {
                entries: Vec::new(),
                cursor: seq(last)?,
            });
        };
        let rows: Vec<(i64, String, String)> = sqlx::query_as(&format!(
            "SELECT seq, kind, subject FROM invalidations \
             WHERE seq > $1 OR at > now() - interval '{REDELIVER}' ORDER BY seq"
        ))
        .bind(i64::try_from(cursor).unwrap_or(i64::MAX))
        .fetch_all(crate::trips::one(self.pool()))
        .await
        .map_err(port)?;
        let mut batch = InvalidationBatch {
            entries: Vec::with_capacity(rows.len()),
            cursor,
        };
        for (s, kind, subject) in rows {
            let s = seq(s)?;
            batch.cursor = batch.cursor.max(s);
            batch.entries.push((s, decode(&kind, &subject)?));
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
            "INSERT INTO stale_schedules (user_id, season_id) \
             SELECT * FROM unnest($1::text[], $2::text[]) ON CONFLICT DO NOTHING",
        )
        .bind(users)
        .bind(seasons)
        .execute(crate::trips::one(self.pool()))
        .await
        .map_err(port)?;
        Ok(())
    }

    async fn stale_schedules(&self, limit: usize) -> PortResult<Vec<(UserId, SeasonId)>> {
        let rows: Vec<(String, String)> = sqlx::query_as(
            "SELECT user_id, season_id FROM stale_schedules ORDER BY marked_at, user_id LIMIT $1",
        )
        .bind(i64::try_from(limit).unwrap_or(i64::MAX))
        .fetch_all(crate::trips::one(self.pool()))
        .await
        .map_err(port)?;
        let mut out = Vec::with_capacity(rows.len());
        for (u, s) in rows {
            out.push((id(&u, UserId::new)?, id(&s, SeasonId::new)?));
        }
        Ok(out)
    }

    async fn clear_stale(&self, keys: &[(UserId, SeasonId)]) -> PortResult<()> {
        let (users, seasons) = split(keys);
        sqlx::query(
            "DELETE FROM stale_schedules s USING unnest($1::text[], $2::text[]) AS k(u, se) \
             WHERE s.user_id = k.u AND s.season_id = k.se",
        )
        .bind(users)
        .bind(seasons)
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
        // started at least `every` ago; the run is recorded with it.
        let row: Option<(i64, DateTime<Utc>)> = sqlx::query_as(
            "WITH taken AS ( \
                 INSERT INTO job_leases AS l (job, holder, token, expires_at, last_started_at) \
                 VALUES ($1, $2, 1, $3 + $4 * interval '1 millisecond', $3) \
                 ON CONFLICT (job) DO UPDATE SET holder = excluded.holder, token = l.token + 1, \
                     expires_at = excluded.expires_at, last_started_at = excluded.last_started_at \
                 WHERE l.expires_at <= $3 AND l.last_started_at + $5 * interval '1 millisecond' <= $3 \
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
                 UPDATE job_leases SET expires_at = $3 WHERE job = $1 AND token = $2 RETURNING job), \
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
