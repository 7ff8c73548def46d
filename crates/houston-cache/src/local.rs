//! Per-process map with per-entry expiry and an invalidation generation.
//!
//! This is the fast hit path: a lookup hashes the key, takes one shard's read lock and clones
//! the value. The generation counter makes invalidation race-free: an invalidation first bumps
//! the generation and then removes entries shard by shard, while an insert checks the
//! generation under the shard's write lock. So an insert that was decided before an
//! invalidation either lands before the removal (and is removed) or sees the new generation
//! (and is dropped).

use std::collections::HashMap;
use std::hash::{BuildHasher, Hash, RandomState};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{RwLock, RwLockWriteGuard};
use std::time::Duration;

use tokio::time::Instant;

const SHARDS: usize = 16;

struct Slot<V> {
    value: V,
    expires_at: Instant,
}

type Shard<K, V> = RwLock<HashMap<K, Slot<V>>>;

/// Sharded map whose entries expire and whose inserts respect invalidations.
pub(crate) struct LocalStore<K, V> {
    shards: Box<[Shard<K, V>]>,
    hasher: RandomState,
    generation: AtomicU64,
    capacity_per_shard: usize,
}

impl<K: Hash + Eq + Clone, V: Clone> LocalStore<K, V> {
    /// Creates a store with room for about `capacity` entries.
    pub(crate) fn new(capacity: usize) -> Self {
        let shards = (0..SHARDS).map(|_| RwLock::new(HashMap::new())).collect();
        Self {
            shards,
            hasher: RandomState::new(),
            generation: AtomicU64::new(0),
            capacity_per_shard: capacity.div_ceil(SHARDS).max(1),
        }
    }

    /// Returns the value of `key` unless it is missing or expired.
    pub(crate) fn get(&self, key: &K) -> Option<V> {
        let shard = self
            .shard(key)
            .read()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        let slot = shard.get(key)?;
        if slot.expires_at <= Instant::now() {
            return None;
        }
        Some(slot.value.clone())
    }

    /// Returns the current invalidation generation, to be passed to [`Self::insert`].
    pub(crate) fn generation(&self) -> u64 {
        self.generation.load(Ordering::SeqCst)
    }

    /// Inserts `value` for `ttl` unless an invalidation happened after `generation` was read.
    /// Returns whether the value was stored.
    pub(crate) fn insert(&self, key: K, value: V, ttl: Duration, generation: u64) -> bool {
        let mut shard = self.write_shard(&key);
        if self.generation.load(Ordering::SeqCst) != generation {
            return false;
        }
        let now = Instant::now();
        if shard.len() >= self.capacity_per_shard && !shard.contains_key(&key) {
            make_room(&mut shard, now);
        }
        shard.insert(
            key,
            Slot {
                value,
                expires_at: now + ttl,
            },
        );
        true
    }

    /// Removes every entry whose key matches `predicate`.
    pub(crate) fn remove_matching(&self, predicate: impl Fn(&K) -> bool) {
        self.generation.fetch_add(1, Ordering::SeqCst);
        for shard in &self.shards {
            let mut shard = shard
                .write()
                .unwrap_or_else(|poisoned| poisoned.into_inner());
            shard.retain(|key, _| !predicate(key));
        }
    }

    /// Removes every entry.
    pub(crate) fn clear(&self) {
        self.remove_matching(|_| true);
    }

    /// Returns the number of stored entries, expired ones included.
    #[cfg(test)]
    pub(crate) fn len(&self) -> usize {
        self.shards
            .iter()
            .map(|shard| shard.read().unwrap().len())
            .sum()
    }

    fn shard(&self, key: &K) -> &Shard<K, V> {
        let index = self.hasher.hash_one(key) as usize % SHARDS;
        &self.shards[index]
    }

    fn write_shard(&self, key: &K) -> RwLockWriteGuard<'_, HashMap<K, Slot<V>>> {
        self.shard(key)
            .write()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }
}

/// Frees space in a full shard: expired entries go first, then arbitrary ones until a tenth
/// of the shard is free, so a full shard does not pay this cost on every insert.
fn make_room<K: Hash + Eq + Clone, V>(shard: &mut HashMap<K, Slot<V>>, now: Instant) {
    let capacity = shard.len();
    shard.retain(|_, slot| slot.expires_at > now);
    let target = capacity - capacity / 10 - 1;
    if shard.len() <= target {
        return;
    }
    let excess = shard.len() - target;
    let victims: Vec<K> = shard.keys().take(excess).cloned().collect();
    for key in victims {
        shard.remove(&key);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const TTL: Duration = Duration::from_secs(4);

    #[tokio::test(start_paused = true)]
    async fn entry_expires_after_ttl() {
        let store = LocalStore::new(100);
        assert!(store.insert("a", 1, TTL, store.generation()));
        assert_eq!(store.get(&"a"), Some(1));

        tokio::time::advance(TTL - Duration::from_millis(1)).await;
        assert_eq!(store.get(&"a"), Some(1));

        tokio::time::advance(Duration::from_millis(1)).await;
        assert_eq!(store.get(&"a"), None);
    }

    #[test]
    fn insert_after_invalidation_is_dropped() {
        let store = LocalStore::new(100);
        let generation = store.generation();
        store.remove_matching(|key: &&str| *key == "a");
        assert!(!store.insert("a", 1, TTL, generation));
        assert_eq!(store.get(&"a"), None);
    }

    #[test]
    fn remove_matching_keeps_others() {
        let store = LocalStore::new(100);
        store.insert("a", 1, TTL, store.generation());
        store.insert("b", 2, TTL, store.generation());
        store.remove_matching(|key: &&str| *key == "a");
        assert_eq!(store.get(&"a"), None);
        assert_eq!(store.get(&"b"), Some(2));
    }

    #[test]
    fn concurrent_insert_never_survives_invalidation() {
        // Writers store the generation they read; after an invalidation returns, no value
        // read before it may remain.
        let store = std::sync::Arc::new(LocalStore::<u32, u64>::new(1_000));
        let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
        let writers: Vec<_> = (0..2)
            .map(|_| {
                let store = store.clone();
                let stop = stop.clone();
                std::thread::spawn(move || {
                    while !stop.load(Ordering::Relaxed) {
                        for key in 0..64 {
                            let generation = store.generation();
                            store.insert(key, generation, TTL, generation);
                        }
                    }
                })
            })
            .collect();

        for _ in 0..2_000 {
            store.remove_matching(|_| true);
            let current = store.generation();
            for key in 0..64 {
                if let Some(stored) = store.get(&key) {
                    assert!(
                        stored >= current,
                        "value from generation {stored} survived {current}"
                    );
                }
            }
        }
        stop.store(true, Ordering::Relaxed);
        for writer in writers {
            writer.join().unwrap();
        }
    }

    #[test]
    fn capacity_is_bounded() {
        let store = LocalStore::new(SHARDS * 10);
        for index in 0..10_000 {
            store.insert(index, index, TTL, store.generation());
        }
        assert!(store.len() <= SHARDS * 10, "{} entries stored", store.len());
        assert_eq!(store.get(&9_999), Some(9_999));
    }
}
