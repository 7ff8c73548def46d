//! Shared harness of the end-to-end flow tests: starts the real `houston up` binary on a
//! fresh home folder and talks to it over HTTP like a client.

#![allow(dead_code)]

use std::collections::HashMap;
use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use houston_protocol::sse::SseDecoder;
use houston_protocol::{EventKind, StreamEvent};
use serde_json::{Value, json};

/// A running `houston up` process. Dropping it sends SIGTERM and waits for the exit.
pub struct Houston {
    child: Child,
    pub url: String,
    pub home: PathBuf,
    /// Passwords printed by `--demo`, by email.
    pub passwords: HashMap<String, String>,
    pub client: reqwest::Client,
}

impl Houston {
    /// Starts `houston up --home HOME --listen 127.0.0.1:0 ARGS…` with `env` added, and waits
    /// for its listening line.
    pub fn start(home: &Path, args: &[&str], env: &[(&str, String)]) -> Self {
        let log = std::fs::File::create(home.with_extension("log")).expect("create the log file");
        let mut command = Command::new(env!("CARGO_BIN_EXE_houston"));
        command
            .arg("up")
            .arg("--home")
            .arg(home)
            .args(["--listen", "127.0.0.1:0"])
            .args(args)
            .env_remove("ANTHROPIC_API_KEY")
            .env_remove("OPENAI_API_KEY")
            .env("RUST_LOG", "info")
            .stdout(Stdio::piped())
            .stderr(log);
        for (name, value) in env {
            command.env(name, value);
        }
        let mut child = command.spawn().expect("start houston up");
        let stdout = child.stdout.take().expect("piped stdout");
        let (sender, receiver) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines().map_while(Result::ok) {
                if sender.send(line).is_err() {
                    break;
                }
            }
        });

        let mut passwords = HashMap::new();
        let deadline = Instant::now() + Duration::from_secs(60);
        let url = loop {
            let remaining = deadline.saturating_duration_since(Instant::now());
            let line = receiver.recv_timeout(remaining).unwrap_or_else(|_| {
                let log = std::fs::read_to_string(home.with_extension("log")).unwrap_or_default();
                panic!("houston up printed no listening line within 60 s; its log:\n{log}")
            });
            if let Some(rest) = line.strip_prefix("demo user: ") {
                let (email, password) = rest.split_once(" password: ").expect("demo user line format");
                passwords.insert(email.to_owned(), password.to_owned());
            }
            if let Some(url) = line.strip_prefix("houston listening on ") {
                break url.to_owned();
            }
        };
        Self { child, url, home: home.to_path_buf(), passwords, client: reqwest::Client::new() }
    }

    /// Returns the log written so far (stderr of `houston up`).
    pub fn log(&self) -> String {
        std::fs::read_to_string(self.home.with_extension("log")).unwrap_or_default()
    }

    /// Signs in with a demo account and returns the access token.
    pub async fn login(&self, email: &str) -> String {
        let password = self.passwords.get(email).unwrap_or_else(|| panic!("no demo password for {email}"));
        let response = self
            .client
            .post(format!("{}/v1/login", self.url))
            .json(&json!({"email": email, "password": password}))
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), 200, "login of {email}");
        let body: Value = response.json().await.unwrap();
        body["access_token"].as_str().unwrap().to_owned()
    }

    pub async fn get(&self, token: &str, path: &str) -> reqwest::Response {
        self.client.get(format!("{}{path}", self.url)).bearer_auth(token).send().await.unwrap()
    }

    pub async fn get_json(&self, token: &str, path: &str) -> Value {
        let response = self.get(token, path).await;
        assert!(response.status().is_success(), "GET {path}: {}", response.status());
        response.json().await.unwrap()
    }

    pub async fn post_chat(&self, token: &str, body: Value) -> reqwest::Response {
        self.client.post(format!("{}/v1/chat", self.url)).bearer_auth(token).json(&body).send().await.unwrap()
    }

    /// Sends a chat message and reads the whole answer stream.
    pub async fn chat(&self, token: &str, body: Value) -> Vec<StreamEvent> {
        let response = self.post_chat(token, body).await;
        assert_eq!(response.status(), 200, "chat answer status");
        read_events(response, usize::MAX).await
    }

    /// Returns the pid of every process whose command line mentions `marker`.
    pub fn processes_mentioning(marker: &str) -> Vec<u32> {
        let me = std::process::id();
        let mut pids = Vec::new();
        for entry in std::fs::read_dir("/proc").unwrap().flatten() {
            let Ok(pid) = entry.file_name().to_string_lossy().parse::<u32>() else { continue };
            if pid == me {
                continue;
            }
            let cmdline = std::fs::read(entry.path().join("cmdline")).unwrap_or_default();
            if String::from_utf8_lossy(&cmdline).contains(marker) {
                pids.push(pid);
            }
        }
        pids
    }
}

impl Drop for Houston {
    fn drop(&mut self) {
        let _ = Command::new("kill").args(["-TERM", &self.child.id().to_string()]).status();
        let deadline = Instant::now() + Duration::from_secs(20);
        while Instant::now() < deadline {
            if let Ok(Some(_)) = self.child.try_wait() {
                return;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Reads SSE events from a response until it ends or `limit` events arrived.
pub async fn read_events(mut response: reqwest::Response, limit: usize) -> Vec<StreamEvent> {
    let mut decoder = SseDecoder::new();
    let mut events = Vec::new();
    while events.len() < limit {
        let Some(chunk) = response.chunk().await.expect("read the answer stream") else { break };
        events.extend(decoder.feed(&chunk).into_iter().map(|frame| frame.to_event().expect("a stream event")));
    }
    events.truncate(limit);
    events
}

pub fn types(events: &[StreamEvent]) -> Vec<&'static str> {
    events.iter().map(|event| event.kind.type_name()).collect()
}

pub fn seqs(events: &[StreamEvent]) -> Vec<u64> {
    events.iter().map(|event| event.seq).collect()
}

/// Returns the concatenated `message.delta` text.
pub fn answer_text(events: &[StreamEvent]) -> String {
    events
        .iter()
        .filter_map(|event| match &event.kind {
            EventKind::MessageDelta { text } => Some(text.as_str()),
            _ => None,
        })
        .collect()
}

/// Returns the session id of `turn.accepted`.
pub fn session_of(events: &[StreamEvent]) -> String {
    match &events.first().expect("at least one event").kind {
        EventKind::TurnAccepted { session_id } => session_id.to_string(),
        other => panic!("the first event is {other:?}, expected turn.accepted"),
    }
}

/// Polls `check` every 100 ms until it returns true or `limit` passes.
pub async fn wait_until(limit: Duration, mut check: impl AsyncFnMut() -> bool) -> bool {
    let deadline = Instant::now() + limit;
    while Instant::now() < deadline {
        if check().await {
            return true;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    false
}

/// Returns the fixtures folder shared by the test suites, read in place.
pub fn fixtures_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../../shared/fixtures")
}
