//! State shared by the Redis caches, the Redis rate limiter and the subscriber task: the
//! clients, the local copies and whether Redis is usable.

use std::fmt::Display;
use std::sync::atomic::{AtomicU8, Ordering};
use std::time::Duration;

use fred::clients::SubscriberClient;
use fred::prelude::{Client, ClientLike, FromValue};
use fred::types::scripts::Script;

use crate::keys::{PermissionKey, RouteKey};
use crate::local::LocalStore;
use crate::rate_limit::InProcessRateLimiter;
use crate::values::{Permission, Route};

const STARTING: u8 = 0;
const UP: u8 = 1;
const DOWN: u8 = 2;

/// Everything one replica's Redis caches share.
pub(crate) struct Shared {
    pub(crate) client: Client,
    pub(crate) subscriber: SubscriberClient,
    pub(crate) prefix: String,
    pub(crate) channel: String,
    pub(crate) ttl: Duration,
    pub(crate) command_timeout: Duration,
    pub(crate) permissions: LocalStore<PermissionKey, Permission>,
    pub(crate) routes: LocalStore<RouteKey, Route>,
    /// Limiter used while Redis is down.
    pub(crate) fallback_limiter: InProcessRateLimiter,
    pub(crate) scripts: super::scripts::Scripts,
    state: AtomicU8,
}

impl Shared {
    pub(crate) fn new(
        client: Client,
        subscriber: SubscriberClient,
        prefix: String,
        ttl: Duration,
        command_timeout: Duration,
        local_capacity: usize,
    ) -> Self {
        Self {
            client,
            subscriber,
            channel: format!("{prefix}invalidate"),
            prefix,
            ttl,
            command_timeout,
            permissions: LocalStore::new(local_capacity),
            routes: LocalStore::new(local_capacity),
            fallback_limiter: InProcessRateLimiter::new(),
            scripts: super::scripts::Scripts::new(),
            state: AtomicU8::new(STARTING),
        }
    }

    /// Returns whether Redis is usable: the subscription is live, so local copies are kept
    /// honest by invalidation messages, and the command connection is open.
    pub(crate) fn is_up(&self) -> bool {
        self.state.load(Ordering::SeqCst) == UP
            && self.subscriber.is_connected()
            && self.client.is_connected()
    }

    /// Records that Redis cannot be used and drops every local copy, because invalidations
    /// cannot reach this replica until it has subscribed again. Logs only the first failure
    /// of an outage.
    pub(crate) fn mark_down(&self, reason: &dyn Display) {
        let previous = self.state.swap(DOWN, Ordering::SeqCst);
        self.clear_local();
        if previous != DOWN {
            tracing::warn!(
                error = %reason,
                "Redis is unreachable: permission and route lookups miss and go to the \
                 database, and rate limits are counted per replica until it is back",
            );
        }
    }

    /// Records that Redis is usable again. Local copies are dropped first, because messages
    /// published while the subscription was down were lost.
    pub(crate) fn mark_up(&self) {
        self.clear_local();
        let previous = self.state.swap(UP, Ordering::SeqCst);
        match previous {
            DOWN => {
                tracing::info!("Redis is reachable again: caches and shared rate limits resumed")
            }
            STARTING => tracing::info!(channel = %self.channel, "Redis caches connected"),
            _ => {}
        }
    }

    /// Runs `script` with a timeout. A failure marks Redis down, so later calls skip it until
    /// the subscriber task has seen it recover.
    pub(crate) async fn run<R: FromValue>(
        &self,
        script: &Script,
        key: String,
        arguments: Vec<String>,
    ) -> Result<R, ()> {
        let call = script.evalsha_with_reload::<R, _, _>(&self.client, key, arguments);
        match tokio::time::timeout(self.command_timeout, call).await {
            Ok(Ok(reply)) => Ok(reply),
            Ok(Err(error)) => {
                self.mark_down(&error);
                Err(())
            }
            Err(_) => {
                let timeout = self.command_timeout;
                self.mark_down(&format_args!("Redis command timed out after {timeout:?}"));
                Err(())
            }
        }
    }

    /// Drops every local copy.
    pub(crate) fn clear_local(&self) {
        self.permissions.clear();
        self.routes.clear();
    }
}
