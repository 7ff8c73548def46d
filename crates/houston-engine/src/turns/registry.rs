//! The turns the engine tracks: running ones, recently finished ones, the session each one
//! holds, and idempotency keys.
//!
//! A session is held by at most one running turn. That makes the running turn the session
//! file's single writer, and a second turn on the session gets `session_busy`.

use std::collections::{HashMap, VecDeque};
use std::sync::{Arc, Mutex};

use houston_protocol::{SessionId, TurnId, UserId};

use super::log::TurnHandle;

/// Reason a new turn cannot start.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Refusal {
    /// Another turn is running on the session.
    SessionBusy { running: TurnId },
    /// The requested turn id is already used by another turn.
    TurnIdTaken(TurnId),
    /// The engine is shutting down.
    ShuttingDown,
}

/// The result of asking for a new turn.
pub enum Admission {
    /// A new turn holds the session.
    Started(Arc<TurnHandle>),
    /// The idempotency key belongs to an existing turn; follow its stream instead.
    Existing(Arc<TurnHandle>),
}

type SessionKey = (UserId, SessionId);

#[derive(Default)]
struct Inner {
    turns: HashMap<TurnId, Arc<TurnHandle>>,
    finished: VecDeque<TurnId>,
    running: HashMap<SessionKey, TurnId>,
    keys: HashMap<(UserId, SessionId, String), TurnId>,
    closed: bool,
}

/// The engine's turns.
pub struct TurnRegistry {
    inner: Mutex<Inner>,
    keep_finished: usize,
}

