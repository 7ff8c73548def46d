//! Runtime benchmark: cold start to engine ready for the `process` and `namespace` backends
//! (median and p90 over 50 starts each, interleaved), the memory of one idle ready runtime,
//! and the processes and memory of 1,000 registered sleeping agents.
//!
//! Run with `cargo bench -p houston-runtime --bench runtimes`. It measures the probe binary
//! built with this crate as a minimal engine, and the real `houston engine` (offline
//! provider, a Houston agent definition as volume) when `target/release/houston` exists or
//! `HOUSTON_BENCH_ENGINE` names a `houston` binary.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

use houston_protocol::AgentId;
use houston_runtime::{
    AgentSpec, EngineCommand, LaunchSpec, ManagerConfig, NamespaceBackend, NamespaceConfig, ProcessBackend,
    ResourceLimits, RuntimeBackend, RuntimeManager,
};
use secrecy::SecretString;

const STARTS: usize = 50;
const SLEEPING_AGENTS: usize = 1000;

fn main() {
    let runtime = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().unwrap();
    runtime.block_on(run());
}

fn probe() -> PathBuf {
    let bench = std::env::current_exe().unwrap();
    bench.parent().unwrap().parent().unwrap().join("houston-sandbox-probe")
}

/// One engine to measure: the command and the sandbox init that goes with it.
struct Subject {
    name: &'static str,
    engine: EngineCommand,
    init: PathBuf,
}

