//! The cache interfaces the control plane codes against.

use async_trait::async_trait;

use crate::keys::{PermissionKey, PermissionScope, RouteKey};
use crate::values::{Lookup, Permission, Route, Ticket};

/// Cache of authorization decisions, keyed by workspace, user and agent.
///
/// Reads never fail: an unreachable backend is reported as a [`Lookup::Miss`] and the caller
/// reads the database. Writes and invalidations never fail either; the backend logs what it
/// could not do, and entries it could not drop expire within the configured TTL.
#[async_trait]
pub trait PermissionCache: Send + Sync {
    /// Looks up the decision for `key`.
    async fn get(&self, key: &PermissionKey) -> Lookup<Permission>;

    /// Stores the decision read from the database after a miss. The value is dropped when an
    /// invalidation happened since `ticket` was issued.
    async fn put(&self, key: &PermissionKey, permission: Permission, ticket: Ticket);

    /// Drops every entry in `scope` on every replica. Call it after the database change
    /// (grant, revoke, role change, membership or agent removal) is committed.
    async fn invalidate(&self, scope: &PermissionScope);
}

/// Cache of agent routes: where an agent's runtime listens.
///
/// Reads, writes and invalidations never fail, as for [`PermissionCache`].
#[async_trait]
pub trait RoutingCache: Send + Sync {
    /// Looks up the route for `key`.
    async fn get(&self, key: &RouteKey) -> Lookup<Route>;

    /// Stores the route read from the runtime manager after a miss. The value is dropped when
    /// an invalidation happened since `ticket` was issued.
    async fn put(&self, key: &RouteKey, route: Route, ticket: Ticket);

    /// Drops the route for `key` on every replica. Call it when the runtime stops or moves.
    async fn invalidate(&self, key: &RouteKey);
}
