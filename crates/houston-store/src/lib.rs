//! Metadata store of Houston Cloud: workspaces, users, memberships, agents, grants, refresh
//! tokens, invitations, the audit log, usage events, chat sessions and signing keys.
//!
//! One async trait, [`Store`], with a Postgres implementation for fleets and a SQLite one for
//! a single machine. Both run the same SQL: times are Unix milliseconds and JSON is text, so
//! a behaviour tested on one holds on the other. [`connect`] picks the implementation from
//! the URL and runs the migrations before returning.
//!
//! Invariant: no method keeps a connection after it returns, so callers never keep one across
//! a stream or an await on another service.

mod error;
mod model;
mod sql;
#[cfg(feature = "testing")]
pub mod testing;

use std::sync::Arc;

use async_trait::async_trait;
use houston_protocol::{AgentId, SessionId, UserId, WorkspaceId};
use time::OffsetDateTime;

pub use error::StoreError;
pub use model::*;
pub use sql::{PostgresStore, SqliteStore};
/// The database error inside [`StoreError::Database`].
pub use sqlx::Error as SqlxError;

/// Shorthand for results of store calls.
pub type StoreResult<T> = Result<T, StoreError>;

/// Connection settings for [`connect`].
#[derive(Debug, Clone)]
pub struct StoreOptions {
    /// `postgres://…` or `sqlite://PATH` (`sqlite::memory:` for a throwaway store).
    pub url: String,
    /// Maximum open connections of the pool.
    pub max_connections: u32,
    /// How long a request waits for a free connection before failing.
    pub acquire_timeout: std::time::Duration,
}

impl StoreOptions {
    /// Options with a pool of 10 connections and a 5 s acquire timeout.
    #[must_use]
    pub fn new(url: impl Into<String>) -> Self {
        Self { url: url.into(), max_connections: 10, acquire_timeout: std::time::Duration::from_secs(5) }
    }
}

/// Opens the store named by `options.url` and runs its migrations.
///
/// # Errors
/// [`StoreError::InvalidUrl`] for a URL that is neither Postgres nor SQLite, or the error of
/// connecting or migrating.
pub async fn connect(options: &StoreOptions) -> StoreResult<Arc<dyn Store>> {
    let url = options.url.as_str();
    if url.starts_with("postgres://") || url.starts_with("postgresql://") {
        return Ok(Arc::new(PostgresStore::connect(options).await?));
    }
    if url.starts_with("sqlite:") {
        return Ok(Arc::new(SqliteStore::connect(options).await?));
    }
    Err(StoreError::InvalidUrl)
}

