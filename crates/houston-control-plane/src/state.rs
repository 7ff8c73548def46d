//! [`ControlPlane`]: the shared state behind every route.

use std::sync::Arc;

use houston_cache::Caches;
use houston_cache::client_ip::TrustedProxies;
use houston_protocol::{AgentId, SessionId, UserId, WorkspaceId};
use houston_store::{AuditEntry, SessionRecord, Store, StoreError, UsageEvent};
use time::OffsetDateTime;

use crate::access::LookupCache;
use crate::auth::builtin::{BuiltinIssuer, KeyError};
use crate::auth::config::OidcSignInConfig;
use crate::auth::{AuthenticatedUser, IdentityConfig, TokenError, Verifier};
use crate::config::LimitsConfig;
use crate::outbox::{BatchWriter, Outbox};

/// Shorthand for the router state.
pub type AppState = Arc<ControlPlane>;

/// Dependencies and settings of [`ControlPlane::new`].
pub struct ControlPlaneOptions {
    pub store: Arc<dyn Store>,
    pub caches: Caches,
    pub identity: IdentityConfig,
    pub limits: LimitsConfig,
    pub trusted_proxies: TrustedProxies,
    /// Folder of the audit and usage spool files, so queued records survive a crash. `None`
    /// keeps the queues in memory only. Each replica needs its own folder.
    pub outbox_dir: Option<std::path::PathBuf>,
}

/// Start-up failure of the control plane.
#[derive(Debug, thiserror::Error)]
pub enum StartError {
    #[error("loading the built-in issuer's signing keys failed")]
    Keys(#[from] KeyError),
    #[error("building the HTTP client failed: {0}")]
    HttpClient(String),
    #[error("opening the outbox spool folder {path} failed")]
    Outbox { path: String, source: std::io::Error },
}

/// Usage of one turn or runtime event, as the chat path reports it.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct UsageRecord {
    pub messages: i64,
    pub input_tokens: i64,
    pub output_tokens: i64,
    pub wake_ups: i64,
    pub runtime_seconds: i64,
}

/// The control plane of one replica: store, caches, identity and the write-behind queues.
pub struct ControlPlane {
    pub store: Arc<dyn Store>,
    pub caches: Caches,
    pub verifier: Verifier,
    pub builtin: Option<Arc<BuiltinIssuer>>,
    pub limits: LimitsConfig,
    pub trusted_proxies: TrustedProxies,
    /// Browser sign-in with an external issuer, offered at `GET /v1/auth/config`.
    pub oidc_sign_in: Option<OidcSignInConfig>,
    pub(crate) audit: Outbox<AuditEntry>,
    pub(crate) usage: Outbox<UsageEvent>,
    pub(crate) lookups: LookupCache,
}

impl ControlPlane {
    /// Loads the signing keys, builds the verifier and starts the audit and usage writers.
    /// Call inside a Tokio runtime.
    ///
    /// # Errors
    /// [`StartError`] when the keys cannot be loaded.
    pub async fn new(options: ControlPlaneOptions) -> Result<Arc<Self>, StartError> {
        let ControlPlaneOptions { store, caches, identity, limits, trusted_proxies, outbox_dir } = options;
        let builtin = match identity.builtin.clone() {
            Some(config) => Some(Arc::new(BuiltinIssuer::load(config, identity.audience.clone(), store.clone()).await?)),
            None => None,
        };
        let client = reqwest::Client::builder().build().map_err(|error| StartError::HttpClient(error.to_string()))?;
        let verifier = Verifier::new(&identity, builtin.clone(), store.clone(), &client);
        let audit = start_outbox("audit", audit_writer(store.clone()), outbox_dir.as_deref())?;
        let usage = start_outbox("usage", usage_writer(store.clone()), outbox_dir.as_deref())?;
        let oidc_sign_in = identity.oidc.clone();
        Ok(Arc::new(Self {
            store,
            caches,
            verifier,
            builtin,
            limits,
            trusted_proxies,
            oidc_sign_in,
            audit,
            usage,
            lookups: LookupCache::default(),
        }))
    }

    /// Verifies a bearer token (without the `Bearer ` prefix) and returns its user.
    ///
    /// # Errors
    /// [`TokenError`] naming the failed check.
    pub async fn authenticate(&self, token: &str) -> Result<AuthenticatedUser, TokenError> {
        self.verifier.authenticate(token).await
    }

    /// Queues an audit entry; it is stored shortly after, retried while the store fails.
    pub fn record_audit(&self, entry: AuditEntry) {
        self.audit.push(entry);
    }

    /// Queues the usage of one turn or runtime event for billing. Never waits for the
    /// database; a database outage delays the write.
    pub fn record_usage(&self, workspace: &WorkspaceId, agent: &AgentId, user: &UserId, usage: UsageRecord) {
        self.usage.push(UsageEvent {
            id: uuid::Uuid::now_v7().to_string(),
            at: OffsetDateTime::now_utc(),
            workspace_id: workspace.clone(),
            agent_id: agent.clone(),
            user_id: user.clone(),
            messages: usage.messages,
            input_tokens: usage.input_tokens,
            output_tokens: usage.output_tokens,
            wake_ups: usage.wake_ups,
            runtime_seconds: usage.runtime_seconds,
        });
    }

    /// Records that `user` talked to `agent` in `session`, so the session list needs no
    /// running agent. The first non-empty title is kept.
    ///
    /// # Errors
    /// The store's error.
    pub async fn record_session(&self, agent: &AgentId, user: &UserId, session: &SessionId, title: &str) -> Result<(), StoreError> {
        let now = OffsetDateTime::now_utc();
        let record = SessionRecord {
            session_id: session.clone(),
            agent_id: agent.clone(),
            user_id: user.clone(),
            title: title.to_owned(),
            created_at: now,
            updated_at: now,
        };
        self.store.upsert_session(&record).await
    }

    /// Waits until every queued audit entry and usage event is stored.
    pub async fn flush(&self) {
        self.audit.flush().await;
        self.usage.flush().await;
    }
}

/// Starts the outbox `name`, spooled to `outbox_dir/name` when a folder is configured.
fn start_outbox<T>(name: &'static str, writer: BatchWriter<T>, outbox_dir: Option<&std::path::Path>) -> Result<Outbox<T>, StartError>
where
    T: Clone + serde::Serialize + serde::de::DeserializeOwned + Send + Sync + 'static,
{
    let Some(outbox_dir) = outbox_dir else {
        return Ok(Outbox::start(name, writer));
    };
    let dir = outbox_dir.join(name);
    Outbox::start_spooled(name, writer, dir.clone()).map_err(|source| StartError::Outbox { path: dir.display().to_string(), source })
}

fn audit_writer(store: Arc<dyn Store>) -> BatchWriter<AuditEntry> {
    Arc::new(move |batch| {
        let store = store.clone();
        Box::pin(async move { store.insert_audit_entries(&batch).await })
    })
}

fn usage_writer(store: Arc<dyn Store>) -> BatchWriter<UsageEvent> {
    Arc::new(move |batch| {
        let store = store.clone();
        Box::pin(async move { store.insert_usage_events(&batch).await })
    })
}
