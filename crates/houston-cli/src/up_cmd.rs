//! `houston up`: the whole product in one process on one machine.
//!
//! It runs the control plane on a SQLite file with in-process caches and rate limits, the
//! egress proxy, and agent runtimes in namespace sandboxes, and serves the web app. Where
//! namespaces are unavailable, runtimes fall back to plain child processes with a warning. With
//! `--database-url postgres://…` and `--redis-url redis://…`, several `houston up` processes
//! share one store and one cache as a fleet.
//!
//! Every replica runs its own agent runtimes (see [`crate::stack`]). Everything else it
//! stores lives under the home folder: `houston.db`, `agents/<agent-id>/` (the volumes),
//! `run/` (runtime sockets), `egress/` (per-agent egress sockets) and `egress.log`.

mod demo;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use clap::Args;
use houston_cache::client_ip::TrustedProxies;
use houston_cache::{CacheConfig, Caches, RedisConfig};
use houston_control_plane::chat::TurnTable;
use houston_control_plane::{ControlPlane, ControlPlaneOptions, IdentityConfig};
use houston_runtime::BackendKind;
use houston_store::Store;

use crate::stack::{self, NamespaceFallback, StackOptions, prepare_home};
use crate::telemetry;

/// Arguments of `houston up`.
#[derive(Debug, Args)]
pub struct UpArgs {
    /// Folder for the database, the agent volumes and the runtime sockets.
    #[arg(long, env = "HOUSTON_HOME", default_value = "./houston-data")]
    home: PathBuf,
    /// Address to listen on, HOST:PORT.
    #[arg(long, default_value = "127.0.0.1:8080")]
    listen: String,
    /// Seed the demo: workspace Acme, two users, the HR and Sales agents, one grant.
    #[arg(long)]
    demo: bool,
    /// Sandbox backend for agent runtimes: `namespace` or `process` (no isolation).
    #[arg(long, env = "HOUSTON_SANDBOX", default_value = "namespace")]
    sandbox: String,
    /// Idle timeout in seconds for every agent, overriding each agent's own setting.
    #[arg(long, env = "HOUSTON_IDLE_TIMEOUT_SECS")]
    idle_timeout_secs: Option<u64>,
    /// Folder with the built web app (`index.html` and `assets/`).
    #[arg(long, env = "HOUSTON_WEB_DIR", default_value = concat!(env!("CARGO_MANIFEST_DIR"), "/../../web/dist"))]
    web_dir: PathBuf,
    /// Metadata store: `postgres://…`, or empty for the SQLite file `houston.db` in the home
    /// folder. Replicas that share a Postgres database (and Redis) act as one fleet.
    #[arg(long, env = "HOUSTON_DATABASE_URL")]
    database_url: Option<String>,
    /// Redis for caches, rate limits and invalidation across replicas; empty for in-process.
    #[arg(long, env = "HOUSTON_REDIS_URL")]
    redis_url: Option<String>,
    /// Chat messages allowed per user and minute.
    #[arg(long, env = "HOUSTON_CHAT_PER_USER_PER_MINUTE", default_value_t = 60)]
    chat_per_user_per_minute: u32,
}

/// Runs `houston up` until Ctrl-C or SIGTERM.
pub fn run(args: UpArgs) -> anyhow::Result<()> {
    telemetry::init();
    let runtime = tokio::runtime::Builder::new_multi_thread().enable_all().build()?;
    runtime.block_on(serve(args))
}

async fn serve(args: UpArgs) -> anyhow::Result<()> {
    let home = prepare_home(&args.home)?;
    let (store, turn_table) = open_store(&home, args.database_url.as_deref()).await?;
    let caches = open_caches(args.redis_url.as_deref()).await?;
    let trusted_proxies = TrustedProxies::parse::<&str>(&[]).map_err(|e| anyhow::anyhow!("invalid trusted proxies: {e}"))?;
    let options = ControlPlaneOptions {
        store: store.clone(),
        caches,
        identity: IdentityConfig::default(),
        limits: houston_control_plane::config::LimitsConfig::default(),
        trusted_proxies,
        outbox_dir: Some(home.join("outbox")),
    };
    let control_plane = ControlPlane::new(options).await.context("failed to start the control plane")?;

    let backend: BackendKind = args
        .sandbox
        .parse()
        .map_err(|e| anyhow::anyhow!("invalid --sandbox {:?}: {e}", args.sandbox))?;
    if args.demo {
        demo::seed(store.as_ref(), &home).await.context("failed to seed the demo")?;
    }
    let stack_options = StackOptions {
        home: home.clone(),
        backend,
        namespace_fallback: NamespaceFallback::WarnAndUseProcess,
        idle_override: args.idle_timeout_secs.map(Duration::from_secs),
        chat_per_user_per_minute: args.chat_per_user_per_minute,
        provider_settings: BTreeMap::new(),
    };
    let chat = stack::build(&control_plane, store.clone(), turn_table, stack_options).await?;

    let app = houston_control_plane::router(control_plane.clone())
        .merge(chat.routes)
        .fallback_service(houston_control_plane::web_assets::router(&args.web_dir));
    let listener = tokio::net::TcpListener::bind(&args.listen)
        .await
        .with_context(|| format!("failed to listen on {}", args.listen))?;
    let address = listener.local_addr()?;
    println!("houston listening on http://{address}");
    tracing::info!(home = %home.display(), listen = %address, web_dir = %args.web_dir.display(), "houston up started");

    houston_control_plane::serve(control_plane, app, listener, shutdown_signal()).await?;
    chat.manager.shutdown().await;
    tracing::info!("houston up stopped");
    Ok(())
}

/// Opens the metadata store (Postgres when a URL is given, else SQLite in the home folder)
/// and returns it with the chat turn table on the same database.
async fn open_store(home: &Path, database_url: Option<&str>) -> anyhow::Result<(Arc<dyn Store>, TurnTable)> {
    match database_url.filter(|url| !url.is_empty()) {
        Some(url) => stack::open_store(url, None).await,
        None => stack::open_store(&format!("sqlite://{}", home.join("houston.db").display()), None).await,
    }
}

/// Connects the caches to Redis when a URL is given, else keeps them in process.
async fn open_caches(redis_url: Option<&str>) -> anyhow::Result<Caches> {
    match redis_url.filter(|url| !url.is_empty()) {
        Some(url) => Caches::redis(RedisConfig::new(secrecy::SecretString::from(url.to_owned())))
            .await
            .map_err(|e| anyhow::anyhow!("invalid Redis settings: {e}")),
        None => Caches::in_process(CacheConfig::default()).map_err(|e| anyhow::anyhow!("invalid cache settings: {e}")),
    }
}

async fn shutdown_signal() {
    let mut terminate = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())
        .expect("installing a SIGTERM handler succeeds in a Tokio runtime");
    tokio::select! {
        _ = tokio::signal::ctrl_c() => {}
        _ = terminate.recv() => {}
    }
    tracing::info!("shutdown requested");
}
