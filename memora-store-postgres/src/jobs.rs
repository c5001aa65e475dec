//! The job-progress store: one row per background job (season cache
//! rebuilds) in `job_progress`, so every process sees a rebuild's progress
//! and a stale job can be taken over. Writes are guarded by the owner
//! column; a takeover is a compare-and-set on `updated_at`.

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use memora_core::domain::TrackerKey;
use memora_core::error::PortResult;
use memora_core::ids::{JobId, QuestionId, SeasonId, UserId};
use memora_core::ports::{JobProgress, JobProgressStore};

use crate::error::port;
use crate::rows::id;
use crate::{PgStore, PgStoreError, Result};

const COLS: &str = "job_id, season, estimated, processed, users, status, resume_user, \
    resume_question, owner, started_at, updated_at";

#[derive(sqlx::FromRow)]
struct ProgressRow {
    job_id: String,
    season: String,
    estimated: i64,
    processed: i64,
    users: i64,
    status: String,
    resume_user: Option<String>,
    resume_question: Option<String>,
    owner: String,
    started_at: DateTime<Utc>,
    updated_at: DateTime<Utc>,
}

fn count(v: i64, what: &str) -> Result<u64> {
    u64::try_from(v).map_err(|_| PgStoreError::Corrupt(format!("{what} out of range: {v}")))
}

fn big(v: u64) -> i64 {
    i64::try_from(v).unwrap_or(i64::MAX)
}

impl ProgressRow {
    fn into_domain(self) -> Result<JobProgress> {
        let season = id(&self.season, SeasonId::new)?;
        let resume_after = match (self.resume_user.as_deref(), self.resume_question.as_deref()) {
            (Some(u), Some(q)) => Some(TrackerKey {
                user: id(u, UserId::new)?,
                season: season.clone(),
                question: id(q, QuestionId::parse)?,
            }),
            _ => None,
        };
        Ok(JobProgress {
            id: id(&self.job_id, JobId::new)?,
            season,
            estimated: count(self.estimated, "estimated")?,
            processed: count(self.processed, "processed")?,
            users: count(self.users, "users")?,
            status: self.status,
            resume_after,
            owner: self.owner,
            started_at: self.started_at,
            updated_at: self.updated_at,
        })
    }
}

#[async_trait]
impl JobProgressStore for PgStore {
    async fn save_progress(&self, p: &JobProgress) -> PortResult<bool> {
        // Insert, or update only a row this owner holds: one statement, so
        // a concurrent takeover either happens before (0 rows) or after.
        let n = sqlx::query(
            "INSERT INTO job_progress (job_id, season, estimated, processed, users, status, \
                 resume_user, resume_question, owner, started_at, updated_at) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11) \
             ON CONFLICT (job_id) DO UPDATE SET \
                 estimated = EXCLUDED.estimated, processed = EXCLUDED.processed, \
                 users = EXCLUDED.users, status = EXCLUDED.status, \
                 resume_user = EXCLUDED.resume_user, \
                 resume_question = EXCLUDED.resume_question, \
                 updated_at = EXCLUDED.updated_at \
             WHERE job_progress.owner = EXCLUDED.owner",
        )
        .bind(p.id.as_str())
        .bind(p.season.as_str())
        .bind(big(p.estimated))
        .bind(big(p.processed))
        .bind(big(p.users))
        .bind(&p.status)
        .bind(p.resume_after.as_ref().map(|k| k.user.as_str()))
        .bind(p.resume_after.as_ref().map(|k| k.question.as_str()))
        .bind(&p.owner)
        .bind(p.started_at)
        .bind(p.updated_at)
        .execute(crate::trips::one(&self.pool))
        .await
        .map_err(port)?
        .rows_affected();
        Ok(n == 1)
    }

    async fn get_progress(&self, job: &JobId) -> PortResult<Option<JobProgress>> {
        let row: Option<ProgressRow> = sqlx::query_as(&format!(
            "SELECT {COLS} FROM job_progress WHERE job_id = $1"
        ))
        .bind(job.as_str())
        .fetch_optional(crate::trips::one(&self.pool))
        .await
        .map_err(port)?;
        Ok(row.map(ProgressRow::into_domain).transpose()?)
    }

    async fn claim_progress(
        &self,
        job: &JobId,
        seen: DateTime<Utc>,
        owner: &str,
        now: DateTime<Utc>,
    ) -> PortResult<Option<JobProgress>> {
        let row: Option<ProgressRow> = sqlx::query_as(&format!(
            "UPDATE job_progress SET owner = $3, status = 'running', updated_at = $4 \
             WHERE job_id = $1 AND updated_at = $2 RETURNING {COLS}"
        ))
        .bind(job.as_str())
        .bind(seen)
        .bind(owner)
        .bind(now)
        .fetch_optional(crate::trips::one(&self.pool))
        .await
        .map_err(port)?;
        Ok(row.map(ProgressRow::into_domain).transpose()?)
    }
}
