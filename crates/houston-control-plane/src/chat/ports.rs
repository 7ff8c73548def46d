//! The traits through which the chat flow uses the rest of the control plane.
//!
//! The chat routes depend only on these traits, so the same code runs against the SQLite or
//! Postgres store, the in-process or Redis caches, and any runtime backend.

use std::any::Any;
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use futures::future::BoxFuture;
use houston_protocol::{AgentId, EngineEndpoint, SessionId, TurnId, Usage, UserId, WorkspaceId};
use secrecy::SecretString;
use time::OffsetDateTime;

use super::error::ChatError;

/// The authenticated user behind a request.
#[derive(Clone)]
pub struct Caller {
    pub user_id: UserId,
    /// Identity data the [`Authenticator`] needs again in [`AgentAccess`] calls, such as the
    /// verified claims. The chat flow never reads it.
    pub identity: Arc<dyn Any + Send + Sync>,
}

impl Caller {
    /// Creates a caller without extra identity data.
    #[must_use]
    pub fn new(user_id: UserId) -> Self {
        Self { user_id, identity: Arc::new(()) }
    }
}

impl std::fmt::Debug for Caller {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Caller").field("user_id", &self.user_id).finish_non_exhaustive()
    }
}

/// An agent that the caller may use, after resolution and the grant check.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ChatAgent {
    pub agent_id: AgentId,
    pub workspace_id: WorkspaceId,
}

/// Verifies bearer tokens.
#[async_trait]
pub trait Authenticator: Send + Sync {
    /// Verifies `token` (without the `Bearer ` prefix) and returns its user.
    ///
    /// # Errors
    /// [`ChatError::Unauthenticated`] naming the check that failed.
    async fn authenticate(&self, token: &str) -> Result<Caller, ChatError>;
}

/// Resolves agents, checks grants, writes the audit entry and applies rate limits.
#[async_trait]
pub trait AgentAccess: Send + Sync {
    /// Resolves `agent` (id or slug), checks the caller's grant and writes the audit entry for
    /// the decision (allowed or denied) with `action`.
    ///
    /// # Errors
    /// [`ChatError::AgentNotFound`] both for an unknown agent and for one without a grant.
    async fn authorize(
        &self,
        caller: &Caller,
        agent: &str,
        action: &'static str,
    ) -> Result<ChatAgent, ChatError>;

    /// Counts one chat message against the caller's, the workspace's and the agent's limits.
    ///
    /// # Errors
    /// [`ChatError::RateLimited`] with the time to wait.
    async fn check_rate_limit(&self, caller: &Caller, agent: &ChatAgent) -> Result<(), ChatError>;
}

/// A claim on a ready runtime. While any lease of an agent is alive, the runtime counts as
/// having an open turn and is never stopped. Dropping the lease ends the claim.
pub struct RuntimeLease {
    pub endpoint: EngineEndpoint,
    pub token: SecretString,
    /// The measured start time when this acquisition started the runtime.
    pub cold_start: Option<Duration>,
    /// Kept alive for the lease's lifetime; dropping it releases the claim.
    pub guard: Box<dyn Any + Send + Sync>,
}

impl std::fmt::Debug for RuntimeLease {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RuntimeLease")
            .field("endpoint", &self.endpoint)
            .field("cold_start", &self.cold_start)
            .finish_non_exhaustive()
    }
}

/// The result of [`Runtimes::acquire`]: either a ready runtime, or a start in progress
/// that the caller can announce (`agent.waking`) before waiting for it.
pub enum Acquisition {
    Ready(RuntimeLease),
    Starting(BoxFuture<'static, Result<RuntimeLease, ChatError>>),
}

/// Wakes agents and hands out leases on their runtimes.
#[async_trait]
pub trait Runtimes: Send + Sync {
    /// Returns a lease on the agent's runtime, starting it when it sleeps.
    ///
    /// # Errors
    /// [`ChatError::RuntimeUnavailable`] when the runtime cannot be started or is overloaded.
    async fn acquire(&self, agent: &ChatAgent) -> Result<Acquisition, ChatError>;
}

/// How a turn ended, as stored.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TurnStatus {
    Open,
    Completed,
    Failed,
    Cancelled,
}

