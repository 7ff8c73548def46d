//! The control plane of Houston Cloud: the public API in front of the agents.
//!
//! It authenticates callers (a built-in issuer with passwords, and external issuers such as
//! Supabase or any OIDC provider), decides which agents each caller may use (grants, cache
//! first and the store behind), administers workspaces, and records what happened (audit
//! log, usage events). The chat flow lives in [`chat`], the web app's files in
//! [`web_assets`].
//!
//! Other crates use it through:
//! - [`ControlPlane::new`] and [`router`], to serve the API (merge more routes into it);
//! - [`AuthenticatedUser`], the extractor for the verified caller;
//! - [`ControlPlane::authorize_agent`], which resolves an agent id or slug, checks the
//!   grant, audits the decision and answers an unknown and a forbidden agent alike;
//! - [`ControlPlane::record_usage`] and [`ControlPlane::record_session`];
//! - [`seed`], to create workspaces, users, agents and grants;
//! - [`run`], which serves a bound listener until a shutdown future completes.
//!
//! Invariants: the tenant comes from the verified token and the store, never from a client
//! header. No store connection is held across a response stream or an await on another
//! service, because every store call returns its connection before it completes.

pub mod access;
pub mod auth;
pub mod chat;
pub mod config;
pub mod connections;
pub mod error;
pub mod extract;
pub mod openapi;
pub mod outbox;
pub mod routes;
pub mod seed;
pub mod state;
pub mod web_assets;

use std::future::Future;
use std::net::SocketAddr;
use std::time::Duration;

use axum::Router;
use axum::routing::{get, post, put};
use houston_cache::client_ip::TrustedProxies;
use houston_cache::{CacheConfig, Caches};
use houston_store::StoreOptions;
use secrecy::ExposeSecret;
use tokio::net::TcpListener;

pub use auth::{AuthenticatedUser, Claims, IdentityConfig, TokenError};
pub use config::ServeConfig;
pub use error::{ApiError, FieldErrors};
pub use state::{AppState, ControlPlane, ControlPlaneOptions, UsageRecord};

/// Returns the control plane's own routes (identity, agents, administration, OpenAPI).
/// Merge the chat routes and the web app into it.
pub fn router(state: AppState) -> Router {
    use routes::{admin, agents, identity};

    Router::new()
        .route("/v1/auth/config", get(identity::auth_config))
        .route("/v1/login", post(identity::login))
        .route("/v1/token/refresh", post(identity::refresh))
        .route("/v1/logout", post(identity::logout))
        .route("/.well-known/jwks.json", get(identity::jwks))
        .route("/v1/me", get(identity::me))
        .route("/v1/workspaces", get(identity::workspaces))
        .route("/v1/agents", get(agents::list_agents))
        .route("/v1/agents/{agent}", get(agents::get_agent))
        .route("/v1/invitations/accept", post(admin::accept_invitation))
        .route("/v1/workspaces/{workspace}/members", get(admin::list_members).post(admin::add_member))
        .route("/v1/workspaces/{workspace}/members/{user_id}", axum::routing::patch(admin::update_member).delete(admin::remove_member))
        .route("/v1/workspaces/{workspace}/invitations", post(admin::create_invitation))
        .route("/v1/workspaces/{workspace}/agents", get(admin::list_workspace_agents).post(admin::create_agent))
        .route("/v1/workspaces/{workspace}/agents/{agent}", axum::routing::patch(admin::update_agent).delete(admin::delete_agent))
        .route("/v1/workspaces/{workspace}/grants", get(admin::list_grants))
        .route("/v1/workspaces/{workspace}/agents/{agent}/grants/{user_id}", put(admin::put_grant).delete(admin::delete_grant))
        .route("/v1/workspaces/{workspace}/audit", get(admin::list_audit))
        .route("/v1/workspaces/{workspace}/usage", get(admin::usage))
        .route("/v1/openapi.json", get(openapi::serve))
        .with_state(state)
}

