//! The `process` backend: the engine as a plain child process on the host.
//!
//! Nothing is isolated: the engine can reach the whole host file system and network with
//! the manager's user id. Use it for development, or where namespaces are unavailable.

use std::sync::atomic::{AtomicBool, Ordering};

use futures::future::BoxFuture;
use houston_protocol::EngineEndpoint;
use tokio::process::Command;

use crate::backend::{BackendKind, LaunchSpec, RuntimeBackend, RuntimeHandle, StartError};
use crate::launch::{KillMode, Launch, TOKEN_FD, spawn_engine};

/// Name of the engine socket inside the runtime folder.
pub(crate) const ENGINE_SOCKET: &str = "engine.sock";

/// Runs each engine as a child process in its own process group.
#[derive(Debug, Default)]
pub struct ProcessBackend {
    warned: AtomicBool,
}

impl ProcessBackend {
    /// Creates the backend.
    #[must_use]
    pub fn new() -> Self {
        Self::default()
    }
}

impl RuntimeBackend for ProcessBackend {
    fn kind(&self) -> BackendKind {
        BackendKind::Process
    }

    fn start<'a>(&'a self, spec: &'a LaunchSpec) -> BoxFuture<'a, Result<RuntimeHandle, StartError>> {
        if !self.warned.swap(true, Ordering::Relaxed) {
            tracing::warn!(
                "runtime backend is `process`: agents are NOT isolated from each other or from \
                 this host; use it for development only"
            );
        }
        Box::pin(async move {
            let endpoint = EngineEndpoint::Unix(spec.runtime_dir.join(ENGINE_SOCKET));
            let mut command = Command::new(&spec.engine.program);
            command
                .args(&spec.engine.args)
                .arg("--agent-dir")
                .arg(&spec.volume_dir)
                .arg("--listen")
                .arg(endpoint.to_string())
                .arg("--token-fd")
                .arg(TOKEN_FD.to_string())
                .current_dir(&spec.volume_dir)
                .env_clear()
                .envs(inherited_env())
                .envs(&spec.env)
                .process_group(0);
            if let Some(egress) = &spec.egress_socket {
                command.env("HOUSTON_EGRESS_SOCKET", egress);
            }
            let launch = Launch {
                agent_id: &spec.agent_id,
                command,
                program: spec.engine.program.clone(),
                announced: endpoint.clone(),
                host_endpoint: endpoint,
                token: &spec.token,
                ready_timeout: spec.ready_timeout,
                kill_mode: KillMode::ProcessGroup,
                token_owner: None,
            };
            spawn_engine(launch).await
        })
    }
}

/// Host variables the engine may inherit; everything else (credentials included) is dropped.
fn inherited_env() -> Vec<(String, String)> {
    ["PATH", "HOME", "TMPDIR", "RUST_LOG", "LANG"]
        .into_iter()
        .filter_map(|name| std::env::var(name).ok().map(|value| (name.to_owned(), value)))
        .collect()
}
