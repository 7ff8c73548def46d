//! Test harness: an engine served in-process on a loopback port, with a scripted provider
//! stand-in and an HTTP client that reads event streams.

#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::time::Duration;

use futures::StreamExt;
use houston_engine::config::{ProviderKind, RetryPolicy};
use houston_engine::{Engine, EngineConfig, EngineListener, ProviderSettings};
use houston_protocol::sse::SseDecoder;
use houston_protocol::{EngineEndpoint, EventKind, StreamEvent};
use secrecy::SecretString;
use serde_json::{Value, json};

pub const TOKEN: &str = "test-engine-token";

/// Returns the shared fixtures folder (`../shared/fixtures` from the repository root).
pub fn fixtures() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../../shared/fixtures")
}

/// Creates an agent folder with a persona and the Acme handbook as knowledge.
pub fn agent_folder() -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("CLAUDE.md"), "You are the Acme HR assistant.").unwrap();
    std::fs::create_dir_all(dir.path().join("knowledge")).unwrap();
    let handbook = fixtures().join("acme/employee-handbook.md");
    let text = std::fs::read_to_string(&handbook).unwrap_or_else(|error| panic!("read {}: {error}", handbook.display()));
    std::fs::write(dir.path().join("knowledge/handbook.md"), text).unwrap();
    dir
}

/// Provider settings for the Anthropic stand-in, with fast retries.
pub fn anthropic_settings(base_url: &str, key: Option<&str>) -> ProviderSettings {
    ProviderSettings {
        kind: ProviderKind::Anthropic,
        model: "claude-test".into(),
        base_url: base_url.into(),
        api_key: key.map(|key| SecretString::from(key.to_owned())),
        max_tokens: 1024,
        retry: RetryPolicy { max_retries: 2, base_delay: Duration::from_millis(5), max_delay: Duration::from_millis(20) },
    }
}

/// Builds a configuration with short heartbeats, for tests.
pub fn config(dir: &Path, provider: ProviderSettings) -> EngineConfig {
    let mut config = EngineConfig::new(dir, SecretString::from(TOKEN.to_owned()), provider);
    config.heartbeat_interval = Duration::from_millis(200);
    config.shutdown_grace = Duration::from_millis(100);
    config
}

/// An engine served in-process.
pub struct TestEngine {
    pub base: String,
    pub client: reqwest::Client,
    stop: Option<tokio::sync::oneshot::Sender<()>>,
    server: Option<tokio::task::JoinHandle<()>>,
}

impl TestEngine {
    pub async fn start(config: EngineConfig) -> Self {
        let engine = Engine::open(config).expect("open the engine");
        let listener = EngineListener::bind(&"tcp:127.0.0.1:0".parse::<EngineEndpoint>().unwrap()).await.unwrap();
        let EngineEndpoint::Tcp(address) = listener.local_endpoint().unwrap() else { unreachable!() };
        let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
        let server = tokio::spawn(async move {
            engine
                .serve(listener, async move {
                    let _ = stopped.await;
                })
                .await
                .expect("serve");
        });
        Self { base: format!("http://{address}"), client: reqwest::Client::new(), stop: Some(stop), server: Some(server) }
    }

    /// Signals shutdown and waits until the engine has stored its turns and stopped.
    pub async fn shutdown(mut self) {
        let _ = self.stop.take().unwrap().send(());
        tokio::time::timeout(Duration::from_secs(10), self.server.take().unwrap()).await.expect("engine stops").unwrap();
    }

    pub fn post(&self, path: &str) -> reqwest::RequestBuilder {
        self.client.post(format!("{}{path}", self.base)).bearer_auth(TOKEN)
    }

    pub fn get(&self, path: &str) -> reqwest::RequestBuilder {
        self.client.get(format!("{}{path}", self.base)).bearer_auth(TOKEN)
    }

    /// Starts a turn and returns the raw response.
    pub async fn start_turn(&self, session: &str, body: Value) -> reqwest::Response {
        self.post(&format!("/v1/sessions/{session}/turns")).json(&body).send().await.unwrap()
    }

