//! The model provider's key never enters a sandbox: the real `houston engine` runs a turn in
//! a namespace sandbox through a real egress agent socket whose trusted upstream (a local
//! Anthropic stand-in) is configured with a recognisable key. After the turn, the host scans
//! everything the sandbox can reach for the key bytes: the environment and command line of every
//! sandbox process, every file in the volume, in the runtime folder and under the sandbox's
//! root (its private `/tmp` included), and every readable memory region of every sandbox
//! process.
//!
//! The test reads `/proc/PID/mem` of the sandbox processes, so it must run as root. The
//! `houston` binary is not a dependency of this crate, so build it first with
//! `cargo build -p houston-cli`. Without it the test prints a message and passes, except
//! with `CI=true`, where it fails.

mod common;

use std::io::ErrorKind;
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use common::{Home, descendants};
use houston_egress::{EgressConfig, EgressProxy, TrustedUpstream};
use houston_protocol::{AgentId, EngineEndpoint};
use houston_runtime::{
    AgentSpec, EngineCommand, ManagerConfig, NamespaceBackend, NamespaceConfig, ResourceLimits, RuntimeManager,
};
use houston_testkit::anthropic::StandIn;
use secrecy::{ExposeSecret, SecretString};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

const TEST_LIMIT: Duration = Duration::from_secs(120);
/// Size of one read while scanning a file or a memory region.
const SCAN_CHUNK: usize = 1 << 20;

