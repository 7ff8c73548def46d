//! Turns against each model provider: the offline provider on the Acme handbook fixture, and
//! the Anthropic and OpenAI stand-ins with scripted streams, errors and retries.

mod common;

use common::*;
use houston_engine::ProviderSettings;
use houston_engine::config::ProviderKind;
use houston_protocol::{EventKind, Usage};
use houston_testkit::anthropic::{Reply, Script, StandIn};
use houston_testkit::openai::{ChunkScript, OpenAiStandIn};

#[tokio::test]
async fn offline_answers_vacation_from_handbook() {
    let dir = agent_folder();
    let engine = TestEngine::start(config(dir.path(), ProviderSettings::offline())).await;
    let events = engine.turn("s1", "juan", "what's our vacation policy?").await;

    assert_contiguous(&events);
    assert_eq!(events[0].kind.type_name(), "turn.accepted");
    let deltas = types_of(&events).iter().filter(|t| **t == "message.delta").count();
    assert!(deltas >= 5, "the offline answer streams in pieces, got {deltas}");
    let text = text_of(&events);
    assert!(text.contains("offline answer"), "{text}");
    assert!(text.contains("20 days of paid vacation"), "{text}");
    assert_eq!(events.last().unwrap().kind.type_name(), "turn.completed");
}

#[tokio::test]
async fn anthropic_streams_text_and_usage() {
    let dir = agent_folder();
    let stand_in = StandIn::start().await;
    stand_in.push(
        Script::with_input_tokens(42)
            .ping()
            .text(&["Twenty ", "days", "."])
            .unknown_event()
            .stop("end_turn", 3)
            .stop("end_turn", 7)
            .message_stop()
            .build(),
    );
    let engine = TestEngine::start(config(dir.path(), anthropic_settings(&stand_in.base_url(), Some("sk-test-key")))).await;
    let events = engine.turn("s1", "juan", "vacation?").await;

    assert_eq!(types_of(&events), ["turn.accepted", "message.delta", "message.delta", "message.delta", "turn.completed"]);
    assert_eq!(text_of(&events), "Twenty days.");
    let EventKind::TurnCompleted { usage, stop_reason } = &events[4].kind else { panic!("not completed") };
    assert_eq!(*usage, Usage { input_tokens: 42, output_tokens: 7 }, "cumulative usage is not double counted");
    assert_eq!(stop_reason, "end_turn");

    let request = &stand_in.requests()[0];
    assert_eq!(request.header("x-api-key"), Some("sk-test-key"));
    assert_eq!(request.header("anthropic-version"), Some("2023-06-01"));
    assert_eq!(request.body["stream"], true);
    assert!(request.body["system"].as_str().unwrap().starts_with("You are the Acme HR assistant."));
    assert!(request.body["system"].as_str().unwrap().contains("handbook.md"));
    assert_eq!(request.last_user_text(), "vacation?");

    let records = session_records(dir.path(), "juan", "s1");
    assert_eq!(records.len(), 2);
    assert_eq!(records[1]["status"], "completed");
    assert_eq!(records[1]["text"], "Twenty days.");
    assert_eq!(records[1]["usage"]["output_tokens"], 7);
}

#[tokio::test]
async fn history_is_sent_on_next_turn() {
    let dir = agent_folder();
    let stand_in = StandIn::start().await;
    let engine = TestEngine::start(config(dir.path(), anthropic_settings(&stand_in.base_url(), Some("k")))).await;
    engine.turn("s1", "juan", "first question").await;
    engine.turn("s1", "juan", "second question").await;

    let messages = stand_in.requests()[1].body["messages"].as_array().unwrap().clone();
    assert_eq!(messages.len(), 3);
    assert_eq!(messages[0]["content"][0]["text"], "first question");
    assert_eq!(messages[1]["role"], "assistant");
    assert!(messages[1]["content"][0]["text"].as_str().unwrap().contains("first question"));
    assert_eq!(messages[2]["content"][0]["text"], "second question");
}

