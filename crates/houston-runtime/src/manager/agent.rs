//! One agent's runtime state machine: starts, idle stops, drains, crashes and backoff.

use std::os::unix::fs::PermissionsExt;
use std::path::PathBuf;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, Weak};
use std::time::Duration;

use futures::future::BoxFuture;
use rand::RngCore;
use secrecy::SecretString;
use tokio::sync::watch;
use tokio::time::Instant;

use super::lease::{Activation, RuntimeLease, Waking};
use super::{AcquireError, AgentState, Context};
use crate::backend::{LaunchSpec, RuntimeHandle, StartError};
use crate::spec::AgentSpec;

/// `Retry-After` for requests rejected while a start is in progress.
pub(super) const RETRY_AFTER: Duration = Duration::from_secs(1);

/// Bytes of randomness in an engine token.
const TOKEN_BYTES: usize = 32;

enum Phase {
    Asleep,
    Starting,
    Ready(Box<Running>),
    Failed { cause: Arc<StartError>, retry_at: Instant },
}

struct Running {
    handle: RuntimeHandle,
    token: SecretString,
    cold_start: Duration,
    generation: u64,
}

struct Slot {
    phase: Phase,
    /// Set while a stop waits for leases; no new lease is granted meanwhile.
    draining: bool,
    /// Set when the agent is unregistered or the manager shuts down: nothing starts again.
    retired: bool,
    leases: usize,
    /// Incremented per start, so late events of an old runtime are ignored.
    generation: u64,
    /// Incremented whenever the idle clock restarts, so older idle timers do nothing.
    idle_epoch: u64,
    /// Consecutive failures, for the restart backoff.
    failures: u32,
}

/// One registered agent.
pub(super) struct Agent {
    pub spec: AgentSpec,
    runtime_dir: PathBuf,
    context: Arc<Context>,
    slot: Mutex<Slot>,
    /// Bumped on every state change; waiters and drains watch it.
    changed: watch::Sender<()>,
    waiters: AtomicUsize,
    this: Weak<Agent>,
}

/// A place in an agent's wait queue; dropping it leaves the queue.
pub(super) struct WaiterSlot(Arc<Agent>);

impl Drop for WaiterSlot {
    fn drop(&mut self) {
        self.0.waiters.fetch_sub(1, Ordering::SeqCst);
    }
}

impl Agent {
    pub(super) fn new(spec: AgentSpec, runtime_dir: PathBuf, context: Arc<Context>) -> Arc<Self> {
        let slot = Slot {
            phase: Phase::Asleep,
            draining: false,
            retired: false,
            leases: 0,
            generation: 0,
            idle_epoch: 0,
            failures: 0,
        };
        Arc::new_cyclic(|this| Self {
            spec,
            runtime_dir,
            context,
            slot: Mutex::new(slot),
            changed: watch::Sender::new(()),
            waiters: AtomicUsize::new(0),
            this: this.clone(),
        })
    }

    fn arc(&self) -> Arc<Self> {
        self.this.upgrade().expect("an agent is alive while its methods run")
    }

