//! The Redis caches and rate limiter against the shared Redis at `REDIS_URL`.
//!
//! Each test uses its own key prefix, so tests run in parallel. Under `CI=true` an
//! unreachable Redis fails the tests instead of skipping them.

mod common;

use std::time::{Duration, Instant};

use common::redis::{bundle, replica, shared_redis_url, unique_prefix, wait_until};
use houston_cache::{
    Lookup, Permission, PermissionScope, Quota, RateDecision, RateLimitKey, RateLimiter, Role,
    Route, Subject,
};
use houston_protocol::UserId;

macro_rules! redis_url_or_skip {
    () => {
        match shared_redis_url() {
            Some(url) => url,
            None => return,
        }
    };
}

#[tokio::test]
async fn redis_entry_keyed_by_all_ids() {
    let url = redis_url_or_skip!();
    let caches = bundle(&replica(&url, &unique_prefix("keyed")).await);
    common::entry_is_keyed_by_all_three_ids(&caches).await;
}

#[tokio::test]
async fn redis_revoke_beats_slow_read() {
    let url = redis_url_or_skip!();
    let caches = bundle(&replica(&url, &unique_prefix("race")).await);
    common::revoke_beats_slow_database_read(&caches).await;
}

#[tokio::test]
async fn redis_user_scope_invalidation() {
    let url = redis_url_or_skip!();
    let caches = bundle(&replica(&url, &unique_prefix("user-scope")).await);
    common::user_scope_drops_only_that_user(&caches).await;
}

#[tokio::test]
async fn redis_route_round_trip() {
    let url = redis_url_or_skip!();
    let caches = bundle(&replica(&url, &unique_prefix("route")).await);
    common::route_round_trip(&caches).await;
}

#[tokio::test]
async fn entry_keyed_across_replicas() {
    let url = redis_url_or_skip!();
    let prefix = unique_prefix("keyed-replicas");
    let first = bundle(&replica(&url, &prefix).await);
    let second = bundle(&replica(&url, &prefix).await);

    let cached = common::key("ws-a", "user-u", "agent-x");
    common::fill(&first, &cached, Permission::allowed(Role::Member)).await;
    assert!(
        second.permissions.get(&cached).await.hit().is_some(),
        "entry not shared"
    );

    for other in [
        common::key("ws-b", "user-u", "agent-x"),
        common::key("ws-a", "user-v", "agent-x"),
        common::key("ws-a", "user-u", "agent-y"),
    ] {
        assert!(
            second.permissions.get(&other).await.hit().is_none(),
            "returned for {other:?}"
        );
    }
}

#[tokio::test]
async fn revoke_reaches_second_replica() {
    let url = redis_url_or_skip!();
    let prefix = unique_prefix("revoke");
    let first = bundle(&replica(&url, &prefix).await);
    let second = bundle(&replica(&url, &prefix).await);
    let key = common::key("acme", "juan", "hr");

    common::fill(&first, &key, Permission::allowed(Role::Member)).await;
    // The second replica now serves the grant from its local copy, without Redis.
    assert!(second.permissions.get(&key).await.hit().is_some());
    assert!(second.permissions.get(&key).await.hit().is_some());

    let scope = PermissionScope::grant(key.workspace.clone(), key.user.clone(), key.agent.clone());
    let revoked_at = Instant::now();
    first.permissions.invalidate(&scope).await;
    let refused = wait_until(
        Duration::from_millis(100),
        Duration::from_millis(1),
        || async { second.permissions.get(&key).await.hit().is_none() },
    )
    .await;
    let elapsed = revoked_at.elapsed();
    assert!(
        refused.is_some(),
        "second replica still allowed the grant {elapsed:?} after the revoke"
    );
    println!("revoke reached the second replica after {elapsed:?}");
}

