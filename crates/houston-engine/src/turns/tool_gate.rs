//! What happens around one tool call besides the call itself: the user's approval for tools
//! that need it, and the wait for a connection the user is asked to make.
//!
//! - Approval: `tool.approval_requested` is emitted and the call waits (at most
//!   [`APPROVAL_TIMEOUT`]) for `POST …/approvals/{call_id}`. A rejection or a timeout ends the
//!   call with outcome `rejected`, and the tool result tells the model why.
//! - Connection: when a broker returns [`ToolOutput::NeedsConnection`], `tool.needs_connection`
//!   is emitted with the connect link and the broker waits within its own bound for the
//!   account to turn active. The call then runs again, so the turn continues as if the user
//!   had been connected all along. Otherwise the model learns that the user must connect
//!   first, and ends its answer asking for it.
//!
//! Cancelling the turn drops these waits, and [`PendingApproval`] removes its registration
//! when dropped.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::Duration;

use houston_protocol::{EventKind, ToolOutcome};
use serde_json::Value;
use tokio::sync::oneshot;

use super::TurnHandle;
use crate::tools::{OfferedTools, ToolContext, ToolOutput};

/// Maximum wait for the user's approval of one tool call.
pub const APPROVAL_TIMEOUT: Duration = Duration::from_secs(600);

/// The tool calls of one turn that wait for the user's decision, by call id.
#[derive(Default)]
pub struct Approvals {
    waiting: Mutex<HashMap<String, (String, oneshot::Sender<bool>)>>,
}

/// Failure to deliver a decision.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ApprovalError {
    #[error("no tool call {0} of this turn is waiting for approval")]
    NotWaiting(String),
}

impl Approvals {
    /// Delivers the decision on `call_id` and returns the tool's name.
    ///
    /// # Errors
    /// [`ApprovalError::NotWaiting`] when no call with that id waits, for example because it
    /// was already decided or the turn ended.
    pub fn decide(&self, call_id: &str, approve: bool) -> Result<String, ApprovalError> {
        let entry = self.waiting.lock().expect("approvals lock poisoned").remove(call_id);
        let Some((tool, sender)) = entry else {
            return Err(ApprovalError::NotWaiting(call_id.to_owned()));
        };
        sender.send(approve).map_err(|_| ApprovalError::NotWaiting(call_id.to_owned()))?;
        Ok(tool)
    }

    fn register(&self, call_id: &str, tool: &str) -> PendingApproval<'_> {
        let (sender, receiver) = oneshot::channel();
        self.waiting.lock().expect("approvals lock poisoned").insert(call_id.to_owned(), (tool.to_owned(), sender));
        PendingApproval { approvals: self, call_id: call_id.to_owned(), receiver: Some(receiver) }
    }
}

/// A registered wait; dropping it (for example on cancellation) unregisters the call.
struct PendingApproval<'a> {
    approvals: &'a Approvals,
    call_id: String,
    receiver: Option<oneshot::Receiver<bool>>,
}

impl PendingApproval<'_> {
    /// Waits for the decision; `None` after the timeout.
    async fn decision(&mut self, timeout: Duration) -> Option<bool> {
        let receiver = self.receiver.take()?;
        tokio::time::timeout(timeout, receiver).await.ok()?.ok()
    }
}

impl Drop for PendingApproval<'_> {
    fn drop(&mut self) {
        self.approvals.waiting.lock().expect("approvals lock poisoned").remove(&self.call_id);
    }
}

/// End of a gated call: the tool's output, or the user's rejection.
pub(super) enum Gated {
    Ran(ToolOutput),
    Rejected(String),
}

/// Runs one tool call with its approval and connection steps.
pub(super) async fn run_call(
    offered: &OfferedTools,
    context: &ToolContext,
    handle: &TurnHandle,
    call_id: &str,
    tool: &str,
    input: &Value,
) -> Gated {
    if offered.needs_approval(tool) {
        let mut pending = handle.approvals.register(call_id, tool);
        let label = offered.label(tool);
        handle.log.push(EventKind::ToolApprovalRequested { call_id: call_id.to_owned(), tool: tool.to_owned(), label });
        tracing::info!(tool, call_id, "waiting for the user's approval of a tool call");
        match pending.decision(APPROVAL_TIMEOUT).await {
            Some(true) => tracing::info!(tool, call_id, "the user approved a tool call"),
            Some(false) => return Gated::Rejected(format!("the user rejected the call of {tool}, so it did not run")),
            None => return Gated::Rejected(format!("nobody approved the call of {tool} in time, so it did not run")),
        }
    }

    let output = offered.call(context, tool, input).await;
    let ToolOutput::NeedsConnection { toolkit, connect_url } = output else {
        return Gated::Ran(output);
    };
    handle.log.push(EventKind::ToolNeedsConnection { call_id: call_id.to_owned(), toolkit: toolkit.clone(), connect_url });
    if !offered.wait_for_connection(context, tool, &toolkit).await {
        return Gated::Ran(ToolOutput::Error(format!(
            "the user has not connected {toolkit} yet, so {tool} did not run. They were shown a link to connect it. \
             Ask them to connect {toolkit} and then ask again."
        )));
    }
    tracing::info!(tool, toolkit, "the connection landed; running the tool call again");
    match offered.call(context, tool, input).await {
        ToolOutput::NeedsConnection { .. } => {
            Gated::Ran(ToolOutput::Error(format!("{toolkit} is connected but {tool} still cannot use the connection")))
        }
        output => Gated::Ran(output),
    }
}

/// Emits `tool.finished` with outcome `rejected` and returns the result text for the model.
pub(super) fn report_rejection(handle: &TurnHandle, call_id: &str, tool: &str, reason: String) -> (String, bool) {
    handle.log.push(EventKind::ToolFinished {
        call_id: call_id.to_owned(),
        tool: tool.to_owned(),
        outcome: ToolOutcome::Rejected,
        message: Some(reason.clone()),
    });
    (reason, true)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn decision_reaches_the_waiting_call() {
        let approvals = Approvals::default();
        let mut pending = approvals.register("c1", "SLACK_SEND_MESSAGE");
        assert_eq!(approvals.decide("c1", true), Ok("SLACK_SEND_MESSAGE".to_owned()));
        assert_eq!(pending.decision(Duration::from_secs(1)).await, Some(true));
    }

    #[tokio::test]
    async fn unknown_or_repeated_decision_is_rejected() {
        let approvals = Approvals::default();
        let _pending = approvals.register("c1", "SLACK_SEND_MESSAGE");
        assert_eq!(approvals.decide("c2", true), Err(ApprovalError::NotWaiting("c2".into())));
        assert!(approvals.decide("c1", false).is_ok());
        assert_eq!(approvals.decide("c1", true), Err(ApprovalError::NotWaiting("c1".into())));
    }

    #[tokio::test]
    async fn dropped_wait_unregisters_the_call() {
        let approvals = Approvals::default();
        drop(approvals.register("c1", "SLACK_SEND_MESSAGE"));
        assert!(approvals.decide("c1", true).is_err());
    }

    #[tokio::test]
    async fn wait_times_out_without_decision() {
        let approvals = Approvals::default();
        let mut pending = approvals.register("c1", "SLACK_SEND_MESSAGE");
        assert_eq!(pending.decision(Duration::from_millis(30)).await, None);
    }
}
