//! The tool flow end to end: `houston up --demo` with the Anthropic and Composio stand-ins.
//! Juan asks HR to post the vacation policy to #general; the stream shows "Calling Slack…"
//! and the outcome, the egress proxy adds the Composio key, and the post runs as Juan.

mod flow_support;

use flow_support::{Houston, answer_text, types};
use houston_protocol::{EventKind, ToolOutcome};
use houston_testkit::anthropic::{Script, StandIn};
use houston_testkit::composio::{ComposioStandIn, StandInTool};
use serde_json::json;

const COMPOSIO_KEY: &str = "composio-flow-key";
const POST_INPUT: &str = r##"{"channel": "#general", "text": "Vacation policy: 20 days of paid vacation a year."}"##;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn slack_post_through_composio() {
    let model = StandIn::start().await;
    let composio = ComposioStandIn::start(COMPOSIO_KEY).await.unwrap();
    composio.add_tool(StandInTool::new("SLACK_SEND_MESSAGE", "slack", &["channel", "text"]));
    let dir = tempfile::tempdir().unwrap();
    let env = [
        ("ANTHROPIC_API_KEY", "test-key".to_owned()),
        ("ANTHROPIC_BASE_URL", model.base_url()),
        ("COMPOSIO_API_KEY", COMPOSIO_KEY.to_owned()),
        ("COMPOSIO_BASE_URL", composio.base_url().to_owned()),
    ];
    let houston = Houston::start(&dir.path().join("home"), &["--demo"], &env);
    let juan = houston.login("juan@acme.test").await;
    let me = houston.get_json(&juan, "/v1/me").await;
    let composio_user = format!("{}:{}", me["workspaces"][0]["id"].as_str().unwrap(), me["user"]["id"].as_str().unwrap());
    let account = composio.add_account(&composio_user, "slack", "ACTIVE");

    let connections = houston.get_json(&juan, "/v1/agents/hr/connections").await;
    assert_eq!(connections["connections"], json!([{"toolkit": "slack", "state": "active"}]), "{connections}");

    model.push(Script::new().text(&["I'll post it."]).tool_use("toolu_1", "SLACK_SEND_MESSAGE", &[POST_INPUT]).end_tool_use(12).build());
    model.push(Script::new().text(&["Posted our vacation policy to #general."]).end_turn(9).build());
    let events = houston.chat(&juan, json!({"agent_id": "hr", "message": "post our vacation policy to #general"})).await;

    let kinds = types(&events);
    let started = kinds.iter().position(|kind| *kind == "tool.started").unwrap_or_else(|| panic!("no tool.started: {kinds:?}\n{}", houston.log()));
    let EventKind::ToolStarted { label, tool, .. } = &events[started].kind else { unreachable!() };
    assert_eq!(label, "Calling Slack…");
    assert_eq!(tool, "SLACK_SEND_MESSAGE");
    let EventKind::ToolFinished { outcome, .. } = &events[started + 1].kind else { panic!("no tool.finished after tool.started: {kinds:?}") };
    assert_eq!(*outcome, ToolOutcome::Ok);
    assert_eq!(kinds.last(), Some(&"turn.completed"));
    assert!(answer_text(&events).ends_with("Posted our vacation policy to #general."));

    assert_eq!(composio.rejected_requests(), 0, "the egress proxy added the Composio key");
    let executions = composio.executions();
    assert_eq!(executions.len(), 1);
    assert_eq!(executions[0].user_id, composio_user);
    assert_eq!(executions[0].connected_account_id, account);
    assert_eq!(executions[0].arguments["channel"], "#general");
    assert!(!houston.log().contains(COMPOSIO_KEY), "the Composio key is never logged");
}
