//! Per-user tool connections and tool approvals.
//!
//! | route | purpose |
//! |---|---|
//! | `GET /v1/agents/{agent}/connections[?wait_for=TOOLKIT&timeout_secs=N]` | the caller's connection state per toolkit of the agent; with `wait_for`, the response waits (at most [`MAX_WAIT`]) until that toolkit is active, and answers at once without Composio or when the server shuts down |
//! | `POST /v1/agents/{agent}/sessions/{session_id}/turns/{turn_id}/approvals/{call_id}` | `{"approve": bool}`: forwards the caller's decision on a tool call to the engine and audits it |
//!
//! Connection states come from Composio's connected accounts of the caller's Composio user,
//! the same `<workspace>:<user>` id the engine executes tools with. The engine waits for a
//! pending connection itself, so a turn continues when the account turns active. The
//! waiting form of the listing lets the web app update its connect card at the same moment.

pub mod composio;

use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use axum::Json;
use axum::Router;
use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use houston_protocol::ids::validate_id;
use houston_protocol::{ConnectionState, composio_user_id};
use houston_store::{AuditEntry, Store};
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};
use utoipa::ToSchema;
use time::OffsetDateTime;

pub use composio::ComposioAccounts;

use crate::chat::routes::{bearer_token, own_turn};
use crate::chat::service::engine_error;
use crate::chat::{ChatAgent, ChatError, ChatService};
use crate::routes::ErrorResponse;

/// Maximum wait of `GET …/connections?wait_for=`.
pub const MAX_WAIT: Duration = Duration::from_secs(60);

/// Ports the connection routes need besides the chat service.
#[async_trait]
pub trait ConnectionPorts: Send + Sync {
    /// Returns the toolkits the agent declares (`integrations` of its definition).
    async fn toolkits(&self, agent: &ChatAgent) -> Result<Vec<String>, ChatError>;

    /// Stores an audit entry.
    async fn audit(&self, entry: AuditEntry) -> Result<(), ChatError>;
}

/// [`ConnectionPorts`] over the metadata store.
pub struct StorePorts(pub Arc<dyn Store>);

#[async_trait]
impl ConnectionPorts for StorePorts {
    async fn toolkits(&self, agent: &ChatAgent) -> Result<Vec<String>, ChatError> {
        let stored = self.0.get_agent(&agent.agent_id).await.map_err(|error| ChatError::Internal(error.to_string()))?;
        let Some(stored) = stored else { return Err(ChatError::AgentNotFound) };
        Ok(integrations(&stored.definition))
    }

    async fn audit(&self, entry: AuditEntry) -> Result<(), ChatError> {
        self.0.insert_audit_entries(&[entry]).await.map_err(|error| ChatError::Internal(error.to_string()))
    }
}

/// Returns the lower-cased `integrations` of a definition.
#[must_use]
pub fn integrations(definition: &Value) -> Vec<String> {
    definition["integrations"].as_array().into_iter().flatten().filter_map(Value::as_str).map(str::to_lowercase).collect()
}

/// The connection and approval routes of one control plane replica.
pub struct ConnectionsService {
    pub chat: Arc<ChatService>,
    pub ports: Arc<dyn ConnectionPorts>,
    /// `None` when Composio is not configured; every toolkit then reads `not_connected`.
    pub composio: Option<ComposioAccounts>,
    /// Interval between Composio checks while a listing waits.
    pub poll_interval: Duration,
}

/// Returns the routes, ready to be merged into the control plane's router.
pub fn router(service: Arc<ConnectionsService>) -> Router {
    Router::new()
        .route("/v1/agents/{agent}/connections", get(list_connections))
        .route("/v1/agents/{agent}/sessions/{session_id}/turns/{turn_id}/approvals/{call_id}", post(decide_approval))
        .with_state(service)
}

/// Query of `GET /v1/agents/{agent}/connections`.
#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
pub struct ListQuery {
    /// A toolkit of the agent: the response waits until the caller's connection to it is active.
    wait_for: Option<String>,
    /// Maximum wait with `wait_for`, in seconds (default 30, at most 60).
    timeout_secs: Option<u64>,
}

