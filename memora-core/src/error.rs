//! The core's single error type. Every use case returns [`CoreError`]; the HTTP
//! layer maps each variant to exactly one status code, so the variant chosen
//! here *is* the API contract (400/401/403/404/409/429/503/500). Two kinds
//! of 409 are kept apart so clients can tell them apart: [`CoreError::Conflict`]
//! (the thing already exists or already happened: a duplicate) and
//! [`CoreError::InvalidState`] (the request is well-formed but the current
//! state does not allow it yet, or any more).

use std::time::Duration;

/// Why a storage, cache or queue adapter failed. Adapters translate their
/// driver errors into this; the message is for logs, never for clients.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PortError {
    /// The dependency could not be reached (connection refused, timeout, pool
    /// exhausted). Callers may fall back (safe mode) or retry.
    #[error("dependency unavailable: {0}")]
    Unavailable(String),
    /// A uniqueness rule of the store was violated, or a compare-and-set
    /// lost (the row already exists, or was already changed): a duplicate.
    #[error("conflict: {0}")]
    Conflict(String),
    /// The store rejected the data as invalid (e.g. a row for a season that
    /// has no partition).
    #[error("rejected: {0}")]
    Rejected(String),
    /// Anything else: a bug or corrupted data in the adapter.
    #[error("internal adapter error: {0}")]
    Internal(String),
}

/// Errors returned by every core use case.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum CoreError {
    /// Input failed validation; nothing was changed. (HTTP 400)
    #[error("{0}")]
    Invalid(String),
    /// No authenticated caller. (HTTP 401)
    #[error("not logged in")]
    Unauthenticated,
    /// The caller may not do this. (HTTP 403)
    #[error("{0}")]
    Forbidden(String),
    /// The named thing does not exist. (HTTP 404)
    #[error("{0}")]
    NotFound(String),
    /// A duplicate: the thing already exists or already happened (already
    /// claimed, already pending, already decided, id taken). (HTTP 409,
    /// `exc_type` `DuplicateEntryError`)
    #[error("{0}")]
    Conflict(String),
    /// A state precondition does not hold: the request is valid but the
    /// current state does not allow it (quest not completed yet, season
    /// archived or still active, no active season). Retrying the same
    /// request can succeed once the state changes. (HTTP 409, `exc_type`
    /// `InvalidStateError`)
    #[error("{0}")]
    InvalidState(String),
    /// An answer for something the server did not serve to this learner,
    /// or already answered, or whose serving expired; nothing was changed.
    /// (HTTP 409, `exc_type` `AnswerNotServedError`)
    #[error("{0}")]
    NotServed(String),
    /// Safe-mode rate limit refused the request. (HTTP 429 + Retry-After)
    #[error("too many requests; retry after {} s", retry_after.as_secs())]
    RateLimited {
        /// How long the client should wait.
        retry_after: Duration,
    },
    /// A dependency the request cannot do without is down. (HTTP 503)
    #[error("service temporarily unavailable: {0}")]
    Unavailable(String),
    /// A bug or corrupted data. (HTTP 500)
    #[error("internal error: {0}")]
    Internal(String),
}

impl CoreError {
    /// Shorthand for [`CoreError::Invalid`].
    pub fn invalid(msg: impl Into<String>) -> Self {
        CoreError::Invalid(msg.into())
    }
    /// Shorthand for [`CoreError::NotFound`].
    pub fn not_found(msg: impl Into<String>) -> Self {
        CoreError::NotFound(msg.into())
    }
    /// Shorthand for [`CoreError::Forbidden`].
    pub fn forbidden(msg: impl Into<String>) -> Self {
        CoreError::Forbidden(msg.into())
    }
    /// Shorthand for [`CoreError::Conflict`].
    pub fn conflict(msg: impl Into<String>) -> Self {
        CoreError::Conflict(msg.into())
    }
    /// Shorthand for [`CoreError::InvalidState`].
    pub fn invalid_state(msg: impl Into<String>) -> Self {
        CoreError::InvalidState(msg.into())
    }
}

impl From<PortError> for CoreError {
    fn from(e: PortError) -> Self {
        match e {
            PortError::Unavailable(m) => CoreError::Unavailable(m),
            PortError::Conflict(m) => CoreError::Conflict(m),
            PortError::Rejected(m) => CoreError::Invalid(m),
            PortError::Internal(m) => CoreError::Internal(m),
        }
    }
}

/// Result alias for use cases.
pub type CoreResult<T> = Result<T, CoreError>;
/// Result alias for port calls.
pub type PortResult<T> = Result<T, PortError>;
