//! Cache keys and invalidation scopes.
//!
//! Every permission key carries the workspace, the user and the agent, so an entry cached for
//! one combination is never returned for another. Ids cannot contain `:` (see
//! [`houston_protocol::ids::validate_id`]), so the `:`-joined Redis key of each combination is
//! unique.

use houston_protocol::{AgentId, UserId, WorkspaceId};
use serde::{Deserialize, Serialize};

/// Key of one permission decision: may `user` use `agent` in `workspace`?
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct PermissionKey {
    pub workspace: WorkspaceId,
    pub user: UserId,
    pub agent: AgentId,
}

impl PermissionKey {
    /// Creates the key for `user` using `agent` in `workspace`.
    #[must_use]
    pub fn new(workspace: WorkspaceId, user: UserId, agent: AgentId) -> Self {
        Self {
            workspace,
            user,
            agent,
        }
    }
}

/// Key of one agent's route. The workspace is part of the key so that a route is only ever
/// returned to a caller that already resolved the agent inside that workspace.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct RouteKey {
    pub workspace: WorkspaceId,
    pub agent: AgentId,
}

impl RouteKey {
    /// Creates the key of `agent`'s route in `workspace`.
    #[must_use]
    pub fn new(workspace: WorkspaceId, agent: AgentId) -> Self {
        Self { workspace, agent }
    }
}

/// Set of permission entries to drop: one workspace, narrowed to a user and/or an agent.
///
/// `None` matches every user or every agent of the workspace.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PermissionScope {
    pub workspace: WorkspaceId,
    pub user: Option<UserId>,
    pub agent: Option<AgentId>,
}

impl PermissionScope {
    /// Scope of one grant: after a grant or revoke of `agent` for `user`.
    #[must_use]
    pub fn grant(workspace: WorkspaceId, user: UserId, agent: AgentId) -> Self {
        Self {
            workspace,
            user: Some(user),
            agent: Some(agent),
        }
    }

    /// Scope of every entry of `user` in `workspace`: after a role change or a removed
    /// membership.
    #[must_use]
    pub fn user(workspace: WorkspaceId, user: UserId) -> Self {
        Self {
            workspace,
            user: Some(user),
            agent: None,
        }
    }

    /// Scope of every entry for `agent`: after the agent is deleted or moved.
    #[must_use]
    pub fn agent(workspace: WorkspaceId, agent: AgentId) -> Self {
        Self {
            workspace,
            user: None,
            agent: Some(agent),
        }
    }

    /// Scope of every entry of `workspace`.
    #[must_use]
    pub fn workspace(workspace: WorkspaceId) -> Self {
        Self {
            workspace,
            user: None,
            agent: None,
        }
    }

    /// Returns whether `key` falls inside this scope.
    #[must_use]
    pub fn matches(&self, key: &PermissionKey) -> bool {
        self.workspace == key.workspace
            && self.user.as_ref().is_none_or(|user| *user == key.user)
            && self.agent.as_ref().is_none_or(|agent| *agent == key.agent)
    }
}

/// Ways to turn a cache key into the parts of its Redis key.
pub(crate) trait RedisKeyParts {
    /// Workspace of the entry: entries are versioned per workspace.
    fn workspace(&self) -> &WorkspaceId;

    /// The rest of the key after the workspace and its version, starting with `:`.
    fn suffix(&self) -> String;
}

impl RedisKeyParts for PermissionKey {
    fn workspace(&self) -> &WorkspaceId {
        &self.workspace
    }

    fn suffix(&self) -> String {
        format!(":{}:{}", self.user, self.agent)
    }
}

impl RedisKeyParts for RouteKey {
    fn workspace(&self) -> &WorkspaceId {
        &self.workspace
    }

    fn suffix(&self) -> String {
        format!(":{}", self.agent)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key(workspace: &str, user: &str, agent: &str) -> PermissionKey {
        PermissionKey::new(
            WorkspaceId::parse(workspace).unwrap(),
            UserId::parse(user).unwrap(),
            AgentId::parse(agent).unwrap(),
        )
    }

    #[test]
    fn grant_scope_matches_only_its_triple() {
        let scope = PermissionScope::grant(
            WorkspaceId::parse("a").unwrap(),
            UserId::parse("u").unwrap(),
            AgentId::parse("x").unwrap(),
        );
        assert!(scope.matches(&key("a", "u", "x")));
        assert!(!scope.matches(&key("b", "u", "x")));
        assert!(!scope.matches(&key("a", "v", "x")));
        assert!(!scope.matches(&key("a", "u", "y")));
    }

    #[test]
    fn user_scope_matches_every_agent() {
        let scope = PermissionScope::user(
            WorkspaceId::parse("a").unwrap(),
            UserId::parse("u").unwrap(),
        );
        assert!(scope.matches(&key("a", "u", "x")));
        assert!(scope.matches(&key("a", "u", "y")));
        assert!(!scope.matches(&key("a", "v", "x")));
        assert!(!scope.matches(&key("b", "u", "x")));
    }

    #[test]
    fn agent_and_workspace_scopes() {
        let agent = PermissionScope::agent(
            WorkspaceId::parse("a").unwrap(),
            AgentId::parse("x").unwrap(),
        );
        assert!(agent.matches(&key("a", "v", "x")));
        assert!(!agent.matches(&key("a", "v", "y")));

        let workspace = PermissionScope::workspace(WorkspaceId::parse("a").unwrap());
        assert!(workspace.matches(&key("a", "v", "y")));
        assert!(!workspace.matches(&key("b", "v", "y")));
    }

    #[test]
    fn redis_suffixes_differ_per_user_and_agent() {
        assert_ne!(key("a", "u", "x").suffix(), key("a", "u", "y").suffix());
        assert_ne!(key("a", "u-x", "y").suffix(), key("a", "u", "x-y").suffix());
    }
}
