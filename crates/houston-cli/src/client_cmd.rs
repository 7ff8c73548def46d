//! `houston login` and `houston chat`: a terminal client of the control plane's API.
//!
//! `login` stores the tokens in `credentials.json` under the user's config folder
//! (`$XDG_CONFIG_HOME/houston`, else `~/.config/houston`), readable only by the user (0600).
//! `chat` prints the answer on stdout as it streams and status lines (waking, ready, the
//! session id) on stderr, so `houston chat … > answer.txt` captures only the answer.

use std::io::Write;
use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
use std::path::PathBuf;

use anyhow::{Context, bail};
use clap::Args;
use houston_protocol::sse::SseDecoder;
use houston_protocol::{ErrorBody, EventKind, SessionId, StreamEvent};
use serde::{Deserialize, Serialize};
use serde_json::json;

/// Arguments of `houston login`.
#[derive(Debug, Args)]
pub struct LoginArgs {
    /// Base URL of the Houston server, for example http://127.0.0.1:8080.
    #[arg(long, env = "HOUSTON_SERVER", default_value = "http://127.0.0.1:8080")]
    server: String,
    /// Email address of the account.
    #[arg(long)]
    email: String,
}

/// Arguments of `houston chat`.
#[derive(Debug, Args)]
pub struct ChatArgs {
    /// Agent id or slug, for example `hr`.
    #[arg(long)]
    agent: String,
    /// Session to continue; without it a new session starts and its id is printed on stderr.
    /// Checked before anything is sent: letters, digits, '-' and '_', starting with a letter or
    /// digit.
    #[arg(long, value_parser = parse_session_id)]
    session: Option<SessionId>,
    /// Server to use instead of the one stored by `houston login`.
    #[arg(long, env = "HOUSTON_SERVER")]
    server: Option<String>,
    /// The message to send.
    message: String,
}

/// The tokens stored by `houston login`.
#[derive(Debug, Serialize, Deserialize)]
struct Credentials {
    server: String,
    access_token: String,
    refresh_token: String,
}

#[derive(Debug, Deserialize)]
struct TokenAnswer {
    access_token: String,
    refresh_token: String,
}

fn credentials_path() -> anyhow::Result<PathBuf> {
    let base = match std::env::var_os("XDG_CONFIG_HOME") {
        Some(dir) if !dir.is_empty() => PathBuf::from(dir),
        _ => {
            let home = std::env::var_os("HOME").context("neither XDG_CONFIG_HOME nor HOME is set")?;
            PathBuf::from(home).join(".config")
        }
    };
    Ok(base.join("houston").join("credentials.json"))
}

fn save_credentials(credentials: &Credentials) -> anyhow::Result<PathBuf> {
    let path = credentials_path()?;
    let dir = path.parent().expect("the credentials path has a parent folder");
    std::fs::create_dir_all(dir).with_context(|| format!("failed to create {}", dir.display()))?;
    let mut file = std::fs::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(0o600)
        .open(&path)
        .with_context(|| format!("failed to open {}", path.display()))?;
    // An older file may have wider permissions; `mode` applies only to new files.
    file.set_permissions(std::fs::Permissions::from_mode(0o600))?;
    file.write_all(&serde_json::to_vec_pretty(credentials)?)?;
    Ok(path)
}

fn load_credentials() -> anyhow::Result<Credentials> {
    let path = credentials_path()?;
    let text = std::fs::read(&path).with_context(|| {
        format!("failed to read {}; run `houston login --server URL --email EMAIL` first", path.display())
    })?;
    serde_json::from_slice(&text).with_context(|| format!("invalid credentials file {}", path.display()))
}

fn read_password() -> anyhow::Result<String> {
    if let Ok(password) = std::env::var("HOUSTON_PASSWORD") {
        return Ok(password);
    }
    rpassword::prompt_password("Password: ").context("failed to read the password from the terminal")
}

/// Runs `houston login`.
pub fn login(args: LoginArgs) -> anyhow::Result<()> {
    let password = read_password()?;
    let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build()?;
    runtime.block_on(async {
        let server = args.server.trim_end_matches('/').to_owned();
        let response = reqwest::Client::new()
            .post(format!("{server}/v1/login"))
            .json(&json!({"email": args.email, "password": password}))
            .send()
            .await
            .with_context(|| format!("failed to reach {server}"))?;
        let tokens: TokenAnswer = expect_json(response, "login").await?;
        let credentials = Credentials { server, access_token: tokens.access_token, refresh_token: tokens.refresh_token };
        let path = save_credentials(&credentials)?;
        eprintln!("Logged in to {} as {}; token stored in {}", credentials.server, args.email, path.display());
        Ok(())
    })
}

async fn expect_json<T: serde::de::DeserializeOwned>(response: reqwest::Response, what: &str) -> anyhow::Result<T> {
    let status = response.status();
    let body = response.text().await.unwrap_or_default();
    if !status.is_success() {
        bail!("{what} failed with HTTP {status}: {}", describe_error(&body));
    }
    serde_json::from_str(&body).with_context(|| format!("invalid {what} answer from the server"))
}

/// Returns the message of an error body followed by each field reason in `details.fields`
/// that the message does not already contain, or the body itself when it is not an error body.
fn describe_error(body: &str) -> String {
    let Ok(error) = serde_json::from_str::<ErrorBody>(body) else {
        return body.to_owned();
    };
    let mut text = error.error.message;
    let fields = error.error.details.get("fields").and_then(serde_json::Value::as_array);
    for field in fields.into_iter().flatten() {
        let name = field.get("field").and_then(serde_json::Value::as_str).unwrap_or("?");
        let reason = field.get("reason").and_then(serde_json::Value::as_str).unwrap_or("is invalid");
        let line = format!("{name}: {reason}");
        if !text.contains(&line) {
            text.push_str("\n  ");
            text.push_str(&line);
        }
    }
    text
}

