//! Activator tests on a fake backend and a paused Tokio clock: one start for many
//! concurrent requests, quick failures, idle stops, held leases and keep-warm agents.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::Duration;

use futures::future::BoxFuture;
use houston_protocol::{AgentId, EngineEndpoint};
use houston_runtime::{
    AcquireError, Activation, AgentSpec, AgentState, BackendKind, EngineCommand, LaunchSpec, ManagerConfig,
    RuntimeBackend, RuntimeHandle, RuntimeInstance, RuntimeManager, RuntimeStatus, StartError, StopError,
};
use tokio::sync::watch;

/// A backend whose runtimes are plain values: starts take `delay`, and fail while `failing`.
#[derive(Default)]
struct FakeBackend {
    delay: Duration,
    failing: AtomicBool,
    starts: AtomicUsize,
    running: Arc<AtomicUsize>,
    crash: Arc<std::sync::Mutex<Option<watch::Sender<Option<String>>>>>,
}

struct FakeInstance {
    exit: watch::Sender<Option<String>>,
    running: Arc<AtomicUsize>,
}

impl RuntimeInstance for FakeInstance {
    fn status(&self) -> RuntimeStatus {
        match self.exit.borrow().clone() {
            None => RuntimeStatus::Running,
            Some(how) => RuntimeStatus::Exited(how),
        }
    }

    fn exited(&self) -> BoxFuture<'static, String> {
        let mut exit = self.exit.subscribe();
        Box::pin(async move { exit.wait_for(Option::is_some).await.map(|how| how.clone().unwrap()).unwrap_or_default() })
    }

    fn stop(&self, _grace: Duration) -> BoxFuture<'_, Result<(), StopError>> {
        Box::pin(async move {
            if self.exit.borrow().is_none() {
                self.running.fetch_sub(1, Ordering::SeqCst);
                self.exit.send_replace(Some("stopped".to_owned()));
            }
            Ok(())
        })
    }

    fn pid(&self) -> Option<u32> {
        None
    }
}

impl RuntimeBackend for FakeBackend {
    fn kind(&self) -> BackendKind {
        BackendKind::Process
    }

    fn start<'a>(&'a self, spec: &'a LaunchSpec) -> BoxFuture<'a, Result<RuntimeHandle, StartError>> {
        Box::pin(async move {
            self.starts.fetch_add(1, Ordering::SeqCst);
            tokio::time::sleep(self.delay).await;
            if self.failing.load(Ordering::SeqCst) {
                return Err(StartError::Exited { status: "exit status: 3".into(), output: "model not configured".into() });
            }
            self.running.fetch_add(1, Ordering::SeqCst);
            let exit = watch::Sender::new(None);
            *self.crash.lock().unwrap() = Some(exit.clone());
            let instance = FakeInstance { exit, running: self.running.clone() };
            let endpoint = EngineEndpoint::Unix(spec.runtime_dir.join("engine.sock"));
            Ok(RuntimeHandle { endpoint, instance: Box::new(instance) })
        })
    }
}

impl FakeBackend {
    fn with_delay(delay: Duration) -> Arc<Self> {
        Arc::new(Self { delay, ..Self::default() })
    }

    fn starts(&self) -> usize {
        self.starts.load(Ordering::SeqCst)
    }

    fn running(&self) -> usize {
        self.running.load(Ordering::SeqCst)
    }

    /// Makes the current runtime exit as if it crashed.
    fn crash(&self) {
        if let Some(exit) = self.crash.lock().unwrap().as_ref() {
            self.running.fetch_sub(1, Ordering::SeqCst);
            exit.send_replace(Some("signal: 9 (SIGKILL)".to_owned()));
        }
    }
}

struct Fixture {
    _home: tempfile::TempDir,
    backend: Arc<FakeBackend>,
    manager: RuntimeManager,
    agent: AgentId,
    spec: AgentSpec,
}

