//! Redis for tests: the shared server at `REDIS_URL`, or a throwaway `redis-server` that a
//! test may stop and restart.

use std::io::Write;
use std::net::TcpListener;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use houston_cache::{CacheConfig, Caches, RedisCaches, RedisConfig};
use secrecy::SecretString;

pub const DEFAULT_REDIS_URL: &str = "redis://127.0.0.1:6379";

fn in_ci() -> bool {
    std::env::var("CI").is_ok_and(|value| value == "true")
}

/// Fails the test under `CI=true`, otherwise prints why it is skipped.
fn unavailable<T>(what: &str) -> Option<T> {
    assert!(!in_ci(), "{what} (CI=true makes Redis tests mandatory)");
    eprintln!("skipping: {what}");
    None
}

/// Returns the URL of the shared Redis, or `None` (test skipped) when it is unreachable
/// outside CI.
pub fn shared_redis_url() -> Option<String> {
    let url = std::env::var("REDIS_URL").unwrap_or_else(|_| DEFAULT_REDIS_URL.to_owned());
    let address = url
        .trim_start_matches("redis://")
        .split(['/', '@'])
        .find(|part| part.contains(':'))
        .unwrap_or("127.0.0.1:6379")
        .to_owned();
    let reachable = std::net::ToSocketAddrs::to_socket_addrs(&address)
        .ok()
        .and_then(|mut addresses| addresses.next())
        .is_some_and(|socket| {
            std::net::TcpStream::connect_timeout(&socket, Duration::from_secs(1)).is_ok()
        });
    if reachable {
        Some(url)
    } else {
        unavailable(&format!("Redis at {url} is unreachable"))
    }
}

/// Returns a key prefix no other test uses, so tests can share one Redis in parallel.
pub fn unique_prefix(test: &str) -> String {
    format!("test:{test}:{}:", uuid::Uuid::new_v4().simple())
}

pub fn config(url: &str, prefix: &str) -> RedisConfig {
    let mut config = RedisConfig::new(SecretString::from(url.to_owned()));
    config.key_prefix = prefix.to_owned();
    config.cache = CacheConfig::default();
    config
}

/// Connects one replica and checks that it is up.
pub async fn replica(url: &str, prefix: &str) -> Arc<RedisCaches> {
    let caches = RedisCaches::connect(config(url, prefix)).await.unwrap();
    assert!(caches.is_up(), "replica did not connect to {url}");
    Arc::new(caches)
}

/// Views one replica through the [`Caches`] bundle the control plane uses.
pub fn bundle(caches: &Arc<RedisCaches>) -> Caches {
    Caches {
        permissions: caches.clone(),
        routes: caches.clone(),
        rate_limiter: caches.clone(),
    }
}

/// Polls `condition` every `step` until it is true or `limit` passes; returns the time taken.
pub async fn wait_until<F, Fut>(limit: Duration, step: Duration, condition: F) -> Option<Duration>
where
    F: Fn() -> Fut,
    Fut: std::future::Future<Output = bool>,
{
    let start = Instant::now();
    while start.elapsed() <= limit {
        if condition().await {
            return Some(start.elapsed());
        }
        tokio::time::sleep(step).await;
    }
    None
}

/// A `redis-server` started by the test on a free loopback port, without persistence.
pub struct ThrowawayRedis {
    pub port: u16,
    child: Option<Child>,
    directory: tempfile::TempDir,
}

impl ThrowawayRedis {
    /// Starts a server, or returns `None` (test skipped) when `redis-server` is missing
    /// outside CI.
    pub fn start() -> Option<Self> {
        Self::start_on_if_installed(free_port())
    }

    /// Starts a server on `port`, or returns `None` (test skipped) when `redis-server` is
    /// missing outside CI.
    pub fn start_on_if_installed(port: u16) -> Option<Self> {
        let available = Command::new("redis-server")
            .arg("--version")
            .output()
            .is_ok();
        if !available {
            return unavailable("redis-server is not installed");
        }
        Some(Self::start_on(port))
    }

    /// Starts a server on `port`.
    pub fn start_on(port: u16) -> Self {
        let directory = tempfile::tempdir().unwrap();
        let child = spawn_server(port, directory.path());
        let server = Self {
            port,
            child: Some(child),
            directory,
        };
        server.wait_ready();
        server
    }

    pub fn url(&self) -> String {
        format!("redis://127.0.0.1:{}", self.port)
    }

    /// Kills the server and waits for it to exit.
    pub fn kill(&mut self) {
        if let Some(mut child) = self.child.take() {
            child.kill().unwrap();
            child.wait().unwrap();
        }
    }

    /// Freezes the server (SIGSTOP): connections stay open but nothing is answered, as with
    /// an overloaded or partitioned Redis.
    pub fn pause(&self) {
        self.signal("-STOP");
    }

    /// Thaws a paused server (SIGCONT).
    pub fn resume(&self) {
        self.signal("-CONT");
    }

    fn signal(&self, signal: &str) {
        let child = self.child.as_ref().expect("the server is not running");
        let status = Command::new("kill")
            .args([signal, &child.id().to_string()])
            .status()
            .unwrap();
        assert!(status.success(), "kill {signal} failed");
    }

    /// Starts the server again on the same port, empty.
    pub fn restart(&mut self) {
        self.kill();
        self.child = Some(spawn_server(self.port, self.directory.path()));
        self.wait_ready();
    }

    fn wait_ready(&self) {
        let start = Instant::now();
        while std::net::TcpStream::connect(("127.0.0.1", self.port)).is_err() {
            assert!(
                start.elapsed() < Duration::from_secs(10),
                "redis-server did not start"
            );
            std::thread::sleep(Duration::from_millis(10));
        }
    }
}

impl Drop for ThrowawayRedis {
    fn drop(&mut self) {
        self.kill();
    }
}

/// Returns a loopback port that nothing listens on right now.
pub fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

fn spawn_server(port: u16, directory: &Path) -> Child {
    Command::new("redis-server")
        .args([
            "--port",
            &port.to_string(),
            "--bind",
            "127.0.0.1",
            "--save",
            "",
            "--appendonly",
            "no",
        ])
        .arg("--dir")
        .arg(directory)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("starting redis-server failed")
}

/// Log output collected for assertions on what was logged.
#[derive(Clone, Default)]
pub struct CapturedLogs(Arc<Mutex<Vec<u8>>>);

impl CapturedLogs {
    /// Installs a subscriber for the current thread; keep the guard alive for the test.
    pub fn install(&self) -> tracing::subscriber::DefaultGuard {
        let writer = self.clone();
        let subscriber = tracing_subscriber::fmt()
            .with_writer(move || writer.clone())
            .with_ansi(false)
            .with_max_level(tracing::Level::INFO)
            .finish();
        tracing::subscriber::set_default(subscriber)
    }

    pub fn count(&self, needle: &str) -> usize {
        let text = String::from_utf8_lossy(&self.0.lock().unwrap()).into_owned();
        text.lines().filter(|line| line.contains(needle)).count()
    }

    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.0.lock().unwrap()).into_owned()
    }
}

impl Write for CapturedLogs {
    fn write(&mut self, buffer: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(buffer);
        Ok(buffer.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}