    /// Runs a turn to its end and returns its events.
    pub async fn turn(&self, session: &str, user: &str, message: &str) -> Vec<StreamEvent> {
        let response = self.start_turn(session, json!({"user_id": user, "message": message})).await;
        assert_eq!(response.status(), 200, "turn request failed: {:?}", response.text().await);
        read_events(response).await
    }

    pub async fn history(&self, session: &str, user: &str) -> Value {
        self.get(&format!("/v1/sessions/{session}?user_id={user}")).send().await.unwrap().json().await.unwrap()
    }
}

/// Reads an event stream to its end (with a timeout so a hanging stream fails the test).
pub async fn read_events(response: reqwest::Response) -> Vec<StreamEvent> {
    let mut reader = EventReader::new(response);
    let mut events = Vec::new();
    while let Some(event) = reader.next().await {
        events.push(event);
    }
    events
}

/// Reads events one at a time.
pub struct EventReader {
    stream: futures::stream::BoxStream<'static, reqwest::Result<bytes::Bytes>>,
    decoder: SseDecoder,
    pending: std::collections::VecDeque<StreamEvent>,
}

impl EventReader {
    pub fn new(response: reqwest::Response) -> Self {
        assert_eq!(response.headers()["content-type"], "text/event-stream");
        Self { stream: response.bytes_stream().boxed(), decoder: SseDecoder::new(), pending: Default::default() }
    }

    pub async fn next(&mut self) -> Option<StreamEvent> {
        loop {
            if let Some(event) = self.pending.pop_front() {
                return Some(event);
            }
            let chunk = tokio::time::timeout(Duration::from_secs(15), self.stream.next()).await.expect("event stream stalled")?;
            for frame in self.decoder.feed(&chunk.unwrap()) {
                let event = frame.to_event().unwrap();
                assert_eq!(frame.id.as_deref(), Some(event.seq.to_string().as_str()), "SSE id equals seq");
                self.pending.push_back(event);
            }
        }
    }
}

/// Joins the text of the `message.delta` events.
pub fn text_of(events: &[StreamEvent]) -> String {
    events
        .iter()
        .filter_map(|event| match &event.kind {
            EventKind::MessageDelta { text } => Some(text.as_str()),
            _ => None,
        })
        .collect()
}

/// Returns the wire types of the events.
pub fn types_of(events: &[StreamEvent]) -> Vec<&'static str> {
    events.iter().map(|event| event.kind.type_name()).collect()
}

/// Asserts the seq numbers run 1, 2, 3, … without gaps.
pub fn assert_contiguous(events: &[StreamEvent]) {
    for (index, event) in events.iter().enumerate() {
        assert_eq!(event.seq, index as u64 + 1, "seq of event {index}");
    }
}

/// Reads the records of a session file.
pub fn session_records(dir: &Path, user: &str, session: &str) -> Vec<Value> {
    let path = dir.join(format!(".houston/sessions/{user}/{session}.jsonl"));
    std::fs::read_to_string(&path)
        .unwrap_or_else(|error| panic!("read {}: {error}", path.display()))
        .lines()
        .map(|line| serde_json::from_str(line).unwrap())
        .collect()
}

/// Waits until `condition` holds, polling every 10 ms for up to 10 s.
pub async fn wait_until(mut condition: impl FnMut() -> bool) {
    for _ in 0..1000 {
        if condition() {
            return;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    panic!("condition not met within 10 s");
}

/// Asserts that no file under `dir` contains any of `secrets`.
pub fn assert_no_secret_in(dir: &Path, secrets: &[&str]) {
    let mut pending = vec![dir.to_owned()];
    while let Some(current) = pending.pop() {
        for entry in std::fs::read_dir(&current).unwrap().flatten() {
            let path = entry.path();
            if path.is_dir() {
                pending.push(path);
                continue;
            }
            let content = String::from_utf8_lossy(&std::fs::read(&path).unwrap()).into_owned();
            for secret in secrets {
                assert!(!content.contains(secret), "{} contains a secret", path.display());
            }
        }
    }
}
