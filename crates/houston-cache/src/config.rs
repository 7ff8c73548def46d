//! Settings shared by the in-process and Redis caches.

use std::time::Duration;

/// Default time to live of a cache entry. Together with the database read that precedes a
/// `put` (milliseconds), it bounds how long a lost invalidation can leave a stale entry.
pub const DEFAULT_TTL: Duration = Duration::from_secs(4);

/// Default maximum number of entries in each per-process cache.
pub const DEFAULT_LOCAL_CAPACITY: usize = 100_000;

/// Settings of the permission and routing caches.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CacheConfig {
    /// Time to live of every entry, in Redis and in the per-process copy alike. A stale entry
    /// whose invalidation was lost is served for at most this long after it was stored.
    pub ttl: Duration,
    /// Maximum number of entries in each per-process cache.
    pub local_capacity: usize,
}

impl Default for CacheConfig {
    fn default() -> Self {
        Self {
            ttl: DEFAULT_TTL,
            local_capacity: DEFAULT_LOCAL_CAPACITY,
        }
    }
}

/// Largest accepted TTL. It keeps the staleness bound under 5 s with room for the database
/// read that precedes a `put`.
pub const MAX_TTL: Duration = Duration::from_secs(4);

/// Error for an invalid cache setting.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ConfigError {
    #[error("invalid cache ttl {0:?}: must be more than 0 and at most {MAX_TTL:?}")]
    Ttl(Duration),
    #[error("invalid cache local_capacity 0: must be at least 1")]
    LocalCapacity,
}

impl CacheConfig {
    /// Checks every setting.
    ///
    /// # Errors
    /// Returns the first invalid setting.
    pub fn validate(&self) -> Result<(), ConfigError> {
        if self.ttl.is_zero() || self.ttl > MAX_TTL {
            return Err(ConfigError::Ttl(self.ttl));
        }
        if self.local_capacity == 0 {
            return Err(ConfigError::LocalCapacity);
        }
        Ok(())
    }
}
