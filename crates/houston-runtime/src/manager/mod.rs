//! The runtime manager: one state machine per registered agent, and the activator that wakes
//! a sleeping agent on its first request.
//!
//! States: `asleep` (no process) → `starting` → `ready` → `draining` → `asleep`, or
//! `starting` → `failed` (the next start waits for the restart backoff). While any
//! [`RuntimeLease`] of an agent is held, the runtime has an open turn and is never stopped.
//! The idle timeout counts from the moment the last lease is dropped.

mod agent;
mod lease;

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use houston_protocol::AgentId;

pub use lease::{Activation, RuntimeLease, Waking};

use crate::backend::{BackendKind, RuntimeBackend, StartError};
use crate::spec::{AgentSpec, MAX_SOCKET_PATH, SpecError};
use agent::Agent;

/// Settings shared by every agent of one manager.
#[derive(Debug, Clone)]
pub struct ManagerConfig {
    /// Parent of the per-runtime folders: agent `A` gets `<run_dir>/A/`, which contains
    /// `engine.sock`.
    pub run_dir: PathBuf,
    /// How long an engine may take to print its readiness line.
    pub ready_timeout: Duration,
    /// Maximum number of requests waiting for one agent's start; more get
    /// [`AcquireError::Overloaded`].
    pub max_waiters: usize,
    /// How long a request waits for a start before [`AcquireError::TimedOut`].
    pub wait_timeout: Duration,
    /// Time between SIGTERM and SIGKILL when a runtime is stopped.
    pub stop_grace: Duration,
    /// How long [`RuntimeManager::stop`] and [`RuntimeManager::shutdown`] wait for held leases
    /// before stopping anyway.
    pub drain_timeout: Duration,
    /// Wait before the first restart after a failure; doubled per consecutive failure.
    pub backoff_initial: Duration,
    /// Upper bound of the restart backoff.
    pub backoff_max: Duration,
}

impl ManagerConfig {
    /// Creates the default configuration with per-runtime folders under `run_dir`.
    pub fn new(run_dir: impl Into<PathBuf>) -> Self {
        Self {
            run_dir: run_dir.into(),
            ready_timeout: Duration::from_secs(30),
            max_waiters: 256,
            wait_timeout: Duration::from_secs(30),
            stop_grace: Duration::from_secs(5),
            drain_timeout: Duration::from_secs(30),
            backoff_initial: Duration::from_secs(1),
            backoff_max: Duration::from_secs(60),
        }
    }
}

/// The state of one agent's runtime.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AgentState {
    /// No runtime process exists.
    Asleep,
    /// A runtime is starting; requests wait for it.
    Starting,
    /// The runtime serves requests.
    Ready,
    /// The runtime is being stopped.
    Draining,
    /// The last start failed; the next one waits for the restart backoff.
    Failed,
}

/// Error of a request that could not get a runtime. Every variant but `UnknownAgent` is a temporary
/// condition the HTTP layer reports as 503 with `Retry-After`.
#[derive(Debug, Clone, thiserror::Error)]
pub enum AcquireError {
    /// The agent is not registered.
    #[error("agent {agent} is not registered with the runtime manager")]
    UnknownAgent { agent: AgentId },
    /// Too many requests already wait for this agent's start.
    #[error("too many requests are waiting for agent {agent} to start")]
    Overloaded { agent: AgentId, retry_after: Duration },
    /// The start took longer than the request may wait.
    #[error("agent {agent} did not start within {waited:?}")]
    TimedOut { agent: AgentId, waited: Duration, retry_after: Duration },
    /// The runtime failed to start (now, or recently enough that the backoff still runs).
    #[error("the runtime of agent {agent} failed to start: {cause}")]
    StartFailed { agent: AgentId, cause: Arc<StartError>, retry_after: Duration },
    /// The manager is shutting down.
    #[error("the runtime manager is shutting down")]
    ShuttingDown,
}

impl AcquireError {
    /// Returns when the client should retry, for a `Retry-After` header; `None` for errors
    /// that a retry does not fix.
    #[must_use]
    pub fn retry_after(&self) -> Option<Duration> {
        match self {
            Self::UnknownAgent { .. } | Self::ShuttingDown => None,
            Self::Overloaded { retry_after, .. }
            | Self::TimedOut { retry_after, .. }
            | Self::StartFailed { retry_after, .. } => Some(*retry_after),
        }
    }
}

