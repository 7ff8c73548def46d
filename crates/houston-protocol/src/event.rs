//! Stream events: what a client sees while a turn runs.
//!
//! Every event carries `type`, a per-turn `seq` (starting at 1, also the SSE `id:`) and the
//! `turn_id`. A client resumes with `Last-Event-ID: N` or `?after=N` and receives the events
//! with `seq > N`.

use serde::{Deserialize, Serialize};

use crate::ids::{SessionId, TurnId};

/// One event of a turn's stream.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct StreamEvent {
    pub seq: u64,
    pub turn_id: TurnId,
    #[serde(flatten)]
    pub kind: EventKind,
}

/// The event's type and its own fields. The serde tag is the wire `type`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type")]
pub enum EventKind {
    /// The user message is stored.
    #[serde(rename = "turn.accepted")]
    TurnAccepted { session_id: SessionId },

    /// A cold start began.
    #[serde(rename = "agent.waking")]
    AgentWaking {},

    /// The runtime is ready; `cold_start_ms` is the measured start time.
    #[serde(rename = "agent.ready")]
    AgentReady { cold_start_ms: u64 },

    /// A piece of the answer text.
    #[serde(rename = "message.delta")]
    MessageDelta { text: String },

    /// A tool call began. `label` is for display ("Calling Slack…").
    #[serde(rename = "tool.started")]
    ToolStarted {
        call_id: String,
        tool: String,
        label: String,
    },

    /// A tool call ended.
    #[serde(rename = "tool.finished")]
    ToolFinished {
        call_id: String,
        tool: String,
        outcome: ToolOutcome,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        message: Option<String>,
    },

    /// The user must connect an app before the tool can run.
    #[serde(rename = "tool.needs_connection")]
    ToolNeedsConnection {
        call_id: String,
        toolkit: String,
        connect_url: String,
    },

    /// A tool that needs approval is waiting for the user's decision.
    #[serde(rename = "tool.approval_requested")]
    ToolApprovalRequested {
        call_id: String,
        tool: String,
        label: String,
    },

    /// The answer is complete.
    #[serde(rename = "turn.completed")]
    TurnCompleted { usage: Usage, stop_reason: String },

    /// The turn ended with an error.
    #[serde(rename = "turn.failed")]
    TurnFailed { error: TurnError },

    /// Cancellation is confirmed, after the work actually stopped.
    #[serde(rename = "turn.cancelled")]
    TurnCancelled {},
}

impl EventKind {
    /// Returns the wire `type` name, also used as the SSE `event:` name.
    #[must_use]
    pub fn type_name(&self) -> &'static str {
        match self {
            Self::TurnAccepted { .. } => "turn.accepted",
            Self::AgentWaking {} => "agent.waking",
            Self::AgentReady { .. } => "agent.ready",
            Self::MessageDelta { .. } => "message.delta",
            Self::ToolStarted { .. } => "tool.started",
            Self::ToolFinished { .. } => "tool.finished",
            Self::ToolNeedsConnection { .. } => "tool.needs_connection",
            Self::ToolApprovalRequested { .. } => "tool.approval_requested",
            Self::TurnCompleted { .. } => "turn.completed",
            Self::TurnFailed { .. } => "turn.failed",
            Self::TurnCancelled {} => "turn.cancelled",
        }
    }

    /// Returns true for the events that end a turn's stream.
    #[must_use]
    pub fn is_terminal(&self) -> bool {
        matches!(
            self,
            Self::TurnCompleted { .. } | Self::TurnFailed { .. } | Self::TurnCancelled {}
        )
    }
}

/// Token counts of a turn.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Usage {
    pub input_tokens: u64,
    pub output_tokens: u64,
}

/// Outcome of a tool call.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ToolOutcome {
    Ok,
    Error,
    Rejected,
    Cancelled,
}

/// The typed error of a failed turn.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TurnError {
    pub code: String,
    pub message: String,
    pub retryable: bool,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn delta_serializes_with_required_fields() {
        let event = StreamEvent {
            seq: 3,
            turn_id: TurnId::parse("t1").unwrap(),
            kind: EventKind::MessageDelta { text: "Hi".into() },
        };
        let json = serde_json::to_value(&event).unwrap();
        assert_eq!(json["type"], "message.delta");
        assert_eq!(json["seq"], 3);
        assert_eq!(json["turn_id"], "t1");
        assert_eq!(json["text"], "Hi");
    }

    #[test]
    fn failed_event_round_trips() {
        let text = r#"{"type":"turn.failed","seq":9,"turn_id":"t1",
            "error":{"code":"model_overloaded","message":"try later","retryable":true}}"#;
        let event: StreamEvent = serde_json::from_str(text).unwrap();
        assert!(event.kind.is_terminal());
        assert_eq!(event.kind.type_name(), "turn.failed");
        let again: StreamEvent =
            serde_json::from_value(serde_json::to_value(&event).unwrap()).unwrap();
        assert_eq!(again, event);
    }

    #[test]
    fn type_name_matches_serde_tag() {
        let kinds = [
            EventKind::AgentWaking {},
            EventKind::AgentReady { cold_start_ms: 5 },
            EventKind::TurnCancelled {},
            EventKind::TurnCompleted { usage: Usage::default(), stop_reason: "end_turn".into() },
        ];
        for kind in kinds {
            let json = serde_json::to_value(&kind).unwrap();
            assert_eq!(json["type"], kind.type_name());
        }
    }
}
