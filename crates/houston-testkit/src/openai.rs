//! A stand-in for OpenAI-compatible Chat Completions (`POST /v1/chat/completions` with
//! `"stream": true`), as served by OpenAI, vLLM, Ollama and llama.cpp.
//!
//! Tests queue chunk lists built with [`ChunkScript`]; with an empty queue the stand-in
//! streams a default reply quoting the last user message. Every request is recorded.

use std::collections::VecDeque;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};

use axum::Router;
use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, Method, Uri};
use axum::response::Response;
use axum::routing::post;
use serde_json::{Value, json};

use crate::anthropic::{Step, stream_response};
use crate::recorded::RecordedRequest;

/// Builds a streamed Chat Completions reply chunk by chunk.
#[derive(Debug, Clone, Default)]
pub struct ChunkScript {
    steps: Vec<Step>,
}

impl ChunkScript {
    /// Starts an empty reply.
    #[must_use]
    pub fn new() -> Self {
        Self::default()
    }

    fn chunk(mut self, choice: Value) -> Self {
        let data = json!({"id": "chatcmpl-standin", "object": "chat.completion.chunk", "model": "stand-in", "choices": [choice]});
        self.steps.push(Step::Raw(format!("data: {data}\n\n")));
        self
    }

    /// Adds text pieces, one chunk each.
    #[must_use]
    pub fn text(mut self, pieces: &[&str]) -> Self {
        for piece in pieces {
            self = self.chunk(json!({"index": 0, "delta": {"content": piece}, "finish_reason": null}));
        }
        self
    }

    /// Adds a tool call whose arguments arrive as these pieces.
    #[must_use]
    pub fn tool_call(mut self, index: u64, id: &str, name: &str, argument_pieces: &[&str]) -> Self {
        self = self.chunk(json!({"index": 0, "delta": {"tool_calls": [
            {"index": index, "id": id, "type": "function", "function": {"name": name, "arguments": ""}}]}, "finish_reason": null}));
        for piece in argument_pieces {
            self = self.chunk(json!({"index": 0, "delta": {"tool_calls": [
                {"index": index, "function": {"arguments": piece}}]}, "finish_reason": null}));
        }
        self
    }

    /// Adds the finish chunk, the usage chunk and `[DONE]`.
    #[must_use]
    pub fn finish(mut self, reason: &str, prompt_tokens: u64, completion_tokens: u64) -> Vec<Step> {
        self = self.chunk(json!({"index": 0, "delta": {}, "finish_reason": reason}));
        let usage = json!({"id": "chatcmpl-standin", "object": "chat.completion.chunk", "choices": [],
            "usage": {"prompt_tokens": prompt_tokens, "completion_tokens": completion_tokens}});
        self.steps.push(Step::Raw(format!("data: {usage}\n\n")));
        self.steps.push(Step::Raw("data: [DONE]\n\n".into()));
        self.steps
    }
}

#[derive(Default)]
struct Shared {
    replies: Mutex<VecDeque<Vec<Step>>>,
    requests: Mutex<Vec<RecordedRequest>>,
}

/// A running OpenAI-compatible stand-in. It stops when dropped.
pub struct OpenAiStandIn {
    address: SocketAddr,
    shared: Arc<Shared>,
    server: tokio::task::JoinHandle<()>,
}

impl Drop for OpenAiStandIn {
    fn drop(&mut self) {
        self.server.abort();
    }
}

impl OpenAiStandIn {
    /// Starts the stand-in on `127.0.0.1` with a free port.
    ///
    /// # Panics
    /// Panics when no loopback port can be bound.
    pub async fn start() -> Self {
        let shared = Arc::new(Shared::default());
        let app = Router::new().route("/v1/chat/completions", post(completions)).with_state(shared.clone());
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind the OpenAI stand-in");
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

    /// Returns the base URL for `OPENAI_BASE_URL`, including `/v1`.
    #[must_use]
    pub fn base_url(&self) -> String {
        format!("http://{}/v1", self.address)
    }

    /// Queues a reply for the next request.
    pub fn push(&self, steps: Vec<Step>) {
        self.shared.replies.lock().expect("stand-in lock").push_back(steps);
    }

    /// Returns the requests received so far.
    #[must_use]
    pub fn requests(&self) -> Vec<RecordedRequest> {
        self.shared.requests.lock().expect("stand-in lock").clone()
    }
}

async fn completions(State(shared): State<Arc<Shared>>, method: Method, uri: Uri, headers: HeaderMap, body: Bytes) -> Response {
    let recorded = RecordedRequest {
        method: method.to_string(),
        uri: uri.to_string(),
        headers,
        body: serde_json::from_slice(&body).unwrap_or(Value::Null),
    };
    let queued = shared.replies.lock().expect("stand-in lock").pop_front();
    let steps = queued.unwrap_or_else(|| {
        let text = format!("Stand-in reply. You wrote: {}", recorded.last_user_text());
        let pieces: Vec<&str> = text.split_inclusive(' ').collect();
        ChunkScript::new().text(&pieces).finish("stop", 10, pieces.len() as u64)
    });
    shared.requests.lock().expect("stand-in lock").push(recorded);
    stream_response(steps)
}
