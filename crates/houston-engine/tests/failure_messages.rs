//! The `error.message` of `turn.failed` is shown to end users, so it is a plain sentence per
//! error code. Upstream addresses, URLs, socket paths and OS errors from the cause stay in
//! the engine's log.

mod common;

use common::*;
use houston_protocol::{EventKind, StreamEvent, TurnError};
use houston_testkit::anthropic::{Reply, Script, StandIn};

/// Upstream detail that a provider error can carry and a client must never see.
const UPSTREAM_DETAIL: &str = "upstream connect error to 10.20.30.40:443 via http://internal.example/v1 (os error 111)";

fn failure(events: &[StreamEvent]) -> &TurnError {
    let EventKind::TurnFailed { error } = &events.last().unwrap().kind else { panic!("expected turn.failed: {events:?}") };
    error
}

/// Returns whether `text` contains a dotted quad such as `127.0.0.1`.
fn has_ipv4(text: &str) -> bool {
    text.split(|c: char| !c.is_ascii_digit() && c != '.').any(|piece| {
        let parts: Vec<&str> = piece.split('.').collect();
        parts.len() == 4 && parts.iter().all(|part| !part.is_empty())
    })
}

fn assert_plain(error: &TurnError) {
    let message = &error.message;
    assert!(!has_ipv4(message), "an IP address: {message:?}");
    assert!(!message.to_lowercase().contains("os error"), "an OS error: {message:?}");
    assert!(!message.contains("://"), "a URL: {message:?}");
    assert!(!message.contains('/'), "a path: {message:?}");
    assert!(!message.contains("HTTP"), "an HTTP status: {message:?}");
    assert!(!message.contains("internal.example"), "an upstream host: {message:?}");
    assert!(message.ends_with('.'), "not a sentence: {message:?}");
}

#[test]
fn ipv4_check_finds_addresses() {
    assert!(has_ipv4("failed to connect to 127.0.0.1:4010"));
    assert!(!has_ipv4("Try again in 1.5 seconds."));
}

#[tokio::test]
async fn unreachable_provider_message_is_plain() {
    let dir = agent_folder();
    let closed = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap();
    let engine = TestEngine::start(config(dir.path(), anthropic_settings(&format!("http://{closed}"), Some("k")))).await;
    let events = engine.turn("s1", "juan", "hi").await;

    let error = failure(&events);
    assert_eq!(error.code, "model_unreachable");
    assert!(error.retryable);
    assert_eq!(error.message, "The model provider could not be reached. Try again in a moment.");
    assert_plain(error);
}

#[tokio::test]
async fn server_error_message_is_plain() {
    let dir = agent_folder();
    let stand_in = StandIn::start().await;
    for _ in 0..3 {
        stand_in.push(Reply::Status { status: 502, error_type: "api_error".into(), message: UPSTREAM_DETAIL.into(), retry_after: None });
    }
    let engine = TestEngine::start(config(dir.path(), anthropic_settings(&stand_in.base_url(), Some("k")))).await;
    let events = engine.turn("s1", "juan", "hi").await;

    let error = failure(&events);
    assert_eq!(error.code, "model_error");
    assert!(error.retryable);
    assert_plain(error);
    let records = session_records(dir.path(), "juan", "s1");
    assert_eq!(records[1]["error"]["message"], error.message.as_str(), "the stored turn keeps the plain message");
}

#[tokio::test]
async fn rejected_request_message_is_plain() {
    let dir = agent_folder();
    let stand_in = StandIn::start().await;
    stand_in.push(Reply::Status { status: 400, error_type: "invalid_request_error".into(), message: UPSTREAM_DETAIL.into(), retry_after: None });
    let engine = TestEngine::start(config(dir.path(), anthropic_settings(&stand_in.base_url(), Some("k")))).await;
    let events = engine.turn("s1", "juan", "hi").await;

    let error = failure(&events);
    assert_eq!(error.code, "model_error");
    assert!(!error.retryable);
    assert_plain(error);
}

#[tokio::test]
async fn stream_error_message_is_plain() {
    let dir = agent_folder();
    let stand_in = StandIn::start().await;
    stand_in.push(Script::new().text(&["Partial "]).error("api_error", UPSTREAM_DETAIL).build());
    let engine = TestEngine::start(config(dir.path(), anthropic_settings(&stand_in.base_url(), Some("k")))).await;
    let events = engine.turn("s1", "juan", "hi").await;

    let error = failure(&events);
    assert_eq!(error.code, "model_stream_error");
    assert!(error.retryable);
    assert_plain(error);
}

#[tokio::test]
async fn missing_egress_socket_message_is_plain() {
    let dir = agent_folder();
    let sockets = tempfile::tempdir().unwrap();
    let mut config = config(dir.path(), anthropic_settings("https://api.anthropic.com", None));
    config.egress_socket = Some(sockets.path().join("missing.sock"));
    let engine = TestEngine::start(config).await;
    let events = engine.turn("s1", "juan", "hi").await;

    let error = failure(&events);
    assert_eq!(error.code, "model_unreachable");
    assert_plain(error);
    assert!(!error.message.contains("missing.sock"), "the socket path: {}", error.message);
}
