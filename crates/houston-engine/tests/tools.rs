//! The tool loop: built-in knowledge tools, awkward `partial_json` splits, invalid tool
//! input, toolkit labels from a broker, and the round cap.

mod common;

use std::sync::Arc;

use async_trait::async_trait;
use common::*;
use houston_engine::providers::ToolSpec;
use houston_engine::tools::{BrokerTool, ToolBroker, ToolContext, ToolOutput};
use houston_protocol::{EventKind, ToolOutcome};
use houston_testkit::anthropic::{Script, StandIn};
use serde_json::{Value, json};

fn last_message(request: &houston_testkit::RecordedRequest) -> Value {
    request.body["messages"].as_array().unwrap().last().unwrap().clone()
}

#[tokio::test]
async fn read_knowledge_with_split_partial_json() {
    let dir = agent_folder();
    let stand_in = StandIn::start().await;
    let pieces = ["", "{\"pa", "th\": \"hand", "book", ".md\"", "}"];
    stand_in.push(Script::new().text(&["Let me check."]).tool_use("toolu_1", "read_knowledge", &pieces).end_tool_use(12).build());
    stand_in.push(Script::new().text(&["You get 20 days."]).end_turn(5).build());
    let engine = TestEngine::start(config(dir.path(), anthropic_settings(&stand_in.base_url(), Some("k")))).await;
    let events = engine.turn("s1", "juan", "vacation?").await;

    assert_eq!(types_of(&events), ["turn.accepted", "message.delta", "tool.started", "tool.finished", "message.delta", "turn.completed"]);
    let EventKind::ToolStarted { call_id, tool, label } = &events[2].kind else { panic!("no tool.started") };
    assert_eq!((call_id.as_str(), tool.as_str(), label.as_str()), ("toolu_1", "read_knowledge", "Reading knowledge files…"));
    let EventKind::ToolFinished { outcome, .. } = &events[3].kind else { panic!("no tool.finished") };
    assert_eq!(*outcome, ToolOutcome::Ok);

    let second = &stand_in.requests()[1];
    let tools: Vec<_> = second.body["tools"].as_array().unwrap().iter().map(|t| t["name"].clone()).collect();
    assert_eq!(tools, [json!("list_knowledge"), json!("read_knowledge")]);
    let assistant = &second.body["messages"][1];
    assert_eq!(assistant["content"][1]["input"], json!({"path": "handbook.md"}));
    let result = &last_message(second)["content"][0];
    assert_eq!(result["type"], "tool_result");
    assert_eq!(result["tool_use_id"], "toolu_1");
    assert_eq!(result["is_error"], false);
    assert!(result["content"].as_str().unwrap().contains("20 days of paid vacation"));

    let records = session_records(dir.path(), "juan", "s1");
    assert_eq!(records[1]["tool_calls"][0]["tool"], "read_knowledge");
    assert_eq!(records[1]["text"], "Let me check.You get 20 days.");
}

#[tokio::test]
async fn empty_tool_input_means_empty_object() {
    let dir = agent_folder();
    let stand_in = StandIn::start().await;
    stand_in.push(Script::new().tool_use("toolu_1", "list_knowledge", &[]).end_tool_use(3).build());
    stand_in.push(Script::new().text(&["done"]).end_turn(1).build());
    let engine = TestEngine::start(config(dir.path(), anthropic_settings(&stand_in.base_url(), Some("k")))).await;
    engine.turn("s1", "juan", "list").await;

    let second = &stand_in.requests()[1];
    assert_eq!(second.body["messages"][1]["content"][0]["input"], json!({}));
    let result = &last_message(second)["content"][0];
    assert_eq!(result["is_error"], false);
    assert!(result["content"].as_str().unwrap().contains("handbook.md"));
}

#[tokio::test]
async fn invalid_tool_json_becomes_tool_error() {
    let dir = agent_folder();
    let stand_in = StandIn::start().await;
    stand_in.push(Script::new().tool_use("toolu_1", "read_knowledge", &["{\"path\": \"hand"]).end_tool_use(3).build());
    stand_in.push(Script::new().text(&["sorry"]).end_turn(1).build());
    let engine = TestEngine::start(config(dir.path(), anthropic_settings(&stand_in.base_url(), Some("k")))).await;
    let events = engine.turn("s1", "juan", "read").await;

    let EventKind::ToolFinished { outcome, message, .. } = &events[2].kind else { panic!("no tool.finished: {events:?}") };
    assert_eq!(*outcome, ToolOutcome::Error);
    assert!(message.as_deref().unwrap().contains("not valid JSON"));
    let result = &last_message(&stand_in.requests()[1])["content"][0];
    assert_eq!(result["is_error"], true);
    assert!(result["content"].as_str().unwrap().contains("not valid JSON"));
}

