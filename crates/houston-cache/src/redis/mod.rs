//! Caches and rate limits shared by every control plane replica through Redis.
//!
//! Each replica keeps a local copy of the entries it read, in front of Redis, and subscribes
//! to one invalidation channel. See the crate documentation for the staleness bound and the
//! behaviour while Redis is down.

mod layered;
mod message;
mod rate_limit;
mod scripts;
mod shared;
mod supervisor;

use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use fred::prelude::{Builder, ClientLike, Config, ReconnectPolicy};
use secrecy::{ExposeSecret, SecretString};
use tokio::task::JoinHandle;

use self::layered::Layer;
use self::message::Invalidation;
use self::shared::Shared;
use crate::config::{CacheConfig, ConfigError};
use crate::keys::{PermissionKey, PermissionScope, RouteKey};
use crate::traits::{PermissionCache, RoutingCache};
use crate::values::{Lookup, Permission, Route, Ticket};

/// Default prefix of every Redis key and of the invalidation channel.
pub const DEFAULT_KEY_PREFIX: &str = "houston:";

/// Settings of the Redis caches.
#[derive(Debug, Clone)]
pub struct RedisConfig {
    /// Redis URL, for example `redis://127.0.0.1:6379` or `rediss://user:password@host/0`.
    pub url: SecretString,
    /// Prefix of every key and of the channel, so several deployments can share one Redis.
    /// Must not contain `{` or `}`, which Redis Cluster reads as a hash tag.
    pub key_prefix: String,
    /// Time limit of one Redis command. A lookup sends at most one command, so it never
    /// waits on Redis longer than this.
    pub command_timeout: Duration,
    /// Time limit of one connection attempt.
    pub connect_timeout: Duration,
    /// How often a replica checks whether Redis is back after an outage.
    pub probe_interval: Duration,
    /// TTL and local capacity of the caches.
    pub cache: CacheConfig,
}

impl RedisConfig {
    /// Settings with defaults for everything but the URL.
    #[must_use]
    pub fn new(url: SecretString) -> Self {
        Self {
            url,
            key_prefix: DEFAULT_KEY_PREFIX.to_owned(),
            command_timeout: Duration::from_millis(250),
            connect_timeout: Duration::from_secs(1),
            probe_interval: Duration::from_millis(500),
            cache: CacheConfig::default(),
        }
    }
}

/// Error creating the Redis caches. An unreachable Redis is not an error: the
/// caches start in the "down" state and connect when Redis comes up.
#[derive(Debug, thiserror::Error)]
pub enum RedisError {
    #[error(transparent)]
    Config(#[from] ConfigError),
    #[error("invalid Redis URL: {reason}")]
    Url { reason: String },
    #[error("invalid Redis key_prefix {0:?}: must not contain '{{' or '}}'")]
    KeyPrefix(String),
    #[error("invalid Redis {field} {value:?}: must be more than 0")]
    Duration {
        field: &'static str,
        value: Duration,
    },
    #[error("creating the Redis client failed: {0}")]
    Client(#[source] fred::error::Error),
}

/// Permission cache, routing cache and rate limiter of one replica, backed by Redis.
pub struct RedisCaches {
    shared: Arc<Shared>,
    supervisor: JoinHandle<()>,
}

impl RedisCaches {
    /// Connects to Redis and subscribes to the invalidation channel, waiting at most
    /// `connect_timeout` for Redis. When Redis is unreachable the caches start down (every
    /// lookup misses), log that once, and keep trying in the background.
    ///
    /// # Errors
    /// Returns [`RedisError`] for invalid settings; never for an unreachable Redis.
    pub async fn connect(config: RedisConfig) -> Result<Self, RedisError> {
        validate(&config)?;
        let builder = builder(&config)?;
        let client = builder.build().map_err(RedisError::Client)?;
        let subscriber = builder
            .build_subscriber_client()
            .map_err(RedisError::Client)?;
        client.connect();
        subscriber.connect();

        let wait = async {
            let _ = client.wait_for_connect().await;
            let _ = subscriber.wait_for_connect().await;
        };
        let _ = tokio::time::timeout(config.connect_timeout, wait).await;

        let shared = Arc::new(Shared::new(
            client,
            subscriber,
            config.key_prefix.clone(),
            config.cache.ttl,
            config.command_timeout,
            config.cache.local_capacity,
        ));
        let events = supervisor::Events::open(&shared);
        supervisor::recover(&shared).await;
        if !shared.is_up() {
            shared.mark_down(&"not connected within connect_timeout");
        }

        let task = supervisor::supervise(shared.clone(), events, config.probe_interval);
        let supervisor = tokio::spawn(task);
        Ok(Self { shared, supervisor })
    }

    /// Returns whether Redis is in use. While it is not, every lookup misses and rate limits
    /// are counted per replica.
    #[must_use]
    pub fn is_up(&self) -> bool {
        self.shared.is_up()
    }

    fn permissions(&self) -> Layer<'_, PermissionKey, Permission> {
        Layer {
            shared: &self.shared,
            kind: "perm",
            store: &self.shared.permissions,
        }
    }

    fn routes(&self) -> Layer<'_, RouteKey, Route> {
        Layer {
            shared: &self.shared,
            kind: "route",
            store: &self.shared.routes,
        }
    }
}

