//! Request handlers. Every id from a path, query or body is parsed into its validated type
//! before anything touches the file system.

use std::collections::HashMap;
use std::sync::Arc;

use axum::Json;
use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use bytes::Bytes;
use houston_protocol::{EngineTurnRequest, IdError, SessionId, TurnId, UserId};
use serde_json::{Value, json};
use time::format_description::well_known::Rfc3339;

use super::AppState;
use super::error::{ApiError, FieldError};
use super::extract::{JsonError, RawBody, parse_json};
use super::sse::event_stream;
use crate::sessions::{LoadMode, SessionRecord, TurnStatus};
use crate::turns::{self, AcceptError, NewTurn, Refusal, TurnHandle, unfinished_turns};

/// Largest user message, in bytes.
pub const MAX_MESSAGE_BYTES: usize = 100_000;
/// Largest idempotency key, in bytes.
pub const MAX_IDEMPOTENCY_KEY_BYTES: usize = 200;

fn parse_id<T>(field: &str, value: &str, parse: fn(String) -> Result<T, IdError>, errors: &mut Vec<FieldError>) -> Option<T> {
    match parse(value.to_owned()) {
        Ok(id) => Some(id),
        Err(error) => {
            errors.push(FieldError::new(field, error.to_string()));
            None
        }
    }
}

pub(super) async fn health() -> Json<Value> {
    Json(json!({"status": "ok"}))
}

pub(super) async fn version(State(state): State<Arc<AppState>>) -> Json<Value> {
    let agent_id = state.env.folder.definition.as_ref().map(|definition| definition.id.clone());
    Json(json!({
        "version": env!("CARGO_PKG_VERSION"),
        "agent_id": agent_id,
        "provider": state.env.provider.name(),
    }))
}

pub(super) async fn start_turn(
    State(state): State<Arc<AppState>>,
    Path(session_id): Path<String>,
    RawBody(body): RawBody,
) -> Result<Response, ApiError> {
    let new_turn = parse_turn_request(&session_id, &body)?;
    let handle = match turns::accept(&state.env, new_turn).await {
        Ok(handle) => handle,
        Err(AcceptError::Refused(refusal)) => return Err(refusal_error(refusal)),
        Err(error) => return Err(ApiError::internal("store the user message", &error)),
    };
    Ok(event_stream(handle, 0, state.config.heartbeat_interval))
}

fn parse_turn_request(session_id: &str, body: &[u8]) -> Result<NewTurn, ApiError> {
    let mut errors = Vec::new();
    let session_id = parse_id("session_id", session_id, SessionId::parse, &mut errors);
    let request: Option<EngineTurnRequest> = match parse_json(body) {
        Ok(request) => Some(request),
        Err(JsonError::Syntax(error)) => return Err(error),
        Err(JsonError::Field(error)) => {
            errors.push(error);
            None
        }
    };
    if let Some(request) = &request {
        if request.message.trim().is_empty() {
            errors.push(FieldError::new("message", "must not be empty"));
        }
        if request.message.len() > MAX_MESSAGE_BYTES {
            errors.push(FieldError::new("message", format!("must be at most {MAX_MESSAGE_BYTES} bytes")));
        }
        if let Some(key) = &request.idempotency_key
            && (key.is_empty() || key.len() > MAX_IDEMPOTENCY_KEY_BYTES)
        {
            errors.push(FieldError::new("idempotency_key", format!("must be 1 to {MAX_IDEMPOTENCY_KEY_BYTES} bytes")));
        }
    }
    match (session_id, request) {
        (Some(session_id), Some(request)) if errors.is_empty() => Ok(NewTurn {
            user_id: request.user_id,
            session_id,
            turn_id: request.turn_id,
            message: request.message,
            idempotency_key: request.idempotency_key,
        }),
        _ => Err(ApiError::invalid(errors)),
    }
}

fn refusal_error(refusal: Refusal) -> ApiError {
    match refusal {
        Refusal::SessionBusy { running } => ApiError::conflict(
            "session_busy",
            "another turn is running on this session; wait for it to end or cancel it",
            json!({"turn_id": running}),
        ),
        Refusal::TurnIdTaken(turn_id) => {
            ApiError::conflict("turn_exists", format!("turn {turn_id} already exists"), json!({"turn_id": turn_id}))
        }
        Refusal::ShuttingDown => ApiError::stopping(),
    }
}

