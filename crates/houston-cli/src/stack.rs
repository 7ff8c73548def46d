//! The chat stack that `houston up` and `houston serve` share: the runtime manager with its
//! sandbox backend, the egress proxy, the chat service and the tool connection routes.
//!
//! Both commands call [`build`], so they serve the same chat routes (`POST /v1/chat`, the
//! session routes, `/v1/ws`, connections and approvals). Provider keys come only from the
//! environment and go only to the egress proxy.
//!
//! NOTE: every process has its own runtime manager on its own home folder. Replicas of a
//! fleet share no runtimes and route no chats to each other, so two replicas that both get
//! chats for one agent start two runtimes on two different volumes.

pub mod provider;
mod specs;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use axum::Router;
use houston_control_plane::AppState;
use houston_control_plane::chat::{ChatLimits, ChatService, ControlPlaneChat, ManagerRuntimes, TurnTable};
use houston_control_plane::connections::{ComposioAccounts, ConnectionsService, StorePorts};
use houston_egress::{EgressConfig, EgressProxy};
use houston_runtime::{
    BackendKind, EngineCommand, ManagerConfig, NamespaceConfig, RuntimeBackend, RuntimeManager,
    create_backend, namespace_supported,
};
use houston_store::{PostgresStore, SqliteStore, Store, StoreOptions};

pub use specs::volume_dir;

/// Start-up behaviour when the namespace backend is requested but this host cannot run it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum NamespaceFallback {
    /// Warn in capital letters and run agents as plain processes (`houston up`).
    WarnAndUseProcess,
    /// Fail at start (`houston serve`, where a fleet must not lose isolation silently).
    Fail,
}

/// Settings of the chat stack.
#[derive(Debug, Clone)]
pub struct StackOptions {
    /// Absolute home folder, prepared by [`prepare_home`].
    pub home: PathBuf,
    /// Sandbox backend for agent runtimes.
    pub backend: BackendKind,
    pub namespace_fallback: NamespaceFallback,
    /// Idle timeout for every agent, replacing each agent's own setting.
    pub idle_override: Option<Duration>,
    /// Chat messages allowed per user and minute.
    pub chat_per_user_per_minute: u32,
    /// Provider settings by environment variable name (`ANTHROPIC_BASE_URL`, `OPENAI_BASE_URL`,
    /// `HOUSTON_MODEL`), used in place of the process environment. It never contains a key.
    pub provider_settings: BTreeMap<&'static str, String>,
}

/// The built chat stack.
pub struct ChatStack {
    /// The chat, connection and approval routes, to merge into the control plane's router.
    pub routes: Router,
    /// The runtime manager; call `shutdown` after serving stops.
    pub manager: RuntimeManager,
}

/// Builds the runtime manager, the egress proxy, the chat service and the connection routes.
///
/// # Errors
/// Invalid provider, egress or Composio settings, a backend this host cannot run, or a
/// failure to prepare the chat turn table.
pub async fn build(
    control_plane: &AppState,
    store: Arc<dyn Store>,
    turn_table: TurnTable,
    options: StackOptions,
) -> anyhow::Result<ChatStack> {
    let settings = options.provider_settings.clone();
    let lookup = move |name: &str| settings.get(name).cloned().or_else(|| std::env::var(name).ok());
    let provider = provider::ProviderChoice::from_lookup(|name| lookup(name).filter(|value| !value.is_empty()));
    provider.announce();
    let model = lookup("HOUSTON_MODEL").filter(|model| !model.is_empty());
    let home = &options.home;
    let egress_config = EgressConfig::from_lookup(home.join("egress.log"), &lookup).context("invalid egress settings")?;
    let egress = EgressProxy::new(egress_config).context("failed to start the egress proxy")?;
    let backend = choose_backend(options.backend, options.namespace_fallback)?;
    let manager = RuntimeManager::new(backend, ManagerConfig::new(home.join("run")));

    let engine = EngineCommand::current_exe().context("failed to locate the houston binary")?;
    let specs = specs::UpSpecs::new(store.clone(), home.clone(), engine, egress, provider, model, options.idle_override);
    let mut limits = ChatLimits::default();
    limits.per_user = houston_cache::Quota::per_minute(options.chat_per_user_per_minute.max(1))
        .map_err(|e| anyhow::anyhow!("invalid chat limit per user and minute: {e}"))?;
    let chat = ControlPlaneChat::new(control_plane.clone(), turn_table, limits)
        .await
        .context("failed to prepare the chat turn table")?;
    let service = ChatService::new(chat.ports(ManagerRuntimes::new(manager.clone(), specs)));

    let connections = connections_service(service.clone(), store)?;
    let routes = houston_control_plane::chat::router(service).merge(houston_control_plane::connections::router(connections));
    Ok(ChatStack { routes, manager })
}

