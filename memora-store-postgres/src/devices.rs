//! Players' devices (`devices`) and the device each login session is bound
//! to (`login_sessions.device_id`, migration `20261230000100_devices.sql`).

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use memora_core::domain::{Device, DeviceKind};
use memora_core::error::PortResult;
use memora_core::ids::UserId;
use memora_core::ports::DeviceStore;

use crate::error::port;
use crate::rows::id;
use crate::{PgStore, PgStoreError};

type Row = (
    String,
    String,
    String,
    Option<String>,
    DateTime<Utc>,
    DateTime<Utc>,
);

fn device(row: Row) -> Result<Device, PgStoreError> {
    let (user, device_id, kind, name, registered_at, last_active) = row;
    Ok(Device {
        user: id(&user, UserId::new)?,
        device_id,
        kind: DeviceKind::parse(&kind)
            .map_err(|e| PgStoreError::Corrupt(format!("stored device type '{kind}': {e}")))?,
        name,
        registered_at,
        last_active,
    })
}

#[async_trait]
impl DeviceStore for PgStore {
    async fn upsert_device(&self, d: &Device) -> PortResult<bool> {
        // `xmax = 0` only for a freshly inserted row.
        let inserted: bool = sqlx::query_scalar(
            "INSERT INTO devices (user_id, device_id, device_type, name, registered_at, last_active) \
             VALUES ($1, $2, $3, $4, $5, $6) \
             ON CONFLICT (user_id, device_id) DO UPDATE SET device_type = excluded.device_type, \
                 name = excluded.name, \
                 last_active = greatest(devices.last_active, excluded.last_active) \
             RETURNING (xmax = 0)",
        )
        .bind(d.user.as_str())
        .bind(&d.device_id)
        .bind(d.kind.as_str())
        .bind(&d.name)
        .bind(d.registered_at)
        .bind(d.last_active)
        .fetch_one(crate::trips::one(self.pool()))
        .await
        .map_err(port)?;
        Ok(inserted)
    }

    async fn list_devices(&self, user: &UserId) -> PortResult<Vec<Device>> {
        let rows: Vec<Row> = sqlx::query_as(
            "SELECT user_id, device_id, device_type, name, registered_at, last_active \
             FROM devices WHERE user_id = $1 ORDER BY last_active DESC, device_id",
        )
        .bind(user.as_str())
        .fetch_all(crate::trips::one(self.pool()))
        .await
        .map_err(port)?;
        let mut out = Vec::with_capacity(rows.len());
        for row in rows {
            out.push(device(row)?);
        }
        Ok(out)
    }

    async fn delete_device(
        &self,
        user: &UserId,
        device_id: &str,
    ) -> PortResult<Option<Vec<String>>> {
        // One statement: the device and its sessions go together.
        let rows: Vec<(bool, Option<String>)> = sqlx::query_as(
            "WITH d AS (DELETE FROM devices WHERE user_id = $1 AND device_id = $2 RETURNING 1), \
             s AS (DELETE FROM login_sessions WHERE user_id = $1 AND device_id = $2 \
                   AND EXISTS (SELECT 1 FROM d) RETURNING sid_hash) \
             SELECT EXISTS (SELECT 1 FROM d), s.sid_hash FROM (SELECT 1) one \
             LEFT JOIN s ON true",
        )
        .bind(user.as_str())
        .bind(device_id)
        .fetch_all(crate::trips::one(self.pool()))
        .await
        .map_err(port)?;
        if !rows.first().is_some_and(|(found, _)| *found) {
            return Ok(None);
        }
        Ok(Some(rows.into_iter().filter_map(|(_, h)| h).collect()))
    }

    async fn bind_session(&self, sid_hash: &str, user: &UserId, device_id: &str) -> PortResult<()> {
        sqlx::query(
            "UPDATE login_sessions SET device_id = $3 WHERE sid_hash = $1 AND user_id = $2",
        )
        .bind(sid_hash)
        .bind(user.as_str())
        .bind(device_id)
        .execute(crate::trips::one(self.pool()))
        .await
        .map_err(port)?;
        Ok(())
    }

    async fn session_device(&self, sid_hash: &str) -> PortResult<Option<String>> {
        let found: Option<Option<String>> =
            sqlx::query_scalar("SELECT device_id FROM login_sessions WHERE sid_hash = $1")
                .bind(sid_hash)
                .fetch_optional(crate::trips::one(self.pool()))
                .await
                .map_err(port)?;
        Ok(found.flatten())
    }

    async fn touch_device(
        &self,
        user: &UserId,
        device_id: &str,
        at: DateTime<Utc>,
    ) -> PortResult<()> {
        sqlx::query(
            "UPDATE devices SET last_active = $3 \
             WHERE user_id = $1 AND device_id = $2 AND last_active < $3",
        )
        .bind(user.as_str())
        .bind(device_id)
        .bind(at)
        .execute(crate::trips::one(self.pool()))
        .await
        .map_err(port)?;
        Ok(())
    }
}
