//! Tests of the chat routes against in-memory ports and a scripted engine on a Unix socket.

use std::sync::Arc;
use std::time::Duration;

use houston_protocol::sse::SseDecoder;
use houston_protocol::{EventKind, StreamEvent};
use serde_json::{Value, json};

use super::ports::TurnStatus;
use super::service::ChatService;
use super::test_support::Fixture;

struct Server {
    url: String,
    client: reqwest::Client,
}

async fn serve(service: Arc<ChatService>) -> Server {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, super::router(service)).await.unwrap() });
    Server { url, client: reqwest::Client::new() }
}

impl Server {
    async fn post_chat(&self, token: &str, body: Value) -> reqwest::Response {
        self.client
            .post(format!("{}/v1/chat", self.url))
            .bearer_auth(token)
            .json(&body)
            .send()
            .await
            .unwrap()
    }

    async fn get(&self, token: &str, path: &str) -> reqwest::Response {
        self.client.get(format!("{}{path}", self.url)).bearer_auth(token).send().await.unwrap()
    }
}

/// Reads a whole SSE body, or its first `limit` events.
async fn read_events(mut response: reqwest::Response, limit: usize) -> Vec<StreamEvent> {
    let mut decoder = SseDecoder::new();
    let mut events = Vec::new();
    while events.len() < limit {
        let Some(chunk) = response.chunk().await.unwrap() else { break };
        events.extend(decoder.feed(&chunk).into_iter().map(|f| f.to_event().unwrap()));
    }
    events.truncate(limit);
    events
}

fn types(events: &[StreamEvent]) -> Vec<&'static str> {
    events.iter().map(|e| e.kind.type_name()).collect()
}

fn seqs(events: &[StreamEvent]) -> Vec<u64> {
    events.iter().map(|e| e.seq).collect()
}

fn events_path(event: &StreamEvent, session: &str) -> String {
    format!("/v1/agents/hr/sessions/{session}/turns/{}/events", event.turn_id)
}

fn session_of(events: &[StreamEvent]) -> String {
    match &events[0].kind {
        EventKind::TurnAccepted { session_id } => session_id.to_string(),
        other => panic!("first event is {other:?}"),
    }
}

#[tokio::test]
async fn cold_chat_streams_waking_then_answer() {
    let fixture = Fixture::new().await;
    let server = serve(ChatService::new(fixture.ports())).await;

    let response = server.post_chat("juan", json!({"agent_id": "hr", "message": "vacation?"})).await;
    assert_eq!(response.status(), 200);
    assert_eq!(response.headers()["content-type"], "text/event-stream");
    assert_eq!(response.headers()["cache-control"], "no-cache");
    assert_eq!(response.headers()["x-accel-buffering"], "no");
    let events = read_events(response, usize::MAX).await;

    let expected = ["turn.accepted", "agent.waking", "agent.ready", "message.delta", "message.delta", "turn.completed"];
    assert_eq!(types(&events), expected);
    assert_eq!(seqs(&events), vec![1, 2, 3, 4, 5, 6]);
    assert!(matches!(events[2].kind, EventKind::AgentReady { cold_start_ms: 42 }));

    tokio::time::sleep(Duration::from_millis(50)).await;
    let usage = fixture.turns.usage.lock().unwrap().clone();
    assert_eq!(usage.len(), 1);
    assert_eq!(usage[0].1, TurnStatus::Completed);
    assert_eq!(usage[0].2.usage.output_tokens, 2);
    assert!(usage[0].2.woke_runtime);
    assert_eq!(*fixture.runtimes.leases.lock().unwrap(), 0, "the lease must end with the turn");
}

#[tokio::test]
async fn warm_chat_skips_waking() {
    let fixture = Fixture::new().await;
    *fixture.runtimes.awake.lock().unwrap() = true;
    let server = serve(ChatService::new(fixture.ports())).await;

    let response = server.post_chat("juan", json!({"agent_id": "hr", "message": "hi"})).await;
    let events = read_events(response, usize::MAX).await;

    assert_eq!(types(&events), ["turn.accepted", "message.delta", "message.delta", "turn.completed"]);
    assert_eq!(seqs(&events), vec![1, 2, 3, 4]);
}