fn houston_binary() -> Option<PathBuf> {
    let houston = common::probe().parent()?.join("houston");
    if houston.is_file() {
        return Some(houston);
    }
    assert_ne!(std::env::var("CI").as_deref(), Ok("true"), "{} is missing; run cargo build -p houston-cli", houston.display());
    eprintln!("skipping: {} is missing; run cargo build -p houston-cli", houston.display());
    None
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

/// Builds a key that no file or binary on the machine can contain by chance.
fn canary_key() -> String {
    let nanos = SystemTime::now().duration_since(UNIX_EPOCH).unwrap().as_nanos();
    format!("sk-ant-test-CANARY-{}-{nanos:x}", std::process::id())
}

/// Returns whether `pid` runs `houston engine` (the sandbox init's command line also names
/// the engine's arguments, so only the second argument separates them).
fn is_engine(pid: u32) -> bool {
    let cmdline = std::fs::read(format!("/proc/{pid}/cmdline")).unwrap_or_default();
    cmdline.split(|byte| *byte == 0).nth(1) == Some(b"engine".as_slice())
}

fn contains(haystack: &[u8], needle: &[u8]) -> bool {
    haystack.windows(needle.len()).any(|window| window == needle)
}

/// Sends one turn over the engine's Unix socket and returns the whole response (the SSE
/// stream, which ends with the turn).
async fn run_turn(endpoint: &EngineEndpoint, token: &SecretString, message: &str) -> String {
    let EngineEndpoint::Unix(socket) = endpoint else { panic!("expected a unix endpoint") };
    let mut stream = tokio::net::UnixStream::connect(socket).await.unwrap();
    let body = serde_json::json!({ "user_id": "user_1", "message": message }).to_string();
    let request = format!(
        "POST /v1/sessions/0193a5c2-7b1e-7c4e-9d7e-2f0a1b2c3d4e/turns HTTP/1.1\r\nHost: engine\r\n\
         Authorization: Bearer {}\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\
         Connection: close\r\n\r\n{body}",
        token.expose_secret(),
        body.len()
    );
    stream.write_all(request.as_bytes()).await.unwrap();
    let mut response = String::new();
    stream.read_to_string(&mut response).await.unwrap();
    response
}

/// Returns the regular files under `root`, without following symbolic links and without
/// entering the directories named in `skip` (relative to `root`).
fn regular_files(root: &Path, skip: &[&str]) -> Vec<PathBuf> {
    let mut found = Vec::new();
    let mut queue = vec![root.to_path_buf()];
    while let Some(dir) = queue.pop() {
        let Ok(entries) = std::fs::read_dir(&dir) else { continue };
        for entry in entries.flatten() {
            let path = entry.path();
            let Ok(file_type) = entry.file_type() else { continue };
            let relative = path.strip_prefix(root).unwrap().to_string_lossy().into_owned();
            if file_type.is_dir() && !skip.contains(&relative.as_str()) {
                queue.push(path);
            } else if file_type.is_file() {
                found.push(path);
            }
        }
    }
    found
}

/// Returns the files under `roots` that contain `needle`, and how many files were read.
fn files_containing(roots: &[(&Path, &[&str])], needle: &[u8]) -> (Vec<PathBuf>, usize) {
    let mut hits = Vec::new();
    let mut read = 0;
    for (root, skip) in roots {
        for path in regular_files(root, skip) {
            let Ok(file) = std::fs::File::open(&path) else { continue };
            let Ok(metadata) = file.metadata() else { continue };
            read += 1;
            if chunks_contain(&file, 0, metadata.len(), needle).0 {
                hits.push(path);
            }
        }
    }
    (hits, read)
}

/// Scans every readable mapping of `pid` for `needle` through `/proc/PID/mem`. Returns the
/// mappings (lines of `/proc/PID/maps`) that contain it and the number of bytes read.
fn memory_containing(pid: u32, needle: &[u8]) -> (Vec<String>, u64) {
    let maps = std::fs::read_to_string(format!("/proc/{pid}/maps")).unwrap_or_else(|error| panic!("read maps of {pid}: {error}"));
    let memory = std::fs::File::open(format!("/proc/{pid}/mem")).unwrap_or_else(|error| panic!("open mem of {pid}: {error}"));
    let mut hits = Vec::new();
    let mut read_bytes = 0;
    for line in maps.lines() {
        let mut fields = line.split_whitespace();
        let (Some(range), Some(permissions)) = (fields.next(), fields.next()) else { continue };
        if !permissions.starts_with('r') {
            continue;
        }
        let (start, end) = range.split_once('-').unwrap();
        let (start, end) = (u64::from_str_radix(start, 16).unwrap(), u64::from_str_radix(end, 16).unwrap());
        let (found, bytes) = chunks_contain(&memory, start, end, needle);
        read_bytes += bytes;
        if found {
            hits.push(line.to_owned());
        }
    }
    (hits, read_bytes)
}

/// Reads `start..end` of a file (a process's memory included) in chunks that overlap by the
/// needle's length, so a match across two chunks is found, and returns whether it matched
/// and the bytes read. Some memory regions, such as `[vvar]`, cannot be read through
/// `/proc/PID/mem`; the rest of such a region is skipped.
fn chunks_contain(file: &std::fs::File, start: u64, end: u64, needle: &[u8]) -> (bool, u64) {
    let mut buffer = vec![0; SCAN_CHUNK];
    let mut offset = start;
    let mut read_bytes = 0;
    while offset < end {
        let length = usize::try_from(end - offset).unwrap_or(SCAN_CHUNK).min(SCAN_CHUNK);
        let read = match file.read_at(&mut buffer[..length], offset) {
            Ok(0) => break,
            Ok(read) => read,
            Err(error) if error.kind() == ErrorKind::Interrupted => continue,
            Err(_) => break,
        };
        read_bytes += read as u64;
        if contains(&buffer[..read], needle) {
            return (true, read_bytes);
        }
        if offset + (read as u64) >= end {
            break;
        }
        offset += (read.saturating_sub(needle.len()).max(1)) as u64;
    }
    (false, read_bytes)
}

#[tokio::test]
async fn provider_key_absent_from_sandbox() {
    let Some(houston) = houston_binary() else { return };
    tokio::time::timeout(TEST_LIMIT, async {
        let key = canary_key();
        let home = Home::new();
        let volume = home.volume("legal");
        copy_tree(&Path::new(env!("CARGO_MANIFEST_DIR")).join("../../../shared/fixtures/houston-agents/legal"), &volume);

        let anthropic = StandIn::start().await;
        let upstream = TrustedUpstream::anthropic(&anthropic.base_url(), SecretString::from(key.clone())).unwrap();
        let egress_log = home.dir.path().join("egress.jsonl");
        let proxy = EgressProxy::new(EgressConfig::new(vec![upstream], egress_log).unwrap()).unwrap();
        std::fs::create_dir_all(home.dir.path().join("egress")).unwrap();
        let agent = AgentId::parse("legal").unwrap();
        let egress_socket = home.dir.path().join("egress/legal.sock");
        let _egress = proxy.open_agent(agent.clone(), proxy.default_policy(), &egress_socket).unwrap();

        let backend = NamespaceBackend::new(NamespaceConfig {
            init_program: houston.clone(),
            init_args: vec!["sandbox-init".to_owned()],
            limits: ResourceLimits::default(),
            tmp_size_bytes: 16 * 1024 * 1024,
        });
        let manager = RuntimeManager::new(Arc::new(backend), ManagerConfig::new(home.run_dir()));
        let mut spec = AgentSpec::new(agent.clone(), &volume, EngineCommand::houston(&houston));
        spec.env.insert("HOUSTON_PROVIDER".to_owned(), "anthropic".to_owned());
        spec.env.insert("ANTHROPIC_BASE_URL".to_owned(), anthropic.base_url());
        spec.egress_socket = Some(egress_socket);
        manager.register(spec).unwrap();
        let lease = manager.acquire(&agent).await.unwrap_or_else(|error| panic!("the engine did not start: {error}"));

        let response = run_turn(&lease.endpoint, &lease.token, "Summarise the contract policy.").await;
        assert!(response.contains("turn.completed"), "the turn did not complete: {response}");
        assert!(response.contains(r#""text":"Stand-in ""#), "the stand-in's answer is missing: {response}");
        let requests = anthropic.requests();
        assert_eq!(requests.len(), 1, "the engine sent one model request");
        assert_eq!(requests[0].header("x-api-key"), Some(key.as_str()), "the egress proxy added the key");

        let init = manager.runtime_pid(&agent).expect("the runtime runs");
        let processes: Vec<u32> = std::iter::once(init).chain(descendants(init)).collect();
        let engine = *descendants(init).iter().find(|pid| is_engine(**pid)).expect("the engine process runs under the sandbox init");
        let needle = key.as_bytes();
        let token = lease.token.expose_secret().as_bytes();
        let mut token_in_memory = false;
        for &pid in &processes {
            let environ = std::fs::read(format!("/proc/{pid}/environ")).unwrap();
            assert!(!contains(&environ, needle), "the key is in the environment of sandbox process {pid}");
            let cmdline = std::fs::read(format!("/proc/{pid}/cmdline")).unwrap();
            assert!(!contains(&cmdline, needle), "the key is in the command line of sandbox process {pid}");

            let (hits, read_bytes) = memory_containing(pid, needle);
            eprintln!("scanned {read_bytes} bytes of memory of sandbox process {pid}");
            assert!(read_bytes > 0, "no memory of sandbox process {pid} was readable");
            assert!(hits.is_empty(), "the key is in the memory of sandbox process {pid}: {hits:?}");
            token_in_memory |= !memory_containing(pid, token).0.is_empty();
        }
        // The engine keeps its token to check each request, so a scan that misses it reads
        // the wrong memory.
        assert!(token_in_memory, "the memory scan did not find the engine token, so it cannot find the key either");
        let engine_environ = std::fs::read(format!("/proc/{}/environ", engine)).unwrap();
        assert!(contains(&engine_environ, b"HOUSTON_PROVIDER=anthropic"), "the environment scan reads the engine's environment");

        let sandbox_root = PathBuf::from(format!("/proc/{}/root", engine));
        let skip: &[&str] = &["proc", "sys", "dev"];
        let roots: [(&Path, &[&str]); 3] = [(&volume, &[]), (&home.run_dir(), &[]), (&sandbox_root, skip)];
        let (hits, read) = files_containing(&roots, needle);
        eprintln!("scanned {read} files of the volume, the runtime folder and the sandbox root");
        assert!(read > 3, "the file scan read only {read} files");
        assert!(hits.is_empty(), "files contain the key: {hits:?}");

        drop(lease);
        manager.shutdown().await;
    })
    .await
    .expect("test timed out");
}
