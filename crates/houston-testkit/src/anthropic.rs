//! A stand-in for the Anthropic Messages API (`POST /v1/messages` with `"stream": true`).
//!
//! Tests queue [`Reply`]s, built with [`Script`], and each request takes the next one. With
//! an empty queue the stand-in streams a default text reply that quotes the last user
//! message, split into several `text_delta` events. Every request is recorded.
//!
//! ```no_run
//! # async fn example() {
//! use houston_testkit::anthropic::{Script, StandIn};
//! let stand_in = StandIn::start().await;
//! stand_in.push(Script::new().text(&["Hel", "lo"]).end_turn(5).build());
//! // point ANTHROPIC_BASE_URL at stand_in.base_url()
//! # }
//! ```

use std::collections::VecDeque;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::Router;
use axum::body::{Body, Bytes};
use axum::extract::State;
use axum::http::{HeaderMap, Method, StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use serde_json::{Value, json};

use crate::recorded::RecordedRequest;

/// One step of a streamed reply.
#[derive(Debug, Clone)]
pub enum Step {
    /// An SSE event with this `event:` name and JSON `data:`.
    Event { name: String, data: Value },
    /// Raw bytes written as they are (for malformed-stream tests).
    Raw(String),
    /// A pause before the next step.
    Delay(Duration),
}

/// The stand-in's response to one request.
#[derive(Debug, Clone)]
pub enum Reply {
    /// HTTP 200 with a server-sent events body made of these steps.
    Stream(Vec<Step>),
    /// A non-200 answer with an Anthropic error body, for example 529 `overloaded_error`.
    Status { status: u16, error_type: String, message: String, retry_after: Option<u64> },
}

impl Reply {
    /// HTTP 529 `overloaded_error`.
    #[must_use]
    pub fn overloaded() -> Self {
        Self::Status { status: 529, error_type: "overloaded_error".into(), message: "Overloaded".into(), retry_after: None }
    }

    /// HTTP 429 `rate_limit_error`.
    #[must_use]
    pub fn rate_limited() -> Self {
        Self::Status { status: 429, error_type: "rate_limit_error".into(), message: "Rate limited".into(), retry_after: Some(0) }
    }
}

/// Builds a streamed reply event by event, keeping content block indexes in order.
#[derive(Debug, Clone)]
pub struct Script {
    steps: Vec<Step>,
    next_index: u64,
    token_delay: Option<Duration>,
}

impl Default for Script {
    fn default() -> Self {
        Self::new()
    }
}

impl Script {
    /// Starts a reply with `message_start` (10 input tokens, 1 output token).
    #[must_use]
    pub fn new() -> Self {
        Self::with_input_tokens(10)
    }

    /// Starts a reply with `message_start` reporting `input_tokens`.
    #[must_use]
    pub fn with_input_tokens(input_tokens: u64) -> Self {
        let mut script = Self { steps: Vec::new(), next_index: 0, token_delay: None };
        script.event("message_start", json!({
            "type": "message_start",
            "message": {"id": "msg_standin", "type": "message", "role": "assistant", "model": "stand-in",
                        "content": [], "stop_reason": null, "usage": {"input_tokens": input_tokens, "output_tokens": 1}}
        }));
        script
    }

    /// Waits `delay` before every following text or JSON piece (slow tokens).
    #[must_use]
    pub fn token_delay(mut self, delay: Duration) -> Self {
        self.token_delay = Some(delay);
        self
    }

    fn event(&mut self, name: &str, data: Value) {
        self.steps.push(Step::Event { name: name.into(), data });
    }

    fn pause(&mut self) {
        if let Some(delay) = self.token_delay {
            self.steps.push(Step::Delay(delay));
        }
    }

    /// Adds a text block streamed as these pieces.
    #[must_use]
    pub fn text(mut self, pieces: &[&str]) -> Self {
        let index = self.next_index;
        self.next_index += 1;
        self.event("content_block_start", json!({"type": "content_block_start", "index": index, "content_block": {"type": "text", "text": ""}}));
        for piece in pieces {
            self.pause();
            self.event("content_block_delta", json!({"type": "content_block_delta", "index": index, "delta": {"type": "text_delta", "text": piece}}));
        }
        self.event("content_block_stop", json!({"type": "content_block_stop", "index": index}));
        self
    }

    /// Adds a tool-use block whose input arrives as these `partial_json` pieces.
    #[must_use]
    pub fn tool_use(mut self, id: &str, name: &str, json_pieces: &[&str]) -> Self {
        let index = self.next_index;
        self.next_index += 1;
        self.event("content_block_start", json!({"type": "content_block_start", "index": index,
            "content_block": {"type": "tool_use", "id": id, "name": name, "input": {}}}));
        for piece in json_pieces {
            self.pause();
            self.event("content_block_delta", json!({"type": "content_block_delta", "index": index,
                "delta": {"type": "input_json_delta", "partial_json": piece}}));
        }
        self.event("content_block_stop", json!({"type": "content_block_stop", "index": index}));
        self
    }

    /// Adds a `ping` event.
    #[must_use]
    pub fn ping(mut self) -> Self {
        self.event("ping", json!({"type": "ping"}));
        self
    }

    /// Adds an event of a type the client must ignore.
    #[must_use]
    pub fn unknown_event(mut self) -> Self {
        self.event("future_event", json!({"type": "future_event", "detail": 1}));
        self
    }

    /// Adds an `error` event (sent after HTTP 200, as the API does when overloaded mid-stream).
    #[must_use]
    pub fn error(mut self, error_type: &str, message: &str) -> Self {
        self.event("error", json!({"type": "error", "error": {"type": error_type, "message": message}}));
        self
    }

    /// Adds a pause.
    #[must_use]
    pub fn delay(mut self, delay: Duration) -> Self {
        self.steps.push(Step::Delay(delay));
        self
    }

    /// Adds a `message_delta` with this stop reason and cumulative `output_tokens`.
    #[must_use]
    pub fn stop(mut self, stop_reason: &str, output_tokens: u64) -> Self {
        self.event("message_delta", json!({"type": "message_delta",
            "delta": {"stop_reason": stop_reason, "stop_sequence": null}, "usage": {"output_tokens": output_tokens}}));
        self
    }

    /// Adds `message_delta` with `end_turn` and `message_stop`.
    #[must_use]
    pub fn end_turn(self, output_tokens: u64) -> Self {
        self.stop("end_turn", output_tokens).message_stop()
    }

    /// Adds `message_delta` with `tool_use` and `message_stop`.
    #[must_use]
    pub fn end_tool_use(self, output_tokens: u64) -> Self {
        self.stop("tool_use", output_tokens).message_stop()
    }

    /// Adds `message_stop`.
    #[must_use]
    pub fn message_stop(mut self) -> Self {
        self.event("message_stop", json!({"type": "message_stop"}));
        self
    }

    /// Finishes the reply.
    #[must_use]
    pub fn build(self) -> Reply {
        Reply::Stream(self.steps)
    }
}

#[derive(Default)]
struct Shared {
    replies: Mutex<VecDeque<Reply>>,
    requests: Mutex<Vec<RecordedRequest>>,
    default_delay: Mutex<Option<Duration>>,
}

/// A running stand-in. It stops when dropped.
pub struct StandIn {
    address: SocketAddr,
    shared: Arc<Shared>,
    server: tokio::task::JoinHandle<()>,
}

impl Drop for StandIn {
    fn drop(&mut self) {
        self.server.abort();
    }
}

impl StandIn {
    /// Starts a stand-in on `127.0.0.1` with a free port.
    ///
    /// # Panics
    /// Panics when no loopback port can be bound.
    pub async fn start() -> Self {
        Self::start_on("127.0.0.1:0").await
    }

    /// Starts a stand-in on `address`.
    ///
    /// # Panics
    /// Panics when `address` cannot be bound.
    pub async fn start_on(address: &str) -> Self {
        let shared = Arc::new(Shared::default());
        let app = Router::new().route("/v1/messages", post(messages)).with_state(shared.clone());
        let listener = tokio::net::TcpListener::bind(address).await.expect("bind the Anthropic stand-in");
        let address = listener.local_addr().expect("read the stand-in address");
        // Streamed events are small writes that must not wait for Nagle's algorithm.
        let listener = axum::serve::ListenerExt::tap_io(listener, |stream| {
            let _ = stream.set_nodelay(true);
        });
        let server = tokio::spawn(async move {
            let _ = axum::serve(listener, app).await;
        });
        Self { address, shared, server }
    }

    /// Returns the base URL for `ANTHROPIC_BASE_URL`, such as `http://127.0.0.1:4010`.
    #[must_use]
    pub fn base_url(&self) -> String {
        format!("http://{}", self.address)
    }

    /// Returns the listening address.
    #[must_use]
    pub fn address(&self) -> SocketAddr {
        self.address
    }

    /// Queues a reply for the next request.
    pub fn push(&self, reply: Reply) {
        self.shared.replies.lock().expect("stand-in lock").push_back(reply);
    }

    /// Sets the pause between the pieces of default replies.
    pub fn set_default_token_delay(&self, delay: Option<Duration>) {
        *self.shared.default_delay.lock().expect("stand-in lock") = delay;
    }

    /// Returns the requests received so far.
    #[must_use]
    pub fn requests(&self) -> Vec<RecordedRequest> {
        self.shared.requests.lock().expect("stand-in lock").clone()
    }
}

/// Builds the default reply, which quotes the last user message (or tool result) in several pieces.
#[must_use]
pub fn default_reply(request: &RecordedRequest, delay: Option<Duration>) -> Reply {
    let quoted = request.last_user_text();
    let text = format!("Stand-in reply. You wrote: {quoted}");
    let pieces: Vec<&str> = text.split_inclusive(' ').collect();
    let mut script = Script::new();
    if let Some(delay) = delay {
        script = script.token_delay(delay);
    }
    script.text(&pieces).end_turn(pieces.len() as u64).build()
}

async fn messages(State(shared): State<Arc<Shared>>, method: Method, uri: Uri, headers: HeaderMap, body: Bytes) -> Response {
    let recorded = RecordedRequest {
        method: method.to_string(),
        uri: uri.to_string(),
        headers,
        body: serde_json::from_slice(&body).unwrap_or(Value::Null),
    };
    let queued = shared.replies.lock().expect("stand-in lock").pop_front();
    let delay = *shared.default_delay.lock().expect("stand-in lock");
    let reply = queued.unwrap_or_else(|| default_reply(&recorded, delay));
    shared.requests.lock().expect("stand-in lock").push(recorded);
    match reply {
        Reply::Status { status, error_type, message, retry_after } => {
            let status = StatusCode::from_u16(status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
            let body = json!({"type": "error", "error": {"type": error_type, "message": message}});
            let mut response = (status, axum::Json(body)).into_response();
            if let Some(seconds) = retry_after {
                response.headers_mut().insert("retry-after", seconds.into());
            }
            response
        }
        Reply::Stream(steps) => stream_response(steps),
    }
}

/// Streams the steps as server-sent events, one write per event.
pub(crate) fn stream_response(steps: Vec<Step>) -> Response {
    let stream = futures::stream::unfold(steps.into_iter(), |mut steps| async move {
        loop {
            match steps.next()? {
                Step::Delay(delay) => tokio::time::sleep(delay).await,
                Step::Raw(text) => return Some((Ok::<_, std::io::Error>(Bytes::from(text)), steps)),
                Step::Event { name, data } => {
                    let frame = format!("event: {name}\ndata: {data}\n\n");
                    return Some((Ok(Bytes::from(frame)), steps));
                }
            }
        }
    });
    ([("content-type", "text/event-stream"), ("cache-control", "no-cache")], Body::from_stream(stream)).into_response()
}
