//! Helpers shared by the integration tests: the probe binary, launch specs and a client for
//! the probe's line protocol.
#![allow(dead_code)]

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::Duration;

use houston_protocol::{AgentId, EngineEndpoint};
use houston_runtime::{EngineCommand, LaunchSpec, NamespaceConfig, ResourceLimits};
use secrecy::{ExposeSecret, SecretString};
use serde_json::Value;
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};
use tokio::net::UnixStream;
use tokio::net::unix::{OwnedReadHalf, OwnedWriteHalf};

/// Returns the probe binary built with this crate.
pub fn probe() -> PathBuf {
    PathBuf::from(env!("CARGO_BIN_EXE_houston-sandbox-probe"))
}

/// Returns the engine command that runs the probe as engine.
pub fn probe_engine() -> EngineCommand {
    EngineCommand { program: probe(), args: vec!["engine".to_owned()] }
}

/// Returns a namespace backend configuration that uses the probe as the sandbox init.
pub fn namespace_config(limits: ResourceLimits) -> NamespaceConfig {
    NamespaceConfig {
        init_program: probe(),
        init_args: vec!["sandbox-init".to_owned()],
        limits,
        tmp_size_bytes: 16 * 1024 * 1024,
    }
}

/// A host layout like `houston up` creates: `agents/<id>/` volumes and `run/<id>/` folders.
pub struct Home {
    pub dir: tempfile::TempDir,
}

impl Home {
    pub fn new() -> Self {
        let dir = tempfile::Builder::new().prefix("hrt").tempdir().expect("temp home");
        std::fs::create_dir_all(dir.path().join("run")).unwrap();
        Self { dir }
    }

    pub fn volume(&self, agent: &str) -> PathBuf {
        let volume = self.dir.path().join("agents").join(agent);
        std::fs::create_dir_all(&volume).unwrap();
        volume
    }

    pub fn run_dir(&self) -> PathBuf {
        self.dir.path().join("run")
    }

    pub fn launch(&self, agent: &str) -> LaunchSpec {
        let runtime_dir = self.run_dir().join(agent);
        std::fs::create_dir_all(&runtime_dir).unwrap();
        LaunchSpec {
            agent_id: AgentId::parse(agent).unwrap(),
            volume_dir: self.volume(agent),
            runtime_dir,
            engine: probe_engine(),
            env: BTreeMap::new(),
            egress_socket: None,
            token: SecretString::from(format!("token-for-{agent}")),
            ready_timeout: Duration::from_secs(10),
        }
    }
}

/// A connection to the probe speaking its line protocol.
pub struct ProbeClient {
    reader: tokio::io::Lines<BufReader<OwnedReadHalf>>,
    writer: OwnedWriteHalf,
}

impl ProbeClient {
    pub async fn connect(endpoint: &EngineEndpoint, token: &SecretString) -> Self {
        let EngineEndpoint::Unix(path) = endpoint else { panic!("expected a unix endpoint, got {endpoint}") };
        let stream = UnixStream::connect(path).await.unwrap_or_else(|error| panic!("connect {}: {error}", path.display()));
        let (read, write) = stream.into_split();
        let mut client = Self { reader: BufReader::new(read).lines(), writer: write };
        let hello = client.send(&format!("TOKEN {}", token.expose_secret())).await;
        assert_eq!(hello["ok"], true, "token rejected: {hello}");
        client
    }

    pub async fn send(&mut self, line: &str) -> Value {
        self.writer.write_all(format!("{line}\n").as_bytes()).await.unwrap();
        let reply = self.reader.next_line().await.unwrap().unwrap_or_else(|| panic!("no reply to {line:?}"));
        serde_json::from_str(&reply).unwrap()
    }

    /// Sends a command that must fail and returns its errno.
    pub async fn errno(&mut self, line: &str) -> i64 {
        let reply = self.send(line).await;
        assert_eq!(reply["ok"], false, "{line:?} unexpectedly succeeded: {reply}");
        reply["errno"].as_i64().unwrap_or(-1)
    }
}

/// Host pids whose command line contains `marker`.
pub fn host_processes_with(marker: &str) -> Vec<u32> {
    let mut found = Vec::new();
    for entry in std::fs::read_dir("/proc").unwrap().flatten() {
        let Ok(pid) = entry.file_name().to_string_lossy().parse::<u32>() else { continue };
        let cmdline = std::fs::read(entry.path().join("cmdline")).unwrap_or_default();
        if String::from_utf8_lossy(&cmdline).contains(marker) {
            found.push(pid);
        }
    }
    found
}

pub fn is_process_alive(pid: u32) -> bool {
    Path::new(&format!("/proc/{pid}")).exists()
        && !std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default().contains(") Z")
}

/// Host pids of every descendant of `pid`, from `/proc/PID/task/*/children`.
pub fn descendants(pid: u32) -> Vec<u32> {
    let mut found = Vec::new();
    let mut queue = vec![pid];
    while let Some(parent) = queue.pop() {
        let Ok(tasks) = std::fs::read_dir(format!("/proc/{parent}/task")) else { continue };
        for task in tasks.flatten() {
            let children = std::fs::read_to_string(task.path().join("children")).unwrap_or_default();
            for child in children.split_whitespace().filter_map(|pid| pid.parse().ok()) {
                found.push(child);
                queue.push(child);
            }
        }
    }
    found
}

/// Returns the real, effective, saved and file-system uids of a host process.
pub fn host_uids(pid: u32) -> Vec<u32> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
    let line = status.lines().find_map(|line| line.strip_prefix("Uid:")).unwrap_or_default();
    line.split_whitespace().filter_map(|id| id.parse().ok()).collect()
}
