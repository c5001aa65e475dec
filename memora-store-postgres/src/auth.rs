//! Users and credentials, the audit log and quest claims.

use async_trait::async_trait;
use chrono::{DateTime, NaiveDate, Utc};
use memora_core::domain::*;
use memora_core::error::{PortError, PortResult};
use memora_core::ids::*;
use memora_core::ports::{
    ApiKeyRecord, AuditEvent, AuditQuery, AuditRecord, AuditStore, AuthStore, QuestStore,
};

use crate::error::port;
use crate::player::record_session_on;
use crate::rows::{id, opt_id};
use crate::{PgStore, PgStoreError, Result};

fn user_of(uid: String, full_name: String, roles: Vec<String>, enabled: bool) -> Result<User> {
    Ok(User {
        id: id(&uid, UserId::new)?,
        full_name,
        roles: roles
            .iter()
            .map(|r| Role::parse(r).map_err(|e| PgStoreError::Corrupt(e.to_string())))
            .collect::<Result<_>>()?,
        enabled,
    })
}

#[async_trait]
impl AuthStore for PgStore {
    async fn get_user(&self, uid: &UserId) -> PortResult<Option<User>> {
        let row: Option<(String, String, Vec<String>, bool)> =
            sqlx::query_as("SELECT id, full_name, roles, enabled FROM users WHERE id = $1")
                .bind(uid.as_str())
                .fetch_optional(crate::trips::one(&self.pool))
                .await
                .map_err(port)?;
        Ok(row.map(|(i, n, r, e)| user_of(i, n, r, e)).transpose()?)
    }

    async fn list_users(&self) -> PortResult<Vec<User>> {
        let rows: Vec<(String, String, Vec<String>, bool)> =
            sqlx::query_as("SELECT id, full_name, roles, enabled FROM users ORDER BY id")
                .fetch_all(crate::trips::one(&self.pool))
                .await
                .map_err(port)?;
        rows.into_iter()
            .map(|(i, n, r, e)| user_of(i, n, r, e))
            .collect::<Result<_>>()
            .map_err(PortError::from)
    }

    async fn user_ids_after(
        &self,
        after: Option<&UserId>,
        limit: usize,
    ) -> PortResult<Vec<UserId>> {
        // Two statements, so that a page after a key starts its index scan
        // there (`users.id` is `COLLATE "C"`: byte order, as the port says).
        let limit = i64::try_from(limit).unwrap_or(i64::MAX);
        let ids: Vec<String> = match after {
            Some(a) => {
                sqlx::query_scalar("SELECT id FROM users WHERE id > $1 ORDER BY id LIMIT $2")
                    .bind(a.as_str())
                    .bind(limit)
                    .fetch_all(crate::trips::one(&self.pool))
                    .await
            }
            None => {
                sqlx::query_scalar("SELECT id FROM users ORDER BY id LIMIT $1")
                    .bind(limit)
                    .fetch_all(crate::trips::one(&self.pool))
                    .await
            }
        }
        .map_err(port)?;
        ids.iter()
            .map(|i| id(i, UserId::new).map_err(PortError::from))
            .collect()
    }

    async fn create_user(&self, user: &User, password_hash: Option<&str>) -> PortResult<()> {
        let roles: Vec<&str> = user.roles.iter().map(|r| r.as_str()).collect();
        let mut tx = crate::trips::begin(&self.pool).await.map_err(port)?;
        sqlx::query("INSERT INTO users (id, full_name, roles, enabled) VALUES ($1, $2, $3, $4)")
            .bind(user.id.as_str())
            .bind(&user.full_name)
            .bind(&roles)
            .bind(user.enabled)
            .execute(crate::trips::one(&mut *tx))
            .await
            .map_err(|e| match port(e) {
                PortError::Conflict(_) => {
                    PortError::Conflict(format!("user {} already exists", user.id))
                }
                other => other,
            })?;
        if let Some(h) = password_hash {
            sqlx::query("INSERT INTO password_hashes (user_id, hash) VALUES ($1, $2)")
                .bind(user.id.as_str())
                .bind(h)
                .execute(crate::trips::one(&mut *tx))
                .await
                .map_err(port)?;
        }
        crate::trips::commit(tx).await.map_err(port)?;
        Ok(())
    }