/// One toolkit of the agent and the caller's connection to it.
#[derive(Debug, Serialize, ToSchema)]
pub struct ConnectionView {
    pub toolkit: String,
    /// `active`, `pending`, `expired` or `not_connected`.
    #[schema(value_type = String)]
    pub state: ConnectionState,
}

/// Response body of `GET /v1/agents/{agent}/connections`.
#[derive(Debug, Serialize, ToSchema)]
pub struct ConnectionList {
    pub connections: Vec<ConnectionView>,
    /// False when the server has no Composio settings; every toolkit then reads `not_connected`.
    pub composio_configured: bool,
}

/// Response body of an approval decision.
#[derive(Debug, Serialize, ToSchema)]
pub struct ApprovalOutcome {
    pub turn_id: String,
    pub call_id: String,
    pub approved: bool,
}

/// Lists the caller's connection state per toolkit of the agent, optionally waiting until
/// one toolkit is active.
#[utoipa::path(get, path = "/v1/agents/{agent}/connections", params(("agent" = String, Path, description = "agent id or slug"), ListQuery),
    responses((status = 200, body = ConnectionList), (status = 401, body = ErrorResponse), (status = 404, body = ErrorResponse),
        (status = 422, body = ErrorResponse), (status = 502, body = ErrorResponse)),
    security(("bearer" = [])))]
pub async fn list_connections(
    State(service): State<Arc<ConnectionsService>>,
    headers: HeaderMap,
    Path(agent): Path<String>,
    crate::extract::QueryParams(query): crate::extract::QueryParams<ListQuery>,
    shutdown: Option<axum::Extension<crate::ShutdownSignal>>,
) -> Result<Response, ChatError> {
    let caller = service.chat.authenticate(bearer_token(&headers)?).await?;
    let agent = service.chat.ports.access.authorize(&caller, &agent, "connections.list").await?;
    let toolkits = service.ports.toolkits(&agent).await?;
    if let Some(wanted) = &query.wait_for
        && !toolkits.iter().any(|toolkit| toolkit.eq_ignore_ascii_case(wanted))
    {
        return Err(ChatError::invalid("wait_for", format!("{wanted:?} is not a toolkit of this agent")));
    }
    let timeout = Duration::from_secs(query.timeout_secs.unwrap_or(30)).min(MAX_WAIT);
    let deadline = tokio::time::Instant::now() + timeout;
    let user = composio_user_id(&agent.workspace_id, &caller.user_id);
    let stopping = shutdown.map(|axum::Extension(signal)| signal.0).unwrap_or_default();

    loop {
        let states = service.states(&user, &toolkits).await?;
        let landed = query.wait_for.as_ref().is_none_or(|wanted| states.get(&wanted.to_lowercase()) == Some(&ConnectionState::Active));
        // Without Composio no state can change, so waiting would only hold the request.
        let settled = landed || service.composio.is_none() || stopping.is_cancelled();
        if settled || tokio::time::Instant::now() >= deadline {
            let connections = toolkits
                .iter()
                .map(|toolkit| ConnectionView {
                    toolkit: toolkit.clone(),
                    state: states.get(toolkit).copied().unwrap_or(ConnectionState::NotConnected),
                })
                .collect();
            let body = ConnectionList { connections, composio_configured: service.composio.is_some() };
            return Ok(Json(body).into_response());
        }
        let next_check = (tokio::time::Instant::now() + service.poll_interval).min(deadline);
        tokio::select! {
            () = tokio::time::sleep_until(next_check) => {}
            () = stopping.cancelled() => {}
        }
    }
}

impl ConnectionsService {
    async fn states(&self, user: &str, toolkits: &[String]) -> Result<std::collections::HashMap<String, ConnectionState>, ChatError> {
        let Some(composio) = &self.composio else { return Ok(std::collections::HashMap::new()) };
        if toolkits.is_empty() {
            return Ok(std::collections::HashMap::new());
        }
        composio.states(user, toolkits).await.map_err(|error| {
            tracing::warn!(%error, "failed to read connection states from Composio");
            ChatError::Engine { status: 502, code: "composio_unavailable".into(), message: error }
        })
    }
}

