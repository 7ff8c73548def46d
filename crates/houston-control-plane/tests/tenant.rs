//! Tenant isolation: a user of one workspace never reaches another workspace's agents,
//! whatever ids, headers or cached entries are involved. A revoke reaches every replica.

mod common;

use std::time::{Duration, Instant};

use axum::body::Body;
use axum::http::{Method, Request, StatusCode};
use common::{PASSWORD, TestApp, app_on, apps, seed_tenants};
use houston_cache::{Caches, Lookup, Permission, PermissionKey, RedisConfig, Role};
use houston_control_plane::IdentityConfig;

async fn get_with_headers(app: &TestApp, path: &str, token: &str, headers: &[(&str, &str)]) -> StatusCode {
    let mut builder = Request::builder().method(Method::GET).uri(path).header("authorization", format!("Bearer {token}"));
    for (name, value) in headers {
        builder = builder.header(*name, *value);
    }
    app.send(builder.body(Body::empty()).unwrap()).await.status
}

#[tokio::test]
async fn other_workspace_agents_unreachable() {
    for app in apps(IdentityConfig::default()).await {
        let backend = app.backend;
        let tenants = seed_tenants(&app).await;
        let juan = app.login("juan@acme.test", PASSWORD).await;
        let bob = app.login("bob@globex.test", PASSWORD).await;
        assert_eq!(app.get(&format!("/v1/agents/{}", tenants.globex_hr), &bob).await.status, StatusCode::OK, "{backend}");

        let spoofing_headers = [
            ("x-workspace-id", tenants.globex.as_str()),
            ("x-user-id", tenants.bob.as_str()),
            ("x-forwarded-for", "10.0.0.1"),
            ("x-houston-workspace", "globex"),
        ];
        let globex_hr = format!("/v1/agents/{}", tenants.globex_hr);
        for path in [globex_hr.as_str(), "/v1/agents/finance", "/v1/agents/globex", "/v1/agents/..%2Fglobex"] {
            assert_eq!(get_with_headers(&app, path, &juan, &[]).await, StatusCode::NOT_FOUND, "{backend}: {path}");
            assert_eq!(get_with_headers(&app, path, &juan, &spoofing_headers).await, StatusCode::NOT_FOUND, "{backend}: {path} with headers");
        }

        // The slug `hr` exists in both workspaces; Juan's resolves inside Acme only.
        let hr = app.get("/v1/agents/hr", &juan).await;
        assert_eq!(hr.body["id"], tenants.acme_hr.as_str(), "{backend}");
        let bob_hr = app.get("/v1/agents/hr", &bob).await;
        assert_eq!(bob_hr.body["id"], tenants.globex_hr.as_str(), "{backend}");

        let filtered = app.get(&format!("/v1/agents?workspace_id={}", tenants.globex), &juan).await;
        assert_eq!(filtered.body["agents"].as_array().unwrap().len(), 0, "{backend}");
        for path in ["/v1/workspaces/globex/members", "/v1/workspaces/globex/audit", "/v1/workspaces/globex/agents"] {
            let answer = app.get(path, &juan).await;
            assert_eq!(answer.status, StatusCode::NOT_FOUND, "{backend}: {path}");
        }
        let grant = format!("/v1/workspaces/globex/agents/hr/grants/{}", tenants.juan);
        assert_eq!(app.call(Method::PUT, &grant, Some(&juan), None).await.status, StatusCode::NOT_FOUND, "{backend}");
    }
}

#[tokio::test]
async fn poisoned_cache_entries_never_used() {
    for app in apps(IdentityConfig::default()).await {
        let backend = app.backend;
        let tenants = seed_tenants(&app).await;
        let juan = app.login("juan@acme.test", PASSWORD).await;
        let permissions = &app.state.caches.permissions;

        // Entries under Juan's own workspace, or under the agent's workspace for another
        // user, must not open Globex's agent to him: the key is built from the agent's
        // stored workspace and the verified user.
        let poisoned = [
            PermissionKey::new(tenants.acme.clone(), tenants.juan.clone(), tenants.globex_hr.clone()),
            PermissionKey::new(tenants.globex.clone(), tenants.bob.clone(), tenants.globex_hr.clone()),
        ];
        for key in &poisoned {
            let Lookup::Miss(ticket) = permissions.get(key).await else { panic!("{backend}: unexpected hit") };
            permissions.put(key, Permission::allowed(Role::Owner), ticket).await;
        }
        let answer = app.get(&format!("/v1/agents/{}", tenants.globex_hr), &juan).await;
        assert_eq!(answer.status, StatusCode::NOT_FOUND, "{backend}");

        // A cached denial stays a denial, because the store's decision is what gets cached.
        let own_key = PermissionKey::new(tenants.globex.clone(), tenants.juan.clone(), tenants.globex_hr.clone());
        let cached = permissions.get(&own_key).await.hit();
        assert_eq!(cached.map(|permission| permission.allowed), Some(false), "{backend}");
    }
}