/// Start-up or serving failure of `houston serve`.
#[derive(Debug, thiserror::Error)]
pub enum RunError {
    #[error("opening the store failed")]
    Store(#[from] houston_store::StoreError),
    #[error("setting up the caches failed: {0}")]
    Caches(String),
    #[error(transparent)]
    Start(#[from] state::StartError),
    #[error("serving HTTP failed")]
    Serve(#[from] std::io::Error),
}

/// Builds the control plane from `config`: store (migrated), caches (Redis when
/// `redis_url` is set, else in process) and identity.
///
/// # Errors
/// [`RunError`] when a dependency cannot be set up.
pub async fn build(config: &ServeConfig) -> Result<AppState, RunError> {
    let mut store_options = StoreOptions::new(config.database_url.expose_secret());
    store_options.max_connections = config.database_max_connections;
    let store = houston_store::connect(&store_options).await?;
    build_on(config, store).await
}

/// Builds the control plane from `config` on a store the caller opened, for a caller that
/// also needs the store's connection pool (the chat turn table).
///
/// # Errors
/// [`RunError`] when the caches or the identity cannot be set up.
pub async fn build_on(config: &ServeConfig, store: std::sync::Arc<dyn houston_store::Store>) -> Result<AppState, RunError> {
    let caches = match &config.redis_url {
        Some(url) => Caches::redis(houston_cache::RedisConfig::new(url.clone())).await.map_err(|error| RunError::Caches(error.to_string()))?,
        None => Caches::in_process(CacheConfig::default()).map_err(|error| RunError::Caches(error.to_string()))?,
    };
    let trusted_proxies = TrustedProxies::parse(&config.trusted_proxies).map_err(|error| RunError::Caches(error.to_string()))?;
    let options = state::ControlPlaneOptions {
        store,
        caches,
        identity: config.identity.clone(),
        limits: config.limits.clone(),
        trusted_proxies,
        outbox_dir: config.outbox_dir.clone(),
    };
    Ok(ControlPlane::new(options).await?)
}

/// Serves `app` on `listener` until `shutdown` completes, then stores every queued audit
/// entry and usage event (waiting at most 10 s).
///
/// # Errors
/// [`RunError::Serve`] when the listener fails.
pub async fn serve(state: AppState, app: Router, listener: TcpListener, shutdown: impl Future<Output = ()> + Send + 'static) -> Result<(), RunError> {
    let address = listener.local_addr()?;
    tracing::info!(listen = %address, "control plane listening");
    // Graceful shutdown waits for every open request, so long polls watch this signal and
    // answer at once instead of holding the stop for their whole wait.
    let stopping = ShutdownSignal::default();
    let app = app.layer(axum::Extension(stopping.clone()));
    let shutdown = async move {
        shutdown.await;
        stopping.0.cancel();
    };
    // Without TCP_NODELAY, Nagle's algorithm holds each small stream event until the client's
    // delayed ACK (about 40 ms on Linux), so every token would arrive late.
    let listener = axum::serve::ListenerExt::tap_io(listener, |tcp| {
        if let Err(error) = tcp.set_nodelay(true) {
            tracing::debug!(%error, "failed to set TCP_NODELAY on a connection");
        }
    });
    axum::serve(listener, app.into_make_service_with_connect_info::<SocketAddr>()).with_graceful_shutdown(shutdown).await?;
    tracing::info!("control plane stopped accepting requests; writing queued records");
    if tokio::time::timeout(Duration::from_secs(10), state.flush()).await.is_err() {
        tracing::error!(
            audit = state.audit.queued(),
            usage = state.usage.queued(),
            "queued records were not written within 10 s and are lost"
        );
    }
    Ok(())
}

/// Shutdown of the server, cancelled by [`serve`] when its shutdown future completes. Handlers
/// that wait (such as `GET …/connections?wait_for=`) read it as a request extension.
#[derive(Clone, Debug, Default)]
pub struct ShutdownSignal(pub tokio_util::sync::CancellationToken);

/// Runs `houston serve`: builds the control plane from `config` and serves its routes on
/// `listener` until `shutdown` completes.
///
/// This serves identity, agents and administration only, because the chat routes need a
/// runtime manager and an egress proxy. The `houston serve` command builds those from
/// `config.runtime`, merges `chat::router` and `connections::router`, and calls [`serve`].
///
/// # Errors
/// [`RunError`] when start-up or serving fails.
pub async fn run(config: ServeConfig, listener: TcpListener, shutdown: impl Future<Output = ()> + Send + 'static) -> Result<(), RunError> {
    let state = build(&config).await?;
    let app = router(state.clone());
    serve(state, app, listener, shutdown).await
}
