//! Turns: admission, the tool loop and the event log each turn streams from.
//!
//! [`accept`] admits a turn, writes the user message (recording any turn a crash left
//! unfinished as failed first) and spawns the runner. The message's fsync runs alongside the
//! first model call: `turn.accepted` is emitted once the fsync returned, and the runner holds
//! back every event until then, so a client never sees text of a turn that is not stored. The runner
//! survives the client: a disconnect never cancels a turn, only the cancel endpoint and
//! shutdown do.

mod log;
mod registry;
mod runner;
mod tool_gate;

use std::sync::Arc;

use houston_protocol::{EventKind, SessionId, TurnError, TurnId, UserId, Usage};
use tokio::sync::watch;
use tokio_util::task::TaskTracker;

pub use log::{TurnHandle, TurnLog};
pub use registry::{Admission, Refusal, TurnRegistry};
pub use tool_gate::{APPROVAL_TIMEOUT, ApprovalError, Approvals};

use crate::folder::AgentFolder;
use crate::providers::ModelProvider;
use crate::sessions::{
    AssistantRecord, LoadMode, PendingSync, SessionRecord, SessionStore, StoreError, TurnStatus, UserRecord, now,
};
use crate::tools::Toolbox;

/// Dependencies shared by all turns of the engine.
pub struct TurnEnv {
    pub folder: Arc<AgentFolder>,
    pub store: SessionStore,
    pub provider: Arc<dyn ModelProvider>,
    pub toolbox: Toolbox,
    pub registry: Arc<TurnRegistry>,
    pub tracker: TaskTracker,
    pub history_budget_tokens: usize,
    pub max_model_rounds: usize,
}

/// A validated request for a new turn.
#[derive(Debug, Clone)]
pub struct NewTurn {
    pub user_id: UserId,
    pub session_id: SessionId,
    pub turn_id: Option<TurnId>,
    pub message: String,
    pub idempotency_key: Option<String>,
}

