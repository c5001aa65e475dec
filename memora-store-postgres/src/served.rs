//! The durable served-set ledger ([`ServedLedger`]) on the `served_items`
//! table (see `migrations/20261129000000_integrity.sql`).
//!
//! Each operation is one statement, except `commit`, which is one short
//! transaction: it locks the claimed rows with `SELECT … FOR UPDATE` in item
//! order, compares them with the claims and either updates them all or rolls
//! back. The row locks serialise concurrent commits of the same serving (the
//! second one waits, then sees `answered` and fails), and taking them in one
//! global order (the `COLLATE "C"` item order, also the insert order of
//! `record_served`) keeps two multi-item writers from deadlocking. Timestamps
//! are compared exactly: the core truncates them to microseconds, which is
//! what PostgreSQL stores.

use std::collections::HashMap;

use async_trait::async_trait;
use chrono::{DateTime, NaiveDate, Utc};
use memora_core::error::PortResult;
use memora_core::ids::{JobId, ReviewId, SeasonId, UserId};
use memora_core::ports::{AnswerReceipt, ServedLedger, Serving, ServingClaim};

use crate::error::{is_retryable, port};
use crate::rows::id;
use crate::{PgStore, PgStoreError, Result};

/// Upsert of a served set. Duplicate items collapse (one statement may not
/// touch a row twice); rows are inserted in item order (lock order). A
/// re-served row keeps its receipt and `xp_day` unless it was already past
/// `retain_until` at the new `served_at` (then it starts afresh, exactly as
/// if the purge had deleted it).
const RECORD_SQL: &str = "\
INSERT INTO served_items AS s (user_id, season, item, served_at, answerable_until, \
    retain_until, answered) \
SELECT $1, $2, i.item, $4, $5, $6, false \
FROM (SELECT DISTINCT item FROM UNNEST($3::text[]) AS u(item)) i \
ORDER BY i.item \
ON CONFLICT (user_id, season, item) DO UPDATE SET \
    served_at = EXCLUDED.served_at, \
    answerable_until = EXCLUDED.answerable_until, \
    retain_until = EXCLUDED.retain_until, \
    answered = false, \
    review_id = CASE WHEN s.retain_until >= EXCLUDED.served_at THEN s.review_id END, \
    job_id = CASE WHEN s.retain_until >= EXCLUDED.served_at THEN s.job_id END, \
    xp = CASE WHEN s.retain_until >= EXCLUDED.served_at THEN s.xp END, \
    answered_at = CASE WHEN s.retain_until >= EXCLUDED.served_at THEN s.answered_at END, \
    xp_day = CASE WHEN s.retain_until >= EXCLUDED.served_at THEN s.xp_day END";

/// Entries of the asked items, in the asked order (duplicates included);
/// rows past `retain_until` at `$4` read as absent.
const LOOKUP_SQL: &str = "\
SELECT s.served_at, s.answerable_until, s.retain_until, s.answered, s.review_id, s.job_id, \
    s.xp, s.answered_at, s.xp_day \
FROM UNNEST($3::text[]) WITH ORDINALITY AS i(item, ord) \
LEFT JOIN served_items s \
    ON s.user_id = $1 AND s.season = $2 AND s.item = i.item AND s.retain_until >= $4 \
ORDER BY i.ord";

/// Step 1 of `commit`: lock the claimed rows, in item order.
const LOCK_SQL: &str = "\
SELECT item, served_at, answered FROM served_items \
WHERE user_id = $1 AND season = $2 AND item = ANY($3::text[]) \
ORDER BY item FOR UPDATE";

/// Step 2 of `commit` (rows already locked and checked): mark answered.
const MARK_SQL: &str = "\
UPDATE served_items s SET answered = true, review_id = c.review_id, job_id = c.job_id, \
    xp = c.xp, answered_at = c.answered_at, xp_day = c.xp_day \
FROM UNNEST($3::text[], $4::text[], $5::text[], $6::int8[], $7::timestamptz[], $8::date[]) \
    AS c(item, review_id, job_id, xp, answered_at, xp_day) \
WHERE s.user_id = $1 AND s.season = $2 AND s.item = c.item";

