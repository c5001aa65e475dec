//! The platform directory (`institutions`, `institution_accounts`,
//! migration `20261231000000_institutions.sql`), and the schema each
//! institution's data lives in.
//!
//! The directory is read and written through the home institution's store
//! only; every other institution's store runs with its own schema first on
//! its `search_path` (see [`institution_schema`]), so none of its queries can
//! name another institution's rows.

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use memora_core::domain::{
    DeviceLimitAction, DevicePolicy, Institution, InstitutionId, InstitutionStatus,
};
use memora_core::error::PortResult;
use memora_core::ids::UserId;
use memora_core::ports::InstitutionDirectory;

use crate::error::port;
use crate::rows::id;
use crate::{PgStore, PgStoreError};

/// PostgreSQL's longest identifier (longer ones are silently truncated,
/// so two long names could meet).
pub const MAX_SCHEMA_LEN: usize = 63;

/// Whether `schema` is a name PostgreSQL keeps exactly as written, quoted
/// or not: lowercase ASCII letters, digits and `_`, starting with a letter
/// or `_`, at most [`MAX_SCHEMA_LEN`] bytes.
pub fn is_plain_schema(schema: &str) -> bool {
    !schema.is_empty()
        && schema.len() <= MAX_SCHEMA_LEN
        && schema
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_')
        && !schema.starts_with(|c: char| c.is_ascii_digit())
}

/// The schema holding the data of `institution` on a platform whose home
/// institution lives in `home_schema`: `<home_schema>__<id>` with `-` written
/// `_`. `None` when that is not a plain schema name (a home schema with
/// capitals, or so long that the name would pass 63 bytes and be
/// truncated — two institutions could then share one schema).
pub fn institution_schema(home_schema: &str, institution: &InstitutionId) -> Option<String> {
    let schema = format!("{home_schema}__{}", institution.as_str().replace('-', "_"));
    is_plain_schema(&schema).then_some(schema)
}

/// An account name as the directory compares it: ASCII letters folded to
/// lowercase, everything else as is — what `lower()` does on the column's
/// `"C"` collation (and so what its unique index holds), whatever the
/// database's default collation would do to a parameter.
fn fold(user: &UserId) -> String {
    user.as_str().to_ascii_lowercase()
}

type Row = (
    String,
    String,
    String,
    DateTime<Utc>,
    Option<i32>,
    Option<String>,
);

fn institution(row: Row) -> Result<Institution, PgStoreError> {
    let (raw_id, name, status, created_at, max_devices, device_limit) = row;
    let corrupt =
        |e: memora_core::CoreError| PgStoreError::Corrupt(format!("institution {raw_id}: {e}"));
    let device_policy = match (max_devices, device_limit) {
        (Some(n), Some(limit)) => Some(DevicePolicy {
            max_devices: usize::try_from(n).map_err(|_| {
                PgStoreError::Corrupt(format!("institution {raw_id}: max_devices {n}"))
            })?,
            on_limit: DeviceLimitAction::parse(&limit).map_err(corrupt)?,
        }),
        _ => None,
    };
    Ok(Institution {
        id: id(&raw_id, InstitutionId::new)?,
        name,
        status: InstitutionStatus::parse(&status).map_err(corrupt)?,
        created_at,
        device_policy,
    })
}

impl PgStore {
    /// The schema this store's connections use first (`current_schema()`).
    pub async fn current_schema(&self) -> crate::Result<String> {
        Ok(sqlx::query_scalar("SELECT current_schema()")
            .fetch_one(crate::trips::one(self.pool()))
            .await?)
    }

    /// Records every account of this (the home institution's) store in the
    /// directory that is not there yet (idempotent), and returns the home
    /// accounts whose name another institution holds (a case variant
    /// created there during a rolling upgrade): their logins go to that
    /// institution until an operator resolves it.
    pub async fn claim_home_accounts(&self) -> crate::Result<Vec<String>> {
        sqlx::query(
            "INSERT INTO institution_accounts (user_id, institution) \
             SELECT id, 'default' FROM users ON CONFLICT DO NOTHING",
        )
        .execute(crate::trips::one(self.pool()))
        .await?;
        Ok(sqlx::query_scalar(
            "SELECT u.id FROM users u WHERE NOT EXISTS (SELECT 1 FROM institution_accounts a \
             WHERE lower(a.user_id) = lower(u.id) AND a.institution = 'default') ORDER BY u.id",
        )
        .fetch_all(crate::trips::one(self.pool()))
        .await?)
    }

    /// Creates `schema` if it does not exist (run before the migrations of
    /// a new institution).
    pub async fn create_schema(&self, schema: &str) -> crate::Result<()> {
        if !is_plain_schema(schema) {
            return Err(PgStoreError::Invalid(format!("schema name {schema:?}")));
        }
        sqlx::query(&format!("CREATE SCHEMA IF NOT EXISTS \"{schema}\""))
            .execute(crate::trips::one(self.pool()))
            .await?;
        Ok(())
    }
}

