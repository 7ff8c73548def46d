//! The chat flow: authorize, audit, rate-limit, store the turn, wake the runtime, forward to
//! the engine, and record the outcome.
//!
//! Each accepted turn gets a pump task that owns the engine stream and the runtime lease. The
//! turn therefore runs to its end even when every client disconnects, and the lease, which
//! keeps the runtime awake, lives exactly as long as the turn is open.

use std::sync::Arc;
use std::time::{Duration, Instant};

use houston_protocol::{
    ChatRequest, EngineTurnRequest, EventKind, SessionId, StreamEvent, TurnError, TurnId, Usage,
};
use time::OffsetDateTime;
use tokio::sync::mpsc;

use super::engine_client::{EngineClient, EngineError, EngineEventStream};
use super::error::ChatError;
use super::ports::{
    Acquisition, AgentAccess, Authenticator, Caller, ChatAgent, CreatedTurn, Runtimes,
    RuntimeLease, TurnRecord, TurnStatus, TurnStore, TurnUsage,
};
use super::turn_log::{LoggedEvent, Subscription, TurnLog, TurnLogs};
use super::validate::ValidChat;

/// How many times the pump reconnects to an engine stream that broke mid-turn.
const STREAM_RECONNECTS: u32 = 3;

/// The implementations the chat flow runs against.
#[derive(Clone)]
pub struct ChatPorts {
    pub auth: Arc<dyn Authenticator>,
    pub access: Arc<dyn AgentAccess>,
    pub runtimes: Arc<dyn Runtimes>,
    pub turns: Arc<dyn TurnStore>,
}

/// The chat flow of one control plane replica.
pub struct ChatService {
    pub(crate) ports: ChatPorts,
    pub(crate) engines: EngineClient,
    pub(crate) logs: TurnLogs,
}

/// The source of a client's events: this replica's log or the engine's replay.
pub enum EventFeed {
    /// This replica runs the turn.
    Local(Subscription),
    /// Another replica ran or runs it; events come from the engine's replay.
    Remote(mpsc::Receiver<Arc<LoggedEvent>>),
}

impl EventFeed {
    /// Returns the next event, or `None` when the turn's stream ended.
    pub async fn next(&mut self) -> Option<Arc<LoggedEvent>> {
        match self {
            Self::Local(subscription) => subscription.next().await,
            Self::Remote(receiver) => receiver.recv().await,
        }
    }
}

/// The end of a turn: its status and token usage, for the store and the usage row.
struct Ending {
    status: TurnStatus,
    usage: Usage,
}

impl ChatService {
    /// Creates the chat flow over `ports`.
    #[must_use]
    pub fn new(ports: ChatPorts) -> Arc<Self> {
        Arc::new(Self { ports, engines: EngineClient::new(), logs: TurnLogs::default() })
    }

    /// Verifies a bearer token.
    ///
    /// # Errors
    /// [`ChatError::Unauthenticated`].
    pub async fn authenticate(&self, token: &str) -> Result<Caller, ChatError> {
        self.ports.auth.authenticate(token).await
    }

    /// Runs the side effects of a chat message in order (authorize with audit, rate-limit,
    /// store the turn) and starts its pump, which wakes the runtime and forwards the message.
    /// With an idempotency key that was used before, attaches to that turn instead.
    ///
    /// # Errors
    /// Validation, authorization, rate-limit and store errors, before any event is produced.
    pub async fn start_chat(
        self: &Arc<Self>,
        caller: &Caller,
        request: ChatRequest,
    ) -> Result<(TurnRecord, EventFeed), ChatError> {
        let chat = ValidChat::check(request)?;
        let agent = self.ports.access.authorize(caller, &chat.agent, "agent.chat").await?;
        self.ports.access.check_rate_limit(caller, &agent).await?;

        let record = TurnRecord {
            turn_id: TurnId::generate(),
            session_id: chat.session_id.clone().unwrap_or_else(SessionId::generate),
            user_id: caller.user_id.clone(),
            agent_id: agent.agent_id.clone(),
            workspace_id: agent.workspace_id.clone(),
            idempotency_key: chat.idempotency_key.clone(),
            prefix_len: None,
            cold_start_ms: None,
            status: TurnStatus::Open,
            created_at: OffsetDateTime::now_utc(),
        };
        let client_session = chat.session_id.is_some();
        let record = match self.ports.turns.create_turn_in_session(record, &chat.title(), client_session).await? {
            CreatedTurn::Existing(existing) => {
                let feed = self.follow(&existing, 0).await?;
                return Ok((existing, feed));
            }
            CreatedTurn::New(record) => record,
        };

        let log = self.logs.create(record.turn_id.clone(), record.session_id.clone());
        log.push(EventKind::TurnAccepted { session_id: record.session_id.clone() });
        let feed = EventFeed::Local(log.subscribe(0));
        tokio::spawn(Arc::clone(self).run_turn(log, record.clone(), agent, chat.message));
        Ok((record, feed))
    }

