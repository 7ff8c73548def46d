//! In-process rate limiter: the embedded default and the fallback when Redis is down.

use std::collections::HashMap;
use std::sync::Mutex;

use async_trait::async_trait;
use tokio::time::Instant;

use super::{Gcra, GcraState, Quota, RateDecision, RateLimitKey, RateLimiter};

/// Number of keys after which idle keys are swept out.
const SWEEP_THRESHOLD: usize = 10_000;

/// GCRA limiter whose state lives in this process.
///
/// Time comes from `tokio::time::Instant`, so tests can drive it with a paused clock.
pub struct InProcessRateLimiter {
    epoch: Instant,
    state: Mutex<HashMap<RateLimitKey, GcraState>>,
}

impl Default for InProcessRateLimiter {
    fn default() -> Self {
        Self::new()
    }
}

impl InProcessRateLimiter {
    /// Creates a limiter with no recorded requests.
    #[must_use]
    pub fn new() -> Self {
        Self { epoch: Instant::now(), state: Mutex::new(HashMap::new()) }
    }

    /// Counts one request for `key` against `quota`; the synchronous form of
    /// [`RateLimiter::check`].
    pub fn check_now(&self, key: &RateLimitKey, quota: Quota) -> RateDecision {
        let gcra = Gcra::new(quota);
        let now_us = u64::try_from(self.epoch.elapsed().as_micros()).unwrap_or(u64::MAX);
        let mut state = self.state.lock().unwrap_or_else(|poisoned| poisoned.into_inner());

        if state.len() >= SWEEP_THRESHOLD {
            // A key whose arrival time has passed is back to a full burst, the same as no
            // entry, so dropping it changes no decision.
            state.retain(|_, tat| *tat > now_us);
        }

        let (decision, next) = gcra.check(state.get(key).copied(), now_us);
        if decision == RateDecision::Allowed {
            state.insert(key.clone(), next);
        }
        decision
    }
}

#[async_trait]
impl RateLimiter for InProcessRateLimiter {
    async fn check(&self, key: &RateLimitKey, quota: Quota) -> RateDecision {
        self.check_now(key, quota)
    }
}
