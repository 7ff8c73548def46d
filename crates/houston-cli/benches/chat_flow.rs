//! Chat flow benchmark: what the control plane adds to a streamed answer.
//!
//! Run with `cargo bench -p houston-cli --bench chat_flow` (needs Debian's `nginx-light` for
//! the baseline; without nginx that row is skipped). Everything runs on this machine:
//! the Anthropic stand-in and the control plane in this process, `houston engine` processes
//! on loopback TCP, and nginx as a separate process.
//!
//! - Warm time to first token: from sending the request to reading the first `message.delta`,
//!   directly to an engine, through nginx, and through the control plane (`POST /v1/chat`:
//!   token check, grant check, audit, rate limit, turn and session rows in SQLite, forward).
//!   Every hop is loopback TCP with keep-alive, and one client serves all three paths. The three paths are
//!   interleaved per round, and the added time is the median of the per-round differences.
//! - Cold time to first token: the same through the control plane with the agent's runtime
//!   stopped before each request, so each one starts a namespace sandbox.
//! - Concurrent streams: 500 chats at once on warm agents, whose stand-in replies send a piece
//!   every 100 ms. Each event's lateness is its arrival minus the arrival of the stream's first
//!   delta minus its place in the schedule; the control plane's added delay per event is its
//!   lateness percentile minus the same percentile of the direct run.

use std::collections::HashMap;
use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use async_trait::async_trait;
use houston_cache::client_ip::TrustedProxies;
use houston_cache::{CacheConfig, Caches, Quota};
use houston_control_plane::chat::{
    Acquisition, AgentSpecSource, ChatAgent, ChatError, ChatLimits, ChatService, ControlPlaneChat,
    ManagerRuntimes, RuntimeLease, Runtimes, TurnTable,
};
use houston_control_plane::{ControlPlane, ControlPlaneOptions, IdentityConfig, seed};
use houston_egress::{EgressConfig, EgressProxy, TrustedUpstream};
use houston_protocol::sse::SseDecoder;
use houston_protocol::{AgentId, EngineEndpoint, EventKind, SessionId};
use houston_runtime::{
    AgentSpec, BackendKind, EngineCommand, ManagerConfig, NamespaceConfig, RuntimeManager,
    create_backend, namespace_supported,
};
use houston_store::{AgentSettings, Role, SqliteStore, Store, StoreOptions};
use houston_testkit::anthropic::StandIn;
use secrecy::SecretString;
use serde_json::json;

const ENGINE_TOKEN: &str = "bench-engine-token";
const PASSWORD: &str = "bench-password-1";
const WARM_AGENTS: usize = 4;
const ROUNDS: usize = 400;
const WARMUP: usize = 20;
const COLD_STARTS: usize = 30;
const STREAMS: usize = 500;
const PIECE_DELAY: Duration = Duration::from_millis(100);

const AGENT_FILES: [(&str, &str); 3] = [
    ("houston.json", include_str!("../demo/hr/houston.json")),
    ("CLAUDE.md", include_str!("../demo/hr/CLAUDE.md")),
    ("knowledge/employee-handbook.md", include_str!("../demo/hr/knowledge/employee-handbook.md")),
];

fn houston_bin() -> PathBuf {
    PathBuf::from(env!("CARGO_BIN_EXE_houston"))
}

fn write_agent(dir: &Path) {
    for (relative, text) in AGENT_FILES {
        let path = dir.join(relative);
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(path, text).unwrap();
    }
}

fn percentile(values: &[f64], fraction: f64) -> f64 {
    let mut sorted = values.to_vec();
    sorted.sort_by(f64::total_cmp);
    let index = ((sorted.len() as f64 - 1.0) * fraction).round() as usize;
    sorted[index]
}

fn ms(duration: Duration) -> f64 {
    duration.as_secs_f64() * 1000.0
}

