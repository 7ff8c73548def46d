//! In-process caches for `houston up`, where one process is the only replica.

use async_trait::async_trait;

use crate::config::{CacheConfig, ConfigError};
use crate::keys::{PermissionKey, PermissionScope, RouteKey};
use crate::local::LocalStore;
use crate::traits::{PermissionCache, RoutingCache};
use crate::values::{Lookup, Permission, Route, Ticket};

/// Permission and routing caches that live in this process only.
///
/// Invalidations take effect at once because every reader shares the same map.
pub struct InProcessCache {
    config: CacheConfig,
    permissions: LocalStore<PermissionKey, Permission>,
    routes: LocalStore<RouteKey, Route>,
}

impl InProcessCache {
    /// Creates empty caches.
    ///
    /// # Errors
    /// Returns [`ConfigError`] when a setting is out of range.
    pub fn new(config: CacheConfig) -> Result<Self, ConfigError> {
        config.validate()?;
        Ok(Self {
            permissions: LocalStore::new(config.local_capacity),
            routes: LocalStore::new(config.local_capacity),
            config,
        })
    }
}

fn lookup<K, V>(store: &LocalStore<K, V>, key: &K) -> Lookup<V>
where
    K: std::hash::Hash + Eq + Clone,
    V: Clone,
{
    // The generation is read before the lookup so an invalidation between the two
    // invalidates the ticket as well.
    let local_generation = store.generation();
    match store.get(key) {
        Some(value) => Lookup::Hit(value),
        None => Lookup::Miss(Ticket {
            local_generation,
            remote_version: None,
        }),
    }
}

#[async_trait]
impl PermissionCache for InProcessCache {
    async fn get(&self, key: &PermissionKey) -> Lookup<Permission> {
        lookup(&self.permissions, key)
    }

    async fn put(&self, key: &PermissionKey, permission: Permission, ticket: Ticket) {
        self.permissions.insert(
            key.clone(),
            permission,
            self.config.ttl,
            ticket.local_generation,
        );
    }

    async fn invalidate(&self, scope: &PermissionScope) {
        self.permissions.remove_matching(|key| scope.matches(key));
    }
}

#[async_trait]
impl RoutingCache for InProcessCache {
    async fn get(&self, key: &RouteKey) -> Lookup<Route> {
        lookup(&self.routes, key)
    }

    async fn put(&self, key: &RouteKey, route: Route, ticket: Ticket) {
        self.routes
            .insert(key.clone(), route, self.config.ttl, ticket.local_generation);
    }

    async fn invalidate(&self, key: &RouteKey) {
        self.routes.remove_matching(|candidate| candidate == key);
    }
}
