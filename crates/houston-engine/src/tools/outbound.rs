//! JSON requests of the tool brokers, and the size cap on tool results.
//!
//! Requests go over [`HttpClient`], so tool traffic takes the same route as model traffic:
//! the egress proxy when `HOUSTON_EGRESS_SOCKET` is set. Every tool result is capped before it
//! goes back to the model.

use std::time::Duration;

use bytes::Bytes;
use http_body_util::{BodyExt, Full, Limited};
use hyper::header::{ACCEPT, CONTENT_TYPE, HeaderMap, HeaderName, HeaderValue};
use hyper::{Method, Request, StatusCode};
use serde_json::Value;

use crate::http::HttpClient;

/// Largest response body a broker reads, in bytes; larger bodies fail the call.
pub const MAX_RESPONSE_BYTES: usize = 4 * 1024 * 1024;

/// Default cap on a tool result sent back to the model, in bytes.
pub const DEFAULT_MAX_RESULT_BYTES: usize = 16 * 1024;

/// A response of a broker request.
#[derive(Debug)]
pub struct Reply {
    pub status: StatusCode,
    pub headers: HeaderMap,
    pub body: Bytes,
}

impl Reply {
    /// Parses the body as JSON, or returns `Value::Null` for an empty or non-JSON body.
    #[must_use]
    pub fn json(&self) -> Value {
        serde_json::from_slice(&self.body).unwrap_or(Value::Null)
    }
}

/// Sends one request with a JSON body (or none) and reads the whole response within
/// `timeout`.
///
/// # Errors
/// Returns a message naming the URL when the URL is invalid, the exchange fails, the body
/// exceeds [`MAX_RESPONSE_BYTES`] or `timeout` passes.
pub async fn send(
    client: &HttpClient,
    method: Method,
    url: &str,
    headers: &[(HeaderName, HeaderValue)],
    body: Option<&Value>,
    timeout: Duration,
) -> Result<Reply, String> {
    let bytes = body.map(|value| Bytes::from(value.to_string())).unwrap_or_default();
    let mut builder = Request::builder().method(method).uri(url).header(ACCEPT, "application/json");
    if body.is_some() {
        builder = builder.header(CONTENT_TYPE, "application/json");
    }
    for (name, value) in headers {
        builder = builder.header(name, value);
    }
    let request = builder.body(Full::new(bytes)).map_err(|error| format!("invalid request to {url}: {error}"))?;

    let exchange = async {
        let response = client.send(request).await.map_err(|error| error.to_string())?;
        let (parts, body) = response.into_parts();
        let collected = Limited::new(body, MAX_RESPONSE_BYTES)
            .collect()
            .await
            .map_err(|error| format!("failed to read the response of {url}: {error}"))?;
        Ok(Reply { status: parts.status, headers: parts.headers, body: collected.to_bytes() })
    };
    match tokio::time::timeout(timeout, exchange).await {
        Ok(result) => result,
        Err(_) => Err(format!("timed out after {} s waiting for {url}", timeout.as_secs())),
    }
}

/// Cuts `text` to at most `max_bytes` on a character boundary and appends how many bytes were left out,
/// so a huge tool result cannot fill the model's context.
#[must_use]
pub fn cap_result(text: String, max_bytes: usize) -> String {
    if text.len() <= max_bytes {
        return text;
    }
    let mut end = max_bytes;
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    let omitted = text.len() - end;
    format!("{}\n[truncated: {omitted} more bytes of the tool result were left out]", &text[..end])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cap_result_keeps_short_text() {
        assert_eq!(cap_result("short".into(), 10), "short");
    }

    #[test]
    fn cap_result_cuts_on_char_boundary() {
        let capped = cap_result("ééééé".into(), 3);
        assert!(capped.starts_with('é'), "{capped}");
        assert!(!capped.starts_with("éé"), "{capped}");
        assert!(capped.contains("[truncated: 8 more bytes"), "{capped}");
    }
}
