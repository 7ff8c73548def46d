//! Event streams of running turns: resume without gaps, cancellation, client disconnects,
//! concurrent turns on one session, idempotency keys, heartbeats and shutdown.

mod common;

use std::time::Duration;

use common::*;
use houston_protocol::EventKind;
use houston_testkit::anthropic::{Script, StandIn};
use serde_json::json;

fn slow_reply(pieces: usize, delay_ms: u64) -> houston_testkit::anthropic::Reply {
    let words: Vec<String> = (0..pieces).map(|i| format!("w{i} ")).collect();
    let words: Vec<&str> = words.iter().map(String::as_str).collect();
    Script::new().token_delay(Duration::from_millis(delay_ms)).text(&words).end_turn(pieces as u64).build()
}

async fn engine_with(stand_in: &StandIn, dir: &std::path::Path) -> TestEngine {
    TestEngine::start(config(dir, anthropic_settings(&stand_in.base_url(), Some("k")))).await
}

#[tokio::test]
async fn resume_after_n_replays_tail() {
    let dir = agent_folder();
    let stand_in = StandIn::start().await;
    let engine = engine_with(&stand_in, dir.path()).await;
    let events = engine.turn("s1", "juan", "hello there").await;
    let turn_id = events[0].turn_id.clone();

    let path = format!("/v1/sessions/s1/turns/{turn_id}/events");
    let tail = read_events(engine.get(&format!("{path}?after=2")).send().await.unwrap()).await;
    assert_eq!(tail, events[2..].to_vec());
    let by_header = read_events(engine.get(&path).header("last-event-id", "3").send().await.unwrap()).await;
    assert_eq!(by_header, events[3..].to_vec());
    let past_end = read_events(engine.get(&format!("{path}?after=999")).send().await.unwrap()).await;
    assert!(past_end.is_empty(), "a finished turn closes the stream instead of hanging");
}

#[tokio::test]
async fn resume_mid_turn_follows_live() {
    let dir = agent_folder();
    let stand_in = StandIn::start().await;
    stand_in.push(slow_reply(12, 20));
    let engine = engine_with(&stand_in, dir.path()).await;
    let response = engine.start_turn("s1", json!({"user_id": "juan", "message": "go"})).await;
    let mut reader = EventReader::new(response);
    let first = reader.next().await.unwrap();
    let second = reader.next().await.unwrap();
    drop(reader);

    let path = format!("/v1/sessions/s1/turns/{}/events?after={}", first.turn_id, second.seq);
    let rest = read_events(engine.get(&path).send().await.unwrap()).await;
    let mut all = vec![first, second];
    all.extend(rest);
    assert_contiguous(&all);
    assert_eq!(all.last().unwrap().kind.type_name(), "turn.completed");
    assert_eq!(text_of(&all).split_whitespace().count(), 12);
}

#[tokio::test]
async fn cancel_stops_model_and_stores_turn() {
    let dir = agent_folder();
    let stand_in = StandIn::start().await;
    stand_in.push(slow_reply(200, 50));
    let engine = engine_with(&stand_in, dir.path()).await;
    let response = engine.start_turn("s1", json!({"user_id": "juan", "message": "long"})).await;
    let mut reader = EventReader::new(response);
    let accepted = reader.next().await.unwrap();
    let delta = reader.next().await.unwrap();
    assert_eq!(delta.kind.type_name(), "message.delta");

    let cancel = engine.post(&format!("/v1/sessions/s1/turns/{}/cancel", accepted.turn_id)).send().await.unwrap();
    assert_eq!(cancel.status(), 202);
    let mut rest = Vec::new();
    while let Some(event) = reader.next().await {
        rest.push(event);
    }
    assert_eq!(rest.last().unwrap().kind, EventKind::TurnCancelled {});
    let deltas = rest.iter().filter(|e| e.kind.type_name() == "message.delta").count();
    assert!(deltas < 50, "the model stream stopped, got {deltas} more deltas");

    let records = session_records(dir.path(), "juan", "s1");
    assert_eq!(records[1]["status"], "cancelled");
    assert!(records[1]["text"].as_str().unwrap().starts_with("w0 "));
}

#[tokio::test]
async fn disconnect_does_not_cancel_turn() {
    let dir = agent_folder();
    let stand_in = StandIn::start().await;
    stand_in.push(slow_reply(10, 20));
    let engine = engine_with(&stand_in, dir.path()).await;
    let response = engine.start_turn("s1", json!({"user_id": "juan", "message": "go"})).await;
    let mut reader = EventReader::new(response);
    reader.next().await.unwrap();
    drop(reader);

    let path = dir.path().join(".houston/sessions/juan/s1.jsonl");
    wait_until(|| std::fs::read_to_string(&path).unwrap_or_default().lines().count() == 2).await;
    let records = session_records(dir.path(), "juan", "s1");
    assert_eq!(records[1]["status"], "completed");
    assert_eq!(records[1]["text"].as_str().unwrap().split_whitespace().count(), 10);
}

