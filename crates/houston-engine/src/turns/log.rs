//! A turn's event log: every event it emitted, in `seq` order, with live followers.
//!
//! The log is the single source of a turn's stream. A reader asks for the events after the
//! `seq` it has and waits for a change notification when there are none, so replay then
//! follow never skips or repeats an event, whatever the timing.

use std::sync::Mutex;

use houston_protocol::{EventKind, SessionId, StreamEvent, TurnId, UserId};
use tokio::sync::watch;
use tokio_util::sync::CancellationToken;

/// The events of one turn.
pub struct TurnLog {
    turn_id: TurnId,
    events: Mutex<Vec<StreamEvent>>,
    latest: watch::Sender<u64>,
}

impl TurnLog {
    fn new(turn_id: TurnId) -> Self {
        Self { turn_id, events: Mutex::new(Vec::new()), latest: watch::Sender::new(0) }
    }

    /// Appends an event with the next `seq` (starting at 1) and wakes the followers. Events
    /// pushed after the terminal event are dropped, so a stream ends exactly once.
    pub fn push(&self, kind: EventKind) -> Option<u64> {
        let mut events = self.events.lock().expect("turn log lock poisoned");
        if events.last().is_some_and(|event| event.kind.is_terminal()) {
            return None;
        }
        let seq = events.len() as u64 + 1;
        events.push(StreamEvent { seq, turn_id: self.turn_id.clone(), kind });
        drop(events);
        self.latest.send_replace(seq);
        Some(seq)
    }

    /// Returns the events with `seq > after` and whether the turn has ended.
    pub fn events_after(&self, after: u64) -> (Vec<StreamEvent>, bool) {
        let events = self.events.lock().expect("turn log lock poisoned");
        let start = usize::try_from(after).unwrap_or(usize::MAX).min(events.len());
        let ended = events.last().is_some_and(|event| event.kind.is_terminal());
        (events[start..].to_vec(), ended)
    }

    /// Returns a receiver that changes whenever an event is pushed.
    pub fn subscribe(&self) -> watch::Receiver<u64> {
        self.latest.subscribe()
    }

    /// Returns true once the terminal event is in the log.
    pub fn has_ended(&self) -> bool {
        self.events_after(u64::MAX).1
    }
}

/// A turn known to the engine, running or recently finished.
pub struct TurnHandle {
    pub turn_id: TurnId,
    pub session_id: SessionId,
    pub user_id: UserId,
    pub idempotency_key: Option<String>,
    pub log: TurnLog,
    /// Cancels the model call and tool work of the turn.
    pub cancel: CancellationToken,
    /// Tool calls waiting for the user's approval.
    pub approvals: super::tool_gate::Approvals,
}

impl TurnHandle {
    /// Creates the handle of a new turn with an empty log.
    #[must_use]
    pub fn new(turn_id: TurnId, session_id: SessionId, user_id: UserId, idempotency_key: Option<String>) -> Self {
        Self {
            log: TurnLog::new(turn_id.clone()),
            turn_id,
            session_id,
            user_id,
            idempotency_key,
            cancel: CancellationToken::new(),
            approvals: super::tool_gate::Approvals::default(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sequence_starts_at_one_and_stops_after_terminal() {
        let log = TurnLog::new(TurnId::parse("t1").unwrap());
        assert_eq!(log.push(EventKind::MessageDelta { text: "a".into() }), Some(1));
        assert_eq!(log.push(EventKind::TurnCancelled {}), Some(2));
        assert_eq!(log.push(EventKind::MessageDelta { text: "late".into() }), None);
        let (events, ended) = log.events_after(1);
        assert!(ended);
        assert_eq!(events.len(), 1);
        assert_eq!(events[0].seq, 2);
        assert!(log.events_after(99).0.is_empty());
    }
}