    /// Returns a feed of a turn's events with `seq > after`, from this replica's log when it
    /// has one, else from the engine's replay.
    ///
    /// # Errors
    /// [`ChatError::RuntimeUnavailable`] when the replay needs a runtime that cannot start.
    pub async fn follow(
        self: &Arc<Self>,
        record: &TurnRecord,
        after: u64,
    ) -> Result<EventFeed, ChatError> {
        if let Some(log) = self.logs.get(&record.turn_id) {
            return Ok(EventFeed::Local(log.subscribe(after)));
        }
        super::replay::replay_from_engine(self, record.clone(), after).await
    }

    /// Asks the runtime to cancel an open turn. The turn's stream then ends with
    /// `turn.cancelled` once the engine confirms.
    ///
    /// # Errors
    /// [`ChatError::RuntimeUnavailable`] or an engine error when the cancel cannot be delivered.
    pub async fn cancel(&self, record: &TurnRecord, agent: &ChatAgent) -> Result<(), ChatError> {
        if let Some(log) = self.logs.get(&record.turn_id) {
            log.cancel.cancel();
            return Ok(());
        }
        if record.status != TurnStatus::Open {
            return Ok(());
        }
        let lease = self.acquire_quietly(agent).await?;
        self.engines
            .cancel_turn(&lease.endpoint, &lease.token, &record.session_id, &record.turn_id)
            .await
            .map_err(engine_error)
    }

    /// Acquires a lease without announcing a cold start (for reads, replays and cancels).
    pub(crate) async fn acquire_quietly(&self, agent: &ChatAgent) -> Result<RuntimeLease, ChatError> {
        match self.ports.runtimes.acquire(agent).await? {
            Acquisition::Ready(lease) => Ok(lease),
            Acquisition::Starting(start) => start.await,
        }
    }

    async fn run_turn(
        self: Arc<Self>,
        log: Arc<TurnLog>,
        record: TurnRecord,
        agent: ChatAgent,
        message: String,
    ) {
        let started = Instant::now();
        let (ending, cold_start_ms) = match self.drive_turn(&log, &record, &agent, message).await {
            Ok(done) => done,
            Err(error) => {
                tracing::warn!(turn.id = %record.turn_id, agent.id = %record.agent_id, %error, "turn failed");
                self.store_prefix_before_failure(&log, &record).await;
                log.push(EventKind::TurnFailed { error: turn_error(&error) });
                (Ending { status: TurnStatus::Failed, usage: Usage::default() }, None)
            }
        };
        if !log.is_closed() {
            log.push(EventKind::TurnFailed { error: stream_lost() });
        }

        let usage = TurnUsage {
            usage: ending.usage,
            woke_runtime: cold_start_ms.is_some(),
            cold_start_ms,
            turn_ms: u64::try_from(started.elapsed().as_millis()).unwrap_or(u64::MAX),
        };
        if let Err(error) = self.ports.turns.finish_turn(&record, ending.status, &usage).await {
            tracing::error!(turn.id = %record.turn_id, %error, "failed to store the end of a turn");
        }
        self.logs.expire_later(record.turn_id);
    }

