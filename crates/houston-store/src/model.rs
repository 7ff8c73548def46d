//! Records the store reads and writes.

use houston_protocol::{AgentId, SessionId, UserId, WorkspaceId};
use serde::{Deserialize, Serialize};
use time::OffsetDateTime;

/// A user's role in one workspace.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Role {
    Owner,
    Admin,
    Member,
}

impl Role {
    /// Returns the role as stored and sent on the wire.
    #[must_use]
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Owner => "owner",
            Self::Admin => "admin",
            Self::Member => "member",
        }
    }

    /// Parses `owner`, `admin` or `member`.
    #[must_use]
    pub fn parse(value: &str) -> Option<Self> {
        match value {
            "owner" => Some(Self::Owner),
            "admin" => Some(Self::Admin),
            "member" => Some(Self::Member),
            _ => None,
        }
    }

    /// Whether the role may administer the workspace.
    #[must_use]
    pub fn is_admin(self) -> bool {
        matches!(self, Self::Owner | Self::Admin)
    }
}

/// A workspace (a tenant).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Workspace {
    pub id: WorkspaceId,
    pub slug: String,
    pub name: String,
    #[serde(with = "time::serde::rfc3339")]
    pub created_at: OffsetDateTime,
}

/// A user, from the built-in issuer (email and password) or an external issuer (`iss` and
/// `sub`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct User {
    pub id: UserId,
    pub email: Option<String>,
    pub name: String,
    /// Argon2id PHC string; `None` for users who cannot sign in with a password.
    pub password_hash: Option<String>,
    pub external_issuer: Option<String>,
    pub external_subject: Option<String>,
    pub created_at: OffsetDateTime,
}

/// Fields of a new user.
#[derive(Debug, Clone, Default)]
pub struct NewUser {
    /// Lower-cased by the store.
    pub email: Option<String>,
    pub name: String,
    pub password_hash: Option<String>,
    pub external_issuer: Option<String>,
    pub external_subject: Option<String>,
}

/// A workspace the user belongs to, with the user's role in it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WorkspaceMembership {
    pub workspace: Workspace,
    pub role: Role,
}

/// A member of a workspace.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Member {
    pub user_id: UserId,
    pub email: Option<String>,
    pub name: String,
    pub role: Role,
}

/// Per-agent settings the operator may change without touching the definition.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AgentSettings {
    pub provider: String,
    pub model: String,
    /// Seconds without an open turn after which the runtime is stopped.
    pub idle_timeout_secs: i64,
    pub keep_warm: bool,
    /// Hostnames the agent may reach through the egress proxy.
    pub allowed_hosts: Vec<String>,
    /// The tool policy an admin set. The engine gets it at launch and it replaces the
    /// policy in the agent's own config file; `None` leaves that file in charge.
    #[serde(default)]
    pub tools: Option<AgentToolPolicy>,
}

/// Tool-name patterns of an agent, where `*` matches any run of characters and case is
/// ignored. A tool is offered when it matches `allow` (or `allow` is empty) and no `deny`
/// pattern. A call of a tool matching `require_approval` waits for the user's approval.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct AgentToolPolicy {
    #[serde(default)]
    pub allow: Vec<String>,
    #[serde(default)]
    pub deny: Vec<String>,
    #[serde(default)]
    pub require_approval: Vec<String>,
}

impl Default for AgentSettings {
    fn default() -> Self {
        Self {
            provider: "anthropic".to_owned(),
            model: "claude-sonnet-4-5".to_owned(),
            idle_timeout_secs: 120,
            keep_warm: false,
            allowed_hosts: Vec::new(),
            tools: None,
        }
    }
}

/// An agent of a workspace.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Agent {
    pub id: AgentId,
    pub workspace_id: WorkspaceId,
    pub slug: String,
    pub name: String,
    pub description: String,
    pub icon: Option<String>,
    pub category: Option<String>,
    /// The Houston definition (`houston.json`).
    pub definition: serde_json::Value,
    /// The persona and instructions (`CLAUDE.md`).
    pub instructions: String,
    pub settings: AgentSettings,
    pub created_at: OffsetDateTime,
    pub updated_at: OffsetDateTime,
}

/// Fields of a new agent.
#[derive(Debug, Clone)]
pub struct NewAgent {
    pub workspace_id: WorkspaceId,
    pub slug: String,
    pub name: String,
    pub description: String,
    pub icon: Option<String>,
    pub category: Option<String>,
    pub definition: serde_json::Value,
    pub instructions: String,
    pub settings: AgentSettings,
}