#[tokio::test]
async fn read_knowledge_rejects_escape() {
    let dir = agent_folder();
    let stand_in = StandIn::start().await;
    let input = r#"{"path": "../.houston/sessions/juan/s1.jsonl"}"#;
    stand_in.push(Script::new().tool_use("toolu_1", "read_knowledge", &[input]).end_tool_use(3).build());
    stand_in.push(Script::new().text(&["no"]).end_turn(1).build());
    let engine = TestEngine::start(config(dir.path(), anthropic_settings(&stand_in.base_url(), Some("k")))).await;
    engine.turn("s1", "juan", "read the sessions").await;

    let result = &last_message(&stand_in.requests()[1])["content"][0];
    assert_eq!(result["is_error"], true);
    assert!(!result["content"].as_str().unwrap().contains("turn_id"), "session content leaked");
}

/// A broker offering one Slack tool, standing in for Composio.
struct SlackBroker;

#[async_trait]
impl ToolBroker for SlackBroker {
    fn name(&self) -> &str {
        "slack-test"
    }

    async fn list_tools(&self, context: &ToolContext) -> Result<Vec<BrokerTool>, String> {
        if !context.toolkits.iter().any(|toolkit| toolkit == "slack") {
            return Ok(Vec::new());
        }
        let spec = ToolSpec {
            name: "SLACK_SEND_MESSAGE".into(),
            description: "Send a Slack message".into(),
            input_schema: json!({"type": "object", "properties": {"text": {"type": "string"}}}),
        };
        Ok(vec![BrokerTool { spec, toolkit: Some("slack".into()) }])
    }

    async fn call(&self, _context: &ToolContext, _tool: &str, input: &Value) -> ToolOutput {
        ToolOutput::Ok(format!("sent {}", input["text"]))
    }
}

#[tokio::test]
async fn toolkit_tool_is_labelled_with_toolkit() {
    let dir = agent_folder();
    std::fs::write(dir.path().join("houston.json"), r#"{"id": "hr", "name": "HR", "integrations": ["slack"]}"#).unwrap();
    let stand_in = StandIn::start().await;
    stand_in.push(Script::new().tool_use("toolu_9", "SLACK_SEND_MESSAGE", &[r#"{"text": "hi"}"#]).end_tool_use(3).build());
    stand_in.push(Script::new().text(&["Sent."]).end_turn(1).build());
    let mut config = config(dir.path(), anthropic_settings(&stand_in.base_url(), Some("k")));
    config.tool_brokers = vec![Arc::new(SlackBroker)];
    let engine = TestEngine::start(config).await;
    let events = engine.turn("s1", "juan", "tell the team").await;

    let EventKind::ToolStarted { label, tool, .. } = &events[1].kind else { panic!("no tool.started: {events:?}") };
    assert_eq!(label, "Calling Slack…");
    assert_eq!(tool, "SLACK_SEND_MESSAGE");
    let result = &last_message(&stand_in.requests()[1])["content"][0];
    assert_eq!(result["content"], "sent \"hi\"");
}

#[tokio::test]
async fn undeclared_toolkit_offers_no_tools() {
    let dir = agent_folder();
    let stand_in = StandIn::start().await;
    let mut config = config(dir.path(), anthropic_settings(&stand_in.base_url(), Some("k")));
    config.tool_brokers = vec![Arc::new(SlackBroker)];
    let engine = TestEngine::start(config).await;
    engine.turn("s1", "juan", "hi").await;
    let tools = stand_in.requests()[0].body["tools"].as_array().unwrap().len();
    assert_eq!(tools, 2, "only the knowledge tools without a slack integration");
}

#[tokio::test]
async fn tool_rounds_are_capped() {
    let dir = agent_folder();
    let stand_in = StandIn::start().await;
    for round in 0..3 {
        let id = format!("toolu_{round}");
        stand_in.push(Script::new().tool_use(&id, "list_knowledge", &["{}"]).end_tool_use(2).build());
    }
    let mut config = config(dir.path(), anthropic_settings(&stand_in.base_url(), Some("k")));
    config.max_model_rounds = 3;
    let engine = TestEngine::start(config).await;
    let events = engine.turn("s1", "juan", "loop").await;

    let requests = stand_in.requests();
    assert_eq!(requests.len(), 3);
    assert!(requests[1].body.get("tools").is_some());
    assert!(requests[2].body.get("tools").is_none(), "the last round offers no tools");
    let EventKind::TurnFailed { error } = &events.last().unwrap().kind else { panic!("expected turn.failed") };
    assert_eq!(error.code, "tool_rounds_exceeded");
}
