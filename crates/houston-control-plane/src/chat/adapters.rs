//! The chat ports implemented by the control plane's identity, access, store and caches,
//! and by the runtime manager.

use std::sync::Arc;

use async_trait::async_trait;
use houston_cache::{Quota, RateDecision, RateLimitKey, Subject};
use houston_protocol::{AgentId, SessionId, UserId};
use houston_runtime::{AcquireError, Activation, AgentSpec, RegisterError, RuntimeManager};
use houston_store::AuditEntry;
use secrecy::{ExposeSecret, SecretString};
use time::OffsetDateTime;

use super::error::ChatError;
use super::ports::{
    Acquisition, AgentAccess, Authenticator, Caller, ChatAgent, CreatedTurn, Runtimes,
    RuntimeLease, SessionSummary, TurnRecord, TurnStatus, TurnStore, TurnUsage,
};
use super::service::ChatPorts;
use super::turn_table::TurnTable;
use crate::auth::AuthenticatedUser;
use crate::error::ApiError;
use crate::state::{ControlPlane, UsageRecord};

/// Chat message limits, counted per user, per workspace and per agent.
#[derive(Debug, Clone, Copy)]
pub struct ChatLimits {
    pub per_user: Quota,
    pub per_workspace: Quota,
    pub per_agent: Quota,
}

impl Default for ChatLimits {
    /// 60 messages a minute per user, 600 per workspace and 300 per agent.
    fn default() -> Self {
        Self {
            per_user: Quota::per_minute(60).expect("a positive quota"),
            per_workspace: Quota::per_minute(600).expect("a positive quota"),
            per_agent: Quota::per_minute(300).expect("a positive quota"),
        }
    }
}

/// Identity, access, rate limits and turn storage backed by a [`ControlPlane`].
pub struct ControlPlaneChat {
    control_plane: Arc<ControlPlane>,
    turns: TurnTable,
    limits: ChatLimits,
}

impl ControlPlaneChat {
    /// Creates the `chat_turns` table when missing and returns the ports.
    ///
    /// # Errors
    /// [`ChatError::Internal`] when the table cannot be created.
    pub async fn new(control_plane: Arc<ControlPlane>, turns: TurnTable, limits: ChatLimits) -> Result<Arc<Self>, ChatError> {
        turns.create().await?;
        Ok(Arc::new(Self { control_plane, turns, limits }))
    }

    /// Returns the chat ports with `runtimes` for waking agents.
    pub fn ports(self: &Arc<Self>, runtimes: Arc<dyn Runtimes>) -> ChatPorts {
        ChatPorts { auth: self.clone(), access: self.clone(), runtimes, turns: self.clone() }
    }

    /// Writes the session row without delaying the turn: the row only feeds the session
    /// list, and ownership of a client-named session is checked against it before this turn.
    // NOTE: two first turns racing on one client-named session can both pass the check before
    // either row exists. The engine still keeps each user's session files apart.
    fn record_session_later(&self, record: &TurnRecord, title: &str) {
        let control_plane = Arc::clone(&self.control_plane);
        let (agent, user, session) = (record.agent_id.clone(), record.user_id.clone(), record.session_id.clone());
        let title = title.to_owned();
        tokio::spawn(async move {
            if let Err(error) = control_plane.record_session(&agent, &user, &session, &title).await {
                tracing::error!(agent.id = %agent, session.id = %session, %error, "failed to record a chat session");
            }
        });
    }

    fn authenticated(caller: &Caller) -> Result<&AuthenticatedUser, ChatError> {
        caller
            .identity
            .downcast_ref::<AuthenticatedUser>()
            .ok_or_else(|| ChatError::Internal("the caller was not authenticated by the control plane".into()))
    }
}

#[async_trait]
impl Authenticator for ControlPlaneChat {
    async fn authenticate(&self, token: &str) -> Result<Caller, ChatError> {
        let user = self.control_plane.authenticate(token).await.map_err(ApiError::from)?;
        Ok(Caller { user_id: user.user_id.clone(), identity: Arc::new(user) })
    }
}

