//! The engine's HTTP API, on a Unix socket or TCP, authenticated with the engine token.
//!
//! | route | purpose |
//! |---|---|
//! | `POST /v1/sessions/{session_id}/turns` | start a turn and stream its events |
//! | `GET /v1/sessions/{session_id}/turns/{turn_id}/events` | replay after `?after=N` or `Last-Event-ID`, then follow |
//! | `POST /v1/sessions/{session_id}/turns/{turn_id}/cancel` | cancel a running turn |
//! | `POST /v1/sessions/{session_id}/turns/{turn_id}/approvals/{call_id}` | `{"approve": bool}` for a tool call waiting for approval |
//! | `GET /v1/users/{user_id}/sessions` | a user's sessions |
//! | `GET /v1/sessions/{session_id}?user_id=` | a session's history, for its owner only |
//! | `GET /v1/health`, `GET /v1/version` | liveness (no token) and build information |

mod error;
mod extract;
mod routes;
mod sse;

use std::future::Future;
use std::path::Path;
use std::sync::Arc;

use axum::Router;
use axum::extract::{Request, State};
use axum::middleware::{self, Next};
use axum::response::Response;
use axum::routing::{get, post};
use axum::serve::ListenerExt;
use houston_protocol::EngineEndpoint;
use secrecy::ExposeSecret;
use subtle::ConstantTimeEq;
use tokio::net::{TcpListener, UnixListener};
use tokio_util::task::TaskTracker;

pub use error::{ApiError, FieldError};

use crate::config::EngineConfig;
use crate::folder::AgentFolder;
use crate::providers::ModelProvider;
use crate::sessions::SessionStore;
use crate::tools::Toolbox;
use crate::turns::{TurnEnv, TurnRegistry};

/// Error of the HTTP server.
#[derive(Debug, thiserror::Error)]
pub enum ServeError {
    #[error("the HTTP server failed: {0}")]
    Io(#[from] std::io::Error),
}

/// A bound listener, TCP or Unix socket.
#[derive(Debug)]
pub enum EngineListener {
    Tcp(TcpListener),
    Unix(UnixListener),
}

impl EngineListener {
    /// Binds `endpoint`. A stale socket file at a Unix path is removed first.
    ///
    /// # Errors
    /// Returns the I/O error of the bind.
    pub async fn bind(endpoint: &EngineEndpoint) -> std::io::Result<Self> {
        match endpoint {
            EngineEndpoint::Tcp(address) => Ok(Self::Tcp(TcpListener::bind(address.as_str()).await?)),
            EngineEndpoint::Unix(path) => {
                remove_stale_socket(path)?;
                Ok(Self::Unix(UnixListener::bind(path)?))
            }
        }
    }

