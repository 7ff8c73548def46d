//! Shared plumbing of the HTTP providers: the POST with bounded retries and the reader of a
//! server-sent events body.

use std::collections::VecDeque;
use std::time::Duration;

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use houston_protocol::sse::{SseDecoder, SseFrame};
use hyper::body::Incoming;
use hyper::{Request, StatusCode};

use super::ProviderError;
use crate::config::RetryPolicy;
use crate::http::HttpClient;

/// Largest error body read from a failed response, in bytes.
const MAX_ERROR_BODY: usize = 64 * 1024;

/// Longest wait for a response head or for the next piece of a streaming body. Anthropic
/// sends `ping` events while a response is being generated, so a silent stream this long is
/// treated as dead rather than slow.
pub(super) const IDLE_TIMEOUT: Duration = Duration::from_secs(120);

/// Sends the request built by `build` and returns the body of a 200 response.
///
/// Answers 429, 503 and 529 are retried up to `retry.max_retries` times with exponential
/// backoff (or the `retry-after` seconds, capped at `retry.max_delay`). No retry happens
/// after a 200, so streamed text is never repeated.
pub(super) async fn post_with_retries(
    client: &HttpClient,
    retry: RetryPolicy,
    build: impl Fn() -> Request<Full<Bytes>>,
) -> Result<Incoming, ProviderError> {
    let mut attempt = 0;
    loop {
        let response = tokio::time::timeout(IDLE_TIMEOUT, client.send(build()))
            .await
            .map_err(|_| ProviderError::Body(format!("no response head within {} s", IDLE_TIMEOUT.as_secs())))??;
        let status = response.status();
        if status == StatusCode::OK {
            return Ok(response.into_body());
        }
        let retry_after = response
            .headers()
            .get("retry-after")
            .and_then(|value| value.to_str().ok())
            .and_then(|value| value.trim().parse::<u64>().ok())
            .map(Duration::from_secs);
        let message = read_error_message(response.into_body()).await;
        let error = match status.as_u16() {
            429 => ProviderError::RateLimited { message },
            503 | 529 => ProviderError::Overloaded { status: status.as_u16(), message },
            other => return Err(ProviderError::Status { status: other, message }),
        };
        if attempt >= retry.max_retries {
            return Err(error);
        }
        let backoff = retry.base_delay.saturating_mul(1 << attempt.min(16));
        let delay = retry_after.unwrap_or(backoff).min(retry.max_delay);
        attempt += 1;
        tracing::warn!(%error, attempt, delay_ms = delay.as_millis() as u64, "retrying the model call");
        tokio::time::sleep(delay).await;
    }
}

/// Reads an error body and returns its `error.message` (Anthropic and OpenAI shape) or the
/// start of the raw text.
async fn read_error_message(mut body: Incoming) -> String {
    let mut bytes = Vec::new();
    while let Some(Ok(frame)) = body.frame().await {
        if let Some(data) = frame.data_ref() {
            bytes.extend_from_slice(data);
        }
        if bytes.len() > MAX_ERROR_BODY {
            break;
        }
    }
    let parsed: Option<serde_json::Value> = serde_json::from_slice(&bytes).ok();
    match parsed.as_ref().and_then(|value| value["error"]["message"].as_str()) {
        Some(message) => message.to_owned(),
        None => String::from_utf8_lossy(&bytes).chars().take(500).collect(),
    }
}

/// Yields the server-sent events frames of a streaming body.
pub(super) struct SseReader {
    body: Incoming,
    decoder: SseDecoder,
    pending: VecDeque<SseFrame>,
}

impl SseReader {
    pub(super) fn new(body: Incoming) -> Self {
        Self { body, decoder: SseDecoder::new(), pending: VecDeque::new() }
    }

    /// Returns the next frame, or `None` at the end of the body.
    pub(super) async fn next(&mut self) -> Result<Option<SseFrame>, ProviderError> {
        loop {
            if let Some(frame) = self.pending.pop_front() {
                return Ok(Some(frame));
            }
            let next = tokio::time::timeout(IDLE_TIMEOUT, self.body.frame())
                .await
                .map_err(|_| ProviderError::Body(format!("the stream sent nothing for {} s", IDLE_TIMEOUT.as_secs())))?;
            let Some(frame) = next else {
                return Ok(None);
            };
            let frame = frame.map_err(|error| ProviderError::Body(error.to_string()))?;
            if let Some(data) = frame.data_ref() {
                self.pending.extend(self.decoder.feed(data));
            }
        }
    }
}
