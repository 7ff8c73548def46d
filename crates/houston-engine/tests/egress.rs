//! Outbound model traffic: direct connections, and proxy requests in absolute form through
//! the egress socket with no key inside the engine. The recording proxy forwards everything
//! to the loopback stand-in, so no request leaves the machine.

mod common;

use common::*;
use houston_testkit::anthropic::StandIn;
use houston_testkit::proxy::RecordingProxy;

#[tokio::test]
async fn direct_requests_use_origin_form_and_key() {
    let dir = agent_folder();
    let stand_in = StandIn::start().await;
    let engine = TestEngine::start(config(dir.path(), anthropic_settings(&stand_in.base_url(), Some("sk-direct")))).await;
    engine.turn("s1", "juan", "hi").await;

    let request = &stand_in.requests()[0];
    assert_eq!(request.uri, "/v1/messages");
    assert_eq!(request.header("x-api-key"), Some("sk-direct"));
    assert_eq!(request.header("host"), Some(stand_in.address().to_string().as_str()));
    assert!(dir.path().join(".houston/sessions/juan/s1.jsonl").is_file());
    assert_no_secret_in(dir.path(), &["sk-direct", TOKEN]);
}

#[tokio::test]
async fn egress_socket_gets_absolute_form_without_key() {
    let dir = agent_folder();
    let sockets = tempfile::tempdir().unwrap();
    let stand_in = StandIn::start().await;
    let proxy = RecordingProxy::start(&sockets.path().join("egress.sock"), stand_in.address().to_string());
    let mut config = config(dir.path(), anthropic_settings(&stand_in.base_url(), None));
    config.egress_socket = Some(proxy.socket().to_owned());
    let engine = TestEngine::start(config).await;
    let events = engine.turn("s1", "juan", "through the proxy").await;

    assert_eq!(events.last().unwrap().kind.type_name(), "turn.completed");
    assert!(text_of(&events).contains("through the proxy"));
    let expected = format!("POST {}/v1/messages HTTP/1.1", stand_in.base_url());
    assert_eq!(proxy.request_lines(), [expected]);
    let request = &stand_in.requests()[0];
    assert_eq!(request.header("x-api-key"), None, "the engine holds no key behind the egress proxy");
    assert_eq!(request.header("anthropic-version"), Some("2023-06-01"));
}

#[tokio::test]
async fn https_url_goes_to_proxy_in_absolute_form() {
    let dir = agent_folder();
    let sockets = tempfile::tempdir().unwrap();
    let stand_in = StandIn::start().await;
    let proxy = RecordingProxy::start(&sockets.path().join("egress.sock"), stand_in.address().to_string());
    let mut config = config(dir.path(), anthropic_settings("https://api.anthropic.com", None));
    config.egress_socket = Some(proxy.socket().to_owned());
    let engine = TestEngine::start(config).await;
    let events = engine.turn("s1", "juan", "hello").await;

    assert_eq!(events.last().unwrap().kind.type_name(), "turn.completed");
    assert_eq!(proxy.request_lines(), ["POST https://api.anthropic.com/v1/messages HTTP/1.1"]);
    assert!(proxy.heads()[0].to_ascii_lowercase().contains("\r\nhost: api.anthropic.com"), "{}", proxy.heads()[0]);
}

#[tokio::test]
async fn unreachable_egress_socket_fails_turn() {
    let dir = agent_folder();
    let sockets = tempfile::tempdir().unwrap();
    let mut config = config(dir.path(), anthropic_settings("https://api.anthropic.com", None));
    config.egress_socket = Some(sockets.path().join("missing.sock"));
    let engine = TestEngine::start(config).await;
    let events = engine.turn("s1", "juan", "hello").await;
    let houston_protocol::EventKind::TurnFailed { error } = &events.last().unwrap().kind else { panic!("expected failure") };
    assert_eq!(error.code, "model_unreachable");
    assert!(error.retryable);
}
