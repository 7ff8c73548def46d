//! The tool loop of one turn: call the model, run the tools it asks for, feed the results
//! back, until it answers without tools or the round limit is reached. Then the turn is
//! stored and its terminal event emitted, in that order, so a client that saw the end can
//! always read the turn back.

use std::sync::{Arc, Mutex};
use std::time::Instant;

use houston_protocol::{EventKind, ToolOutcome, TurnError, Usage};
use tracing::Instrument;

use super::tool_gate::{self, Gated};
use tokio::sync::{mpsc, watch};

use super::{Durability, TurnEnv, TurnHandle};
use crate::prompt;
use crate::providers::{ContentBlock, Message, ModelReply, ModelRequest, ProviderError, Role};
use crate::sessions::{AssistantRecord, SessionRecord, ToolCallRecord, TurnStatus, UserRecord, now};
use crate::tools::{OfferedTools, ToolContext, ToolOutput};

/// Largest tool error text copied into a `tool.finished` event, in characters.
const MAX_EVENT_MESSAGE_CHARS: usize = 300;

/// Text, tool calls and usage the turn produced so far, kept outside the model call so a cancelled turn still
/// stores the text its client saw.
#[derive(Default)]
struct Transcript {
    text: String,
    tool_calls: Vec<ToolCallRecord>,
    usage: Usage,
}

enum Ending {
    Completed { stop_reason: String },
    Failed(TurnError),
    Cancelled,
}

/// Runs the turn to its end and stores it. `records` is the session including the new user
/// message, which is the last record. No event is emitted before `durable` reports the user
/// message is stored, so `turn.accepted` stays the first event.
pub(super) async fn run(env: Arc<TurnEnv>, handle: Arc<TurnHandle>, records: Vec<SessionRecord>, durable: watch::Receiver<Durability>) {
    let span = tracing::info_span!("turn", turn.id = %handle.turn_id, session.id = %handle.session_id, user.id = %handle.user_id);
    async move {
        let started = Instant::now();
        tracing::info!(provider = env.provider.name(), "turn started");
        let transcript = Mutex::new(Transcript::default());
        let ending = tokio::select! {
            biased;
            () = handle.cancel.cancelled() => Ending::Cancelled,
            ending = converse(&env, &handle, &records, &transcript, &durable) => ending,
        };
        let transcript = transcript.into_inner().expect("transcript lock poisoned");
        finish(&env, &handle, transcript, ending, durable).await;
        tracing::info!(elapsed_ms = started.elapsed().as_millis() as u64, "turn ended");
    }
    .instrument(span)
    .await;
}

async fn converse(
    env: &TurnEnv,
    handle: &TurnHandle,
    records: &[SessionRecord],
    transcript: &Mutex<Transcript>,
    durable: &watch::Receiver<Durability>,
) -> Ending {
    let Some((SessionRecord::User(UserRecord { text: message, .. }), earlier)) = records.split_last() else {
        return Ending::Failed(internal_error("the session does not end with the user message"));
    };
    let history = prompt::history(earlier, env.history_budget_tokens);
    if history.dropped_turns > 0 {
        tracing::info!(dropped_turns = history.dropped_turns, "left the oldest turns out of the prompt to fit the history budget");
    }
    let context = ToolContext {
        user_id: handle.user_id.clone(),
        session_id: handle.session_id.clone(),
        turn_id: handle.turn_id.clone(),
        toolkits: env.folder.integrations(),
    };
    let offered = env.toolbox.offer(&context).await;
    let mut messages = history.messages;
    messages.push(Message::text(Role::User, message.clone()));
    let system = prompt::system_prompt(&env.folder);

    for round in 1..=env.max_model_rounds {
        let last_round = round == env.max_model_rounds;
        let tools = if last_round { Vec::new() } else { offered.specs.clone() };
        let request = ModelRequest { system: system.clone(), messages: messages.clone(), tools };
        let reply = match call_model(env, handle, &request, transcript, durable.clone()).await {
            Ok(reply) => reply,
            Err(error) => return Ending::Failed(provider_failure(handle, &error)),
        };
        add_usage(transcript, reply.usage);
        if reply.tool_uses().next().is_none() {
            return Ending::Completed { stop_reason: reply.stop_reason };
        }
        if last_round {
            break;
        }
        let results = run_tools(&offered, &context, handle, &reply.content, transcript).await;
        messages.push(Message { role: Role::Assistant, content: reply.content });
        messages.push(Message { role: Role::User, content: results });
    }
    Ending::Failed(TurnError {
        code: "tool_rounds_exceeded".into(),
        message: format!("The agent was still calling tools after {} rounds, so it stopped. Try a narrower request.", env.max_model_rounds),
        retryable: false,
    })
}