/// Starts `houston engine` on a free loopback TCP port with the Anthropic provider pointed at
/// the stand-in, and returns it with its address.
fn start_engine(dir: &Path, stand_in: &str) -> (Child, String) {
    let mut child = Command::new(houston_bin())
        .args(["engine", "--agent-dir"])
        .arg(dir)
        .args(["--listen", "tcp:127.0.0.1:0"])
        .env("HOUSTON_ENGINE_TOKEN", ENGINE_TOKEN)
        .env("HOUSTON_PROVIDER", "anthropic")
        .env("ANTHROPIC_API_KEY", "sk-bench")
        .env("ANTHROPIC_BASE_URL", stand_in)
        .env("RUST_LOG", "warn")
        .env_remove("HOUSTON_EGRESS_SOCKET")
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .expect("spawn houston engine");
    let mut line = String::new();
    BufReader::new(child.stdout.as_mut().unwrap()).read_line(&mut line).expect("read the readiness line");
    let address = line.trim_end().strip_prefix("houston-engine listening on tcp:");
    let address = address.unwrap_or_else(|| panic!("unexpected readiness line {line:?}")).to_owned();
    (child, address)
}

/// Starts nginx proxying to the engine at `engine` (HOST:PORT), or returns `None` without
/// nginx.
fn start_nginx(dir: &Path, engine: &str) -> Option<(Child, String)> {
    let port = std::net::TcpListener::bind("127.0.0.1:0").ok()?.local_addr().ok()?.port();
    let config = format!(
        "user root; worker_processes 1; daemon off; pid {dir}/nginx.pid; error_log stderr error;
events {{ worker_connections 4096; }}
http {{
  access_log off;
  client_body_temp_path {dir}/body; proxy_temp_path {dir}/proxy;
  fastcgi_temp_path {dir}/fastcgi; uwsgi_temp_path {dir}/uwsgi; scgi_temp_path {dir}/scgi;
  upstream engine {{ server {engine}; keepalive 64; }}
  server {{
    listen 127.0.0.1:{port};
    location / {{
      proxy_pass http://engine;
      proxy_http_version 1.1;
      proxy_set_header Connection \"\";
      proxy_buffering off;
      proxy_read_timeout 1h;
    }}
  }}
}}
",
        dir = dir.display(),
    );
    std::fs::write(dir.join("nginx.conf"), config).ok()?;
    let child = Command::new("nginx").arg("-p").arg(dir).arg("-c").arg(dir.join("nginx.conf")).spawn().ok()?;
    for _ in 0..100 {
        if std::net::TcpStream::connect(("127.0.0.1", port)).is_ok() {
            return Some((child, format!("http://127.0.0.1:{port}")));
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    None
}

/// Warm agents point at engines started by the benchmark; the cold agent goes through the
/// runtime manager.
struct BenchRuntimes {
    warm: HashMap<AgentId, EngineEndpoint>,
    manager: Arc<ManagerRuntimes>,
}

#[async_trait]
impl Runtimes for BenchRuntimes {
    async fn acquire(&self, agent: &ChatAgent) -> Result<Acquisition, ChatError> {
        if let Some(endpoint) = self.warm.get(&agent.agent_id) {
            return Ok(Acquisition::Ready(RuntimeLease {
                endpoint: endpoint.clone(),
                token: SecretString::from(ENGINE_TOKEN),
                cold_start: None,
                guard: Box::new(()),
            }));
        }
        self.manager.acquire(agent).await
    }
}

struct ColdSpec {
    volume: PathBuf,
    stand_in: String,
    egress_socket: PathBuf,
}

#[async_trait]
impl AgentSpecSource for ColdSpec {
    async fn spec_for(&self, agent: &ChatAgent) -> Result<AgentSpec, ChatError> {
        let mut spec = AgentSpec::new(agent.agent_id.clone(), &self.volume, EngineCommand::houston(houston_bin()));
        spec.idle_timeout = Duration::from_secs(3600);
        spec.env.insert("HOUSTON_PROVIDER".into(), "anthropic".into());
        spec.env.insert("ANTHROPIC_BASE_URL".into(), self.stand_in.clone());
        spec.egress_socket = Some(self.egress_socket.clone());
        Ok(spec)
    }
}

struct Bench {
    url: String,
    jwt: String,
    client: reqwest::Client,
    warm_addresses: Vec<String>,
    nginx_url: Option<String>,
    manager: RuntimeManager,
    cold_agent: AgentId,
    backend: &'static str,
}

/// Reads a response until its first delta and returns that time and any `cold_start_ms`, then
/// reads the rest so the turn is finished before the next request.
async fn first_delta(mut response: reqwest::Response, started: Instant) -> (Duration, Option<u64>, bool) {
    assert_eq!(response.status(), 200, "chat status");
    let mut decoder = SseDecoder::new();
    let mut first = None;
    let mut cold = None;
    let mut completed = false;
    while let Some(chunk) = response.chunk().await.expect("read the stream") {
        for frame in decoder.feed(&chunk) {
            let event = frame.to_event().expect("a stream event");
            match event.kind {
                EventKind::MessageDelta { .. } if first.is_none() => first = Some(started.elapsed()),
                EventKind::AgentReady { cold_start_ms } => cold = Some(cold_start_ms),
                EventKind::TurnCompleted { .. } => completed = true,
                _ => {}
            }
        }
    }
    (first.expect("a delta arrived"), cold, completed)
}

impl Bench {
    async fn through_control_plane(&self, agent: &str) -> (Duration, Option<u64>) {
        let started = Instant::now();
        let response = self
            .client
            .post(format!("{}/v1/chat", self.url))
            .bearer_auth(&self.jwt)
            .json(&json!({"agent_id": agent, "message": "what's our vacation policy?"}))
            .send()
            .await
            .expect("send the chat");
        let (time, cold, _) = first_delta(response, started).await;
        (time, cold)
    }

    async fn through_nginx(&self, nginx: &str) -> Duration {
        let started = Instant::now();
        let response = self
            .client
            .post(format!("{nginx}/v1/sessions/{}/turns", SessionId::generate()))
            .bearer_auth(ENGINE_TOKEN)
            .json(&json!({"user_id": "bench", "message": "what's our vacation policy?"}))
            .send()
            .await
            .expect("send through nginx");
        first_delta(response, started).await.0
    }

    async fn direct(&self, engine: &str) -> Duration {
        let started = Instant::now();
        let response = self
            .client
            .post(format!("http://{engine}/v1/sessions/{}/turns", SessionId::generate()))
            .bearer_auth(ENGINE_TOKEN)
            .json(&json!({"user_id": "bench", "message": "what's our vacation policy?"}))
            .send()
            .await
            .expect("send to the engine");
        first_delta(response, started).await.0
    }
}

async fn warm_ttft(bench: &Bench) {
    let endpoint = bench.warm_addresses[0].clone();
    for _ in 0..WARMUP {
        bench.direct(&endpoint).await;
        bench.through_control_plane("warm0").await;
        if let Some(nginx) = &bench.nginx_url {
            bench.through_nginx(nginx).await;
        }
    }
    let (mut direct, mut control_plane, mut nginx) = (Vec::new(), Vec::new(), Vec::new());
    for _ in 0..ROUNDS {
        direct.push(ms(bench.direct(&endpoint).await));
        control_plane.push(ms(bench.through_control_plane("warm0").await.0));
        if let Some(url) = &bench.nginx_url {
            nginx.push(ms(bench.through_nginx(url).await));
        }
    }
    let added: Vec<f64> = control_plane.iter().zip(&direct).map(|(c, d)| c - d).collect();
    println!("\n## Warm time to first token ({ROUNDS} rounds, interleaved)\n");
    println!("| path | median | p90 | added to direct (median of per-round differences) |");
    println!("|---|---|---|---|");
    println!("| direct to the engine | {:.3} ms | {:.3} ms | baseline |", percentile(&direct, 0.5), percentile(&direct, 0.9));
    let added_cp = percentile(&added, 0.5);
    if !nginx.is_empty() {
        let added_nginx: Vec<f64> = nginx.iter().zip(&direct).map(|(n, d)| n - d).collect();
        let added_nginx = percentile(&added_nginx, 0.5);
        println!("| nginx in front of the engine | {:.3} ms | {:.3} ms | {:.3} ms |", percentile(&nginx, 0.5), percentile(&nginx, 0.9), added_nginx);
        println!("| control plane `POST /v1/chat` | {:.3} ms | {:.3} ms | {:.3} ms ({:.2}× nginx's) |", percentile(&control_plane, 0.5), percentile(&control_plane, 0.9), added_cp, added_cp / added_nginx);
    } else {
        println!("| nginx | not installed | | |");
        println!("| control plane `POST /v1/chat` | {:.3} ms | {:.3} ms | {:.3} ms |", percentile(&control_plane, 0.5), percentile(&control_plane, 0.9), added_cp);
    }
}

async fn cold_ttft(bench: &Bench) {
    let (mut ttft, mut starts) = (Vec::new(), Vec::new());
    for _ in 0..COLD_STARTS {
        // The agent is registered on its first request, so the first stop finds nothing.
        let _ = bench.manager.stop(&bench.cold_agent).await;
        let (time, cold) = bench.through_control_plane("cold").await;
        let cold = cold.expect("each request was a cold start");
        ttft.push(ms(time));
        starts.push(cold as f64);
    }
    println!("\n## Cold time to first token ({COLD_STARTS} starts, {} sandbox)\n", bench.backend);
    println!("| measure | median | p90 |");
    println!("|---|---|---|");
    println!("| time to first token | {:.1} ms | {:.1} ms |", percentile(&ttft, 0.5), percentile(&ttft, 0.9));
    println!("| of which cold start (`agent.ready`) | {:.1} ms | {:.1} ms |", percentile(&starts, 0.5), percentile(&starts, 0.9));
}

/// Runs one stream and returns each delta's arrival time, or an error description.
async fn stream_arrivals(bench: &Bench, index: usize, through_control_plane: bool) -> Result<Vec<Instant>, String> {
    let message = "one two three four five six seven eight";
    let mut arrivals = Vec::new();
    let mut completed = false;
    if through_control_plane {
        let mut response = bench
            .client
            .post(format!("{}/v1/chat", bench.url))
            .bearer_auth(&bench.jwt)
            .json(&json!({"agent_id": format!("warm{}", index % WARM_AGENTS), "message": message}))
            .send()
            .await
            .map_err(|e| format!("send: {e}"))?;
        if response.status() != 200 {
            return Err(format!("status {}", response.status()));
        }
        let mut decoder = SseDecoder::new();
        while let Some(chunk) = response.chunk().await.map_err(|e| format!("read: {e}"))? {
            let now = Instant::now();
            for frame in decoder.feed(&chunk) {
                match frame.to_event().map_err(|e| format!("event: {e}"))?.kind {
                    EventKind::MessageDelta { .. } => arrivals.push(now),
                    EventKind::TurnCompleted { .. } => completed = true,
                    _ => {}
                }
            }
        }
    } else {
        let engine = &bench.warm_addresses[index % WARM_AGENTS];
        let mut response = bench
            .client
            .post(format!("http://{engine}/v1/sessions/{}/turns", SessionId::generate()))
            .bearer_auth(ENGINE_TOKEN)
            .json(&json!({"user_id": "bench", "message": message}))
            .send()
            .await
            .map_err(|e| format!("send: {e}"))?;
        let mut decoder = SseDecoder::new();
        while let Some(chunk) = response.chunk().await.map_err(|e| format!("read: {e}"))? {
            let now = Instant::now();
            for frame in decoder.feed(&chunk) {
                match frame.to_event().map_err(|e| format!("event: {e}"))?.kind {
                    EventKind::MessageDelta { .. } => arrivals.push(now),
                    EventKind::TurnCompleted { .. } => completed = true,
                    _ => {}
                }
            }
        }
    }
    if !completed || arrivals.is_empty() {
        return Err("the stream ended without turn.completed".into());
    }
    Ok(arrivals)
}

/// Runs `STREAMS` streams at once and returns every event's lateness in ms and the errors.
async fn concurrent_run(bench: &Arc<Bench>, through_control_plane: bool) -> (Vec<f64>, Vec<String>, Duration) {
    let started = Instant::now();
    let tasks: Vec<_> = (0..STREAMS)
        .map(|index| {
            let bench = Arc::clone(bench);
            tokio::spawn(async move { stream_arrivals(&bench, index, through_control_plane).await })
        })
        .collect();
    let mut lateness = Vec::new();
    let mut errors = Vec::new();
    for task in tasks {
        match task.await.expect("a stream task") {
            Ok(arrivals) => {
                for (k, arrival) in arrivals.iter().enumerate().skip(1) {
                    let on_schedule = PIECE_DELAY * k as u32;
                    lateness.push(ms(arrival.duration_since(arrivals[0])) - ms(on_schedule));
                }
            }
            Err(error) => errors.push(error),
        }
    }
    (lateness, errors, started.elapsed())
}

async fn concurrent_streams(bench: &Arc<Bench>, stand_in: &StandIn) {
    stand_in.set_default_token_delay(Some(PIECE_DELAY));
    let (direct, direct_errors, direct_time) = concurrent_run(bench, false).await;
    let (control_plane, cp_errors, cp_time) = concurrent_run(bench, true).await;
    stand_in.set_default_token_delay(None);
    println!("\n## {STREAMS} concurrent streams on {WARM_AGENTS} warm agents (a piece every {} ms)\n", PIECE_DELAY.as_millis());
    println!("| path | events | errors | lateness p50 | lateness p99 | wall time |");
    println!("|---|---|---|---|---|---|");
    println!("| direct to the engines | {} | {} | {:.2} ms | {:.2} ms | {:.1} s |", direct.len(), direct_errors.len(), percentile(&direct, 0.5), percentile(&direct, 0.99), direct_time.as_secs_f64());
    println!("| control plane | {} | {} | {:.2} ms | {:.2} ms | {:.1} s |", control_plane.len(), cp_errors.len(), percentile(&control_plane, 0.5), percentile(&control_plane, 0.99), cp_time.as_secs_f64());
    println!(
        "\nAdded delay per event through the control plane: p50 {:.2} ms, p99 {:.2} ms.",
        percentile(&control_plane, 0.5) - percentile(&direct, 0.5),
        percentile(&control_plane, 0.99) - percentile(&direct, 0.99)
    );
    for error in direct_errors.iter().chain(&cp_errors).take(5) {
        println!("error: {error}");
    }
}

async fn seed_agents(store: &dyn Store) -> (Vec<AgentId>, AgentId) {
    let workspace = seed::create_workspace(store, "bench", "Bench").await.unwrap();
    let user = seed::create_user_with_password(store, "bench@bench.test", "Bench", PASSWORD).await.unwrap();
    seed::add_member(store, &workspace.id, &user.id, Role::Member).await.unwrap();
    let create = async |slug: &str| {
        let agent = seed::create_agent(store, &workspace.id, slug, AGENT_FILES[0].1, AGENT_FILES[1].1, AgentSettings::default()).await.unwrap();
        seed::grant(store, &workspace.id, &agent.id, &user.id).await.unwrap();
        agent.id
    };
    let mut warm = Vec::new();
    for index in 0..WARM_AGENTS {
        warm.push(create(&format!("warm{index}")).await);
    }
    let cold = create("cold").await;
    (warm, cold)
}

async fn start_control_plane(dir: &Path, runtimes: impl FnOnce(&AgentId, &[AgentId]) -> Arc<dyn Runtimes>) -> (String, AgentId) {
    let sqlite = SqliteStore::connect(&StoreOptions::new(format!("sqlite://{}", dir.join("houston.db").display()))).await.unwrap();
    let pool = sqlite.pool().clone();
    let store: Arc<dyn Store> = Arc::new(sqlite);
    let (warm, cold) = seed_agents(store.as_ref()).await;
    let options = ControlPlaneOptions {
        store,
        caches: Caches::in_process(CacheConfig::default()).unwrap(),
        identity: IdentityConfig::default(),
        limits: houston_control_plane::config::LimitsConfig::default(),
        trusted_proxies: TrustedProxies::parse::<&str>(&[]).unwrap(),
        outbox_dir: None,
    };
    let control_plane = ControlPlane::new(options).await.unwrap();
    let unlimited = Quota::new(1_000_000, Duration::from_secs(1)).unwrap();
    let limits = ChatLimits { per_user: unlimited, per_workspace: unlimited, per_agent: unlimited };
    let chat = ControlPlaneChat::new(control_plane.clone(), TurnTable::Sqlite(pool), limits).await.unwrap();
    let service = ChatService::new(chat.ports(runtimes(&cold, &warm)));
    let app = houston_control_plane::router(control_plane).merge(houston_control_plane::chat::router(service));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    let listener = axum::serve::ListenerExt::tap_io(listener, |tcp| {
        let _ = tcp.set_nodelay(true);
    });
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    (url, cold)
}

async fn login(client: &reqwest::Client, url: &str) -> String {
    let response = client.post(format!("{url}/v1/login")).json(&json!({"email": "bench@bench.test", "password": PASSWORD})).send().await.unwrap();
    let body: serde_json::Value = response.json().await.unwrap();
    body["access_token"].as_str().expect("an access token").to_owned()
}

async fn run() {
    let dir = tempfile::Builder::new().prefix("chat-bench").tempdir_in("/tmp").unwrap();
    let dir = dir.path().to_path_buf();
    let stand_in = StandIn::start().await;

    let mut engines = Vec::new();
    let mut warm_addresses = Vec::new();
    for index in 0..WARM_AGENTS {
        let agent_dir = dir.join(format!("warm{index}"));
        write_agent(&agent_dir);
        let (engine, address) = start_engine(&agent_dir, &stand_in.base_url());
        engines.push(engine);
        warm_addresses.push(address);
    }
    std::fs::create_dir_all(dir.join("nginx")).unwrap();
    let nginx = start_nginx(&dir.join("nginx"), &warm_addresses[0]);
    let warm_endpoints: Vec<EngineEndpoint> = warm_addresses.iter().map(|a| EngineEndpoint::Tcp(a.clone())).collect();

    let upstream = TrustedUpstream::anthropic(&stand_in.base_url(), SecretString::from("sk-bench")).unwrap();
    let egress = EgressProxy::new(EgressConfig::new(vec![upstream], dir.join("egress.log")).unwrap()).unwrap();
    let namespace = NamespaceConfig { init_program: houston_bin(), init_args: vec!["sandbox-init".into()], ..NamespaceConfig::default() };
    let (kind, backend) = match namespace_supported(&namespace) {
        Ok(()) => (BackendKind::Namespace, "namespace"),
        Err(error) => {
            println!("WARNING: {error}; cold starts use the process backend");
            (BackendKind::Process, "process")
        }
    };
    let manager = RuntimeManager::new(create_backend(kind, namespace).unwrap(), ManagerConfig::new(dir.join("run")));
    let cold_volume = dir.join("cold");
    write_agent(&cold_volume);

    let manager_for_runtimes = manager.clone();
    let warm_map_endpoints = warm_endpoints.clone();
    let mut egress_handle = None;
    let (url, cold_agent) = start_control_plane(&dir, |cold, warm| {
        let socket = dir.join("egress-cold.sock");
        egress_handle = Some(egress.open_agent(cold.clone(), egress.default_policy(), &socket).unwrap());
        let spec = ColdSpec { volume: cold_volume.clone(), stand_in: stand_in.base_url(), egress_socket: socket };
        let warm = warm.iter().cloned().zip(warm_map_endpoints).collect();
        Arc::new(BenchRuntimes { warm, manager: ManagerRuntimes::new(manager_for_runtimes, Arc::new(spec)) })
    })
    .await;

    let client = reqwest::Client::new();
    let jwt = login(&client, &url).await;
    let bench = Arc::new(Bench {
        url,
        jwt,
        client,
        warm_addresses,
        nginx_url: nginx.as_ref().map(|(_, url)| url.clone()),
        manager: manager.clone(),
        cold_agent,
        backend,
    });

    println!("# Chat flow benchmark ({} CPUs)", std::thread::available_parallelism().map_or(0, |n| n.get()));
    warm_ttft(&bench).await;
    cold_ttft(&bench).await;
    concurrent_streams(&bench, &stand_in).await;

    manager.shutdown().await;
    drop(egress_handle);
    for mut engine in engines {
        let _ = engine.kill();
        let _ = engine.wait();
    }
    if let Some((mut nginx, _)) = nginx {
        let _ = nginx.kill();
        let _ = nginx.wait();
    }
    let _ = std::fs::remove_dir_all(&dir);
}

fn main() {
    let runtime = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().unwrap();
    runtime.block_on(run());
}
