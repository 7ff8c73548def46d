//! The tool flow end to end: `houston up --demo` with the Anthropic and Composio stand-ins.
//!
//! Juan requests that HR post the vacation policy to #general. The stream shows "Calling
//! Slack…" and the outcome, the egress proxy adds the Composio key, and the post runs as Juan.
//! A second run needs his approval and his Slack connection before the post goes out.

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

/// Reads stream events one at a time from a chat response.
struct Events {
    response: reqwest::Response,
    decoder: houston_protocol::sse::SseDecoder,
    pending: std::collections::VecDeque<houston_protocol::StreamEvent>,
    seen: Vec<houston_protocol::StreamEvent>,
}

impl Events {
    fn new(response: reqwest::Response) -> Self {
        Self { response, decoder: houston_protocol::sse::SseDecoder::new(), pending: Default::default(), seen: Vec::new() }
    }

    async fn next(&mut self) -> Option<houston_protocol::StreamEvent> {
        loop {
            if let Some(event) = self.pending.pop_front() {
                self.seen.push(event.clone());
                return Some(event);
            }
            let read = tokio::time::timeout(std::time::Duration::from_secs(30), self.response.chunk()).await;
            let chunk = read.expect("the answer stream stalled").expect("read the answer stream")?;
            self.pending.extend(self.decoder.feed(&chunk).into_iter().map(|frame| frame.to_event().expect("a stream event")));
        }
    }

    async fn until(&mut self, wanted: &str) -> houston_protocol::StreamEvent {
        while let Some(event) = self.next().await {
            if event.kind.type_name() == wanted {
                return event;
            }
        }
        panic!("the stream ended before {wanted}: {:?}", types(&self.seen));
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn approval_then_connection_then_post() {
    let model = StandIn::start().await;
    let composio = ComposioStandIn::start(COMPOSIO_KEY).await.unwrap();
    composio.add_tool(StandInTool::new("SLACK_SEND_MESSAGE", "slack", &["channel", "text"]));
    let dir = tempfile::tempdir().unwrap();
    let home = dir.path().join("home");
    let env = [
        ("ANTHROPIC_API_KEY", "test-key".to_owned()),
        ("ANTHROPIC_BASE_URL", model.base_url()),
        ("COMPOSIO_API_KEY", COMPOSIO_KEY.to_owned()),
        ("COMPOSIO_BASE_URL", composio.base_url().to_owned()),
    ];
    let houston = Houston::start(&home, &["--demo"], &env);
    let juan = houston.login("juan@acme.test").await;
    let admin = houston.login("admin@acme.test").await;
    let me = houston.get_json(&juan, "/v1/me").await;
    let composio_user = format!("{}:{}", me["workspaces"][0]["id"].as_str().unwrap(), me["user"]["id"].as_str().unwrap());
    let agents = houston.get_json(&juan, "/v1/agents").await;
    let hr_id = agents["agents"][0]["id"].as_str().unwrap().to_owned();
    let config_dir = home.join("agents").join(&hr_id).join(".houston/config");
    std::fs::create_dir_all(&config_dir).unwrap();
    std::fs::write(config_dir.join("config.json"), r#"{"tools": {"require_approval": ["SLACK_SEND_MESSAGE"]}}"#).unwrap();

    model.push(Script::new().tool_use("toolu_1", "SLACK_SEND_MESSAGE", &[POST_INPUT]).end_tool_use(12).build());
    model.push(Script::new().text(&["Posted our vacation policy to #general."]).end_turn(9).build());
    let response = houston.post_chat(&juan, json!({"agent_id": "hr", "message": "post our vacation policy to #general"})).await;
    assert_eq!(response.status(), 200);
    let mut events = Events::new(response);

    let accepted = events.until("turn.accepted").await;
    let EventKind::TurnAccepted { session_id } = &accepted.kind else { unreachable!() };
    let requested = events.until("tool.approval_requested").await;
    let EventKind::ToolApprovalRequested { call_id, label, .. } = &requested.kind else { unreachable!() };
    assert_eq!(label, "Calling Slack…");
    let path = format!("/v1/agents/hr/sessions/{session_id}/turns/{}/approvals/{call_id}", requested.turn_id);
    let decided = houston.client.post(format!("{}{path}", houston.url)).bearer_auth(&juan).json(&json!({"approve": true})).send().await.unwrap();
    assert_eq!(decided.status(), 200, "{}", decided.text().await.unwrap_or_default());

    let card = events.until("tool.needs_connection").await;
    let EventKind::ToolNeedsConnection { toolkit, connect_url, .. } = &card.kind else { unreachable!() };
    assert_eq!(toolkit, "slack");
    assert!(connect_url.starts_with(composio.base_url()), "{connect_url}");
    let pending = houston.get_json(&juan, "/v1/agents/hr/connections").await;
    assert_eq!(pending["connections"][0]["state"], "pending", "{pending}");
    assert!(composio.complete_link(&composio_user, "slack"));

    let finished = events.until("tool.finished").await;
    let EventKind::ToolFinished { outcome, .. } = &finished.kind else { unreachable!() };
    assert_eq!(*outcome, ToolOutcome::Ok);
    let completed = events.until("turn.completed").await;
    assert_eq!(completed.kind.type_name(), "turn.completed");
    assert_eq!(composio.executions().len(), 1);
    assert_eq!(composio.executions()[0].user_id, composio_user);

    let audit = houston.get_json(&admin, "/v1/workspaces/acme/audit?action=tool.approval").await;
    let decisions: Vec<&str> = audit["entries"].as_array().unwrap().iter().filter_map(|entry| entry["decision"].as_str()).collect();
    assert!(decisions.contains(&"approved"), "{audit}");
}
