//! The whole flow on a fresh home folder: `houston up --demo` with the Anthropic stand-in,
//! Juan chatting with the sleeping HR agent, isolation from Sales, resume and cancel.

mod flow_support;

use std::time::Duration;

use flow_support::{Houston, answer_text, read_events, seqs, session_of, types, wait_until};
use houston_protocol::EventKind;
use houston_testkit::anthropic::{Script, StandIn};
use serde_json::{Value, json};

const CANARY: &str = "SALES-CANARY-7f3a9c";

struct Demo {
    houston: Houston,
    stand_in: StandIn,
    juan: String,
    admin: String,
    hr_id: String,
    sales_id: String,
    _dir: tempfile::TempDir,
}

async fn start_demo() -> Demo {
    let stand_in = StandIn::start().await;
    let dir = tempfile::tempdir().unwrap();
    let env = [
        ("ANTHROPIC_API_KEY", "test-key".to_owned()),
        ("ANTHROPIC_BASE_URL", stand_in.base_url()),
        ("HOUSTON_IDLE_TIMEOUT_SECS", "2".to_owned()),
    ];
    let houston = Houston::start(&dir.path().join("home"), &["--demo"], &env);
    assert_eq!(houston.passwords.len(), 2, "two demo accounts are printed");
    let juan = houston.login("juan@acme.test").await;
    let admin = houston.login("admin@acme.test").await;
    let agents = houston.get_json(&admin, "/v1/workspaces/acme/agents").await;
    let id_of = |slug: &str| {
        let list = agents["agents"].as_array().expect("an agent list");
        let agent = list.iter().find(|agent| agent["slug"] == slug).expect("a demo agent");
        agent["id"].as_str().unwrap().to_owned()
    };
    let (hr_id, sales_id) = (id_of("hr"), id_of("sales"));
    Demo { houston, stand_in, juan, admin, hr_id, sales_id, _dir: dir }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn demo_flow_end_to_end() {
    let demo = start_demo().await;
    let houston = &demo.houston;

    let agents = houston.get_json(&demo.juan, "/v1/agents").await;
    let slugs: Vec<&str> = agents["agents"].as_array().unwrap().iter().map(|a| a["slug"].as_str().unwrap()).collect();
    assert_eq!(slugs, ["hr"], "Juan sees HR only");

    cold_chat_is_stored_and_billed(&demo).await;
    idle_runtime_stops_and_wakes_again(&demo).await;
    sales_is_hidden_like_unknown_agent(&demo).await;
    hr_never_reads_sales_canary(&demo).await;
    dropped_stream_resumes_exactly_once(&demo).await;
    cancel_stops_stand_in_stream(&demo).await;
}

async fn cold_chat_is_stored_and_billed(demo: &Demo) {
    let houston = &demo.houston;
    let message = "what's our vacation policy?";
    let events = houston.chat(&demo.juan, json!({"agent_id": "hr", "message": message})).await;

    let kinds = types(&events);
    assert_eq!(&kinds[..3], ["turn.accepted", "agent.waking", "agent.ready"], "{kinds:?}");
    assert!(kinds.contains(&"message.delta"), "{kinds:?}");
    assert_eq!(kinds.last(), Some(&"turn.completed"), "{kinds:?}");
    assert_eq!(seqs(&events), (1..=events.len() as u64).collect::<Vec<_>>());
    assert!(answer_text(&events).contains(message), "the stand-in quotes the message");
    let request = demo.stand_in.requests().pop().expect("the stand-in got the model call");
    assert_eq!(request.header("x-api-key"), Some("test-key"), "the egress proxy adds the key");

    let me = houston.get_json(&demo.juan, "/v1/me").await;
    let juan_id = me["user"]["id"].as_str().unwrap();
    let session = session_of(&events);
    let file = houston.home.join("agents").join(&demo.hr_id).join(".houston/sessions").join(juan_id).join(format!("{session}.jsonl"));
    let stored = std::fs::read_to_string(&file).unwrap_or_else(|e| panic!("session file {}: {e}", file.display()));
    assert!(stored.contains(events[0].turn_id.as_str()), "the turn is in Juan's session file");
    assert!(!stored.contains("test-key"), "no key on the volume");

    let audit_path = format!("/v1/workspaces/acme/audit?agent_id={}", demo.hr_id);
    let audited = wait_until(Duration::from_secs(10), async || {
        let audit = houston.get_json(&demo.admin, &audit_path).await.to_string();
        audit.contains("agent.chat") && audit.contains("turn.finished")
    })
    .await;
    assert!(audited, "audit rows for the chat decision and the finished turn");
    let billed = wait_until(Duration::from_secs(10), async || {
        let usage = houston.get_json(&demo.admin, "/v1/workspaces/acme/usage?group_by=agent").await;
        usage["rows"].as_array().unwrap().iter().any(|row| {
            row["messages"].as_i64() >= Some(1) && row["wake_ups"].as_i64() >= Some(1) && row["output_tokens"].as_i64() > Some(0)
        })
    })
    .await;
    assert!(billed, "a usage row with the message, its tokens and the wake-up");
}

async fn idle_runtime_stops_and_wakes_again(demo: &Demo) {
    let houston = &demo.houston;
    let stopped = wait_until(Duration::from_secs(20), async || Houston::processes_mentioning(&demo.hr_id).is_empty()).await;
    assert!(stopped, "no HR process after the idle timeout");

    let events = houston.chat(&demo.juan, json!({"agent_id": "hr", "message": "and sick leave?"})).await;
    assert_eq!(&types(&events)[..3], ["turn.accepted", "agent.waking", "agent.ready"]);
    assert!(!Houston::processes_mentioning(&demo.hr_id).is_empty(), "HR runs again after waking");
}

async fn sales_is_hidden_like_unknown_agent(demo: &Demo) {
    let houston = &demo.houston;
    let mut bodies = Vec::new();
    for agent in ["sales", demo.sales_id.as_str(), "no-such-agent"] {
        let response = houston.post_chat(&demo.juan, json!({"agent_id": agent, "message": "pipeline?"})).await;
        assert_eq!(response.status(), 404, "chat to {agent}");
        bodies.push(response.text().await.unwrap());
    }
    assert_eq!(bodies[0], bodies[2], "Sales by slug answers like an unknown agent");
    assert_eq!(bodies[1], bodies[2], "Sales by id answers like an unknown agent");
}

async fn hr_never_reads_sales_canary(demo: &Demo) {
    let houston = &demo.houston;
    let paths = [
        "/data/sales/knowledge/pipeline.md".to_owned(),
        "../sales/knowledge/pipeline.md".to_owned(),
        format!("../../{}/knowledge/pipeline.md", demo.sales_id),
        format!("{}/agents/{}/knowledge/pipeline.md", houston.home.display(), demo.sales_id),
    ];
    for path in paths {
        let input = json!({ "path": path }).to_string();
        demo.stand_in.push(Script::new().tool_use("toolu_1", "read_knowledge", &[&input]).end_tool_use(4).build());
        demo.stand_in.push(Script::new().text(&["Done."]).end_turn(1).build());
        let before = demo.stand_in.requests().len();

        let message = format!("Please read {path}");
        let events = houston.chat(&demo.juan, json!({"agent_id": "hr", "message": message})).await;

        let kinds = types(&events);
        assert!(kinds.contains(&"tool.finished"), "the tool ran for {path}: {kinds:?}");
        let streamed = serde_json::to_string(&events).unwrap();
        assert!(!streamed.contains(CANARY), "the stream for {path} leaked the canary");
        let sent_to_model: Vec<String> = demo.stand_in.requests()[before..].iter().map(|r| r.body.to_string()).collect();
        assert_eq!(sent_to_model.len(), 2, "a tool call and the answer after it");
        assert!(sent_to_model.iter().all(|body| !body.contains(CANARY)), "the tool result for {path} held the canary");
    }
}

async fn dropped_stream_resumes_exactly_once(demo: &Demo) {
    let houston = &demo.houston;
    demo.stand_in.set_default_token_delay(Some(Duration::from_millis(100)));
    let message = "one two three four five six seven eight";
    let response = houston.post_chat(&demo.juan, json!({"agent_id": "hr", "message": message})).await;
    let head = read_events(response, 4).await;
    assert_eq!(head.len(), 4);
    let session = session_of(&head);

    let path = format!("/v1/agents/hr/sessions/{session}/turns/{}/events", head[0].turn_id);
    let resumed = houston.client.get(format!("{}{path}", houston.url)).bearer_auth(&demo.juan).header("last-event-id", "4").send().await.unwrap();
    assert_eq!(resumed.status(), 200);
    let tail = read_events(resumed, usize::MAX).await;
    demo.stand_in.set_default_token_delay(None);

    let all: Vec<_> = head.into_iter().chain(tail).collect();
    assert_eq!(seqs(&all), (1..=all.len() as u64).collect::<Vec<_>>(), "every event exactly once");
    assert_eq!(all.last().unwrap().kind.type_name(), "turn.completed");
    assert_eq!(answer_text(&all), format!("Stand-in reply. You wrote: {message}"));
}

async fn cancel_stops_stand_in_stream(demo: &Demo) {
    let houston = &demo.houston;
    let pieces: Vec<String> = (0..30).map(|i| format!("word{i} ")).collect();
    let pieces: Vec<&str> = pieces.iter().map(String::as_str).collect();
    demo.stand_in.push(Script::new().token_delay(Duration::from_millis(200)).text(&pieces).end_turn(30).build());
    let mut response = houston.post_chat(&demo.juan, json!({"agent_id": "hr", "message": "a long answer please"})).await;

    let mut decoder = houston_protocol::sse::SseDecoder::new();
    let mut events = Vec::new();
    while !events.iter().any(|e: &houston_protocol::StreamEvent| matches!(e.kind, EventKind::MessageDelta { .. })) {
        let chunk = response.chunk().await.unwrap().expect("the stream continues until a delta");
        events.extend(decoder.feed(&chunk).into_iter().map(|f| f.to_event().unwrap()));
    }
    let session = session_of(&events);
    let turn_id = events[0].turn_id.to_string();
    let cancel = houston
        .client
        .post(format!("{}/v1/agents/hr/sessions/{session}/turns/{turn_id}/cancel", houston.url))
        .bearer_auth(&demo.juan)
        .send()
        .await
        .unwrap();
    assert_eq!(cancel.status(), 202);
    while let Some(chunk) = response.chunk().await.unwrap() {
        events.extend(decoder.feed(&chunk).into_iter().map(|f| f.to_event().unwrap()));
    }

    assert_eq!(events.last().unwrap().kind, EventKind::TurnCancelled {});
    let deltas = events.iter().filter(|e| matches!(e.kind, EventKind::MessageDelta { .. })).count();
    assert!(deltas < 30, "the stand-in stream stopped early: {deltas} of 30 pieces");
    let history: Value = houston.get_json(&demo.juan, &format!("/v1/agents/hr/sessions/{session}")).await;
    assert!(history.to_string().contains("cancelled"), "the turn is stored as cancelled: {history}");
}
