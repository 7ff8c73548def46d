//! The per-agent runtime: one agent folder that serves streamed chat turns over HTTP.
//!
//! The engine owns one agent folder (`houston.json`, `CLAUDE.md`, skills, `knowledge/` and
//! `.houston/`). For each turn it stores the user message, builds the prompt from the persona,
//! the skill and knowledge index and the session history, calls the configured model provider
//! with streaming, runs the tools the model asks for, stores the answer and streams events to
//! the caller.
//!
//! Invariants:
//! - Only one turn at a time writes a session file, so records never interleave.
//! - Every accepted turn ends stored as completed, failed or cancelled, unless the process is
//!   killed, and then the next turn on that session records it as failed.
//! - Secrets (the engine token, provider keys) live in [`secrecy`] wrappers and are never
//!   logged or written into the folder.
//!
//! Library entry points: [`Engine::open`] then [`Engine::serve`], or [`run`] for both.

pub mod config;
pub mod folder;
pub mod http;
pub mod prompt;
pub mod providers;
pub mod server;
pub mod sessions;
pub mod tools;
pub mod turns;

use std::future::Future;
use std::sync::Arc;

pub use config::{EngineConfig, ProviderKind, ProviderSettings};
/// Re-exported so callers build [`EngineConfig::token`] without their own `secrecy` dependency.
pub use secrecy::SecretString;
pub use server::{EngineListener, ServeError};

use crate::folder::{AgentFolder, FolderError};
use crate::providers::ProviderError;
use crate::turns::TurnRegistry;

/// Error of [`Engine::open`]: the engine could not start.
#[derive(Debug, thiserror::Error)]
pub enum StartError {
    #[error("failed to load the agent folder: {0}")]
    Folder(#[from] FolderError),
    #[error("failed to set up the model provider: {0}")]
    Provider(#[from] ProviderError),
}

/// A loaded engine, ready to serve on a bound listener.
pub struct Engine {
    state: Arc<server::AppState>,
}

impl Engine {
    /// Loads the agent folder and builds the model provider.
    ///
    /// # Errors
    /// Returns [`StartError`] when the folder cannot be read (for example a malformed
    /// `houston.json`) or the provider settings are unusable.
    pub fn open(config: EngineConfig) -> Result<Self, StartError> {
        let folder = Arc::new(AgentFolder::load(&config.agent_dir)?);
        let client = match &config.egress_socket {
            Some(socket) => http::HttpClient::egress(socket.clone()),
            None => http::HttpClient::direct(),
        };
        let provider = providers::build(&config.provider, &folder, client)?;
        let registry = TurnRegistry::new(config.finished_turns_kept);
        let toolbox = tools::Toolbox::new(&folder, config.tool_brokers.clone());
        let state = server::AppState::new(config, folder, provider, toolbox, registry);
        Ok(Self { state: Arc::new(state) })
    }

    /// Serves the engine API on `listener` until `shutdown` resolves, then finishes or
    /// cancels the open turns, stores them and returns.
    ///
    /// # Errors
    /// Returns [`ServeError`] when the HTTP server fails.
    pub async fn serve(
        self,
        listener: EngineListener,
        shutdown: impl Future<Output = ()> + Send + 'static,
    ) -> Result<(), ServeError> {
        server::serve(self.state, listener, shutdown).await
    }
}

/// Opens the engine and serves it on `listener` until `shutdown` resolves.
///
/// # Errors
/// Returns an error when the engine cannot start or the server fails.
pub async fn run(
    config: EngineConfig,
    listener: EngineListener,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> Result<(), Box<dyn std::error::Error + Send + Sync>> {
    let engine = Engine::open(config)?;
    engine.serve(listener, shutdown).await?;
    Ok(())
}
