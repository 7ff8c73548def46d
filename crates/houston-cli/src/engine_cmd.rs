//! `houston engine`: serve one agent folder, the runtime inside a sandbox or pod.
//!
//! The first stdout line is `houston-engine listening on <unix:PATH|tcp:HOST:PORT>` (with
//! the real port when port 0 was requested); logs go to stderr. SIGTERM or SIGINT lets open
//! turns finish within the grace period, cancels the rest, stores them and exits 0.

use std::io::{Read, Write};
use std::path::PathBuf;

use anyhow::{Context, bail};
use clap::Args;
use houston_engine::{Engine, EngineConfig, EngineListener, SecretString};
use houston_protocol::EngineEndpoint;

use crate::telemetry;

/// The environment variable holding the engine's bearer token.
const TOKEN_ENV: &str = "HOUSTON_ENGINE_TOKEN";

#[derive(Debug, Args)]
pub struct EngineArgs {
    /// The agent folder to serve (houston.json, CLAUDE.md, skills, knowledge/, .houston/).
    #[arg(long)]
    agent_dir: PathBuf,
    /// Listen address: unix:PATH or tcp:HOST:PORT (port 0 picks a free port).
    #[arg(long)]
    listen: EngineEndpoint,
    /// Read the bearer token from this file descriptor, to its end, instead of
    /// HOUSTON_ENGINE_TOKEN.
    #[arg(long)]
    token_fd: Option<u32>,
}

pub fn run(args: EngineArgs) -> anyhow::Result<()> {
    telemetry::init();
    let token = read_token(args.token_fd)?;
    let config = EngineConfig::from_env(&args.agent_dir, token)
        .with_context(|| format!("failed to configure the engine for {}", args.agent_dir.display()))?;
    tracing::info!(?config, "starting the engine");
    let engine = Engine::open(config).context("failed to open the agent folder")?;

    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .context("failed to start the async runtime")?;
    runtime.block_on(async move {
        let listener = EngineListener::bind(&args.listen)
            .await
            .with_context(|| format!("failed to listen on {}", args.listen))?;
        let endpoint = listener.local_endpoint().context("failed to read the bound address")?;
        let mut stdout = std::io::stdout();
        writeln!(stdout, "houston-engine listening on {endpoint}")?;
        stdout.flush()?;
        tracing::info!(%endpoint, "engine ready");
        engine.serve(listener, shutdown_signal()).await.context("the engine server failed")
    })
}

/// Reads the token from `--token-fd` or the environment; an empty token is rejected.
fn read_token(token_fd: Option<u32>) -> anyhow::Result<SecretString> {
    let token = match token_fd {
        // Reading through /proc keeps the binary free of unsafe file descriptor handling.
        Some(fd) => {
            let mut text = String::new();
            std::fs::File::open(format!("/proc/self/fd/{fd}"))
                .and_then(|mut file| file.read_to_string(&mut text))
                .with_context(|| format!("failed to read the engine token from file descriptor {fd}"))?;
            text.trim_end_matches(['\n', '\r']).to_owned()
        }
        None => std::env::var(TOKEN_ENV).unwrap_or_default(),
    };
    if token.is_empty() {
        bail!("missing engine token: set {TOKEN_ENV} or pass --token-fd N with the token on that descriptor");
    }
    Ok(SecretString::from(token))
}

async fn shutdown_signal() {
    use tokio::signal::unix::{SignalKind, signal};
    let Ok(mut terminate) = signal(SignalKind::terminate()) else {
        tracing::error!("failed to install the SIGTERM handler; stopping on SIGINT only");
        let _ = tokio::signal::ctrl_c().await;
        return;
    };
    tokio::select! {
        _ = terminate.recv() => tracing::info!("received SIGTERM"),
        _ = tokio::signal::ctrl_c() => tracing::info!("received SIGINT"),
    }
}
