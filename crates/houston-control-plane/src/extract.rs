//! Request extractors whose rejections use the one error body, in place of axum's plain-text
//! rejections. Every body and query error of the control plane goes through here:
//!
//! - a body over the size limit: 413 `payload_too_large`;
//! - a body that is not JSON: 400 `invalid_json` with `details.line` and `details.column`;
//! - a JSON body with a missing, unknown or mistyped field: 422 `invalid_fields` with
//!   `details.fields: [{"field", "reason"}]`, a missing field having the reason `is missing`;
//! - a query string that does not parse: 400 `invalid_query` naming the parameter.

use axum::body::Bytes;
use axum::extract::{FromRequest, FromRequestParts, Request};
use axum::http::request::Parts;
use axum::http::{StatusCode, header};
use serde::de::DeserializeOwned;

use crate::error::{ApiError, FieldError};

/// A request body of any content type, read up to the body size limit.
pub struct RawBody(pub Bytes);

impl<S: Send + Sync> FromRequest<S> for RawBody {
    type Rejection = ApiError;

    async fn from_request(request: Request, state: &S) -> Result<Self, Self::Rejection> {
        match Bytes::from_request(request, state).await {
            Ok(bytes) => Ok(Self(bytes)),
            Err(rejection) if rejection.status() == StatusCode::PAYLOAD_TOO_LARGE => Err(ApiError::PayloadTooLarge),
            Err(rejection) => Err(ApiError::InvalidBody(rejection.body_text())),
        }
    }
}

/// A JSON body (`Content-Type: application/json`) parsed into `T`.
pub struct JsonBody<T>(pub T);

impl<S, T> FromRequest<S> for JsonBody<T>
where
    S: Send + Sync,
    T: DeserializeOwned,
{
    type Rejection = ApiError;

    async fn from_request(request: Request, state: &S) -> Result<Self, Self::Rejection> {
        if !has_json_content_type(request.headers()) {
            return Err(ApiError::UnsupportedMediaType);
        }
        let RawBody(bytes) = RawBody::from_request(request, state).await?;
        parse_json(&bytes).map(Self)
    }
}

fn has_json_content_type(headers: &axum::http::HeaderMap) -> bool {
    let Some(value) = headers.get(header::CONTENT_TYPE).and_then(|value| value.to_str().ok()) else {
        return false;
    };
    let essence = value.split(';').next().unwrap_or_default().trim().to_ascii_lowercase();
    essence == "application/json" || (essence.starts_with("application/") && essence.ends_with("+json"))
}

/// Parses a JSON body, telling a syntax error (400 `invalid_json`) from a field error (422).
///
/// # Errors
/// [`ApiError::InvalidJson`] or [`ApiError::InvalidFields`].
pub fn parse_json<T: DeserializeOwned>(body: &[u8]) -> Result<T, ApiError> {
    let deserializer = &mut serde_json::Deserializer::from_slice(body);
    serde_path_to_error::deserialize(deserializer).map_err(|error| {
        let path = error.path().to_string();
        let inner = error.into_inner();
        if inner.is_data() {
            ApiError::InvalidFields(vec![field_error(&path, &without_position(&inner))])
        } else {
            ApiError::InvalidJson { reason: without_position(&inner), line: inner.line(), column: inner.column() }
        }
    })
}

/// Names the field of a serde data error. serde_path_to_error reports a missing field at the
/// enclosing object's path, with the field's name only in the message, and an unknown field
/// at its own path.
pub(crate) fn field_error(path: &str, message: &str) -> FieldError {
    let join = |name: &str| if path == "." { name.to_owned() } else { format!("{path}.{name}") };
    if message.starts_with("unknown field `") && path != "." {
        return FieldError { field: path.to_owned(), reason: "is not a known field".to_owned() };
    }
    for (prefix, reason) in [("missing field `", "is missing"), ("unknown field `", "is not a known field")] {
        if let Some(rest) = message.strip_prefix(prefix)
            && let Some((name, _)) = rest.split_once('`')
        {
            return FieldError { field: join(name), reason: reason.to_owned() };
        }
    }
    let field = if path == "." { "body".to_owned() } else { path.to_owned() };
    FieldError { field, reason: message.to_owned() }
}

