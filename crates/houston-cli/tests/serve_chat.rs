//! Chat through `houston serve`: the fleet control plane on Postgres and Redis with the
//! process backend, seeded with `houston admin`, streams the offline provider's answer to a
//! signed-in member. With `CI=true` an unreachable Postgres or Redis fails the test; without it the
//! test is skipped with a message.

mod flow_support;

use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::mpsc::Receiver;
use std::time::{Duration, Instant};

use flow_support::{answer_text, fixtures_dir, read_events, session_of, types};
use serde_json::{Value, json};

const PASSWORD: &str = "serve-chat-password-1";

fn redis_url() -> String {
    std::env::var("REDIS_URL").unwrap_or_else(|_| "redis://127.0.0.1:6379".to_owned())
}

/// Returns true when Redis accepts TCP connections; panics under `CI=true` when it does not.
fn redis_reachable(url: &str) -> bool {
    let address = url.trim_start_matches("redis://").split('/').next().unwrap_or_default();
    let address = address.rsplit('@').next().unwrap_or(address);
    match std::net::TcpStream::connect(address) {
        Ok(_) => true,
        Err(error) if std::env::var("CI").as_deref() == Ok("true") => {
            panic!("Redis at {url} is unreachable and CI=true: {error}")
        }
        Err(error) => {
            eprintln!("skipping the serve chat test: Redis at {url} is unreachable ({error})");
            false
        }
    }
}

/// Runs `houston admin ARGS…` against `database_url` and returns its stdout.
fn admin(database_url: &str, args: &[&str]) -> String {
    let output = Command::new(env!("CARGO_BIN_EXE_houston"))
        .arg("admin")
        .args(args)
        .env("HOUSTON_DATABASE_URL", database_url)
        .env("HOUSTON_PASSWORD", PASSWORD)
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(output.status.success(), "houston admin {args:?} failed: {stderr}");
    String::from_utf8(output.stdout).unwrap()
}

/// Seeds workspace Acme, owner Alice, member Juan, agent `hr` and Juan's grant, and returns
/// the agent id that `houston admin create-agent` printed.
fn seed(database_url: &str) -> String {
    let people = fixtures_dir().join("houston-agents/people");
    admin(database_url, &["create-workspace", "--slug", "acme", "--name", "Acme"]);
    admin(database_url, &["create-user", "--email", "alice@acme.test", "--name", "Alice"]);
    admin(database_url, &["create-user", "--email", "juan@acme.test", "--name", "Juan"]);
    admin(database_url, &["add-member", "--workspace", "acme", "--email", "alice@acme.test", "--role", "owner"]);
    admin(database_url, &["add-member", "--workspace", "acme", "--email", "juan@acme.test"]);
    let created = admin(database_url, &["create-agent", "--workspace", "acme", "--slug", "hr", "--folder", people.to_str().unwrap()]);
    admin(database_url, &["grant", "--workspace", "acme", "--agent", "hr", "--email", "juan@acme.test"]);
    let agent_id = created.split('(').nth(1).and_then(|rest| rest.split(')').next());
    agent_id.unwrap_or_else(|| panic!("no agent id in {created:?}")).to_owned()
}

/// Copies the people definition and the employee handbook into the agent's volume, so the
/// offline provider has a knowledge file to quote.
fn import_knowledge(volume: &Path) {
    let import = Command::new(env!("CARGO_BIN_EXE_houston"))
        .args(["agent", "import"])
        .arg(fixtures_dir().join("houston-agents/people"))
        .arg("--into")
        .arg(volume)
        .arg("--knowledge")
        .arg(fixtures_dir().join("acme/employee-handbook.md"))
        .output()
        .unwrap();
    assert!(import.status.success(), "import failed: {}", String::from_utf8_lossy(&import.stderr));
}

