//! In-process rate limiter: the embedded default and the fallback when Redis is down.

use std::collections::HashMap;
use std::sync::Mutex;

use async_trait::async_trait;
use tokio::time::Instant;

use super::{Gcra, GcraState, Quota, RateDecision, RateLimitKey, RateLimiter};

/// Number of keys after which idle keys are swept out. After a sweep the next one waits until
/// the map has doubled, so a busy limiter does not scan its map on every request.
const SWEEP_THRESHOLD: usize = 10_000;

struct State {
    arrival_times: HashMap<RateLimitKey, GcraState>,
    sweep_at: usize,
}

/// GCRA limiter whose state lives in this process.
///
/// Time comes from `tokio::time::Instant`, so tests can drive it with a paused clock.
pub struct InProcessRateLimiter {
    epoch: Instant,
    state: Mutex<State>,
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
        let state = State {
            arrival_times: HashMap::new(),
            sweep_at: SWEEP_THRESHOLD,
        };
        Self {
            epoch: Instant::now(),
            state: Mutex::new(state),
        }
    }

    /// Counts one request for `key` against `quota`; the synchronous form of
    /// [`RateLimiter::check`].
    pub fn check_now(&self, key: &RateLimitKey, quota: Quota) -> RateDecision {
        let gcra = Gcra::new(quota);
        let now_us = u64::try_from(self.epoch.elapsed().as_micros()).unwrap_or(u64::MAX);
        let mut state = self
            .state
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner());

        if state.arrival_times.len() >= state.sweep_at {
            // A key whose arrival time has passed is back to a full burst, the same as no
            // entry, so dropping it changes no decision.
            state.arrival_times.retain(|_, tat| *tat > now_us);
            state.sweep_at = SWEEP_THRESHOLD.max(state.arrival_times.len() * 2);
        }

        let (decision, next) = gcra.check(state.arrival_times.get(key).copied(), now_us);
        if decision == RateDecision::Allowed {
            state.arrival_times.insert(key.clone(), next);
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
