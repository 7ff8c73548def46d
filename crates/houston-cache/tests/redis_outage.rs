//! Redis outages, against a throwaway `redis-server` that each test starts, stops and
//! restarts on its own loopback port (never the shared Redis).

mod common;

use std::time::{Duration, Instant};

use common::redis::{
    CapturedLogs, ThrowawayRedis, bundle, config, free_port, replica, unique_prefix, wait_until,
};
use fred::prelude::{ClientLike, KeysInterface};
use houston_cache::{
    Lookup, Permission, PermissionScope, Quota, RateDecision, RateLimitKey, RedisCaches, Role,
    Subject,
};
use houston_protocol::UserId;

const DOWN_LOG: &str = "Redis is unreachable";
const UP_LOG: &str = "Redis is reachable again";

macro_rules! throwaway_or_skip {
    () => {
        match ThrowawayRedis::start() {
            Some(server) => server,
            None => return,
        }
    };
}

async fn admin_client(url: &str) -> fred::prelude::Client {
    let config = fred::prelude::Config::from_url(url).unwrap();
    let client = fred::prelude::Builder::from_config(config).build().unwrap();
    client.init().await.unwrap();
    client
}

#[tokio::test]
async fn restart_resubscribes_and_drops_local() {
    let mut server = throwaway_or_skip!();
    let prefix = unique_prefix("restart");
    let first_replica = replica(&server.url(), &prefix).await;
    let first = bundle(&first_replica);
    let second_replica = replica(&server.url(), &prefix).await;
    let second = bundle(&second_replica);
    let key = common::key("acme", "juan", "hr");

    let stored_at = Instant::now();
    common::fill(&first, &key, Permission::allowed(Role::Member)).await;
    assert!(second.permissions.get(&key).await.hit().is_some());

    // The grant is revoked while Redis is down, so the invalidation is lost. Redis comes
    // back empty; only the second replica's local copy could still have the grant.
    server.kill();
    let noticed = wait_until(Duration::from_secs(2), Duration::from_millis(5), || async {
        !second_replica.is_up()
    })
    .await;
    assert!(
        noticed.is_some(),
        "second replica did not notice the outage"
    );
    server.restart();
    let recovered = wait_until(
        Duration::from_secs(5),
        Duration::from_millis(10),
        || async { second_replica.is_up() },
    )
    .await;
    assert!(
        recovered.is_some(),
        "second replica did not reconnect within 5 s"
    );
    assert!(
        second.permissions.get(&key).await.hit().is_none(),
        "local copy survived the reconnect"
    );
    assert!(
        stored_at.elapsed() < houston_cache::config::DEFAULT_TTL,
        "the TTL, not the reconnect, dropped it"
    );

    // The replica subscribed again: the next revoke reaches it at once.
    let both_up = wait_until(
        Duration::from_secs(5),
        Duration::from_millis(10),
        || async { first_replica.is_up() },
    )
    .await;
    assert!(
        both_up.is_some(),
        "first replica did not reconnect within 5 s"
    );
    common::fill(&first, &key, Permission::allowed(Role::Member)).await;
    assert!(second.permissions.get(&key).await.hit().is_some());
    let scope = PermissionScope::grant(key.workspace.clone(), key.user.clone(), key.agent.clone());
    first.permissions.invalidate(&scope).await;
    let refused = wait_until(
        Duration::from_millis(100),
        Duration::from_millis(1),
        || async { second.permissions.get(&key).await.hit().is_none() },
    )
    .await;
    assert!(
        refused.is_some(),
        "revoke did not reach the second replica after the reconnect"
    );
}

