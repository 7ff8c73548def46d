//! The one place engine errors become HTTP responses with the shared error body.

use axum::Json;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use houston_protocol::ErrorBody;
use serde_json::json;

/// An invalid field of a request and the reason.
#[derive(Debug, Clone)]
pub struct FieldError {
    pub field: String,
    pub reason: String,
}

impl FieldError {
    /// Creates a field error.
    pub fn new(field: impl Into<String>, reason: impl Into<String>) -> Self {
        Self { field: field.into(), reason: reason.into() }
    }
}

/// An error response: status plus error body.
#[derive(Debug)]
pub struct ApiError {
    status: StatusCode,
    body: ErrorBody,
}

impl ApiError {
    fn new(status: StatusCode, code: &str, message: impl Into<String>) -> Self {
        Self { status, body: ErrorBody::new(code, message) }
    }

    /// 422 `invalid_fields` listing every invalid field in `details.fields`.
    #[must_use]
    pub fn invalid(fields: Vec<FieldError>) -> Self {
        let summary: Vec<String> = fields.iter().map(|f| format!("{}: {}", f.field, f.reason)).collect();
        let details: Vec<_> = fields.iter().map(|f| json!({"field": f.field, "reason": f.reason})).collect();
        let message = format!("the request has invalid fields: {}", summary.join("; "));
        let mut error = Self::new(StatusCode::UNPROCESSABLE_ENTITY, "invalid_fields", message);
        error.body = error.body.with_details(json!({ "fields": details }));
        error
    }

    /// 400 `invalid_json` with the 1-based position of the syntax error in `details`.
    #[must_use]
    pub fn invalid_json(reason: &str, line: usize, column: usize) -> Self {
        let message = format!("the request body is not valid JSON: {reason} at line {line} column {column}");
        let mut error = Self::new(StatusCode::BAD_REQUEST, "invalid_json", message);
        error.body = error.body.with_details(json!({"line": line, "column": column}));
        error
    }

    /// 413 `payload_too_large`.
    #[must_use]
    pub fn payload_too_large() -> Self {
        Self::new(StatusCode::PAYLOAD_TOO_LARGE, "payload_too_large", "the request body is too large")
    }

    /// 401 `unauthorized`.
    #[must_use]
    pub fn unauthorized() -> Self {
        Self::new(StatusCode::UNAUTHORIZED, "unauthorized", "missing or invalid bearer token")
    }

    /// 404 with a specific code.
    #[must_use]
    pub fn not_found(code: &str, message: impl Into<String>) -> Self {
        Self::new(StatusCode::NOT_FOUND, code, message)
    }

    /// 409 with a specific code and details.
    #[must_use]
    pub fn conflict(code: &str, message: impl Into<String>, details: serde_json::Value) -> Self {
        let mut error = Self::new(StatusCode::CONFLICT, code, message);
        error.body = error.body.with_details(details);
        error
    }

    /// 503 `engine_stopping`.
    #[must_use]
    pub fn stopping() -> Self {
        Self::new(StatusCode::SERVICE_UNAVAILABLE, "engine_stopping", "the engine is shutting down; retry on a new runtime")
    }

    /// 500 `internal`: logs the cause once and hides it from the client.
    #[must_use]
    pub fn internal(operation: &str, cause: &dyn std::fmt::Display) -> Self {
        tracing::error!(%cause, "failed to {operation}");
        Self::new(StatusCode::INTERNAL_SERVER_ERROR, "internal", format!("failed to {operation}"))
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        (self.status, Json(self.body)).into_response()
    }
}
