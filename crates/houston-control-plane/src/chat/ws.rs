//! `GET /v1/ws`: one WebSocket per client carrying chat, cancel and resume frames for any
//! number of sessions.
//!
//! Browsers cannot set `Authorization` on a WebSocket, so the token may also come as a
//! `Sec-WebSocket-Protocol` entry `bearer.<token>`. When the client also offers `houston.v1`,
//! the server selects that protocol. The token is verified once, before the upgrade.

use std::sync::Arc;

use axum::extract::State;
use axum::extract::ws::{Message, WebSocket, WebSocketUpgrade};
use axum::http::HeaderMap;
use axum::response::{IntoResponse, Response};
use futures::{SinkExt, StreamExt};
use houston_protocol::ChatRequest;
use serde::Deserialize;
use serde_json::{Value, json};
use tokio::sync::mpsc;

use super::error::ChatError;
use super::ports::Caller;
use super::routes::{HEARTBEAT_INTERVAL, bearer_token, own_turn};
use super::service::{ChatService, EventFeed};
use super::validate::ValidChat;

/// The subprotocol the server selects when offered.
pub const PROTOCOL: &str = "houston.v1";

/// A client frame.
#[derive(Debug, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
enum ClientFrame {
    Chat {
        request_id: Option<String>,
        agent_id: String,
        session_id: Option<String>,
        message: String,
        idempotency_key: Option<String>,
    },
    Cancel { agent_id: String, session_id: String, turn_id: String },
    Resume { agent_id: String, session_id: String, turn_id: String, after: Option<u64> },
}

/// Reads the token from `Authorization` or from a `bearer.<token>` subprotocol entry.
fn websocket_token(headers: &HeaderMap) -> Result<String, ChatError> {
    if headers.contains_key(axum::http::header::AUTHORIZATION) {
        return bearer_token(headers).map(str::to_owned);
    }
    let protocols = headers
        .get(axum::http::header::SEC_WEBSOCKET_PROTOCOL)
        .and_then(|value| value.to_str().ok())
        .unwrap_or_default();
    protocols
        .split(',')
        .find_map(|entry| entry.trim().strip_prefix("bearer.").map(str::to_owned))
        .filter(|token| !token.is_empty())
        .ok_or_else(|| {
            ChatError::Unauthenticated(
                "missing token: send Authorization or a bearer.<token> subprotocol".into(),
            )
        })
}

/// `GET /v1/ws`.
pub async fn upgrade(
    State(service): State<Arc<ChatService>>,
    headers: HeaderMap,
    upgrade: WebSocketUpgrade,
) -> Result<Response, ChatError> {
    let token = websocket_token(&headers)?;
    let caller = service.authenticate(&token).await?;
    let offers_protocol = headers
        .get(axum::http::header::SEC_WEBSOCKET_PROTOCOL)
        .and_then(|value| value.to_str().ok())
        .is_some_and(|value| value.split(',').any(|entry| entry.trim() == PROTOCOL));
    let upgrade = if offers_protocol { upgrade.protocols([PROTOCOL]) } else { upgrade };
    Ok(upgrade.on_upgrade(move |socket| serve(service, caller, socket)).into_response())
}

async fn serve(service: Arc<ChatService>, caller: Caller, socket: WebSocket) {
    let (mut sink, mut incoming) = socket.split();
    let (outgoing, mut to_send) = mpsc::channel::<Value>(256);
    let mut ping = tokio::time::interval(HEARTBEAT_INTERVAL);
    loop {
        tokio::select! {
            frame = incoming.next() => {
                let Some(Ok(frame)) = frame else { break };
                if let Message::Text(text) = frame {
                    handle_frame(&service, &caller, &outgoing, text.as_str()).await;
                }
            }
            Some(value) = to_send.recv() => {
                if sink.send(Message::Text(value.to_string().into())).await.is_err() {
                    break;
                }
            }
            _ = ping.tick() => {
                if sink.send(Message::Ping(Vec::new().into())).await.is_err() {
                    break;
                }
            }
        }
    }
}

async fn handle_frame(service: &Arc<ChatService>, caller: &Caller, outgoing: &mpsc::Sender<Value>, text: &str) {
    let frame: ClientFrame = match serde_json::from_str(text) {
        Ok(frame) => frame,
        Err(error) => {
            let error = ChatError::invalid("frame", error.to_string());
            let _ = outgoing.send(json!({"type": "error", "error": error.body().error})).await;
            return;
        }
    };
    let request_id = match &frame {
        ClientFrame::Chat { request_id, .. } => request_id.clone(),
        _ => None,
    };
    if let Err(error) = run_frame(service, caller, outgoing, frame).await {
        let body = error.body();
        let _ = outgoing.send(json!({"type": "error", "request_id": request_id, "error": body.error})).await;
    }
}

async fn run_frame(
    service: &Arc<ChatService>,
    caller: &Caller,
    outgoing: &mpsc::Sender<Value>,
    frame: ClientFrame,
) -> Result<(), ChatError> {
    match frame {
        ClientFrame::Chat { request_id, agent_id, session_id, message, idempotency_key } => {
            let session_id = session_id
                .map(houston_protocol::SessionId::parse)
                .transpose()
                .map_err(|e| ChatError::invalid("session_id", e.to_string()))?;
            let request = ChatRequest { agent_id: agent_id.clone(), session_id, message, idempotency_key };
            ValidChat::check(request.clone())?;
            let (record, feed) = service.start_chat(caller, request).await?;
            let header = json!({"request_id": request_id, "agent_id": agent_id, "session_id": record.session_id});
            tokio::spawn(forward(feed, header, outgoing.clone()));
        }
        ClientFrame::Cancel { agent_id, session_id, turn_id } => {
            let agent = service.ports.access.authorize(caller, &agent_id, "turn.cancel").await?;
            let record = own_turn(service, caller, &agent, &session_id, &turn_id).await?;
            service.cancel(&record, &agent).await?;
        }
        ClientFrame::Resume { agent_id, session_id, turn_id, after } => {
            let agent = service.ports.access.authorize(caller, &agent_id, "turn.resume").await?;
            let record = own_turn(service, caller, &agent, &session_id, &turn_id).await?;
            let feed = service.follow(&record, after.unwrap_or(0)).await?;
            let header = json!({"agent_id": agent_id, "session_id": record.session_id});
            tokio::spawn(forward(feed, header, outgoing.clone()));
        }
    }
    Ok(())
}

/// Sends each event of a feed as an `event` frame until the turn ends or the socket closes.
async fn forward(mut feed: EventFeed, header: Value, outgoing: mpsc::Sender<Value>) {
    while let Some(event) = feed.next().await {
        let mut frame = header.clone();
        frame["type"] = json!("event");
        frame["event"] = serde_json::to_value(&event.event).expect("stream events always serialize");
        if outgoing.send(frame).await.is_err() {
            return;
        }
    }
}
