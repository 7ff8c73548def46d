//! Get, put and invalidate for one kind of entry: a local copy in front of Redis.

use std::hash::Hash;
use std::time::Duration;

use fred::prelude::Value;
use houston_protocol::WorkspaceId;
use serde::Serialize;
use serde::de::DeserializeOwned;
use tokio::time::Instant;

use super::message::Invalidation;
use super::shared::Shared;
use crate::keys::RedisKeyParts;
use crate::local::LocalStore;
use crate::values::{Lookup, Ticket};

/// Lifetime of a workspace's version key after its last invalidation. It only has to outlive
/// the entries written under the previous version, which live for the cache TTL.
const VERSION_KEY_LIFETIME: Duration = Duration::from_secs(24 * 60 * 60);

/// The entries an operation works on: their Redis key segment and their local store.
pub(crate) struct Layer<'a, K, V> {
    pub(crate) shared: &'a Shared,
    pub(crate) kind: &'static str,
    pub(crate) store: &'a LocalStore<K, V>,
}

impl<K, V> Layer<'_, K, V>
where
    K: RedisKeyParts + Hash + Eq + Clone,
    V: Clone + Serialize + DeserializeOwned,
{
    pub(crate) async fn get(&self, key: &K) -> Lookup<V> {
        let local_generation = self.store.generation();
        let miss = |remote_version| {
            Lookup::Miss(Ticket {
                local_generation,
                remote_version,
            })
        };
        if !self.shared.is_up() {
            return miss(None);
        }
        if let Some(value) = self.store.get(key) {
            return Lookup::Hit(value);
        }

        let script = &self.shared.scripts.get;
        let arguments = vec![self.entry_prefix(key.workspace()), key.suffix()];
        let sent_at = Instant::now();
        let reply: Vec<Value> = match self
            .shared
            .run(script, self.version_key(key.workspace()), arguments)
            .await
        {
            Ok(reply) => reply,
            Err(()) => return miss(None),
        };
        let Some(found) = parse_get_reply::<V>(reply) else {
            return miss(None);
        };

        match found {
            (version, None) => miss(Some(version)),
            (_, Some((value, remaining))) => {
                // A local copy never outlives the Redis entry it came from: Redis measured the
                // remaining lifetime after the command was sent.
                let ttl = remaining
                    .min(self.shared.ttl)
                    .saturating_sub(sent_at.elapsed());
                self.store
                    .insert(key.clone(), value.clone(), ttl, local_generation);
                Lookup::Hit(value)
            }
        }
    }

    pub(crate) async fn put(&self, key: &K, value: V, ticket: Ticket) {
        let Some(version) = ticket.remote_version else {
            return;
        };
        if !self.shared.is_up() {
            return;
        }
        let Ok(json) = serde_json::to_string(&value) else {
            return;
        };

        let ttl_ms = self.shared.ttl.as_millis().to_string();
        let arguments = vec![
            self.entry_prefix(key.workspace()),
            key.suffix(),
            version,
            json,
            ttl_ms,
        ];
        let script = &self.shared.scripts.put;
        let sent_at = Instant::now();
        let stored: Result<i64, ()> = self
            .shared
            .run(script, self.version_key(key.workspace()), arguments)
            .await;
        if stored == Ok(1) {
            // Redis started the entry's TTL after the command was sent.
            let ttl = self.shared.ttl.saturating_sub(sent_at.elapsed());
            self.store
                .insert(key.clone(), value, ttl, ticket.local_generation);
        }
    }

    /// Drops matching local entries, bumps the workspace's version in Redis and publishes
    /// `message` to the other replicas.
    pub(crate) async fn invalidate(
        &self,
        workspace: &WorkspaceId,
        matches: impl Fn(&K) -> bool,
        message: &Invalidation,
    ) {
        self.store.remove_matching(matches);

        let Ok(json) = serde_json::to_string(message) else {
            return;
        };
        let lifetime_ms = VERSION_KEY_LIFETIME.as_millis().to_string();
        let arguments = vec![self.shared.channel.clone(), json, lifetime_ms];
        let script = &self.shared.scripts.invalidate;
        let version_key = self.version_key(workspace);
        let published: Result<i64, ()> = self.shared.run(script, version_key, arguments).await;
        if published.is_err() {
            tracing::warn!(
                workspace.id = %workspace,
                kind = self.kind,
                "invalidation was not published; other replicas drop the entries when they \
                 expire, within the cache TTL",
            );
        }
    }

    fn version_key(&self, workspace: &WorkspaceId) -> String {
        format!("{}{}:{{{workspace}}}:v", self.shared.prefix, self.kind)
    }

    fn entry_prefix(&self, workspace: &WorkspaceId) -> String {
        format!("{}{}:{{{workspace}}}:", self.shared.prefix, self.kind)
    }
}

/// Parses `{version}` or `{version, value, pttl_ms}`. An entry whose value cannot be parsed
/// or that has no expiry is treated as absent.
fn parse_get_reply<V: DeserializeOwned>(
    reply: Vec<Value>,
) -> Option<(String, Option<(V, Duration)>)> {
    let mut parts = reply.into_iter();
    let version = parts.next()?.as_string()?;
    let Some(value) = parts.next() else {
        return Some((version, None));
    };
    let remaining_ms = parts.next().and_then(|pttl| pttl.as_i64()).unwrap_or(-1);
    let remaining = u64::try_from(remaining_ms).ok().map(Duration::from_millis);
    let parsed = value
        .as_str()
        .and_then(|text| serde_json::from_str::<V>(&text).ok());
    match (parsed, remaining) {
        (Some(value), Some(remaining)) => Some((version, Some((value, remaining)))),
        _ => Some((version, None)),
    }
}