#[tokio::test]
async fn dropped_subscription_drops_local() {
    let server = throwaway_or_skip!();
    let prefix = unique_prefix("partition");
    let first = bundle(&replica(&server.url(), &prefix).await);
    let second_replica = replica(&server.url(), &prefix).await;
    let second = bundle(&second_replica);
    let key = common::key("acme", "juan", "hr");
    common::fill(&first, &key, Permission::allowed(Role::Member)).await;
    assert!(second.permissions.get(&key).await.hit().is_some());

    // A revoke whose message is lost: the version is bumped in Redis but nothing is
    // published, so the second replica's local copy is stale.
    let admin = admin_client(&server.url()).await;
    let _: i64 = admin
        .incr(format!("{prefix}perm:{{acme}}:v"))
        .await
        .unwrap();
    assert!(
        second.permissions.get(&key).await.hit().is_some(),
        "stale copy expected before the reconnect"
    );

    // Cut every subscriber connection while Redis keeps its data, as a partition would.
    let killed: i64 = admin
        .custom(fred::cmd!("CLIENT"), vec!["KILL", "TYPE", "pubsub"])
        .await
        .unwrap();
    assert!(
        killed >= 2,
        "expected both replicas' subscriptions to be cut, got {killed}"
    );

    let dropped = wait_until(Duration::from_secs(3), Duration::from_millis(5), || async {
        second.permissions.get(&key).await.hit().is_none()
    })
    .await;
    assert!(
        dropped.is_some(),
        "stale copy survived the lost subscription"
    );
    let recovered = wait_until(
        Duration::from_secs(5),
        Duration::from_millis(10),
        || async { second_replica.is_up() },
    )
    .await;
    assert!(
        recovered.is_some(),
        "second replica did not subscribe again"
    );
    assert!(
        second.permissions.get(&key).await.hit().is_none(),
        "Redis must miss after the version bump"
    );
}