impl Drop for RedisCaches {
    fn drop(&mut self) {
        self.supervisor.abort();
        let client = self.shared.client.clone();
        let subscriber = self.shared.subscriber.clone();
        // The clients reconnect forever until they send QUIT.
        if let Ok(runtime) = tokio::runtime::Handle::try_current() {
            runtime.spawn(async move {
                let _ = client.quit().await;
                let _ = subscriber.quit().await;
            });
        }
    }
}

fn validate(config: &RedisConfig) -> Result<(), RedisError> {
    config.cache.validate()?;
    if config.key_prefix.contains(['{', '}']) {
        return Err(RedisError::KeyPrefix(config.key_prefix.clone()));
    }
    let durations = [
        ("command_timeout", config.command_timeout),
        ("connect_timeout", config.connect_timeout),
        ("probe_interval", config.probe_interval),
    ];
    for (field, value) in durations {
        if value.is_zero() {
            return Err(RedisError::Duration { field, value });
        }
    }
    Ok(())
}

fn builder(config: &RedisConfig) -> Result<Builder, RedisError> {
    // The fred error message may quote the URL, which can contain a password.
    let mut fred_config =
        Config::from_url(config.url.expose_secret()).map_err(|error| RedisError::Url {
            reason: format!(
                "parsing failed ({:?}); expected redis://[user:password@]host:port[/db]",
                error.kind()
            ),
        })?;
    // Start even when Redis is down; the reconnect policy keeps trying.
    fred_config.fail_fast = false;

    let mut builder = Builder::from_config(fred_config);
    builder
        .set_policy(ReconnectPolicy::new_exponential(0, 50, 1_000, 2))
        .with_connection_config(|connection| {
            connection.connection_timeout = config.connect_timeout;
            connection.internal_command_timeout =
                config.command_timeout.max(config.connect_timeout);
            connection.max_command_attempts = 1;
            connection.tcp.nodelay = Some(true);
        })
        .with_performance_config(|performance| {
            performance.default_command_timeout = config.command_timeout;
            // Invalidations arrive here; a full buffer costs a flush of the local caches.
            performance.broadcast_channel_capacity = 4_096;
        });
    Ok(builder)
}

#[async_trait]
impl PermissionCache for RedisCaches {
    async fn get(&self, key: &PermissionKey) -> Lookup<Permission> {
        self.permissions().get(key).await
    }

    async fn put(&self, key: &PermissionKey, permission: Permission, ticket: Ticket) {
        self.permissions().put(key, permission, ticket).await;
    }

    async fn invalidate(&self, scope: &PermissionScope) {
        let message = Invalidation::Permission(scope.clone());
        self.permissions()
            .invalidate(&scope.workspace, |key| scope.matches(key), &message)
            .await;
    }
}

#[async_trait]
impl RoutingCache for RedisCaches {
    async fn get(&self, key: &RouteKey) -> Lookup<Route> {
        self.routes().get(key).await
    }

    async fn put(&self, key: &RouteKey, route: Route, ticket: Ticket) {
        self.routes().put(key, route, ticket).await;
    }

    async fn invalidate(&self, key: &RouteKey) {
        let message = Invalidation::Route(key.clone());
        self.routes()
            .invalidate(&key.workspace, |candidate| candidate == key, &message)
            .await;
    }
}
