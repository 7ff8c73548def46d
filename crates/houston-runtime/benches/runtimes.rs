//! Runtime benchmark: cold start to engine ready for the `process` and `namespace` backends
//! (median and p90 over 50 starts each, interleaved), the memory of one idle ready runtime,
//! and the processes and memory of 1,000 registered sleeping agents.
//!
//! Run with `cargo bench -p houston-runtime --bench runtimes`. The engine is the probe binary
//! built with this crate unless `HOUSTON_BENCH_ENGINE` names a `houston` binary, in which
//! case its `engine` subcommand (with the offline provider) is started instead.

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

fn engine() -> (EngineCommand, &'static str) {
    match std::env::var("HOUSTON_BENCH_ENGINE") {
        Ok(houston) => (EngineCommand::houston(houston), "houston engine"),
        Err(_) => (EngineCommand { program: probe(), args: vec!["engine".to_owned()] }, "probe stand-in"),
    }
}

fn launch(home: &Path, agent: &str, engine: &EngineCommand) -> LaunchSpec {
    let volume = home.join("agents").join(agent);
    let runtime_dir = home.join("run").join(agent);
    std::fs::create_dir_all(&volume).unwrap();
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
    let (engine, engine_name) = engine();
    let process: Arc<dyn RuntimeBackend> = Arc::new(ProcessBackend::new());
    let namespace: Arc<dyn RuntimeBackend> = Arc::new(NamespaceBackend::new(NamespaceConfig {
        init_program: probe(),
        init_args: vec!["sandbox-init".to_owned()],
        limits: ResourceLimits::default(),
        tmp_size_bytes: 64 * 1024 * 1024,
    }));
    println!("engine: {engine_name} ({})", engine.program.display());

    // One warm-up start each fills the page cache and the library list cache.
    for backend in [&process, &namespace] {
        start_stop(backend.as_ref(), &launch(home.path(), "warmup", &engine)).await;
    }
    let mut times: [Vec<Duration>; 2] = [Vec::new(), Vec::new()];
    for round in 0..STARTS {
        for (index, backend) in [&process, &namespace].into_iter().enumerate() {
            let spec = launch(home.path(), &format!("agent-{}-{round}", backend.kind()), &engine);
            times[index].push(start_stop(backend.as_ref(), &spec).await);
        }
    }
    print_starts(&times);

    println!();
    for backend in [&process, &namespace] {
        let spec = launch(home.path(), &format!("idle-{}", backend.kind()), &engine);
        let handle = backend.start(&spec).await.unwrap();
        tokio::time::sleep(Duration::from_millis(500)).await;
        let pid = handle.instance.pid().unwrap();
        let (processes, rss) = tree_rss(pid);
        println!("idle ready runtime, {:<9}: {processes} processes, {:.1} MiB RSS in total", backend.kind(), mib(rss));
        handle.instance.stop(Duration::from_secs(5)).await.unwrap();
    }

    println!();
    sleeping_agents(home.path(), namespace, &engine).await;
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
