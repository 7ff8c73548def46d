//! The seam between the runtime manager and the ways a runtime can be run.

use std::collections::BTreeMap;
use std::fmt;
use std::path::PathBuf;
use std::str::FromStr;
use std::sync::Arc;
use std::time::Duration;

use futures::future::BoxFuture;
use houston_protocol::{AgentId, EngineEndpoint};
use secrecy::SecretString;
use serde::{Deserialize, Serialize};

use crate::process::ProcessBackend;
use crate::sandbox::{NamespaceBackend, NamespaceConfig};
use crate::spec::EngineCommand;

/// The kinds of runtime backend a configuration can name.
///
/// Only `process` and `namespace` are built into this build. The others are reserved names,
/// so configurations can name them and get a clear error until they exist.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum BackendKind {
    /// The engine as a plain child process, without isolation. Development only.
    Process,
    /// A Linux namespace sandbox on this host.
    #[default]
    Namespace,
    /// gVisor (`runsc`).
    Gvisor,
    /// A Firecracker or Cloud Hypervisor micro-VM.
    Microvm,
    /// One Kubernetes pod per agent.
    Kubernetes,
}

impl BackendKind {
    /// Every kind, in configuration order.
    pub const ALL: [Self; 5] =
        [Self::Process, Self::Namespace, Self::Gvisor, Self::Microvm, Self::Kubernetes];

    /// Returns the configuration name.
    #[must_use]
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Process => "process",
            Self::Namespace => "namespace",
            Self::Gvisor => "gvisor",
            Self::Microvm => "microvm",
            Self::Kubernetes => "kubernetes",
        }
    }
}

impl fmt::Display for BackendKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A backend name that is not one of [`BackendKind::ALL`].
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unknown runtime backend {0:?}: expected process, namespace, gvisor, microvm or kubernetes")]
pub struct UnknownBackend(pub String);

impl FromStr for BackendKind {
    type Err = UnknownBackend;

    fn from_str(value: &str) -> Result<Self, Self::Err> {
        Self::ALL
            .into_iter()
            .find(|kind| kind.as_str() == value)
            .ok_or_else(|| UnknownBackend(value.to_owned()))
    }
}

/// Creates the backend of `kind`.
///
/// # Errors
/// Returns [`StartError::NotAvailable`] for kinds this build does not contain.
pub fn create_backend(
    kind: BackendKind,
    namespace: NamespaceConfig,
) -> Result<Arc<dyn RuntimeBackend>, StartError> {
    match kind {
        BackendKind::Process => Ok(Arc::new(ProcessBackend::new())),
        BackendKind::Namespace => Ok(Arc::new(NamespaceBackend::new(namespace))),
        BackendKind::Gvisor | BackendKind::Microvm | BackendKind::Kubernetes => {
            Err(StartError::NotAvailable { kind })
        }
    }
}

/// Everything a backend needs to start one runtime.
#[derive(Debug)]
pub struct LaunchSpec {
    /// The agent the runtime serves.
    pub agent_id: AgentId,
    /// The agent's volume on the host.
    pub volume_dir: PathBuf,
    /// The per-runtime folder on the host that contains the engine socket (and the egress
    /// socket's mount point). It is `/run/houston` inside a sandbox.
    pub runtime_dir: PathBuf,
    /// How to start the engine.
    pub engine: EngineCommand,
    /// Extra environment for the engine.
    pub env: BTreeMap<String, String>,
    /// The egress proxy's socket on the host.
    pub egress_socket: Option<PathBuf>,
    /// The bearer token the engine must require, new for every launch.
    pub token: SecretString,
    /// How long the engine may take to print its readiness line.
    pub ready_timeout: Duration,
}

/// Starts runtimes. One value serves every agent.
pub trait RuntimeBackend: Send + Sync + 'static {
    /// Returns which kind of backend this is.
    fn kind(&self) -> BackendKind;

    /// Starts a runtime and resolves once its engine is ready to serve requests.
    ///
    /// # Errors
    /// Returns [`StartError`] with the cause; the backend has cleaned up whatever it started.
    fn start<'a>(&'a self, spec: &'a LaunchSpec) -> BoxFuture<'a, Result<RuntimeHandle, StartError>>;
}

/// Whether a started runtime is still running.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RuntimeStatus {
    /// The runtime's processes are running.
    Running,
    /// The runtime is gone. The text describes how it ended (exit code or signal).
    Exited(String),
}

/// One running runtime, as the backend that started it controls it.
pub trait RuntimeInstance: Send + Sync {
    /// Returns whether the runtime is still running.
    fn status(&self) -> RuntimeStatus;

    /// Resolves when the runtime has exited, with how it ended.
    fn exited(&self) -> BoxFuture<'static, String>;

    /// Stops the runtime: SIGTERM (or its equivalent), then after `grace` SIGKILL to every
    /// process it started. Resolves when nothing of the runtime is left.
    fn stop(&self, grace: Duration) -> BoxFuture<'_, Result<(), StopError>>;

    /// Returns the host process ids of the runtime's main process, if it has one.
    fn pid(&self) -> Option<u32>;
}

/// A started runtime: where its engine listens and how to control it.
pub struct RuntimeHandle {
    /// The engine endpoint as the host reaches it.
    pub endpoint: EngineEndpoint,
    /// Control over the running runtime.
    pub instance: Box<dyn RuntimeInstance>,
}

impl fmt::Debug for RuntimeHandle {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RuntimeHandle")
            .field("endpoint", &self.endpoint)
            .field("pid", &self.instance.pid())
            .finish_non_exhaustive()
    }
}

/// Error of a runtime start.
#[derive(Debug, thiserror::Error)]
pub enum StartError {
    /// The configured backend is a reserved name without an implementation.
    #[error("the {kind} runtime backend is not available in this build; use namespace or process")]
    NotAvailable { kind: BackendKind },
    /// Preparing the launch failed (runtime folder, pipes, cgroup, library list).
    #[error("failed to {step}: {source}")]
    Setup { step: String, source: std::io::Error },
    /// The engine or sandbox program could not be executed.
    #[error("failed to run {program}: {source}")]
    Spawn { program: PathBuf, source: std::io::Error },
    /// The engine exited before it printed its readiness line.
    #[error("the engine exited before it was ready ({status}); its last output: {output}")]
    Exited { status: String, output: String },
    /// The engine printed something other than its readiness line first.
    #[error("the engine's first output line was {line:?}, expected \"houston-engine listening on {expected}\"")]
    BadReadiness { line: String, expected: String },
    /// The engine did not become ready in time.
    #[error("the engine was not ready after {after:?}; it was stopped")]
    TimedOut { after: Duration },
}

/// Error of a runtime stop.
#[derive(Debug, thiserror::Error)]
pub enum StopError {
    /// Processes of the runtime were still alive after SIGKILL.
    #[error("processes of the runtime were still running {after:?} after SIGKILL")]
    StillRunning { after: Duration },
    /// A signal could not be sent.
    #[error("failed to send {signal} to process {pid}: {source}")]
    Signal { signal: &'static str, pid: i32, source: nix::Error },
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backend_kind_round_trips() {
        for kind in BackendKind::ALL {
            assert_eq!(kind.as_str().parse::<BackendKind>(), Ok(kind));
        }
        assert!("docker".parse::<BackendKind>().is_err());
    }

    #[test]
    fn future_backends_not_available() {
        for kind in [BackendKind::Gvisor, BackendKind::Microvm, BackendKind::Kubernetes] {
            let error = create_backend(kind, NamespaceConfig::default()).err().unwrap();
            assert!(error.to_string().contains("not available in this build"), "{error}");
        }
    }
}
