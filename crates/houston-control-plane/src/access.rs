//! Authorization of a caller on an agent: resolve the id or slug, check the grant (cache
//! first, store behind), and audit the decision.
//!
//! An agent the caller may not use and an unknown agent give the same [`ApiError::AgentNotFound`],
//! so a caller never learns that an agent exists in a workspace he cannot use.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

use houston_cache::{Lookup, Permission, PermissionKey, PermissionScope};
use houston_protocol::{AgentId, UserId, WorkspaceId};
use houston_store::{Agent, AuditEntry, Role, WorkspaceMembership};
use time::OffsetDateTime;

use crate::auth::AuthenticatedUser;
use crate::error::ApiError;
use crate::state::ControlPlane;

/// How long this replica keeps agent records and membership lists. They only locate an
/// agent; the permission check that follows is what invalidation keeps exact, so a stale
/// entry can at worst point at an agent the caller is then refused.
const LOOKUP_TTL: Duration = Duration::from_secs(4);
const LOOKUP_CAPACITY: usize = 20_000;

/// A user's workspaces with the user's role in each.
type Memberships = Arc<Vec<WorkspaceMembership>>;

/// Short-lived copies of agent records and of each user's workspaces.
#[derive(Default)]
pub(crate) struct LookupCache {
    agents: Mutex<HashMap<AgentId, (Instant, Arc<Agent>)>>,
    slugs: Mutex<HashMap<(WorkspaceId, String), (Instant, AgentId)>>,
    workspaces: Mutex<HashMap<UserId, (Instant, Memberships)>>,
}

fn fresh<K: std::hash::Hash + Eq, V: Clone>(map: &Mutex<HashMap<K, (Instant, V)>>, key: &K) -> Option<V> {
    let map = map.lock().unwrap_or_else(PoisonError::into_inner);
    map.get(key).filter(|(at, _)| at.elapsed() < LOOKUP_TTL).map(|(_, value)| value.clone())
}

fn remember<K: std::hash::Hash + Eq, V>(map: &Mutex<HashMap<K, (Instant, V)>>, key: K, value: V) {
    let mut map = map.lock().unwrap_or_else(PoisonError::into_inner);
    if map.len() >= LOOKUP_CAPACITY {
        map.retain(|_, (at, _)| at.elapsed() < LOOKUP_TTL);
    }
    if map.len() >= LOOKUP_CAPACITY {
        map.clear();
    }
    map.insert(key, (Instant::now(), value));
}

impl LookupCache {
    /// Drops this replica's copy of an agent after it was changed or deleted here.
    pub(crate) fn forget_agent(&self, agent: &Agent) {
        self.agents.lock().unwrap_or_else(PoisonError::into_inner).remove(&agent.id);
        self.slugs.lock().unwrap_or_else(PoisonError::into_inner).remove(&(agent.workspace_id.clone(), agent.slug.clone()));
    }

    /// Drops this replica's copy of a user's workspaces after a membership change here.
    pub(crate) fn forget_user(&self, user: &UserId) {
        self.workspaces.lock().unwrap_or_else(PoisonError::into_inner).remove(user);
    }
}

/// Converts a store role into the cache's role type.
pub(crate) fn cache_role(role: Role) -> houston_cache::Role {
    match role {
        Role::Owner => houston_cache::Role::Owner,
        Role::Admin => houston_cache::Role::Admin,
        Role::Member => houston_cache::Role::Member,
    }
}

impl ControlPlane {
    /// Resolves `agent` (an id, or a slug among the caller's workspaces), checks that the
    /// caller may use it and writes the audit entry for the decision under `action`.
    ///
    /// # Errors
    /// [`ApiError::AgentNotFound`] for an unknown agent and for one the caller may not use,
    /// alike; [`ApiError::Internal`] when the store fails.
    pub async fn authorize_agent(&self, caller: &AuthenticatedUser, agent: &str, action: &'static str) -> Result<Arc<Agent>, ApiError> {
        let Some(found) = self.find_agent(&caller.user_id, agent).await? else {
            self.audit_decision(caller, None, None, agent, action, false);
            return Err(ApiError::AgentNotFound);
        };
        let permission = self.permission(&caller.user_id, &found).await?;
        self.audit_decision(caller, Some(&found.workspace_id), Some(&found.id), agent, action, permission.allowed);
        if !permission.allowed {
            tracing::info!(user.id = %caller.user_id, agent.id = %found.id, action, "denied access to an agent");
            return Err(ApiError::AgentNotFound);
        }
        Ok(found)
    }