/// Finds a turn of the session named in the path, after validating both ids.
fn find_turn(state: &AppState, session_id: &str, turn_id: &str) -> Result<Arc<TurnHandle>, ApiError> {
    let mut errors = Vec::new();
    let session_id = parse_id("session_id", session_id, SessionId::parse, &mut errors);
    let turn_id = parse_id("turn_id", turn_id, TurnId::parse, &mut errors);
    let (Some(session_id), Some(turn_id)) = (session_id, turn_id) else {
        return Err(ApiError::invalid(errors));
    };
    // NOTE: only turns of this engine process are found; after a restart the events of
    // earlier turns are gone, and their text is in the session history.
    match state.env.registry.get(&turn_id) {
        Some(handle) if handle.session_id == session_id => Ok(handle),
        _ => Err(ApiError::not_found("turn_not_found", format!("turn {turn_id} is not known to this engine"))),
    }
}

pub(super) async fn turn_events(
    State(state): State<Arc<AppState>>,
    Path((session_id, turn_id)): Path<(String, String)>,
    Query(query): Query<HashMap<String, String>>,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    let handle = find_turn(&state, &session_id, &turn_id)?;
    let header_value = headers.get("last-event-id").and_then(|value| value.to_str().ok());
    let after = match query.get("after").map(String::as_str).or(header_value) {
        None => 0,
        Some(text) => text.trim().parse::<u64>().map_err(|_| {
            ApiError::invalid(vec![FieldError::new("after", format!("{text:?} is not a non-negative integer"))])
        })?,
    };
    Ok(event_stream(handle, after, state.config.heartbeat_interval))
}

/// Largest tool call id accepted in an approval path, in bytes.
const MAX_CALL_ID_BYTES: usize = 200;

pub(super) async fn decide_approval(
    State(state): State<Arc<AppState>>,
    Path((session_id, turn_id, call_id)): Path<(String, String, String)>,
    body: Bytes,
) -> Result<Json<Value>, ApiError> {
    let mut errors = Vec::new();
    if call_id.is_empty() || call_id.len() > MAX_CALL_ID_BYTES {
        errors.push(FieldError::new("call_id", format!("must be 1 to {MAX_CALL_ID_BYTES} bytes")));
    }
    let approve = match serde_json::from_slice::<Value>(&body).ok().and_then(|body| body["approve"].as_bool()) {
        Some(approve) => Some(approve),
        None => {
            errors.push(FieldError::new("approve", "missing or not a boolean; send {\"approve\": true} or {\"approve\": false}"));
            None
        }
    };
    let Some(approve) = approve.filter(|_| errors.is_empty()) else {
        return Err(ApiError::invalid(errors));
    };
    let handle = find_turn(&state, &session_id, &turn_id)?;
    match handle.approvals.decide(&call_id, approve) {
        Ok(tool) => {
            tracing::info!(turn.id = %handle.turn_id, call_id, tool, approve, "delivered a tool approval decision");
            Ok(Json(json!({"turn_id": handle.turn_id, "call_id": call_id, "approved": approve, "tool": tool})))
        }
        Err(error) => Err(ApiError::not_found("approval_not_found", error.to_string())),
    }
}

pub(super) async fn cancel_turn(
    State(state): State<Arc<AppState>>,
    Path((session_id, turn_id)): Path<(String, String)>,
) -> Result<Response, ApiError> {
    let handle = find_turn(&state, &session_id, &turn_id)?;
    let already_ended = handle.log.has_ended();
    if !already_ended {
        tracing::info!(turn.id = %handle.turn_id, "cancelling a turn on request");
        handle.cancel.cancel();
    }
    let body = json!({"turn_id": handle.turn_id, "already_ended": already_ended});
    Ok((StatusCode::ACCEPTED, Json(body)).into_response())
}