    async fn password_hash(&self, uid: &UserId) -> PortResult<Option<String>> {
        sqlx::query_scalar("SELECT hash FROM password_hashes WHERE user_id = $1")
            .bind(uid.as_str())
            .fetch_optional(crate::trips::one(&self.pool))
            .await
            .map_err(port)
    }

    async fn set_password_hash(&self, uid: &UserId, hash: &str) -> PortResult<()> {
        sqlx::query(
            "INSERT INTO password_hashes (user_id, hash) VALUES ($1, $2) \
             ON CONFLICT (user_id) DO UPDATE SET hash = EXCLUDED.hash, updated_at = now()",
        )
        .bind(uid.as_str())
        .bind(hash)
        .execute(crate::trips::one(&self.pool))
        .await
        .map_err(port)?;
        Ok(())
    }

    async fn create_login_session(
        &self,
        sid_hash: &str,
        user: &UserId,
        expires_at: DateTime<Utc>,
    ) -> PortResult<()> {
        sqlx::query(
            "INSERT INTO login_sessions (sid_hash, user_id, expires_at) VALUES ($1, $2, $3) \
             ON CONFLICT (sid_hash) DO UPDATE SET user_id = EXCLUDED.user_id, \
             expires_at = EXCLUDED.expires_at",
        )
        .bind(sid_hash)
        .bind(user.as_str())
        .bind(expires_at)
        .execute(crate::trips::one(&self.pool))
        .await
        .map_err(port)?;
        Ok(())
    }

    async fn get_login_session(
        &self,
        sid_hash: &str,
    ) -> PortResult<Option<(UserId, DateTime<Utc>)>> {
        let row: Option<(String, DateTime<Utc>)> =
            sqlx::query_as("SELECT user_id, expires_at FROM login_sessions WHERE sid_hash = $1")
                .bind(sid_hash)
                .fetch_optional(crate::trips::one(&self.pool))
                .await
                .map_err(port)?;
        Ok(row
            .map(|(u, e)| Ok::<_, PgStoreError>((id(&u, UserId::new)?, e)))
            .transpose()?)
    }

    async fn delete_login_session(&self, sid_hash: &str) -> PortResult<()> {
        sqlx::query("DELETE FROM login_sessions WHERE sid_hash = $1")
            .bind(sid_hash)
            .execute(crate::trips::one(&self.pool))
            .await
            .map_err(port)?;
        Ok(())
    }

    async fn create_api_key(&self, r: &ApiKeyRecord) -> PortResult<()> {
        sqlx::query("INSERT INTO api_keys (key, user_id, secret_hash) VALUES ($1, $2, $3)")
            .bind(&r.key)
            .bind(r.user.as_str())
            .bind(&r.secret_hash)
            .execute(crate::trips::one(&self.pool))
            .await
            .map_err(|e| match port(e) {
                PortError::Conflict(_) => PortError::Conflict("api key exists".into()),
                other => other,
            })?;
        Ok(())
    }

    async fn get_api_key(&self, key: &str) -> PortResult<Option<ApiKeyRecord>> {
        let row: Option<(String, String, String)> =
            sqlx::query_as("SELECT key, user_id, secret_hash FROM api_keys WHERE key = $1")
                .bind(key)
                .fetch_optional(crate::trips::one(&self.pool))
                .await
                .map_err(port)?;
        Ok(row
            .map(|(key, u, secret_hash)| {
                Ok::<_, PgStoreError>(ApiKeyRecord {
                    key,
                    user: id(&u, UserId::new)?,
                    secret_hash,
                })
            })
            .transpose()?)
    }
}

#[async_trait]
impl AuditStore for PgStore {
    async fn record(&self, e: &AuditEvent) -> PortResult<()> {
        sqlx::query("INSERT INTO audit_log (at, actor, action, detail) VALUES ($1, $2, $3, $4)")
            .bind(e.at)
            .bind(e.actor.as_ref().map(|a| a.as_str()))
            .bind(&e.action)
            .bind(&e.detail)
            .execute(crate::trips::one(&self.pool))
            .await
            .map_err(port)?;
        Ok(())
    }