    fn lock(&self) -> MutexGuard<'_, Slot> {
        self.slot.lock().expect("agent slot lock")
    }

    fn notify(&self) {
        self.changed.send_replace(());
    }

    pub(super) fn wait_timeout(&self) -> Duration {
        self.context.config.wait_timeout
    }

    pub(super) fn state(&self) -> AgentState {
        let slot = self.lock();
        match slot.phase {
            Phase::Ready(_) if slot.draining => AgentState::Draining,
            Phase::Asleep if slot.draining => AgentState::Draining,
            Phase::Asleep => AgentState::Asleep,
            Phase::Starting => AgentState::Starting,
            Phase::Ready(_) => AgentState::Ready,
            Phase::Failed { .. } => AgentState::Failed,
        }
    }

    pub(super) fn pid(&self) -> Option<u32> {
        match &self.lock().phase {
            Phase::Ready(running) => running.handle.instance.pid(),
            _ => None,
        }
    }

    pub(super) fn activate(&self) -> Result<Activation, AcquireError> {
        let mut slot = self.lock();
        if let Some(lease) = self.try_lease(&mut slot, false) {
            return Ok(Activation::Ready(lease));
        }
        if let Some(result) = self.check_failed(&slot) {
            return result.map(Activation::Ready);
        }
        if slot.retired {
            return Err(AcquireError::ShuttingDown);
        }
        if matches!(slot.phase, Phase::Asleep | Phase::Failed { .. }) && !slot.draining {
            self.begin_start(&mut slot);
        }
        drop(slot);

        let previous = self.waiters.fetch_add(1, Ordering::SeqCst);
        let slot = WaiterSlot(self.arc());
        if previous >= self.context.config.max_waiters {
            return Err(AcquireError::Overloaded { agent: self.spec.agent_id.clone(), retry_after: RETRY_AFTER });
        }
        Ok(Activation::Waking(Waking { agent: self.arc(), since: Instant::now(), slot }))
    }

    fn try_lease(&self, slot: &mut Slot, waited: bool) -> Option<RuntimeLease> {
        let Phase::Ready(running) = &slot.phase else { return None };
        if slot.draining {
            return None;
        }
        let endpoint = running.handle.endpoint.clone();
        let token = running.token.clone();
        let cold_start = waited.then_some(running.cold_start);
        slot.leases += 1;
        Some(RuntimeLease::new(self.arc(), endpoint, token, cold_start))
    }

    /// Returns the start error while the restart backoff runs.
    fn check_failed(&self, slot: &Slot) -> Option<Result<RuntimeLease, AcquireError>> {
        let Phase::Failed { cause, retry_at } = &slot.phase else { return None };
        let now = Instant::now();
        if now >= *retry_at {
            return None;
        }
        let agent = self.spec.agent_id.clone();
        Some(Err(AcquireError::StartFailed { agent, cause: cause.clone(), retry_after: *retry_at - now }))
    }

    /// Waits until the runtime is ready (returns a lease) or its start failed.
    pub(super) async fn wait_ready(&self) -> Result<RuntimeLease, AcquireError> {
        let mut changed = self.changed.subscribe();
        loop {
            {
                let mut slot = self.lock();
                if let Some(lease) = self.try_lease(&mut slot, true) {
                    return Ok(lease);
                }
                if let Phase::Failed { cause, retry_at } = &slot.phase {
                    let agent = self.spec.agent_id.clone();
                    let retry_after = retry_at.saturating_duration_since(Instant::now()).max(RETRY_AFTER);
                    return Err(AcquireError::StartFailed { agent, cause: cause.clone(), retry_after });
                }
                if slot.retired {
                    return Err(AcquireError::ShuttingDown);
                }
                if matches!(slot.phase, Phase::Asleep) && !slot.draining {
                    self.begin_start(&mut slot);
                }
            }
            if changed.changed().await.is_err() {
                return Err(AcquireError::ShuttingDown);
            }
        }
    }

    fn begin_start(&self, slot: &mut Slot) {
        slot.generation += 1;
        slot.phase = Phase::Starting;
        let generation = slot.generation;
        self.notify();
        tracing::info!(agent.id = %self.spec.agent_id, backend = %self.context.backend.kind(), "runtime starting");
        let agent = self.arc();
        tokio::spawn(async move { agent.run_start(generation).await });
    }

    async fn run_start(&self, generation: u64) {
        let started = Instant::now();
        let token = new_token();
        let result = match prepare_runtime_dir(&self.runtime_dir) {
            Ok(()) => {
                let launch = LaunchSpec {
                    agent_id: self.spec.agent_id.clone(),
                    volume_dir: self.spec.volume_dir.clone(),
                    runtime_dir: self.runtime_dir.clone(),
                    engine: self.spec.engine.clone(),
                    env: self.spec.env.clone(),
                    egress_socket: self.spec.egress_socket.clone(),
                    token: token.clone(),
                    ready_timeout: self.context.config.ready_timeout,
                };
                self.context.backend.start(&launch).await
            }
            Err(error) => Err(error),
        };
        match result {
            Ok(handle) => self.finish_ready(generation, handle, token, started.elapsed()).await,
            Err(error) => self.finish_failed(generation, error),
        }
    }

    async fn finish_ready(&self, generation: u64, handle: RuntimeHandle, token: SecretString, cold_start: Duration) {
        let stale = {
            let slot = self.lock();
            slot.retired || slot.generation != generation
        };
        if stale {
            tracing::info!(agent.id = %self.spec.agent_id, "runtime became ready after the agent was retired; stopping it");
            let _ = handle.instance.stop(self.context.config.stop_grace).await;
            return;
        }
        let mut slot = self.lock();
        tracing::info!(
            agent.id = %self.spec.agent_id,
            cold_start_ms = cold_start.as_millis() as u64,
            endpoint = %handle.endpoint,
            "runtime ready"
        );
        let exited = handle.instance.exited();
        slot.failures = 0;
        slot.phase = Phase::Ready(Box::new(Running { handle, token, cold_start, generation }));
        slot.idle_epoch += 1;
        let epoch = slot.idle_epoch;
        drop(slot);
        self.notify();
        self.watch_exit(generation, exited);
        self.schedule_idle_stop(epoch);
    }

    fn finish_failed(&self, generation: u64, error: StartError) {
        let mut slot = self.lock();
        slot.failures += 1;
        let backoff = self.backoff(slot.failures);
        tracing::warn!(
            agent.id = %self.spec.agent_id,
            error = %error,
            retry_in_ms = backoff.as_millis() as u64,
            "runtime failed to start"
        );
        if slot.generation == generation && matches!(slot.phase, Phase::Starting) {
            slot.phase = Phase::Failed { cause: Arc::new(error), retry_at: Instant::now() + backoff };
        }
        let restart = self.spec.keep_warm && !slot.retired;
        drop(slot);
        self.notify();
        if restart {
            self.schedule_restart(backoff);
        }
    }

    fn backoff(&self, failures: u32) -> Duration {
        let config = &self.context.config;
        let factor = 2u32.saturating_pow(failures.saturating_sub(1).min(16));
        config.backoff_initial.saturating_mul(factor).min(config.backoff_max)
    }

    fn watch_exit(&self, generation: u64, exited: BoxFuture<'static, String>) {
        let agent = self.this.clone();
        tokio::spawn(async move {
            let how = exited.await;
            if let Some(agent) = agent.upgrade() {
                agent.on_exit(generation, how);
            }
        });
    }

    /// Handles a runtime that exited on its own while ready.
    fn on_exit(&self, generation: u64, how: String) {
        let mut slot = self.lock();
        let crashed = matches!(&slot.phase, Phase::Ready(running) if running.generation == generation) && !slot.draining;
        if !crashed {
            return;
        }
        slot.failures += 1;
        let backoff = self.backoff(slot.failures);
        tracing::error!(agent.id = %self.spec.agent_id, exit = %how, retry_in_ms = backoff.as_millis() as u64, "runtime exited unexpectedly");
        let cause = StartError::Exited { status: how, output: "the runtime stopped after it was ready".to_owned() };
        let previous = std::mem::replace(&mut slot.phase, Phase::Failed { cause: Arc::new(cause), retry_at: Instant::now() + backoff });
        let restart = self.spec.keep_warm && !slot.retired;
        drop(slot);
        self.notify();
        if let Phase::Ready(running) = previous {
            // Sweeps what the runtime left behind (process group members, its cgroup).
            tokio::spawn(async move { let _ = running.handle.instance.stop(Duration::ZERO).await; });
        }
        if restart {
            self.schedule_restart(backoff);
        }
    }

    pub(super) fn start_keep_warm(&self) {
        let mut slot = self.lock();
        if matches!(slot.phase, Phase::Asleep | Phase::Failed { .. }) && !slot.retired && !slot.draining {
            self.begin_start(&mut slot);
        }
    }

    fn schedule_restart(&self, after: Duration) {
        let agent = self.this.clone();
        tokio::spawn(async move {
            tokio::time::sleep(after).await;
            if let Some(agent) = agent.upgrade() {
                agent.start_keep_warm();
            }
        });
    }

    /// Called when a lease is dropped; the last one restarts the idle clock.
    pub(super) fn release(&self) {
        let mut slot = self.lock();
        slot.leases -= 1;
        let idle_epoch = (slot.leases == 0).then(|| {
            slot.idle_epoch += 1;
            slot.idle_epoch
        });
        drop(slot);
        self.notify();
        if let Some(epoch) = idle_epoch {
            self.schedule_idle_stop(epoch);
        }
    }

    fn schedule_idle_stop(&self, epoch: u64) {
        if self.spec.keep_warm || tokio::runtime::Handle::try_current().is_err() {
            return;
        }
        let agent = self.this.clone();
        let idle_timeout = self.spec.idle_timeout;
        tokio::spawn(async move {
            tokio::time::sleep(idle_timeout).await;
            if let Some(agent) = agent.upgrade() {
                agent.stop_if_idle(epoch).await;
            }
        });
    }

    async fn stop_if_idle(&self, epoch: u64) {
        let running = {
            let mut slot = self.lock();
            if slot.leases > 0 || slot.idle_epoch != epoch || slot.draining || !matches!(slot.phase, Phase::Ready(_)) {
                return;
            }
            slot.draining = true;
            std::mem::replace(&mut slot.phase, Phase::Asleep)
        };
        tracing::info!(agent.id = %self.spec.agent_id, idle_timeout_ms = self.spec.idle_timeout.as_millis() as u64, "runtime idle; stopping");
        self.finish_stop(running).await;
    }

    /// Drains (waits for leases up to the drain timeout), then stops the runtime. With
    /// `retire`, the agent never starts again.
    pub(super) async fn stop(&self, retire: bool) {
        let deadline = Instant::now() + self.context.config.drain_timeout;
        let mut changed = self.changed.subscribe();
        let running = loop {
            let started_draining = {
                let mut slot = self.lock();
                slot.retired |= retire;
                match slot.phase {
                    Phase::Asleep | Phase::Failed { .. } if !slot.draining => return,
                    Phase::Ready(_) => {
                        let started_draining = !slot.draining;
                        slot.draining = true;
                        if slot.leases == 0 || Instant::now() >= deadline {
                            break std::mem::replace(&mut slot.phase, Phase::Asleep);
                        }
                        started_draining
                    }
                    // A start or another stop is in progress; its end changes the phase.
                    _ => false,
                }
            };
            if started_draining {
                self.notify();
                changed.borrow_and_update();
            }
            if Instant::now() >= deadline {
                let _ = changed.changed().await;
            } else {
                let _ = tokio::time::timeout_at(deadline, changed.changed()).await;
            }
        };
        tracing::info!(agent.id = %self.spec.agent_id, retire, "runtime stopping");
        self.finish_stop(running).await;
    }

    async fn finish_stop(&self, previous: Phase) {
        self.notify();
        if let Phase::Ready(running) = previous
            && let Err(error) = running.handle.instance.stop(self.context.config.stop_grace).await
        {
            tracing::error!(agent.id = %self.spec.agent_id, error = %error, "failed to stop runtime");
        }
        let mut slot = self.lock();
        slot.draining = false;
        drop(slot);
        tracing::info!(agent.id = %self.spec.agent_id, "runtime stopped");
        self.notify();
    }
}

/// Creates the runtime folder, readable only by this user because it contains the socket.
fn prepare_runtime_dir(dir: &PathBuf) -> Result<(), StartError> {
    let setup = |source| StartError::Setup { step: format!("create the runtime folder {}", dir.display()), source };
    std::fs::create_dir_all(dir).map_err(setup)?;
    std::fs::set_permissions(dir, std::fs::Permissions::from_mode(0o700)).map_err(setup)
}

fn new_token() -> SecretString {
    let mut bytes = [0u8; TOKEN_BYTES];
    rand::rngs::OsRng.fill_bytes(&mut bytes);
    let hex: String = bytes.iter().map(|byte| format!("{byte:02x}")).collect();
    SecretString::from(hex)
}