#[tokio::test]
async fn error_event_after_200_fails_retryably() {
    let dir = agent_folder();
    let stand_in = StandIn::start().await;
    stand_in.push(Script::new().text(&["Partial "]).error("overloaded_error", "Overloaded").build());
    let engine = TestEngine::start(config(dir.path(), anthropic_settings(&stand_in.base_url(), Some("k")))).await;
    let events = engine.turn("s1", "juan", "hi").await;

    let EventKind::TurnFailed { error } = &events.last().unwrap().kind else { panic!("expected turn.failed: {events:?}") };
    assert_eq!(error.code, "model_stream_error");
    assert!(error.retryable);
    assert_eq!(error.message, "The model provider reported an error while answering. Try again in a moment.");
    assert_eq!(text_of(&events), "Partial ", "streamed text is never repeated");
    assert_eq!(stand_in.requests().len(), 1, "no retry after HTTP 200");
    let records = session_records(dir.path(), "juan", "s1");
    assert_eq!(records[1]["status"], "failed");
    assert_eq!(records[1]["text"], "Partial ");
}

#[tokio::test]
async fn overloaded_and_rate_limited_are_retried() {
    let dir = agent_folder();
    let stand_in = StandIn::start().await;
    stand_in.push(Reply::overloaded());
    stand_in.push(Reply::rate_limited());
    stand_in.push(Script::new().text(&["ok"]).end_turn(1).build());
    let engine = TestEngine::start(config(dir.path(), anthropic_settings(&stand_in.base_url(), Some("k")))).await;
    let events = engine.turn("s1", "juan", "hi").await;

    assert_eq!(events.last().unwrap().kind.type_name(), "turn.completed");
    assert_eq!(text_of(&events), "ok");
    assert_eq!(stand_in.requests().len(), 3);
}

#[tokio::test]
async fn persistent_overload_fails_after_bounded_retries() {
    let dir = agent_folder();
    let stand_in = StandIn::start().await;
    for _ in 0..5 {
        stand_in.push(Reply::overloaded());
    }
    let engine = TestEngine::start(config(dir.path(), anthropic_settings(&stand_in.base_url(), Some("k")))).await;
    let events = engine.turn("s1", "juan", "hi").await;

    let EventKind::TurnFailed { error } = &events.last().unwrap().kind else { panic!("expected turn.failed") };
    assert_eq!(error.code, "model_overloaded");
    assert!(error.retryable);
    assert_eq!(stand_in.requests().len(), 3, "one call plus two retries");
}

#[tokio::test]
async fn truncated_stream_fails() {
    let dir = agent_folder();
    let stand_in = StandIn::start().await;
    stand_in.push(Script::new().text(&["cut"]).build());
    let engine = TestEngine::start(config(dir.path(), anthropic_settings(&stand_in.base_url(), Some("k")))).await;
    let events = engine.turn("s1", "juan", "hi").await;
    let EventKind::TurnFailed { error } = &events.last().unwrap().kind else { panic!("expected turn.failed") };
    assert_eq!(error.code, "model_stream_interrupted");
}

#[tokio::test]
async fn openai_streams_text_and_tool_calls() {
    let dir = agent_folder();
    let stand_in = OpenAiStandIn::start().await;
    stand_in.push(ChunkScript::new().tool_call(0, "call_1", "read_knowledge", &["{\"pa", "th\":\"handbook.md\"}"]).finish("tool_calls", 20, 5));
    stand_in.push(ChunkScript::new().text(&["Twenty", " days"]).finish("stop", 30, 2));
    let mut settings = anthropic_settings(&stand_in.base_url(), Some("sk-openai"));
    settings.kind = ProviderKind::OpenAi;
    let engine = TestEngine::start(config(dir.path(), settings)).await;
    let events = engine.turn("s1", "juan", "vacation?").await;

    assert_eq!(types_of(&events), ["turn.accepted", "tool.started", "tool.finished", "message.delta", "message.delta", "turn.completed"]);
    let EventKind::TurnCompleted { usage, .. } = &events[5].kind else { panic!("not completed") };
    assert_eq!(*usage, Usage { input_tokens: 50, output_tokens: 7 });
    let requests = stand_in.requests();
    assert_eq!(requests[0].header("authorization"), Some("Bearer sk-openai"));
    assert_eq!(requests[0].body["messages"][0]["role"], "system");
    let tool_message = &requests[1].body["messages"].as_array().unwrap().last().unwrap().clone();
    assert_eq!(tool_message["role"], "tool");
    assert!(tool_message["content"].as_str().unwrap().contains("20 days"));
}
