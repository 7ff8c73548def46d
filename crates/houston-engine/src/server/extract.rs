//! Body parsing whose failures use the shared error body, in place of axum's plain-text
//! rejections. A body over the size limit gets 413 `payload_too_large`, a body that is not
//! JSON gets 400 `invalid_json` with the position, and a missing or mistyped field gets 422
//! `invalid_fields` naming the field (a missing field has the reason `is missing`).

use axum::body::Bytes;
use axum::extract::{FromRequest, Request};
use axum::http::StatusCode;
use serde::de::DeserializeOwned;

use super::error::{ApiError, FieldError};

/// A request body read up to the body size limit.
pub(super) struct RawBody(pub Bytes);

impl<S: Send + Sync> FromRequest<S> for RawBody {
    type Rejection = ApiError;

    async fn from_request(request: Request, state: &S) -> Result<Self, Self::Rejection> {
        match Bytes::from_request(request, state).await {
            Ok(bytes) => Ok(Self(bytes)),
            Err(rejection) if rejection.status() == StatusCode::PAYLOAD_TOO_LARGE => Err(ApiError::payload_too_large()),
            Err(rejection) => Err(ApiError::invalid(vec![FieldError::new("body", rejection.body_text())])),
        }
    }
}

/// A failed JSON parse: the body is not JSON, or one field is missing or invalid.
pub(super) enum JsonError {
    Syntax(ApiError),
    Field(FieldError),
}

/// Parses a JSON body, telling a syntax error from a field error.
pub(super) fn parse_json<T: DeserializeOwned>(body: &[u8]) -> Result<T, JsonError> {
    let deserializer = &mut serde_json::Deserializer::from_slice(body);
    serde_path_to_error::deserialize(deserializer).map_err(|error| {
        let path = error.path().to_string();
        let inner = error.into_inner();
        let reason = without_position(&inner);
        if inner.is_data() {
            JsonError::Field(field_error(&path, &reason))
        } else {
            JsonError::Syntax(ApiError::invalid_json(&reason, inner.line(), inner.column()))
        }
    })
}

/// Names the field of a serde data error. serde_path_to_error reports a missing field at the
/// enclosing object's path, with the field's name only in the message, and an unknown field
/// at its own path.
fn field_error(path: &str, message: &str) -> FieldError {
    let join = |name: &str| if path == "." { name.to_owned() } else { format!("{path}.{name}") };
    if message.starts_with("unknown field `") && path != "." {
        return FieldError::new(path, "is not a known field");
    }
    for (prefix, reason) in [("missing field `", "is missing"), ("unknown field `", "is not a known field")] {
        if let Some(rest) = message.strip_prefix(prefix)
            && let Some((name, _)) = rest.split_once('`')
        {
            return FieldError::new(join(name), reason);
        }
    }
    FieldError::new(if path == "." { "body" } else { path }, message)
}

/// serde_json's message without the " at line L column C" suffix, which is sent separately.
fn without_position(error: &serde_json::Error) -> String {
    let text = error.to_string();
    match text.rfind(" at line ") {
        Some(end) if error.line() > 0 => text[..end].to_owned(),
        _ => text,
    }
}