/// Two replicas on one Postgres database and one Redis; a revoke on the first must be
/// refused on the second within 100 ms.
#[tokio::test]
async fn revoke_reaches_second_replica() {
    let Some(store) = houston_store::testing::postgres_store(5).await.unwrap() else {
        return;
    };
    let redis_url = std::env::var("REDIS_URL").unwrap_or_else(|_| "redis://127.0.0.1:6379".to_owned());
    let prefix = format!("houston-test-{}", uuid::Uuid::new_v4().simple());
    let redis_caches = || async {
        let mut config = RedisConfig::new(redis_url.clone().into());
        config.key_prefix = prefix.clone();
        Caches::redis(config).await.expect("creating the Redis caches failed")
    };
    if !redis_reachable(&redis_url).await {
        assert_ne!(std::env::var("CI").as_deref(), Ok("true"), "Redis at {redis_url} is unreachable and CI=true");
        eprintln!("skipping: Redis at {redis_url} is unreachable");
        return;
    }
    let first = app_on(store.share(), IdentityConfig::default(), redis_caches().await).await;
    let second = app_on(store, IdentityConfig::default(), redis_caches().await).await;
    let tenants = seed_tenants(&first).await;
    let juan = first.login("juan@acme.test", PASSWORD).await;
    let alice = first.login("alice@acme.test", PASSWORD).await;

    let path = format!("/v1/agents/{}", tenants.acme_hr);
    assert_eq!(second.get(&path, &juan).await.status, StatusCode::OK, "the second replica caches the grant");
    assert_eq!(second.get(&path, &juan).await.status, StatusCode::OK);

    let revoke = format!("/v1/workspaces/acme/agents/hr/grants/{}", tenants.juan);
    assert_eq!(first.call(Method::DELETE, &revoke, Some(&alice), None).await.status, StatusCode::NO_CONTENT);
    let revoked_at = Instant::now();
    let mut status = second.get(&path, &juan).await.status;
    while status == StatusCode::OK && revoked_at.elapsed() < Duration::from_secs(6) {
        tokio::time::sleep(Duration::from_millis(5)).await;
        status = second.get(&path, &juan).await.status;
    }
    let elapsed = revoked_at.elapsed();
    println!("the revoke was refused on the second replica after {elapsed:?}");
    assert_eq!(status, StatusCode::NOT_FOUND);
    assert!(elapsed < Duration::from_millis(100), "took {elapsed:?}");
}

async fn redis_reachable(url: &str) -> bool {
    let address = url.trim_start_matches("redis://").split('/').next().unwrap_or("127.0.0.1:6379").to_owned();
    tokio::time::timeout(Duration::from_secs(1), tokio::net::TcpStream::connect(address)).await.is_ok_and(|result| result.is_ok())
}

/// With Redis unreachable, grant checks fall back to the store: grants still work, a revoke
/// still takes effect, and no decision comes from a stale copy.
#[tokio::test]
async fn redis_down_served_from_store() {
    let store = houston_store::testing::sqlite_store(5).await.unwrap();
    // Port 1 on loopback has no listener, so every Redis command fails at once.
    let mut config = RedisConfig::new("redis://127.0.0.1:1".to_owned().into());
    config.key_prefix = format!("houston-test-{}", uuid::Uuid::new_v4().simple());
    let caches = Caches::redis(config).await.expect("an unreachable Redis must not fail start-up");
    let app = app_on(store, IdentityConfig::default(), caches).await;
    let tenants = seed_tenants(&app).await;
    let juan = app.login("juan@acme.test", PASSWORD).await;
    let alice = app.login("alice@acme.test", PASSWORD).await;

    let path = format!("/v1/agents/{}", tenants.acme_hr);
    let started = Instant::now();
    assert_eq!(app.get(&path, &juan).await.status, StatusCode::OK);
    assert_eq!(app.get(&path, &juan).await.status, StatusCode::OK);
    assert!(started.elapsed() < Duration::from_secs(5), "requests stalled on Redis: {:?}", started.elapsed());

    let revoke = format!("/v1/workspaces/acme/agents/hr/grants/{}", tenants.juan);
    assert_eq!(app.call(Method::DELETE, &revoke, Some(&alice), None).await.status, StatusCode::NO_CONTENT);
    assert_eq!(app.get(&path, &juan).await.status, StatusCode::NOT_FOUND, "the revoke takes effect without Redis");
}