impl TurnRegistry {
    /// Creates a registry that keeps the events of the last `keep_finished` finished turns.
    #[must_use]
    pub fn new(keep_finished: usize) -> Self {
        Self { inner: Mutex::new(Inner::default()), keep_finished: keep_finished.max(1) }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Inner> {
        self.inner.lock().expect("turn registry lock poisoned")
    }

    /// Admits a turn: an idempotency key already seen for this user and session returns the
    /// existing turn; otherwise the session must be free and the turn id unused.
    ///
    /// # Errors
    /// Returns the [`Refusal`] when the session is busy, the turn id is taken or the engine
    /// is shutting down.
    pub fn admit(&self, handle: TurnHandle) -> Result<Admission, Refusal> {
        let mut inner = self.lock();
        let session_key = (handle.user_id.clone(), handle.session_id.clone());
        if let Some(key) = &handle.idempotency_key {
            let key = (handle.user_id.clone(), handle.session_id.clone(), key.clone());
            if let Some(existing) = inner.keys.get(&key).and_then(|id| inner.turns.get(id)) {
                return Ok(Admission::Existing(existing.clone()));
            }
        }
        if inner.closed {
            return Err(Refusal::ShuttingDown);
        }
        if let Some(running) = inner.running.get(&session_key) {
            return Err(Refusal::SessionBusy { running: running.clone() });
        }
        if inner.turns.contains_key(&handle.turn_id) {
            return Err(Refusal::TurnIdTaken(handle.turn_id));
        }
        let handle = Arc::new(handle);
        if let Some(key) = &handle.idempotency_key {
            inner.keys.insert((handle.user_id.clone(), handle.session_id.clone(), key.clone()), handle.turn_id.clone());
        }
        inner.running.insert(session_key, handle.turn_id.clone());
        inner.turns.insert(handle.turn_id.clone(), handle.clone());
        Ok(Admission::Started(handle))
    }

    /// Adds a turn that already ended (rebuilt from the session file) so its key replays.
    pub fn insert_finished(&self, handle: Arc<TurnHandle>) {
        let mut inner = self.lock();
        if let Some(key) = &handle.idempotency_key {
            inner.keys.insert((handle.user_id.clone(), handle.session_id.clone(), key.clone()), handle.turn_id.clone());
        }
        inner.turns.insert(handle.turn_id.clone(), handle.clone());
        self.remember_finished(&mut inner, handle.turn_id.clone());
    }

    /// Releases the session of a turn that ended and keeps its events for replay, forgetting
    /// the oldest finished turns beyond the limit.
    pub fn finish(&self, handle: &TurnHandle) {
        let mut inner = self.lock();
        let session_key = (handle.user_id.clone(), handle.session_id.clone());
        if inner.running.get(&session_key) == Some(&handle.turn_id) {
            inner.running.remove(&session_key);
        }
        self.remember_finished(&mut inner, handle.turn_id.clone());
    }

    /// Removes a turn that never ran (its message was not stored, or it stood in for a
    /// replay), releasing its session and its idempotency key.
    pub fn forget(&self, handle: &TurnHandle) {
        let mut inner = self.lock();
        let session_key = (handle.user_id.clone(), handle.session_id.clone());
        if inner.running.get(&session_key) == Some(&handle.turn_id) {
            inner.running.remove(&session_key);
        }
        inner.turns.remove(&handle.turn_id);
        if let Some(key) = &handle.idempotency_key {
            inner.keys.remove(&(handle.user_id.clone(), handle.session_id.clone(), key.clone()));
        }
    }

    fn remember_finished(&self, inner: &mut Inner, turn_id: TurnId) {
        inner.finished.push_back(turn_id);
        while inner.finished.len() > self.keep_finished {
            let Some(old) = inner.finished.pop_front() else { break };
            if let Some(handle) = inner.turns.remove(&old)
                && let Some(key) = &handle.idempotency_key
            {
                inner.keys.remove(&(handle.user_id.clone(), handle.session_id.clone(), key.clone()));
            }
        }
    }

    /// Returns a known turn.
    #[must_use]
    pub fn get(&self, turn_id: &TurnId) -> Option<Arc<TurnHandle>> {
        self.lock().turns.get(turn_id).cloned()
    }

    /// Returns true while a turn runs on the session.
    #[must_use]
    pub fn is_running(&self, user_id: &UserId, session_id: &SessionId) -> bool {
        self.lock().running.contains_key(&(user_id.clone(), session_id.clone()))
    }

    /// Returns the running turns.
    #[must_use]
    pub fn running(&self) -> Vec<Arc<TurnHandle>> {
        let inner = self.lock();
        inner.running.values().filter_map(|id| inner.turns.get(id).cloned()).collect()
    }

    /// Stops admitting new turns.
    pub fn close(&self) {
        self.lock().closed = true;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn handle(turn: &str, key: Option<&str>) -> TurnHandle {
        TurnHandle::new(
            TurnId::parse(turn).unwrap(),
            SessionId::parse("s1").unwrap(),
            UserId::parse("u1").unwrap(),
            key.map(str::to_owned),
        )
    }

    #[test]
    fn second_turn_on_session_is_busy() {
        let registry = TurnRegistry::new(10);
        let Ok(Admission::Started(first)) = registry.admit(handle("t1", None)) else { panic!("first turn refused") };
        assert_eq!(registry.admit(handle("t2", None)).err(), Some(Refusal::SessionBusy { running: first.turn_id.clone() }));
        registry.finish(&first);
        assert!(matches!(registry.admit(handle("t2", None)), Ok(Admission::Started(_))));
    }

    #[test]
    fn repeated_key_attaches_to_existing_turn() {
        let registry = TurnRegistry::new(10);
        assert!(matches!(registry.admit(handle("t1", Some("k"))), Ok(Admission::Started(_))));
        let Ok(Admission::Existing(existing)) = registry.admit(handle("t2", Some("k"))) else { panic!("key not matched") };
        assert_eq!(existing.turn_id.as_str(), "t1");
    }

    #[test]
    fn finished_turns_beyond_limit_are_forgotten() {
        let registry = TurnRegistry::new(1);
        for turn in ["t1", "t2"] {
            let Ok(Admission::Started(started)) = registry.admit(handle(turn, None)) else { panic!("refused") };
            registry.finish(&started);
        }
        assert!(registry.get(&TurnId::parse("t1").unwrap()).is_none());
        assert!(registry.get(&TurnId::parse("t2").unwrap()).is_some());
    }

    #[test]
    fn closed_registry_refuses_new_turns() {
        let registry = TurnRegistry::new(1);
        registry.close();
        assert_eq!(registry.admit(handle("t1", None)).err(), Some(Refusal::ShuttingDown));
    }
}