/// Error of [`accept`].
#[derive(Debug, thiserror::Error)]
pub enum AcceptError {
    #[error("{0:?}")]
    Refused(Refusal),
    #[error("failed to store the user message: {0}")]
    Store(#[from] StoreError),
    #[error("the storage task failed: {0}")]
    Join(#[from] tokio::task::JoinError),
}

/// Returns the error recorded for a turn that was running when the engine died.
#[must_use]
pub fn interrupted_error() -> TurnError {
    TurnError {
        code: "engine_interrupted".into(),
        message: "The agent stopped before this turn finished. Send the message again.".into(),
        retryable: true,
    }
}

/// Admits and starts a turn, or returns the existing turn of a repeated idempotency key.
/// A started turn's log gets `turn.accepted` once the user message is fsynced.
///
/// # Errors
/// Returns [`AcceptError`] when the turn is refused or the user message cannot be stored;
/// in the latter case nothing was stored and the session is released.
pub async fn accept(env: &Arc<TurnEnv>, request: NewTurn) -> Result<Arc<TurnHandle>, AcceptError> {
    let turn_id = request.turn_id.clone().unwrap_or_else(TurnId::generate);
    let handle = TurnHandle::new(turn_id, request.session_id.clone(), request.user_id.clone(), request.idempotency_key.clone());
    let handle = match env.registry.admit(handle).map_err(AcceptError::Refused)? {
        Admission::Existing(existing) => return Ok(existing),
        Admission::Started(handle) => handle,
    };

    let store = env.store.clone();
    let user_record = UserRecord {
        turn_id: handle.turn_id.clone(),
        at: now(),
        text: request.message.clone(),
        idempotency_key: request.idempotency_key.clone(),
    };
    let stored = tokio::task::spawn_blocking(move || prepare_session(&store, &request, user_record)).await;
    let prepared = match stored {
        Ok(Ok(prepared)) => prepared,
        Ok(Err(error)) => return Err(abandon(env, &handle, AcceptError::Store(error))),
        Err(error) => return Err(abandon(env, &handle, AcceptError::Join(error))),
    };
    if let Prepared::Replay(records) = prepared {
        env.registry.forget(&handle);
        let replayed = replay_handle(&handle, &records);
        env.registry.insert_finished(replayed.clone());
        return Ok(replayed);
    }
    let Prepared::Written(records, pending) = prepared else { unreachable!("replay handled above") };

    let (durable_sender, durable) = watch::channel(Durability::Pending);
    let sync_handle = handle.clone();
    env.tracker.spawn(async move { sync_user_message(sync_handle, pending, durable_sender).await });
    let env_for_task = env.clone();
    let handle_for_task = handle.clone();
    env.tracker.spawn(async move { runner::run(env_for_task, handle_for_task, records, durable).await });
    Ok(handle)
}

/// Whether the user message of a turn is on disk yet.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Durability {
    Pending,
    Stored,
    Failed,
}

/// Fsyncs the user message, then emits `turn.accepted`. When the fsync fails the turn is
/// reported as failed and cancelled, because its message may not survive a crash.
async fn sync_user_message(handle: Arc<TurnHandle>, pending: PendingSync, durable: watch::Sender<Durability>) {
    let synced = tokio::task::spawn_blocking(move || pending.sync()).await;
    let error = match synced {
        Ok(Ok(())) => {
            handle.log.push(EventKind::TurnAccepted { session_id: handle.session_id.clone() });
            durable.send_replace(Durability::Stored);
            return;
        }
        Ok(Err(error)) => error.to_string(),
        Err(error) => error.to_string(),
    };
    tracing::error!(turn.id = %handle.turn_id, session.id = %handle.session_id, %error, "failed to fsync the user message");
    handle.log.push(message_not_stored());
    durable.send_replace(Durability::Failed);
    handle.cancel.cancel();
}

/// Builds the `turn.failed` event of a turn whose user message could not be stored.
fn message_not_stored() -> EventKind {
    EventKind::TurnFailed {
        error: TurnError { code: "store_failed".into(), message: "The message could not be saved. Send it again.".into(), retryable: true },
    }
}

/// Releases a turn that could not be stored and ends its log, so a follower never hangs.
fn abandon(env: &TurnEnv, handle: &Arc<TurnHandle>, error: AcceptError) -> AcceptError {
    tracing::error!(turn.id = %handle.turn_id, session.id = %handle.session_id, %error, "failed to accept a turn");
    handle.log.push(message_not_stored());
    // Forgetting the turn lets a retry with the same idempotency key start afresh.
    env.registry.forget(handle);
    error
}

enum Prepared {
    /// The user message is written but not yet synced; the records include it.
    Written(Vec<SessionRecord>, PendingSync),
    /// The idempotency key matches a turn stored before a restart; these are its records.
    Replay(Vec<SessionRecord>),
}

/// Runs with the session held: records unfinished turns as failed, then either finds the
/// stored turn of a repeated idempotency key or writes the new user message.
fn prepare_session(store: &SessionStore, request: &NewTurn, user_record: UserRecord) -> Result<Prepared, StoreError> {
    let mut records = store.load(&request.user_id, &request.session_id, LoadMode::Writer)?.unwrap_or_default();
    for orphan in unfinished_turns(&records) {
        let failed = SessionRecord::Assistant(AssistantRecord {
            turn_id: orphan.clone(),
            at: now(),
            status: TurnStatus::Failed,
            text: String::new(),
            tool_calls: Vec::new(),
            usage: Usage::default(),
            stop_reason: None,
            error: Some(interrupted_error()),
        });
        store.append(&request.user_id, &request.session_id, &failed)?;
        tracing::warn!(turn.id = %orphan, session.id = %request.session_id, "recorded an interrupted turn as failed");
        records.push(failed);
    }
    if let Some(key) = &request.idempotency_key {
        let earlier = records.iter().find_map(|record| match record {
            SessionRecord::User(user) if user.idempotency_key.as_ref() == Some(key) => Some(user.turn_id.clone()),
            _ => None,
        });
        if let Some(turn_id) = earlier {
            let turn: Vec<SessionRecord> = records.into_iter().filter(|r| r.turn_id() == &turn_id).collect();
            return Ok(Prepared::Replay(turn));
        }
    }
    let record = SessionRecord::User(user_record);
    let pending = store.append_unsynced(&request.user_id, &request.session_id, &record)?;
    records.push(record);
    Ok(Prepared::Written(records, pending))
}

/// Returns the turns with a user message but no assistant record.
#[must_use]
pub fn unfinished_turns(records: &[SessionRecord]) -> Vec<TurnId> {
    let answered: std::collections::HashSet<&TurnId> = records
        .iter()
        .filter(|record| matches!(record, SessionRecord::Assistant(_)))
        .map(SessionRecord::turn_id)
        .collect();
    records
        .iter()
        .filter(|record| matches!(record, SessionRecord::User(_)) && !answered.contains(record.turn_id()))
        .map(|record| record.turn_id().clone())
        .collect()
}

/// Rebuilds the events of a stored turn: accepted, its text as one delta, and its ending.
fn replay_handle(template: &TurnHandle, records: &[SessionRecord]) -> Arc<TurnHandle> {
    let turn_id = records.first().map_or_else(|| template.turn_id.clone(), |r| r.turn_id().clone());
    let handle = TurnHandle::new(turn_id, template.session_id.clone(), template.user_id.clone(), template.idempotency_key.clone());
    handle.log.push(EventKind::TurnAccepted { session_id: template.session_id.clone() });
    let answer = records.iter().find_map(|record| match record {
        SessionRecord::Assistant(answer) => Some(answer),
        SessionRecord::User(_) => None,
    });
    if let Some(answer) = answer {
        if !answer.text.is_empty() {
            handle.log.push(EventKind::MessageDelta { text: answer.text.clone() });
        }
        handle.log.push(runner::terminal_event(answer));
    }
    Arc::new(handle)
}
