//! Permanent numbers ([`CatalogNumbers`]): question ids on the
//! `question_numbers` table (`migrations/20270101000000_question_numbers.sql`),
//! subjects and topics on `label_numbers`
//! (`migrations/20270102000000_label_numbers.sql`). In each, an identity
//! column gives a key its number once; the `UNIQUE` key keeps two writers
//! from numbering one key twice.

use std::collections::HashMap;

use async_trait::async_trait;
use memora_core::error::PortResult;
use memora_core::ids::{Label, QuestionId};
use memora_core::ports::CatalogNumbers;

use crate::error::port;
use crate::{PgStore, PgStoreError};

/// One number space: its table and key column.
#[derive(Clone, Copy)]
struct Space {
    table: &'static str,
    key: &'static str,
    what: &'static str,
}

const QUESTIONS: Space = Space {
    table: "question_numbers",
    key: "question_id",
    what: "question",
};

const LABELS: Space = Space {
    table: "label_numbers",
    key: "label",
    what: "label",
};

impl Space {
    /// Numbers the keys that have none (in key order, so one call's new
    /// keys get consecutive numbers in that order) and returns every asked
    /// key's number. Only keys without a number are inserted: an insert
    /// that conflicts still uses up an identity value. A key another
    /// transaction is numbering at the same moment is skipped by
    /// `ON CONFLICT` and missing from the answer; the caller asks again.
    fn assign_sql(self) -> String {
        let Space { table, key, .. } = self;
        format!(
            "WITH want AS (SELECT DISTINCT u.k FROM UNNEST($1::text[]) AS u(k)), \
             have AS (SELECT n.{key}, n.num FROM {table} n JOIN want w ON n.{key} = w.k), \
             ins AS ( \
                 INSERT INTO {table} ({key}) \
                 SELECT w.k FROM want w WHERE NOT EXISTS (SELECT 1 FROM have h WHERE h.{key} = w.k) \
                 ORDER BY w.k COLLATE \"C\" \
                 ON CONFLICT ({key}) DO NOTHING \
                 RETURNING {key}, num) \
             SELECT {key}, num FROM have UNION ALL SELECT {key}, num FROM ins"
        )
    }

    fn find_sql(self) -> String {
        let Space { table, key, .. } = self;
        format!("SELECT {key}, num FROM {table} WHERE {key} = ANY($1::text[])")
    }

    fn named_sql(self) -> String {
        let Space { table, key, .. } = self;
        format!("SELECT {key}, num FROM {table} WHERE num = ANY($1::int8[])")
    }

    fn page_sql(self) -> String {
        let Space { table, key, .. } = self;
        format!("SELECT {key}, num FROM {table} WHERE num > $1 ORDER BY num LIMIT $2")
    }

    fn number_of(self, n: i64) -> crate::Result<u64> {
        u64::try_from(n).map_err(|_| PgStoreError::Corrupt(format!("{} number {n}", self.what)))
    }
}

/// Rounds of an assignment (a round misses only keys that a concurrent
/// transaction numbered, which the next round finds).
const ASSIGN_ROUNDS: usize = 4;

impl PgStore {
    async fn numbers_of(
        &self,
        space: Space,
        sql: &str,
        keys: &[&str],
    ) -> PortResult<HashMap<String, u64>> {
        let rows: Vec<(String, i64)> = sqlx::query_as(sql)
            .bind(keys)
            .fetch_all(crate::trips::one(&self.pool))
            .await
            .map_err(port)?;
        let mut out = HashMap::with_capacity(rows.len());
        for (k, n) in rows {
            out.insert(k, space.number_of(n)?);
        }
        Ok(out)
    }

    async fn assign_in(&self, space: Space, keys: &[&str]) -> PortResult<Vec<u64>> {
        let sql = space.assign_sql();
        let mut known: HashMap<String, u64> = HashMap::new();
        for _ in 0..ASSIGN_ROUNDS {
            let missing: Vec<&str> = keys
                .iter()
                .copied()
                .filter(|k| !known.contains_key(*k))
                .collect();
            if missing.is_empty() {
                break;
            }
            known.extend(self.numbers_of(space, &sql, &missing).await?);
        }
        keys.iter()
            .map(|k| {
                known.get(*k).copied().ok_or_else(|| {
                    PgStoreError::Corrupt(format!("{} {k} got no number", space.what)).into()
                })
            })
            .collect()
    }

