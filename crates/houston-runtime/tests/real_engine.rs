//! The runtime manager running the real `houston engine` in a namespace sandbox, with the
//! `houston` binary as the sandbox init, serving a Houston agent definition from the shared
//! fixtures (copied to a temporary volume).
//!
//! The `houston` binary is not a dependency of this crate, so build it first with
//! `cargo build -p houston-cli`. Without it the test prints a message and passes, except
//! with `CI=true`, where it fails.

mod common;

use std::path::{Path, PathBuf};
use std::time::Duration;

use common::{Home, is_process_alive};
use houston_protocol::AgentId;
use houston_runtime::{
    Activation, AgentSpec, EngineCommand, ManagerConfig, NamespaceBackend, NamespaceConfig, ResourceLimits, RuntimeManager,
};
use houston_protocol::EngineEndpoint;
use secrecy::{ExposeSecret, SecretString};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

fn houston_binary() -> Option<PathBuf> {
    let houston = common::probe().parent()?.join("houston");
    if houston.is_file() {
        return Some(houston);
    }
    assert_ne!(std::env::var("CI").as_deref(), Ok("true"), "{} is missing; run cargo build -p houston-cli", houston.display());
    eprintln!("skipping: {} is missing; run cargo build -p houston-cli", houston.display());
    None
}

fn fixture_agent() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../../shared/fixtures/houston-agents/legal")
}

fn copy_tree(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).unwrap();
    for entry in std::fs::read_dir(from).unwrap().flatten() {
        let target = to.join(entry.file_name());
        if entry.file_type().unwrap().is_dir() {
            copy_tree(&entry.path(), &target);
        } else {
            std::fs::copy(entry.path(), target).unwrap();
        }
    }
}

/// Sends one HTTP/1.1 GET over the engine's Unix socket and returns the status line.
async fn get(endpoint: &EngineEndpoint, path: &str, token: Option<&SecretString>) -> String {
    let EngineEndpoint::Unix(socket) = endpoint else { panic!("expected a unix endpoint") };
    let mut stream = tokio::net::UnixStream::connect(socket).await.unwrap();
    let authorization = token.map(|token| format!("Authorization: Bearer {}\r\n", token.expose_secret())).unwrap_or_default();
    let request = format!("GET {path} HTTP/1.1\r\nHost: engine\r\n{authorization}Connection: close\r\n\r\n");
    stream.write_all(request.as_bytes()).await.unwrap();
    let mut response = String::new();
    stream.read_to_string(&mut response).await.unwrap();
    response.lines().next().unwrap_or_default().to_owned()
}

#[tokio::test]
async fn real_engine_wakes_in_sandbox() {
    let Some(houston) = houston_binary() else { return };
    tokio::time::timeout(Duration::from_secs(60), async {
        let home = Home::new();
        let volume = home.volume("legal");
        copy_tree(&fixture_agent(), &volume);
        let backend = NamespaceBackend::new(NamespaceConfig {
            init_program: houston.clone(),
            init_args: vec!["sandbox-init".to_owned()],
            limits: ResourceLimits::default(),
            tmp_size_bytes: 16 * 1024 * 1024,
        });
        let manager = RuntimeManager::new(std::sync::Arc::new(backend), ManagerConfig::new(home.run_dir()));
        let agent = AgentId::parse("legal").unwrap();
        let mut spec = AgentSpec::new(agent.clone(), &volume, EngineCommand::houston(&houston));
        spec.env.insert("HOUSTON_PROVIDER".to_owned(), "offline".to_owned());
        manager.register(spec).unwrap();

        let Activation::Waking(waking) = manager.activate(&agent).unwrap() else { panic!("expected a cold start") };
        let lease = waking.wait().await.unwrap_or_else(|error| panic!("the engine did not start: {error}"));
        eprintln!("real engine cold start: {:?}", lease.cold_start.unwrap());
        assert!(get(&lease.endpoint, "/v1/health", None).await.contains("200"));
        assert!(get(&lease.endpoint, "/v1/version", Some(&lease.token)).await.contains("200"));
        assert!(get(&lease.endpoint, "/v1/version", None).await.contains("401"), "the engine requires its token");
        let wrong = SecretString::from("not-the-token".to_owned());
        assert!(get(&lease.endpoint, "/v1/version", Some(&wrong)).await.contains("401"));

        let pid = manager.runtime_pid(&agent).unwrap();
        drop(lease);
        manager.shutdown().await;
        assert!(!is_process_alive(pid), "the sandbox is gone after shutdown");
    })
    .await
    .expect("test timed out");
}