#[tokio::test]
async fn ungranted_agent_answers_like_unknown() {
    let fixture = Fixture::new().await;
    let server = serve(ChatService::new(fixture.ports())).await;

    let sales = server.post_chat("juan", json!({"agent_id": "sales", "message": "hi"})).await;
    let unknown = server.post_chat("juan", json!({"agent_id": "nope", "message": "hi"})).await;

    assert_eq!(sales.status(), 404);
    assert_eq!(unknown.status(), 404);
    assert_eq!(sales.text().await.unwrap(), unknown.text().await.unwrap());
    assert_eq!(*fixture.engine.started.lock().unwrap(), 0);
    let denied = fixture.access.audit.lock().unwrap().iter().filter(|a| !a.2).count();
    assert_eq!(denied, 2, "each denial is audited");
}

#[tokio::test]
async fn invalid_body_lists_fields_before_side_effects() {
    let fixture = Fixture::new().await;
    let server = serve(ChatService::new(fixture.ports())).await;

    let response = server.post_chat("juan", json!({"agent_id": "hr", "message": "", "session_id": "../x"})).await;

    assert_eq!(response.status(), 422);
    let body: Value = response.json().await.unwrap();
    let fields: Vec<_> = body["error"]["details"]["fields"].as_array().unwrap().iter().map(|f| f["field"].clone()).collect();
    assert!(fields.contains(&json!("message")), "{body}");
    assert!(fields.contains(&json!("session_id")), "{body}");
    assert!(fixture.access.audit.lock().unwrap().is_empty(), "no audit before validation");
}

#[tokio::test]
async fn missing_token_is_401() {
    let fixture = Fixture::new().await;
    let server = serve(ChatService::new(fixture.ports())).await;

    let response = server.client.post(format!("{}/v1/chat", server.url)).json(&json!({})).send().await.unwrap();
    assert_eq!(response.status(), 401);
    let wrong = server.post_chat("mallory", json!({"agent_id": "hr", "message": "hi"})).await;
    assert_eq!(wrong.status(), 401);
}

#[tokio::test]
async fn rate_limited_chat_is_429_with_retry_after() {
    let fixture = Fixture::new().await;
    *fixture.access.limit.lock().unwrap() = Some(0);
    let server = serve(ChatService::new(fixture.ports())).await;

    let response = server.post_chat("juan", json!({"agent_id": "hr", "message": "hi"})).await;

    assert_eq!(response.status(), 429);
    assert_eq!(response.headers()["retry-after"], "7");
    assert_eq!(*fixture.engine.started.lock().unwrap(), 0);
}

#[tokio::test]
async fn resume_gives_each_event_once() {
    let fixture = Fixture::new().await;
    let server = serve(ChatService::new(fixture.ports())).await;
    let response = server.post_chat("juan", json!({"agent_id": "hr", "message": "hi"})).await;
    let all = read_events(response, usize::MAX).await;
    let session = session_of(&all);

    for after in 0..=all.len() as u64 {
        let by_query = server.get("juan", &format!("{}?after={after}", events_path(&all[0], &session))).await;
        let tail = read_events(by_query, usize::MAX).await;
        assert_eq!(tail, all[after as usize..].to_vec(), "after={after}");

        let by_header = server
            .client
            .get(format!("{}{}", server.url, events_path(&all[0], &session)))
            .bearer_auth("juan")
            .header("last-event-id", after.to_string())
            .send()
            .await
            .unwrap();
        assert_eq!(read_events(by_header, usize::MAX).await, all[after as usize..].to_vec());
    }
}

#[tokio::test]
async fn other_replica_resumes_through_engine() {
    let fixture = Fixture::new().await;
    let first = serve(ChatService::new(fixture.ports())).await;
    let second = serve(ChatService::new(fixture.ports())).await;
    let response = first.post_chat("juan", json!({"agent_id": "hr", "message": "hi"})).await;
    let all = read_events(response, usize::MAX).await;
    assert_eq!(all.len(), 6, "cold start: {:?}", types(&all));
    let session = session_of(&all);

    for after in 0..=all.len() as u64 {
        let path = format!("{}?after={after}", events_path(&all[0], &session));
        let tail = read_events(second.get("juan", &path).await, usize::MAX).await;
        assert_eq!(tail, all[after as usize..].to_vec(), "after={after}");
    }
}

