//! The one error type of the control plane's own routes: each variant maps to an HTTP status,
//! a stable `code` and a message that is safe to show to the caller.

use std::time::Duration;

use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use houston_protocol::ErrorBody;
use houston_store::StoreError;
use serde::Serialize;

use crate::auth::TokenError;

/// One invalid field of a request.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct FieldError {
    pub field: String,
    pub reason: String,
}

/// Every invalid field of a request, collected before the 422 response.
#[derive(Debug, Default)]
pub struct FieldErrors(Vec<FieldError>);

impl FieldErrors {
    /// Records that `field` is invalid for `reason`.
    pub fn add(&mut self, field: impl Into<String>, reason: impl Into<String>) {
        self.0.push(FieldError { field: field.into(), reason: reason.into() });
    }

    /// Returns `Ok(())` when no field was recorded, else the 422 error listing all of them.
    ///
    /// # Errors
    /// [`ApiError::InvalidFields`] with every recorded field.
    pub fn finish(self) -> Result<(), ApiError> {
        if self.0.is_empty() { Ok(()) } else { Err(ApiError::InvalidFields(self.0)) }
    }
}

/// Failure of a request to the control plane.
#[derive(Debug, thiserror::Error)]
pub enum ApiError {
    /// The bearer token is missing or one of its checks failed.
    #[error("{0}")]
    Unauthenticated(TokenError),
    #[error("the email or the password is wrong")]
    InvalidCredentials,
    #[error("the refresh token is invalid, expired or revoked")]
    InvalidRefreshToken,
    #[error("the invitation is invalid, expired or already accepted")]
    InvalidInvitation,
    /// The caller is authenticated but lacks the role.
    #[error("{0}")]
    Forbidden(&'static str),
    /// An agent that does not exist or that the caller may not use; both get the same response.
    #[error("agent not found")]
    AgentNotFound,
    /// A workspace, member or other record the caller may see does not exist.
    #[error("{0} not found")]
    NotFound(&'static str),
    #[error("{0}")]
    Conflict(String),
    /// The body could not be parsed at all.
    #[error("invalid request body: {0}")]
    InvalidBody(String),
    /// The body is larger than the request body limit.
    #[error("the request body is too large")]
    PayloadTooLarge,
    /// The route takes JSON and the `Content-Type` is missing or another type.
    #[error("the request body must be JSON: send Content-Type: application/json")]
    UnsupportedMediaType,
    /// The body is not valid JSON; `line` and `column` are 1-based, as serde_json reports them.
    #[error("the request body is not valid JSON: {reason} at line {line} column {column}")]
    InvalidJson { reason: String, line: usize, column: usize },
    /// A query parameter is missing or does not parse.
    #[error("invalid query parameter {parameter}: {reason}")]
    InvalidQuery { parameter: String, reason: String },
    #[error("{}", invalid_fields_message(.0))]
    InvalidFields(Vec<FieldError>),
    #[error("too many requests")]
    RateLimited { retry_after: Duration },
    /// A failure the caller cannot fix; logged once with its cause, never shown.
    #[error("internal error")]
    Internal(#[source] Box<dyn std::error::Error + Send + Sync>),
}

impl ApiError {
    /// Returns the HTTP status.
    #[must_use]
    pub fn status(&self) -> StatusCode {
        match self {
            Self::Unauthenticated(_) | Self::InvalidCredentials | Self::InvalidRefreshToken => StatusCode::UNAUTHORIZED,
            Self::InvalidInvitation => StatusCode::BAD_REQUEST,
            Self::Forbidden(_) => StatusCode::FORBIDDEN,
            Self::AgentNotFound | Self::NotFound(_) => StatusCode::NOT_FOUND,
            Self::Conflict(_) => StatusCode::CONFLICT,
            Self::InvalidBody(_) | Self::InvalidJson { .. } | Self::InvalidQuery { .. } => StatusCode::BAD_REQUEST,
            Self::PayloadTooLarge => StatusCode::PAYLOAD_TOO_LARGE,
            Self::UnsupportedMediaType => StatusCode::UNSUPPORTED_MEDIA_TYPE,
            Self::InvalidFields(_) => StatusCode::UNPROCESSABLE_ENTITY,
            Self::RateLimited { .. } => StatusCode::TOO_MANY_REQUESTS,
            Self::Internal(_) => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }

    /// Returns the stable machine-readable code.
    #[must_use]
    pub fn code(&self) -> &'static str {
        match self {
            Self::Unauthenticated(error) => error.code(),
            Self::InvalidCredentials => "invalid_credentials",
            Self::InvalidRefreshToken => "invalid_refresh_token",
            Self::InvalidInvitation => "invalid_invitation",
            Self::Forbidden(_) => "forbidden",
            Self::AgentNotFound => "agent_not_found",
            Self::NotFound(_) => "not_found",
            Self::Conflict(_) => "conflict",
            Self::InvalidBody(_) => "invalid_request",
            Self::PayloadTooLarge => "payload_too_large",
            Self::UnsupportedMediaType => "unsupported_media_type",
            Self::InvalidJson { .. } => "invalid_json",
            Self::InvalidQuery { .. } => "invalid_query",
            Self::InvalidFields(_) => "invalid_fields",
            Self::RateLimited { .. } => "rate_limited",
            Self::Internal(_) => "internal",
        }
    }

    /// Returns the error body sent to the caller.
    #[must_use]
    pub fn body(&self) -> ErrorBody {
        let body = ErrorBody::new(self.code(), self.to_string());
        match self {
            Self::InvalidFields(fields) => body.with_details(serde_json::json!({ "fields": fields })),
            Self::InvalidJson { line, column, .. } => body.with_details(serde_json::json!({ "line": line, "column": column })),
            Self::InvalidQuery { parameter, reason } => {
                body.with_details(serde_json::json!({ "parameter": parameter, "reason": reason }))
            }
            Self::Unauthenticated(error) => body.with_details(serde_json::json!({ "check": error.check() })),
            _ => body,
        }
    }

    /// Wraps any error as an internal one.
    pub fn internal(error: impl std::error::Error + Send + Sync + 'static) -> Self {
        Self::Internal(Box::new(error))
    }
}

impl From<StoreError> for ApiError {
    fn from(error: StoreError) -> Self {
        match error {
            StoreError::Conflict(_) => Self::Conflict("a record with the same unique value already exists".to_owned()),
            other => Self::internal(other),
        }
    }
}

impl From<TokenError> for ApiError {
    fn from(error: TokenError) -> Self {
        Self::Unauthenticated(error)
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        if let Self::Internal(cause) = &self {
            tracing::error!(error = %error_chain(cause.as_ref()), "request failed");
        }
        let status = self.status();
        let mut response = (status, axum::Json(self.body())).into_response();
        if let Self::RateLimited { retry_after } = &self {
            let seconds = retry_after.as_secs() + u64::from(retry_after.subsec_nanos() > 0);
            if let Ok(value) = HeaderValue::from_str(&seconds.max(1).to_string()) {
                response.headers_mut().insert(header::RETRY_AFTER, value);
            }
        }
        if status == StatusCode::UNAUTHORIZED {
            response.headers_mut().insert(header::WWW_AUTHENTICATE, HeaderValue::from_static("Bearer"));
        }
        response
    }
}

/// Lists each field with its reason, so a client that shows only the message still tells the
/// user what to fix.
fn invalid_fields_message(fields: &[FieldError]) -> String {
    let list: Vec<String> = fields.iter().map(|field| format!("{}: {}", field.field, field.reason)).collect();
    format!("the request has invalid fields: {}", list.join("; "))
}

/// Formats an error with every cause, for the log line of an internal error.
fn error_chain(error: &(dyn std::error::Error + 'static)) -> String {
    let mut text = error.to_string();
    let mut source = error.source();
    while let Some(cause) = source {
        text.push_str(": ");
        text.push_str(&cause.to_string());
        source = cause.source();
    }
    text
}
