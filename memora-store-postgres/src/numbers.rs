//! Permanent question numbers ([`QuestionNumbers`]) on the
//! `question_numbers` table (`migrations/20270101000000_question_numbers.sql`):
//! an identity column gives each id its number once; the `UNIQUE` id keeps
//! two writers from numbering one id twice.

use std::collections::HashMap;

use async_trait::async_trait;
use memora_core::error::PortResult;
use memora_core::ids::QuestionId;
use memora_core::ports::QuestionNumbers;

use crate::error::port;
use crate::rows::id;
use crate::{PgStore, PgStoreError};

/// Numbers the ids that have none (in id order, so one call's new ids get
/// consecutive numbers in that order) and returns every asked id's number.
/// Only ids without a number are inserted: an insert that conflicts still
/// uses up an identity value. An id another transaction is numbering at the
/// same moment is skipped by `ON CONFLICT` and missing from the answer; the
/// caller asks again.
const ASSIGN_SQL: &str = "\
WITH want AS (SELECT DISTINCT u.q FROM UNNEST($1::text[]) AS u(q)), \
have AS (SELECT n.question_id, n.num FROM question_numbers n JOIN want w ON n.question_id = w.q), \
ins AS ( \
    INSERT INTO question_numbers (question_id) \
    SELECT w.q FROM want w WHERE NOT EXISTS (SELECT 1 FROM have h WHERE h.question_id = w.q) \
    ORDER BY w.q COLLATE \"C\" \
    ON CONFLICT (question_id) DO NOTHING \
    RETURNING question_id, num) \
SELECT question_id, num FROM have UNION ALL SELECT question_id, num FROM ins";

const FIND_SQL: &str = "\
SELECT question_id, num FROM question_numbers WHERE question_id = ANY($1::text[])";

const IDS_SQL: &str = "\
SELECT question_id, num FROM question_numbers WHERE num = ANY($1::int8[])";

const PAGE_SQL: &str = "\
SELECT question_id, num FROM question_numbers WHERE num > $1 ORDER BY num LIMIT $2";

/// Rounds of `assign_numbers` (a round misses only ids that a concurrent
/// transaction numbered, which the next round finds).
const ASSIGN_ROUNDS: usize = 4;

fn number_of(n: i64) -> crate::Result<u64> {
    u64::try_from(n).map_err(|_| PgStoreError::Corrupt(format!("question number {n}")))
}

impl PgStore {
    async fn numbers_of(&self, sql: &str, ids: &[&str]) -> PortResult<HashMap<String, u64>> {
        let rows: Vec<(String, i64)> = sqlx::query_as(sql)
            .bind(ids)
            .fetch_all(crate::trips::one(&self.pool))
            .await
            .map_err(port)?;
        let mut out = HashMap::with_capacity(rows.len());
        for (q, n) in rows {
            out.insert(q, number_of(n)?);
        }
        Ok(out)
    }
}

#[async_trait]
impl QuestionNumbers for PgStore {
    async fn assign_numbers(&self, questions: &[QuestionId]) -> PortResult<Vec<u64>> {
        let mut known: HashMap<String, u64> = HashMap::new();
        for _ in 0..ASSIGN_ROUNDS {
            let missing: Vec<&str> = questions
                .iter()
                .map(QuestionId::as_str)
                .filter(|q| !known.contains_key(*q))
                .collect();
            if missing.is_empty() {
                break;
            }
            known.extend(self.numbers_of(ASSIGN_SQL, &missing).await?);
        }
        questions
            .iter()
            .map(|q| {
                known.get(q.as_str()).copied().ok_or_else(|| {
                    PgStoreError::Corrupt(format!("question {q} got no number")).into()
                })
            })
            .collect()
    }

    async fn find_numbers(&self, questions: &[QuestionId]) -> PortResult<Vec<Option<u64>>> {
        if questions.is_empty() {
            return Ok(Vec::new());
        }
        let ids: Vec<&str> = questions.iter().map(QuestionId::as_str).collect();
        let known = self.numbers_of(FIND_SQL, &ids).await?;
        Ok(ids.iter().map(|q| known.get(*q).copied()).collect())
    }

    async fn numbered_after(&self, after: u64, limit: usize) -> PortResult<Vec<(u64, QuestionId)>> {
        let rows: Vec<(String, i64)> = sqlx::query_as(PAGE_SQL)
            .bind(i64::try_from(after).unwrap_or(i64::MAX))
            .bind(i64::try_from(limit).unwrap_or(i64::MAX))
            .fetch_all(crate::trips::one(&self.pool))
            .await
            .map_err(port)?;
        let mut out = Vec::with_capacity(rows.len());
        for (q, n) in rows {
            out.push((number_of(n)?, id(&q, QuestionId::parse)?));
        }
        Ok(out)
    }

    async fn numbered_questions(&self, numbers: &[u64]) -> PortResult<Vec<Option<QuestionId>>> {
        if numbers.is_empty() {
            return Ok(Vec::new());
        }
        let nums: Vec<i64> = numbers
            .iter()
            .filter_map(|n| i64::try_from(*n).ok())
            .collect();
        let rows: Vec<(String, i64)> = sqlx::query_as(IDS_SQL)
            .bind(&nums)
            .fetch_all(crate::trips::one(&self.pool))
            .await
            .map_err(port)?;
        let mut by_num = HashMap::with_capacity(rows.len());
        for (q, n) in rows {
            by_num.insert(number_of(n)?, id(&q, QuestionId::parse)?);
        }
        Ok(numbers.iter().map(|n| by_num.get(n).cloned()).collect())
    }
}
