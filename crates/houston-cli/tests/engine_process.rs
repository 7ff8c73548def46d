//! `houston engine` as a process: the readiness line, the token rules, Unix sockets,
//! SIGTERM with an open turn, and kill -9 in the middle of a streamed turn followed by a
//! restart. The model is the in-process Anthropic stand-in on loopback.

use std::io::{BufRead, BufReader, Read, Write};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use futures::StreamExt;
use houston_protocol::sse::SseDecoder;
use houston_protocol::{EventKind, StreamEvent};
use houston_testkit::anthropic::{Script, StandIn};
use serde_json::{Value, json};

const TOKEN: &str = "process-test-token";

fn houston() -> Command {
    Command::new(env!("CARGO_BIN_EXE_houston"))
}

fn agent_dir() -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("CLAUDE.md"), "You are a test agent.").unwrap();
    dir
}

/// Starts the engine against the stand-in and returns it with its base URL.
fn spawn_engine(dir: &Path, stand_in_url: &str) -> (Child, String) {
    let mut child = houston()
        .args(["engine", "--agent-dir"])
        .arg(dir)
        .args(["--listen", "tcp:127.0.0.1:0"])
        .env("HOUSTON_ENGINE_TOKEN", TOKEN)
        .env("HOUSTON_PROVIDER", "anthropic")
        .env("ANTHROPIC_API_KEY", "sk-process-test")
        .env("ANTHROPIC_BASE_URL", stand_in_url)
        .env_remove("HOUSTON_EGRESS_SOCKET")
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let line = first_line(&mut child);
    let address = line.strip_prefix("houston-engine listening on tcp:").unwrap_or_else(|| panic!("readiness line: {line:?}"));
    assert!(!address.ends_with(":0"), "the real port is printed: {line}");
    (child, format!("http://{address}"))
}

fn first_line(child: &mut Child) -> String {
    let mut line = String::new();
    BufReader::new(child.stdout.as_mut().unwrap()).read_line(&mut line).unwrap();
    line.trim_end().to_owned()
}

fn wait_exit(child: &mut Child) -> std::process::ExitStatus {
    for _ in 0..1000 {
        if let Some(status) = child.try_wait().unwrap() {
            return status;
        }
        std::thread::sleep(Duration::from_millis(10));
    }
    child.kill().unwrap();
    panic!("the engine did not exit within 10 s");
}

async fn start_turn(base: &str, session: &str, message: &str) -> reqwest::Response {
    let response = reqwest::Client::new()
        .post(format!("{base}/v1/sessions/{session}/turns"))
        .bearer_auth(TOKEN)
        .json(&json!({"user_id": "juan", "message": message}))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    response
}

/// Reads events until `count` were read or the stream ended.
async fn read_events(response: reqwest::Response, count: usize) -> Vec<StreamEvent> {
    let mut stream = response.bytes_stream();
    let mut decoder = SseDecoder::new();
    let mut events = Vec::new();
    while events.len() < count {
        let Ok(Some(Ok(chunk))) = tokio::time::timeout(Duration::from_secs(10), stream.next()).await else { break };
        events.extend(decoder.feed(&chunk).iter().map(|frame| frame.to_event().unwrap()));
    }
    events
}