    async fn query(&self, q: &AuditQuery) -> PortResult<Vec<AuditRecord>> {
        let rows: Vec<(
            i64,
            DateTime<Utc>,
            Option<String>,
            String,
            serde_json::Value,
        )> = sqlx::query_as(
            "SELECT id, at, actor, action, detail FROM audit_log \
                 WHERE ($1::bigint IS NULL OR id < $1) \
                 AND ($2::text IS NULL OR left(action, length($2)) = $2) \
                 AND ($3::text IS NULL OR actor = $3) \
                 AND ($4::timestamptz IS NULL OR at >= $4) \
                 AND ($5::timestamptz IS NULL OR at < $5) \
                 ORDER BY id DESC LIMIT $6",
        )
        .bind(q.before.map(|b| i64::try_from(b).unwrap_or(i64::MAX)))
        .bind(q.action.as_deref())
        .bind(q.actor.as_ref().map(|a| a.as_str()))
        .bind(q.since)
        .bind(q.until)
        .bind(i64::try_from(q.limit).unwrap_or(i64::MAX))
        .fetch_all(crate::trips::one(&self.pool))
        .await
        .map_err(port)?;
        rows.into_iter()
            .map(|(seq, at, actor, action, detail)| {
                Ok(AuditRecord {
                    seq: u64::try_from(seq)
                        .map_err(|_| PgStoreError::Corrupt(format!("audit id {seq}")))?,
                    event: AuditEvent {
                        at,
                        actor: opt_id(actor.as_deref(), UserId::new)?,
                        action,
                        detail,
                    },
                })
            })
            .collect::<Result<_>>()
            .map_err(PortError::from)
    }

    async fn recent(&self, limit: usize) -> PortResult<Vec<AuditEvent>> {
        let rows: Vec<(DateTime<Utc>, Option<String>, String, serde_json::Value)> = sqlx::query_as(
            "SELECT at, actor, action, detail FROM audit_log ORDER BY id DESC LIMIT $1",
        )
        .bind(i64::try_from(limit).unwrap_or(i64::MAX))
        .fetch_all(crate::trips::one(&self.pool))
        .await
        .map_err(port)?;
        rows.into_iter()
            .map(|(at, actor, action, detail)| {
                Ok(AuditEvent {
                    at,
                    actor: opt_id(actor.as_deref(), UserId::new)?,
                    action,
                    detail,
                })
            })
            .collect::<Result<_>>()
            .map_err(PortError::from)
    }
}

#[async_trait]
impl QuestStore for PgStore {
    async fn claimed(&self, user: &UserId, day: NaiveDate) -> PortResult<Vec<String>> {
        sqlx::query_scalar(
            "SELECT quest_id FROM quest_claims WHERE user_id = $1 AND day = $2 ORDER BY quest_id",
        )
        .bind(user.as_str())
        .bind(day)
        .fetch_all(crate::trips::one(&self.pool))
        .await
        .map_err(port)
    }

    async fn claim(
        &self,
        user: &UserId,
        day: NaiveDate,
        quest_id: &str,
        reward: &GameplaySession,
    ) -> PortResult<bool> {
        let mut tx = crate::trips::begin(&self.pool).await.map_err(port)?;
        // The primary key decides who wins a concurrent double claim; the
        // loser sees no row and changes nothing.
        let won: Option<i32> = sqlx::query_scalar(
            "INSERT INTO quest_claims (user_id, day, quest_id, session_id) VALUES ($1, $2, $3, $4) \
             ON CONFLICT DO NOTHING RETURNING 1",
        )
        .bind(user.as_str())
        .bind(day)
        .bind(quest_id)
        .bind(reward.id.as_str())
        .fetch_optional(crate::trips::one(&mut *tx))
        .await
        .map_err(port)?;
        if won.is_none() {
            return Ok(false);
        }
        record_session_on(&mut tx, reward).await?;
        crate::trips::commit(tx).await.map_err(port)?;
        Ok(true)
    }
}