fn fixture(backend: Arc<FakeBackend>, tune: impl FnOnce(&mut ManagerConfig)) -> Fixture {
    let home = tempfile::tempdir().unwrap();
    let volume = home.path().join("agents/hr");
    std::fs::create_dir_all(&volume).unwrap();
    let mut config = ManagerConfig::new(home.path().join("run"));
    tune(&mut config);
    let manager = RuntimeManager::new(backend.clone(), config);
    let agent = AgentId::parse("hr").unwrap();
    let engine = EngineCommand::houston(std::env::current_exe().unwrap());
    let spec = AgentSpec::new(agent.clone(), volume, engine);
    Fixture { _home: home, backend, manager, agent, spec }
}

fn no_tuning(_: &mut ManagerConfig) {}

#[tokio::test(start_paused = true)]
async fn hundred_first_requests_share_one_start() {
    let f = fixture(FakeBackend::with_delay(Duration::from_millis(50)), no_tuning);
    f.manager.register(f.spec.clone()).unwrap();

    let mut wakings = Vec::new();
    for _ in 0..100 {
        match f.manager.activate(&f.agent).unwrap() {
            Activation::Waking(waking) => wakings.push(waking),
            Activation::Ready(_) => panic!("a sleeping agent cannot be ready"),
        }
    }
    let leases = futures::future::join_all(wakings.into_iter().map(|waking| waking.wait())).await;

    assert_eq!(f.backend.starts(), 1);
    for lease in &leases {
        let lease = lease.as_ref().unwrap();
        assert_eq!(lease.cold_start, Some(Duration::from_millis(50)));
    }
    assert_eq!(f.manager.state(&f.agent), Some(AgentState::Ready));
    let warm = f.manager.acquire(&f.agent).await.unwrap();
    assert_eq!(warm.cold_start, None, "a warm request reports no cold start");
}

#[tokio::test(start_paused = true)]
async fn failing_start_fails_fast() {
    let backend = FakeBackend::with_delay(Duration::from_millis(20));
    backend.failing.store(true, Ordering::SeqCst);
    let f = fixture(backend, no_tuning);
    f.manager.register(f.spec.clone()).unwrap();

    let started = tokio::time::Instant::now();
    let error = f.manager.acquire(&f.agent).await.unwrap_err();
    assert!(started.elapsed() < Duration::from_secs(1), "failure took {:?}", started.elapsed());
    let AcquireError::StartFailed { agent, .. } = &error else { panic!("expected StartFailed, got {error:?}") };
    assert_eq!(agent, &f.agent);
    let message = error.to_string();
    assert!(message.contains("hr"), "{message}");
    assert!(message.contains("model not configured"), "{message}");
    assert!(error.retry_after().is_some());
    assert_eq!(f.manager.state(&f.agent), Some(AgentState::Failed));

    let again = f.manager.acquire(&f.agent).await.unwrap_err();
    assert!(matches!(again, AcquireError::StartFailed { .. }), "{again:?}");
    assert_eq!(f.backend.starts(), 1, "no new start during the backoff");

    f.backend.failing.store(false, Ordering::SeqCst);
    tokio::time::sleep(again.retry_after().unwrap()).await;
    let lease = f.manager.acquire(&f.agent).await.unwrap();
    assert!(lease.cold_start.is_some());
    assert_eq!(f.backend.starts(), 2);
}

#[tokio::test(start_paused = true)]
async fn idle_timeout_stops_then_request_wakes() {
    let f = fixture(FakeBackend::with_delay(Duration::from_millis(10)), no_tuning);
    f.manager.register(f.spec.clone()).unwrap();
    drop(f.manager.acquire(&f.agent).await.unwrap());

    tokio::time::sleep(Duration::from_secs(119)).await;
    assert_eq!(f.manager.state(&f.agent), Some(AgentState::Ready), "still inside the 120 s idle timeout");
    tokio::time::sleep(Duration::from_secs(2)).await;
    assert_eq!(f.manager.state(&f.agent), Some(AgentState::Asleep));
    assert_eq!(f.backend.running(), 0, "the runtime was stopped");

    let Activation::Waking(waking) = f.manager.activate(&f.agent).unwrap() else { panic!("expected a cold start") };
    let lease = waking.wait().await.unwrap();
    assert!(lease.cold_start.is_some());
    assert_eq!(f.backend.starts(), 2);
}

