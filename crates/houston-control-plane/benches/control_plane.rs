//! Benchmark of the control plane's hot path, against Postgres:
//! - authentication plus authorization of one agent on a cache hit (target: median ≤ 50 µs),
//!   beside a baseline of one ES256 signature check;
//! - the same on a permission cache miss, which reads Postgres;
//! - requests per second of `GET /v1/agents` over 64 connections, beside a route that does
//!   no work, on the same machine.
//!
//! Run: `cargo bench -p houston-control-plane --bench control_plane` (needs `DATABASE_URL` or
//! Postgres on 127.0.0.1:5432).

#[path = "../tests/common/mod.rs"]
mod common;

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use common::{PASSWORD, app_on, in_process_caches, seed_tenants};
use houston_cache::PermissionScope;
use houston_control_plane::IdentityConfig;

const HIT_ITERATIONS: usize = 20_000;
const MISS_ITERATIONS: usize = 2_000;
const CONNECTIONS: usize = 64;
const LOAD_DURATION: Duration = Duration::from_secs(5);

fn summarize(name: &str, mut samples: Vec<Duration>) -> Duration {
    samples.sort();
    let median = samples[samples.len() / 2];
    let p99 = samples[samples.len() * 99 / 100];
    println!("{name}: median {:.1} µs, p99 {:.1} µs over {} runs", micros(median), micros(p99), samples.len());
    median
}

fn micros(duration: Duration) -> f64 {
    duration.as_secs_f64() * 1e6
}

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() {
    let store = houston_store::testing::postgres_store(10).await.expect("opening Postgres failed").expect("Postgres is required for this benchmark");
    let app = app_on(store, IdentityConfig::default(), in_process_caches()).await;
    let tenants = seed_tenants(&app).await;
    let token = app.login("juan@acme.test", PASSWORD).await;
    let state = app.state.clone();
    let agent = tenants.acme_hr.to_string();

    // Baseline: the ES256 signature check alone, as a verifier without a token cache pays it.
    let jwks = state.builtin.as_ref().unwrap().jwks().await;
    let key = jsonwebtoken::DecodingKey::from_jwk(&jwks.keys[0]).unwrap();
    let mut validation = jsonwebtoken::Validation::new(jsonwebtoken::Algorithm::ES256);
    validation.set_audience(&["houston"]);
    let mut baseline = Vec::with_capacity(2_000);
    for _ in 0..2_000 {
        let started = Instant::now();
        let decoded = jsonwebtoken::decode::<serde_json::Value>(&token, &key, &validation).unwrap();
        baseline.push(started.elapsed());
        std::hint::black_box(decoded);
    }
    let baseline_median = summarize("baseline: one ES256 signature check", baseline);

    let mut hits = Vec::with_capacity(HIT_ITERATIONS);
    for _ in 0..HIT_ITERATIONS {
        let started = Instant::now();
        let caller = state.authenticate(&token).await.unwrap();
        let found = state.authorize_agent(&caller, &agent, "bench.hit").await.unwrap();
        hits.push(started.elapsed());
        std::hint::black_box(found);
    }
    let hit_median = summarize("authenticate + authorize, cache hit", hits);
    println!("  ratio to the signature check: {:.2}", hit_median.as_secs_f64() / baseline_median.as_secs_f64());

    let mut misses = Vec::with_capacity(MISS_ITERATIONS);
    for _ in 0..MISS_ITERATIONS {
        state.caches.permissions.invalidate(&PermissionScope::user(tenants.acme.clone(), tenants.juan.clone())).await;
        let started = Instant::now();
        let caller = state.authenticate(&token).await.unwrap();
        let found = state.authorize_agent(&caller, &agent, "bench.miss").await.unwrap();
        misses.push(started.elapsed());
        std::hint::black_box(found);
    }
    let miss_median = summarize("authenticate + authorize, permission miss (Postgres)", misses);
    println!("  ratio to the cache hit: {:.1}", miss_median.as_secs_f64() / hit_median.as_secs_f64());
    state.flush().await;

    let router = houston_control_plane::router(state.clone()).route("/baseline", axum::routing::get(|| async { "ok" }));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let address = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, router).await.unwrap() });

    let baseline_rps = load(&format!("http://{address}/baseline"), &token).await;
    println!("GET /baseline (no work), {CONNECTIONS} connections: {baseline_rps:.0} requests/s");
    let agents_rps = load(&format!("http://{address}/v1/agents"), &token).await;
    println!("GET /v1/agents, {CONNECTIONS} connections: {agents_rps:.0} requests/s");
    println!("  ratio to the no-work route: {:.2}", agents_rps / baseline_rps);
}

/// Sends requests from 64 connections for [`LOAD_DURATION`] and returns completed requests
/// per second. Client and server share the machine's cores.
async fn load(url: &str, token: &str) -> f64 {
    let client = reqwest::Client::builder().pool_max_idle_per_host(CONNECTIONS).build().unwrap();
    let done = Arc::new(AtomicU64::new(0));
    let stop = Arc::new(AtomicBool::new(false));
    let started = Instant::now();
    let mut workers = Vec::new();
    for _ in 0..CONNECTIONS {
        let (client, done, stop, url, token) = (client.clone(), done.clone(), stop.clone(), url.to_owned(), token.to_owned());
        workers.push(tokio::spawn(async move {
            while !stop.load(Ordering::Relaxed) {
                let response = client.get(&url).bearer_auth(&token).send().await.expect("request failed");
                assert!(response.status().is_success(), "status {}", response.status());
                response.bytes().await.expect("reading the body failed");
                done.fetch_add(1, Ordering::Relaxed);
            }
        }));
    }
    tokio::time::sleep(LOAD_DURATION).await;
    stop.store(true, Ordering::Relaxed);
    for worker in workers {
        worker.await.unwrap();
    }
    done.load(Ordering::Relaxed) as f64 / started.elapsed().as_secs_f64()
}
