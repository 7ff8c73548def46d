//! Raw rows as the SQL returns them, and their conversion into the public records.
//!
//! The rows hold only types both databases decode the same way (text, 64-bit integers,
//! booleans), which is what lets one set of queries serve Postgres and SQLite.

use houston_protocol::{AgentId, SessionId, UserId};
use time::OffsetDateTime;

use crate::{
    Agent, AgentSettings, AuditEntry, Grant, Invitation, Member, Role, SessionRecord, SigningKeyRecord, StoreError, StoreResult,
    User, Workspace,
};

/// Returns the current time in Unix milliseconds, the unit of every stored time.
pub(crate) fn now_ms() -> i64 {
    to_ms(OffsetDateTime::now_utc())
}

pub(crate) fn to_ms(at: OffsetDateTime) -> i64 {
    i64::try_from(at.unix_timestamp_nanos() / 1_000_000).unwrap_or(i64::MAX)
}

pub(crate) fn from_ms(ms: i64) -> StoreResult<OffsetDateTime> {
    OffsetDateTime::from_unix_timestamp_nanos(i128::from(ms) * 1_000_000)
        .map_err(|error| StoreError::Corrupt(format!("timestamp {ms}: {error}")))
}

fn parse_id<T: std::str::FromStr<Err = houston_protocol::IdError>>(value: String, column: &str) -> StoreResult<T> {
    value.parse().map_err(|error| StoreError::Corrupt(format!("{column} {value:?}: {error}")))
}

fn parse_role(value: &str) -> StoreResult<Role> {
    Role::parse(value).ok_or_else(|| StoreError::Corrupt(format!("role {value:?}")))
}

fn parse_json(value: &str, column: &str) -> StoreResult<serde_json::Value> {
    parse_json_as(value, column)
}

fn parse_json_as<T: serde::de::DeserializeOwned>(value: &str, column: &str) -> StoreResult<T> {
    serde_json::from_str(value).map_err(|error| StoreError::Corrupt(format!("{column}: {error}")))
}

#[derive(sqlx::FromRow)]
pub(crate) struct WorkspaceRow {
    id: String,
    slug: String,
    name: String,
    created_at: i64,
}

impl WorkspaceRow {
    pub(crate) fn into_record(self) -> StoreResult<Workspace> {
        Ok(Workspace { id: parse_id(self.id, "workspaces.id")?, slug: self.slug, name: self.name, created_at: from_ms(self.created_at)? })
    }
}

#[derive(sqlx::FromRow)]
pub(crate) struct WorkspaceRoleRow {
    #[sqlx(flatten)]
    workspace: WorkspaceRow,
    role: String,
}

impl WorkspaceRoleRow {
    pub(crate) fn into_record(self) -> StoreResult<crate::WorkspaceMembership> {
        Ok(crate::WorkspaceMembership { role: parse_role(&self.role)?, workspace: self.workspace.into_record()? })
    }
}

#[derive(sqlx::FromRow)]
pub(crate) struct UserRow {
    id: String,
    email: Option<String>,
    name: String,
    password_hash: Option<String>,
    external_issuer: Option<String>,
    external_subject: Option<String>,
    created_at: i64,
}

impl UserRow {
    pub(crate) fn into_record(self) -> StoreResult<User> {
        Ok(User {
            id: parse_id(self.id, "users.id")?,
            email: self.email,
            name: self.name,
            password_hash: self.password_hash,
            external_issuer: self.external_issuer,
            external_subject: self.external_subject,
            created_at: from_ms(self.created_at)?,
        })
    }
}

#[derive(sqlx::FromRow)]
pub(crate) struct MemberRow {
    user_id: String,
    email: Option<String>,
    name: String,
    role: String,
}

impl MemberRow {
    pub(crate) fn into_record(self) -> StoreResult<Member> {
        Ok(Member { user_id: parse_id(self.user_id, "memberships.user_id")?, email: self.email, name: self.name, role: parse_role(&self.role)? })
    }
}

/// Encodes an agent's tool policy for the `tool_policy` column (`NULL` when unset).
pub(crate) fn tool_policy_text(policy: Option<&crate::AgentToolPolicy>) -> Option<String> {
    policy.map(|policy| serde_json::to_string(policy).unwrap_or_else(|_| "{}".to_owned()))
}

#[derive(sqlx::FromRow)]
pub(crate) struct AgentRow {
    id: String,
    workspace_id: String,
    slug: String,
    name: String,
    description: String,
    icon: Option<String>,
    category: Option<String>,
    definition: String,
    instructions: String,
    provider: String,
    model: String,
    idle_timeout_secs: i64,
    keep_warm: bool,
    allowed_hosts: String,
    tool_policy: Option<String>,
    created_at: i64,
    updated_at: i64,
}

impl AgentRow {
    pub(crate) fn into_record(self) -> StoreResult<Agent> {
        let allowed_hosts: Vec<String> = serde_json::from_str(&self.allowed_hosts)
            .map_err(|error| StoreError::Corrupt(format!("agents.allowed_hosts: {error}")))?;
        let tools = match &self.tool_policy {
            Some(text) => Some(parse_json_as(text, "agents.tool_policy")?),
            None => None,
        };
        Ok(Agent {
            id: parse_id(self.id, "agents.id")?,
            workspace_id: parse_id(self.workspace_id, "agents.workspace_id")?,
            slug: self.slug,
            name: self.name,
            description: self.description,
            icon: self.icon,
            category: self.category,
            definition: parse_json(&self.definition, "agents.definition")?,
            instructions: self.instructions,
            settings: AgentSettings {
                provider: self.provider,
                model: self.model,
                idle_timeout_secs: self.idle_timeout_secs,
                keep_warm: self.keep_warm,
                allowed_hosts,
                tools,
            },
            created_at: from_ms(self.created_at)?,
            updated_at: from_ms(self.updated_at)?,
        })
    }
}

