//! Wiring ports from configuration: the embedded in-memory backend (with the
//! demo dataset) when no database is configured, PostgreSQL (+ Redis when
//! configured) otherwise.

use std::sync::Arc;

use memora_core::memory::{InMemoryBackend, SystemClock};
use memora_core::ports::Ports;

use crate::security::{Argon2Hasher, RandomIds};

/// Where the data lives.
#[derive(Clone, Default)]
pub struct BackendConfig {
    /// PostgreSQL URL (None = embedded in-memory backend).
    pub database_url: Option<String>,
    /// Redis URL (single node).
    pub redis_url: Option<String>,
    /// Redis Cluster seed nodes (comma-separated URLs).
    pub redis_cluster_nodes: Option<String>,
    /// Database pool size.
    pub db_pool_size: u32,
}

impl std::fmt::Debug for BackendConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // Never print credentials.
        f.debug_struct("BackendConfig")
            .field(
                "database_url",
                &self.database_url.as_ref().map(|u| redact(u)),
            )
            .field("redis_url", &self.redis_url.as_ref().map(|u| redact(u)))
            .field(
                "redis_cluster_nodes",
                &self.redis_cluster_nodes.as_ref().map(|_| "<set>"),
            )
            .field("db_pool_size", &self.db_pool_size)
            .finish()
    }
}

/// `scheme://user:secret@host/…` → `scheme://***@host/…`.
pub fn redact(url: &str) -> String {
    match (url.find("://"), url.rfind('@')) {
        (Some(s), Some(a)) if a > s => format!("{}://***{}", &url[..s], &url[a..]),
        _ => url.to_owned(),
    }
}

/// What was built, and what background work it needs.
pub struct Built {
    /// The ports.
    pub ports: Ports,
    /// The in-memory backend, when embedded.
    pub memory: Option<InMemoryBackend>,
    /// Handles the server keeps alive (workers etc.).
    pub extras: crate::jobs::Extras,
}

/// In-memory ports with production ids, clock and hashing.
pub fn in_memory() -> Built {
    let backend = InMemoryBackend::new();
    let mut ports = backend.ports();
    ports.clock = Arc::new(SystemClock);
    ports.ids = Arc::new(RandomIds);
    ports.hasher = Arc::new(Argon2Hasher);
    Built {
        ports,
        memory: Some(backend),
        extras: crate::jobs::Extras::default(),
    }
}

/// Builds the ports for `cfg`.
pub async fn build(cfg: &BackendConfig) -> Result<Built, BackendError> {
    match &cfg.database_url {
        None => {
            if cfg.redis_url.is_some() || cfg.redis_cluster_nodes.is_some() {
                return Err(BackendError::Config(
                    "Redis needs a database: set MEMORA_DATABASE_URL too".into(),
                ));
            }
            Ok(in_memory())
        }
        Some(_) => Err(BackendError::Config(
            "PostgreSQL support is not wired in this build".into(),
        )),
    }
}

/// Why the backend could not be built.
#[derive(Debug, thiserror::Error)]
pub enum BackendError {
    /// Bad configuration.
    #[error("configuration: {0}")]
    Config(String),
    /// A dependency could not be reached or set up.
    #[error("{0}")]
    Connect(String),
}
