//! The flow on a fleet: two `houston up` replicas sharing Postgres and Redis. Juan chats
//! through one replica, the owner revokes his grant through the other, and the first replica
//! refuses him at once. With `CI=true` an unreachable Postgres or Redis fails the test;
//! without it the test is skipped with a message.

mod flow_support;

use std::time::{Duration, Instant};

use flow_support::{Houston, types, wait_until};
use houston_testkit::anthropic::StandIn;
use serde_json::json;

fn redis_url() -> String {
    std::env::var("REDIS_URL").unwrap_or_else(|_| "redis://127.0.0.1:6379".to_owned())
}

/// Returns true when Redis accepts TCP connections; panics under `CI=true` when it does not.
fn redis_reachable(url: &str) -> bool {
    let address = url.trim_start_matches("redis://").split('/').next().unwrap_or_default();
    let address = address.rsplit('@').next().unwrap_or(address);
    match std::net::TcpStream::connect(address) {
        Ok(_) => true,
        Err(error) if std::env::var("CI").as_deref() == Ok("true") => {
            panic!("Redis at {url} is unreachable and CI=true: {error}")
        }
        Err(error) => {
            eprintln!("skipping the fleet flow: Redis at {url} is unreachable ({error})");
            false
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn fleet_chat_then_revoke_elsewhere() {
    let Some(database_url) = houston_store::testing::fresh_postgres_url().await else { return };
    let redis = redis_url();
    if !redis_reachable(&redis) {
        return;
    }
    let stand_in = StandIn::start().await;
    let dir = tempfile::tempdir().unwrap();
    let env = [
        ("ANTHROPIC_API_KEY", "test-key".to_owned()),
        ("ANTHROPIC_BASE_URL", stand_in.base_url()),
        ("HOUSTON_DATABASE_URL", database_url),
        ("HOUSTON_REDIS_URL", redis),
    ];
    let first = Houston::start(&dir.path().join("first"), &["--demo"], &env);
    let mut second = Houston::start(&dir.path().join("second"), &[], &env);
    assert!(second.passwords.is_empty(), "the second replica seeds nothing");
    second.passwords = first.passwords.clone();

    let juan = second.login("juan@acme.test").await;
    let admin = second.login("admin@acme.test").await;
    let events = first.chat(&juan, json!({"agent_id": "hr", "message": "what's our vacation policy?"})).await;
    assert_eq!(types(&events).last(), Some(&"turn.completed"), "a token from one replica works on the other");

    let audited = wait_until(Duration::from_secs(10), async || {
        let audit = second.get_json(&admin, "/v1/workspaces/acme/audit?action=turn.finished").await;
        audit.to_string().contains(events[0].turn_id.as_str())
    })
    .await;
    assert!(audited, "the second replica reads the turn's audit row from the shared store");

    let me = first.get_json(&juan, "/v1/me").await;
    let juan_id = me["user"]["id"].as_str().unwrap().to_owned();
    let revoke = second
        .client
        .delete(format!("{}/v1/workspaces/acme/agents/hr/grants/{juan_id}", second.url))
        .bearer_auth(&admin)
        .send()
        .await
        .unwrap();
    assert_eq!(revoke.status(), 204);
    let revoked_at = Instant::now();

    let refused = wait_until(Duration::from_secs(5), async || {
        let response = first.post_chat(&juan, json!({"agent_id": "hr", "message": "still there?"})).await;
        response.status() == 404
    })
    .await;
    assert!(refused, "the first replica refuses Juan after the revoke");
    let delay = revoked_at.elapsed();
    assert!(delay < Duration::from_secs(1), "the revoke reached the other replica in {delay:?}");
    let agents = first.get_json(&juan, "/v1/agents").await;
    assert_eq!(agents["agents"], json!([]), "Juan's agent list is empty on the first replica");
}