/// Error of an agent registration.
#[derive(Debug, Clone, thiserror::Error)]
pub enum RegisterError {
    /// One or more fields of the spec are invalid.
    #[error("invalid runtime spec for agent {agent}: {}", join(errors))]
    Invalid { agent: AgentId, errors: Vec<SpecError> },
    /// The agent is registered already.
    #[error("agent {agent} is already registered; unregister it first")]
    AlreadyRegistered { agent: AgentId },
    /// The agent's sandbox would run as the same host uid as a registered agent, so each
    /// could read and change the other's volume.
    #[error(
        "agent {agent} would run its sandbox as host uid {uid}, which agent {other} already uses; \
         rename one of the two agents"
    )]
    SandboxUidTaken { agent: AgentId, other: AgentId, uid: u32 },
}

fn join(errors: &[SpecError]) -> String {
    errors.iter().map(ToString::to_string).collect::<Vec<_>>().join("; ")
}

/// The backend and configuration that every agent's state machine shares.
pub(crate) struct Context {
    pub backend: Arc<dyn RuntimeBackend>,
    pub config: ManagerConfig,
}

/// Owns the runtimes of every registered agent. Cheap to clone.
#[derive(Clone)]
pub struct RuntimeManager {
    context: Arc<Context>,
    agents: Arc<Mutex<HashMap<AgentId, Arc<Agent>>>>,
    closing: Arc<AtomicBool>,
}

impl RuntimeManager {
    /// Creates a manager that starts runtimes with `backend`.
    pub fn new(backend: Arc<dyn RuntimeBackend>, config: ManagerConfig) -> Self {
        tracing::info!(backend = %backend.kind(), run_dir = %config.run_dir.display(), "runtime manager created");
        Self {
            context: Arc::new(Context { backend, config }),
            agents: Arc::new(Mutex::new(HashMap::new())),
            closing: Arc::new(AtomicBool::new(false)),
        }
    }

    /// Registers an agent. It stays asleep until its first request, except a keep-warm
    /// agent, which is started at once. Must be called inside a Tokio runtime.
    ///
    /// # Errors
    /// Returns [`RegisterError`] for an invalid spec, an agent registered already, or a
    /// namespace sandbox uid that a registered agent already uses.
    pub fn register(&self, spec: AgentSpec) -> Result<(), RegisterError> {
        let agent_id = spec.agent_id.clone();
        let runtime_dir = self.context.config.run_dir.join(agent_id.as_str());
        let mut errors = spec.validate().err().unwrap_or_default();
        let socket = runtime_dir.join(crate::process::ENGINE_SOCKET);
        if !runtime_dir.is_absolute() {
            let reason = format!("{} must be an absolute path", self.context.config.run_dir.display());
            errors.push(SpecError::new("run_dir", reason));
        }
        if socket.as_os_str().len() > MAX_SOCKET_PATH {
            let reason = format!("the engine socket path {} is longer than {MAX_SOCKET_PATH} bytes; choose a shorter home folder", socket.display());
            errors.push(SpecError::new("run_dir", reason));
        }
        if !errors.is_empty() {
            return Err(RegisterError::Invalid { agent: agent_id, errors });
        }

        let mut agents = self.agents.lock().expect("agent table lock");
        if agents.contains_key(&agent_id) {
            return Err(RegisterError::AlreadyRegistered { agent: agent_id });
        }
        if let Some((other, uid)) = self.sandbox_uid_owner(&agents, &agent_id) {
            return Err(RegisterError::SandboxUidTaken { agent: agent_id, other, uid });
        }
        let agent = Agent::new(spec, runtime_dir, self.context.clone());
        if agent.spec.keep_warm {
            agent.start_keep_warm();
        }
        agents.insert(agent_id, agent);
        Ok(())
    }