    async fn find_in(&self, space: Space, keys: &[&str]) -> PortResult<Vec<Option<u64>>> {
        if keys.is_empty() {
            return Ok(Vec::new());
        }
        let known = self.numbers_of(space, &space.find_sql(), keys).await?;
        Ok(keys.iter().map(|k| known.get(*k).copied()).collect())
    }

    async fn page_in(
        &self,
        space: Space,
        after: u64,
        limit: usize,
    ) -> PortResult<Vec<(u64, String)>> {
        let rows: Vec<(String, i64)> = sqlx::query_as(&space.page_sql())
            .bind(i64::try_from(after).unwrap_or(i64::MAX))
            .bind(i64::try_from(limit).unwrap_or(i64::MAX))
            .fetch_all(crate::trips::one(&self.pool))
            .await
            .map_err(port)?;
        rows.into_iter()
            .map(|(k, n)| Ok((space.number_of(n)?, k)))
            .collect()
    }

    async fn named_in(&self, space: Space, numbers: &[u64]) -> PortResult<Vec<Option<String>>> {
        if numbers.is_empty() {
            return Ok(Vec::new());
        }
        let nums: Vec<i64> = numbers
            .iter()
            .filter_map(|n| i64::try_from(*n).ok())
            .collect();
        let rows: Vec<(String, i64)> = sqlx::query_as(&space.named_sql())
            .bind(&nums)
            .fetch_all(crate::trips::one(&self.pool))
            .await
            .map_err(port)?;
        let mut by_num = HashMap::with_capacity(rows.len());
        for (k, n) in rows {
            by_num.insert(space.number_of(n)?, k);
        }
        Ok(numbers.iter().map(|n| by_num.get(n).cloned()).collect())
    }
}

fn question(k: &str) -> PortResult<QuestionId> {
    QuestionId::parse(k).map_err(|e| PgStoreError::Corrupt(format!("question_numbers: {e}")).into())
}

fn label(k: &str) -> PortResult<Label> {
    Label::from_key(k).map_err(|e| PgStoreError::Corrupt(format!("label_numbers: {e}")).into())
}

#[async_trait]
impl CatalogNumbers for PgStore {
    async fn assign_numbers(&self, questions: &[QuestionId]) -> PortResult<Vec<u64>> {
        let keys: Vec<&str> = questions.iter().map(QuestionId::as_str).collect();
        self.assign_in(QUESTIONS, &keys).await
    }

    async fn find_numbers(&self, questions: &[QuestionId]) -> PortResult<Vec<Option<u64>>> {
        let keys: Vec<&str> = questions.iter().map(QuestionId::as_str).collect();
        self.find_in(QUESTIONS, &keys).await
    }

    async fn numbered_after(&self, after: u64, limit: usize) -> PortResult<Vec<(u64, QuestionId)>> {
        self.page_in(QUESTIONS, after, limit)
            .await?
            .into_iter()
            .map(|(n, k)| Ok((n, question(&k)?)))
            .collect()
    }

    async fn numbered_questions(&self, numbers: &[u64]) -> PortResult<Vec<Option<QuestionId>>> {
        self.named_in(QUESTIONS, numbers)
            .await?
            .into_iter()
            .map(|k| k.map(|k| question(&k)).transpose())
            .collect()
    }

    async fn assign_label_numbers(&self, labels: &[Label]) -> PortResult<Vec<u64>> {
        let keys: Vec<String> = labels.iter().map(Label::key).collect();
        let keys: Vec<&str> = keys.iter().map(String::as_str).collect();
        self.assign_in(LABELS, &keys).await
    }

    async fn find_label_numbers(&self, labels: &[Label]) -> PortResult<Vec<Option<u64>>> {
        let keys: Vec<String> = labels.iter().map(Label::key).collect();
        let keys: Vec<&str> = keys.iter().map(String::as_str).collect();
        self.find_in(LABELS, &keys).await
    }

    async fn numbered_labels(&self, numbers: &[u64]) -> PortResult<Vec<Option<Label>>> {
        self.named_in(LABELS, numbers)
            .await?
            .into_iter()
            .map(|k| k.map(|k| label(&k)).transpose())
            .collect()
    }

    async fn labels_numbered_after(
        &self,
        after: u64,
        limit: usize,
    ) -> PortResult<Vec<(u64, Label)>> {
        self.page_in(LABELS, after, limit)
            .await?
            .into_iter()
            .map(|(n, k)| Ok((n, label(&k)?)))
            .collect()
    }
}
