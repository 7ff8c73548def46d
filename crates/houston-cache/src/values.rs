//! Cached values and the lookup result shared by every cache.

use serde::{Deserialize, Serialize};

/// A user's role in a workspace.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Role {
    Owner,
    Admin,
    Member,
}

/// A cached authorization decision for one workspace, user and agent.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Permission {
    /// Whether the user may use the agent.
    pub allowed: bool,
    /// The user's role in the workspace, `None` when the user is not a member.
    pub role: Option<Role>,
}

impl Permission {
    /// A decision that lets a member with `role` use the agent.
    #[must_use]
    pub fn allowed(role: Role) -> Self {
        Self {
            allowed: true,
            role: Some(role),
        }
    }

    /// A decision that refuses the agent, keeping the role (if any) for the authorizer.
    #[must_use]
    pub fn denied(role: Option<Role>) -> Self {
        Self {
            allowed: false,
            role,
        }
    }
}

/// Endpoint of an agent's running runtime.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Route {
    /// The runtime's endpoint, for example `unix:/run/houston/hr.sock` or `tcp:10.0.0.7:8080`.
    pub endpoint: String,
    /// Generation of the runtime that listens there. It grows with every runtime start, so a
    /// caller can tell a route to a stopped runtime from the current one.
    pub generation: u64,
}

/// Result of a cache lookup.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Lookup<V> {
    /// The cached value.
    Hit(V),
    /// No usable entry. Read the database, then pass the value together with this ticket to
    /// `put`.
    Miss(Ticket),
}

impl<V> Lookup<V> {
    /// Returns the cached value, or `None` on a miss.
    pub fn hit(self) -> Option<V> {
        match self {
            Self::Hit(value) => Some(value),
            Self::Miss(_) => None,
        }
    }
}

/// Proof of when a miss happened.
///
/// A `put` with a ticket taken before an invalidation is dropped, so a database read that
/// started before a revoke can never put the old decision back into the cache.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Ticket {
    /// Invalidation generation of the local cache at the time of the miss.
    pub(crate) local_generation: u64,
    /// Version of the workspace's entries in Redis at the time of the miss, `None` when Redis
    /// was not consulted.
    pub(crate) remote_version: Option<String>,
}