#[tokio::test(start_paused = true)]
async fn held_lease_prevents_idle_stop() {
    let f = fixture(FakeBackend::with_delay(Duration::from_millis(10)), no_tuning);
    f.manager.register(f.spec.clone()).unwrap();
    let long_turn = f.manager.acquire(&f.agent).await.unwrap();
    drop(f.manager.acquire(&f.agent).await.unwrap());

    tokio::time::sleep(Duration::from_secs(3600)).await;
    assert_eq!(f.manager.state(&f.agent), Some(AgentState::Ready), "an open turn keeps the runtime");
    assert_eq!(f.backend.running(), 1);

    drop(long_turn);
    tokio::time::sleep(Duration::from_secs(119)).await;
    assert_eq!(f.manager.state(&f.agent), Some(AgentState::Ready), "the idle clock starts at the last release");
    tokio::time::sleep(Duration::from_secs(2)).await;
    assert_eq!(f.manager.state(&f.agent), Some(AgentState::Asleep));
}

#[tokio::test(start_paused = true)]
async fn keep_warm_never_sleeps() {
    let f = fixture(FakeBackend::with_delay(Duration::from_millis(10)), no_tuning);
    let mut spec = f.spec.clone();
    spec.keep_warm = true;
    f.manager.register(spec).unwrap();

    tokio::time::sleep(Duration::from_millis(50)).await;
    assert_eq!(f.manager.state(&f.agent), Some(AgentState::Ready), "keep-warm agents start at registration");
    drop(f.manager.acquire(&f.agent).await.unwrap());
    tokio::time::sleep(Duration::from_secs(24 * 3600)).await;
    assert_eq!(f.manager.state(&f.agent), Some(AgentState::Ready));
    assert_eq!(f.backend.starts(), 1);

    f.backend.crash();
    tokio::time::sleep(Duration::from_millis(1)).await;
    assert_eq!(f.manager.state(&f.agent), Some(AgentState::Failed));
    tokio::time::sleep(Duration::from_secs(2)).await;
    assert_eq!(f.manager.state(&f.agent), Some(AgentState::Ready), "a crashed keep-warm agent restarts after the backoff");
    assert_eq!(f.backend.starts(), 2);
}

#[tokio::test(start_paused = true)]
async fn waiters_bounded_and_leave_on_drop() {
    let f = fixture(FakeBackend::with_delay(Duration::from_secs(5)), |config| config.max_waiters = 3);
    f.manager.register(f.spec.clone()).unwrap();

    let mut wakings: Vec<_> = (0..3).map(|_| f.manager.activate(&f.agent).unwrap()).collect();
    let error = f.manager.activate(&f.agent).unwrap_err();
    assert!(matches!(error, AcquireError::Overloaded { .. }), "{error:?}");
    assert_eq!(error.retry_after(), Some(Duration::from_secs(1)));

    wakings.pop();
    assert!(f.manager.activate(&f.agent).is_ok(), "a dropped waiter frees its place");
}

#[tokio::test(start_paused = true)]
async fn wait_is_bounded_in_time() {
    let f = fixture(FakeBackend::with_delay(Duration::from_secs(60)), |config| config.wait_timeout = Duration::from_secs(2));
    f.manager.register(f.spec.clone()).unwrap();

    let error = f.manager.acquire(&f.agent).await.unwrap_err();
    let AcquireError::TimedOut { waited, .. } = error else { panic!("expected TimedOut, got {error:?}") };
    assert_eq!(waited, Duration::from_secs(2));
    assert_eq!(f.manager.state(&f.agent), Some(AgentState::Starting), "the start itself goes on");
}

