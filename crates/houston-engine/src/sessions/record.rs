//! The records of a session file.

use houston_protocol::{TurnError, TurnId, Usage};
use serde::{Deserialize, Serialize};
use time::OffsetDateTime;

/// One line of a session file. The `type` field tells the kind.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum SessionRecord {
    User(UserRecord),
    Assistant(AssistantRecord),
}

impl SessionRecord {
    /// Returns the turn the record belongs to.
    #[must_use]
    pub fn turn_id(&self) -> &TurnId {
        match self {
            Self::User(record) => &record.turn_id,
            Self::Assistant(record) => &record.turn_id,
        }
    }

    /// Returns the time the record was written.
    #[must_use]
    pub fn at(&self) -> OffsetDateTime {
        match self {
            Self::User(record) => record.at,
            Self::Assistant(record) => record.at,
        }
    }
}

/// The user message of a turn, written when the turn is accepted.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct UserRecord {
    pub turn_id: TurnId,
    #[serde(with = "time::serde::rfc3339")]
    pub at: OffsetDateTime,
    pub text: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub idempotency_key: Option<String>,
}

/// How a turn ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum TurnStatus {
    Completed,
    Failed,
    Cancelled,
}

/// The assistant's side of a turn, written when the turn ends.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct AssistantRecord {
    pub turn_id: TurnId,
    #[serde(with = "time::serde::rfc3339")]
    pub at: OffsetDateTime,
    pub status: TurnStatus,
    /// The answer text the client saw, also for a failed or cancelled turn.
    pub text: String,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub tool_calls: Vec<ToolCallRecord>,
    #[serde(default)]
    pub usage: Usage,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub stop_reason: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<TurnError>,
}

/// One tool call of a turn with its result.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ToolCallRecord {
    pub call_id: String,
    pub tool: String,
    pub label: String,
    pub input: serde_json::Value,
    pub output: String,
    pub is_error: bool,
}

/// Returns the current UTC time, the timestamp of new records.
#[must_use]
pub fn now() -> OffsetDateTime {
    OffsetDateTime::now_utc()
}