#[tokio::test]
async fn second_turn_on_busy_session_conflicts() {
    let dir = agent_folder();
    let stand_in = StandIn::start().await;
    stand_in.push(slow_reply(20, 20));
    let engine = engine_with(&stand_in, dir.path()).await;
    let response = engine.start_turn("s1", json!({"user_id": "juan", "message": "first"})).await;
    let mut reader = EventReader::new(response);
    let accepted = reader.next().await.unwrap();

    let second = engine.start_turn("s1", json!({"user_id": "juan", "message": "second"})).await;
    assert_eq!(second.status(), 409);
    let body: serde_json::Value = second.json().await.unwrap();
    assert_eq!(body["error"]["code"], "session_busy");
    assert_eq!(body["error"]["details"]["turn_id"], accepted.turn_id.as_str());

    let other_session = engine.turn("s2", "juan", "parallel").await;
    assert_eq!(other_session.last().unwrap().kind.type_name(), "turn.completed");
    while reader.next().await.is_some() {}
    let records = session_records(dir.path(), "juan", "s1");
    assert_eq!(records.len(), 2, "the refused turn wrote nothing");
}

#[tokio::test]
async fn repeated_idempotency_key_attaches() {
    let dir = agent_folder();
    let stand_in = StandIn::start().await;
    let engine = engine_with(&stand_in, dir.path()).await;
    let body = json!({"user_id": "juan", "message": "once", "idempotency_key": "key-1", "turn_id": "turn-from-cp"});
    let first = read_events(engine.start_turn("s1", body.clone()).await).await;
    let again = read_events(engine.start_turn("s1", body).await).await;

    assert_eq!(first[0].turn_id.as_str(), "turn-from-cp", "the requested turn id is used");
    assert_eq!(again, first);
    assert_eq!(stand_in.requests().len(), 1);
    assert_eq!(session_records(dir.path(), "juan", "s1").len(), 2);
}

#[tokio::test]
async fn idempotency_key_survives_restart() {
    let dir = agent_folder();
    let stand_in = StandIn::start().await;
    let body = json!({"user_id": "juan", "message": "once", "idempotency_key": "key-1"});
    let engine = engine_with(&stand_in, dir.path()).await;
    let first = read_events(engine.start_turn("s1", body.clone()).await).await;
    engine.shutdown().await;

    let engine = engine_with(&stand_in, dir.path()).await;
    let again = read_events(engine.start_turn("s1", body).await).await;
    assert_eq!(again[0].turn_id, first[0].turn_id);
    assert_eq!(text_of(&again), text_of(&first));
    assert_eq!(again.last().unwrap().kind, first.last().unwrap().kind);
    assert_eq!(stand_in.requests().len(), 1);
    assert_eq!(session_records(dir.path(), "juan", "s1").len(), 2);
}

#[tokio::test]
async fn idle_stream_sends_heartbeat() {
    let dir = agent_folder();
    let stand_in = StandIn::start().await;
    stand_in.push(Script::new().delay(Duration::from_millis(600)).text(&["late"]).end_turn(1).build());
    let engine = engine_with(&stand_in, dir.path()).await;
    let response = engine.start_turn("s1", json!({"user_id": "juan", "message": "wait"})).await;
    let body = tokio::time::timeout(Duration::from_secs(10), response.text()).await.unwrap().unwrap();
    assert!(body.contains(": heartbeat\n\n"), "{body}");
    assert!(body.contains("event: turn.completed"), "{body}");
}

#[tokio::test]
async fn shutdown_cancels_and_stores_open_turn() {
    let dir = agent_folder();
    let stand_in = StandIn::start().await;
    stand_in.push(slow_reply(500, 50));
    let engine = engine_with(&stand_in, dir.path()).await;
    let response = engine.start_turn("s1", json!({"user_id": "juan", "message": "long"})).await;
    let mut reader = EventReader::new(response);
    reader.next().await.unwrap();
    reader.next().await.unwrap();

    let stopping = tokio::spawn(engine.shutdown());
    let mut last = None;
    while let Some(event) = reader.next().await {
        last = Some(event);
    }
    stopping.await.unwrap();
    assert_eq!(last.unwrap().kind, EventKind::TurnCancelled {});
    assert_eq!(session_records(dir.path(), "juan", "s1")[1]["status"], "cancelled");
}

#[tokio::test]
async fn shutdown_lets_short_turn_finish() {
    let dir = agent_folder();
    let stand_in = StandIn::start().await;
    stand_in.push(slow_reply(5, 40));
    let mut config = config(dir.path(), anthropic_settings(&stand_in.base_url(), Some("k")));
    config.shutdown_grace = Duration::from_secs(5);
    let engine = TestEngine::start(config).await;
    let response = engine.start_turn("s1", json!({"user_id": "juan", "message": "short"})).await;
    let mut reader = EventReader::new(response);
    reader.next().await.unwrap();

    let stopping = tokio::spawn(engine.shutdown());
    let mut last = None;
    while let Some(event) = reader.next().await {
        last = Some(event);
    }
    stopping.await.unwrap();
    assert_eq!(last.unwrap().kind.type_name(), "turn.completed");
    assert_eq!(session_records(dir.path(), "juan", "s1")[1]["status"], "completed");
}