/// Undo of a commit: per item, the first claim (in the given order) whose
/// review id is the row's receipt applies; the receipt test is repeated by
/// the UPDATE itself, so a concurrent commit that replaced the receipt in
/// between wins.
const RELEASE_SQL: &str = "\
WITH c AS ( \
    SELECT * FROM UNNEST($3::text[], $4::text[], $5::date[]) WITH ORDINALITY \
        AS c(item, review_id, prev_xp_day, ord) \
), m AS ( \
    SELECT DISTINCT ON (c.item) c.item, c.review_id, c.prev_xp_day \
    FROM c JOIN served_items s \
        ON s.user_id = $1 AND s.season = $2 AND s.item = c.item AND s.review_id = c.review_id \
    ORDER BY c.item, c.ord \
) \
UPDATE served_items s SET answered = false, review_id = NULL, job_id = NULL, xp = NULL, \
    answered_at = NULL, xp_day = m.prev_xp_day \
FROM m \
WHERE s.user_id = $1 AND s.season = $2 AND s.item = m.item AND s.review_id = m.review_id";

/// Rows deleted per purge statement: short transactions, short locks.
const PURGE_BATCH: i64 = 10_000;

const PURGE_SQL: &str = "\
DELETE FROM served_items WHERE retain_until < $1 AND ctid = ANY(ARRAY( \
    SELECT ctid FROM served_items WHERE retain_until < $1 LIMIT $2))";

/// Attempts of a statement that hit a deadlock or serialization failure.
const RETRIES: u64 = 5;

/// One `served_items` row as read by `lookup` (every column nullable: the
/// left join yields NULLs for absent items).
#[derive(sqlx::FromRow)]
struct ServedRow {
    served_at: Option<DateTime<Utc>>,
    answerable_until: Option<DateTime<Utc>>,
    retain_until: Option<DateTime<Utc>>,
    answered: Option<bool>,
    review_id: Option<String>,
    job_id: Option<String>,
    xp: Option<i64>,
    answered_at: Option<DateTime<Utc>>,
    xp_day: Option<NaiveDate>,
}

impl ServedRow {
    fn into_domain(self) -> Result<Option<Serving>> {
        let (Some(served_at), Some(answerable_until), Some(retain_until), Some(answered)) = (
            self.served_at,
            self.answerable_until,
            self.retain_until,
            self.answered,
        ) else {
            return Ok(None);
        };
        let last_receipt = match (self.review_id, self.job_id, self.xp, self.answered_at) {
            (None, None, None, None) => None,
            (Some(r), Some(j), Some(xp), Some(answered_at)) => Some(AnswerReceipt {
                review_id: id(&r, ReviewId::new)?,
                job_id: id(&j, JobId::new)?,
                xp,
                answered_at,
            }),
            _ => return Err(PgStoreError::Corrupt("partial answer receipt".into())),
        };
        Ok(Some(Serving {
            served_at,
            answerable_until,
            retain_until,
            answered,
            last_receipt,
            xp_day: self.xp_day,
        }))
    }
}

impl PgStore {
    /// One attempt of `commit`: lock, compare, mark (or roll back).
    async fn commit_once(
        &self,
        user: &UserId,
        season: &SeasonId,
        claims: &[ServingClaim],
    ) -> std::result::Result<bool, sqlx::Error> {
        let items: Vec<&str> = claims.iter().map(|c| c.item.as_str()).collect();
        let mut tx = crate::trips::begin(&self.pool).await?;
        let locked: Vec<(String, DateTime<Utc>, bool)> = sqlx::query_as(LOCK_SQL)
            .bind(user.as_str())
            .bind(season.as_str())
            .bind(&items)
            .fetch_all(crate::trips::one(&mut *tx))
            .await?;
        let rows: HashMap<&str, (DateTime<Utc>, bool)> = locked
            .iter()
            .map(|(item, at, answered)| (item.as_str(), (*at, *answered)))
            .collect();
        let open = claims.iter().all(|c| {
            rows.get(c.item.as_str())
                .is_some_and(|(at, answered)| *at == c.served_at && !answered)
        });
        if !open {
            tx.rollback().await?;
            return Ok(false);
        }
        // A repeated item takes its last claim (as if applied in order).
        let mut last: HashMap<&str, &ServingClaim> = HashMap::with_capacity(claims.len());
        for c in claims {
            last.insert(c.item.as_str(), c);
        }
        let n = last.len();
        let (mut it, mut rid, mut job, mut xp, mut at, mut day) = (
            Vec::with_capacity(n),
            Vec::with_capacity(n),
            Vec::with_capacity(n),
            Vec::with_capacity(n),
            Vec::with_capacity(n),
            Vec::with_capacity(n),
        );
        for (item, c) in last {
            it.push(item);
            rid.push(c.receipt.review_id.as_str());
            job.push(c.receipt.job_id.as_str());
            xp.push(c.receipt.xp);
            at.push(c.receipt.answered_at);
            day.push(c.xp_day);
        }
        let marked = sqlx::query(MARK_SQL)
            .bind(user.as_str())
            .bind(season.as_str())
            .bind(&it)
            .bind(&rid)
            .bind(&job)
            .bind(&xp)
            .bind(&at)
            .bind(&day)
            .execute(crate::trips::one(&mut *tx))
            .await?
            .rows_affected();
        if marked != n as u64 {
            // Cannot happen while the rows are locked; never half-commit.
            tx.rollback().await?;
            return Ok(false);
        }
        crate::trips::commit(tx).await?;
        Ok(true)
    }
}

