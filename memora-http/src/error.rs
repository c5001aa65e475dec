//! The HTTP error type: every core error maps to exactly one status code and
//! a Frappe-shaped body. Internal details (SQL, driver messages) never leave
//! the server: 500s and 503s carry a generic text, the detail is logged.

use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use memora_core::CoreError;

/// An error answered to a client.
#[derive(Debug, thiserror::Error)]
pub enum ApiError {
    /// A use-case error.
    #[error(transparent)]
    Core(#[from] CoreError),
    /// The request itself is malformed (bad JSON, wrong types, missing arguments).
    #[error("{0}")]
    BadRequest(String),
    /// No such API method.
    #[error("{0}")]
    UnknownMethod(String),
    /// The HTTP method is not allowed for this API method (405 + `Allow`).
    #[error("{message}")]
    MethodNotAllowed {
        /// Value of the `Allow` header.
        allow: &'static str,
        /// Explanation.
        message: String,
    },
    /// A state-changing call with a body that is neither JSON nor a form (415).
    #[error("{0}")]
    UnsupportedMediaType(String),
    /// The body is larger than the server accepts (413).
    #[error("{0}")]
    PayloadTooLarge(String),
    /// A cookie-authenticated state change without a valid
    /// `X-Frappe-CSRF-Token` header (Frappe answers 400 for this too).
    #[error("{0}")]
    Csrf(String),
    /// The request URI is too long (414).
    #[error("{0}")]
    UriTooLong(String),
    /// No such route (404).
    #[error("{0}")]
    NotFound(String),
}

impl ApiError {
    /// Shorthand for a 400.
    pub fn bad(msg: impl Into<String>) -> Self {
        ApiError::BadRequest(msg.into())
    }

    fn parts(&self) -> (StatusCode, &'static str, String) {
        match self {
            ApiError::BadRequest(m) => (StatusCode::BAD_REQUEST, "ValidationError", m.clone()),
            ApiError::UnknownMethod(m) => (StatusCode::NOT_FOUND, "DoesNotExistError", m.clone()),
            ApiError::NotFound(m) => (StatusCode::NOT_FOUND, "DoesNotExistError", m.clone()),
            ApiError::MethodNotAllowed { message, .. } => (
                StatusCode::METHOD_NOT_ALLOWED,
                "MethodNotAllowedError",
                message.clone(),
            ),
            ApiError::UnsupportedMediaType(m) => (
                StatusCode::UNSUPPORTED_MEDIA_TYPE,
                "UnsupportedMediaTypeError",
                m.clone(),
            ),
            ApiError::PayloadTooLarge(m) => (
                StatusCode::PAYLOAD_TOO_LARGE,
                "RequestEntityTooLargeError",
                m.clone(),
            ),
            ApiError::UriTooLong(m) => (StatusCode::URI_TOO_LONG, "URITooLongError", m.clone()),
            ApiError::Csrf(m) => (StatusCode::BAD_REQUEST, "CSRFTokenError", m.clone()),
            ApiError::Core(e) => match e {
                CoreError::Invalid(m) => (StatusCode::BAD_REQUEST, "ValidationError", m.clone()),
                CoreError::Unauthenticated => (
                    StatusCode::UNAUTHORIZED,
                    "AuthenticationError",
                    "Not logged in or invalid credentials".into(),
                ),
                CoreError::Forbidden(m) => (StatusCode::FORBIDDEN, "PermissionError", m.clone()),
                CoreError::NotFound(m) => (StatusCode::NOT_FOUND, "DoesNotExistError", m.clone()),
                CoreError::Conflict(m) => (StatusCode::CONFLICT, "DuplicateEntryError", m.clone()),
                CoreError::InvalidState(m) => {
                    (StatusCode::CONFLICT, "InvalidStateError", m.clone())
                }
                CoreError::NotServed(m) => {
                    (StatusCode::CONFLICT, "AnswerNotServedError", m.clone())
                }
                CoreError::RateLimited { retry_after } => (
                    StatusCode::TOO_MANY_REQUESTS,
                    "TooManyRequestsError",
                    format!(
                        "Too many requests. Please wait {} seconds before trying again.",
                        retry_after.as_secs().max(1)
                    ),
                ),
                CoreError::Unavailable(_) => (
                    StatusCode::SERVICE_UNAVAILABLE,
                    "ServiceUnavailableError",
                    "A dependency is temporarily unavailable; please retry shortly.".into(),
                ),
                CoreError::Internal(_) => (
                    StatusCode::INTERNAL_SERVER_ERROR,
                    "InternalServerError",
                    "Internal server error".into(),
                ),
            },
        }
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let (status, exc_type, message) = self.parts();
        if status.is_server_error() {
            tracing::error!(error = %self, "request failed");
        } else {
            tracing::debug!(error = %self, %status, "request rejected");
        }
        let server_messages =
            serde_json::to_string(&vec![message.clone()]).unwrap_or_else(|_| "[]".into());
        let body = serde_json::json!({
            "exc_type": exc_type,
            "exception": message,
            "_server_messages": server_messages,
        });
        let mut resp = (status, axum::Json(body)).into_response();
        if let ApiError::MethodNotAllowed { allow, .. } = &self {
            resp.headers_mut()
                .insert(header::ALLOW, HeaderValue::from_static(allow));
        }
        if let ApiError::Core(CoreError::RateLimited { retry_after }) = &self {
            let secs = retry_after.as_secs().max(1).to_string();
            if let Ok(v) = HeaderValue::from_str(&secs) {
                resp.headers_mut().insert(header::RETRY_AFTER, v);
            }
        }
        resp
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn status_and_type(e: CoreError) -> (StatusCode, &'static str) {
        let (status, exc_type, _) = ApiError::Core(e).parts();
        (status, exc_type)
    }

    #[test]
    fn duplicates_and_state_preconditions_are_told_apart() {
        assert_eq!(
            status_and_type(CoreError::conflict("quest already claimed")),
            (StatusCode::CONFLICT, "DuplicateEntryError")
        );
        assert_eq!(
            status_and_type(CoreError::invalid_state("quest not completed yet")),
            (StatusCode::CONFLICT, "InvalidStateError")
        );
    }

    #[test]
    fn rate_limiting_is_a_429_too_many_requests_with_retry_after() {
        let e = CoreError::RateLimited {
            retry_after: std::time::Duration::from_secs(3),
        };
        assert_eq!(
            status_and_type(e.clone()),
            (StatusCode::TOO_MANY_REQUESTS, "TooManyRequestsError")
        );
        let resp = ApiError::Core(e).into_response();
        assert_eq!(
            resp.headers().get(header::RETRY_AFTER),
            Some(&HeaderValue::from_static("3"))
        );
    }
}