/// Runs one model call. Text goes into the transcript at once and into the turn's log once
/// the user message is stored, so the fsync overlaps the wait for the first token.
async fn call_model(
    env: &TurnEnv,
    handle: &TurnHandle,
    request: &ModelRequest,
    transcript: &Mutex<Transcript>,
    mut durable: watch::Receiver<Durability>,
) -> Result<ModelReply, ProviderError> {
    let (sender, mut receiver) = mpsc::unbounded_channel::<String>();
    let on_text = move |piece: &str| {
        transcript.lock().expect("transcript lock poisoned").text.push_str(piece);
        let _ = sender.send(piece.to_owned());
    };
    let call = async move {
        let result = env.provider.complete(request, &on_text).await;
        // Dropping the callback drops the sender, which ends the forwarding below.
        drop(on_text);
        result
    };
    let forward = async {
        if !wait_durable(&mut durable).await {
            return;
        }
        while let Some(piece) = receiver.recv().await {
            handle.log.push(EventKind::MessageDelta { text: piece });
        }
    };
    let (result, ()) = tokio::join!(call, forward);
    result
}

/// Waits until the user message's fsync ended; returns true when it succeeded.
async fn wait_durable(durable: &mut watch::Receiver<Durability>) -> bool {
    match durable.wait_for(|state| *state != Durability::Pending).await {
        Ok(state) => *state == Durability::Stored,
        Err(_) => false,
    }
}

fn add_usage(transcript: &Mutex<Transcript>, usage: Usage) {
    let mut transcript = transcript.lock().expect("transcript lock poisoned");
    transcript.usage.input_tokens += usage.input_tokens;
    transcript.usage.output_tokens += usage.output_tokens;
}

/// Runs the tool calls of one reply in order and returns their results for the model.
async fn run_tools(
    offered: &OfferedTools,
    context: &ToolContext,
    handle: &TurnHandle,
    content: &[ContentBlock],
    transcript: &Mutex<Transcript>,
) -> Vec<ContentBlock> {
    let mut results = Vec::new();
    for block in content {
        let ContentBlock::ToolUse { id, name, input, input_error } = block else { continue };
        let label = offered.label(name);
        handle.log.push(EventKind::ToolStarted { call_id: id.clone(), tool: name.clone(), label: label.clone() });
        let gated = match input_error {
            Some(error) => Gated::Ran(ToolOutput::Error(error.clone())),
            None => tool_gate::run_call(offered, context, handle, id, name, input).await,
        };
        let (text, is_error) = match gated {
            Gated::Ran(output) => report_tool_output(handle, id, name, &output),
            Gated::Rejected(reason) => tool_gate::report_rejection(handle, id, name, reason),
        };
        transcript.lock().expect("transcript lock poisoned").tool_calls.push(ToolCallRecord {
            call_id: id.clone(),
            tool: name.clone(),
            label,
            input: input.clone(),
            output: text.clone(),
            is_error,
        });
        results.push(ContentBlock::ToolResult { tool_use_id: id.clone(), content: text, is_error });
    }
    results
}

