//! HTTP handlers of the chat API: `POST /v1/chat` and the session routes under
//! `/v1/agents/{agent}/sessions`.

use std::convert::Infallible;
use std::sync::Arc;
use std::time::Duration;

use axum::Json;
use axum::body::{Body, Bytes};
use axum::extract::{Path, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use houston_protocol::sse::HEARTBEAT;
use houston_protocol::{SessionId, TurnId};
use serde_json::json;
use tokio::time::{Instant, MissedTickBehavior};

use super::error::ChatError;
use super::ports::{Caller, ChatAgent, TurnRecord};
use super::service::{ChatService, EventFeed, engine_error};
use super::validate::RawChatRequest;
use crate::extract::{QueryParams, RawBody};

/// Interval of the `: heartbeat` comment on idle streams.
pub const HEARTBEAT_INTERVAL: Duration = Duration::from_secs(15);

/// Reads the bearer token of `Authorization`.
pub(crate) fn bearer_token(headers: &HeaderMap) -> Result<&str, ChatError> {
    let value = headers
        .get(header::AUTHORIZATION)
        .ok_or_else(|| ChatError::Unauthenticated("missing Authorization header".into()))?;
    let text = value
        .to_str()
        .map_err(|_| ChatError::Unauthenticated("Authorization header is not ASCII".into()))?;
    let (scheme, token) = text
        .split_once(' ')
        .ok_or_else(|| ChatError::Unauthenticated("expected Authorization: Bearer <token>".into()))?;
    if !scheme.eq_ignore_ascii_case("bearer") || token.trim().is_empty() {
        return Err(ChatError::Unauthenticated("expected Authorization: Bearer <token>".into()));
    }
    Ok(token.trim())
}

async fn caller(service: &ChatService, headers: &HeaderMap) -> Result<Caller, ChatError> {
    service.authenticate(bearer_token(headers)?).await
}

/// `POST /v1/chat`.
pub async fn post_chat(
    State(service): State<Arc<ChatService>>,
    headers: HeaderMap,
    RawBody(body): RawBody,
) -> Result<Response, ChatError> {
    let caller = caller(&service, &headers).await?;
    let request = RawChatRequest::parse(&body)?;
    let (_, feed) = service.start_chat(&caller, request).await?;
    Ok(sse_response(feed))
}

/// `GET /v1/agents/{agent}/sessions`.
pub async fn list_sessions(
    State(service): State<Arc<ChatService>>,
    headers: HeaderMap,
    Path(agent): Path<String>,
) -> Result<Response, ChatError> {
    let caller = caller(&service, &headers).await?;
    let agent = service.ports.access.authorize(&caller, &agent, "session.list").await?;
    let sessions = service.ports.turns.list_sessions(&caller.user_id, &agent.agent_id).await?;
    Ok(Json(json!({ "sessions": sessions })).into_response())
}

/// `GET /v1/agents/{agent}/sessions/{session_id}`: the history, read from the agent's engine.
pub async fn get_session(
    State(service): State<Arc<ChatService>>,
    headers: HeaderMap,
    Path((agent, session_id)): Path<(String, String)>,
) -> Result<Response, ChatError> {
    let caller = caller(&service, &headers).await?;
    let agent = service.ports.access.authorize(&caller, &agent, "session.read").await?;
    let session_id = own_session(&service, &caller, &agent, &session_id).await?;
    let lease = service.acquire_quietly(&agent).await?;
    let history = service
        .engines
        .get_session(&lease.endpoint, &lease.token, &session_id, &caller.user_id)
        .await
        .map_err(engine_error)?;
    Ok(Json(history).into_response())
}

/// Query of the events route.
#[derive(Debug, serde::Deserialize)]
pub struct EventsQuery {
    after: Option<u64>,
}

/// `GET /v1/agents/{agent}/sessions/{session_id}/turns/{turn_id}/events[?after=N]`.
pub async fn turn_events(
    State(service): State<Arc<ChatService>>,
    headers: HeaderMap,
    Path((agent, session_id, turn_id)): Path<(String, String, String)>,
    QueryParams(query): QueryParams<EventsQuery>,
) -> Result<Response, ChatError> {
    let caller = caller(&service, &headers).await?;
    let after = resume_point(&headers, query.after)?;
    let agent = service.ports.access.authorize(&caller, &agent, "turn.resume").await?;
    let record = own_turn(&service, &caller, &agent, &session_id, &turn_id).await?;
    let feed = service.follow(&record, after).await?;
    Ok(sse_response(feed))
}

/// `POST /v1/agents/{agent}/sessions/{session_id}/turns/{turn_id}/cancel`.
pub async fn cancel_turn(
    State(service): State<Arc<ChatService>>,
    headers: HeaderMap,
    Path((agent, session_id, turn_id)): Path<(String, String, String)>,
) -> Result<Response, ChatError> {
    let caller = caller(&service, &headers).await?;
    let agent = service.ports.access.authorize(&caller, &agent, "turn.cancel").await?;
    let record = own_turn(&service, &caller, &agent, &session_id, &turn_id).await?;
    service.cancel(&record, &agent).await?;
    Ok((StatusCode::ACCEPTED, Json(json!({ "turn_id": record.turn_id }))).into_response())
}

/// Picks the resume point: `?after=` wins over `Last-Event-ID`; neither means from the start.
fn resume_point(headers: &HeaderMap, after: Option<u64>) -> Result<u64, ChatError> {
    if let Some(after) = after {
        return Ok(after);
    }
    let Some(value) = headers.get("last-event-id") else {
        return Ok(0);
    };
    value
        .to_str()
        .ok()
        .and_then(|text| text.trim().parse().ok())
        .ok_or_else(|| ChatError::invalid("Last-Event-ID", "must be a non-negative integer seq"))
}

async fn own_session(
    service: &ChatService,
    caller: &Caller,
    agent: &ChatAgent,
    session_id: &str,
) -> Result<SessionId, ChatError> {
    let session_id = SessionId::parse(session_id).map_err(|_| ChatError::SessionNotFound)?;
    let owned = service.ports.turns.session_belongs_to(&session_id, &caller.user_id, &agent.agent_id).await?;
    if owned { Ok(session_id) } else { Err(ChatError::SessionNotFound) }
}

/// Loads a turn that belongs to the caller, in the given agent and session. Every mismatch
/// returns the same error as an unknown turn.
pub(crate) async fn own_turn(
    service: &ChatService,
    caller: &Caller,
    agent: &ChatAgent,
    session_id: &str,
    turn_id: &str,
) -> Result<TurnRecord, ChatError> {
    let turn_id = TurnId::parse(turn_id).map_err(|_| ChatError::TurnNotFound)?;
    let record = service.ports.turns.get_turn(&turn_id).await?.ok_or(ChatError::TurnNotFound)?;
    let matches = record.user_id == caller.user_id
        && record.agent_id == agent.agent_id
        && record.session_id.as_str() == session_id;
    if matches { Ok(record) } else { Err(ChatError::TurnNotFound) }
}

/// Streams a feed as `text/event-stream`, one write per event, with heartbeats and headers
/// that keep proxies from buffering or compressing it.
pub fn sse_response(feed: EventFeed) -> Response {
    let mut heartbeat = tokio::time::interval_at(Instant::now() + HEARTBEAT_INTERVAL, HEARTBEAT_INTERVAL);
    heartbeat.set_missed_tick_behavior(MissedTickBehavior::Delay);
    let stream = futures::stream::unfold((feed, heartbeat), |(mut feed, mut heartbeat)| async move {
        let chunk = tokio::select! {
            event = feed.next() => event?.frame.clone(),
            _ = heartbeat.tick() => Bytes::from_static(HEARTBEAT.as_bytes()),
        };
        Some((Ok::<_, Infallible>(chunk), (feed, heartbeat)))
    });
    let mut response = Response::new(Body::from_stream(stream));
    let headers = response.headers_mut();
    headers.insert(header::CONTENT_TYPE, HeaderValue::from_static("text/event-stream"));
    headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-cache"));
    headers.insert("x-accel-buffering", HeaderValue::from_static("no"));
    response
}