#[async_trait]
impl AgentAccess for ControlPlaneChat {
    async fn authorize(&self, caller: &Caller, agent: &str, action: &'static str) -> Result<ChatAgent, ChatError> {
        let user = Self::authenticated(caller)?;
        let agent = self.control_plane.authorize_agent(user, agent, action).await?;
        Ok(ChatAgent { agent_id: agent.id.clone(), workspace_id: agent.workspace_id.clone() })
    }

    async fn check_rate_limit(&self, caller: &Caller, agent: &ChatAgent) -> Result<(), ChatError> {
        let checks = [
            (Subject::User(caller.user_id.clone()), self.limits.per_user),
            (Subject::Workspace(agent.workspace_id.clone()), self.limits.per_workspace),
            (Subject::Agent(agent.agent_id.clone()), self.limits.per_agent),
        ];
        for (subject, quota) in checks {
            let key = RateLimitKey::new("chat", subject);
            if let RateDecision::Limited { retry_after } = self.control_plane.caches.rate_limiter.check(&key, quota).await {
                tracing::info!(user.id = %caller.user_id, agent.id = %agent.agent_id, limit = %key, "chat rate limit reached");
                return Err(ChatError::RateLimited { retry_after_secs: retry_after.as_secs().max(1) });
            }
        }
        Ok(())
    }
}

#[async_trait]
impl TurnStore for ControlPlaneChat {
    async fn create_turn(&self, record: TurnRecord, title: &str) -> Result<CreatedTurn, ChatError> {
        self.create_turn_in_session(record, title, true).await
    }

    async fn create_turn_in_session(&self, record: TurnRecord, title: &str, client_session: bool) -> Result<CreatedTurn, ChatError> {
        let store = &self.control_plane.store;
        if client_session {
            let session = store.get_session(&record.agent_id, &record.session_id).await.map_err(ApiError::from)?;
            if session.is_some_and(|session| session.user_id != record.user_id) {
                return Err(ChatError::SessionNotFound);
            }
        }
        if let Some(key) = &record.idempotency_key
            && let Some(existing) = self.turns.find_by_key(&record.user_id, &record.agent_id, key).await?
        {
            return Ok(CreatedTurn::Existing(existing));
        }
        if !self.turns.insert(&record).await? {
            // Another request with the same key won the race.
            let key = record.idempotency_key.as_deref().unwrap_or_default();
            let existing = self.turns.find_by_key(&record.user_id, &record.agent_id, key).await?;
            return existing.map(CreatedTurn::Existing).ok_or(ChatError::TurnNotFound);
        }
        self.record_session_later(&record, title);
        Ok(CreatedTurn::New(record))
    }

    async fn get_turn(&self, turn_id: &houston_protocol::TurnId) -> Result<Option<TurnRecord>, ChatError> {
        self.turns.get(turn_id).await
    }

    async fn set_prefix(&self, turn_id: &houston_protocol::TurnId, prefix_len: u64, cold_start_ms: Option<u64>) -> Result<(), ChatError> {
        self.turns.set_prefix(turn_id, prefix_len, cold_start_ms).await
    }

    async fn finish_turn(&self, record: &TurnRecord, status: TurnStatus, usage: &TurnUsage) -> Result<(), ChatError> {
        self.turns.finish(&record.turn_id, status).await?;
        let runtime_seconds = usage.turn_ms.div_ceil(1000);
        self.control_plane.record_usage(&record.workspace_id, &record.agent_id, &record.user_id, UsageRecord {
            messages: 1,
            input_tokens: usage.usage.input_tokens as i64,
            output_tokens: usage.usage.output_tokens as i64,
            wake_ups: i64::from(usage.woke_runtime),
            runtime_seconds: runtime_seconds as i64,
        });
        self.control_plane.record_audit(AuditEntry {
            id: uuid::Uuid::now_v7().to_string(),
            at: OffsetDateTime::now_utc(),
            workspace_id: Some(record.workspace_id.clone()),
            actor_user_id: Some(record.user_id.clone()),
            action: "turn.finished".to_owned(),
            agent_id: Some(record.agent_id.clone()),
            target: Some(record.turn_id.to_string()),
            decision: None,
            details: serde_json::json!({
                "session_id": record.session_id,
                "status": status.as_str(),
                "input_tokens": usage.usage.input_tokens,
                "output_tokens": usage.usage.output_tokens,
                "woke_runtime": usage.woke_runtime,
                "cold_start_ms": usage.cold_start_ms,
                "turn_ms": usage.turn_ms,
            }),
        });
        Ok(())
    }

