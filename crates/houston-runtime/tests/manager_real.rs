//! The runtime manager with real backends, and the probe binary as the engine.

mod common;

use std::time::Duration;

use common::{Home, ProbeClient, is_process_alive, namespace_config, probe_engine};
use houston_protocol::AgentId;
use houston_runtime::{
    AcquireError, Activation, AgentSpec, AgentState, EngineCommand, ManagerConfig, NamespaceBackend, ProcessBackend,
    ResourceLimits, RuntimeBackend, RuntimeManager, namespace_supported,
};

const TEST_LIMIT: Duration = Duration::from_secs(60);

fn manager(home: &Home, backend: std::sync::Arc<dyn RuntimeBackend>) -> RuntimeManager {
    let mut config = ManagerConfig::new(home.run_dir());
    config.stop_grace = Duration::from_secs(2);
    RuntimeManager::new(backend, config)
}

fn spec(home: &Home, agent: &str) -> AgentSpec {
    let mut spec = AgentSpec::new(AgentId::parse(agent).unwrap(), home.volume(agent), probe_engine());
    spec.idle_timeout = Duration::from_millis(300);
    spec
}

async fn wake_serve_sleep_wake(backend: std::sync::Arc<dyn RuntimeBackend>) {
    let home = Home::new();
    let manager = manager(&home, backend);
    let agent = AgentId::parse("hr").unwrap();
    manager.register(spec(&home, "hr")).unwrap();
    assert_eq!(manager.runtime_pid(&agent), None, "a registered agent sleeps without a process");

    let Activation::Waking(waking) = manager.activate(&agent).unwrap() else { panic!("expected a cold start") };
    let lease = waking.wait().await.unwrap();
    assert!(lease.cold_start.is_some());
    let mut client = ProbeClient::connect(&lease.endpoint, &lease.token).await;
    assert_eq!(client.send("write /tmp/probe ok").await["ok"], true);
    let pid = manager.runtime_pid(&agent).unwrap();
    drop(client);
    drop(lease);

    for _ in 0..100 {
        if manager.state(&agent) == Some(AgentState::Asleep) {
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert_eq!(manager.state(&agent), Some(AgentState::Asleep), "the idle timeout stopped the runtime");
    assert!(!is_process_alive(pid), "runtime process {pid} is gone");

    let lease = manager.acquire(&agent).await.unwrap();
    assert!(lease.cold_start.is_some(), "the next request woke the agent");
    ProbeClient::connect(&lease.endpoint, &lease.token).await;
    drop(lease);
    manager.shutdown().await;
    assert_eq!(manager.running_count(), 0);
}

#[tokio::test]
async fn namespace_runtime_sleeps_and_wakes() {
    let backend = std::sync::Arc::new(NamespaceBackend::new(namespace_config(ResourceLimits::default())));
    tokio::time::timeout(TEST_LIMIT, wake_serve_sleep_wake(backend)).await.expect("test timed out");
}

#[tokio::test]
async fn process_runtime_sleeps_and_wakes() {
    let backend = std::sync::Arc::new(ProcessBackend::new());
    tokio::time::timeout(TEST_LIMIT, wake_serve_sleep_wake(backend)).await.expect("test timed out");
}

#[tokio::test]
async fn broken_engine_fails_fast_with_cause() {
    tokio::time::timeout(TEST_LIMIT, async {
        let home = Home::new();
        let backend = std::sync::Arc::new(NamespaceBackend::new(namespace_config(ResourceLimits::default())));
        let manager = manager(&home, backend);
        let mut spec = spec(&home, "hr");
        spec.engine = EngineCommand { program: common::probe(), args: vec!["no-such-mode".to_owned()] };
        manager.register(spec).unwrap();

        let started = std::time::Instant::now();
        let error = manager.acquire(&AgentId::parse("hr").unwrap()).await.unwrap_err();
        assert!(started.elapsed() < Duration::from_secs(5), "failure took {:?}", started.elapsed());
        assert!(matches!(error, AcquireError::StartFailed { .. }), "{error:?}");
        let message = error.to_string();
        assert!(message.contains("hr"), "the error names the agent: {message}");
        assert!(message.contains("usage"), "the error contains the engine's output: {message}");
    })
    .await
    .expect("test timed out");
}

#[test]
fn namespace_support_detected() {
    namespace_supported(&namespace_config(ResourceLimits::default())).expect("this host supports namespaces");
    let mut broken = namespace_config(ResourceLimits::default());
    broken.init_program = "/nonexistent/houston".into();
    let error = namespace_supported(&broken).unwrap_err();
    assert!(error.to_string().contains("/nonexistent/houston"), "{error}");
}
