//! Whole turns that call Composio tools, with the Anthropic and Composio stand-ins: the
//! connect flow, expired connections, tool errors, a slow tool under heartbeats, two users,
//! a renamed slug, and approvals.

mod common;

use std::sync::Arc;
use std::time::Duration;

use common::*;
use futures::StreamExt;
use houston_engine::http::HttpClient;
use houston_engine::tools::ToolBroker;
use houston_engine::tools::composio::{ComposioBroker, ComposioSettings};
use houston_engine::tools::policy::{PolicyBroker, ToolPolicy};
use houston_protocol::{EventKind, StreamEvent, ToolOutcome, WorkspaceId};
use houston_testkit::anthropic::{Script, StandIn};
use houston_testkit::composio::{Behaviour, ComposioStandIn, StandInTool};
use secrecy::SecretString;
use serde_json::{Value, json};

const KEY: &str = "composio-key";
const POST_INPUT: &str = r##"{"channel": "#general", "text": "Vacation policy: 20 days a year"}"##;

struct Setup {
    dir: tempfile::TempDir,
    model: StandIn,
    composio: ComposioStandIn,
}

async fn setup() -> Setup {
    let dir = agent_folder();
    std::fs::write(dir.path().join("houston.json"), r#"{"id": "hr", "name": "HR", "integrations": ["slack"]}"#).unwrap();
    let composio = ComposioStandIn::start(KEY).await.unwrap();
    composio.add_tool(StandInTool::new("SLACK_SEND_MESSAGE", "slack", &["channel", "text"]));
    Setup { dir, model: StandIn::start().await, composio }
}

impl Setup {
    fn broker(&self, connection_wait: Duration, require_approval: &[&str]) -> Arc<dyn ToolBroker> {
        let mut settings = ComposioSettings::new(self.composio.base_url(), WorkspaceId::parse("acme").unwrap());
        settings.api_key = Some(SecretString::from(KEY));
        settings.connection_wait = connection_wait;
        settings.poll_interval = Duration::from_millis(20);
        let policy = ToolPolicy {
            require_approval: require_approval.iter().map(|pattern| (*pattern).to_owned()).collect(),
            max_result_bytes: 16_384,
            ..ToolPolicy::default()
        };
        let composio = Arc::new(ComposioBroker::new(settings, HttpClient::direct()));
        Arc::new(PolicyBroker::new(composio, Arc::new(policy), "hr"))
    }

    async fn engine(&self, broker: Arc<dyn ToolBroker>) -> TestEngine {
        let mut config = config(self.dir.path(), anthropic_settings(&self.model.base_url(), Some("k")));
        config.tool_brokers = vec![broker];
        TestEngine::start(config).await
    }

    /// Scripts a model that posts to Slack, then replies with `answer`.
    fn script_post(&self, call_id: &str, answer: &str) {
        self.model.push(Script::new().text(&["Posting it."]).tool_use(call_id, "SLACK_SEND_MESSAGE", &[POST_INPUT]).end_tool_use(9).build());
        self.model.push(Script::new().text(&[answer]).end_turn(3).build());
    }

    /// Returns the tool result the model received in its last request.
    fn last_tool_result(&self) -> Value {
        let requests = self.model.requests();
        let messages = requests.last().unwrap().body["messages"].as_array().unwrap().clone();
        messages.last().unwrap()["content"][0].clone()
    }
}

/// Reads events until one matches `wanted`, and returns all read so far.
async fn read_until(reader: &mut EventReader, seen: &mut Vec<StreamEvent>, wanted: &str) -> StreamEvent {
    while let Some(event) = reader.next().await {
        seen.push(event.clone());
        if event.kind.type_name() == wanted {
            return event;
        }
    }
    panic!("the stream ended before {wanted}: {:?}", types_of(seen));
}

async fn rest(reader: &mut EventReader, seen: &mut Vec<StreamEvent>) {
    while let Some(event) = reader.next().await {
        seen.push(event);
    }
}

fn finished(events: &[StreamEvent]) -> (ToolOutcome, Option<String>) {
    events
        .iter()
        .find_map(|event| match &event.kind {
            EventKind::ToolFinished { outcome, message, .. } => Some((*outcome, message.clone())),
            _ => None,
        })
        .expect("a tool.finished event")
}

#[tokio::test]
async fn connect_flow_continues_the_turn() {
    let setup = setup().await;
    setup.script_post("toolu_1", "Posted to #general.");
    let engine = setup.engine(setup.broker(Duration::from_secs(20), &[])).await;
    let response = engine.start_turn("s1", json!({"user_id": "juan", "message": "post our vacation policy to #general"})).await;
    let mut reader = EventReader::new(response);
    let mut seen = Vec::new();

    let started = read_until(&mut reader, &mut seen, "tool.started").await;
    let EventKind::ToolStarted { label, .. } = &started.kind else { unreachable!() };
    assert_eq!(label, "Calling Slack…");
    let card = read_until(&mut reader, &mut seen, "tool.needs_connection").await;
    let EventKind::ToolNeedsConnection { call_id, toolkit, connect_url } = &card.kind else { unreachable!() };
    assert_eq!((call_id.as_str(), toolkit.as_str()), ("toolu_1", "slack"));
    assert!(connect_url.starts_with(setup.composio.base_url()), "{connect_url}");
    assert!(setup.composio.executions().is_empty(), "nothing ran before the connection");

    assert!(setup.composio.complete_link("acme:juan", "slack"));
    rest(&mut reader, &mut seen).await;
    assert_eq!(
        types_of(&seen),
        ["turn.accepted", "message.delta", "tool.started", "tool.needs_connection", "tool.finished", "message.delta", "turn.completed"]
    );
    assert_eq!(finished(&seen).0, ToolOutcome::Ok);
    assert_eq!(text_of(&seen), "Posting it.Posted to #general.");
    let executions = setup.composio.executions();
    assert_eq!(executions.len(), 1);
    assert_eq!(executions[0].user_id, "acme:juan");
    assert_eq!(executions[0].arguments["channel"], "#general");
    assert_eq!(setup.last_tool_result()["is_error"], false);
}

#[tokio::test]
async fn connection_not_made_ends_turn_asking() {
    let setup = setup().await;
    setup.script_post("toolu_1", "Please connect Slack first.");
    let engine = setup.engine(setup.broker(Duration::from_millis(200), &[])).await;
    let events = engine.turn("s1", "juan", "post our vacation policy to #general").await;

    assert!(types_of(&events).contains(&"tool.needs_connection"));
    assert_eq!(finished(&events).0, ToolOutcome::Error);
    assert_eq!(events.last().unwrap().kind.type_name(), "turn.completed");
    let result = setup.last_tool_result();
    assert_eq!(result["is_error"], true);
    assert!(result["content"].as_str().unwrap().contains("has not connected slack"), "{result}");
    assert!(setup.composio.executions().is_empty());
}

#[tokio::test]
async fn expired_connection_shows_card_again() {
    let setup = setup().await;
    let expired = setup.composio.add_account("acme:juan", "slack", "EXPIRED");
    setup.script_post("toolu_1", "Posted.");
    let engine = setup.engine(setup.broker(Duration::from_secs(20), &[])).await;
    let response = engine.start_turn("s1", json!({"user_id": "juan", "message": "post it"})).await;
    let mut reader = EventReader::new(response);
    let mut seen = Vec::new();

    read_until(&mut reader, &mut seen, "tool.needs_connection").await;
    assert!(setup.composio.complete_link("acme:juan", "slack"));
    rest(&mut reader, &mut seen).await;
    assert_eq!(finished(&seen).0, ToolOutcome::Ok);
    let executions = setup.composio.executions();
    assert_eq!(executions.len(), 1);
    assert_ne!(executions[0].connected_account_id, expired, "the renewed account is used");
}

#[tokio::test]
async fn tool_error_reaches_model_and_client() {
    let setup = setup().await;
    setup.composio.add_account("acme:juan", "slack", "ACTIVE");
    setup.composio.script("SLACK_SEND_MESSAGE", Behaviour::Fail("channel_not_found".into()));
    setup.script_post("toolu_1", "That channel does not exist.");
    let engine = setup.engine(setup.broker(Duration::from_secs(1), &[])).await;
    let events = engine.turn("s1", "juan", "post it").await;

    let (outcome, message) = finished(&events);
    assert_eq!(outcome, ToolOutcome::Error);
    assert!(message.unwrap().contains("channel_not_found"));
    let result = setup.last_tool_result();
    assert_eq!(result["is_error"], true);
    assert!(result["content"].as_str().unwrap().contains("channel_not_found"));
    assert_eq!(events.last().unwrap().kind.type_name(), "turn.completed");
}

#[tokio::test]
async fn slow_tool_keeps_stream_alive() {
    let setup = setup().await;
    setup.composio.add_account("acme:juan", "slack", "ACTIVE");
    setup.composio.script("SLACK_SEND_MESSAGE", Behaviour::Delay(Duration::from_millis(1200), json!({"ts": "1.2"})));
    setup.script_post("toolu_1", "Posted.");
    let engine = setup.engine(setup.broker(Duration::from_secs(1), &[])).await;
    let response = engine.start_turn("s1", json!({"user_id": "juan", "message": "post it"})).await;

    let mut body = String::new();
    let mut chunks = response.bytes_stream();
    while let Some(chunk) = tokio::time::timeout(Duration::from_secs(15), chunks.next()).await.expect("stream stalled") {
        body.push_str(&String::from_utf8_lossy(&chunk.unwrap()));
    }
    let started = body.find("event: tool.started").expect("tool.started");
    let finished = body.find("event: tool.finished").expect("tool.finished");
    let heartbeats = body[started..finished].matches(": heartbeat").count();
    assert!(heartbeats >= 3, "expected heartbeats every 200 ms during the 1.2 s call, got {heartbeats}");
    assert!(body.contains("event: turn.completed"));
}

#[tokio::test]
async fn two_users_act_as_themselves() {
    let setup = setup().await;
    let juan_account = setup.composio.add_account("acme:juan", "slack", "ACTIVE");
    let ana_account = setup.composio.add_account("acme:ana", "slack", "ACTIVE");
    let engine = setup.engine(setup.broker(Duration::from_secs(1), &[])).await;

    setup.script_post("toolu_1", "Posted for Juan.");
    engine.turn("s1", "juan", "post it").await;
    setup.script_post("toolu_2", "Posted for Ana.");
    engine.turn("s2", "ana", "post it").await;

    let executions = setup.composio.executions();
    assert_eq!(executions.len(), 2);
    assert_eq!((executions[0].user_id.as_str(), executions[0].connected_account_id.as_str()), ("acme:juan", juan_account.as_str()));
    assert_eq!((executions[1].user_id.as_str(), executions[1].connected_account_id.as_str()), ("acme:ana", ana_account.as_str()));
}

#[tokio::test]
async fn renamed_slug_gives_model_clear_error() {
    let setup = setup().await;
    setup.composio.add_account("acme:juan", "slack", "ACTIVE");
    let engine = setup.engine(setup.broker(Duration::from_secs(1), &[])).await;
    setup.script_post("toolu_1", "Posted.");
    engine.turn("s1", "juan", "post it").await;

    setup.composio.remove_tool("SLACK_SEND_MESSAGE");
    setup.composio.add_tool(StandInTool::new("SLACK_CHAT_POST_MESSAGE", "slack", &["channel", "text"]));
    setup.script_post("toolu_2", "The tool was renamed; retrying would use SLACK_CHAT_POST_MESSAGE.");
    let events = engine.turn("s1", "juan", "post it again").await;

    assert_eq!(finished(&events).0, ToolOutcome::Error);
    let result = setup.last_tool_result();
    let text = result["content"].as_str().unwrap();
    assert!(text.contains("no longer exists"), "{text}");
    assert!(text.contains("SLACK_CHAT_POST_MESSAGE"), "{text}");
}

async fn decide(engine: &TestEngine, turn_id: &str, call_id: &str, body: &str) -> (u16, Value) {
    let path = format!("/v1/sessions/s1/turns/{turn_id}/approvals/{call_id}");
    let response = engine.post(&path).header("content-type", "application/json").body(body.to_owned()).send().await.unwrap();
    (response.status().as_u16(), response.json().await.unwrap_or(Value::Null))
}

#[tokio::test]
async fn approved_tool_runs() {
    let setup = setup().await;
    setup.composio.add_account("acme:juan", "slack", "ACTIVE");
    setup.script_post("toolu_1", "Posted.");
    let engine = setup.engine(setup.broker(Duration::from_secs(1), &["SLACK_SEND_*"])).await;
    let response = engine.start_turn("s1", json!({"user_id": "juan", "message": "post it"})).await;
    let mut reader = EventReader::new(response);
    let mut seen = Vec::new();

    let request = read_until(&mut reader, &mut seen, "tool.approval_requested").await;
    let EventKind::ToolApprovalRequested { call_id, tool, label } = &request.kind else { unreachable!() };
    assert_eq!((call_id.as_str(), tool.as_str(), label.as_str()), ("toolu_1", "SLACK_SEND_MESSAGE", "Calling Slack…"));
    assert!(setup.composio.executions().is_empty(), "nothing runs before approval");

    let turn_id = request.turn_id.to_string();
    let (status, body) = decide(&engine, &turn_id, "toolu_1", "{\"approve\": \"yes\"}").await;
    assert_eq!(status, 422, "{body}");
    let (status, body) = decide(&engine, &turn_id, "toolu_9", "{\"approve\": true}").await;
    assert_eq!(status, 404, "{body}");
    assert_eq!(body["error"]["code"], "approval_not_found");
    let (status, body) = decide(&engine, &turn_id, "toolu_1", "{\"approve\": true}").await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["tool"], "SLACK_SEND_MESSAGE");

    rest(&mut reader, &mut seen).await;
    assert_eq!(finished(&seen).0, ToolOutcome::Ok);
    assert_eq!(setup.composio.executions().len(), 1);
    let (status, _) = decide(&engine, &turn_id, "toolu_1", "{\"approve\": true}").await;
    assert_eq!(status, 404, "a decided call cannot be decided again");
}