/// Builds the tool connection and approval routes; Composio is read with `COMPOSIO_API_KEY`.
fn connections_service(chat: Arc<ChatService>, store: Arc<dyn Store>) -> anyhow::Result<Arc<ConnectionsService>> {
    let composio = ComposioAccounts::from_env().map_err(|e| anyhow::anyhow!("invalid Composio settings: {e}"))?;
    let ports = Arc::new(StorePorts(store));
    Ok(Arc::new(ConnectionsService { chat, ports, composio, poll_interval: Duration::from_secs(2) }))
}

/// Opens the metadata store at `url` (`postgres://…` or `sqlite://PATH`) and returns it with
/// the chat turn table on the same database.
///
/// # Errors
/// A URL of another scheme, or a failure to connect or migrate.
pub async fn open_store(url: &str, max_connections: Option<u32>) -> anyhow::Result<(Arc<dyn Store>, TurnTable)> {
    let mut options = StoreOptions::new(url);
    if let Some(max_connections) = max_connections {
        options.max_connections = max_connections;
    }
    if url.starts_with("postgres://") || url.starts_with("postgresql://") {
        let postgres = PostgresStore::connect(&options).await.context("failed to open the Postgres store")?;
        let table = TurnTable::Postgres(postgres.pool().clone());
        return Ok((Arc::new(postgres), table));
    }
    if url.starts_with("sqlite:") {
        let sqlite = SqliteStore::connect(&options).await.context("failed to open the SQLite store")?;
        let table = TurnTable::Sqlite(sqlite.pool().clone());
        return Ok((Arc::new(sqlite), table));
    }
    anyhow::bail!("invalid database URL: it must start with postgres://, postgresql:// or sqlite:")
}

/// Creates the home folder (mode 0700, see [`crate::home_dir`]) and its subfolders and
/// returns its absolute path, so socket paths stay valid whatever the working folder of a
/// runtime is.
///
/// # Errors
/// A folder that cannot be created or resolved.
pub fn prepare_home(home: &Path) -> anyhow::Result<PathBuf> {
    crate::home_dir::secure_home(home)?;
    for dir in ["agents", "run", "egress"] {
        let path = home.join(dir);
        std::fs::create_dir_all(&path).with_context(|| format!("failed to create {}", path.display()))?;
    }
    home.canonicalize().with_context(|| format!("failed to resolve {}", home.display()))
}

/// Returns the backend of `kind`. When the namespace backend is requested and this host does
/// not support it, `fallback` decides between the process backend with a warning that agents
/// are not isolated, and an error.
fn choose_backend(kind: BackendKind, fallback: NamespaceFallback) -> anyhow::Result<Arc<dyn RuntimeBackend>> {
    let namespace = NamespaceConfig::default();
    if kind == BackendKind::Namespace
        && let Err(unavailable) = namespace_supported(&namespace)
    {
        if fallback == NamespaceFallback::Fail {
            anyhow::bail!(
                "runtime.backend: namespace sandboxes are unavailable on this host ({}); fix the host \
                 or set runtime.backend = \"process\" (no isolation, development only)",
                unavailable.reason
            );
        }
        tracing::warn!(reason = %unavailable.reason, "namespace sandboxes are unavailable on this host");
        eprintln!(
            "WARNING: namespace sandboxes are unavailable here ({}).\n\
             WARNING: falling back to the `process` backend: agents run WITHOUT isolation and can \
             read each other's volumes. Use it for development only.",
            unavailable.reason
        );
        return create_backend(BackendKind::Process, namespace).map_err(anyhow::Error::from);
    }
    create_backend(kind, namespace).map_err(anyhow::Error::from)
}