#[derive(sqlx::FromRow)]
pub(crate) struct GrantRow {
    user_id: String,
    agent_id: String,
    workspace_id: String,
    created_at: i64,
}

impl GrantRow {
    pub(crate) fn into_record(self) -> StoreResult<Grant> {
        Ok(Grant {
            user_id: parse_id(self.user_id, "grants.user_id")?,
            agent_id: parse_id(self.agent_id, "grants.agent_id")?,
            workspace_id: parse_id(self.workspace_id, "grants.workspace_id")?,
            created_at: from_ms(self.created_at)?,
        })
    }
}

#[derive(sqlx::FromRow)]
pub(crate) struct AccessRow {
    pub(crate) role: Option<String>,
    pub(crate) granted: bool,
}

impl AccessRow {
    pub(crate) fn into_record(self) -> StoreResult<crate::AgentAccess> {
        let role = self.role.as_deref().map(parse_role).transpose()?;
        Ok(crate::AgentAccess { role, granted: self.granted })
    }
}

#[derive(sqlx::FromRow)]
pub(crate) struct RefreshStateRow {
    pub(crate) family_id: String,
    pub(crate) used_at: Option<i64>,
    pub(crate) revoked_at: Option<i64>,
}

#[derive(sqlx::FromRow)]
pub(crate) struct RotatedRow {
    pub(crate) user_id: String,
    pub(crate) family_id: String,
}

impl RotatedRow {
    pub(crate) fn user_id(&self) -> StoreResult<UserId> {
        parse_id(self.user_id.clone(), "refresh_tokens.user_id")
    }
}

#[derive(sqlx::FromRow)]
pub(crate) struct InvitationRow {
    id: String,
    workspace_id: String,
    email: String,
    role: String,
    token_hash: String,
    created_by: Option<String>,
    expires_at: i64,
}

impl InvitationRow {
    pub(crate) fn into_record(self) -> StoreResult<Invitation> {
        Ok(Invitation {
            id: self.id,
            workspace_id: parse_id(self.workspace_id, "invitations.workspace_id")?,
            email: self.email,
            role: parse_role(&self.role)?,
            token_hash: self.token_hash,
            created_by: self.created_by.map(|id| parse_id(id, "invitations.created_by")).transpose()?,
            expires_at: from_ms(self.expires_at)?,
        })
    }
}

#[derive(sqlx::FromRow)]
pub(crate) struct AuditRow {
    id: String,
    at: i64,
    workspace_id: Option<String>,
    actor_user_id: Option<String>,
    action: String,
    agent_id: Option<String>,
    target: Option<String>,
    decision: Option<String>,
    details: String,
}

impl AuditRow {
    pub(crate) fn into_record(self) -> StoreResult<AuditEntry> {
        Ok(AuditEntry {
            id: self.id,
            at: from_ms(self.at)?,
            workspace_id: self.workspace_id.map(|id| parse_id(id, "audit_log.workspace_id")).transpose()?,
            actor_user_id: self.actor_user_id.map(|id| parse_id(id, "audit_log.actor_user_id")).transpose()?,
            action: self.action,
            agent_id: self.agent_id.map(|id| parse_id(id, "audit_log.agent_id")).transpose()?,
            target: self.target,
            decision: self.decision,
            details: parse_json(&self.details, "audit_log.details")?,
        })
    }
}

#[derive(sqlx::FromRow)]
pub(crate) struct UsageRowRaw {
    key: String,
    messages: i64,
    input_tokens: i64,
    output_tokens: i64,
    wake_ups: i64,
    runtime_seconds: i64,
}

impl UsageRowRaw {
    pub(crate) fn into_record(self) -> crate::UsageRow {
        crate::UsageRow {
            key: self.key,
            messages: self.messages,
            input_tokens: self.input_tokens,
            output_tokens: self.output_tokens,
            wake_ups: self.wake_ups,
            runtime_seconds: self.runtime_seconds,
        }
    }
}

#[derive(sqlx::FromRow)]
pub(crate) struct SessionRow {
    agent_id: String,
    session_id: String,
    user_id: String,
    title: String,
    created_at: i64,
    updated_at: i64,
}

impl SessionRow {
    pub(crate) fn into_record(self) -> StoreResult<SessionRecord> {
        Ok(SessionRecord {
            session_id: parse_id::<SessionId>(self.session_id, "sessions.session_id")?,
            agent_id: parse_id::<AgentId>(self.agent_id, "sessions.agent_id")?,
            user_id: parse_id::<UserId>(self.user_id, "sessions.user_id")?,
            title: self.title,
            created_at: from_ms(self.created_at)?,
            updated_at: from_ms(self.updated_at)?,
        })
    }
}

#[derive(sqlx::FromRow)]
pub(crate) struct SigningKeyRow {
    kid: String,
    algorithm: String,
    private_key_pem: String,
    created_at: i64,
}

impl SigningKeyRow {
    pub(crate) fn into_record(self) -> StoreResult<SigningKeyRecord> {
        Ok(SigningKeyRecord { kid: self.kid, algorithm: self.algorithm, private_key_pem: self.private_key_pem, created_at: from_ms(self.created_at)? })
    }
}

/// Converts a vector of rows, stopping at the first corrupt one.
pub(crate) fn convert<R, T>(rows: Vec<R>, into: impl Fn(R) -> StoreResult<T>) -> StoreResult<Vec<T>> {
    rows.into_iter().map(into).collect()
}