#[async_trait]
impl InstitutionDirectory for PgStore {
    async fn create_institution(&self, i: &Institution) -> PortResult<()> {
        sqlx::query(
            "INSERT INTO institutions (id, name, status, created_at) VALUES ($1, $2, $3, $4)",
        )
        .bind(i.id.as_str())
        .bind(&i.name)
        .bind(i.status.as_str())
        .bind(i.created_at)
        .execute(crate::trips::one(self.pool()))
        .await
        .map_err(port)?;
        Ok(())
    }

    async fn list_institutions(&self) -> PortResult<Vec<Institution>> {
        let rows: Vec<Row> = sqlx::query_as(
            "SELECT id, name, status, created_at, max_devices, device_limit \
             FROM institutions ORDER BY id",
        )
        .fetch_all(crate::trips::one(self.pool()))
        .await
        .map_err(port)?;
        rows.into_iter()
            .map(|r| institution(r).map_err(Into::into))
            .collect()
    }

    async fn delete_institution(&self, id: &InstitutionId) -> PortResult<bool> {
        let n = sqlx::query("DELETE FROM institutions WHERE id = $1")
            .bind(id.as_str())
            .execute(crate::trips::one(self.pool()))
            .await
            .map_err(port)?
            .rows_affected();
        Ok(n > 0)
    }

    async fn set_institution_status(
        &self,
        id: &InstitutionId,
        status: InstitutionStatus,
    ) -> PortResult<bool> {
        let n = sqlx::query("UPDATE institutions SET status = $2 WHERE id = $1")
            .bind(id.as_str())
            .bind(status.as_str())
            .execute(crate::trips::one(self.pool()))
            .await
            .map_err(port)?
            .rows_affected();
        Ok(n > 0)
    }

    async fn set_institution_device_policy(
        &self,
        id: &InstitutionId,
        policy: Option<&DevicePolicy>,
    ) -> PortResult<bool> {
        let max = policy.map(|p| i32::try_from(p.max_devices).unwrap_or(i32::MAX));
        let n = sqlx::query(
            "UPDATE institutions SET max_devices = $2, device_limit = $3 WHERE id = $1",
        )
        .bind(id.as_str())
        .bind(max)
        .bind(policy.map(|p| p.on_limit.as_str()))
        .execute(crate::trips::one(self.pool()))
        .await
        .map_err(port)?
        .rows_affected();
        Ok(n > 0)
    }

    async fn claim_account(&self, user: &UserId, inst: &InstitutionId) -> PortResult<()> {
        sqlx::query("INSERT INTO institution_accounts (user_id, institution) VALUES ($1, $2)")
            .bind(user.as_str())
            .bind(inst.as_str())
            .execute(crate::trips::one(self.pool()))
            .await
            .map_err(port)?;
        Ok(())
    }

    async fn release_account(&self, user: &UserId, inst: &InstitutionId) -> PortResult<()> {
        sqlx::query(
            "DELETE FROM institution_accounts WHERE lower(user_id) = $1 AND institution = $2",
        )
        .bind(fold(user))
        .bind(inst.as_str())
        .execute(crate::trips::one(self.pool()))
        .await
        .map_err(port)?;
        Ok(())
    }

    async fn account_institution(&self, user: &UserId) -> PortResult<Option<InstitutionId>> {
        let raw: Option<String> = sqlx::query_scalar(
            "SELECT institution FROM institution_accounts WHERE lower(user_id) = $1",
        )
        .bind(fold(user))
        .fetch_optional(crate::trips::one(self.pool()))
        .await
        .map_err(port)?;
        raw.map(|r| id(&r, InstitutionId::new).map_err(Into::into))
            .transpose()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn schema_names_are_kept_exactly_or_refused() {
        let north = InstitutionId::new("north-side").unwrap();
        assert_eq!(
            institution_schema("public", &north).as_deref(),
            Some("public__north_side")
        );
        // Capitals would be folded by PostgreSQL; longer than 63 bytes
        // would be truncated (two ids could meet).
        assert_eq!(institution_schema("Memora", &north), None);
        let long_home = "h".repeat(MAX_SCHEMA_LEN - 2 - "north_side".len());
        assert!(institution_schema(&long_home, &north).is_some());
        assert_eq!(institution_schema(&format!("{long_home}x"), &north), None);
        assert!(!is_plain_schema("1abc"));
        assert!(!is_plain_schema("a-b"));
        assert!(!is_plain_schema(""));
        assert!(is_plain_schema("_x1"));
    }
}