#[tokio::test]
async fn role_change_reaches_second_replica() {
    let url = redis_url_or_skip!();
    let prefix = unique_prefix("role");
    let first = bundle(&replica(&url, &prefix).await);
    let second = bundle(&replica(&url, &prefix).await);
    let hr = common::key("acme", "juan", "hr");
    let sales = common::key("acme", "juan", "sales");
    let bystander = common::key("acme", "ana", "hr");
    for key in [&hr, &sales, &bystander] {
        common::fill(&first, key, Permission::allowed(Role::Admin)).await;
        assert!(second.permissions.get(key).await.hit().is_some());
    }

    first
        .permissions
        .invalidate(&PermissionScope::user(
            hr.workspace.clone(),
            hr.user.clone(),
        ))
        .await;
    let dropped = wait_until(
        Duration::from_millis(100),
        Duration::from_millis(1),
        || async {
            second.permissions.get(&hr).await.hit().is_none()
                && second.permissions.get(&sales).await.hit().is_none()
        },
    )
    .await;
    assert!(
        dropped.is_some(),
        "role change did not reach the second replica within 100 ms"
    );
    // Another user's local copy stays, although Redis now misses for the whole workspace.
    assert!(second.permissions.get(&bystander).await.hit().is_some());
}

#[tokio::test]
async fn route_invalidation_reaches_second_replica() {
    let url = redis_url_or_skip!();
    let prefix = unique_prefix("route-replicas");
    let first = bundle(&replica(&url, &prefix).await);
    let second = bundle(&replica(&url, &prefix).await);
    let key = common::route_key("acme", "hr");
    let route = Route {
        endpoint: "unix:/run/houston/hr.sock".into(),
        generation: 7,
    };

    let Lookup::Miss(ticket) = first.routes.get(&key).await else {
        panic!("expected a miss");
    };
    first.routes.put(&key, route.clone(), ticket).await;
    assert_eq!(second.routes.get(&key).await, Lookup::Hit(route));

    first.routes.invalidate(&key).await;
    let dropped = wait_until(
        Duration::from_millis(100),
        Duration::from_millis(1),
        || async { second.routes.get(&key).await.hit().is_none() },
    )
    .await;
    assert!(
        dropped.is_some(),
        "route invalidation did not reach the second replica"
    );
}

#[tokio::test]
async fn lost_invalidation_dies_within_ttl() {
    let url = redis_url_or_skip!();
    let prefix = unique_prefix("lost");
    let first = bundle(&replica(&url, &prefix).await);
    let second = bundle(&replica(&url, &prefix).await);
    let key = common::key("acme", "juan", "hr");
    let ttl = houston_cache::config::DEFAULT_TTL;

    let stored_at = Instant::now();
    common::fill(&first, &key, Permission::allowed(Role::Member)).await;
    assert!(second.permissions.get(&key).await.hit().is_some());

    // The grant is revoked in the database, but the invalidation is lost: nothing is
    // published and Redis is not touched. Both replicas keep serving the stale grant, but
    // only until the TTL runs out.
    let died = wait_until(
        ttl + Duration::from_secs(1),
        Duration::from_millis(20),
        || async {
            first.permissions.get(&key).await.hit().is_none()
                && second.permissions.get(&key).await.hit().is_none()
        },
    )
    .await;
    let lifetime = stored_at.elapsed();
    assert!(
        died.is_some(),
        "stale grant still served {lifetime:?} after it was stored"
    );
    // The documented bound is under 5 s; the slack covers polling on a loaded machine.
    assert!(
        lifetime <= ttl + Duration::from_millis(500),
        "stale grant lived {lifetime:?}"
    );
    assert!(
        lifetime < Duration::from_secs(5),
        "stale grant lived {lifetime:?}"
    );
    assert!(
        lifetime >= ttl - Duration::from_millis(100),
        "entry died early, after {lifetime:?}"
    );
    println!("stale grant died {lifetime:?} after it was stored (ttl {ttl:?})");
}

fn user_key(user: &str) -> RateLimitKey {
    RateLimitKey::new("chat", Subject::User(UserId::parse(user).unwrap()))
}

#[tokio::test]
async fn rate_limit_shared_across_replicas() {
    let url = redis_url_or_skip!();
    let prefix = unique_prefix("rate");
    let first = replica(&url, &prefix).await;
    let second = replica(&url, &prefix).await;
    let quota = Quota::new(3, Duration::from_secs(3)).unwrap();
    let key = user_key("juan");

    for _ in 0..3 {
        assert_eq!(first.check(&key, quota).await, RateDecision::Allowed);
    }
    let RateDecision::Limited { retry_after } = second.check(&key, quota).await else {
        panic!("the second replica did not see the first replica's requests");
    };
    assert!(retry_after > Duration::ZERO, "{retry_after:?}");
    assert!(retry_after <= Duration::from_secs(1), "{retry_after:?}");
    assert_eq!(
        second.check(&user_key("ana"), quota).await,
        RateDecision::Allowed
    );

    tokio::time::sleep(retry_after + Duration::from_millis(20)).await;
    assert_eq!(second.check(&key, quota).await, RateDecision::Allowed);
    assert!(matches!(
        first.check(&key, quota).await,
        RateDecision::Limited { .. }
    ));
}