#[tokio::test(start_paused = true)]
async fn unknown_agent_rejected() {
    let f = fixture(FakeBackend::with_delay(Duration::ZERO), no_tuning);
    let error = f.manager.acquire(&AgentId::parse("sales").unwrap()).await.unwrap_err();
    assert!(matches!(error, AcquireError::UnknownAgent { .. }), "{error:?}");
    assert_eq!(error.retry_after(), None);
}

#[tokio::test(start_paused = true)]
async fn crash_marks_failed_then_restarts() {
    let f = fixture(FakeBackend::with_delay(Duration::from_millis(10)), no_tuning);
    f.manager.register(f.spec.clone()).unwrap();
    drop(f.manager.acquire(&f.agent).await.unwrap());

    f.backend.crash();
    tokio::time::sleep(Duration::from_millis(1)).await;
    assert_eq!(f.manager.state(&f.agent), Some(AgentState::Failed));
    let error = f.manager.acquire(&f.agent).await.unwrap_err();
    assert!(error.to_string().contains("SIGKILL"), "{error}");

    tokio::time::sleep(error.retry_after().unwrap()).await;
    assert!(f.manager.acquire(&f.agent).await.is_ok());
    assert_eq!(f.backend.starts(), 2);
}

#[tokio::test(start_paused = true)]
async fn stop_drains_held_leases() {
    let f = fixture(FakeBackend::with_delay(Duration::from_millis(10)), |config| config.drain_timeout = Duration::from_secs(30));
    f.manager.register(f.spec.clone()).unwrap();
    let turn = f.manager.acquire(&f.agent).await.unwrap();

    let manager = f.manager.clone();
    let agent = f.agent.clone();
    let stop = tokio::spawn(async move { manager.stop(&agent).await });
    tokio::time::sleep(Duration::from_secs(5)).await;
    assert_eq!(f.manager.state(&f.agent), Some(AgentState::Draining));
    assert_eq!(f.backend.running(), 1, "the open turn keeps its runtime while draining");

    drop(turn);
    stop.await.unwrap().unwrap();
    assert_eq!(f.manager.state(&f.agent), Some(AgentState::Asleep));
    assert_eq!(f.backend.running(), 0);
}

#[tokio::test(start_paused = true)]
async fn shutdown_stops_all_and_rejects() {
    let f = fixture(FakeBackend::with_delay(Duration::from_millis(10)), no_tuning);
    f.manager.register(f.spec.clone()).unwrap();
    drop(f.manager.acquire(&f.agent).await.unwrap());

    f.manager.shutdown().await;
    assert_eq!(f.backend.running(), 0);
    assert_eq!(f.manager.running_count(), 0);
    assert!(matches!(f.manager.acquire(&f.agent).await.unwrap_err(), AcquireError::ShuttingDown));
}

#[tokio::test(start_paused = true)]
async fn register_rejects_bad_spec() {
    let f = fixture(FakeBackend::with_delay(Duration::ZERO), no_tuning);
    let mut spec = f.spec.clone();
    spec.env.insert("OPENAI_API_KEY".into(), "sk-x".into());
    let error = f.manager.register(spec).unwrap_err();
    assert!(error.to_string().contains("credential"), "{error}");

    f.manager.register(f.spec.clone()).unwrap();
    let error = f.manager.register(f.spec.clone()).unwrap_err();
    assert!(error.to_string().contains("already registered"), "{error}");

    let relative = RuntimeManager::new(f.backend.clone(), ManagerConfig::new("houston-data/run"));
    let error = relative.register(f.spec.clone()).unwrap_err();
    assert!(error.to_string().contains("run_dir"), "{error}");

    let long_home = f._home.path().join("a".repeat(100));
    let long = RuntimeManager::new(f.backend.clone(), ManagerConfig::new(long_home));
    let error = long.register(f.spec.clone()).unwrap_err();
    assert!(error.to_string().contains("longer than 107 bytes"), "{error}");
}
