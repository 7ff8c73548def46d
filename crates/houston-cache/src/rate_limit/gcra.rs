//! The GCRA arithmetic, shared by the in-process limiter and mirrored by the Redis script.

use std::time::Duration;

use super::{Quota, RateDecision};

/// Emission interval and burst tolerance of a quota, in microseconds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Gcra {
    /// Time one request uses up: `period / limit`.
    pub(crate) interval_us: u64,
    /// How far the theoretical arrival time may run ahead of now: `period - interval`.
    pub(crate) tolerance_us: u64,
}

/// Stored state of one key: the theoretical arrival time of the next request, in
/// microseconds on the limiter's clock.
pub(crate) type GcraState = u64;

impl Gcra {
    pub(crate) fn new(quota: Quota) -> Self {
        let period_us = u64::try_from(quota.period().as_micros()).unwrap_or(u64::MAX);
        let interval_us = (period_us / u64::from(quota.limit())).max(1);
        Self {
            interval_us,
            tolerance_us: period_us.saturating_sub(interval_us),
        }
    }

    /// Decides on one request at `now_us` and returns the decision with the new state.
    /// A limited request leaves the state unchanged.
    pub(crate) fn check(&self, state: Option<GcraState>, now_us: u64) -> (RateDecision, GcraState) {
        let tat = state.unwrap_or(now_us).max(now_us);
        let ahead = tat - now_us;
        if ahead > self.tolerance_us {
            let retry_after = Duration::from_micros(ahead - self.tolerance_us);
            return (RateDecision::Limited { retry_after }, tat);
        }
        (RateDecision::Allowed, tat + self.interval_us)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn limited(decision: RateDecision) -> Duration {
        match decision {
            RateDecision::Limited { retry_after } => retry_after,
            RateDecision::Allowed => panic!("expected a limited decision"),
        }
    }

    #[test]
    fn burst_then_one_per_interval() {
        let gcra = Gcra::new(Quota::per_second(4).unwrap());
        assert_eq!(gcra.interval_us, 250_000);

        let mut state = None;
        for _ in 0..4 {
            let (decision, next) = gcra.check(state, 0);
            assert_eq!(decision, RateDecision::Allowed);
            state = Some(next);
        }

        let (decision, unchanged) = gcra.check(state, 0);
        assert_eq!(limited(decision), Duration::from_millis(250));
        assert_eq!(Some(unchanged), state);

        let (decision, _) = gcra.check(state, 249_999);
        assert_eq!(limited(decision), Duration::from_micros(1));

        let (decision, _) = gcra.check(state, 250_000);
        assert_eq!(decision, RateDecision::Allowed);
    }

    #[test]
    fn idle_key_refills_to_full_burst() {
        let gcra = Gcra::new(Quota::per_second(2).unwrap());
        let (_, state) = gcra.check(None, 0);
        let (_, state) = gcra.check(Some(state), 0);

        let now = 10_000_000;
        let (first, state) = gcra.check(Some(state), now);
        let (second, state) = gcra.check(Some(state), now);
        let (third, _) = gcra.check(Some(state), now);
        assert_eq!(first, RateDecision::Allowed);
        assert_eq!(second, RateDecision::Allowed);
        assert_eq!(limited(third), Duration::from_millis(500));
    }
}