/// Returns the engines to measure: the probe, and the `houston` binary next to the probe
/// (or at `HOUSTON_BENCH_ENGINE`) when it exists, as its own sandbox init like in production.
fn subjects() -> Vec<Subject> {
    let probe_engine = EngineCommand { program: probe(), args: vec!["engine".to_owned()] };
    let mut subjects = vec![Subject { name: "probe stand-in", engine: probe_engine, init: probe() }];
    let houston = std::env::var_os("HOUSTON_BENCH_ENGINE")
        .map(PathBuf::from)
        .unwrap_or_else(|| probe().with_file_name("houston"));
    if houston.is_file() {
        subjects.push(Subject { name: "houston engine", engine: EngineCommand::houston(&houston), init: houston });
    } else {
        println!("{} not found: build it with cargo build --release -p houston-cli to measure the real engine", houston.display());
    }
    subjects
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

/// Builds the launch of `agent`, whose volume is a copy of a Houston agent definition.
fn launch(home: &Path, agent: &str, engine: &EngineCommand) -> LaunchSpec {
    let volume = home.join("agents").join(agent);
    let runtime_dir = home.join("run").join(agent);
    if !volume.exists() {
        copy_tree(&fixture_agent(), &volume);
    }
    std::fs::create_dir_all(&runtime_dir).unwrap();
    LaunchSpec {
        agent_id: AgentId::parse(agent).unwrap(),
        volume_dir: volume,
        runtime_dir,
        engine: engine.clone(),
        env: BTreeMap::from([("HOUSTON_PROVIDER".to_owned(), "offline".to_owned())]),
        egress_socket: None,
        token: SecretString::from("bench-token".to_owned()),
        ready_timeout: Duration::from_secs(30),
    }
}

async fn run() {
    let home = tempfile::Builder::new().prefix("hrb").tempdir().unwrap();
    for subject in subjects() {
        measure(home.path(), &subject).await;
        println!();
    }
    let namespace: Arc<dyn RuntimeBackend> = Arc::new(NamespaceBackend::new(namespace_config(probe())));
    let engine = EngineCommand { program: probe(), args: vec!["engine".to_owned()] };
    sleeping_agents(home.path(), namespace, &engine).await;
}

fn namespace_config(init: PathBuf) -> NamespaceConfig {
    NamespaceConfig {
        init_program: init,
        init_args: vec!["sandbox-init".to_owned()],
        limits: ResourceLimits::default(),
        tmp_size_bytes: 64 * 1024 * 1024,
    }
}

/// Prints cold-start times and idle memory of both backends for one engine.
async fn measure(home: &Path, subject: &Subject) {
    println!("engine: {} ({})", subject.name, subject.engine.program.display());
    let process: Arc<dyn RuntimeBackend> = Arc::new(ProcessBackend::new());
    let namespace: Arc<dyn RuntimeBackend> = Arc::new(NamespaceBackend::new(namespace_config(subject.init.clone())));
    let backends = [&process, &namespace];
    let agent = |backend: &Arc<dyn RuntimeBackend>| format!("{}-{}", subject.engine.program.file_name().unwrap().to_string_lossy(), backend.kind());

    // One warm-up start each fills the page cache and the library list cache.
    for backend in backends {
        start_stop(backend.as_ref(), &launch(home, &agent(backend), &subject.engine)).await;
    }
    let mut times: [Vec<Duration>; 2] = [Vec::new(), Vec::new()];
    for _ in 0..STARTS {
        for (index, backend) in backends.into_iter().enumerate() {
            let spec = launch(home, &agent(backend), &subject.engine);
            times[index].push(start_stop(backend.as_ref(), &spec).await);
        }
    }
    print_starts(&times);

    for backend in backends {
        let spec = launch(home, &agent(backend), &subject.engine);
        let handle = backend.start(&spec).await.unwrap();
        tokio::time::sleep(Duration::from_millis(500)).await;
        let pid = handle.instance.pid().unwrap();
        let (processes, rss) = tree_rss(pid);
        println!("idle ready runtime, {:<9}: {processes} processes, {:.1} MiB RSS in total", backend.kind(), mib(rss));
        handle.instance.stop(Duration::from_secs(5)).await.unwrap();
    }
}

async fn start_stop(backend: &dyn RuntimeBackend, spec: &LaunchSpec) -> Duration {
    let started = Instant::now();
    let handle = backend.start(spec).await.unwrap_or_else(|error| panic!("{} start failed: {error}", backend.kind()));
    let elapsed = started.elapsed();
    handle.instance.stop(Duration::from_secs(5)).await.unwrap();
    elapsed
}

fn percentile(sorted: &[Duration], fraction: f64) -> Duration {
    let index = ((sorted.len() as f64 - 1.0) * fraction).round() as usize;
    sorted[index]
}

fn print_starts(times: &[Vec<Duration>; 2]) {
    println!("cold start to engine ready, {STARTS} starts per backend (interleaved)");
    println!("{:<10} {:>10} {:>10} {:>10}", "backend", "median ms", "p90 ms", "max ms");
    let mut medians = Vec::new();
    for (name, samples) in ["process", "namespace"].iter().zip(times) {
        let mut sorted = samples.clone();
        sorted.sort();
        let median = percentile(&sorted, 0.5);
        medians.push(median);
        println!(
            "{name:<10} {:>10.2} {:>10.2} {:>10.2}",
            ms(median),
            ms(percentile(&sorted, 0.9)),
            ms(*sorted.last().unwrap())
        );
    }
    println!("ratio namespace / process (median): {:.2}", ms(medians[1]) / ms(medians[0]));
}

async fn sleeping_agents(home: &Path, backend: Arc<dyn RuntimeBackend>, engine: &EngineCommand) {
    let before = own_rss();
    let children_before = count_descendants(std::process::id());
    let manager = RuntimeManager::new(backend, ManagerConfig::new(home.join("run")));
    for index in 0..SLEEPING_AGENTS {
        let agent = format!("sleeper-{index}");
        let volume = home.join("agents").join(&agent);
        std::fs::create_dir_all(&volume).unwrap();
        manager.register(AgentSpec::new(AgentId::parse(&agent).unwrap(), volume, engine.clone())).unwrap();
    }
    tokio::time::sleep(Duration::from_millis(200)).await;
    let processes = count_descendants(std::process::id()) - children_before;
    println!(
        "{SLEEPING_AGENTS} registered sleeping agents: {} running runtimes, {processes} runtime processes, manager memory +{:.2} MiB RSS",
        manager.running_count(),
        mib(own_rss().saturating_sub(before))
    );
}

fn ms(duration: Duration) -> f64 {
    duration.as_secs_f64() * 1000.0
}

fn mib(bytes: u64) -> f64 {
    bytes as f64 / (1024.0 * 1024.0)
}

fn rss_of(pid: u32) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
    let kib: u64 = status
        .lines()
        .find_map(|line| line.strip_prefix("VmRSS:"))
        .and_then(|value| value.split_whitespace().next())
        .and_then(|value| value.parse().ok())
        .unwrap_or(0);
    kib * 1024
}

fn own_rss() -> u64 {
    rss_of(std::process::id())
}

fn descendants(pid: u32) -> Vec<u32> {
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

fn count_descendants(pid: u32) -> usize {
    descendants(pid).len()
}

/// Returns the number of processes and their summed RSS for `pid` and its descendants.
/// Shared pages (the binary, libc) count once per process, so the sum overstates the
/// memory the runtime adds.
fn tree_rss(pid: u32) -> (usize, u64) {
    let mut pids = descendants(pid);
    pids.push(pid);
    (pids.len(), pids.iter().map(|pid| rss_of(*pid)).sum())
}
