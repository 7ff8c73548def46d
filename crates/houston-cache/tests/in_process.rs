//! The in-process caches and rate limiter used by `houston up`.

mod common;

use std::time::Duration;

use houston_cache::{
    CacheConfig, Caches, InProcessRateLimiter, Permission, Quota, RateDecision, RateLimitKey, Role,
    Subject,
};
use houston_protocol::UserId;

fn caches() -> Caches {
    Caches::in_process(CacheConfig::default()).unwrap()
}

#[tokio::test]
async fn entry_keyed_by_all_ids() {
    common::entry_is_keyed_by_all_three_ids(&caches()).await;
}

#[tokio::test]
async fn revoke_beats_slow_read() {
    common::revoke_beats_slow_database_read(&caches()).await;
}

#[tokio::test]
async fn user_scope_invalidation() {
    common::user_scope_drops_only_that_user(&caches()).await;
}

#[tokio::test]
async fn route_cache_round_trip() {
    common::route_round_trip(&caches()).await;
}

#[tokio::test(start_paused = true)]
async fn entry_dies_at_ttl() {
    let config = CacheConfig {
        ttl: Duration::from_secs(2),
        ..CacheConfig::default()
    };
    let caches = Caches::in_process(config).unwrap();
    let key = common::key("ws-ttl", "user-u", "agent-x");
    common::fill(&caches, &key, Permission::allowed(Role::Member)).await;

    tokio::time::advance(Duration::from_millis(1_999)).await;
    assert!(caches.permissions.get(&key).await.hit().is_some());
    tokio::time::advance(Duration::from_millis(1)).await;
    assert!(caches.permissions.get(&key).await.hit().is_none());
}

#[test]
fn rejects_ttl_over_bound() {
    let config = CacheConfig {
        ttl: Duration::from_secs(6),
        ..CacheConfig::default()
    };
    let error = Caches::in_process(config).err().unwrap();
    assert!(error.to_string().contains("ttl"), "{error}");
}

fn user_key(user: &str) -> RateLimitKey {
    RateLimitKey::new("chat", Subject::User(UserId::parse(user).unwrap()))
}

#[tokio::test(start_paused = true)]
async fn gcra_under_paused_clock() {
    let limiter = InProcessRateLimiter::new();
    let quota = Quota::new(3, Duration::from_secs(3)).unwrap();
    let key = user_key("user-u");

    for _ in 0..3 {
        assert_eq!(limiter.check_now(&key, quota), RateDecision::Allowed);
    }
    assert_eq!(
        limiter.check_now(&key, quota),
        RateDecision::Limited {
            retry_after: Duration::from_secs(1)
        }
    );
    assert_eq!(
        limiter.check_now(&user_key("user-v"), quota),
        RateDecision::Allowed
    );

    tokio::time::advance(Duration::from_millis(400)).await;
    assert_eq!(
        limiter.check_now(&key, quota),
        RateDecision::Limited {
            retry_after: Duration::from_millis(600)
        }
    );

    tokio::time::advance(Duration::from_millis(600)).await;
    assert_eq!(limiter.check_now(&key, quota), RateDecision::Allowed);
    assert!(matches!(
        limiter.check_now(&key, quota),
        RateDecision::Limited { .. }
    ));
}

#[test]
fn login_names_share_limit_across_case() {
    let upper = RateLimitKey::new("login", Subject::Login("Juan@Acme.test".into()));
    let lower = RateLimitKey::new("login", Subject::Login("juan@acme.test".into()));
    assert_eq!(upper, lower);
    assert_eq!(lower.to_string(), "login:login:juan@acme.test");
}