fn slow_script(words: usize) -> houston_testkit::anthropic::Reply {
    let pieces: Vec<String> = (0..words).map(|i| format!("w{i} ")).collect();
    let pieces: Vec<&str> = pieces.iter().map(String::as_str).collect();
    Script::new().token_delay(Duration::from_millis(50)).text(&pieces).end_turn(words as u64).build()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn engine_sigterm_stores_open_turn() {
    let dir = agent_dir();
    let stand_in = StandIn::start().await;
    stand_in.push(slow_script(400));
    let (mut child, base) = spawn_engine(dir.path(), &stand_in.base_url());
    let health = reqwest::get(format!("{base}/v1/health")).await.unwrap();
    assert_eq!(health.status(), 200);

    let response = start_turn(&base, "s1", "long answer please").await;
    let mut stream = response.bytes_stream();
    let first = stream.next().await.unwrap().unwrap();
    assert!(String::from_utf8_lossy(&first).contains("turn.accepted"));
    Command::new("kill").args(["-TERM", &child.id().to_string()]).status().unwrap();

    let mut rest = Vec::new();
    while let Ok(Some(Ok(chunk))) = tokio::time::timeout(Duration::from_secs(15), stream.next()).await {
        rest.extend_from_slice(&chunk);
    }
    let status = wait_exit(&mut child);
    assert!(status.success(), "exit status {status:?}");
    assert!(String::from_utf8_lossy(&rest).contains("event: turn.cancelled"), "the open turn ends as cancelled");
    let file = std::fs::read_to_string(dir.path().join(".houston/sessions/juan/s1.jsonl")).unwrap();
    let last: Value = serde_json::from_str(file.lines().last().unwrap()).unwrap();
    assert_eq!(last["status"], "cancelled");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kill_nine_mid_turn_then_restart() {
    let dir = agent_dir();
    let stand_in = StandIn::start().await;
    stand_in.push(slow_script(400));
    let (mut child, base) = spawn_engine(dir.path(), &stand_in.base_url());
    let events = read_events(start_turn(&base, "s1", "interrupted question").await, 4).await;
    assert_eq!(events.len(), 4, "the turn is streaming");
    let interrupted = events[0].turn_id.clone();
    child.kill().unwrap();
    child.wait().unwrap();

    let (mut child, base) = spawn_engine(dir.path(), &stand_in.base_url());
    let client = reqwest::Client::new();
    let history: Value = client
        .get(format!("{base}/v1/sessions/s1?user_id=juan"))
        .bearer_auth(TOKEN)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(history["messages"][0]["text"], "interrupted question");
    assert_eq!(history["messages"][1]["turn_id"], interrupted.as_str());
    assert_eq!(history["messages"][1]["status"], "failed");

    let next = read_events(start_turn(&base, "s1", "are you back?").await, 100).await;
    let EventKind::TurnCompleted { .. } = &next.last().unwrap().kind else { panic!("next turn failed: {next:?}") };
    let sent = &stand_in.requests()[1];
    assert_eq!(sent.last_user_text(), "are you back?");
    let file = std::fs::read_to_string(dir.path().join(".houston/sessions/juan/s1.jsonl")).unwrap();
    let records: Vec<Value> = file.lines().filter_map(|line| serde_json::from_str(line).ok()).collect();
    assert_eq!(records[1]["turn_id"], interrupted.as_str());
    assert_eq!(records[1]["status"], "failed");
    assert_eq!(records.last().unwrap()["status"], "completed");
    child.kill().unwrap();
    child.wait().unwrap();
}

#[test]
fn engine_refuses_to_start_without_token() {
    let dir = agent_dir();
    let output = houston()
        .args(["engine", "--agent-dir"])
        .arg(dir.path())
        .args(["--listen", "tcp:127.0.0.1:0"])
        .env_remove("HOUSTON_ENGINE_TOKEN")
        .env("HOUSTON_PROVIDER", "offline")
        .output()
        .unwrap();
    assert!(!output.status.success());
    assert!(output.stdout.is_empty(), "no readiness line");
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains("HOUSTON_ENGINE_TOKEN"), "{stderr}");
}

#[test]
fn engine_reads_token_from_fd_on_unix_socket() {
    let dir = agent_dir();
    let sockets = tempfile::tempdir().unwrap();
    let socket = sockets.path().join("engine.sock");
    let mut child = houston()
        .args(["engine", "--agent-dir"])
        .arg(dir.path())
        .arg("--listen")
        .arg(format!("unix:{}", socket.display()))
        .args(["--token-fd", "0"])
        .env_remove("HOUSTON_ENGINE_TOKEN")
        .env("HOUSTON_PROVIDER", "offline")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let mut stdin = child.stdin.take().unwrap();
    stdin.write_all(b"fd-token\n").unwrap();
    drop(stdin);
    assert_eq!(first_line(&mut child), format!("houston-engine listening on unix:{}", socket.display()));

    let ask = |token: &str| {
        let mut stream = std::os::unix::net::UnixStream::connect(&socket).unwrap();
        write!(stream, "GET /v1/version HTTP/1.1\r\nHost: engine\r\nAuthorization: Bearer {token}\r\nConnection: close\r\n\r\n").unwrap();
        let mut answer = String::new();
        stream.read_to_string(&mut answer).unwrap();
        answer
    };
    assert!(ask("fd-token").starts_with("HTTP/1.1 200"));
    assert!(ask("wrong").starts_with("HTTP/1.1 401"));
    Command::new("kill").args(["-TERM", &child.id().to_string()]).status().unwrap();
    assert!(wait_exit(&mut child).success());
}

#[test]
fn engine_reports_malformed_definition() {
    let dir = agent_dir();
    std::fs::write(dir.path().join("houston.json"), r#"{"id": "hr", "name": "HR", "integrations": "slack"}"#).unwrap();
    let output = houston()
        .args(["engine", "--agent-dir"])
        .arg(dir.path())
        .args(["--listen", "tcp:127.0.0.1:0"])
        .env("HOUSTON_ENGINE_TOKEN", TOKEN)
        .env("HOUSTON_PROVIDER", "offline")
        .output()
        .unwrap();
    assert!(!output.status.success());
    assert!(output.stdout.is_empty());
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains("houston.json"), "{stderr}");
    assert!(stderr.contains("integrations"), "{stderr}");
    assert!(stderr.contains("starting the engine"), "{stderr}");
    assert!(!stderr.contains('\x1b'), "piped stderr must carry no colour escapes: {stderr:?}");
}

#[test]
fn engine_without_provider_key_explains() {
    let dir = agent_dir();
    let output = houston()
        .args(["engine", "--agent-dir"])
        .arg(dir.path())
        .args(["--listen", "tcp:127.0.0.1:0"])
        .env("HOUSTON_ENGINE_TOKEN", TOKEN)
        .env("HOUSTON_PROVIDER", "anthropic")
        .env_remove("ANTHROPIC_API_KEY")
        .env_remove("HOUSTON_EGRESS_SOCKET")
        .output()
        .unwrap();
    assert!(!output.status.success());
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains("ANTHROPIC_API_KEY is missing"), "{stderr}");
}