#[tokio::test]
async fn rejected_tool_does_not_run() {
    let setup = setup().await;
    setup.composio.add_account("acme:juan", "slack", "ACTIVE");
    setup.script_post("toolu_1", "Understood, I did not post it.");
    let engine = setup.engine(setup.broker(Duration::from_secs(1), &["SLACK_SEND_MESSAGE"])).await;
    let response = engine.start_turn("s1", json!({"user_id": "juan", "message": "post it"})).await;
    let mut reader = EventReader::new(response);
    let mut seen = Vec::new();

    let request = read_until(&mut reader, &mut seen, "tool.approval_requested").await;
    let (status, body) = decide(&engine, request.turn_id.as_str(), "toolu_1", "{\"approve\": false}").await;
    assert_eq!(status, 200, "{body}");
    rest(&mut reader, &mut seen).await;

    let (outcome, message) = finished(&seen);
    assert_eq!(outcome, ToolOutcome::Rejected);
    assert!(message.unwrap().contains("rejected"));
    assert!(setup.composio.executions().is_empty());
    let result = setup.last_tool_result();
    assert_eq!(result["is_error"], true);
    assert!(result["content"].as_str().unwrap().contains("the user rejected"));
    assert_eq!(seen.last().unwrap().kind.type_name(), "turn.completed");
}