/// Starts `houston serve` and returns it with its listening address and its log lines.
fn start_serve(home: &Path, database_url: &str, redis: &str) -> (Child, String, Receiver<String>) {
    let mut child = Command::new(env!("CARGO_BIN_EXE_houston"))
        .args(["serve", "--listen", "127.0.0.1:0"])
        .env_remove("HOUSTON_CONFIG")
        .env_remove("ANTHROPIC_API_KEY")
        .env_remove("OPENAI_API_KEY")
        .env_remove("COMPOSIO_API_KEY")
        .env("HOUSTON_DATABASE_URL", database_url)
        .env("HOUSTON_REDIS_URL", redis)
        .env("HOUSTON_RUNTIME__BACKEND", "process")
        .env("HOUSTON_RUNTIME__HOME", home)
        .env("RUST_LOG", "info")
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let stderr = child.stderr.take().unwrap();
    let (sender, receiver) = std::sync::mpsc::channel();
    // The reader keeps draining stderr, so the server never blocks on a full pipe.
    std::thread::spawn(move || {
        for line in BufReader::new(stderr).lines().map_while(Result::ok) {
            if sender.send(line).is_err() {
                break;
            }
        }
    });
    let deadline = Instant::now() + Duration::from_secs(60);
    let mut log = String::new();
    let address = loop {
        let remaining = deadline.saturating_duration_since(Instant::now());
        let line = receiver.recv_timeout(remaining).unwrap_or_else(|_| panic!("no listening line within 60 s in:\n{log}"));
        log.push_str(&line);
        log.push('\n');
        if line.contains("control plane listening")
            && let Some(rest) = line.split("listen=").nth(1)
        {
            let address: String = rest.chars().take_while(|c| c.is_ascii_digit() || *c == '.' || *c == ':').collect();
            break address;
        }
    };
    (child, address, receiver)
}

async fn login(client: &reqwest::Client, url: &str, email: &str) -> String {
    let response = client.post(format!("{url}/v1/login")).json(&json!({"email": email, "password": PASSWORD})).send().await.unwrap();
    assert_eq!(response.status(), 200, "login of {email}");
    let body: Value = response.json().await.unwrap();
    body["access_token"].as_str().unwrap().to_owned()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn serve_chat_offline_provider() {
    let Some(database_url) = houston_store::testing::fresh_postgres_url().await else { return };
    let redis = redis_url();
    if !redis_reachable(&redis) {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let home = dir.path().join("home");
    let agent_id = seed(&database_url);
    import_knowledge(&home.join("agents").join(&agent_id));
    let (mut child, address, _log) = start_serve(&home, &database_url, &redis);
    let url = format!("http://{address}");
    let client = reqwest::Client::new();

    let juan = login(&client, &url, "juan@acme.test").await;
    let body = json!({"agent_id": "hr", "message": "what's our vacation policy?"});
    let response = client.post(format!("{url}/v1/chat")).bearer_auth(&juan).json(&body).send().await.unwrap();
    assert_eq!(response.status(), 200, "chat answer status");
    let events = read_events(response, usize::MAX).await;
    let kinds = types(&events);
    assert_eq!(kinds.first(), Some(&"turn.accepted"), "{kinds:?}");
    assert!(kinds.contains(&"agent.waking"), "the first message wakes the agent: {kinds:?}");
    assert!(kinds.contains(&"agent.ready"), "{kinds:?}");
    assert!(kinds.contains(&"message.delta"), "{kinds:?}");
    assert_eq!(kinds.last(), Some(&"turn.completed"), "{kinds:?}");
    let answer = answer_text(&events);
    assert!(answer.to_lowercase().contains("offline"), "the offline provider says so: {answer}");
    assert!(answer.contains("employee-handbook"), "the answer quotes the handbook: {answer}");
    assert!(home.join("agents").join(&agent_id).join(".houston/sessions").exists(), "the session is stored on the volume under runtime.home");

    let session = session_of(&events);
    let history = client.get(format!("{url}/v1/agents/hr/sessions/{session}")).bearer_auth(&juan).send().await.unwrap();
    assert_eq!(history.status(), 200, "the session route is served");
    let history: Value = history.json().await.unwrap();
    assert_eq!(history["messages"].as_array().map(Vec::len), Some(2), "{history}");

    let alice = login(&client, &url, "alice@acme.test").await;
    let sales = json!({"agent_id": "sales", "message": "hello"});
    let missing = client.post(format!("{url}/v1/chat")).bearer_auth(&alice).json(&sales).send().await.unwrap();
    assert_eq!(missing.status(), 404, "an unknown agent is not found");

    let status = Command::new("kill").args(["-TERM", &child.id().to_string()]).status().unwrap();
    assert!(status.success());
    let exit = child.wait().unwrap();
    assert!(exit.success(), "{exit:?}");
}