fn parse_session_id(value: &str) -> Result<SessionId, String> {
    SessionId::parse(value).map_err(|error| format!("session_id {error}"))
}

/// Runs `houston chat`.
pub fn chat(args: ChatArgs) -> anyhow::Result<()> {
    let mut credentials = load_credentials()?;
    if let Some(server) = &args.server {
        credentials.server = server.trim_end_matches('/').to_owned();
    }
    let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build()?;
    runtime.block_on(run_chat(credentials, args))
}

async fn run_chat(mut credentials: Credentials, args: ChatArgs) -> anyhow::Result<()> {
    let client = reqwest::Client::new();
    let mut body = json!({"agent_id": args.agent, "message": args.message});
    if let Some(session) = &args.session {
        body["session_id"] = json!(session.as_str());
    }
    let mut response = send_chat(&client, &credentials, &body).await?;
    if response.status() == reqwest::StatusCode::UNAUTHORIZED {
        refresh(&client, &mut credentials).await?;
        response = send_chat(&client, &credentials, &body).await?;
    }
    if !response.status().is_success() {
        let _: serde_json::Value = expect_json(response, "chat").await?;
        bail!("chat failed");
    }
    print_stream(response).await
}

async fn send_chat(
    client: &reqwest::Client,
    credentials: &Credentials,
    body: &serde_json::Value,
) -> anyhow::Result<reqwest::Response> {
    client
        .post(format!("{}/v1/chat", credentials.server))
        .bearer_auth(&credentials.access_token)
        .json(body)
        .send()
        .await
        .with_context(|| format!("failed to reach {}", credentials.server))
}

/// Exchanges the refresh token for new tokens and stores them.
async fn refresh(client: &reqwest::Client, credentials: &mut Credentials) -> anyhow::Result<()> {
    let response = client
        .post(format!("{}/v1/token/refresh", credentials.server))
        .json(&json!({"refresh_token": credentials.refresh_token}))
        .send()
        .await
        .with_context(|| format!("failed to reach {}", credentials.server))?;
    let tokens: TokenAnswer = expect_json(response, "token refresh")
        .await
        .context("the stored login expired; run `houston login` again")?;
    credentials.access_token = tokens.access_token;
    credentials.refresh_token = tokens.refresh_token;
    save_credentials(credentials)?;
    Ok(())
}

/// Prints deltas on stdout as they arrive and status lines on stderr. Fails on `turn.failed`.
async fn print_stream(mut response: reqwest::Response) -> anyhow::Result<()> {
    let mut decoder = SseDecoder::new();
    let mut stdout = std::io::stdout();
    while let Some(chunk) = response.chunk().await.context("the event stream broke")? {
        for frame in decoder.feed(&chunk) {
            let event: StreamEvent = frame.to_event().context("the server sent an invalid event")?;
            match event.kind {
                EventKind::TurnAccepted { session_id } => eprintln!("session: {session_id}"),
                EventKind::AgentWaking {} => eprintln!("waking the agent…"),
                EventKind::AgentReady { cold_start_ms } => eprintln!("agent ready in {cold_start_ms} ms"),
                EventKind::MessageDelta { text } => {
                    stdout.write_all(text.as_bytes())?;
                    stdout.flush()?;
                }
                EventKind::ToolStarted { label, .. } => eprintln!("{label}"),
                EventKind::ToolFinished { tool, outcome, .. } => eprintln!("{tool}: {outcome:?}"),
                EventKind::ToolNeedsConnection { toolkit, connect_url, .. } => {
                    eprintln!("connect {toolkit} first: {connect_url}");
                }
                EventKind::ToolApprovalRequested { label, .. } => eprintln!("waiting for approval: {label}"),
                EventKind::TurnCompleted { .. } => {
                    println!();
                    return Ok(());
                }
                EventKind::TurnFailed { error } => {
                    println!();
                    bail!("the turn failed: {} ({})", error.message, error.code);
                }
                EventKind::TurnCancelled {} => {
                    println!();
                    bail!("the turn was cancelled");
                }
            }
        }
    }
    bail!("the event stream ended before the turn did")
}

#[cfg(test)]
mod tests {
    use super::{describe_error, parse_session_id};

    #[test]
    fn error_lists_field_reasons() {
        let body = r#"{"error": {"code": "invalid_fields", "message": "the request has invalid fields",
            "details": {"fields": [{"field": "session_id", "reason": "must start with a letter or digit"}]}}}"#;

        let text = describe_error(body);

        assert!(text.starts_with("the request has invalid fields"), "{text}");
        assert!(text.contains("session_id: must start with a letter or digit"), "{text}");
    }

    #[test]
    fn error_reason_not_repeated() {
        let body = r#"{"error": {"code": "invalid_fields", "message": "the request has invalid fields: message: is missing",
            "details": {"fields": [{"field": "message", "reason": "is missing"}]}}}"#;

        assert_eq!(describe_error(body), "the request has invalid fields: message: is missing");
    }

    #[test]
    fn plain_text_error_kept() {
        assert_eq!(describe_error("Bad Gateway"), "Bad Gateway");
    }

    #[test]
    fn session_checked_locally() {
        let error = parse_session_id("../../x").unwrap_err();

        assert_eq!(error, "session_id must start with a letter or digit");
        assert!(parse_session_id("s-1").is_ok());
    }
}
