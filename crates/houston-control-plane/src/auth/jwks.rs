//! The public keys of an external issuer, fetched from its JWKS URL and cached.
//!
//! An unknown `kid` triggers at most one fetch per cooldown, however many tokens carry
//! unknown kids and however many arrive at once: fetches are serialized, and a task that
//! waited for another's fetch reuses its result.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use jsonwebtoken::DecodingKey;
use jsonwebtoken::jwk::{Jwk, JwkSet};
use tokio::sync::{Mutex, RwLock};

use super::config::TokenAlgorithm;
use super::error::TokenError;

/// One verification key and the algorithm its JWK pins, if any.
#[derive(Clone)]
struct CachedKey {
    key: DecodingKey,
    algorithm: Option<String>,
}

#[derive(Default)]
struct KeySet {
    keys: HashMap<String, CachedKey>,
    fetched_at: Option<Instant>,
}

/// The cached key set of one issuer.
pub struct JwksCache {
    url: String,
    client: reqwest::Client,
    cooldown: Duration,
    max_age: Duration,
    keys: RwLock<KeySet>,
    /// Serializes fetches and remembers when the last one started.
    last_fetch: Mutex<Option<Instant>>,
    fetches: AtomicU64,
}

impl JwksCache {
    /// Creates an empty cache; the first token fetches the keys.
    #[must_use]
    pub fn new(url: String, client: reqwest::Client, cooldown: Duration, max_age: Duration) -> Self {
        Self { url, client, cooldown, max_age, keys: RwLock::default(), last_fetch: Mutex::new(None), fetches: AtomicU64::new(0) }
    }

    /// Returns how many fetches were started, for tests and metrics.
    #[must_use]
    pub fn fetch_count(&self) -> u64 {
        self.fetches.load(Ordering::Relaxed)
    }

    /// Returns the key for `kid` usable with `algorithm`, fetching the set when the kid is
    /// unknown or the set is older than the maximum age, at most once per cooldown.
    ///
    /// # Errors
    /// [`TokenError::KeyUnknown`] when no such key exists (or its JWK pins another
    /// algorithm); [`TokenError::KeysUnavailable`] when the set was never fetched.
    pub async fn key(&self, kid: Option<&str>, algorithm: TokenAlgorithm) -> Result<DecodingKey, TokenError> {
        if let Some(found) = self.lookup(kid, algorithm, true).await {
            return found;
        }
        let mut last_fetch = self.last_fetch.lock().await;
        // Another task may have fetched while this one waited for the lock.
        if let Some(found) = self.lookup(kid, algorithm, true).await {
            return found;
        }
        let cooling_down = last_fetch.is_some_and(|at| at.elapsed() < self.cooldown);
        if !cooling_down {
            *last_fetch = Some(Instant::now());
            self.fetches.fetch_add(1, Ordering::Relaxed);
            self.refresh().await;
        }
        drop(last_fetch);
        match self.lookup(kid, algorithm, false).await {
            Some(found) => found,
            None if self.keys.read().await.fetched_at.is_none() => Err(TokenError::KeysUnavailable),
            None => Err(TokenError::KeyUnknown),
        }
    }

    /// Looks the key up; `None` means a fetch could help (unknown kid, or a stale set when
    /// `require_fresh`).
    async fn lookup(&self, kid: Option<&str>, algorithm: TokenAlgorithm, require_fresh: bool) -> Option<Result<DecodingKey, TokenError>> {
        let set = self.keys.read().await;
        let fresh = set.fetched_at.is_some_and(|at| at.elapsed() < self.max_age);
        if require_fresh && !fresh {
            return None;
        }
        let cached = match kid {
            Some(kid) => set.keys.get(kid)?,
            // A token without `kid` is accepted only when the set has a single key.
            None if set.keys.len() == 1 => set.keys.values().next()?,
            None => return None,
        };
        if cached.algorithm.as_deref().is_some_and(|pinned| pinned != algorithm.name()) {
            return Some(Err(TokenError::AlgorithmRejected));
        }
        Some(Ok(cached.key.clone()))
    }

    /// Fetches the set and replaces the cached one; on failure keeps the old keys and logs.
    async fn refresh(&self) {
        match self.fetch().await {
            Ok(keys) => {
                tracing::info!(jwks.url = %self.url, keys = keys.len(), "fetched the issuer's signing keys");
                *self.keys.write().await = KeySet { keys, fetched_at: Some(Instant::now()) };
            }
            Err(error) => tracing::warn!(jwks.url = %self.url, %error, "fetching the issuer's signing keys failed; keeping the cached ones"),
        }
    }

    async fn fetch(&self) -> Result<HashMap<String, CachedKey>, String> {
        let response = self
            .client
            .get(&self.url)
            .timeout(Duration::from_secs(5))
            .send()
            .await
            .map_err(|error| format!("request failed: {error}"))?;
        if !response.status().is_success() {
            return Err(format!("status {}", response.status()));
        }
        let set: JwkSet = response.json().await.map_err(|error| format!("invalid JWKS document: {error}"))?;
        Ok(set.keys.iter().filter_map(cached_key).collect())
    }
}

/// Converts one JWK; keys of unsupported types are skipped.
fn cached_key(jwk: &Jwk) -> Option<(String, CachedKey)> {
    let key = DecodingKey::from_jwk(jwk).ok()?;
    let kid = jwk.common.key_id.clone().unwrap_or_default();
    let algorithm = jwk.common.key_algorithm.map(|algorithm| algorithm.to_string());
    Some((kid, CachedKey { key, algorithm }))
}