    /// Stores a prefix of 2 when the turn fails after `agent.waking` but before the runtime was
    /// ready, so a resume elsewhere rebuilds `agent.waking` too (see [`super::replay`]).
    async fn store_prefix_before_failure(&self, log: &TurnLog, record: &TurnRecord) {
        let stored = self.ports.turns.get_turn(&record.turn_id).await.ok().flatten();
        let reached_engine = stored.is_some_and(|turn| turn.prefix_len.is_some());
        if reached_engine || log.len() != 2 {
            return;
        }
        if let Err(error) = self.ports.turns.set_prefix(&record.turn_id, 2, None).await {
            tracing::error!(turn.id = %record.turn_id, %error, "failed to store the prefix of a failed turn");
        }
    }

    /// Wakes the runtime, forwards the message and copies the engine's events into the log.
    /// Returns the ending and the cold-start time when this turn woke the runtime.
    async fn drive_turn(
        &self,
        log: &TurnLog,
        record: &TurnRecord,
        agent: &ChatAgent,
        message: String,
    ) -> Result<(Ending, Option<u64>), ChatError> {
        let lease = self.wake(log, agent).await?;
        let cold_start_ms = lease.cold_start.map(duration_ms);
        let prefix_len = log.len();
        self.ports.turns.set_prefix(&record.turn_id, prefix_len, cold_start_ms).await?;
        if log.cancel.is_cancelled() {
            log.push(EventKind::TurnCancelled {});
            return Ok((Ending { status: TurnStatus::Cancelled, usage: Usage::default() }, cold_start_ms));
        }

        let request = EngineTurnRequest {
            user_id: record.user_id.clone(),
            message,
            turn_id: Some(record.turn_id.clone()),
            idempotency_key: Some(record.turn_id.to_string()),
        };
        let stream = self
            .engines
            .start_turn(&lease.endpoint, &lease.token, &record.session_id, &request)
            .await
            .map_err(engine_error)?;
        let ending = self.forward(log, record, &lease, stream).await?;
        Ok((ending, cold_start_ms))
    }

    /// Emits `agent.waking` and `agent.ready` around a cold start.
    async fn wake(&self, log: &TurnLog, agent: &ChatAgent) -> Result<RuntimeLease, ChatError> {
        match self.ports.runtimes.acquire(agent).await? {
            Acquisition::Ready(lease) => Ok(lease),
            Acquisition::Starting(start) => {
                log.push(EventKind::AgentWaking {});
                let clock = Instant::now();
                let mut lease = start.await?;
                let cold_start = *lease.cold_start.get_or_insert(clock.elapsed());
                log.push(EventKind::AgentReady { cold_start_ms: duration_ms(cold_start) });
                Ok(lease)
            }
        }
    }

    /// Copies engine events into the log, renumbered after the control plane's own events,
    /// reconnecting with `?after=` when the engine stream breaks before the turn ends.
    async fn forward(
        &self,
        log: &TurnLog,
        record: &TurnRecord,
        lease: &RuntimeLease,
        mut stream: EngineEventStream,
    ) -> Result<Ending, ChatError> {
        let mut last_engine_seq = 0;
        let mut reconnects = 0;
        let mut cancel_sent = false;
        loop {
            let next = tokio::select! {
                next = stream.next_event() => next,
                () = log.cancel.cancelled(), if !cancel_sent => {
                    cancel_sent = true;
                    self.send_cancel(record, lease).await;
                    continue;
                }
            };
            match next {
                Some(Ok(event)) => {
                    if let Some(ending) = accept_engine_event(log, event, &mut last_engine_seq) {
                        return Ok(ending);
                    }
                    continue;
                }
                Some(Err(error)) => {
                    tracing::warn!(turn.id = %record.turn_id, %error, "engine stream broke");
                }
                None => {}
            }
            if reconnects == STREAM_RECONNECTS {
                return Err(ChatError::Engine { status: 502, code: "engine_stream_lost".into(), message: "the engine stream ended before the turn did".into() });
            }
            reconnects += 1;
            tokio::time::sleep(Duration::from_millis(100 * u64::from(reconnects))).await;
            stream = self
                .engines
                .turn_events(&lease.endpoint, &lease.token, &record.session_id, &record.turn_id, last_engine_seq.max(1))
                .await
                .map_err(engine_error)?;
        }
    }