/// serde_json's message without the " at line L column C" suffix, which is sent separately.
fn without_position(error: &serde_json::Error) -> String {
    let text = error.to_string();
    match text.rfind(" at line ") {
        Some(end) if error.line() > 0 => text[..end].to_owned(),
        _ => text,
    }
}

/// A query string parsed into `T`.
pub struct QueryParams<T>(pub T);

impl<S: Send + Sync, T: DeserializeOwned> FromRequestParts<S> for QueryParams<T> {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, _state: &S) -> Result<Self, Self::Rejection> {
        match axum::extract::Query::<T>::try_from_uri(&parts.uri) {
            Ok(axum::extract::Query(value)) => Ok(Self(value)),
            Err(rejection) => Err(query_error(&rejection.body_text())),
        }
    }
}

/// Builds the 400 for axum's query rejection text, `Failed to deserialize query string:
/// [PARAMETER: ]REASON` in axum 0.8, where a missing parameter is only named in the reason.
fn query_error(text: &str) -> ApiError {
    let detail = text.split_once(": ").map_or(text, |(_, rest)| rest);
    if let Some(rest) = detail.strip_prefix("missing field `")
        && let Some((name, _)) = rest.split_once('`')
    {
        return ApiError::InvalidQuery { parameter: name.to_owned(), reason: "is missing".to_owned() };
    }
    match detail.split_once(": ") {
        Some((parameter, reason)) => ApiError::InvalidQuery { parameter: parameter.to_owned(), reason: reason.to_owned() },
        None => ApiError::InvalidQuery { parameter: "query".to_owned(), reason: detail.to_owned() },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Debug, serde::Deserialize)]
    #[serde(deny_unknown_fields)]
    #[allow(dead_code)]
    struct Body {
        name: String,
        count: u32,
    }

    #[test]
    fn json_syntax_error_has_position() {
        let error = parse_json::<Body>(b"{\n  \"name\": ").unwrap_err();
        let ApiError::InvalidJson { line, column, .. } = error else { panic!("{error:?}") };
        assert_eq!(line, 2);
        assert!(column > 0);
    }

    #[test]
    fn json_missing_field_is_named() {
        let error = parse_json::<Body>(br#"{"name": "a"}"#).unwrap_err();
        let ApiError::InvalidFields(fields) = error else { panic!("{error:?}") };
        assert_eq!(fields, vec![FieldError { field: "count".into(), reason: "is missing".into() }]);
    }

    #[test]
    fn json_unknown_field_is_named() {
        let error = parse_json::<Body>(br#"{"name": "a", "count": 1, "user_id": "admin"}"#).unwrap_err();
        let ApiError::InvalidFields(fields) = error else { panic!("{error:?}") };
        assert_eq!(fields[0].field, "user_id");
    }

    #[test]
    fn json_wrong_type_names_path() {
        let error = parse_json::<Body>(br#"{"name": "a", "count": "x"}"#).unwrap_err();
        let ApiError::InvalidFields(fields) = error else { panic!("{error:?}") };
        assert_eq!(fields[0].field, "count");
        assert!(fields[0].reason.starts_with("invalid type"), "{}", fields[0].reason);
    }

    #[derive(Debug, serde::Deserialize)]
    #[allow(dead_code)]
    struct Query {
        after: Option<u64>,
        wait_for: String,
    }

    #[test]
    fn query_errors_name_parameter() {
        let uri: axum::http::Uri = "/x?after=abc&wait_for=slack".parse().unwrap();
        let text = axum::extract::Query::<Query>::try_from_uri(&uri).unwrap_err().body_text();
        let ApiError::InvalidQuery { parameter, .. } = query_error(&text) else { panic!("{text}") };
        assert_eq!(parameter, "after");

        let uri: axum::http::Uri = "/x?after=1".parse().unwrap();
        let text = axum::extract::Query::<Query>::try_from_uri(&uri).unwrap_err().body_text();
        let ApiError::InvalidQuery { parameter, reason } = query_error(&text) else { panic!("{text}") };
        assert_eq!(parameter, "wait_for");
        assert_eq!(reason, "is missing");
    }
}