#[tokio::test]
async fn dropped_stream_resumes_mid_turn() {
    let fixture = Fixture::new().await;
    *fixture.runtimes.awake.lock().unwrap() = true;
    let server = serve(ChatService::new(fixture.ports())).await;
    let response = server.post_chat("juan", json!({"agent_id": "hr", "message": "slow"})).await;
    let head = read_events(response, 4).await;
    let session = session_of(&head);

    let resumed = server
        .client
        .get(format!("{}{}", server.url, events_path(&head[0], &session)))
        .bearer_auth("juan")
        .header("last-event-id", "4")
        .send()
        .await
        .unwrap();
    let tail = read_events(resumed, 3).await;

    assert_eq!(seqs(&tail), vec![5, 6, 7]);
}

#[tokio::test]
async fn other_users_turn_is_404() {
    let fixture = Fixture::new().await;
    let server = serve(ChatService::new(fixture.ports())).await;
    let all = read_events(server.post_chat("juan", json!({"agent_id": "hr", "message": "hi"})).await, usize::MAX).await;
    let session = session_of(&all);

    let response = server.get("ana", &events_path(&all[0], &session)).await;
    assert_eq!(response.status(), 404);
    let sessions: Value = server.get("ana", "/v1/agents/hr/sessions").await.json().await.unwrap();
    assert_eq!(sessions["sessions"], json!([]));
    let own: Value = server.get("juan", "/v1/agents/hr/sessions").await.json().await.unwrap();
    assert_eq!(own["sessions"][0]["session_id"], json!(session));
    assert_eq!(own["sessions"][0]["title"], json!("hi"));

    let hijack = server.post_chat("ana", json!({"agent_id": "hr", "message": "hi", "session_id": session})).await;
    assert_eq!(hijack.status(), 404);
}

#[tokio::test]
async fn repeated_idempotency_key_attaches() {
    let fixture = Fixture::new().await;
    let server = serve(ChatService::new(fixture.ports())).await;
    let body = json!({"agent_id": "hr", "message": "hi", "idempotency_key": "k-1"});

    let first = read_events(server.post_chat("juan", body.clone()).await, usize::MAX).await;
    let second = read_events(server.post_chat("juan", body).await, usize::MAX).await;

    assert_eq!(first, second);
    assert_eq!(*fixture.engine.started.lock().unwrap(), 1);
}

#[tokio::test]
async fn cancel_stops_engine_and_ends_stream() {
    let fixture = Fixture::new().await;
    *fixture.runtimes.awake.lock().unwrap() = true;
    let server = serve(ChatService::new(fixture.ports())).await;
    let mut response = server.post_chat("juan", json!({"agent_id": "hr", "message": "slow"})).await;
    let mut decoder = SseDecoder::new();
    let mut events: Vec<StreamEvent> = Vec::new();
    while events.len() < 3 {
        let chunk = response.chunk().await.unwrap().unwrap();
        events.extend(decoder.feed(&chunk).into_iter().map(|f| f.to_event().unwrap()));
    }
    let session = session_of(&events);

    let cancel_path = format!("/v1/agents/hr/sessions/{session}/turns/{}/cancel", events[0].turn_id);
    let cancel = server.client.post(format!("{}{cancel_path}", server.url)).bearer_auth("juan").send().await.unwrap();
    assert_eq!(cancel.status(), 202);
    while let Some(chunk) = response.chunk().await.unwrap() {
        events.extend(decoder.feed(&chunk).into_iter().map(|f| f.to_event().unwrap()));
    }

    assert_eq!(events.last().unwrap().kind, EventKind::TurnCancelled {});
    assert_eq!(fixture.engine.cancelled.lock().unwrap().len(), 1);
    tokio::time::sleep(Duration::from_millis(50)).await;
    assert_eq!(fixture.turns.usage.lock().unwrap()[0].1, TurnStatus::Cancelled);
}