    async fn send_cancel(&self, record: &TurnRecord, lease: &RuntimeLease) {
        let result = self
            .engines
            .cancel_turn(&lease.endpoint, &lease.token, &record.session_id, &record.turn_id)
            .await;
        if let Err(error) = result {
            tracing::warn!(turn.id = %record.turn_id, %error, "failed to forward a cancel to the engine");
        }
    }
}

/// Logs one engine event unless it is the engine's own `turn.accepted` or a repeat after a
/// reconnect. Returns the ending when the event is terminal.
fn accept_engine_event(log: &TurnLog, event: StreamEvent, last_engine_seq: &mut u64) -> Option<Ending> {
    if event.seq <= *last_engine_seq {
        return None;
    }
    if event.seq != *last_engine_seq + 1 {
        tracing::warn!(turn.id = %event.turn_id, expected = *last_engine_seq + 1, got = event.seq, "engine skipped event numbers");
    }
    *last_engine_seq = event.seq;
    if matches!(event.kind, EventKind::TurnAccepted { .. }) {
        return None;
    }
    let ending = match &event.kind {
        EventKind::TurnCompleted { usage, .. } => Some(Ending { status: TurnStatus::Completed, usage: *usage }),
        EventKind::TurnFailed { .. } => Some(Ending { status: TurnStatus::Failed, usage: Usage::default() }),
        EventKind::TurnCancelled {} => Some(Ending { status: TurnStatus::Cancelled, usage: Usage::default() }),
        _ => None,
    };
    log.push(event.kind);
    ending
}

pub(crate) fn engine_error(error: EngineError) -> ChatError {
    match error {
        EngineError::Status { status, code, message } => ChatError::Engine { status, code, message },
        other => ChatError::Engine { status: 502, code: "engine_unreachable".into(), message: other.to_string() },
    }
}

/// The `turn.failed` message of a turn whose runtime did not start.
pub(crate) const AGENT_UNAVAILABLE_MESSAGE: &str = "The agent could not be started. Try again in a moment.";

/// The `turn.failed` message of a turn whose engine stream ended before the turn did.
const STREAM_LOST_MESSAGE: &str = "The connection to the agent broke before the answer was complete. Send the message again.";

/// Builds the `turn.failed` error that clients show to end users. Runtime and engine failures
/// get a fixed sentence because their causes name socket paths, addresses and OS errors.
/// `run_turn` logs the cause.
fn turn_error(error: &ChatError) -> TurnError {
    let body = error.body();
    let message = match error {
        ChatError::RuntimeUnavailable { .. } => AGENT_UNAVAILABLE_MESSAGE.to_owned(),
        ChatError::Engine { status: 409, .. } => {
            "The conversation is busy with another message. Wait for it to finish, then send yours again.".to_owned()
        }
        ChatError::Engine { code, .. } if code == "engine_unreachable" => {
            "The agent could not be reached. Try again in a moment.".to_owned()
        }
        ChatError::Engine { code, .. } if code == "engine_stream_lost" => STREAM_LOST_MESSAGE.to_owned(),
        ChatError::Engine { .. } => "The agent failed to start the answer. Try again in a moment.".to_owned(),
        ChatError::Internal(_) => "The message could not be processed. Try again in a moment.".to_owned(),
        _ => body.error.message,
    };
    TurnError {
        code: body.error.code,
        message,
        retryable: matches!(error, ChatError::RuntimeUnavailable { .. } | ChatError::Engine { .. }),
    }
}

fn stream_lost() -> TurnError {
    TurnError {
        code: "engine_stream_lost".into(),
        message: STREAM_LOST_MESSAGE.into(),
        retryable: true,
    }
}

pub(crate) fn duration_ms(duration: Duration) -> u64 {
    u64::try_from(duration.as_millis()).unwrap_or(u64::MAX)
}