    async fn session_belongs_to(&self, session_id: &SessionId, user_id: &UserId, agent_id: &AgentId) -> Result<bool, ChatError> {
        let session = self.control_plane.store.get_session(agent_id, session_id).await.map_err(ApiError::from)?;
        Ok(session.is_some_and(|session| session.user_id == *user_id))
    }

    async fn list_sessions(&self, user_id: &UserId, agent_id: &AgentId) -> Result<Vec<SessionSummary>, ChatError> {
        let sessions = self.control_plane.store.list_sessions(agent_id, user_id).await.map_err(ApiError::from)?;
        Ok(sessions
            .into_iter()
            .map(|session| SessionSummary {
                session_id: session.session_id,
                title: session.title,
                created_at: session.created_at,
                updated_at: session.updated_at,
            })
            .collect())
    }
}

/// Builds the runtime registration of an agent the runtime manager does not know yet: its
/// volume, engine command, provider environment and egress socket.
#[async_trait]
pub trait AgentSpecSource: Send + Sync {
    /// Prepares the agent's volume when needed and returns its runtime spec.
    ///
    /// # Errors
    /// [`ChatError::RuntimeUnavailable`] when the agent cannot be prepared.
    async fn spec_for(&self, agent: &ChatAgent) -> Result<AgentSpec, ChatError>;
}

/// Runtimes from a [`RuntimeManager`], registering agents on their first request.
pub struct ManagerRuntimes {
    manager: RuntimeManager,
    specs: Arc<dyn AgentSpecSource>,
}

impl ManagerRuntimes {
    /// Creates the adapter.
    #[must_use]
    pub fn new(manager: RuntimeManager, specs: Arc<dyn AgentSpecSource>) -> Arc<Self> {
        Arc::new(Self { manager, specs })
    }
}

#[async_trait]
impl Runtimes for ManagerRuntimes {
    async fn acquire(&self, agent: &ChatAgent) -> Result<Acquisition, ChatError> {
        let activation = match self.manager.activate(&agent.agent_id) {
            Err(AcquireError::UnknownAgent { .. }) => {
                let spec = self.specs.spec_for(agent).await?;
                match self.manager.register(spec) {
                    Ok(()) | Err(RegisterError::AlreadyRegistered { .. }) => {}
                    Err(error) => return Err(unavailable(&agent.agent_id, error.to_string(), 5)),
                }
                self.manager.activate(&agent.agent_id)
            }
            other => other,
        };
        match activation.map_err(acquire_error)? {
            Activation::Ready(lease) => Ok(Acquisition::Ready(into_lease(lease))),
            Activation::Waking(waking) => Ok(Acquisition::Starting(Box::pin(async move {
                waking.wait().await.map(into_lease).map_err(acquire_error)
            }))),
        }
    }
}

fn into_lease(lease: houston_runtime::RuntimeLease) -> RuntimeLease {
    RuntimeLease {
        endpoint: lease.endpoint.clone(),
        token: SecretString::from(lease.token.expose_secret().to_owned()),
        cold_start: lease.cold_start,
        guard: Box::new(lease),
    }
}

fn unavailable(agent: &AgentId, reason: String, retry_after_secs: u64) -> ChatError {
    ChatError::RuntimeUnavailable { agent: agent.to_string(), reason, retry_after_secs }
}

fn acquire_error(error: AcquireError) -> ChatError {
    let retry_after = error.retry_after().map_or(5, |after| after.as_secs().max(1));
    let agent = match &error {
        AcquireError::UnknownAgent { agent }
        | AcquireError::Overloaded { agent, .. }
        | AcquireError::TimedOut { agent, .. }
        | AcquireError::StartFailed { agent, .. } => agent.to_string(),
        AcquireError::ShuttingDown => String::new(),
    };
    ChatError::RuntimeUnavailable { agent, reason: error.to_string(), retry_after_secs: retry_after }
}