mod websocket {
    use futures::{SinkExt, StreamExt};
    use tokio_tungstenite::tungstenite::Message;
    use tokio_tungstenite::tungstenite::client::IntoClientRequest;

    use super::*;

    type Socket = tokio_tungstenite::WebSocketStream<tokio_tungstenite::MaybeTlsStream<tokio::net::TcpStream>>;

    async fn connect(server: &Server, protocols: &str) -> Socket {
        let url = format!("{}/v1/ws", server.url.replace("http://", "ws://"));
        let mut request = url.into_client_request().unwrap();
        request.headers_mut().insert("sec-websocket-protocol", protocols.parse().unwrap());
        let (socket, response) = tokio_tungstenite::connect_async(request).await.unwrap();
        assert_eq!(response.headers()["sec-websocket-protocol"], "houston.v1");
        socket
    }

    /// Reads frames until a terminal event of `turn` or an error frame.
    async fn read_turn(socket: &mut Socket) -> Vec<Value> {
        let mut frames = Vec::new();
        while let Some(message) = socket.next().await {
            let Message::Text(text) = message.unwrap() else { continue };
            let frame: Value = serde_json::from_str(text.as_str()).unwrap();
            let done = frame["type"] == "error"
                || ["turn.completed", "turn.failed", "turn.cancelled"].contains(&frame["event"]["type"].as_str().unwrap_or_default());
            frames.push(frame);
            if done {
                break;
            }
        }
        frames
    }

    #[tokio::test]
    async fn websocket_chat_and_resume() {
        let fixture = Fixture::new().await;
        let server = serve(ChatService::new(fixture.ports())).await;
        let mut socket = connect(&server, "houston.v1, bearer.juan").await;

        let chat = json!({"type": "chat", "request_id": "r1", "agent_id": "hr", "message": "hi"});
        socket.send(Message::Text(chat.to_string().into())).await.unwrap();
        let frames = read_turn(&mut socket).await;

        let kinds: Vec<_> = frames.iter().map(|f| f["event"]["type"].as_str().unwrap().to_owned()).collect();
        assert_eq!(kinds.first().map(String::as_str), Some("turn.accepted"));
        assert_eq!(kinds.last().map(String::as_str), Some("turn.completed"));
        assert!(frames.iter().all(|f| f["request_id"] == "r1" && f["agent_id"] == "hr"));

        let session = frames[0]["session_id"].as_str().unwrap();
        let turn = frames[0]["event"]["turn_id"].as_str().unwrap();
        let resume = json!({"type": "resume", "agent_id": "hr", "session_id": session, "turn_id": turn, "after": 4});
        socket.send(Message::Text(resume.to_string().into())).await.unwrap();
        let tail = read_turn(&mut socket).await;
        let seqs: Vec<_> = tail.iter().map(|f| f["event"]["seq"].as_u64().unwrap()).collect();
        assert_eq!(seqs, (5..=frames.len() as u64).collect::<Vec<_>>());
    }

    #[tokio::test]
    async fn websocket_reports_denied_agent() {
        let fixture = Fixture::new().await;
        let server = serve(ChatService::new(fixture.ports())).await;
        let mut socket = connect(&server, "houston.v1, bearer.juan").await;

        let chat = json!({"type": "chat", "request_id": "r2", "agent_id": "sales", "message": "hi"});
        socket.send(Message::Text(chat.to_string().into())).await.unwrap();
        let frames = read_turn(&mut socket).await;

        assert_eq!(frames.len(), 1);
        assert_eq!(frames[0]["type"], "error");
        assert_eq!(frames[0]["request_id"], "r2");
        assert_eq!(frames[0]["error"]["code"], "agent_not_found");
    }

    #[tokio::test]
    async fn websocket_without_token_is_rejected() {
        let fixture = Fixture::new().await;
        let server = serve(ChatService::new(fixture.ports())).await;
        let url = format!("{}/v1/ws", server.url.replace("http://", "ws://"));

        let error = tokio_tungstenite::connect_async(url).await.unwrap_err();

        let tokio_tungstenite::tungstenite::Error::Http(response) = error else { panic!("expected an HTTP error, got {error}") };
        assert_eq!(response.status(), 401);
    }
}

