//! The chat routes' error type and its mapping to HTTP responses.

use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use houston_protocol::ErrorBody;
use serde_json::json;

/// An error of a chat request. Each variant maps to one status and one stable `code`.
#[derive(Debug, thiserror::Error)]
pub enum ChatError {
    /// The bearer token is missing or was rejected. The message names the failed check.
    #[error("{0}")]
    Unauthenticated(String),
    /// One or more request fields are invalid: `(field, reason)` pairs.
    #[error("invalid request")]
    InvalidFields(Vec<(String, String)>),
    /// The agent is unknown or the caller may not use it. Both get the same response.
    #[error("agent not found")]
    AgentNotFound,
    /// The session is unknown or belongs to another user. Both get the same response.
    #[error("session not found")]
    SessionNotFound,
    /// The turn is unknown or belongs to another user. Both get the same response.
    #[error("turn not found")]
    TurnNotFound,
    /// The caller sent too many requests; retry after the given number of seconds.
    #[error("rate limit exceeded")]
    RateLimited { retry_after_secs: u64 },
    /// The agent's runtime could not be started or reached.
    #[error("agent {agent} is unavailable: {reason}")]
    RuntimeUnavailable { agent: String, reason: String, retry_after_secs: u64 },
    /// The engine answered with an error status.
    #[error("engine answered {status}: {code}: {message}")]
    Engine { status: u16, code: String, message: String },
    /// A failure inside the control plane (store, cache); details are logged, not returned.
    #[error("internal error: {0}")]
    Internal(String),
    /// An error of the control plane's shared code (identity, access), answered as it is
    /// answered on every other route.
    #[error(transparent)]
    Api(#[from] crate::error::ApiError),
}

impl ChatError {
    /// Builds an [`ChatError::InvalidFields`] for one field.
    pub fn invalid(field: &str, reason: impl Into<String>) -> Self {
        Self::InvalidFields(vec![(field.to_owned(), reason.into())])
    }

    fn status_and_code(&self) -> (StatusCode, &'static str) {
        match self {
            Self::Unauthenticated(_) => (StatusCode::UNAUTHORIZED, "unauthenticated"),
            Self::InvalidFields(_) => (StatusCode::UNPROCESSABLE_ENTITY, "invalid_fields"),
            Self::AgentNotFound => (StatusCode::NOT_FOUND, "agent_not_found"),
            Self::SessionNotFound => (StatusCode::NOT_FOUND, "session_not_found"),
            Self::TurnNotFound => (StatusCode::NOT_FOUND, "turn_not_found"),
            Self::RateLimited { .. } => (StatusCode::TOO_MANY_REQUESTS, "rate_limited"),
            Self::RuntimeUnavailable { .. } => (StatusCode::SERVICE_UNAVAILABLE, "agent_unavailable"),
            Self::Engine { status: 409, .. } => (StatusCode::CONFLICT, "session_busy"),
            Self::Engine { .. } => (StatusCode::BAD_GATEWAY, "engine_error"),
            Self::Internal(_) => (StatusCode::INTERNAL_SERVER_ERROR, "internal"),
            Self::Api(error) => (error.status(), error.code()),
        }
    }

    /// Returns the error body that clients see; 5xx bodies hide internals.
    #[must_use]
    pub fn body(&self) -> ErrorBody {
        let (_, code) = self.status_and_code();
        match self {
            Self::InvalidFields(fields) => {
                let list: Vec<String> = fields.iter().map(|(f, r)| format!("{f}: {r}")).collect();
                let fields: Vec<_> =
                    fields.iter().map(|(f, r)| json!({"field": f, "reason": r})).collect();
                ErrorBody::new(code, format!("the request has invalid fields: {}", list.join("; ")))
                    .with_details(json!({ "fields": fields }))
            }
            Self::Internal(_) => ErrorBody::new(code, "internal error; the cause is logged"),
            Self::Api(error) => error.body(),
            Self::Engine { code: engine_code, message, .. } => {
                ErrorBody::new(code, format!("{engine_code}: {message}"))
            }
            other => ErrorBody::new(code, other.to_string()),
        }
    }

    /// Returns the `Retry-After` value in seconds, when the error has one.
    #[must_use]
    pub fn retry_after_secs(&self) -> Option<u64> {
        match self {
            Self::RateLimited { retry_after_secs }
            | Self::RuntimeUnavailable { retry_after_secs, .. } => Some(*retry_after_secs),
            Self::Api(crate::error::ApiError::RateLimited { retry_after }) => {
                Some(retry_after.as_secs().max(1))
            }
            _ => None,
        }
    }
}

impl IntoResponse for ChatError {
    fn into_response(self) -> Response {
        let (status, _) = self.status_and_code();
        if status.is_server_error() {
            tracing::error!(error = %self, "chat request failed");
        }
        let mut response = (status, axum::Json(self.body())).into_response();
        if let Some(secs) = self.retry_after_secs() {
            response.headers_mut().insert(header::RETRY_AFTER, HeaderValue::from(secs));
        }
        response
    }
}
