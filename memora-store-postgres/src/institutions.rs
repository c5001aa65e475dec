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

/// The schema holding the data of `institution` on a platform whose home
/// institution lives in `home_schema`: `<home_schema>__<id>` with `-` written
/// `_` (a valid, unquoted-safe identifier of at most 63 bytes for a home
/// schema of up to 29).
pub fn institution_schema(home_schema: &str, institution: &InstitutionId) -> String {
    format!("{home_schema}__{}", institution.as_str().replace('-', "_"))
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

    /// Creates `schema` if it does not exist (run before the migrations of
    /// a new institution).
    pub async fn create_schema(&self, schema: &str) -> crate::Result<()> {
        if !schema
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '_')
        {
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
        sqlx::query("DELETE FROM institution_accounts WHERE user_id = $1 AND institution = $2")
            .bind(user.as_str())
            .bind(inst.as_str())
            .execute(crate::trips::one(self.pool()))
            .await
            .map_err(port)?;
        Ok(())
    }

    async fn account_institution(&self, user: &UserId) -> PortResult<Option<InstitutionId>> {
        let raw: Option<String> =
            sqlx::query_scalar("SELECT institution FROM institution_accounts WHERE user_id = $1")
                .bind(user.as_str())
                .fetch_optional(crate::trips::one(self.pool()))
                .await
                .map_err(port)?;
        raw.map(|r| id(&r, InstitutionId::new).map_err(Into::into))
            .transpose()
    }
}
