//! The Composio broker against the local Composio stand-in: listing, running as the chatting
//! user, the connect flow, expired connections, tool errors, renamed slugs and the policy.

use std::sync::Arc;
use std::time::Duration;

use houston_engine::http::HttpClient;
use houston_engine::tools::composio::{ComposioBroker, ComposioSettings};
use houston_engine::tools::policy::{PolicyBroker, ToolPolicy};
use houston_engine::tools::{ToolBroker, ToolContext, ToolOutput};
use houston_protocol::{SessionId, TurnId, UserId, WorkspaceId};
use houston_testkit::composio::{Behaviour, ComposioStandIn, StandInTool};
use secrecy::SecretString;
use serde_json::json;

const KEY: &str = "composio-test-key";

async fn stand_in() -> ComposioStandIn {
    let stand_in = ComposioStandIn::start(KEY).await.unwrap();
    stand_in.add_tool(StandInTool::new("SLACK_SEND_MESSAGE", "slack", &["channel", "text"]));
    stand_in.add_tool(StandInTool::new("SLACK_LIST_CHANNELS", "slack", &[]));
    stand_in
}

fn settings(stand_in: &ComposioStandIn, key: &str) -> ComposioSettings {
    let mut settings = ComposioSettings::new(stand_in.base_url(), WorkspaceId::parse("acme").unwrap());
    settings.api_key = Some(SecretString::from(key.to_owned()));
    settings.connection_wait = Duration::from_secs(5);
    settings.poll_interval = Duration::from_millis(20);
    settings
}

fn broker(stand_in: &ComposioStandIn) -> ComposioBroker {
    ComposioBroker::new(settings(stand_in, KEY), HttpClient::direct())
}

fn context(user: &str) -> ToolContext {
    ToolContext {
        user_id: UserId::parse(user).unwrap(),
        session_id: SessionId::parse("s1").unwrap(),
        turn_id: TurnId::generate(),
        toolkits: vec!["slack".into()],
    }
}

#[tokio::test]
async fn lists_tools_of_declared_toolkits() {
    let stand_in = stand_in().await;
    stand_in.add_tool(StandInTool::new("GMAIL_SEND_EMAIL", "gmail", &["to"]));
    let tools = broker(&stand_in).list_tools(&context("juan")).await.unwrap();
    let names: Vec<&str> = tools.iter().map(|tool| tool.spec.name.as_str()).collect();
    assert_eq!(names, vec!["SLACK_SEND_MESSAGE", "SLACK_LIST_CHANNELS"]);
    assert_eq!(tools[0].toolkit.as_deref(), Some("slack"));
    assert_eq!(tools[0].spec.input_schema["properties"]["channel"]["type"], "string");
}