/// Runs `f` again (briefly backing off) while it fails with a deadlock or
/// serialization failure, then maps the error.
async fn retrying<T, F, Fut>(mut f: F) -> PortResult<T>
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = std::result::Result<T, sqlx::Error>>,
{
    let mut attempt = 0;
    loop {
        match f().await {
            Ok(v) => return Ok(v),
            Err(e) if is_retryable(&e) && attempt < RETRIES => {
                attempt += 1;
                tracing::debug!(attempt, "served ledger retry after deadlock");
                tokio::time::sleep(std::time::Duration::from_millis(5 * attempt)).await;
            }
            Err(e) => return Err(port(e)),
        }
    }
}

#[async_trait]
impl ServedLedger for PgStore {
    async fn record_served(
        &self,
        user: &UserId,
        season: &SeasonId,
        items: &[String],
        served_at: DateTime<Utc>,
        answerable_until: DateTime<Utc>,
        retain_until: DateTime<Utc>,
    ) -> PortResult<()> {
        if items.is_empty() {
            return Ok(());
        }
        retrying(|| {
            sqlx::query(RECORD_SQL)
                .bind(user.as_str())
                .bind(season.as_str())
                .bind(items)
                .bind(served_at)
                .bind(answerable_until)
                .bind(retain_until)
                .execute(crate::trips::one(&self.pool))
        })
        .await?;
        Ok(())
    }

    async fn lookup(
        &self,
        user: &UserId,
        season: &SeasonId,
        items: &[String],
        now: DateTime<Utc>,
    ) -> PortResult<Vec<Option<Serving>>> {
        if items.is_empty() {
            return Ok(Vec::new());
        }
        let rows: Vec<ServedRow> = sqlx::query_as(LOOKUP_SQL)
            .bind(user.as_str())
            .bind(season.as_str())
            .bind(items)
            .bind(now)
            .fetch_all(crate::trips::one(&self.pool))
            .await
            .map_err(port)?;
        if rows.len() != items.len() {
            return Err(PgStoreError::Corrupt(format!(
                "lookup of {} items returned {} rows",
                items.len(),
                rows.len()
            ))
            .into());
        }
        Ok(rows
            .into_iter()
            .map(ServedRow::into_domain)
            .collect::<Result<_>>()?)
    }

    async fn commit(
        &self,
        user: &UserId,
        season: &SeasonId,
        claims: &[ServingClaim],
    ) -> PortResult<bool> {
        if claims.is_empty() {
            // Vacuously all open, as in the reference adapter.
            return Ok(true);
        }
        retrying(|| self.commit_once(user, season, claims)).await
    }

    async fn release(
        &self,
        user: &UserId,
        season: &SeasonId,
        claims: &[ServingClaim],
    ) -> PortResult<()> {
        if claims.is_empty() {
            return Ok(());
        }
        let items: Vec<&str> = claims.iter().map(|c| c.item.as_str()).collect();
        let rids: Vec<&str> = claims
            .iter()
            .map(|c| c.receipt.review_id.as_str())
            .collect();
        let prev: Vec<Option<NaiveDate>> = claims.iter().map(|c| c.prev_xp_day).collect();
        retrying(|| {
            sqlx::query(RELEASE_SQL)
                .bind(user.as_str())
                .bind(season.as_str())
                .bind(&items)
                .bind(&rids)
                .bind(&prev)
                .execute(crate::trips::one(&self.pool))
        })
        .await?;
        Ok(())
    }

    async fn purge_expired(&self, now: DateTime<Utc>) -> PortResult<u64> {
        let mut total = 0u64;
        loop {
            let n = sqlx::query(PURGE_SQL)
                .bind(now)
                .bind(PURGE_BATCH)
                .execute(crate::trips::one(&self.pool))
                .await
                .map_err(port)?
                .rows_affected();
            total += n;
            if n < PURGE_BATCH as u64 {
                return Ok(total);
            }
        }
    }
}
