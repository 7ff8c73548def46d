//! The activator's results for a request: a lease on a ready runtime, or a wait for one.

use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use houston_protocol::{AgentId, EngineEndpoint};
use secrecy::SecretString;
use tokio::time::Instant;

use super::AcquireError;
use super::agent::{Agent, WaiterSlot};

/// The outcome of [`super::RuntimeManager::activate`].
#[derive(Debug)]
pub enum Activation {
    /// The runtime was ready; no cold start.
    Ready(RuntimeLease),
    /// The runtime is starting; await [`Waking::wait`] for the lease.
    Waking(Waking),
}

/// A request's hold on a ready runtime. While any lease of an agent exists, the runtime has
/// an open turn and is never stopped for idleness. Dropping the last one starts the idle
/// clock.
pub struct RuntimeLease {
    /// The engine's address as the host reaches it.
    pub endpoint: EngineEndpoint,
    /// The bearer token the engine requires, valid for this launch only.
    pub token: SecretString,
    /// How long the start took, when this request waited for one.
    pub cold_start: Option<Duration>,
    agent: Arc<Agent>,
}

impl RuntimeLease {
    pub(super) fn new(agent: Arc<Agent>, endpoint: EngineEndpoint, token: SecretString, cold_start: Option<Duration>) -> Self {
        Self { endpoint, token, cold_start, agent }
    }

    /// Returns the agent this lease is for.
    #[must_use]
    pub fn agent_id(&self) -> &AgentId {
        &self.agent.spec.agent_id
    }
}

impl fmt::Debug for RuntimeLease {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RuntimeLease")
            .field("agent", &self.agent.spec.agent_id)
            .field("endpoint", &self.endpoint)
            .field("cold_start", &self.cold_start)
            .finish_non_exhaustive()
    }
}

impl Drop for RuntimeLease {
    fn drop(&mut self) {
        self.agent.release();
    }
}

/// A request waiting for its agent's runtime to start. Dropping it leaves the wait queue.
pub struct Waking {
    pub(super) agent: Arc<Agent>,
    pub(super) since: Instant,
    pub(super) slot: WaiterSlot,
}

impl Waking {
    /// Returns the agent being woken.
    #[must_use]
    pub fn agent_id(&self) -> &AgentId {
        &self.agent.spec.agent_id
    }

    /// Waits for the runtime and returns a lease with the measured cold-start time.
    ///
    /// # Errors
    /// Returns [`AcquireError::StartFailed`] as soon as the start fails, and
    /// [`AcquireError::TimedOut`] after the manager's wait timeout.
    pub async fn wait(self) -> Result<RuntimeLease, AcquireError> {
        let limit = self.agent.wait_timeout();
        let result = tokio::time::timeout(limit, self.agent.wait_ready()).await;
        drop(self.slot);
        result.unwrap_or_else(|_| {
            Err(AcquireError::TimedOut {
                agent: self.agent.spec.agent_id.clone(),
                waited: self.since.elapsed(),
                retry_after: super::agent::RETRY_AFTER,
            })
        })
    }
}

impl fmt::Debug for Waking {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Waking").field("agent", &self.agent.spec.agent_id).finish_non_exhaustive()
    }
}