impl TurnStatus {
    /// Returns the stored name.
    #[must_use]
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Open => "open",
            Self::Completed => "completed",
            Self::Failed => "failed",
            Self::Cancelled => "cancelled",
        }
    }
}

/// One chat turn as the control plane stores it.
///
/// `prefix_len` is the number of events the control plane itself emitted before the engine's
/// (1 for `turn.accepted`, 3 with `agent.waking` and `agent.ready`). A client event with
/// `seq > prefix_len` is the engine event `seq - prefix_len + 1`, because the engine's own
/// `turn.accepted` (engine seq 1) is dropped. `None` until the runtime is ready.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TurnRecord {
    pub turn_id: TurnId,
    pub session_id: SessionId,
    pub user_id: UserId,
    pub agent_id: AgentId,
    pub workspace_id: WorkspaceId,
    pub idempotency_key: Option<String>,
    pub prefix_len: Option<u64>,
    pub cold_start_ms: Option<u64>,
    pub status: TurnStatus,
    pub created_at: OffsetDateTime,
}

/// The result of [`TurnStore::create_turn`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CreatedTurn {
    /// A new turn was stored.
    New(TurnRecord),
    /// A turn with the same user, agent and idempotency key already exists.
    Existing(TurnRecord),
}

/// A session in a user's list.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct SessionSummary {
    pub session_id: SessionId,
    pub title: String,
    #[serde(with = "time::serde::rfc3339")]
    pub created_at: OffsetDateTime,
    #[serde(with = "time::serde::rfc3339")]
    pub updated_at: OffsetDateTime,
}

/// The cost of a finished turn, for the usage rows.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TurnUsage {
    pub usage: Usage,
    pub woke_runtime: bool,
    pub cold_start_ms: Option<u64>,
    /// Wall time from acceptance to the terminal event, in milliseconds.
    pub turn_ms: u64,
}

/// Stores turns and sessions and records usage.
#[async_trait]
pub trait TurnStore: Send + Sync {
    /// Stores a new turn, creating its session row when the session is new (`title` is used
    /// then). With an idempotency key already used by the same user and agent, stores nothing
    /// and returns the existing turn.
    ///
    /// # Errors
    /// [`ChatError::SessionNotFound`] when `record.session_id` exists for another user or
    /// agent; [`ChatError::Internal`] on a store failure.
    async fn create_turn(&self, record: TurnRecord, title: &str) -> Result<CreatedTurn, ChatError>;

    /// Like [`Self::create_turn`]. `client_session` is false when the session id was generated
    /// for this turn, so an implementation may skip the ownership check: no one else can own
    /// it yet.
    ///
    /// # Errors
    /// As [`Self::create_turn`].
    async fn create_turn_in_session(
        &self,
        record: TurnRecord,
        title: &str,
        client_session: bool,
    ) -> Result<CreatedTurn, ChatError> {
        let _ = client_session;
        self.create_turn(record, title).await
    }

    /// Returns a turn by id.
    async fn get_turn(&self, turn_id: &TurnId) -> Result<Option<TurnRecord>, ChatError>;

    /// Stores how many events the control plane emitted before the engine's.
    async fn set_prefix(
        &self,
        turn_id: &TurnId,
        prefix_len: u64,
        cold_start_ms: Option<u64>,
    ) -> Result<(), ChatError>;

    /// Stores the turn's end and writes its usage row.
    async fn finish_turn(
        &self,
        record: &TurnRecord,
        status: TurnStatus,
        usage: &TurnUsage,
    ) -> Result<(), ChatError>;

    /// Returns true when `session_id` belongs to `user_id` and `agent_id`.
    async fn session_belongs_to(
        &self,
        session_id: &SessionId,
        user_id: &UserId,
        agent_id: &AgentId,
    ) -> Result<bool, ChatError>;

    /// Lists the user's sessions with an agent, newest first.
    async fn list_sessions(
        &self,
        user_id: &UserId,
        agent_id: &AgentId,
    ) -> Result<Vec<SessionSummary>, ChatError>;
}
