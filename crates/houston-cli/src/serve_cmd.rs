//! `houston serve`: the control plane with its chat stack, for a fleet of replicas behind a
//! load balancer. Each replica runs agent runtimes on its own `runtime.home`.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::PathBuf;

use anyhow::Context;
use clap::Args;
use houston_control_plane::ServeConfig;
use houston_control_plane::config::RuntimeConfig;
use secrecy::ExposeSecret;

use crate::stack::{self, NamespaceFallback, StackOptions};

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
/// logs it with secrets redacted, builds the control plane and its chat stack, binds the
/// listener and serves until Ctrl-C or SIGTERM.
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
    runtime.block_on(serve(config))
}

async fn serve(mut config: ServeConfig) -> anyhow::Result<()> {
    let home = stack::prepare_home(&config.runtime.home)?;
    if config.outbox_dir.is_none() {
        config.outbox_dir = Some(home.join("outbox"));
    }
    let (store, turn_table) = stack::open_store(config.database_url.expose_secret(), Some(config.database_max_connections)).await?;
    let state = houston_control_plane::build_on(&config, store.clone()).await.context("starting the control plane")?;
    let options = stack_options(&config.runtime, home);
    let chat = stack::build(&state, store, turn_table, options).await?;
    let app = houston_control_plane::router(state.clone()).merge(chat.routes);

    let listener = tokio::net::TcpListener::bind(config.listen).await.with_context(|| format!("binding {}", config.listen))?;
    houston_control_plane::serve(state, app, listener, shutdown_signal()).await.context("running the control plane")?;
    chat.manager.shutdown().await;
    tracing::info!("houston serve stopped");
    Ok(())
}

/// Maps the `[runtime]` section onto the chat stack; its provider settings take the place of
/// the environment variables of the same meaning.
fn stack_options(runtime: &RuntimeConfig, home: PathBuf) -> StackOptions {
    let mut provider_settings = BTreeMap::new();
    let settings = [
        ("HOUSTON_MODEL", &runtime.model),
        ("ANTHROPIC_BASE_URL", &runtime.anthropic_base_url),
        ("OPENAI_BASE_URL", &runtime.openai_base_url),
    ];
    for (name, value) in settings {
        if let Some(value) = value {
            provider_settings.insert(name, value.clone());
        }
    }
    StackOptions {
        home,
        backend: runtime.backend,
        namespace_fallback: NamespaceFallback::Fail,
        idle_override: runtime.idle_timeout,
        chat_per_user_per_minute: runtime.chat_per_user_per_minute,
        provider_settings,
    }
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
