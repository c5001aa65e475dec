//! The crate's error type and its mapping onto the core's [`PortError`].

use memora_core::PortError;

/// Everything that can go wrong in this adapter.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// A call did not complete within the configured timeout.
    #[error("redis call timed out after {0:?}")]
    Timeout(std::time::Duration),
    /// Connection, protocol or server error reported by the driver.
    #[error("redis: {0}")]
    Redis(#[from] redis::RedisError),
    /// Configuration is invalid (bad namespace, no nodes, …).
    #[error("invalid redis configuration: {0}")]
    Config(String),
    /// A stored value could not be decoded (corrupted or foreign data).
    #[error("undecodable cached value: {0}")]
    Decode(String),
    /// A task sending part of a request ended without an answer (panicked
    /// or aborted).
    #[error("redis request task failed: {0}")]
    Task(String),
    /// The question numbering's source (the store) failed.
    #[error("question numbers: {0}")]
    Numbers(memora_core::PortError),
}

/// Result alias of this crate.
pub type Result<T> = std::result::Result<T, Error>;

impl Error {
    /// Whether Redis is out of reach or busy (worth a retry, and safe mode),
    /// as opposed to refusing or failing the call itself.
    pub(crate) fn is_unavailable(&self) -> bool {
        match self {
            Error::Timeout(_) => true,
            Error::Redis(r) => {
                r.is_io_error()
                    || r.is_timeout()
                    || r.is_connection_dropped()
                    || r.is_connection_refusal()
                    || r.is_cluster_error()
                    || matches!(
                        r.kind(),
                        redis::ErrorKind::ClusterDown
                            | redis::ErrorKind::TryAgain
                            | redis::ErrorKind::BusyLoadingError
                            | redis::ErrorKind::MasterDown
                            | redis::ErrorKind::ClusterConnectionNotFound
                    )
            }
            Error::Numbers(e) => matches!(e, PortError::Unavailable(_)),
            Error::Config(_) | Error::Decode(_) | Error::Task(_) => false,
        }
    }
}

impl From<Error> for PortError {
    fn from(e: Error) -> Self {
        if let Error::Numbers(e) = e {
            // The store's own error, as the store reported it.
            return e;
        }
        if e.is_unavailable() {
            PortError::Unavailable(e.to_string())
        } else {
            PortError::Internal(e.to_string())
        }
    }
}
