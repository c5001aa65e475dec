//! Season partitions of `memory_tracker` and `review_log`: naming, creation
//! (idempotent), listing and dropping. Partition DDL cannot take bind
//! parameters, so names are derived from a sanitised season id plus a
//! stable hash, and the season value is quoted as a literal.

use memora_core::ids::SeasonId;
use memora_core::srs::stable_hash;
use sqlx::{PgConnection, Row};

use crate::{PgStore, Result};

/// The partitioned parents, each with one partition per season.
pub(crate) const PARTITIONED: [&str; 2] = ["memory_tracker", "review_log"];

/// One partition found in the database.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PartitionInfo {
    /// Parent table (`memory_tracker` or `review_log`).
    pub parent: String,
    /// Partition table name.
    pub table: String,
    /// The season it holds, when it belongs to a known season.
    pub season: Option<SeasonId>,
    /// The partition bound as PostgreSQL prints it.
    pub bound: String,
}

/// Name of the partition of `parent` holding `season`: stable, at most 63
/// bytes, only `[a-z0-9_]`.
pub fn partition_name(parent: &str, season: &SeasonId) -> String {
    let readable: String = season
        .as_str()
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() {
                c.to_ascii_lowercase()
            } else {
                '_'
            }
        })
        .take(20)
        .collect();
    let h = stable_hash(&[season.as_str()], 0);
    format!("{parent}_{readable}_{:08x}", h as u32)
}

/// Quotes a string as an SQL literal (for DDL, which takes no parameters).
pub(crate) fn quote_literal(s: &str) -> String {
    format!("'{}'", s.replace('\'', "''"))
}

/// Creates both partitions of a season if missing (inside the caller's
/// transaction when given one).
pub(crate) async fn ensure_partitions(conn: &mut PgConnection, season: &SeasonId) -> Result<()> {
    for parent in PARTITIONED {
        let ddl = format!(
            "CREATE TABLE IF NOT EXISTS \"{}\" PARTITION OF {parent} FOR VALUES IN ({})",
            partition_name(parent, season),
            quote_literal(season.as_str())
        );
        sqlx::query(&ddl)
            .execute(crate::trips::one(&mut *conn))
            .await?;
    }
    Ok(())
}

impl PgStore {
    /// Creates the season's partitions if they do not exist yet (idempotent;
    /// `create_season` calls it).
    pub async fn ensure_season_partitions(&self, season: &SeasonId) -> Result<()> {
        let mut conn = self.pool.acquire().await?;
        ensure_partitions(&mut conn, season).await
    }

    /// Every partition of the partitioned tables, by parent then name.
    pub async fn list_partitions(&self) -> Result<Vec<PartitionInfo>> {
        let seasons: Vec<String> = sqlx::query_scalar("SELECT id FROM seasons")
            .fetch_all(crate::trips::one(&self.pool))
            .await?;
        let mut out = Vec::new();
        for parent in PARTITIONED {
            let rows = sqlx::query(
                "SELECT c.relname::text AS name, pg_get_expr(c.relpartbound, c.oid) AS bound \
                 FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid \
                 WHERE i.inhparent = to_regclass($1) ORDER BY c.relname",
            )
            .bind(parent)
            .fetch_all(crate::trips::one(&self.pool))
            .await?;
            for r in rows {
                let table: String = r.try_get("name")?;
                let bound: Option<String> = r.try_get("bound")?;
                let season = seasons
                    .iter()
                    .filter_map(|s| SeasonId::new(s).ok())
                    .find(|s| partition_name(parent, s) == table);
                out.push(PartitionInfo {
                    parent: parent.to_owned(),
                    table,
                    season,
                    bound: bound.unwrap_or_default(),
                });
            }
        }
        Ok(out)
    }

    /// Drops the season's partitions (and with them every live tracker and
    /// review-log row of the season). The season row and its `review_ids`
    /// stay, so replays of old answers remain no-ops. Idempotent.
    pub async fn drop_season_partitions(&self, season: &SeasonId) -> Result<()> {
        let mut tx = crate::trips::begin(&self.pool).await?;
        for parent in PARTITIONED {
            let ddl = format!(
                "DROP TABLE IF EXISTS \"{}\"",
                partition_name(parent, season)
            );
            sqlx::query(&ddl)
                .execute(crate::trips::one(&mut *tx))
                .await?;
        }
        crate::trips::commit(tx).await?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn partition_names_are_short_safe_and_stable() {
        let s = SeasonId::new("SEASON-2026-TAWJIHI_EXTRA_LONG_SUFFIX_XXXX").expect("season");
        let n = partition_name("memory_tracker", &s);
        assert!(n.len() <= 63, "{n}");
        assert!(
            n.bytes()
                .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_')
        );
        assert_eq!(n, partition_name("memory_tracker", &s));
        assert_eq!(quote_literal("a'b"), "'a''b'");
    }
}
