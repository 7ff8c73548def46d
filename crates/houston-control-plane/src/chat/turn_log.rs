//! In-memory logs of the turns this replica is running, so any number of client
//! connections can follow one engine stream and resume it without asking the engine.
//!
//! The log assigns the client-facing `seq` (contiguous from 1), so every subscriber gets the
//! same numbering, and a subscriber that starts after `N` gets each later event exactly once.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use bytes::Bytes;
use houston_protocol::{EventKind, SessionId, StreamEvent, TurnId};
use tokio::sync::watch;
use tokio_util::sync::CancellationToken;

/// One event with its encoded SSE frame, shared by every subscriber.
#[derive(Debug)]
pub struct LoggedEvent {
    pub event: StreamEvent,
    pub frame: Bytes,
}

impl LoggedEvent {
    /// Encodes `event` once for every subscriber.
    #[must_use]
    pub fn new(event: StreamEvent) -> Self {
        let frame = Bytes::from(houston_protocol::sse::encode(&event));
        Self { event, frame }
    }
}

#[derive(Default)]
struct LogState {
    events: Vec<Arc<LoggedEvent>>,
    closed: bool,
}

/// The events of one turn, appended by its pump task and read by its subscribers.
pub struct TurnLog {
    pub turn_id: TurnId,
    pub session_id: SessionId,
    /// Cancelled when a client asks to cancel the turn.
    pub cancel: CancellationToken,
    state: Mutex<LogState>,
    changed: watch::Sender<()>,
}

impl TurnLog {
    fn new(turn_id: TurnId, session_id: SessionId) -> Self {
        Self {
            turn_id,
            session_id,
            cancel: CancellationToken::new(),
            state: Mutex::new(LogState::default()),
            changed: watch::channel(()).0,
        }
    }

    /// Appends an event with the next `seq` and wakes every subscriber. Returns the `seq`.
    pub fn push(&self, kind: EventKind) -> u64 {
        let mut state = self.state.lock().expect("turn log lock poisoned");
        let seq = state.events.len() as u64 + 1;
        let event = StreamEvent { seq, turn_id: self.turn_id.clone(), kind };
        let terminal = event.kind.is_terminal();
        state.events.push(Arc::new(LoggedEvent::new(event)));
        state.closed |= terminal;
        drop(state);
        self.changed.send_replace(());
        seq
    }

    /// Returns how many events the log holds.
    pub fn len(&self) -> u64 {
        self.state.lock().expect("turn log lock poisoned").events.len() as u64
    }

    /// Returns true when no event was logged yet.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Returns true once a terminal event was logged.
    pub fn is_closed(&self) -> bool {
        self.state.lock().expect("turn log lock poisoned").closed
    }

    /// Follows the log from `seq > after`.
    pub fn subscribe(self: &Arc<Self>, after: u64) -> Subscription {
        Subscription { log: Arc::clone(self), next_index: after, changed: self.changed.subscribe() }
    }
}

/// A reader of one turn log.
pub struct Subscription {
    log: Arc<TurnLog>,
    next_index: u64,
    changed: watch::Receiver<()>,
}

impl Subscription {
    /// Returns the next event, waiting for it, or `None` after the terminal event.
    pub async fn next(&mut self) -> Option<Arc<LoggedEvent>> {
        loop {
            // Marking the channel seen before reading the state means a push that lands after
            // the read still wakes `changed()` below.
            self.changed.borrow_and_update();
            {
                let state = self.log.state.lock().expect("turn log lock poisoned");
                if let Some(event) = state.events.get(self.next_index as usize) {
                    self.next_index += 1;
                    return Some(Arc::clone(event));
                }
                if state.closed {
                    return None;
                }
            }
            if self.changed.changed().await.is_err() {
                return None;
            }
        }
    }
}

/// The turn logs of this replica, by turn id. A finished turn's log stays for
/// [`TurnLogs::RETAIN`] so late resumes are served from memory.
#[derive(Default, Clone)]
pub struct TurnLogs {
    logs: Arc<Mutex<HashMap<TurnId, Arc<TurnLog>>>>,
}

impl TurnLogs {
    /// How long a finished turn's log is kept.
    pub const RETAIN: Duration = Duration::from_secs(300);

    /// Creates and registers the log of a new turn.
    pub fn create(&self, turn_id: TurnId, session_id: SessionId) -> Arc<TurnLog> {
        let log = Arc::new(TurnLog::new(turn_id.clone(), session_id));
        self.logs.lock().expect("turn logs lock poisoned").insert(turn_id, Arc::clone(&log));
        log
    }

    /// Returns a turn's log when this replica has it.
    pub fn get(&self, turn_id: &TurnId) -> Option<Arc<TurnLog>> {
        self.logs.lock().expect("turn logs lock poisoned").get(turn_id).cloned()
    }

    /// Drops a finished turn's log after [`Self::RETAIN`].
    pub fn expire_later(&self, turn_id: TurnId) {
        let logs = Arc::clone(&self.logs);
        tokio::spawn(async move {
            tokio::time::sleep(Self::RETAIN).await;
            logs.lock().expect("turn logs lock poisoned").remove(&turn_id);
        });
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn log() -> Arc<TurnLog> {
        TurnLogs::default()
            .create(TurnId::parse("t1").unwrap(), SessionId::parse("s1").unwrap())
    }

    #[tokio::test]
    async fn subscriber_after_n_sees_rest_once() {
        let log = log();
        log.push(EventKind::TurnAccepted { session_id: SessionId::parse("s1").unwrap() });
        log.push(EventKind::MessageDelta { text: "a".into() });
        let mut late = log.subscribe(1);
        let writer = Arc::clone(&log);
        let task = tokio::spawn(async move {
            writer.push(EventKind::MessageDelta { text: "b".into() });
            writer.push(EventKind::TurnCancelled {});
        });
        let mut seqs = Vec::new();
        while let Some(event) = late.next().await {
            seqs.push(event.event.seq);
        }
        task.await.unwrap();
        assert_eq!(seqs, vec![2, 3, 4]);
    }

    #[tokio::test]
    async fn subscriber_of_closed_log_ends() {
        let log = log();
        log.push(EventKind::TurnCancelled {});
        assert!(log.is_closed());
        let mut subscription = log.subscribe(1);
        assert!(subscription.next().await.is_none());
    }
}
