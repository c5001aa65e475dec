//! The season store. Creating a season also creates its storage
//! partitions, in the same transaction.

use async_trait::async_trait;
use chrono::NaiveDate;
use memora_core::domain::Season;
use memora_core::error::{PortError, PortResult};
use memora_core::ids::SeasonId;
use memora_core::ports::SeasonStore;

use crate::error::port;
use crate::partitions::ensure_partitions;
use crate::rows::{id, scheduler_of};
use crate::{PgStore, Result};

const SEASON_COLS: &str = "id, title, start_date, end_date, is_active, auto_archive, \
    enable_cache, scheduler, desired_retention, archived";

#[derive(sqlx::FromRow)]
struct SeasonRow {
    id: String,
    title: String,
    start_date: NaiveDate,
    end_date: NaiveDate,
    is_active: bool,
    auto_archive: bool,
    enable_cache: bool,
    scheduler: String,
    desired_retention: f64,
    archived: bool,
}

impl SeasonRow {
    fn into_domain(self) -> Result<Season> {
        Ok(Season {
            id: id(&self.id, SeasonId::new)?,
            title: self.title,
            start_date: self.start_date,
            end_date: self.end_date,
            is_active: self.is_active,
            auto_archive: self.auto_archive,
            enable_cache: self.enable_cache,
            scheduler: scheduler_of(&self.scheduler)?,
            desired_retention: self.desired_retention,
            archived: self.archived,
        })
    }
}

#[async_trait]
impl SeasonStore for PgStore {
    async fn list_seasons(&self) -> PortResult<Vec<Season>> {
        let sql = format!("SELECT {SEASON_COLS} FROM seasons ORDER BY start_date DESC, id DESC");
        let rows: Vec<SeasonRow> = sqlx::query_as(&sql)
            .fetch_all(crate::trips::one(&self.pool))
            .await
            .map_err(port)?;
        rows.into_iter()
            .map(SeasonRow::into_domain)
            .collect::<Result<_>>()
            .map_err(PortError::from)
    }

    async fn get_season(&self, sid: &SeasonId) -> PortResult<Option<Season>> {
        let sql = format!("SELECT {SEASON_COLS} FROM seasons WHERE id = $1");
        let row: Option<SeasonRow> = sqlx::query_as(&sql)
            .bind(sid.as_str())
            .fetch_optional(crate::trips::one(&self.pool))
            .await
            .map_err(port)?;
        Ok(row.map(SeasonRow::into_domain).transpose()?)
    }

    async fn create_season(&self, s: &Season) -> PortResult<()> {
        let mut tx = crate::trips::begin(&self.pool).await.map_err(port)?;
        sqlx::query(
            "INSERT INTO seasons (id, title, start_date, end_date, is_active, auto_archive, \
                 enable_cache, scheduler, desired_retention, archived) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)",
        )
        .bind(s.id.as_str())
        .bind(&s.title)
        .bind(s.start_date)
        .bind(s.end_date)
        .bind(s.is_active)
        .bind(s.auto_archive)
        .bind(s.enable_cache)
        .bind(s.scheduler.as_str())
        .bind(s.desired_retention)
        .bind(s.archived)
        .execute(crate::trips::one(&mut *tx))
        .await
        .map_err(|e| match port(e) {
            PortError::Conflict(_) => {
                PortError::Conflict(format!("season {} already exists", s.id))
            }
            other => other,
        })?;
        ensure_partitions(&mut tx, &s.id).await?;
        crate::trips::commit(tx).await.map_err(port)?;
        Ok(())
    }

    async fn update_season(&self, s: &Season) -> PortResult<()> {
        let r = sqlx::query(
            "UPDATE seasons SET title = $2, start_date = $3, end_date = $4, is_active = $5, \
                 auto_archive = $6, enable_cache = $7, scheduler = $8, desired_retention = $9, \
                 archived = $10 \
             WHERE id = $1",
        )
        .bind(s.id.as_str())
        .bind(&s.title)
        .bind(s.start_date)
        .bind(s.end_date)
        .bind(s.is_active)
        .bind(s.auto_archive)
        .bind(s.enable_cache)
        .bind(s.scheduler.as_str())
        .bind(s.desired_retention)
        .bind(s.archived)
        .execute(crate::trips::one(&self.pool))
        .await
        .map_err(port)?;
        if r.rows_affected() == 0 {
            return Err(PortError::Rejected(format!(
                "season {} does not exist",
                s.id
            )));
        }
        Ok(())
    }

    async fn activate_season(&self, sid: &SeasonId) -> PortResult<()> {
        let mut tx = crate::trips::begin(&self.pool).await.map_err(port)?;
        // Lock the target row first so two concurrent activations serialise.
        let found: Option<String> =
            sqlx::query_scalar("SELECT id FROM seasons WHERE id = $1 FOR UPDATE")
                .bind(sid.as_str())
                .fetch_optional(crate::trips::one(&mut *tx))
                .await
                .map_err(port)?;
        if found.is_none() {
            return Err(PortError::Rejected(format!("season {sid} does not exist")));
        }
        sqlx::query("UPDATE seasons SET is_active = (id = $1) WHERE is_active OR id = $1")
            .bind(sid.as_str())
            .execute(crate::trips::one(&mut *tx))
            .await
            .map_err(port)?;
        crate::trips::commit(tx).await.map_err(port)?;
        Ok(())
    }
}
