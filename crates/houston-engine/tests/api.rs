//! The engine API surface: authentication, id validation before any file system access,
//! request body errors, session listing and owner-only history.

mod common;

use common::*;
use houston_engine::ProviderSettings;
use serde_json::{Value, json};

async fn offline_engine(dir: &std::path::Path) -> TestEngine {
    TestEngine::start(config(dir, ProviderSettings::offline())).await
}

#[tokio::test]
async fn token_is_required_except_for_health() {
    let dir = agent_folder();
    let engine = offline_engine(dir.path()).await;
    let url = |path: &str| format!("{}{path}", engine.base);

    let missing = engine.client.get(url("/v1/version")).send().await.unwrap();
    assert_eq!(missing.status(), 401);
    let body: Value = missing.json().await.unwrap();
    assert_eq!(body["error"]["code"], "unauthorized");
    let wrong = engine.client.get(url("/v1/version")).bearer_auth("nope").send().await.unwrap();
    assert_eq!(wrong.status(), 401);
    let turn = engine.client.post(url("/v1/sessions/s1/turns")).json(&json!({"user_id": "u", "message": "m"})).send().await.unwrap();
    assert_eq!(turn.status(), 401);
    assert!(!dir.path().join(".houston/sessions").exists());

    let health = engine.client.get(url("/v1/health")).send().await.unwrap();
    assert_eq!(health.status(), 200);
    let version: Value = engine.get("/v1/version").send().await.unwrap().json().await.unwrap();
    assert_eq!(version["provider"], "offline");
}

#[tokio::test]
async fn invalid_ids_rejected_before_file_access() {
    let dir = agent_folder();
    let engine = offline_engine(dir.path()).await;
    let long = "a".repeat(65);
    let bad_sessions = ["..%2Fescape", "%2Fetc%2Fpasswd", "a%00b", long.as_str(), ".hidden"];
    for session in bad_sessions {
        let response = engine.start_turn(session, json!({"user_id": "juan", "message": "hi"})).await;
        assert_eq!(response.status(), 422, "session {session:?}");
        let body: Value = response.json().await.unwrap();
        assert_eq!(body["error"]["code"], "invalid_fields");
        assert_eq!(body["error"]["details"]["fields"][0]["field"], "session_id", "session {session:?}");
    }
    for user in ["../sales", "/abs", "a\u{0}b", long.as_str()] {
        let response = engine.start_turn("s1", json!({"user_id": user, "message": "hi"})).await;
        assert_eq!(response.status(), 422, "user {user:?}");
        let body: Value = response.json().await.unwrap();
        assert_eq!(body["error"]["details"]["fields"][0]["field"], "user_id");
    }
    let history = engine.get("/v1/sessions/s1?user_id=..%2Fsales").send().await.unwrap();
    assert_eq!(history.status(), 422);
    let listing = engine.get("/v1/users/..%2Fsales/sessions").send().await.unwrap();
    assert_eq!(listing.status(), 422);
    let events = engine.get("/v1/sessions/s1/turns/..%2Fx/events").send().await.unwrap();
    assert_eq!(events.status(), 422);
    assert!(!dir.path().join(".houston/sessions").exists(), "nothing was created");
}

#[tokio::test]
async fn bad_body_lists_every_field() {
    let dir = agent_folder();
    let engine = offline_engine(dir.path()).await;
    let response = engine.start_turn("s1", json!({"user_id": "juan", "message": "  ", "idempotency_key": ""})).await;
    assert_eq!(response.status(), 422);
    let body: Value = response.json().await.unwrap();
    let fields: Vec<&str> = body["error"]["details"]["fields"].as_array().unwrap().iter().map(|f| f["field"].as_str().unwrap()).collect();
    assert_eq!(fields, ["message", "idempotency_key"]);

    let missing = engine.start_turn("s1", json!({"user_id": "juan"})).await;
    assert_eq!(missing.status(), 422);
    let body: Value = missing.json().await.unwrap();
    assert_eq!(body["error"]["details"]["fields"][0], json!({"field": "message", "reason": "is missing"}));
    let not_json = engine.post("/v1/sessions/s1/turns").body("{not json").send().await.unwrap();
    assert_eq!(not_json.status(), 400);
}