    /// Returns the registered agent whose namespace sandbox would run as the same host uid as
    /// `agent`'s, with that uid. Sandbox uids are distinct only when this process is root:
    /// otherwise every sandbox maps the caller's own uid, and the process backend uses no
    /// sandbox uid at all.
    // NOTE: a collision is rejected rather than resolved by picking the next free uid,
    // because a picked uid would have to be stored with the volume to stay the same across
    // restarts. Uids come from a hash of the agent id into 65536 values, so collisions are
    // rare but possible; renaming either agent resolves one.
    fn sandbox_uid_owner(&self, agents: &HashMap<AgentId, Arc<Agent>>, agent: &AgentId) -> Option<(AgentId, u32)> {
        if self.context.backend.kind() != BackendKind::Namespace || !nix::unistd::geteuid().is_root() {
            return None;
        }
        let (uid, _) = crate::sandbox::sandbox_host_ids(agent);
        agents
            .keys()
            .find(|other| crate::sandbox::sandbox_host_ids(other).0 == uid)
            .map(|other| (other.clone(), uid))
    }

    /// Stops the agent's runtime (if any) and removes the agent from the manager.
    pub async fn unregister(&self, agent_id: &AgentId) {
        let agent = self.agents.lock().expect("agent table lock").remove(agent_id);
        if let Some(agent) = agent {
            agent.stop(true).await;
        }
    }

    /// Returns a lease at once when the agent is ready, or a [`Waking`] to await when a
    /// start is needed (so the caller can tell its client `agent.waking` first).
    ///
    /// # Errors
    /// Returns [`AcquireError`] when the agent is unknown, its start failed within the
    /// backoff, too many requests wait already, or the manager is shutting down.
    pub fn activate(&self, agent_id: &AgentId) -> Result<Activation, AcquireError> {
        if self.closing.load(Ordering::SeqCst) {
            return Err(AcquireError::ShuttingDown);
        }
        self.agent(agent_id)?.activate()
    }

    /// Returns a lease, starting the runtime first when it is asleep.
    ///
    /// # Errors
    /// As [`Self::activate`] and [`Waking::wait`].
    pub async fn acquire(&self, agent_id: &AgentId) -> Result<RuntimeLease, AcquireError> {
        match self.activate(agent_id)? {
            Activation::Ready(lease) => Ok(lease),
            Activation::Waking(waking) => waking.wait().await,
        }
    }

    /// Returns the agent's state, or `None` when it is not registered.
    #[must_use]
    pub fn state(&self, agent_id: &AgentId) -> Option<AgentState> {
        self.agent(agent_id).ok().map(|agent| agent.state())
    }

    /// Returns the host pid of the agent's runtime main process while it runs.
    #[must_use]
    pub fn runtime_pid(&self, agent_id: &AgentId) -> Option<u32> {
        self.agent(agent_id).ok().and_then(|agent| agent.pid())
    }

    /// Returns how many agents have a runtime that is starting, ready or draining.
    #[must_use]
    pub fn running_count(&self) -> usize {
        let agents = self.agents.lock().expect("agent table lock");
        agents
            .values()
            .filter(|agent| matches!(agent.state(), AgentState::Starting | AgentState::Ready | AgentState::Draining))
            .count()
    }

    /// Drains the agent's runtime (waits for held leases up to the drain timeout) and stops
    /// it. The agent stays registered and wakes again on its next request.
    ///
    /// # Errors
    /// Returns [`AcquireError::UnknownAgent`] when the agent is not registered.
    pub async fn stop(&self, agent_id: &AgentId) -> Result<(), AcquireError> {
        self.agent(agent_id)?.stop(false).await;
        Ok(())
    }

    /// Rejects new requests, then drains and stops every runtime.
    pub async fn shutdown(&self) {
        self.closing.store(true, Ordering::SeqCst);
        let agents: Vec<_> = self.agents.lock().expect("agent table lock").values().cloned().collect();
        futures::future::join_all(agents.iter().map(|agent| agent.stop(true))).await;
        tracing::info!(agents = agents.len(), "runtime manager stopped every runtime");
    }

    fn agent(&self, agent_id: &AgentId) -> Result<Arc<Agent>, AcquireError> {
        self.agents
            .lock()
            .expect("agent table lock")
            .get(agent_id)
            .cloned()
            .ok_or_else(|| AcquireError::UnknownAgent { agent: agent_id.clone() })
    }
}