#[tokio::test(start_paused = true)]
async fn idle_stream_sends_heartbeat() {
    use http_body_util::BodyExt;

    let (_sender, receiver) = tokio::sync::mpsc::channel(1);
    let response = super::routes::sse_response(super::service::EventFeed::Remote(receiver));
    let mut body = response.into_body();

    let early = tokio::time::timeout(Duration::from_secs(14), body.frame()).await;
    assert!(early.is_err(), "nothing is sent before 15 s");
    let frame = body.frame().await.unwrap().unwrap().into_data().unwrap();
    assert_eq!(frame, houston_protocol::sse::HEARTBEAT.as_bytes());
}

#[tokio::test]
async fn warm_turns_reuse_engine_connection() {
    let fixture = Fixture::new().await;
    *fixture.runtimes.awake.lock().unwrap() = true;
    let server = serve(ChatService::new(fixture.ports())).await;

    for _ in 0..5 {
        let events = read_events(server.post_chat("juan", json!({"agent_id": "hr", "message": "hi"})).await, usize::MAX).await;
        assert_eq!(events.last().unwrap().kind.type_name(), "turn.completed");
        // Give the finished response time to return its connection to the pool.
        tokio::time::sleep(Duration::from_millis(20)).await;
    }

    let connections = fixture.engine.connections.load(std::sync::atomic::Ordering::SeqCst);
    assert_eq!(connections, 1, "five warm turns share one pooled engine connection");
}

#[tokio::test]
async fn failed_start_ends_turn_as_failed() {
    let fixture = Fixture::new().await;
    *fixture.runtimes.start_failure.lock().unwrap() = Some("the sandbox could not mount /data".into());
    let server = serve(ChatService::new(fixture.ports())).await;

    let events = read_events(server.post_chat("juan", json!({"agent_id": "hr", "message": "hi"})).await, usize::MAX).await;

    assert_eq!(types(&events), ["turn.accepted", "agent.waking", "turn.failed"]);
    let EventKind::TurnFailed { error } = &events[2].kind else { unreachable!() };
    assert_eq!(error.code, "agent_unavailable");
    assert!(error.retryable);
    assert_eq!(error.message, "The agent could not be started. Try again in a moment.");
    assert!(!error.message.contains("/data"), "the start failure's cause stays in the log: {}", error.message);
    tokio::time::sleep(Duration::from_millis(50)).await;
    assert_eq!(fixture.turns.usage.lock().unwrap()[0].1, TurnStatus::Failed, "the failed turn is stored");
    assert_eq!(*fixture.engine.started.lock().unwrap(), 0);
}

#[tokio::test]
async fn other_replica_replays_failed_start() {
    let fixture = Fixture::new().await;
    *fixture.runtimes.start_failure.lock().unwrap() = Some("no sandbox".into());
    let first = serve(ChatService::new(fixture.ports())).await;
    let second = serve(ChatService::new(fixture.ports())).await;
    let all = read_events(first.post_chat("juan", json!({"agent_id": "hr", "message": "hi"})).await, usize::MAX).await;
    let session = session_of(&all);
    tokio::time::sleep(Duration::from_millis(50)).await;

    for after in 0..=all.len() as u64 {
        let path = format!("{}?after={after}", events_path(&all[0], &session));
        let tail = read_events(second.get("juan", &path).await, usize::MAX).await;
        let expected = &all[after as usize..];
        assert_eq!(seqs(&tail), seqs(expected), "after={after}");
        assert_eq!(types(&tail), types(expected), "after={after}");
    }
}

