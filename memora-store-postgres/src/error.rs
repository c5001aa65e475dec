//! The crate's error type and its translation into the core's
//! [`PortError`]. Messages that can reach clients are short descriptions;
//! the full driver error (with SQL details) only goes to the log.

use memora_core::PortError;

/// Errors of the PostgreSQL adapter.
#[derive(Debug, thiserror::Error)]
pub enum PgStoreError {
    /// A driver or database error.
    #[error("database error: {0}")]
    Database(#[from] sqlx::Error),
    /// Applying migrations failed.
    #[error("migration failed: {0}")]
    Migrate(#[from] sqlx::migrate::MigrateError),
    /// A stored row could not be turned into a domain value.
    #[error("corrupt row: {0}")]
    Corrupt(String),
    /// The caller passed something the adapter cannot store.
    #[error("invalid input: {0}")]
    Invalid(String),
}

/// Result alias of this crate.
pub type Result<T, E = PgStoreError> = std::result::Result<T, E>;

/// SQLSTATE classes that mean "try again later" rather than "bug".
fn is_transient(code: &str) -> bool {
    code.starts_with("08") // connection exceptions
        || code.starts_with("53") // insufficient resources (too many connections…)
        || code == "57014" // statement timeout / cancel
        || code == "57P01" // admin shutdown
        || code == "57P02"
        || code == "57P03" // cannot connect now
        || code == "40001" // serialization failure
        || code == "40P01" // deadlock detected
}

/// Translates a sqlx error into the port error the core understands.
pub(crate) fn map_sqlx(e: &sqlx::Error) -> PortError {
    match e {
        sqlx::Error::Io(_)
        | sqlx::Error::Tls(_)
        | sqlx::Error::PoolTimedOut
        | sqlx::Error::PoolClosed
        | sqlx::Error::WorkerCrashed => PortError::Unavailable("database unreachable".into()),
        sqlx::Error::Database(db) => {
            let code = db.code().map(|c| c.into_owned()).unwrap_or_default();
            let constraint = db.constraint().unwrap_or("");
            match code.as_str() {
                "23505" => PortError::Conflict(format!("duplicate key ({constraint})")),
                "23514" if db.message().contains("no partition") => {
                    PortError::Rejected("unknown season: no storage partition exists for it".into())
                }
                "23514" => PortError::Rejected(format!("check constraint failed ({constraint})")),
                "23503" => PortError::Rejected(format!("reference not found ({constraint})")),
                "23502" => PortError::Rejected("a required value is missing".into()),
                "22001" | "22003" | "22P02" | "22007" | "22008" => {
                    PortError::Rejected("value out of range or malformed".into())
                }
                c if is_transient(c) => {
                    PortError::Unavailable(format!("database temporarily unavailable ({c})"))
                }
                c => PortError::Internal(format!("database error ({c})")),
            }
        }
        _ => PortError::Internal("database driver error".into()),
    }
}

/// Whether the error is a deadlock or serialization failure worth retrying.
pub(crate) fn is_retryable(e: &sqlx::Error) -> bool {
    match e {
        sqlx::Error::Database(db) => matches!(db.code().as_deref(), Some("40P01" | "40001")),
        _ => false,
    }
}

impl From<PgStoreError> for PortError {
    fn from(e: PgStoreError) -> Self {
        match &e {
            PgStoreError::Database(inner) => {
                let mapped = map_sqlx(inner);
                if matches!(mapped, PortError::Internal(_) | PortError::Unavailable(_)) {
                    tracing::warn!(error = %e, "postgres store error");
                } else {
                    tracing::debug!(error = %e, "postgres store rejected a write");
                }
                mapped
            }
            PgStoreError::Migrate(_) => {
                tracing::error!(error = %e, "migration error");
                PortError::Internal("schema migration failed".into())
            }
            PgStoreError::Corrupt(m) => {
                tracing::error!(detail = %m, "corrupt row in postgres store");
                PortError::Internal("corrupt stored data".into())
            }
            PgStoreError::Invalid(m) => PortError::Rejected(m.clone()),
        }
    }
}

/// Shorthand used by the port implementations: driver error → port error.
pub(crate) fn port(e: sqlx::Error) -> PortError {
    PortError::from(PgStoreError::Database(e))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pool_errors_are_unavailable() {
        assert!(matches!(
            map_sqlx(&sqlx::Error::PoolTimedOut),
            PortError::Unavailable(_)
        ));
        assert!(matches!(
            PortError::from(PgStoreError::Corrupt("x".into())),
            PortError::Internal(_)
        ));
    }
}
