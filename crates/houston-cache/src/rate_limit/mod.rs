//! Rate limits per user, workspace, agent, client address or login name.
//!
//! The algorithm is GCRA (the generic cell rate algorithm): each key stores one timestamp, the
//! theoretical arrival time of the next request, so a check is one atomic read-modify-write.
//! A [`Quota`] of `limit` requests per `period` allows a burst of `limit` requests and then one
//! request every `period / limit`.

mod gcra;
mod memory;

use std::fmt;
use std::net::IpAddr;
use std::time::Duration;

use async_trait::async_trait;
use houston_protocol::{AgentId, UserId, WorkspaceId};

pub use memory::InProcessRateLimiter;

pub(crate) use gcra::{Gcra, GcraState};

/// Number of requests allowed per period.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Quota {
    limit: u32,
    period: Duration,
}

/// Error for an invalid quota.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum QuotaError {
    #[error("invalid rate limit: limit must be at least 1, got 0")]
    ZeroLimit,
    #[error("invalid rate limit period {0:?}: must be at least 1 ms")]
    Period(Duration),
}

impl Quota {
    /// Allows `limit` requests per `period`, all of them at once if they come in a burst.
    ///
    /// # Errors
    /// Returns [`QuotaError`] when `limit` is 0 or `period` is shorter than 1 ms.
    pub fn new(limit: u32, period: Duration) -> Result<Self, QuotaError> {
        if limit == 0 {
            return Err(QuotaError::ZeroLimit);
        }
        if period < Duration::from_millis(1) {
            return Err(QuotaError::Period(period));
        }
        Ok(Self { limit, period })
    }

    /// Allows `limit` requests per second.
    ///
    /// # Errors
    /// Returns [`QuotaError::ZeroLimit`] when `limit` is 0.
    pub fn per_second(limit: u32) -> Result<Self, QuotaError> {
        Self::new(limit, Duration::from_secs(1))
    }

    /// Allows `limit` requests per minute.
    ///
    /// # Errors
    /// Returns [`QuotaError::ZeroLimit`] when `limit` is 0.
    pub fn per_minute(limit: u32) -> Result<Self, QuotaError> {
        Self::new(limit, Duration::from_secs(60))
    }

    /// Returns the number of requests per period.
    #[must_use]
    pub fn limit(&self) -> u32 {
        self.limit
    }

    /// Returns the period.
    #[must_use]
    pub fn period(&self) -> Duration {
        self.period
    }
}

/// Identity a rate limit counts requests for.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum Subject {
    User(UserId),
    Workspace(WorkspaceId),
    Agent(AgentId),
    /// A client address, from [`crate::client_ip::TrustedProxies::client_ip`].
    ClientIp(IpAddr),
    /// A login name (an email address) before it is verified; stored lower-cased.
    Login(String),
}

/// Key of one rate limit: which limit, and whose requests it counts.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct RateLimitKey {
    /// Name of the limit, for example `"chat"` or `"login"`, so one identity can have several
    /// limits. Must not contain `:`.
    pub limit: &'static str,
    pub subject: Subject,
}

impl RateLimitKey {
    /// Creates the key of `limit` for `subject`. Login names are lower-cased here, so
    /// `Juan@Acme.test` and `juan@acme.test` share one limit.
    #[must_use]
    pub fn new(limit: &'static str, subject: Subject) -> Self {
        debug_assert!(
            !limit.contains(':'),
            "rate limit name {limit:?} contains ':'"
        );
        let subject = match subject {
            Subject::Login(name) => Subject::Login(name.to_lowercase()),
            other => other,
        };
        Self { limit, subject }
    }
}

impl fmt::Display for RateLimitKey {
    /// Formats the key as `limit:kind:value`, the form used in Redis keys.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let limit = self.limit;
        match &self.subject {
            Subject::User(id) => write!(f, "{limit}:user:{id}"),
            Subject::Workspace(id) => write!(f, "{limit}:workspace:{id}"),
            Subject::Agent(id) => write!(f, "{limit}:agent:{id}"),
            Subject::ClientIp(address) => write!(f, "{limit}:ip:{address}"),
            Subject::Login(name) => write!(f, "{limit}:login:{name}"),
        }
    }
}

/// Outcome of a rate limit check.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RateDecision {
    /// The request may go ahead; it was counted.
    Allowed,
    /// The request must be refused (HTTP 429); it was not counted. A retry after
    /// `retry_after` will be allowed unless other requests use the capacity first.
    Limited { retry_after: Duration },
}

/// Counts requests per key and decides whether each one may go ahead.
#[async_trait]
pub trait RateLimiter: Send + Sync {
    /// Counts one request for `key` against `quota`. Never fails: a shared limiter that
    /// cannot reach its backend falls back to a per-process limiter and logs that once.
    async fn check(&self, key: &RateLimitKey, quota: Quota) -> RateDecision;
}
