//! Permission and routing caches, rate limits and the client address behind proxies, in
//! Redis (a fleet of control plane replicas) or in process (`houston up`).
//!
//! # Using the caches
//!
//! Build a [`Caches`] once at start and share it. Every cache follows the same three steps:
//!
//! ```
//! # use houston_cache::{Caches, CacheConfig, Lookup, Permission, PermissionKey, PermissionScope, Role};
//! # use houston_protocol::{AgentId, UserId, WorkspaceId};
//! # async fn read_grant_from_database() -> Permission { Permission::allowed(Role::Member) }
//! # async fn demo() {
//! let caches = Caches::in_process(CacheConfig::default()).unwrap();
//! let key = PermissionKey::new(
//!     WorkspaceId::parse("acme").unwrap(),
//!     UserId::parse("juan").unwrap(),
//!     AgentId::parse("hr").unwrap(),
//! );
//!
//! // 1. Ask the cache; on a miss read the database and put the answer with the ticket.
//! let permission = match caches.permissions.get(&key).await {
//!     Lookup::Hit(permission) => permission,
//!     Lookup::Miss(ticket) => {
//!         let permission = read_grant_from_database().await;
//!         caches.permissions.put(&key, permission, ticket).await;
//!         permission
//!     }
//! };
//! assert!(permission.allowed);
//!
//! // 2. After committing a revoke or a role change, invalidate on every replica.
//! caches.permissions.invalidate(&PermissionScope::grant(
//!     key.workspace.clone(), key.user.clone(), key.agent.clone(),
//! )).await;
//! assert!(caches.permissions.get(&key).await.hit().is_none());
//! # }
//! ```
//!
//! The [`Ticket`] makes the miss path race-free: a `put` whose database read started before
//! an invalidation is dropped instead of caching the old answer.
//!
//! # Staleness bound
//!
//! Every entry lives at most [`CacheConfig::ttl`] (default 4 s, at most 4 s) after the `put`
//! that stored it, in Redis and in each replica's local copy alike: a local copy never
//! outlives the Redis entry it came from. An invalidation normally reaches every replica
//! within milliseconds through Redis pub/sub. When it is lost (Redis restart, partition, a
//! paused subscriber), a stale entry is still gone at most `ttl` after its `put`, which
//! follows the database read by the few milliseconds of that read: under 5 s in total.
//!
//! # When Redis is down
//!
//! Invalidations cannot reach this replica while its subscription is down, so the Redis
//! caches stop serving local copies and every lookup is a miss (the caller reads the
//! database, which is slower). Commands are sent with a short timeout and skipped entirely
//! once the outage is known, so no request stalls on Redis. Rate limits fall back to a
//! per-process limiter, which makes the fleet-wide limit per replica for the duration. The
//! outage is logged once (warn) and the recovery once (info). After a reconnect the replica
//! subscribes again and drops every local entry, because it may have missed invalidations.
//!
//! # Client addresses
//!
//! [`client_ip::TrustedProxies`] turns the TCP peer and `X-Forwarded-For` into the client
//! address, believing the header only from configured proxies.

pub mod client_ip;
pub mod config;
pub mod keys;
pub mod memory;
pub mod rate_limit;
pub mod redis;
pub mod traits;
pub mod values;

mod local;

use std::sync::Arc;

pub use config::{CacheConfig, ConfigError};
pub use keys::{PermissionKey, PermissionScope, RouteKey};
pub use memory::InProcessCache;
pub use rate_limit::{
    InProcessRateLimiter, Quota, QuotaError, RateDecision, RateLimitKey, RateLimiter, Subject,
};
pub use redis::{RedisCaches, RedisConfig, RedisError};
pub use traits::{PermissionCache, RoutingCache};
pub use values::{Lookup, Permission, Role, Route, Ticket};

/// The caches and the rate limiter of one control plane replica.
#[derive(Clone)]
pub struct Caches {
    pub permissions: Arc<dyn PermissionCache>,
    pub routes: Arc<dyn RoutingCache>,
    pub rate_limiter: Arc<dyn RateLimiter>,
}

impl Caches {
    /// Creates in-process caches and an in-process rate limiter, for a single replica.
    ///
    /// # Errors
    /// Returns [`ConfigError`] when a setting is out of range.
    pub fn in_process(config: CacheConfig) -> Result<Self, ConfigError> {
        let cache = Arc::new(InProcessCache::new(config)?);
        Ok(Self {
            permissions: cache.clone(),
            routes: cache,
            rate_limiter: Arc::new(InProcessRateLimiter::new()),
        })
    }

    /// Creates Redis-backed caches and rate limiter, shared with every replica that uses the
    /// same Redis and key prefix. See [`RedisCaches::connect`].
    ///
    /// # Errors
    /// Returns [`RedisError`] for invalid settings; never for an unreachable Redis.
    pub async fn redis(config: RedisConfig) -> Result<Self, RedisError> {
        let caches = Arc::new(RedisCaches::connect(config).await?);
        Ok(Self {
            permissions: caches.clone(),
            routes: caches.clone(),
            rate_limiter: caches,
        })
    }
}