#[tokio::test]
async fn gcra_script_under_controlled_clock() {
    let url = redis_url_or_skip!();
    let caches = replica(&url, &unique_prefix("gcra")).await;
    let quota = Quota::new(3, Duration::from_secs(3)).unwrap();
    let key = user_key("juan");
    // Microseconds on a made-up clock; the script uses them instead of the server clock.
    let start = 1_000_000_000_000u64;

    for _ in 0..3 {
        assert_eq!(
            caches.check_at(&key, quota, start).await,
            Some(RateDecision::Allowed)
        );
    }
    let limited = |retry_after| Some(RateDecision::Limited { retry_after });
    assert_eq!(
        caches.check_at(&key, quota, start).await,
        limited(Duration::from_secs(1))
    );
    assert_eq!(
        caches.check_at(&key, quota, start + 400_000).await,
        limited(Duration::from_millis(600))
    );
    assert_eq!(
        caches.check_at(&key, quota, start + 999_999).await,
        limited(Duration::from_micros(1))
    );
    assert_eq!(
        caches.check_at(&key, quota, start + 1_000_000).await,
        Some(RateDecision::Allowed)
    );
    assert_eq!(
        caches.check_at(&key, quota, start + 1_000_000).await,
        limited(Duration::from_secs(1))
    );

    // After a long idle time the full burst is back, and no more.
    let later = start + 60_000_000;
    for _ in 0..3 {
        assert_eq!(
            caches.check_at(&key, quota, later).await,
            Some(RateDecision::Allowed)
        );
    }
    assert_eq!(
        caches.check_at(&key, quota, later).await,
        limited(Duration::from_secs(1))
    );
}

/// Reference GCRA, written independently of the crate: returns the retry-after in µs (0 when
/// allowed) and the new theoretical arrival time.
fn reference_gcra(tat: Option<u64>, now: u64, quota: Quota) -> (u64, Option<u64>) {
    let period = quota.period().as_micros() as u64;
    let interval = (period / u64::from(quota.limit())).max(1);
    let earliest_next = tat.unwrap_or(now).max(now) + interval;
    let allowed_at = earliest_next.saturating_sub(period);
    if allowed_at > now {
        return (allowed_at - now, tat);
    }
    (0, Some(earliest_next))
}

#[tokio::test]
async fn gcra_script_matches_reference() {
    let url = redis_url_or_skip!();
    let caches = replica(&url, &unique_prefix("gcra-reference")).await;
    let quotas = [
        Quota::new(1, Duration::from_millis(100)).unwrap(),
        Quota::new(5, Duration::from_secs(1)).unwrap(),
        Quota::new(7, Duration::from_secs(60)).unwrap(),
    ];
    // A fixed linear congruential sequence keeps the run reproducible.
    let mut seed: u64 = 0x2545_F491_4F6C_DD1D;
    let mut next_random = move || {
        seed = seed
            .wrapping_mul(6_364_136_223_846_793_005)
            .wrapping_add(1_442_695_040_888_963_407);
        seed >> 33
    };

    let mut limited_count = 0;
    for (index, quota) in quotas.into_iter().enumerate() {
        let key = user_key(&format!("user-{index}"));
        let mut now = 5_000_000_000_000u64;
        let mut tat = None;
        for step in 0..200 {
            now += next_random() % (quota.period().as_micros() as u64 / 2);
            let (expected_retry, expected_tat) = reference_gcra(tat, now, quota);
            tat = expected_tat;
            let expected = match expected_retry {
                0 => RateDecision::Allowed,
                micros => {
                    limited_count += 1;
                    RateDecision::Limited {
                        retry_after: Duration::from_micros(micros),
                    }
                }
            };
            let got = caches.check_at(&key, quota, now).await;
            assert_eq!(
                got,
                Some(expected),
                "quota {quota:?}, step {step}, now {now}"
            );
        }
    }
    // Both outcomes must occur, or the comparison proves little.
    assert!(
        limited_count > 50,
        "only {limited_count} of 600 checks were limited"
    );
    assert!(
        limited_count < 550,
        "{limited_count} of 600 checks were limited"
    );
}