/// Body of an approval decision.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ApprovalBody {
    /// True runs the tool call, false rejects it.
    approve: bool,
}

/// Forwards the caller's decision on a tool call waiting for approval to the engine, and
/// audits it.
#[utoipa::path(post, path = "/v1/agents/{agent}/sessions/{session_id}/turns/{turn_id}/approvals/{call_id}",
    params(("agent" = String, Path, description = "agent id or slug"), ("session_id" = String, Path), ("turn_id" = String, Path),
        ("call_id" = String, Path, description = "the tool call's id from the tool.approval_requested event")),
    request_body = ApprovalBody,
    responses((status = 200, body = ApprovalOutcome), (status = 401, body = ErrorResponse),
        (status = 404, description = "unknown agent, turn or pending call (code approval_not_found)", body = ErrorResponse),
        (status = 422, body = ErrorResponse)),
    security(("bearer" = [])))]
pub async fn decide_approval(
    State(service): State<Arc<ConnectionsService>>,
    headers: HeaderMap,
    Path((agent, session_id, turn_id, call_id)): Path<(String, String, String, String)>,
    body: Bytes,
) -> Result<Response, ChatError> {
    let approve = parse_approval(&call_id, &body)?;
    let caller = service.chat.authenticate(bearer_token(&headers)?).await?;
    let agent = service.chat.ports.access.authorize(&caller, &agent, "tool.approval").await?;
    let record = own_turn(&service.chat, &caller, &agent, &session_id, &turn_id).await?;
    let lease = service.chat.acquire_quietly(&agent).await?;

    let delivered = service
        .chat
        .engines
        .decide_approval(&lease.endpoint, &lease.token, &record.session_id, &record.turn_id, &call_id, approve)
        .await;
    let answer = match delivered {
        Ok(answer) => answer,
        Err(crate::chat::EngineError::Status { status: 404, message, .. }) => {
            let body = json!({"error": {"code": "approval_not_found", "message": message, "details": {"call_id": call_id}}});
            return Ok((StatusCode::NOT_FOUND, Json(body)).into_response());
        }
        Err(error) => return Err(engine_error(error)),
    };

    let entry = AuditEntry {
        id: uuid::Uuid::now_v7().to_string(),
        at: OffsetDateTime::now_utc(),
        workspace_id: Some(agent.workspace_id.clone()),
        actor_user_id: Some(caller.user_id.clone()),
        action: "tool.approval".into(),
        agent_id: Some(agent.agent_id.clone()),
        target: Some(call_id.clone()),
        decision: Some(if approve { "approved" } else { "rejected" }.into()),
        details: json!({"session_id": record.session_id, "turn_id": record.turn_id, "tool": answer["tool"]}),
    };
    service.ports.audit(entry).await?;
    tracing::info!(agent.id = %agent.agent_id, user.id = %caller.user_id, turn.id = %record.turn_id, call_id, approve, "tool approval decided");
    let body = ApprovalOutcome { turn_id: record.turn_id.to_string(), call_id, approved: approve };
    Ok(Json(body).into_response())
}

/// Checks the call id and the body before anything else happens.
fn parse_approval(call_id: &str, body: &[u8]) -> Result<bool, ChatError> {
    let mut fields = Vec::new();
    if let Err(error) = validate_id(call_id) {
        fields.push(("call_id".to_owned(), error.to_string()));
    }
    let deserializer = &mut serde_json::Deserializer::from_slice(body);
    let parsed: Result<ApprovalBody, _> = serde_path_to_error::deserialize(deserializer);
    let approve = match parsed {
        Ok(parsed) => Some(parsed.approve),
        Err(error) => {
            let path = error.path().to_string();
            let field = if path == "." { "approve".to_owned() } else { path };
            fields.push((field, format!("{}; send {{\"approve\": true}} or {{\"approve\": false}}", error.inner())));
            None
        }
    };
    match approve {
        Some(approve) if fields.is_empty() => Ok(approve),
        _ => Err(ChatError::InvalidFields(fields)),
    }
}

#[cfg(test)]
mod tests;
