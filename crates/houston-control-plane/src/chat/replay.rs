//! Resume of a turn that this replica does not hold in memory: the control plane's own events
//! are rebuilt from the stored turn, and the engine's are replayed by the engine and
//! renumbered with the stored prefix length.
//!
//! Client `seq` `c > prefix_len` is engine `seq` `c - prefix_len + 1`, because the engine's
//! `turn.accepted` (engine seq 1) is dropped. So a resume after client seq `N` asks the engine
//! for `after = max(N, prefix_len) - prefix_len + 1`, which gives every event exactly once.
//!
//! A turn whose runtime failed to start never reached an engine. Its stored prefix is unset
//! (the failure came right after `turn.accepted`) or 2 (after `agent.waking`), and its tail
//! is rebuilt here: the prefix, then `turn.failed` or `turn.cancelled`.

use std::sync::Arc;
use std::time::Duration;

use houston_protocol::{EventKind, StreamEvent, TurnError};
use tokio::sync::mpsc;

use super::error::ChatError;
use super::ports::{ChatAgent, TurnRecord, TurnStatus};
use super::service::{ChatService, EventFeed, engine_error};
use super::turn_log::LoggedEvent;

/// How long a resume waits for another replica to finish waking the runtime.
const PREFIX_WAIT: Duration = Duration::from_secs(30);

/// Starts a replay task and returns its feed.
///
/// # Errors
/// [`ChatError::RuntimeUnavailable`] when the engine's runtime cannot be woken.
pub async fn replay_from_engine(
    service: &Arc<ChatService>,
    record: TurnRecord,
    after: u64,
) -> Result<EventFeed, ChatError> {
    let record = wait_for_prefix(service, record).await?;
    let (sender, receiver) = mpsc::channel(64);
    let ended_before_engine = match record.prefix_len {
        None => Some(1),
        Some(2) => Some(2),
        Some(_) => None,
    };
    if let Some(sent) = ended_before_engine.filter(|_| record.status != TurnStatus::Open) {
        // The turn ended before reaching an engine: the runtime failed to start, after
        // `turn.accepted` alone (prefix unset) or after `agent.waking` too (prefix 2).
        let mut events = prefix_events(&record, sent);
        let terminal = ended_before_engine_event(&record);
        events.push(StreamEvent { seq: sent + 1, turn_id: record.turn_id.clone(), kind: terminal });
        for event in events {
            send_if_after(&sender, event, after).await;
        }
        return Ok(EventFeed::Remote(receiver));
    }
    let prefix_len = record.prefix_len.unwrap_or(1);

    for event in prefix_events(&record, prefix_len) {
        send_if_after(&sender, event, after).await;
    }
    let agent = ChatAgent { agent_id: record.agent_id.clone(), workspace_id: record.workspace_id.clone() };
    let lease = service.acquire_quietly(&agent).await?;
    let engine_after = after.max(prefix_len) - prefix_len + 1;
    let mut stream = service
        .engines
        .turn_events(&lease.endpoint, &lease.token, &record.session_id, &record.turn_id, engine_after)
        .await
        .map_err(engine_error)?;
    tokio::spawn(async move {
        let _lease = lease;
        while let Some(Ok(event)) = stream.next_event().await {
            if event.seq <= 1 {
                continue;
            }
            let seq = event.seq + prefix_len - 1;
            let event = StreamEvent { seq, ..event };
            if sender.send(Arc::new(LoggedEvent::new(event))).await.is_err() {
                break;
            }
        }
    });
    Ok(EventFeed::Remote(receiver))
}

/// Waits until the replica running the turn stored its prefix length, or the turn ended.
async fn wait_for_prefix(service: &ChatService, mut record: TurnRecord) -> Result<TurnRecord, ChatError> {
    let deadline = tokio::time::Instant::now() + PREFIX_WAIT;
    while record.status == TurnStatus::Open && record.prefix_len.is_none_or(|prefix| prefix == 2) {
        if tokio::time::Instant::now() >= deadline {
            return Err(ChatError::RuntimeUnavailable {
                agent: record.agent_id.to_string(),
                reason: "the runtime is still starting".into(),
                retry_after_secs: 1,
            });
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
        record = service.ports.turns.get_turn(&record.turn_id).await?.ok_or(ChatError::TurnNotFound)?;
    }
    Ok(record)
}

/// Rebuilds the events the control plane emitted before the engine's.
fn prefix_events(record: &TurnRecord, prefix_len: u64) -> Vec<StreamEvent> {
    let turn_id = record.turn_id.clone();
    let mut kinds = vec![EventKind::TurnAccepted { session_id: record.session_id.clone() }];
    if prefix_len >= 2 {
        kinds.push(EventKind::AgentWaking {});
    }
    if prefix_len >= 3 {
        kinds.push(EventKind::AgentReady { cold_start_ms: record.cold_start_ms.unwrap_or_default() });
    }
    kinds
        .into_iter()
        .zip(1..)
        .map(|(kind, seq)| StreamEvent { seq, turn_id: turn_id.clone(), kind })
        .collect()
}

fn ended_before_engine_event(record: &TurnRecord) -> EventKind {
    if record.status == TurnStatus::Cancelled {
        return EventKind::TurnCancelled {};
    }
    EventKind::TurnFailed {
        error: TurnError {
            code: "agent_unavailable".into(),
            message: super::service::AGENT_UNAVAILABLE_MESSAGE.to_owned(),
            retryable: true,
        },
    }
}

async fn send_if_after(sender: &mpsc::Sender<Arc<LoggedEvent>>, event: StreamEvent, after: u64) {
    if event.seq > after {
        // The receiver is still held by the caller here, so the send cannot fail.
        let _ = sender.send(Arc::new(LoggedEvent::new(event))).await;
    }
}
