//! GCRA rate limits shared by every replica, with the per-process limiter as fallback.

use std::time::Duration;

use async_trait::async_trait;

use super::RedisCaches;
use crate::rate_limit::{Gcra, Quota, RateDecision, RateLimitKey, RateLimiter};

impl RedisCaches {
    /// Counts one request in Redis at `now_us` (microseconds on any clock) instead of the
    /// Redis server clock, so tests can check the script's arithmetic. Returns `None` when
    /// Redis failed.
    #[doc(hidden)]
    pub async fn check_at(
        &self,
        key: &RateLimitKey,
        quota: Quota,
        now_us: u64,
    ) -> Option<RateDecision> {
        self.check_in_redis(key, quota, now_us.to_string()).await
    }

    async fn check_in_redis(
        &self,
        key: &RateLimitKey,
        quota: Quota,
        now_us: String,
    ) -> Option<RateDecision> {
        let gcra = Gcra::new(quota);
        let redis_key = format!("{}rl:{key}", self.shared.prefix);
        let arguments = vec![
            gcra.interval_us.to_string(),
            gcra.tolerance_us.to_string(),
            now_us,
        ];
        let script = &self.shared.scripts.gcra;
        let retry_after_us: i64 = self.shared.run(script, redis_key, arguments).await.ok()?;
        match u64::try_from(retry_after_us) {
            Ok(0) | Err(_) => Some(RateDecision::Allowed),
            Ok(micros) => Some(RateDecision::Limited {
                retry_after: Duration::from_micros(micros),
            }),
        }
    }
}

#[async_trait]
impl RateLimiter for RedisCaches {
    async fn check(&self, key: &RateLimitKey, quota: Quota) -> RateDecision {
        if self.shared.is_up() {
            // An empty time argument makes the script use the Redis server clock.
            if let Some(decision) = self.check_in_redis(key, quota, String::new()).await {
                return decision;
            }
        }
        self.shared.fallback_limiter.check_now(key, quota)
    }
}
