//! Micro-benchmark of the cache hit path and of one Redis round trip.
//!
//! Run with `cargo run --release -p houston-cache --example cache_bench`. It needs Redis at
//! `REDIS_URL` (default `redis://127.0.0.1:6379`) for the Redis rows and prints the median and
//! 99th percentile of each operation in nanoseconds, next to a plain `HashMap` lookup as the
//! baseline measured in the same run.

use std::collections::HashMap;
use std::future::Future;
use std::hint::black_box;
use std::sync::Arc;
use std::time::{Duration, Instant};

use fred::prelude::{Builder, ClientLike, Config};
use houston_cache::{
    CacheConfig, Caches, Lookup, Permission, PermissionKey, Quota, RateLimitKey, RedisCaches,
    RedisConfig, Role, Subject,
};
use houston_protocol::{AgentId, UserId, WorkspaceId};
use secrecy::SecretString;

/// Operations per sample; the sample's mean is one data point.
const BATCH: u32 = 200;
/// Samples per operation.
const SAMPLES: usize = 300;

fn key(user: &str) -> PermissionKey {
    PermissionKey::new(
        WorkspaceId::parse("0193a5c2-7b1e-7c4e-9d7e-2f0a1b2c3d4e").unwrap(),
        UserId::parse(user).unwrap(),
        AgentId::parse("0193a5c2-7b1e-7c4e-9d7e-aaaaaaaaaaaa").unwrap(),
    )
}

/// Times `operation` in batches and prints the median and p99 of the per-operation time.
async fn measure<F, Fut>(name: &str, batch: u32, operation: F) -> f64
where
    F: Fn() -> Fut,
    Fut: Future<Output = ()>,
{
    let mut per_operation: Vec<f64> = Vec::with_capacity(SAMPLES);
    for _ in 0..SAMPLES {
        let started = Instant::now();
        for _ in 0..batch {
            operation().await;
        }
        per_operation.push(started.elapsed().as_nanos() as f64 / f64::from(batch));
    }
    per_operation.sort_by(f64::total_cmp);
    let median = per_operation[SAMPLES / 2];
    let p99 = per_operation[SAMPLES * 99 / 100];
    println!("{name:<46} median {median:>10.0} ns   p99 {p99:>10.0} ns");
    median
}

async fn fill(caches: &Caches, key: &PermissionKey) {
    if let Lookup::Miss(ticket) = caches.permissions.get(key).await {
        caches
            .permissions
            .put(key, Permission::allowed(Role::Member), ticket)
            .await;
    }
    assert!(
        caches.permissions.get(key).await.hit().is_some(),
        "entry was not cached"
    );
}

async fn bench_local() -> f64 {
    let hit_key = key("juan");
    let mut map = HashMap::new();
    map.insert(hit_key.clone(), Permission::allowed(Role::Member));
    let baseline = measure("baseline: HashMap::get", BATCH, || async {
        black_box(map.get(black_box(&hit_key)).copied());
    })
    .await;

    let caches = Caches::in_process(CacheConfig::default()).unwrap();
    fill(&caches, &hit_key).await;
    let hit = measure("in-process cache hit", BATCH, || async {
        black_box(caches.permissions.get(black_box(&hit_key)).await);
    })
    .await;
    println!("{:<46} {:.1}x the baseline", "", hit / baseline);

    let limiter = houston_cache::InProcessRateLimiter::new();
    let quota = Quota::new(u32::MAX, Duration::from_secs(1)).unwrap();
    let limit = RateLimitKey::new("bench", Subject::User(UserId::parse("juan").unwrap()));
    measure("in-process rate limit check", BATCH, || async {
        black_box(limiter.check_now(black_box(&limit), quota));
    })
    .await;
    baseline
}

async fn bench_redis(url: String, baseline: f64) {
    let mut config = RedisConfig::new(SecretString::from(url.clone()));
    config.key_prefix = format!("bench:{}:", uuid::Uuid::new_v4().simple());
    let replica = Arc::new(RedisCaches::connect(config).await.unwrap());
    if !replica.is_up() {
        println!("Redis at {url} is unreachable; skipping the Redis rows");
        return;
    }
    let caches = Caches {
        permissions: replica.clone(),
        routes: replica.clone(),
        rate_limiter: replica.clone(),
    };

    let hit_key = key("juan");
    fill(&caches, &hit_key).await;
    let hit = measure("Redis cache, local hit", BATCH, || async {
        black_box(caches.permissions.get(black_box(&hit_key)).await);
    })
    .await;
    println!("{:<46} {:.1}x the baseline", "", hit / baseline);

    let raw = Builder::from_config(Config::from_url(&url).unwrap())
        .build()
        .unwrap();
    raw.init().await.unwrap();
    measure("baseline: Redis PING round trip (fred)", 20, || async {
        let _: () = raw.ping(None).await.unwrap();
    })
    .await;

    let miss_key = key("nobody");
    measure("Redis cache, miss (one EVALSHA round trip)", 20, || async {
        black_box(caches.permissions.get(black_box(&miss_key)).await);
    })
    .await;

    let quota = Quota::new(u32::MAX, Duration::from_secs(1)).unwrap();
    let limit = RateLimitKey::new("bench", Subject::User(UserId::parse("juan").unwrap()));
    measure("Redis rate limit check (one EVALSHA)", 20, || async {
        black_box(caches.rate_limiter.check(&limit, quota).await);
    })
    .await;
}

fn main() {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    runtime.block_on(async {
        let baseline = bench_local().await;
        let url = std::env::var("REDIS_URL").unwrap_or_else(|_| "redis://127.0.0.1:6379".into());
        bench_redis(url, baseline).await;
    });
}