    /// Returns the cached decision, reading the store on a miss.
    pub(crate) async fn permission(&self, user: &UserId, agent: &Agent) -> Result<Permission, ApiError> {
        let key = PermissionKey::new(agent.workspace_id.clone(), user.clone(), agent.id.clone());
        let ticket = match self.caches.permissions.get(&key).await {
            Lookup::Hit(permission) => return Ok(permission),
            Lookup::Miss(ticket) => ticket,
        };
        let access = self.store.agent_access(user, &agent.id).await?;
        let role = access.role.map(cache_role);
        let permission = if access.allowed() { Permission { allowed: true, role } } else { Permission::denied(role) };
        self.caches.permissions.put(&key, permission, ticket).await;
        Ok(permission)
    }

    /// Drops cached decisions on every replica after a committed change.
    pub(crate) async fn invalidate(&self, scope: PermissionScope) {
        self.caches.permissions.invalidate(&scope).await;
    }

    async fn find_agent(&self, user: &UserId, reference: &str) -> Result<Option<Arc<Agent>>, ApiError> {
        // Anything that is not id-shaped can be neither an id nor a slug.
        let Ok(id) = AgentId::parse(reference) else {
            return Ok(None);
        };
        if let Some(agent) = self.agent_by_id(&id).await? {
            return Ok(Some(agent));
        }
        for membership in self.user_workspaces(user).await?.iter() {
            let slug_key = (membership.workspace.id.clone(), reference.to_owned());
            let agent_id = match fresh(&self.lookups.slugs, &slug_key) {
                Some(agent_id) => agent_id,
                None => match self.store.get_agent_by_slug(&membership.workspace.id, reference).await? {
                    Some(agent) => {
                        let agent = Arc::new(agent);
                        remember(&self.lookups.slugs, slug_key, agent.id.clone());
                        remember(&self.lookups.agents, agent.id.clone(), agent.clone());
                        return Ok(Some(agent));
                    }
                    None => continue,
                },
            };
            if let Some(agent) = self.agent_by_id(&agent_id).await? {
                return Ok(Some(agent));
            }
        }
        Ok(None)
    }

    async fn agent_by_id(&self, id: &AgentId) -> Result<Option<Arc<Agent>>, ApiError> {
        if let Some(agent) = fresh(&self.lookups.agents, id) {
            return Ok(Some(agent));
        }
        let Some(agent) = self.store.get_agent(id).await? else {
            return Ok(None);
        };
        let agent = Arc::new(agent);
        remember(&self.lookups.agents, id.clone(), agent.clone());
        Ok(Some(agent))
    }

    /// Returns the user's workspaces and roles, from a copy at most a few seconds old.
    pub(crate) async fn user_workspaces(&self, user: &UserId) -> Result<Memberships, ApiError> {
        if let Some(workspaces) = fresh(&self.lookups.workspaces, user) {
            return Ok(workspaces);
        }
        let workspaces = Arc::new(self.store.list_user_workspaces(user).await?);
        remember(&self.lookups.workspaces, user.clone(), workspaces.clone());
        Ok(workspaces)
    }

    fn audit_decision(
        &self,
        caller: &AuthenticatedUser,
        workspace: Option<&WorkspaceId>,
        agent: Option<&AgentId>,
        reference: &str,
        action: &'static str,
        allowed: bool,
    ) {
        self.record_audit(AuditEntry {
            id: uuid::Uuid::now_v7().to_string(),
            at: OffsetDateTime::now_utc(),
            workspace_id: workspace.cloned(),
            actor_user_id: Some(caller.user_id.clone()),
            action: action.to_owned(),
            agent_id: agent.cloned(),
            target: Some(reference.chars().take(128).collect()),
            decision: Some(if allowed { "allowed" } else { "denied" }.to_owned()),
            details: serde_json::Value::Null,
        });
    }
}