pub(super) async fn list_sessions(
    State(state): State<Arc<AppState>>,
    Path(user_id): Path<String>,
) -> Result<Json<Value>, ApiError> {
    let mut errors = Vec::new();
    let Some(user_id) = parse_id("user_id", &user_id, UserId::parse, &mut errors) else {
        return Err(ApiError::invalid(errors));
    };
    let store = state.env.store.clone();
    let sessions = tokio::task::spawn_blocking(move || store.list(&user_id))
        .await
        .map_err(|error| ApiError::internal("list sessions", &error))?
        .map_err(|error| ApiError::internal("list sessions", &error))?;
    let sessions: Vec<Value> = sessions
        .iter()
        .map(|session| {
            json!({
                "session_id": session.session_id,
                "title": session.title,
                "created_at": session.created_at.format(&Rfc3339).unwrap_or_default(),
                "updated_at": session.updated_at.format(&Rfc3339).unwrap_or_default(),
            })
        })
        .collect();
    Ok(Json(json!({ "sessions": sessions })))
}

pub(super) async fn get_session(
    State(state): State<Arc<AppState>>,
    Path(session_id): Path<String>,
    Query(query): Query<HashMap<String, String>>,
) -> Result<Json<Value>, ApiError> {
    let mut errors = Vec::new();
    let session_id = parse_id("session_id", &session_id, SessionId::parse, &mut errors);
    let user_id = match query.get("user_id") {
        Some(user_id) => parse_id("user_id", user_id, UserId::parse, &mut errors),
        None => {
            errors.push(FieldError::new("user_id", "missing query parameter; the history is shown to its owner only"));
            None
        }
    };
    let (Some(session_id), Some(user_id)) = (session_id, user_id) else {
        return Err(ApiError::invalid(errors));
    };
    let store = state.env.store.clone();
    let (user, session) = (user_id.clone(), session_id.clone());
    let records = tokio::task::spawn_blocking(move || store.load(&user, &session, LoadMode::Reader))
        .await
        .map_err(|error| ApiError::internal("read the session", &error))?
        .map_err(|error| ApiError::internal("read the session", &error))?;
    let Some(records) = records else {
        return Err(ApiError::not_found("session_not_found", format!("session {session_id} does not exist for this user")));
    };
    let running = state.env.registry.is_running(&user_id, &session_id);
    Ok(Json(json!({ "session_id": session_id, "messages": history_messages(&records, running) })))
}

/// Converts records into history messages. A turn with no assistant record shows as
/// `running` while it runs and as `failed` once the engine that ran it is gone.
fn history_messages(records: &[SessionRecord], session_running: bool) -> Vec<Value> {
    let unfinished = unfinished_turns(records);
    let last_turn = records.last().map(SessionRecord::turn_id);
    let mut messages = Vec::new();
    for record in records {
        let at = record.at().format(&Rfc3339).unwrap_or_default();
        match record {
            SessionRecord::User(user) => {
                messages.push(json!({"turn_id": user.turn_id, "role": "user", "text": user.text, "status": "completed", "created_at": at, "tools": []}));
                if unfinished.contains(&user.turn_id) {
                    let in_flight = session_running && last_turn == Some(&user.turn_id);
                    let mut message = json!({"turn_id": user.turn_id, "role": "assistant", "text": "", "created_at": at, "tools": []});
                    if in_flight {
                        message["status"] = json!("running");
                    } else {
                        message["status"] = json!("failed");
                        message["error"] = json!(turns::interrupted_error());
                    }
                    messages.push(message);
                }
            }
            SessionRecord::Assistant(answer) => {
                let status = match answer.status {
                    TurnStatus::Completed => "completed",
                    TurnStatus::Failed => "failed",
                    TurnStatus::Cancelled => "cancelled",
                };
                let tools: Vec<Value> = answer
                    .tool_calls
                    .iter()
                    .map(|call| json!({"call_id": call.call_id, "tool": call.tool, "label": call.label, "outcome": if call.is_error { "error" } else { "ok" }}))
                    .collect();
                let mut message = json!({"turn_id": answer.turn_id, "role": "assistant", "text": answer.text, "status": status, "created_at": at, "tools": tools, "usage": answer.usage});
                if let Some(error) = &answer.error {
                    message["error"] = json!(error);
                }
                messages.push(message);
            }
        }
    }
    messages
}