#[tokio::test]
async fn unreachable_engine_message_is_plain() {
    let fixture = Fixture::new().await;
    let houston_protocol::EngineEndpoint::Unix(socket) = &fixture.runtimes.endpoint else { unreachable!() };
    std::fs::remove_file(socket).unwrap();
    let server = serve(ChatService::new(fixture.ports())).await;

    let events = read_events(server.post_chat("juan", json!({"agent_id": "hr", "message": "hi"})).await, usize::MAX).await;

    let Some(EventKind::TurnFailed { error }) = events.last().map(|event| &event.kind) else { panic!("expected turn.failed: {events:?}") };
    assert_eq!(error.code, "engine_error");
    assert!(error.retryable);
    assert!(!error.message.contains("os error"), "an OS error: {}", error.message);
    assert!(!error.message.contains("engine.sock"), "the engine socket path: {}", error.message);
    assert!(!error.message.contains('/'), "a path or URL: {}", error.message);
    assert_eq!(error.message, "The agent could not be reached. Try again in a moment.");
}

#[tokio::test]
async fn body_and_query_errors_use_error_format() {
    let fixture = Fixture::new().await;
    let server = serve(ChatService::new(fixture.ports())).await;
    let huge = format!(r#"{{"agent_id": "hr", "message": "{}"}}"#, "a".repeat(3 * 1024 * 1024));
    let events = "/v1/agents/hr/sessions/s1/turns/t1/events";
    // (method, path, body, status, code)
    let cases = [
        ("POST", "/v1/chat".to_owned(), Some(huge), 413, "payload_too_large"),
        ("POST", "/v1/chat".to_owned(), Some("{".to_owned()), 400, "invalid_json"),
        ("POST", "/v1/chat".to_owned(), Some(r#"{"agent_id": "hr"}"#.to_owned()), 422, "invalid_fields"),
        ("POST", "/v1/chat".to_owned(), Some(r#"{"agent_id": "hr", "message": 5}"#.to_owned()), 422, "invalid_fields"),
        ("GET", format!("{events}?after=abc"), None, 400, "invalid_query"),
    ];
    for (method, path, body, status, code) in cases {
        let mut request = server.client.request(method.parse().unwrap(), format!("{}{path}", server.url)).bearer_auth("juan");
        if let Some(body) = body {
            request = request.header("content-type", "application/json").body(body);
        }
        let response = request.send().await.unwrap();
        assert_eq!(response.status(), status, "{method} {path}");
        assert_eq!(response.headers()["content-type"], "application/json", "{method} {path}");
        let error: Value = response.json().await.unwrap();
        assert_eq!(error["error"]["code"], code, "{method} {path}: {error}");
    }
    assert!(fixture.access.audit.lock().unwrap().is_empty(), "no audit before validation");
}

#[tokio::test]
async fn chat_error_details_name_cause() {
    let fixture = Fixture::new().await;
    let server = serve(ChatService::new(fixture.ports())).await;

    let syntax = server.client.post(format!("{}/v1/chat", server.url)).bearer_auth("juan").body("{\n\"agent_id\": }").send().await.unwrap();
    let error: Value = syntax.json().await.unwrap();
    assert_eq!(error["error"]["details"]["line"], 2, "{error}");
    assert!(error["error"]["details"]["column"].as_u64().unwrap() > 0, "{error}");

    let missing = server.post_chat("juan", json!({"agent_id": "hr"})).await;
    let error: Value = missing.json().await.unwrap();
    let fields = error["error"]["details"]["fields"].as_array().unwrap();
    assert!(fields.contains(&json!({"field": "message", "reason": "is missing or empty"})), "{error}");

    let events = server.get("juan", "/v1/agents/hr/sessions/s1/turns/t1/events?after=abc").await;
    let error: Value = events.json().await.unwrap();
    assert_eq!(error["error"]["details"]["parameter"], "after", "{error}");
}

#[tokio::test]
async fn chat_rejects_unknown_fields() {
    let fixture = Fixture::new().await;
    let server = serve(ChatService::new(fixture.ports())).await;

    let response = server.post_chat("juan", json!({"agent_id": "hr", "message": "hi", "user_id": "admin"})).await;

    assert_eq!(response.status(), 422);
    let error: Value = response.json().await.unwrap();
    assert_eq!(error["error"]["code"], "invalid_fields");
    assert_eq!(error["error"]["details"]["fields"][0]["field"], "user_id", "{error}");
    assert_eq!(*fixture.engine.started.lock().unwrap(), 0, "no turn started");
}