#[tokio::test]
async fn not_connected_then_connection_lands() {
    let stand_in = stand_in().await;
    let broker = broker(&stand_in);
    let juan = context("juan");
    let input = json!({"channel": "#general", "text": "hi"});

    let output = broker.call(&juan, "SLACK_SEND_MESSAGE", &input).await;
    let ToolOutput::NeedsConnection { toolkit, connect_url } = output else { panic!("expected NeedsConnection, got {output:?}") };
    assert_eq!(toolkit, "slack");
    assert!(connect_url.starts_with(stand_in.base_url()), "{connect_url}");
    let links = stand_in.links();
    assert_eq!(links.len(), 1);
    assert_eq!(links[0].user_id, "acme:juan");
    assert!(stand_in.executions().is_empty(), "nothing ran without a connection");

    assert!(!broker_waits_briefly(&stand_in, &juan).await, "a pending link is not a connection");
    assert!(stand_in.complete_link("acme:juan", "slack"));
    assert!(broker.wait_for_connection(&juan, "slack").await);

    let output = broker.call(&juan, "SLACK_SEND_MESSAGE", &input).await;
    assert_eq!(output, ToolOutput::Ok(r#"{"ok":true}"#.into()));
    let executions = stand_in.executions();
    assert_eq!(executions.len(), 1);
    assert_eq!(executions[0].user_id, "acme:juan");
    assert_eq!(executions[0].connected_account_id, links[0].connected_account_id);
    assert_eq!(executions[0].arguments, input);
}

async fn broker_waits_briefly(stand_in: &ComposioStandIn, context: &ToolContext) -> bool {
    let mut short = settings(stand_in, KEY);
    short.connection_wait = Duration::from_millis(60);
    ComposioBroker::new(short, HttpClient::direct()).wait_for_connection(context, "slack").await
}

#[tokio::test]
async fn expired_connection_asks_to_reconnect() {
    let stand_in = stand_in().await;
    let expired = stand_in.add_account("acme:juan", "slack", "EXPIRED");
    let output = broker(&stand_in).call(&context("juan"), "SLACK_SEND_MESSAGE", &json!({})).await;
    assert!(matches!(output, ToolOutput::NeedsConnection { ref toolkit, .. } if toolkit == "slack"), "{output:?}");
    let links = stand_in.links();
    assert_eq!(links.len(), 1);
    assert_ne!(links[0].connected_account_id, expired, "a new account is linked");
    assert!(stand_in.executions().is_empty());
}

#[tokio::test]
async fn tool_error_goes_back_as_error_result() {
    let stand_in = stand_in().await;
    stand_in.add_account("acme:juan", "slack", "ACTIVE");
    stand_in.script("SLACK_SEND_MESSAGE", Behaviour::Fail("channel_not_found".into()));
    let output = broker(&stand_in).call(&context("juan"), "SLACK_SEND_MESSAGE", &json!({"channel": "#nope"})).await;
    let ToolOutput::Error(message) = output else { panic!("expected an error, got {output:?}") };
    assert!(message.contains("SLACK_SEND_MESSAGE failed"), "{message}");
    assert!(message.contains("channel_not_found"), "{message}");
}

#[tokio::test]
async fn two_users_act_with_their_own_accounts() {
    let stand_in = stand_in().await;
    let juan_account = stand_in.add_account("acme:juan", "slack", "ACTIVE");
    let ana_account = stand_in.add_account("acme:ana", "slack", "ACTIVE");
    let broker = broker(&stand_in);
    let (juan, ana) = (context("juan"), context("ana"));
    let (juan_input, ana_input) = (json!({"text": "from juan"}), json!({"text": "from ana"}));
    let (first, second) = tokio::join!(
        broker.call(&juan, "SLACK_SEND_MESSAGE", &juan_input),
        broker.call(&ana, "SLACK_SEND_MESSAGE", &ana_input),
    );
    assert!(matches!(first, ToolOutput::Ok(_)), "{first:?}");
    assert!(matches!(second, ToolOutput::Ok(_)), "{second:?}");
    let executions = stand_in.executions();
    let by_text = |text: &str| executions.iter().find(|e| e.arguments["text"] == text).unwrap().clone();
    assert_eq!(by_text("from juan").connected_account_id, juan_account);
    assert_eq!(by_text("from juan").user_id, "acme:juan");
    assert_eq!(by_text("from ana").connected_account_id, ana_account);
    assert_eq!(by_text("from ana").user_id, "acme:ana");
}

#[tokio::test]
async fn renamed_slug_names_the_current_tools() {
    let stand_in = stand_in().await;
    stand_in.add_account("acme:juan", "slack", "ACTIVE");
    let broker = broker(&stand_in);
    let juan = context("juan");
    broker.list_tools(&juan).await.unwrap();

    stand_in.remove_tool("SLACK_SEND_MESSAGE");
    stand_in.add_tool(StandInTool::new("SLACK_CHAT_POST_MESSAGE", "slack", &["channel", "text"]));
    let output = broker.call(&juan, "SLACK_SEND_MESSAGE", &json!({})).await;
    let ToolOutput::Error(message) = output else { panic!("expected an error, got {output:?}") };
    assert!(message.contains("no longer exists"), "{message}");
    assert!(message.contains("SLACK_CHAT_POST_MESSAGE"), "{message}");
    assert!(!message.to_lowercase().contains("integrations broken"), "{message}");

    let offered: Vec<String> = broker.list_tools(&juan).await.unwrap().into_iter().map(|tool| tool.spec.name).collect();
    assert!(offered.contains(&"SLACK_CHAT_POST_MESSAGE".to_owned()), "the catalog was refreshed: {offered:?}");
}

#[tokio::test]
async fn wrong_api_key_is_reported_not_retried() {
    let stand_in = stand_in().await;
    stand_in.add_account("acme:juan", "slack", "ACTIVE");
    let broker = ComposioBroker::new(settings(&stand_in, "wrong-key"), HttpClient::direct());
    let output = broker.call(&context("juan"), "SLACK_SEND_MESSAGE", &json!({})).await;
    let ToolOutput::Error(message) = output else { panic!("expected an error, got {output:?}") };
    assert!(message.contains("API key"), "{message}");
    assert_eq!(stand_in.rejected_requests(), 1);
    assert!(stand_in.executions().is_empty());
}

#[tokio::test]
async fn large_results_are_capped() {
    let stand_in = stand_in().await;
    stand_in.add_account("acme:juan", "slack", "ACTIVE");
    stand_in.script("SLACK_LIST_CHANNELS", Behaviour::Succeed(json!({"channels": "x".repeat(100_000)})));
    let mut capped = settings(&stand_in, KEY);
    capped.max_result_bytes = 2_000;
    let output = ComposioBroker::new(capped, HttpClient::direct()).call(&context("juan"), "SLACK_LIST_CHANNELS", &json!({})).await;
    let ToolOutput::Ok(text) = output else { panic!("expected a result, got {output:?}") };
    assert!(text.len() < 2_200, "{} bytes", text.len());
    assert!(text.contains("[truncated:"), "{text}");
}

#[tokio::test]
async fn policy_hides_denied_tools_and_marks_approval() {
    let stand_in = stand_in().await;
    stand_in.add_account("acme:juan", "slack", "ACTIVE");
    let policy = ToolPolicy {
        deny: vec!["SLACK_LIST_*".into()],
        require_approval: vec!["SLACK_SEND_MESSAGE".into()],
        max_result_bytes: 16_384,
        ..ToolPolicy::default()
    };
    let wrapped = PolicyBroker::new(Arc::new(broker(&stand_in)), Arc::new(policy), "hr");
    let juan = context("juan");
    let names: Vec<String> = wrapped.list_tools(&juan).await.unwrap().into_iter().map(|tool| tool.spec.name).collect();
    assert_eq!(names, vec!["SLACK_SEND_MESSAGE".to_owned()]);
    assert!(wrapped.needs_approval("SLACK_SEND_MESSAGE"));
    let denied = wrapped.call(&juan, "SLACK_LIST_CHANNELS", &json!({})).await;
    assert!(matches!(denied, ToolOutput::Error(ref message) if message.contains("not allowed")), "{denied:?}");
    assert!(stand_in.executions().is_empty(), "a denied tool never reaches Composio");
}