/// The metadata store. Every method is one short transaction or statement.
#[async_trait]
pub trait Store: Send + Sync + 'static {
    /// Checks that the database answers.
    async fn ping(&self) -> StoreResult<()>;

    // Workspaces and users.

    /// Creates a workspace; [`StoreError::Conflict`] when the slug is taken.
    async fn create_workspace(&self, slug: &str, name: &str) -> StoreResult<Workspace>;
    async fn get_workspace(&self, id: &WorkspaceId) -> StoreResult<Option<Workspace>>;
    async fn get_workspace_by_slug(&self, slug: &str) -> StoreResult<Option<Workspace>>;
    /// Creates a user; [`StoreError::Conflict`] when the email or (issuer, subject) is taken.
    async fn create_user(&self, user: NewUser) -> StoreResult<User>;
    async fn get_user(&self, id: &UserId) -> StoreResult<Option<User>>;
    /// Looks a user up by email, compared case-insensitively.
    async fn get_user_by_email(&self, email: &str) -> StoreResult<Option<User>>;
    /// Returns the user of an external issuer, creating it on first sight. The email is kept
    /// only when no other user has it.
    async fn upsert_external_user(&self, issuer: &str, subject: &str, email: Option<&str>, name: &str) -> StoreResult<User>;
    async fn set_password_hash(&self, user: &UserId, password_hash: &str) -> StoreResult<()>;

    // Memberships.

    /// Adds the user to the workspace or changes the role.
    async fn set_membership(&self, workspace: &WorkspaceId, user: &UserId, role: Role) -> StoreResult<()>;
    async fn get_membership(&self, workspace: &WorkspaceId, user: &UserId) -> StoreResult<Option<Role>>;
    async fn list_user_workspaces(&self, user: &UserId) -> StoreResult<Vec<WorkspaceMembership>>;
    async fn list_members(&self, workspace: &WorkspaceId) -> StoreResult<Vec<Member>>;
    /// Removes the membership and the user's grants in that workspace; `false` when absent.
    async fn remove_membership(&self, workspace: &WorkspaceId, user: &UserId) -> StoreResult<bool>;

    // Agents.

    /// Creates an agent; [`StoreError::Conflict`] when the slug is taken in the workspace.
    async fn create_agent(&self, agent: NewAgent) -> StoreResult<Agent>;
    async fn update_agent(&self, id: &AgentId, update: AgentUpdate) -> StoreResult<Option<Agent>>;
    /// Deletes the agent with its grants and session records; `false` when absent.
    async fn delete_agent(&self, id: &AgentId) -> StoreResult<bool>;
    async fn get_agent(&self, id: &AgentId) -> StoreResult<Option<Agent>>;
    async fn get_agent_by_slug(&self, workspace: &WorkspaceId, slug: &str) -> StoreResult<Option<Agent>>;
    async fn list_agents(&self, workspace: &WorkspaceId) -> StoreResult<Vec<Agent>>;
    /// Lists the agents the user may use (see [`AgentAccess::allowed`]), optionally in one
    /// workspace only.
    async fn list_usable_agents(&self, user: &UserId, workspace: Option<&WorkspaceId>) -> StoreResult<Vec<Agent>>;

    // Grants.

    /// Grants the user the agent; `false` when the grant existed already.
    async fn put_grant(&self, workspace: &WorkspaceId, agent: &AgentId, user: &UserId) -> StoreResult<bool>;
    /// Revokes a grant; `false` when there was none.
    async fn delete_grant(&self, agent: &AgentId, user: &UserId) -> StoreResult<bool>;
    async fn list_grants(&self, workspace: &WorkspaceId, agent: Option<&AgentId>, user: Option<&UserId>) -> StoreResult<Vec<Grant>>;
    /// Reads the user's role in the agent's workspace and whether a grant exists, in one query.
    async fn agent_access(&self, user: &UserId, agent: &AgentId) -> StoreResult<AgentAccess>;

    // Refresh tokens and invitations.

    async fn insert_refresh_token(&self, token: NewRefreshToken) -> StoreResult<()>;
    /// Marks the token used if it is valid at `now`. A token presented a second time revokes
    /// its whole family, because only a thief or a replay presents a used token.
    async fn use_refresh_token(&self, token_hash: &str, now: OffsetDateTime) -> StoreResult<RefreshOutcome>;
    /// Revokes the family of the token; `false` when the token is unknown.
    async fn revoke_refresh_token(&self, token_hash: &str) -> StoreResult<bool>;
    async fn create_invitation(&self, invitation: Invitation) -> StoreResult<()>;
    /// Marks the invitation accepted if it is pending and not expired at `now`.
    async fn accept_invitation(&self, token_hash: &str, now: OffsetDateTime) -> StoreResult<Option<Invitation>>;

    // Audit, usage and sessions.

    async fn insert_audit_entries(&self, entries: &[AuditEntry]) -> StoreResult<()>;
    async fn list_audit_entries(&self, workspace: &WorkspaceId, filter: &AuditFilter) -> StoreResult<Vec<AuditEntry>>;
    /// Inserts usage events, ignoring ids already stored, so a retried batch counts once.
    async fn insert_usage_events(&self, events: &[UsageEvent]) -> StoreResult<()>;
    /// Sums usage of a workspace between two days (`YYYY-MM-DD`, inclusive).
    async fn usage_report(&self, workspace: &WorkspaceId, grouping: UsageGrouping, from_day: &str, to_day: &str) -> StoreResult<Vec<UsageRow>>;
    /// Records a session or touches its `updated_at` (the title is kept once set).
    async fn upsert_session(&self, session: &SessionRecord) -> StoreResult<()>;
    async fn get_session(&self, agent: &AgentId, session: &SessionId) -> StoreResult<Option<SessionRecord>>;
    /// Lists the user's sessions with the agent, most recently updated first.
    async fn list_sessions(&self, agent: &AgentId, user: &UserId) -> StoreResult<Vec<SessionRecord>>;

    // Signing keys of the built-in issuer.

    async fn list_signing_keys(&self) -> StoreResult<Vec<SigningKeyRecord>>;
    /// Inserts a signing key unless one with the same `kid` exists.
    async fn insert_signing_key(&self, key: &SigningKeyRecord) -> StoreResult<()>;
}

/// Returns the UTC day (`YYYY-MM-DD`) of a time, the unit usage reports group by.
#[must_use]
pub fn day_of(at: OffsetDateTime) -> String {
    let date = at.to_offset(time::UtcOffset::UTC).date();
    format!("{:04}-{:02}-{:02}", date.year(), u8::from(date.month()), date.day())
}
