//! Request bodies of the chat API (client to control plane) and the turn API (control plane
//! to engine).

use serde::{Deserialize, Serialize};

use crate::ids::{SessionId, TurnId, UserId};

/// `POST /v1/chat` body. `agent_id` is an agent's id or its slug in one of the caller's
/// workspaces.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ChatRequest {
    pub agent_id: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub session_id: Option<SessionId>,
    pub message: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub idempotency_key: Option<String>,
}

/// `POST /v1/sessions/{session_id}/turns` body on the engine.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct EngineTurnRequest {
    pub user_id: UserId,
    pub message: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub turn_id: Option<TurnId>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub idempotency_key: Option<String>,
}