/// Changes to an agent; `None` leaves a field as it is.
#[derive(Debug, Clone, Default)]
pub struct AgentUpdate {
    pub name: Option<String>,
    pub settings: Option<AgentSettings>,
}

/// Whether a user may use an agent, as stored.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct AgentAccess {
    /// The user's role in the agent's workspace, `None` when not a member.
    pub role: Option<Role>,
    /// Whether a grant (user, agent) exists.
    pub granted: bool,
}

impl AgentAccess {
    /// Owners and admins may use every agent of their workspace, members only granted ones.
    #[must_use]
    pub fn allowed(self) -> bool {
        match self.role {
            Some(role) if role.is_admin() => true,
            Some(Role::Member) => self.granted,
            _ => false,
        }
    }
}

/// A grant: the user may use the agent.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Grant {
    pub user_id: UserId,
    pub agent_id: AgentId,
    pub workspace_id: WorkspaceId,
    pub created_at: OffsetDateTime,
}

/// A stored refresh token; only its SHA-256 hash is kept.
#[derive(Debug, Clone)]
pub struct NewRefreshToken {
    pub token_hash: String,
    /// Tokens rotated from one login share a family, so reuse of an old one revokes all.
    pub family_id: String,
    pub user_id: UserId,
    pub expires_at: OffsetDateTime,
}

/// The result of presenting a refresh token.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RefreshOutcome {
    /// The token was valid and is now used up.
    Rotated { user_id: UserId, family_id: String },
    /// The token had been used or revoked before: its whole family is now revoked.
    Reused { family_id: String },
    /// Unknown or expired.
    Invalid,
}

/// An invitation to join a workspace; only the token's hash is kept.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Invitation {
    pub id: String,
    pub workspace_id: WorkspaceId,
    pub email: String,
    pub role: Role,
    pub token_hash: String,
    pub created_by: Option<UserId>,
    pub expires_at: OffsetDateTime,
}

/// One audit log entry; `id` makes inserting it idempotent.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct AuditEntry {
    pub id: String,
    #[serde(with = "time::serde::rfc3339")]
    pub at: OffsetDateTime,
    pub workspace_id: Option<WorkspaceId>,
    pub actor_user_id: Option<UserId>,
    pub action: String,
    pub agent_id: Option<AgentId>,
    pub target: Option<String>,
    /// `allowed` or `denied` for authorization decisions, `None` for changes.
    pub decision: Option<String>,
    pub details: serde_json::Value,
}

/// Filter for listing the audit log of a workspace, newest first.
#[derive(Debug, Clone, Default)]
pub struct AuditFilter {
    pub action: Option<String>,
    pub user_id: Option<UserId>,
    pub agent_id: Option<AgentId>,
    /// Only entries strictly older than this.
    pub before: Option<OffsetDateTime>,
    pub limit: i64,
}

/// One usage event; `id` makes inserting it idempotent.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct UsageEvent {
    pub id: String,
    #[serde(with = "time::serde::rfc3339")]
    pub at: OffsetDateTime,
    pub workspace_id: WorkspaceId,
    pub agent_id: AgentId,
    pub user_id: UserId,
    pub messages: i64,
    pub input_tokens: i64,
    pub output_tokens: i64,
    pub wake_ups: i64,
    pub runtime_seconds: i64,
}

/// How usage is grouped in a report.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum UsageGrouping {
    Day,
    Agent,
    User,
}

/// One row of a usage report: sums for one day, agent or user.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct UsageRow {
    pub key: String,
    pub messages: i64,
    pub input_tokens: i64,
    pub output_tokens: i64,
    pub wake_ups: i64,
    pub runtime_seconds: i64,
}

/// A chat session as listed to its user; the conversation itself lives on the agent volume.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct SessionRecord {
    pub session_id: SessionId,
    pub agent_id: AgentId,
    pub user_id: UserId,
    pub title: String,
    #[serde(with = "time::serde::rfc3339")]
    pub created_at: OffsetDateTime,
    #[serde(with = "time::serde::rfc3339")]
    pub updated_at: OffsetDateTime,
}

/// A signing key of the built-in issuer, shared by every replica through the store.
#[derive(Debug, Clone)]
pub struct SigningKeyRecord {
    pub kid: String,
    pub algorithm: String,
    /// PKCS#8 PEM of the private key. This is a secret.
    pub private_key_pem: String,
    pub created_at: OffsetDateTime,
}