#[tokio::test]
async fn body_errors_use_error_format() {
    let dir = agent_folder();
    let engine = offline_engine(dir.path()).await;
    let huge = format!(r#"{{"user_id": "juan", "message": "{}"}}"#, "a".repeat(3 * 1024 * 1024));
    // (body, status, code)
    let cases = [
        (huge, 413, "payload_too_large"),
        ("{".to_owned(), 400, "invalid_json"),
        ("{\"user_id\": \"juan\",\n \"message\": }".to_owned(), 400, "invalid_json"),
        (r#"{"user_id": "juan"}"#.to_owned(), 422, "invalid_fields"),
        (r#"{"user_id": "juan", "message": 5}"#.to_owned(), 422, "invalid_fields"),
    ];
    for (body, status, code) in cases {
        let shown: String = body.chars().take(40).collect();
        let response = engine.post("/v1/sessions/s1/turns").header("content-type", "application/json").body(body).send().await.unwrap();
        assert_eq!(response.status(), status, "body {shown:?}");
        let content_type = response.headers()["content-type"].to_str().unwrap().to_owned();
        assert_eq!(content_type, "application/json", "body {shown:?}");
        let error: Value = response.json().await.unwrap();
        assert_eq!(error["error"]["code"], code, "body {shown:?}: {error}");
    }

    let response = engine.post("/v1/sessions/s1/turns").body("{\"user_id\": \"juan\",\n \"message\": }").send().await.unwrap();
    let error: Value = response.json().await.unwrap();
    assert_eq!(error["error"]["details"]["line"], 2, "{error}");
    assert_eq!(error["error"]["details"]["column"], 13, "{error}");

    let response = engine.post("/v1/sessions/s1/turns").body(r#"{"user_id": "juan", "message": 5}"#).send().await.unwrap();
    let error: Value = response.json().await.unwrap();
    assert_eq!(error["error"]["details"]["fields"][0]["field"], "message", "{error}");
    assert!(!dir.path().join(".houston/sessions").exists(), "nothing was stored");
}

#[tokio::test]
async fn unknown_turn_is_not_found() {
    let dir = agent_folder();
    let engine = offline_engine(dir.path()).await;
    let events = engine.get("/v1/sessions/s1/turns/nope/events").send().await.unwrap();
    assert_eq!(events.status(), 404);
    let cancel = engine.post("/v1/sessions/s1/turns/nope/cancel").send().await.unwrap();
    assert_eq!(cancel.status(), 404);
    let finished = engine.turn("s1", "juan", "vacation").await;
    let other_session = engine.get(&format!("/v1/sessions/s2/turns/{}/events", finished[0].turn_id)).send().await.unwrap();
    assert_eq!(other_session.status(), 404, "a turn is found only under its own session");
}

#[tokio::test]
async fn history_is_for_its_owner_only() {
    let dir = agent_folder();
    let engine = offline_engine(dir.path()).await;
    engine.turn("s1", "juan", "what's our vacation policy?").await;
    engine.turn("s1", "juan", "and sick leave?").await;

    let history = engine.history("s1", "juan").await;
    let messages = history["messages"].as_array().unwrap();
    assert_eq!(messages.len(), 4);
    assert_eq!(messages[0]["role"], "user");
    assert_eq!(messages[0]["text"], "what's our vacation policy?");
    assert_eq!(messages[1]["role"], "assistant");
    assert_eq!(messages[1]["status"], "completed");
    assert!(messages[1]["text"].as_str().unwrap().contains("20 days"));

    let stranger = engine.get("/v1/sessions/s1?user_id=maria").send().await.unwrap();
    assert_eq!(stranger.status(), 404);
    let no_user = engine.get("/v1/sessions/s1").send().await.unwrap();
    assert_eq!(no_user.status(), 422);

    let sessions: Value = engine.get("/v1/users/juan/sessions").send().await.unwrap().json().await.unwrap();
    assert_eq!(sessions["sessions"][0]["session_id"], "s1");
    assert_eq!(sessions["sessions"][0]["title"], "what's our vacation policy?");
    let empty: Value = engine.get("/v1/users/maria/sessions").send().await.unwrap().json().await.unwrap();
    assert_eq!(empty["sessions"], json!([]));
}

#[tokio::test]
async fn unfinished_turn_recorded_as_failed_on_next_turn() {
    let dir = agent_folder();
    let sessions = dir.path().join(".houston/sessions/juan");
    std::fs::create_dir_all(&sessions).unwrap();
    let orphan = r#"{"type":"user","turn_id":"t-lost","at":"2026-12-04T10:00:00Z","text":"lost question"}"#;
    std::fs::write(sessions.join("s1.jsonl"), format!("{orphan}\n{{\"type\":\"assistant\",\"tu")).unwrap();
    let engine = offline_engine(dir.path()).await;

    let history = engine.history("s1", "juan").await;
    assert_eq!(history["messages"][1]["status"], "failed", "an orphan turn shows as failed");

    let events = engine.turn("s1", "juan", "vacation?").await;
    assert_eq!(events.last().unwrap().kind.type_name(), "turn.completed");
    let records = session_records_lenient(dir.path());
    assert_eq!(records[1]["turn_id"], "t-lost");
    assert_eq!(records[1]["status"], "failed");
    assert_eq!(records[1]["error"]["code"], "engine_interrupted");
    assert_eq!(records.last().unwrap()["status"], "completed");
    assert!(sessions.join("s1.jsonl.damaged").is_file(), "the torn line is kept aside");
}

/// Reads the valid records of juan's session s1, skipping damaged lines.
fn session_records_lenient(dir: &std::path::Path) -> Vec<Value> {
    std::fs::read_to_string(dir.join(".houston/sessions/juan/s1.jsonl"))
        .unwrap()
        .lines()
        .filter_map(|line| serde_json::from_str(line).ok())
        .collect()
}
