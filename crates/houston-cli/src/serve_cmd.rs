//! `houston serve`: the control plane alone, for a fleet of replicas behind a load balancer.

use std::net::SocketAddr;
use std::path::PathBuf;

use anyhow::Context;
use clap::Args;
use houston_control_plane::ServeConfig;

/// Arguments of `houston serve`; everything else comes from the config file and `HOUSTON_…`
/// variables.
#[derive(Debug, Args)]
pub struct ServeArgs {
    /// TOML config file (see the README for its keys).
    #[arg(long, env = "HOUSTON_CONFIG")]
    pub config: Option<PathBuf>,
    /// Address to listen on; overrides `listen` from the file and `HOUSTON_LISTEN`.
    #[arg(long)]
    pub listen: Option<SocketAddr>,
}

/// Loads the configuration (exiting with every problem listed before binding anything),
/// logs it with secrets redacted, binds the listener and serves until Ctrl-C or SIGTERM.
pub fn run(args: ServeArgs) -> anyhow::Result<()> {
    crate::telemetry::init();
    let mut config = match ServeConfig::load(args.config.as_deref(), std::env::vars()) {
        Ok(config) => config,
        Err(error) => {
            eprintln!("{error}");
            std::process::exit(2);
        }
    };
    if let Some(listen) = args.listen {
        config.listen = listen;
    }
    tracing::info!(config = %config.redacted(), "starting the control plane");

    let runtime = tokio::runtime::Runtime::new().context("starting the async runtime")?;
    runtime.block_on(async move {
        let listener = tokio::net::TcpListener::bind(config.listen).await.with_context(|| format!("binding {}", config.listen))?;
        houston_control_plane::run(config, listener, shutdown_signal()).await.context("running the control plane")
    })
}

/// Completes on Ctrl-C or SIGTERM.
async fn shutdown_signal() {
    let interrupt = tokio::signal::ctrl_c();
    let mut terminate = match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
        Ok(signal) => signal,
        Err(error) => {
            tracing::warn!(%error, "listening for SIGTERM failed; only Ctrl-C stops the server");
            let _ = interrupt.await;
            return;
        }
    };
    tokio::select! {
        _ = interrupt => {}
        _ = terminate.recv() => {}
    }
    tracing::info!("shutdown requested");
}
