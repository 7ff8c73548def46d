//! Administration of a workspace, for its owners and admins: members and invitations,
//! agents, grants, the audit log and usage.
//!
//! Every change is committed to the store first, then the affected cache entries are
//! invalidated on every replica, then the change is audited.

mod agents;
mod grants;
mod members;
mod records;
mod tool_policy;

pub use agents::*;
pub use grants::*;
pub use members::*;
pub use records::*;
pub use tool_policy::ToolPolicyView;

use houston_protocol::{AgentId, UserId, WorkspaceId};
use houston_store::{AuditEntry, Role, Workspace};
use time::OffsetDateTime;

use crate::auth::AuthenticatedUser;
use crate::error::ApiError;
use crate::state::ControlPlane;

/// The workspace of an admin request and the caller's role in it.
pub(crate) struct AdminContext {
    pub workspace: Workspace,
    pub role: Role,
}

/// Resolves `{workspace}` (id or slug) and checks that the caller administers it. A
/// workspace the caller is not a member of answers like an unknown one.
pub(crate) async fn admin_context(state: &ControlPlane, caller: &AuthenticatedUser, reference: &str) -> Result<AdminContext, ApiError> {
    let not_found = ApiError::NotFound("workspace");
    let Ok(id) = WorkspaceId::parse(reference) else {
        return Err(not_found);
    };
    let workspace = match state.store.get_workspace(&id).await? {
        Some(workspace) => workspace,
        None => state.store.get_workspace_by_slug(reference).await?.ok_or(not_found)?,
    };
    let Some(role) = state.store.get_membership(&workspace.id, &caller.user_id).await? else {
        return Err(ApiError::NotFound("workspace"));
    };
    if !role.is_admin() {
        return Err(ApiError::Forbidden("only owners and admins of the workspace may do this"));
    }
    Ok(AdminContext { workspace, role })
}

/// Queues the audit entry of an admin change.
pub(crate) fn audit_change(
    state: &ControlPlane,
    caller: &AuthenticatedUser,
    workspace: &WorkspaceId,
    action: &str,
    agent: Option<&AgentId>,
    target: Option<String>,
    details: serde_json::Value,
) {
    state.record_audit(AuditEntry {
        id: uuid::Uuid::now_v7().to_string(),
        at: OffsetDateTime::now_utc(),
        workspace_id: Some(workspace.clone()),
        actor_user_id: Some(caller.user_id.clone()),
        action: action.to_owned(),
        agent_id: agent.cloned(),
        target,
        decision: None,
        details,
    });
}

/// Parses a role name, recording a field error when invalid.
pub(crate) fn parse_role(fields: &mut crate::error::FieldErrors, field: &str, value: Option<&str>) -> Option<Role> {
    match value {
        None => {
            fields.add(field, "is missing");
            None
        }
        Some(text) => {
            let role = Role::parse(text);
            if role.is_none() {
                fields.add(field, format!("{text:?} is not one of owner, admin, member"));
            }
            role
        }
    }
}

/// Parses a user id from the path, returning 404 for a malformed one.
pub(crate) fn parse_user_id(value: &str) -> Result<UserId, ApiError> {
    UserId::parse(value).map_err(|_| ApiError::NotFound("member"))
}
