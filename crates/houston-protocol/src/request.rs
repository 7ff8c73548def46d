//! Request bodies of the chat API (client to control plane) and the turn API (control plane
//! to engine).

use serde::{Deserialize, Serialize};

use crate::ids::{SessionId, TurnId, UserId};

/// `POST /v1/chat` body. `agent_id` is an agent's id or its slug in one of the caller's
/// workspaces. Unknown fields are rejected, so that a client never believes a field such as
/// `user_id` took effect.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
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

#[cfg(test)]
mod tests {
    use super::ChatRequest;

    #[test]
    fn chat_request_rejects_unknown_field() {
        let body = r#"{"agent_id": "hr", "message": "hi", "user_id": "admin"}"#;

        let error = serde_json::from_str::<ChatRequest>(body).unwrap_err();

        assert!(error.to_string().contains("unknown field `user_id`"), "{error}");
    }

    #[test]
    fn chat_request_accepts_known_fields() {
        let body = r#"{"agent_id": "hr", "session_id": "s1", "message": "hi", "idempotency_key": "k"}"#;

        let request: ChatRequest = serde_json::from_str(body).unwrap();

        assert_eq!(request.agent_id, "hr");
    }
}