/// Emits the events of a finished tool call and returns the result text and error flag.
fn report_tool_output(handle: &TurnHandle, call_id: &str, tool: &str, output: &ToolOutput) -> (String, bool) {
    let (text, outcome) = match output {
        ToolOutput::Ok(text) => (text.clone(), ToolOutcome::Ok),
        ToolOutput::Error(text) => (text.clone(), ToolOutcome::Error),
        ToolOutput::NeedsConnection { toolkit, connect_url } => {
            handle.log.push(EventKind::ToolNeedsConnection {
                call_id: call_id.to_owned(),
                toolkit: toolkit.clone(),
                connect_url: connect_url.clone(),
            });
            (format!("the user has not connected {toolkit} yet and was asked to connect it"), ToolOutcome::Error)
        }
    };
    let is_error = outcome != ToolOutcome::Ok;
    let message = is_error.then(|| text.chars().take(MAX_EVENT_MESSAGE_CHARS).collect());
    handle.log.push(EventKind::ToolFinished { call_id: call_id.to_owned(), tool: tool.to_owned(), outcome, message });
    (text, is_error)
}

/// Builds the client-facing error of a failed model call and logs its cause, which clients
/// never see because it names hosts, URLs and OS errors. The cause can quote the provider's
/// error text; behind the egress proxy the engine has no key that text could echo.
fn provider_failure(handle: &TurnHandle, error: &ProviderError) -> TurnError {
    tracing::warn!(turn.id = %handle.turn_id, session.id = %handle.session_id, code = error.code(), %error, "the model call failed");
    TurnError { code: error.code().into(), message: error.user_message().into(), retryable: error.retryable() }
}

fn internal_error(message: &str) -> TurnError {
    TurnError { code: "internal".into(), message: message.into(), retryable: false }
}

/// Stores the turn, then emits its terminal event, then releases the session.
async fn finish(env: &TurnEnv, handle: &TurnHandle, transcript: Transcript, ending: Ending, mut durable: watch::Receiver<Durability>) {
    let (status, stop_reason, error) = match ending {
        Ending::Completed { stop_reason } => (TurnStatus::Completed, Some(stop_reason), None),
        Ending::Failed(error) => (TurnStatus::Failed, None, Some(error)),
        Ending::Cancelled => (TurnStatus::Cancelled, None, None),
    };
    let record = AssistantRecord {
        turn_id: handle.turn_id.clone(),
        at: now(),
        status,
        text: transcript.text,
        tool_calls: transcript.tool_calls,
        usage: transcript.usage,
        stop_reason,
        error,
    };
    let store = env.store.clone();
    let (user, session) = (handle.user_id.clone(), handle.session_id.clone());
    let to_store = SessionRecord::Assistant(record.clone());
    let stored = tokio::task::spawn_blocking(move || store.append(&user, &session, &to_store)).await;
    let terminal = match stored {
        Ok(Ok(())) => terminal_event(&record),
        Ok(Err(error)) => store_failure(&error.to_string()),
        Err(error) => store_failure(&error.to_string()),
    };
    tracing::info!(status = ?record.status, input_tokens = record.usage.input_tokens, output_tokens = record.usage.output_tokens, "turn stored");
    // After a failed fsync the log already ends with `turn.failed`, and this push is dropped.
    wait_durable(&mut durable).await;
    handle.log.push(terminal);
    env.registry.finish(handle);
}

fn store_failure(error: &str) -> EventKind {
    tracing::error!(%error, "failed to store the end of a turn");
    EventKind::TurnFailed {
        error: TurnError { code: "store_failed".into(), message: "The answer could not be saved. Send the message again.".into(), retryable: true },
    }
}

/// Returns the terminal event that matches a stored assistant record.
pub(super) fn terminal_event(record: &AssistantRecord) -> EventKind {
    match record.status {
        TurnStatus::Completed => EventKind::TurnCompleted {
            usage: record.usage,
            stop_reason: record.stop_reason.clone().unwrap_or_else(|| "end_turn".into()),
        },
        TurnStatus::Failed => EventKind::TurnFailed {
            error: record.error.clone().unwrap_or_else(|| internal_error("the turn failed")),
        },
        TurnStatus::Cancelled => EventKind::TurnCancelled {},
    }
}