#[tokio::test]
async fn redis_down_misses_fast_logs_once() {
    let logs = CapturedLogs::default();
    let _guard = logs.install();
    let mut server = throwaway_or_skip!();
    let caches_replica = replica(&server.url(), &unique_prefix("down")).await;
    let caches = bundle(&caches_replica);
    let key = common::key("acme", "juan", "hr");
    common::fill(&caches, &key, Permission::allowed(Role::Member)).await;
    assert!(caches.permissions.get(&key).await.hit().is_some());

    server.kill();
    let mut slowest = Duration::ZERO;
    for _ in 0..100 {
        let started = Instant::now();
        let lookup = caches.permissions.get(&key).await;
        slowest = slowest.max(started.elapsed());
        if let Lookup::Miss(ticket) = lookup {
            // Nothing is cached while Redis is down.
            caches
                .permissions
                .put(&key, Permission::allowed(Role::Member), ticket)
                .await;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    let timeout = config("redis://unused", "unused").command_timeout;
    assert!(
        slowest <= timeout + Duration::from_millis(100),
        "a lookup took {slowest:?}"
    );
    assert!(
        caches.permissions.get(&key).await.hit().is_none(),
        "hit while Redis is down"
    );
    assert!(!caches_replica.is_up());
    println!("slowest lookup while Redis was down: {slowest:?}");

    // Rate limits fall back to this replica's own limiter.
    let quota = Quota::new(2, Duration::from_secs(60)).unwrap();
    let limit = RateLimitKey::new("chat", Subject::User(UserId::parse("juan").unwrap()));
    assert_eq!(
        caches.rate_limiter.check(&limit, quota).await,
        RateDecision::Allowed
    );
    assert_eq!(
        caches.rate_limiter.check(&limit, quota).await,
        RateDecision::Allowed
    );
    assert!(matches!(
        caches.rate_limiter.check(&limit, quota).await,
        RateDecision::Limited { .. }
    ));

    server.restart();
    let recovered = wait_until(
        Duration::from_secs(5),
        Duration::from_millis(10),
        || async { caches_replica.is_up() },
    )
    .await;
    assert!(recovered.is_some(), "replica did not recover");
    for _ in 0..20 {
        common::fill(
            &caches,
            &common::key("acme", "juan", "sales"),
            Permission::denied(None),
        )
        .await;
        caches
            .permissions
            .invalidate(&PermissionScope::workspace(key.workspace.clone()))
            .await;
    }

    assert_eq!(logs.count(DOWN_LOG), 1, "outage logs:\n{}", logs.text());
    assert_eq!(logs.count(UP_LOG), 1, "recovery logs:\n{}", logs.text());
}

#[tokio::test]
async fn starts_down_then_connects() {
    let logs = CapturedLogs::default();
    let _guard = logs.install();
    let port = free_port();
    let url = format!("redis://127.0.0.1:{port}");

    let started = Instant::now();
    let caches_replica = std::sync::Arc::new(
        RedisCaches::connect(config(&url, &unique_prefix("late")))
            .await
            .unwrap(),
    );
    let connect_time = started.elapsed();
    assert!(!caches_replica.is_up());
    assert!(
        connect_time <= Duration::from_secs(2),
        "connect took {connect_time:?}"
    );

    let caches = bundle(&caches_replica);
    let key = common::key("acme", "juan", "hr");
    for _ in 0..20 {
        let started = Instant::now();
        assert!(caches.permissions.get(&key).await.hit().is_none());
        assert!(
            started.elapsed() < Duration::from_millis(50),
            "lookup stalled while Redis is down"
        );
    }
    assert_eq!(logs.count(DOWN_LOG), 1, "{}", logs.text());

    let Some(_server) = ThrowawayRedis::start_on_if_installed(port) else {
        return;
    };
    let connected = wait_until(
        Duration::from_secs(5),
        Duration::from_millis(10),
        || async { caches_replica.is_up() },
    )
    .await;
    assert!(
        connected.is_some(),
        "replica did not connect after Redis started\n{}",
        logs.text()
    );
    common::fill(&caches, &key, Permission::allowed(Role::Owner)).await;
    assert!(caches.permissions.get(&key).await.hit().is_some());
    assert_eq!(logs.count(UP_LOG), 1, "{}", logs.text());
}

#[tokio::test]
async fn stalled_redis_times_out_once() {
    let logs = CapturedLogs::default();
    let _guard = logs.install();
    let server = throwaway_or_skip!();
    let caches_replica = replica(&server.url(), &unique_prefix("stalled")).await;
    let caches = bundle(&caches_replica);
    let timeout = config("redis://unused", "unused").command_timeout;

    server.pause();
    let started = Instant::now();
    let first = caches
        .permissions
        .get(&common::key("acme", "juan", "hr"))
        .await;
    let first_time = started.elapsed();
    assert!(first.hit().is_none());
    assert!(
        first_time >= timeout,
        "the first lookup returned before the timeout: {first_time:?}"
    );
    assert!(
        first_time <= timeout + Duration::from_millis(100),
        "the first lookup took {first_time:?}"
    );

    // The outage is known now: later lookups do not wait at all.
    for _ in 0..50 {
        let started = Instant::now();
        assert!(
            caches
                .permissions
                .get(&common::key("acme", "ana", "hr"))
                .await
                .hit()
                .is_none()
        );
        assert!(
            started.elapsed() < Duration::from_millis(5),
            "lookup waited {:?}",
            started.elapsed()
        );
    }
    tokio::time::sleep(Duration::from_secs(1)).await;
    assert_eq!(logs.count(DOWN_LOG), 1, "{}", logs.text());

    server.resume();
    let recovered = wait_until(
        Duration::from_secs(5),
        Duration::from_millis(10),
        || async { caches_replica.is_up() },
    )
    .await;
    assert!(
        recovered.is_some(),
        "replica did not recover after Redis resumed"
    );
    assert_eq!(logs.count(UP_LOG), 1, "{}", logs.text());
}

#[tokio::test]
async fn tls_url_never_falls_back_to_plaintext() {
    let server = throwaway_or_skip!();
    // The throwaway server speaks plain TCP only, so a rediss:// replica must stay down.
    let url = format!("rediss://127.0.0.1:{}", server.port);
    let caches_replica = RedisCaches::connect(config(&url, &unique_prefix("tls")))
        .await
        .unwrap();
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert!(
        !caches_replica.is_up(),
        "connected in plaintext to a rediss:// URL"
    );
}
