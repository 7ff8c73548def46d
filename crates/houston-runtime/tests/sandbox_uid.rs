//! Tests that two agents never share a namespace sandbox's host uid.

mod common;

use std::collections::HashMap;
use std::sync::Arc;

use common::{Home, namespace_config, probe_engine};
use houston_protocol::AgentId;
use houston_runtime::{
    AgentSpec, ManagerConfig, NamespaceBackend, ProcessBackend, RegisterError, ResourceLimits, RuntimeBackend,
    RuntimeManager, sandbox_host_ids,
};

/// Returns two valid agent ids whose sandboxes map to the same host uid.
fn colliding_ids() -> (AgentId, AgentId) {
    let mut seen: HashMap<u32, AgentId> = HashMap::new();
    for n in 0..100_000 {
        let id = AgentId::parse(format!("agent-{n}")).unwrap();
        let (uid, _) = sandbox_host_ids(&id);
        if let Some(first) = seen.insert(uid, id.clone()) {
            return (first, id);
        }
    }
    panic!("no two of 100000 agent ids share a sandbox uid");
}

fn register(manager: &RuntimeManager, home: &Home, agent: &AgentId) -> Result<(), RegisterError> {
    manager.register(AgentSpec::new(agent.clone(), home.volume(agent.as_str()), probe_engine()))
}

fn manager(home: &Home, backend: Arc<dyn RuntimeBackend>) -> RuntimeManager {
    RuntimeManager::new(backend, ManagerConfig::new(home.run_dir()))
}

#[tokio::test]
async fn shared_sandbox_uid_is_rejected() {
    if !nix::unistd::geteuid().is_root() {
        eprintln!("skipped: sandbox uids differ per agent only when the tests run as root");
        return;
    }
    let home = Home::new();
    let (first, second) = colliding_ids();
    let manager = manager(&home, Arc::new(NamespaceBackend::new(namespace_config(ResourceLimits::default()))));
    register(&manager, &home, &first).unwrap();

    let error = register(&manager, &home, &second).unwrap_err();
    assert!(matches!(error, RegisterError::SandboxUidTaken { .. }), "{error:?}");
    let message = error.to_string();
    assert!(message.contains(first.as_str()), "the error names the registered agent: {message}");
    assert!(message.contains(second.as_str()), "the error names the new agent: {message}");

    let third = AgentId::parse("hr").unwrap();
    assert_ne!(sandbox_host_ids(&third), sandbox_host_ids(&first), "hr has a uid of its own");
    register(&manager, &home, &third).unwrap();
}

#[tokio::test]
async fn process_backend_ignores_sandbox_uids() {
    let home = Home::new();
    let (first, second) = colliding_ids();
    let manager = manager(&home, Arc::new(ProcessBackend::new()));
    register(&manager, &home, &first).unwrap();
    register(&manager, &home, &second).unwrap();
}