    /// Returns the bound address, with the real port when port 0 was requested.
    ///
    /// # Errors
    /// Returns the I/O error of reading the local address.
    pub fn local_endpoint(&self) -> std::io::Result<EngineEndpoint> {
        match self {
            Self::Tcp(listener) => Ok(EngineEndpoint::Tcp(listener.local_addr()?.to_string())),
            Self::Unix(listener) => {
                let address = listener.local_addr()?;
                let path = address.as_pathname().map(Path::to_path_buf).unwrap_or_default();
                Ok(EngineEndpoint::Unix(path))
            }
        }
    }
}

fn remove_stale_socket(path: &Path) -> std::io::Result<()> {
    use std::os::unix::fs::FileTypeExt;
    match std::fs::symlink_metadata(path) {
        Ok(metadata) if metadata.file_type().is_socket() => std::fs::remove_file(path),
        _ => Ok(()),
    }
}

/// Shared state of the handlers.
pub struct AppState {
    pub(crate) config: EngineConfig,
    pub(crate) env: Arc<TurnEnv>,
}

impl AppState {
    pub(crate) fn new(
        config: EngineConfig,
        folder: Arc<AgentFolder>,
        provider: Arc<dyn ModelProvider>,
        toolbox: Toolbox,
        registry: TurnRegistry,
    ) -> Self {
        let env = TurnEnv {
            store: SessionStore::new(&folder.root),
            folder,
            provider,
            toolbox,
            registry: Arc::new(registry),
            tracker: TaskTracker::new(),
            history_budget_tokens: config.history_budget_tokens,
            max_model_rounds: config.max_model_rounds.max(1),
        };
        Self { config, env: Arc::new(env) }
    }
}

fn router(state: Arc<AppState>) -> Router {
    let authenticated = Router::new()
        .route("/v1/version", get(routes::version))
        .route("/v1/sessions/{session_id}/turns", post(routes::start_turn))
        .route("/v1/sessions/{session_id}/turns/{turn_id}/events", get(routes::turn_events))
        .route("/v1/sessions/{session_id}/turns/{turn_id}/cancel", post(routes::cancel_turn))
        .route("/v1/sessions/{session_id}/turns/{turn_id}/approvals/{call_id}", post(routes::decide_approval))
        .route("/v1/users/{user_id}/sessions", get(routes::list_sessions))
        .route("/v1/sessions/{session_id}", get(routes::get_session))
        .layer(middleware::from_fn_with_state(state.clone(), require_token));
    Router::new().route("/v1/health", get(routes::health)).merge(authenticated).with_state(state)
}

async fn require_token(State(state): State<Arc<AppState>>, request: Request, next: Next) -> Result<Response, ApiError> {
    let presented = request
        .headers()
        .get(axum::http::header::AUTHORIZATION)
        .and_then(|value| value.to_str().ok())
        .and_then(|value| value.strip_prefix("Bearer "))
        .unwrap_or_default();
    let expected = state.config.token.expose_secret();
    if expected.is_empty() || !bool::from(presented.as_bytes().ct_eq(expected.as_bytes())) {
        tracing::info!(path = %request.uri().path(), "rejected a request without a valid engine token");
        return Err(ApiError::unauthorized());
    }
    Ok(next.run(request).await)
}

/// Serves until `shutdown` resolves, then stops admitting turns, lets open turns finish for
/// the configured grace period, cancels the rest, waits until all are stored and returns.
pub(crate) async fn serve(
    state: Arc<AppState>,
    listener: EngineListener,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> Result<(), ServeError> {
    let app = router(state.clone());
    let (stopped, stop) = tokio::sync::oneshot::channel::<()>();
    let draining = state.clone();
    tokio::spawn(async move {
        shutdown.await;
        drain(&draining).await;
        let _ = stopped.send(());
    });
    let stop = async move {
        let _ = stop.await;
    };
    match listener {
        EngineListener::Tcp(listener) => {
            // Tokens are small writes; without TCP_NODELAY, Nagle's algorithm holds each one
            // until the previous write is acknowledged.
            let listener = listener.tap_io(|stream| {
                if let Err(error) = stream.set_nodelay(true) {
                    tracing::debug!(%error, "failed to set TCP_NODELAY");
                }
            });
            axum::serve(listener, app).with_graceful_shutdown(stop).await?;
        }
        EngineListener::Unix(listener) => axum::serve(listener, app).with_graceful_shutdown(stop).await?,
    }
    state.env.tracker.close();
    state.env.tracker.wait().await;
    tracing::info!("engine stopped");
    Ok(())
}

async fn drain(state: &AppState) {
    let env = &state.env;
    env.registry.close();
    env.tracker.close();
    let running = env.registry.running().len();
    tracing::info!(running_turns = running, "shutting down: no new turns are accepted");
    if tokio::time::timeout(state.config.shutdown_grace, env.tracker.wait()).await.is_err() {
        let running = env.registry.running();
        tracing::warn!(running_turns = running.len(), "cancelling the turns still open after the grace period");
        for handle in running {
            handle.cancel.cancel();
        }
        env.tracker.wait().await;
    }
}
